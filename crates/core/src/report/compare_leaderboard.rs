//! What the leaderboard says about the two sides of `sweep compare`. `compare` tests one
//! pair, uncorrected; the leaderboard tests every row against the best of its data set,
//! Holm-corrected over those comparisons, so the two can differ near p = 0.05. `compare`
//! shows both, the leaderboard's from the same code (`sweep report --sort METRIC`).

use super::data_sets::families;
use super::significance::{Evidence, RowTest};
use super::{board, Board, MetricKey, ReportOptions};
use crate::store::JobRow;
use anyhow::Result;
use serde::Serialize;

/// How the leaderboard marks one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    Best,
    /// "≈ best": not distinguishable from the best.
    Indistinguishable,
    /// Worse than the best beyond noise.
    Worse,
    /// No bootstrap: no per-image results, alone on its data set, or a metric not made of
    /// image counts.
    NotTested,
    /// Not a row of the leaderboard: one job of a configuration with several runs.
    NotARow,
}

impl Mark {
    fn of(test: &RowTest) -> Mark {
        if test.best {
            Mark::Best
        } else if test.indistinguishable {
            Mark::Indistinguishable
        } else {
            Mark::Worse
        }
    }

    fn words(self) -> &'static str {
        match self {
            Mark::Best => "best",
            Mark::Indistinguishable => "≈ best",
            Mark::Worse => "worse than best",
            Mark::NotTested => "not tested",
            Mark::NotARow => "not a leaderboard row",
        }
    }
}

/// One side's verdict on the leaderboard.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SideMark {
    pub mark: Mark,
    /// The leaderboard row's label (None when the side is not a row).
    pub row: Option<String>,
    /// Holm-adjusted one-sided p-value of "the best is better than this row".
    pub p_adjusted: Option<f64>,
    /// The best row of the side's data set, when tested.
    pub best: Option<String>,
    /// Rows compared with that best: the number Holm corrects for.
    pub comparisons: Option<usize>,
}

/// The leaderboard's corrected verdict on both sides, and the same in words.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeaderboardVerdict {
    /// The report whose verdict this is (`sweep report --sort mDice`).
    pub command: String,
    pub a: SideMark,
    pub b: SideMark,
    pub summary: String,
}

/// The leaderboard of `rows` sorted by `key` (as `sweep report --sort KEY` ranks and tests
/// it) and its marks for the sides with these job ids.
pub(super) fn verdict(
    rows: &[JobRow],
    evidence: &Evidence,
    sweep: Option<&str>,
    key: &MetricKey,
    split: &str,
    sides: (&[i64], &[i64]),
) -> Result<LeaderboardVerdict> {
    let opts = ReportOptions {
        sweep: sweep.map(String::from),
        sort: key.to_string(),
        split: Some(split.to_string()),
        ..Default::default()
    };
    let board = board(rows, evidence, &opts)?;
    let (a, b) = (side_mark(&board, sides.0), side_mark(&board, sides.1));
    let summary = summary(&a, &b);
    Ok(LeaderboardVerdict {
        command: command(&opts),
        a,
        b,
        summary,
    })
}

/// The `sweep report` command line that shows this leaderboard.
fn command(opts: &ReportOptions) -> String {
    let mut out = format!("sweep report --sort {}", opts.sort);
    if let Some(sweep) = &opts.sweep {
        out += &format!(" --sweep {sweep:?}");
    }
    if let Some(split) = opts.split.as_deref().filter(|s| *s != "val") {
        out += &format!(" --split {split}");
    }
    out
}

/// The leaderboard row made of exactly these jobs, if any.
fn row_of(board: &Board, job_ids: &[i64]) -> Option<usize> {
    let mut wanted = job_ids.to_vec();
    wanted.sort_unstable();
    board.groups.iter().position(|g| {
        let mut ids: Vec<i64> = g.runs.iter().map(|r| r.job_id).collect();
        ids.sort_unstable();
        ids == wanted
    })
}

