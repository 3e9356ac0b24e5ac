//! `sweep show JOB`: one job in full: its resolved config, status, every attempt with the
//! reason it ended, its metrics, its curve, its artifact folder and the tail of its log.
//!
//! [`JobView::load`] reads everything once; the terminal text ([`JobView::text`]) and the
//! JSON ([`JobView::json`]) are two renderings of the same value, so they cannot disagree.

use crate::job::{FailureKind, JobStatus};
use crate::metrics::surface::Presence;
use crate::protocol::{ImageMetric, MetricValue, WORKER_LOG};
use crate::store::{AttemptRow, CurvePoint, External, JobRow, Store};
use anyhow::Result;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;

/// Lines of the job's log shown.
const LOG_TAIL_LINES: usize = 20;

/// One job as `sweep show` presents it. Times are unix milliseconds (as the dashboard's
/// API); NaN is null, as in every JSON output.
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    pub job_id: i64,
    pub hash: String,
    pub sweep: String,
    pub label: String,
    pub stage: Option<String>,
    pub status: JobStatus,
    /// No longer produced by the sweep file.
    pub retired: bool,
    /// The first line of why the job failed, diverged or was released.
    pub reason: Option<String>,
    pub seed: u64,
    pub iteration: usize,
    pub total_iters: Option<usize>,
    /// Attempts claimed, a running one included (`attempts` lists those that ended).
    pub attempts_claimed: u32,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The sweep build that produced the result.
    pub sweep_version: Option<String>,
    /// The resolved config (the stored canonical JSON, as an object).
    pub config: Value,
    /// Class names of the job's data set by id (empty when not recorded).
    pub classes: Vec<String>,
    /// `train:<hex> val:<hex>`: the files its result was trained and scored on.
    pub data_fingerprint: Option<String>,
    /// Scored from another program's predictions (`sweep evaluate`), not trained here.
    pub external: Option<External>,
    pub attempts: Vec<AttemptView>,
    /// `{split: {"mDice": 81.2, "Dice.1": 70.3, ...}}`, keyed as `report --format json`.
    #[serde(serialize_with = "metrics_by_split")]
    pub metrics: Vec<MetricValue>,
    pub curve: Option<CurveSummary>,
    pub artifact_dir: Option<String>,
    pub artifacts: Vec<Artifact>,
    pub log: Option<LogTail>,
    /// Per image and class; only with `--images` (empty when the job recorded none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<ImageMetric>>,
}

/// One ended attempt: the stored row and what the table calls its outcome.
#[derive(Clone, Debug, Serialize)]
pub struct AttemptView {
    #[serde(flatten)]
    pub row: AttemptRow,
    /// `retried` (a failure tried again), else the job's status after it.
    pub outcome: String,
    /// The owner's host (`owner` is `host:pid:nonce`).
    pub host: Option<String>,
}

