//! A sweep with everything recorded about it, as `sweep db copy` moves it between databases.
//!
//! Jobs are identified across databases by (sweep name, job hash): ids are each database's
//! own. A job running at export time arrives as `interrupted` (its owner and lease belong to
//! the source's agents), so the target can resume it.

use super::{AttemptRow, CurvePoint};
use crate::protocol::{ImageMetric, MetricValue};

#[derive(Clone, Debug, PartialEq)]
pub struct SweepDump {
    pub name: String,
    pub spec_path: String,
    pub spec_text: String,
    pub runs_dir: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub jobs: Vec<JobDump>,
}

/// One job row with its metrics, curves, per-image results, artifacts and attempts.
#[derive(Clone, Debug, PartialEq)]
pub struct JobDump {
    pub hash: String,
    pub stage: Option<String>,
    pub label: String,
    pub config_json: String,
    pub seed: i64,
    pub depends_on: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub failures: i64,
    pub max_attempts: i64,
    pub owner: Option<String>,
    pub heartbeat_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub iteration: i64,
    pub total_iters: Option<i64>,
    pub error: Option<String>,
    pub stderr_tail: Option<String>,
    pub artifact_dir: Option<String>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub sweep_version: Option<String>,
    pub slurm_job: Option<String>,
    /// Class names of the job's data set (JSON array), when recorded.
    pub classes: Option<String>,
    pub data_fingerprint: Option<String>,
    /// What marks a row scored from another program's predictions (JSON), if it is one.
    pub external: Option<String>,
    /// `depends_on` is a shorter run of the same training that this job continues.
    pub continues: bool,
    pub metrics: Vec<MetricValue>,
    pub curve: Vec<CurvePoint>,
    pub eval: Vec<(usize, MetricValue)>,
    pub images: Vec<ImageMetric>,
    /// (kind, path, iteration, created_at), oldest first.
    pub artifacts: Vec<(String, String, Option<i64>, i64)>,
    pub attempt_rows: Vec<AttemptRow>,
}

/// What one import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopySummary {
    pub sweeps_added: usize,
    pub jobs_added: usize,
    /// Already in the target (same sweep name and hash): left as they were.
    pub jobs_skipped: usize,
}

impl CopySummary {
    pub fn add(&mut self, other: CopySummary) {
        self.sweeps_added += other.sweeps_added;
        self.jobs_added += other.jobs_added;
        self.jobs_skipped += other.jobs_skipped;
    }
}
