//! What `sweep evaluate` prints: the row recorded (or found unchanged), its metrics per
//! class as the report keys them, and where it stands on its sweep's leaderboard (rank,
//! "≈ best" and P(best) of `sweep report`'s bootstrap).

use super::{Format, ReportOptions};
use crate::external::Chosen;
use crate::store::{External, Outcome, Recorded, Store};
use anyhow::{Context, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// An external row as `sweep evaluate` reports it (`--format json` is this, serialised).
#[derive(Clone, Debug, Serialize)]
pub struct EvaluationView {
    pub sweep: String,
    /// The sweep was made for this row.
    pub sweep_created: bool,
    pub job_id: i64,
    pub hash: String,
    pub label: String,
    pub outcome: Outcome,
    /// Unix milliseconds: when the numbers shown were scored.
    pub scored_at: i64,
    /// Earlier rows of the same name that this one retired.
    pub retired: Vec<i64>,
    pub external: External,
    /// The row's `data` config (data set, folder, split).
    pub data: Value,
    pub classes: Vec<String>,
    /// The `val` metrics as the report keys them (`mDice`, `Dice.1`); NaN left out.
    pub metrics: BTreeMap<String, f64>,
    /// Files in the predictions folder that are not a case of the split (not scored).
    pub not_scored: Vec<String>,
    pub notes: Vec<String>,
    pub standing: Option<Standing>,
}

/// Where the row stands on `sweep report --sweep SWEEP` (sorted by mDice).
#[derive(Clone, Debug, Serialize)]
pub struct Standing {
    pub metric: String,
    pub rank: usize,
    pub rows: usize,
    pub best: Option<bool>,
    /// Not distinguishable from its data set's best row (null: not tested).
    pub indistinguishable: Option<bool>,
    pub prob_best: Option<f64>,
    /// The label of its data set's best row.
    pub best_row: Option<String>,
}

impl EvaluationView {
    /// Reads the recorded row back and its place on the sweep's leaderboard.
    pub async fn load(
        store: &dyn Store,
        chosen: &Chosen,
        recorded: &Recorded,
        not_scored: Vec<String>,
    ) -> Result<EvaluationView> {
        let row = store.find_job(&recorded.job_id.to_string()).await?;
        let config: Value = serde_json::from_str(&row.config_json)
            .with_context(|| format!("job {}: its stored config is not JSON", row.job_id))?;
        let metrics = super::table::by_split(&row.metrics)
            .remove("val")
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, v)| !v.is_nan())
            .collect();
        Ok(EvaluationView {
            sweep: chosen.name.clone(),
            sweep_created: chosen.created,
            job_id: row.job_id,
            hash: row.hash,
            label: row.label,
            outcome: recorded.outcome,
            scored_at: recorded.scored_at,
            retired: recorded.retired.clone(),
            external: row.external.context("the recorded row is not external")?,
            data: config.get("data").cloned().unwrap_or_default(),
            classes: row.classes,
            metrics,
            not_scored,
            notes: chosen.notes.clone(),
            standing: standing(store, &chosen.name, recorded.job_id).await?,
        })
    }

    pub fn json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    /// The terminal rendering.
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out).expect("writing to a String");
        out
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        let e = &self.external;
        let data = |k: &str| self.data.get(k).map(|v| v.to_string()).unwrap_or_default();
        writeln!(
            out,
            "{} (external): {} cases of {} ({}) from {}, scored {}",
            self.label,
            e.cases,
            data("dataset").trim_matches('"'),
            data("root").trim_matches('"'),
            e.predictions,
            utc(self.scored_at)
        )?;
        writeln!(out, "{}", self.outcome_line())?;
        writeln!(out, "{}", self.metrics_table())?;
        if let Some(a) = self.metrics.get("aAcc") {
            writeln!(out, "aAcc {a:.2}")?;
        }
        if !self.not_scored.is_empty() {
            let shown: Vec<&str> = self.not_scored.iter().take(8).map(String::as_str).collect();
            let more = if self.not_scored.len() > 8 {
                ", ..."
            } else {
                ""
            };
            writeln!(
                out,
                "not scored: {} file(s) that are not predictions of a case of the split: {}{more}",
                self.not_scored.len(),
                shown.join(", ")
            )?;
        }
        for note in &self.notes {
            writeln!(out, "note: {note}")?;
        }
        if let Some(s) = &self.standing {
            writeln!(out, "{}", self.standing_line(s))?;
        }
        Ok(())
    }

    fn outcome_line(&self) -> String {
        let made = if self.sweep_created {
            " (made now: no sweep had rows on this data set and split)"
        } else {
            ""
        };
        let at = format!(
            "job {} ({}) of sweep {}{made}",
            self.job_id, self.hash, self.sweep
        );
        match self.outcome {
            Outcome::Added => format!("recorded as {at}"),
            Outcome::Unchanged => format!(
                "unchanged: {at} already holds these files' scores under this name (scored {}); nothing written",
                utc(self.scored_at)
            ),
            Outcome::Replaced => format!(
                "recorded as {at}; it replaces job(s) {:?} of this name, now retired (`sweep report --all` shows them)",
                self.retired
            ),
        }
    }

    /// Dice, IoU, Acc and Fscore per class, and their means.
    fn metrics_table(&self) -> Table {
        let names = ["Dice", "IoU", "Acc", "Fscore"];
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(std::iter::once("class").chain(names));
        let cell = |key: String| {
            self.metrics
                .get(&key)
                .map_or("-".to_string(), |v| format!("{v:.2}"))
        };
        for (c, class) in self.classes.iter().enumerate() {
            let cells = names.iter().map(|n| cell(format!("{n}.{c}")));
            t.add_row(std::iter::once(format!("{class} ({c})")).chain(cells));
        }
        let means = names.iter().map(|n| cell(format!("m{n}")));
        t.add_row(std::iter::once("mean".to_string()).chain(means));
        t
    }

    fn standing_line(&self, s: &Standing) -> String {
        let verdict = match (s.best, s.indistinguishable) {
            _ if s.rows == 1 => "the only row so far".to_string(),
            (Some(true), _) => "the best row".to_string(),
            (_, Some(true)) => "≈ best: yes (not distinguishable from the best)".to_string(),
            (_, Some(false)) => "≈ best: no (worse than the best beyond noise)".to_string(),
            _ => "not tested (no per-image results to compare with)".to_string(),
        };
        let p = s
            .prob_best
            .map(|p| format!(", P(best) {:.0}%", 100.0 * p))
            .unwrap_or_default();
        let best = match (&s.best_row, s.best) {
            (Some(b), Some(false)) => format!("; best: {b}"),
            _ => String::new(),
        };
        format!(
            "leaderboard (`sweep report --sweep {}`): rank {} of {} by {}; {verdict}{p}{best}",
            self.sweep, s.rank, s.rows, s.metric
        )
    }
}