/// The training curve in brief (the full curve: `sweep plot`, the dashboard).
#[derive(Clone, Debug, Serialize)]
pub struct CurveSummary {
    pub points: usize,
    pub last: CurvePoint,
    /// The lowest finite loss, null when none is finite.
    pub min_loss: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Artifact {
    pub kind: String,
    pub path: String,
    pub iteration: Option<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LogTail {
    pub path: String,
    /// The last lines (at most 20).
    pub lines: Vec<String>,
}

/// The job `selector` names (id, hash prefix or label), rendered for a terminal; with
/// `images`, also its per-image results.
pub async fn show(store: &dyn Store, selector: &str, images: bool) -> Result<String> {
    Ok(JobView::load(store, selector, images).await?.text())
}

impl JobView {
    /// Reads the job `selector` names and everything recorded about it.
    pub async fn load(store: &dyn Store, selector: &str, images: bool) -> Result<JobView> {
        let job = store.find_job(selector).await?;
        let attempts = store.attempts(job.job_id).await?;
        let curve = curve_summary(&store.curve(job.job_id).await?);
        let images = if images {
            Some(store.image_metrics(job.job_id).await?)
        } else {
            None
        };
        // The artifacts and the log live in the job's folder: none without one.
        let (artifacts, log) = match &job.artifact_dir {
            Some(dir) => (
                store.artifacts(job.job_id).await?,
                log_tail(&Path::new(dir).join(WORKER_LOG)),
            ),
            None => (Vec::new(), None),
        };
        let mut view = JobView::from_row(job);
        view.attempts = attempts.into_iter().map(AttemptView::from).collect();
        view.curve = curve;
        view.images = images;
        view.log = log;
        view.artifacts = artifacts
            .into_iter()
            .map(|(kind, path, iteration)| Artifact {
                kind,
                path,
                iteration,
            })
            .collect();
        Ok(view)
    }

    fn from_row(job: JobRow) -> JobView {
        JobView {
            reason: job.reason().map(str::to_string),
            config: serde_json::from_str(&job.config_json)
                .unwrap_or(Value::String(job.config_json)),
            job_id: job.job_id,
            hash: job.hash,
            sweep: job.sweep,
            label: job.label,
            stage: job.stage,
            status: job.status,
            retired: job.retired,
            seed: job.seed,
            iteration: job.iteration,
            total_iters: job.total_iters,
            attempts_claimed: job.attempts,
            started_at: job.started_at,
            finished_at: job.finished_at,
            sweep_version: job.sweep_version,
            classes: job.classes,
            data_fingerprint: job.data_fingerprint,
            external: job.external,
            metrics: job.metrics,
            attempts: Vec::new(),
            curve: None,
            artifact_dir: job.artifact_dir,
            artifacts: Vec::new(),
            log: None,
            images: None,
        }
    }

    /// Pretty JSON.
    pub fn json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// The terminal rendering.
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out).expect("writing to a String");
        out.trim_end().to_string()
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        self.header(out)?;
        writeln!(out, "\nconfig:")?;
        for line in config_yaml(&self.config).lines() {
            writeln!(out, "  {line}")?;
        }
        if !self.attempts.is_empty() {
            writeln!(out, "\nattempts:\n{}", attempts_table(&self.attempts))?;
        }
        if !self.metrics.is_empty() {
            writeln!(
                out,
                "\nmetrics:\n{}",
                metrics_table(&self.metrics, &self.classes)
            )?;
        }
        match self.images.as_deref() {
            Some([]) => writeln!(
                out,
                "\nper-image results: none recorded (sweep 0.2 and earlier did not)"
            )?,
            Some(rows) => writeln!(
                out,
                "\nper-image results:\n{}",
                images_table(rows, &self.classes)
            )?,
            None => {}
        }
        self.files(out)
    }

    fn header(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "job {} ({}) of sweep {}",
            self.job_id, self.hash, self.sweep
        )?;
        writeln!(out, "  model      {}", self.label)?;
        if let Some(stage) = &self.stage {
            writeln!(out, "  stage      {stage}")?;
        }
        let retired = if self.retired { " (retired)" } else { "" };
        writeln!(out, "  status     {}{retired}", self.status)?;
        if let Some(reason) = &self.reason {
            writeln!(out, "  reason     {reason}")?;
        }
        if let Some(e) = &self.external {
            let when = self
                .finished_at
                .map(super::external::utc)
                .unwrap_or_default();
            writeln!(
                out,
                "  external   predictions from {} ({} cases, content {}), scored {when}",
                e.predictions, e.cases, e.content
            )?;
        } else {
            let total = self.total_iters.map_or("?".into(), |t| t.to_string());
            writeln!(out, "  iteration  {}/{total}", self.iteration)?;
            writeln!(out, "  attempts   {}", self.attempts_claimed)?;
        }
        if let Some(c) = &self.curve {
            let min = c.min_loss.map_or("-".into(), |l| format!("{l:.4}"));
            writeln!(
                out,
                "  curve      {} points, loss {:.4} at iteration {} (lowest {min})",
                c.points, c.last.loss, c.last.iteration
            )?;
        }
        if let Some(v) = &self.sweep_version {
            let by = if self.external.is_some() {
                "scored by"
            } else {
                "result by"
            };
            writeln!(out, "  {by}  sweep {v}")?;
        }
        if let Some(d) = &self.data_fingerprint {
            writeln!(out, "  data       {d}")?;
        }
        Ok(())
    }

    /// The artifact folder, its files and the log's tail.
    fn files(&self, out: &mut String) -> std::fmt::Result {
        let Some(dir) = &self.artifact_dir else {
            return Ok(());
        };
        writeln!(out, "\nartifacts: {dir}")?;
        for a in &self.artifacts {
            let at = a
                .iteration
                .map(|i| format!(" (iteration {i})"))
                .unwrap_or_default();
            writeln!(out, "  {:<10} {}{at}", a.kind, a.path)?;
        }
        if let Some(log) = &self.log {
            writeln!(out, "\nlog ({WORKER_LOG}, last {LOG_TAIL_LINES} lines):")?;
            for line in &log.lines {
                writeln!(out, "  {line}")?;
            }
        }
        Ok(())
    }
}

