//! One job type, two kinds: the built-in trainer's [`JobConfig`] or the user's program
//! ([`CommandJob`]). The scheduler, the store and the report hold a [`JobSpec`] and ask it
//! what they need (identity, label, seed, length); only the trainer looks inside a
//! `JobConfig`.
//!
//! Stored as the kind's own JSON (a trainer job's exactly as before command jobs existed,
//! so stored hashes and rows stay valid); a command job's JSON is the one with `command`.

use super::{CommandJob, JobConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

// One value per job, built once and rarely moved: boxing the trainer's config would only add
// an indirection to every read of it.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum JobSpec {
    Train(JobConfig),
    Command(CommandJob),
}

impl JobSpec {
    /// The job's identity in the store.
    pub fn hash(&self) -> String {
        match self {
            JobSpec::Train(c) => c.hash(),
            JobSpec::Command(c) => c.hash(),
        }
    }

    /// The built-in trainer's config, for code that trains or reads images.
    pub fn train(&self) -> Option<&JobConfig> {
        match self {
            JobSpec::Train(c) => Some(c),
            JobSpec::Command(_) => None,
        }
    }

    pub fn command(&self) -> Option<&CommandJob> {
        match self {
            JobSpec::Command(c) => Some(c),
            JobSpec::Train(_) => None,
        }
    }

    pub fn seed(&self) -> u64 {
        match self {
            JobSpec::Train(c) => c.seed,
            JobSpec::Command(c) => c.seed(),
        }
    }

    /// Iterations, when known before the job runs (a command job's program says so itself
    /// with its `started` line, or never).
    pub fn iters(&self) -> Option<usize> {
        match self {
            JobSpec::Train(c) => Some(c.iters),
            JobSpec::Command(c) => c
                .params
                .get("iters")
                .and_then(serde_json::Value::as_u64)
                .map(|n| n as usize),
        }
    }

    /// `fold k/N` (1-based) of a cross-validated job.
    pub fn fold_label(&self) -> Option<String> {
        match self {
            JobSpec::Train(c) => c.data.split.fold_label(),
            JobSpec::Command(c) => c.fold().map(|(k, n)| format!("fold {}/{n}", k + 1)),
        }
    }

    /// The label's first part: `UNet + FCN, crop 256, 200 it, ce`, or the program's name.
    pub fn label(&self) -> String {
        match self {
            JobSpec::Train(c) => c.label(),
            JobSpec::Command(c) => c.program_name(),
        }
    }

    /// Reads a stored job's JSON, naming what is wrong.
    pub fn from_json(json: &str) -> Result<JobSpec, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a job spec serialises")
    }
}

impl From<JobConfig> for JobSpec {
    fn from(c: JobConfig) -> Self {
        JobSpec::Train(c)
    }
}

impl Serialize for JobSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            JobSpec::Train(c) => c.serialize(s),
            JobSpec::Command(c) => c.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for JobSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        let is_command = value.get("command").is_some();
        if is_command {
            serde_json::from_value(value).map(JobSpec::Command)
        } else {
            serde_json::from_value(value).map(JobSpec::Train)
        }
        .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trainer_job_stores_as_its_config_and_reads_back() {
        let c = JobConfig::default();
        let spec = JobSpec::from(c.clone());
        assert_eq!(spec.to_json(), serde_json::to_string(&c).unwrap());
        assert_eq!(spec.hash(), c.hash());
        assert_eq!(JobSpec::from_json(&spec.to_json()).unwrap(), spec);
    }

    #[test]
    fn a_command_job_reads_back_as_one() {
        let json = r#"{"command": ["./train", "${args}"], "params": {"lr": 0.1, "seed": 2}, "workdir": "/w"}"#;
        let spec = JobSpec::from_json(json).unwrap();
        assert_eq!(spec.seed(), 2);
        assert_eq!(spec.label(), "train");
        assert!(spec.train().is_none());
        assert_eq!(JobSpec::from_json(&spec.to_json()).unwrap(), spec);
        let bad =
            JobSpec::from_json(r#"{"command": ["x"], "params": {}, "workdir": "/", "oops": 1}"#);
        assert!(bad.unwrap_err().to_string().contains("oops"));
    }
}
