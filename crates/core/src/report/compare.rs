//! `sweep compare A B`: is one configuration (or job) better than another, and by how much?
//!
//! With per-image results on both sides: the paired bootstrap over validation images and
//! seeds (the same test as the leaderboard's "≈ best" column). Without them but with two or
//! more seeds on each side: Welch's t-test over the seeds' values. Single runs without
//! per-image results cannot be compared honestly, and the command says so.
//!
//! Its p-value is one uncorrected test of this pair; the output adds the leaderboard's
//! Holm-corrected verdict on the same two sides ([`LeaderboardVerdict`]), which can differ.

use super::compare_leaderboard;
pub use super::compare_leaderboard::{LeaderboardVerdict, Mark, SideMark};
use super::select;
use super::significance::{build_arms, metric_fn, Evidence, BOOTSTRAP_SEED, REPLICATES};
use super::{group_rows, Group, MetricKey};
use crate::stats;
use crate::store::Store;
use anyhow::{anyhow, bail, Result};
use serde::Serialize;

/// What was compared and what the test said.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub metric: String,
    pub a: Side,
    pub b: Side,
    /// a − b, observed.
    pub diff: f64,
    pub ci95: (f64, f64),
    pub p_two_sided: f64,
    /// Always false: one test of this pair, not corrected for the leaderboard's other
    /// comparisons (see `leaderboard`).
    pub p_corrected: bool,
    pub test: String,
    pub verdict: String,
    /// The leaderboard's Holm-corrected verdict on the same two sides.
    pub leaderboard: LeaderboardVerdict,
}

/// One side of a comparison: a configuration's runs (seeds, folds) or one job.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    pub label: String,
    pub job_ids: Vec<i64>,
    pub value: f64,
}

fn side(g: &Group, key: &MetricKey, split: &str) -> Side {
    Side {
        label: g.label.clone(),
        job_ids: g.runs.iter().map(|r| r.job_id).collect(),
        value: g.stat(key, Some(split)).map_or(f64::NAN, |s| s.mean),
    }
}

/// Compares `a` and `b` on `metric` (the `split` metrics, `val` by default).
pub async fn compare(
    store: &dyn Store,
    sweep: Option<&str>,
    a: &str,
    b: &str,
    metric: &str,
    split: &str,
) -> Result<Comparison> {
    let rows = select::succeeded_rows(store, sweep).await?;
    let key = MetricKey::parse_in(metric, &rows)?;
    let groups = group_rows(&rows, false);
    let ga = select::group(store, &rows, &groups, a).await?;
    let gb = select::group(store, &rows, &groups, b).await?;
    if ga
        .runs
        .iter()
        .any(|r| gb.runs.iter().any(|o| o.job_id == r.job_id))
    {
        bail!("{a:?} and {b:?} select the same job(s): nothing to compare");
    }
    let evidence = Evidence::load(store, &rows).await?;
    let (sa, sb) = (side(&ga, &key, split), side(&gb, &key, split));
    let mut out = match (metric_fn(&key), build_arms(&[&ga, &gb], split, &evidence)) {
        (Some(f), Some(arms)) if arms.arms.len() == 2 => {
            let d = stats::compare(
                &arms.arms[0],
                &arms.arms[1],
                &*f,
                REPLICATES,
                BOOTSTRAP_SEED,
            )?;
            let seeds = (arms.arms[0].runs.len(), arms.arms[1].runs.len());
            let test = format!(
                "paired bootstrap over {} validation images and seeds ({} vs {} runs; {} replicates, seed {})",
                arms.images, seeds.0, seeds.1, d.replicates, BOOTSTRAP_SEED
            );
            (d.diff, d.ci95, d.p_two_sided, test)
        }
        _ => welch_over_runs(&ga, &gb, &key, split)?,
    };
    let verdict = verdict(&sa.label, &sb.label, &key, out.0, out.2);
    let test = std::mem::take(&mut out.3);
    let sides = (sa.job_ids.as_slice(), sb.job_ids.as_slice());
    let leaderboard = compare_leaderboard::verdict(&rows, &evidence, sweep, &key, split, sides)?;
    Ok(Comparison {
        metric: key.to_string(),
        a: sa,
        b: sb,
        diff: out.0,
        ci95: out.1,
        p_two_sided: out.2,
        p_corrected: false,
        test,
        verdict,
        leaderboard,
    })
}

/// Welch's t-test on the runs' values, when no per-image results exist on both sides.
fn welch_over_runs(
    a: &Group,
    b: &Group,
    key: &MetricKey,
    split: &str,
) -> Result<(f64, (f64, f64), f64, String)> {
    let values = |g: &Group| {
        g.stat(key, Some(split))
            .map(|s| s.values)
            .unwrap_or_default()
    };
    let (va, vb) = (values(a), values(b));
    let t = stats::welch(&va, &vb).ok_or_else(|| {
        anyhow!(
            "cannot compare {key}: without per-image results on both sides (jobs recorded by sweep \
             0.2 or earlier) a comparison needs at least 2 runs (seeds) on each side with some \
             spread; found {} and {}",
            va.len(),
            vb.len()
        )
    })?;
    let test = format!(
        "Welch's t-test over runs ({} vs {}, df {:.1}); no per-image results on both sides",
        va.len(),
        vb.len(),
        t.df
    );
    Ok((t.diff, t.ci95, t.p_two_sided, test))
}

/// The result in words.
fn verdict(a: &str, b: &str, key: &MetricKey, diff: f64, p: f64) -> String {
    if p < 0.05 {
        let (hi, lo) = if diff > 0.0 { (a, b) } else { (b, a) };
        format!(
            "{hi} scores higher {key} than {lo} by {:.2} points; a difference this large is unlikely \
             to be noise (p = {p:.3} < 0.05).",
            diff.abs()
        )
    } else {
        format!(
            "No evidence of a difference in {key} between {a} and {b} (p = {p:.3}): the 95% interval \
             includes 0, so the data cannot tell them apart."
        )
    }
}

/// The comparison as text.
pub fn render(c: &Comparison) -> String {
    format!(
        "{metric}: A = {a} ({va:.2}, jobs {ja:?})\n{metric}: B = {b} ({vb:.2}, jobs {jb:?})\n\
         A − B = {diff:+.2} (95% CI {lo:+.2} to {hi:+.2}), p = {p:.4} (a single test of this \
         pair, not corrected for multiple comparisons)\ntest: {test}\nverdict: {verdict}\n\
         leaderboard ({command}): {board}\n",
        metric = c.metric,
        a = c.a.label,
        va = c.a.value,
        ja = c.a.job_ids,
        b = c.b.label,
        vb = c.b.value,
        jb = c.b.job_ids,
        diff = c.diff,
        lo = c.ci95.0,
        hi = c.ci95.1,
        p = c.p_two_sided,
        test = c.test,
        verdict = c.verdict,
        board = c.leaderboard.summary,
        command = c.leaderboard.command,
    )
}