impl From<AttemptRow> for AttemptView {
    fn from(row: AttemptRow) -> AttemptView {
        let outcome = match row.ended_as {
            JobStatus::Pending => "retried".to_string(),
            s => s.to_string(),
        };
        let host = row
            .owner
            .as_deref()
            .and_then(|o| o.split(':').next())
            .map(str::to_string);
        AttemptView { row, outcome, host }
    }
}

fn curve_summary(points: &[CurvePoint]) -> Option<CurveSummary> {
    let min_loss = points
        .iter()
        .map(|p| p.loss)
        .filter(|l| l.is_finite())
        .min_by(f64::total_cmp);
    Some(CurveSummary {
        points: points.len(),
        last: *points.last()?,
        min_loss,
    })
}

/// Metrics as `{split: {key: value}}`, as `report --format json` writes a run's.
fn metrics_by_split<S: Serializer>(metrics: &[MetricValue], s: S) -> Result<S::Ok, S::Error> {
    super::table::by_split(metrics).serialize(s)
}

/// The config as YAML (the sweep file's language).
fn config_yaml(config: &Value) -> String {
    match config {
        Value::String(raw) => raw.clone(),
        v => serde_yaml::to_string(v).unwrap_or_else(|_| v.to_string()),
    }
}

fn attempts_table(attempts: &[AttemptView]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["attempt", "ended as", "failure", "reason", "owner"]);
    for a in attempts {
        let failure = a.row.failure.map(failure_word).unwrap_or_default();
        let reason = a.row.reason.as_deref().and_then(|r| r.lines().next());
        t.add_row(vec![
            a.row.attempt.to_string(),
            a.outcome.clone(),
            failure.to_string(),
            reason.unwrap_or("").to_string(),
            a.row.owner.clone().unwrap_or_default(),
        ]);
    }
    t
}

fn failure_word(f: FailureKind) -> String {
    format!("{f:?}").to_lowercase()
}

/// `fluid (1)` when the data set names class 1, else `1`.
fn class_cell(c: usize, classes: &[String]) -> String {
    match classes.get(c) {
        Some(name) => format!("{name} ({c})"),
        None => c.to_string(),
    }
}

fn metrics_table(metrics: &[MetricValue], classes: &[String]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["split", "metric", "class", "value"]);
    for m in metrics {
        t.add_row(vec![
            m.split.clone(),
            m.name.clone(),
            m.class
                .map(|c| class_cell(c, classes))
                .unwrap_or("mean".into()),
            format!("{:.2}", m.value),
        ]);
    }
    t
}

fn images_table(rows: &[ImageMetric], classes: &[String]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "split", "image", "class", "I", "P", "G", "Dice", "HD95", "ASSD", "unit", "class in",
    ]);
    let num = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for m in rows {
        let presence = m.presence.map(|p| match p {
            Presence::Both => "both",
            Presence::Neither => "neither",
            Presence::LabelOnly => "label only (missed)",
            Presence::PredictionOnly => "prediction only",
        });
        t.add_row(vec![
            m.split.clone(),
            m.image.clone(),
            class_cell(m.class, classes),
            m.intersect.to_string(),
            m.pred.to_string(),
            m.label.to_string(),
            num(m.dice),
            num(m.hd95),
            num(m.assd),
            m.unit.clone(),
            presence.unwrap_or("").to_string(),
        ]);
    }
    t
}

fn log_tail(path: &Path) -> Option<LogTail> {
    let text = std::fs::read_to_string(path).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    Some(LogTail {
        path: path.display().to_string(),
        lines: lines[start..].iter().map(|l| l.to_string()).collect(),
    })
}