fn side_mark(board: &Board, job_ids: &[i64]) -> SideMark {
    let Some(i) = row_of(board, job_ids) else {
        return SideMark {
            mark: Mark::NotARow,
            row: None,
            p_adjusted: None,
            best: None,
            comparisons: None,
        };
    };
    let test = board.test(i);
    let family = families(&board.groups).into_iter().find(|f| f.contains(&i));
    let best = family
        .and_then(|f| {
            f.into_iter()
                .find(|&k| board.test(k).is_some_and(|t| t.best))
        })
        .filter(|_| test.is_some());
    SideMark {
        mark: test.map_or(Mark::NotTested, Mark::of),
        row: Some(board.groups[i].label.clone()),
        p_adjusted: test.and_then(|t| t.p_adjusted),
        best: best.map(|k| board.groups[k].label.clone()),
        comparisons: test.map(|t| t.comparisons),
    }
}

/// `B ≈ best (adjusted p = 0.360)`.
fn marked(name: &str, side: &SideMark) -> String {
    match side.p_adjusted {
        Some(p) => format!("{name} {} (adjusted p = {p:.3})", side.mark.words()),
        None => format!("{name} {}", side.mark.words()),
    }
}

/// The verdict in words, the sides called A and B as in `compare`'s output.
fn summary(a: &SideMark, b: &SideMark) -> String {
    let tested = |s: &SideMark| s.best.is_some();
    if !(tested(a) && tested(b)) {
        return format!("{}; {}.", described("A", a), described("B", b));
    }
    if a.best != b.best {
        return format!(
            "A and B are on different data sets, which the leaderboard never compares: {}; {}.",
            described("A", a),
            described("B", b)
        );
    }
    match (a.mark, b.mark) {
        (Mark::Best, _) => holm_against("A", "B", b),
        (_, Mark::Best) => holm_against("B", "A", a),
        _ => format!(
            "each row is tested against the best row, {} (Holm-corrected over {} comparisons), \
             not against each other: {}, {}.",
            a.best.as_deref().unwrap_or_default(),
            a.comparisons.unwrap_or_default(),
            marked("A", a),
            marked("B", b)
        ),
    }
}

/// One side's mark with what it was tested against, or why it has none.
fn described(name: &str, side: &SideMark) -> String {
    match (side.mark, &side.best, side.comparisons) {
        (Mark::Best, _, _) => format!("{name} is the best row of its data set"),
        (Mark::NotTested, _, _) => format!(
            "{name} is not tested (no per-image results, no other row on its data set, or a \
             metric not made of image counts)"
        ),
        (Mark::NotARow, _, _) => format!(
            "{name} is not a leaderboard row (one job of a configuration with several runs)"
        ),
        (mark, Some(best), Some(n)) => format!(
            "{name} {} (adjusted p = {:.3}, Holm-corrected over {n} comparisons with its data \
             set's best row, {best})",
            mark.words(),
            side.p_adjusted.unwrap_or(f64::NAN)
        ),
        _ => marked(name, side),
    }
}

/// `best` is the leaderboard's best row; `other` its verdict on the other side.
fn holm_against(best: &str, name: &str, other: &SideMark) -> String {
    format!(
        "{best} is the leaderboard's best row; Holm-corrected over {} comparisons with it, the \
         leaderboard marks {}.",
        other.comparisons.unwrap_or_default(),
        marked(name, other)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(mark: Mark, p: Option<f64>, best: &str) -> SideMark {
        SideMark {
            mark,
            row: Some("row".into()),
            p_adjusted: p,
            best: Some(best.into()),
            comparisons: Some(8),
        }
    }

    #[test]
    fn the_summary_names_the_corrected_verdict() {
        let best = side(Mark::Best, None, "X");
        let close = side(Mark::Indistinguishable, Some(0.36), "X");
        assert_eq!(
            summary(&best, &close),
            "A is the leaderboard's best row; Holm-corrected over 8 comparisons with it, the \
             leaderboard marks B ≈ best (adjusted p = 0.360)."
        );
        let elsewhere = side(Mark::Worse, Some(0.01), "Y");
        assert!(summary(&close, &elsewhere).starts_with("A and B are on different data sets"));
        let untested = SideMark {
            mark: Mark::NotTested,
            row: Some("row".into()),
            p_adjusted: None,
            best: None,
            comparisons: None,
        };
        assert_eq!(
            summary(&close, &untested),
            "A ≈ best (adjusted p = 0.360, Holm-corrected over 8 comparisons \
             with its data set's best row, X); B is not tested (no per-image results, no other \
             row on its data set, or a metric not made of image counts)."
        );
    }
}