/// The row's place on the sweep's leaderboard, read from `sweep report --format json`.
async fn standing(store: &dyn Store, sweep: &str, job_id: i64) -> Result<Option<Standing>> {
    let opts = ReportOptions {
        sweep: Some(sweep.to_string()),
        format: Format::Json,
        ..ReportOptions::default()
    };
    let rows: Vec<Value> = serde_json::from_str(&super::report(store, &opts).await?)?;
    let has = |r: &Value| {
        r["job_ids"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|i| i.as_i64() == Some(job_id)))
    };
    let Some(row) = rows.iter().find(|r| has(r)) else {
        return Ok(None);
    };
    let same_data = |r: &Value| {
        r["config"]["data"]["dataset"] == row["config"]["data"]["dataset"]
            && r["config"]["data"]["root"] == row["config"]["data"]["root"]
    };
    let best_row = rows
        .iter()
        .find(|r| r["stats"]["best"] == Value::Bool(true) && same_data(r))
        .and_then(|r| r["model"].as_str().map(str::to_string));
    let stats = &row["stats"];
    Ok(Some(Standing {
        metric: stats["metric"].as_str().unwrap_or("mDice").to_string(),
        rank: row["rank"].as_u64().unwrap_or(0) as usize,
        rows: rows.len(),
        best: stats["best"].as_bool(),
        indistinguishable: stats["indistinguishable"].as_bool(),
        prob_best: stats["prob_best"].as_f64(),
        best_row,
    }))
}

/// Unix milliseconds as `2025-03-01 14:05 UTC` (the proleptic Gregorian calendar).
pub fn utc(ms: i64) -> String {
    let (days, secs) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000) / 1000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00 UTC");
        // 2024-02-29 13:37:00 UTC (a leap day).
        assert_eq!(super::utc(1_709_213_820_000), "2024-02-29 13:37 UTC");
    }
}
