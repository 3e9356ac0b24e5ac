//! A job: one resolved configuration (the built-in trainer's or the user's program's), its
//! identity and its human label.

pub mod command;
pub mod config;
pub mod spec;
pub mod status;

pub use command::CommandJob;
pub use config::*;
pub use spec::JobSpec;
pub use status::{FailureKind, JobStatus, RetryRule};

use sha2::{Digest, Sha256};

/// A config problem, naming the dotted field it is about.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The identity of a job that starts from another's final checkpoint: its config's hash
/// chained with the dependency's identity, so that changing a stage makes its dependants new
/// jobs (their results started from other weights) while an unchanged sweep keeps them.
pub fn chained_hash(config_hash: &str, dependency: &str) -> String {
    let digest = Sha256::digest(format!("{config_hash}<-{dependency}").as_bytes());
    hex::encode(&digest[..8])
}

/// `Err` of a [`ConfigError`] about `field`.
fn invalid(field: &str, message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError::new(field, message))
}

impl JobConfig {
    /// Content hash of the canonical JSON: the job's identity in the store.
    pub fn hash(&self) -> String {
        let canonical = serde_json::to_string(self).expect("JobConfig serialises");
        let digest = Sha256::digest(canonical.as_bytes());
        hex::encode(&digest[..8])
    }

    /// Checks values that the types cannot: the job is rejected before it starts. (Names
    /// such as the backbone, data set, schedule and eval mode are enums: serde rejects an
    /// unknown one while reading, with the sweep file's line and a suggestion.)
    pub fn validate(&self) -> Result<(), ConfigError> {
        // In this order, so that a config with several problems reports the same one first.
        self.validate_geometry()?;
        self.validate_length()?;
        self.validate_model()?;
        self.validate_data()?;
        self.validate_optimizer()?;
        self.validate_losses()?;
        self.validate_init()
    }

    /// Crops and windows: the network downsamples 4 times, so sizes are multiples of 16.
    fn validate_geometry(&self) -> Result<(), ConfigError> {
        if self.crop == 0 || self.crop % 16 != 0 {
            return invalid(
                "crop",
                format!(
                    "{} is not a positive multiple of 16 (UNet-S5-D16 downsamples 4 times)",
                    self.crop
                ),
            );
        }
        if self.eval.crop == 0 || self.eval.crop % 16 != 0 {
            return invalid(
                "eval.crop",
                format!("{} is not a positive multiple of 16", self.eval.crop),
            );
        }
        if self.eval.stride == 0 {
            return invalid("eval.stride", "must be positive");
        }
        for (i, s) in self.data.scale.iter().enumerate() {
            if *s == 0 {
                return invalid(&format!("data.scale[{i}]"), "must be positive");
            }
        }
        Ok(())
    }

    /// Iterations and batch.
    fn validate_length(&self) -> Result<(), ConfigError> {
        // 0 iterations is an evaluation-only job, which needs weights from somewhere.
        if self.iters == 0 && self.init.is_none() {
            return invalid(
                "iters",
                "must be positive, or 0 with `init` (evaluation only: init.from or init.path gives the weights)",
            );
        }
        if self.batch == 0 {
            return invalid("batch", "must be positive");
        }
        Ok(())
    }

    fn validate_model(&self) -> Result<(), ConfigError> {
        let m = &self.model;
        if m.base_channels == 0 {
            return invalid("model.base_channels", "must be positive");
        }
        if m.num_classes < 2 {
            return invalid("model.num_classes", "must be at least 2");
        }
        if !(0.0..1.0).contains(&m.dropout) {
            return invalid("model.dropout", format!("{} is not in [0, 1)", m.dropout));
        }
        Ok(())
    }

    fn validate_data(&self) -> Result<(), ConfigError> {
        self.data.split.validate()?;
        if !(0.0..=1.0).contains(&self.data.flip) {
            return invalid(
                "data.flip",
                format!("{} is not a probability", self.data.flip),
            );
        }
        Ok(())
    }

    fn validate_optimizer(&self) -> Result<(), ConfigError> {
        if self.optimizer.lr() <= 0.0 {
            return invalid("optimizer.lr", "must be positive");
        }
        Ok(())
    }

    /// Every loss has a term, and class weights (if any) one value per class.
    fn validate_losses(&self) -> Result<(), ConfigError> {
        for (name, spec) in [
            ("loss", Some(&self.loss)),
            ("aux_loss", self.aux_loss.as_ref()),
        ] {
            let Some(spec) = spec else { continue };
            let terms = spec.terms();
            if terms.is_empty() {
                return invalid(name, "needs at least one term");
            }
            for (i, t) in terms.iter().enumerate() {
                if let Some(w) = &t.class_weight {
                    if w.len() != self.model.num_classes {
                        return invalid(
                            &format!("{name}[{i}].class_weight"),
                            format!(
                                "has {} values for {} classes",
                                w.len(),
                                self.model.num_classes
                            ),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_init(&self) -> Result<(), ConfigError> {
        if let Some(init) = &self.init {
            if init.from.is_some() == init.path.is_some() {
                return invalid(
                    "init",
                    "give exactly one of `from` (a job of this sweep) or `path` (a checkpoint file)",
                );
            }
        }
        Ok(())
    }

    /// Whether the learning rate at an iteration depends on how long the job runs: a poly
    /// schedule without `horizon` decays over `iters`. Only when it does not is the first k
    /// iterations of this job the same training as a k-iteration job (a shared prefix, an
    /// adaptive search's rung).
    pub fn schedule_depends_on_iters(&self) -> bool {
        self.schedule.kind == ScheduleKind::Poly && self.schedule.horizon.is_none()
    }

    /// This config run for `iters` iterations instead: what a shorter job with the same
    /// training would be. With a schedule independent of `iters`, its checkpoint at the end
    /// is this job's state at iteration `iters` (the hash of it is what a continued job checks).
    pub fn with_iters(&self, iters: usize) -> JobConfig {
        JobConfig {
            iters,
            ..self.clone()
        }
    }

    /// The study's "Model" column: `UNet + DeepLabV3, crop 320, 200 it, dice`.
    pub fn label(&self) -> String {
        format!(
            "UNet + {}, crop {}, {} it, {}",
            self.model.head.display(),
            self.crop,
            self.iters,
            self.loss.label()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_studys_recipe() {
        let c = JobConfig::default();
        assert_eq!(c.crop, 256);
        assert_eq!(c.iters, 200);
        assert_eq!(c.batch, 2);
        assert_eq!(c.optimizer.lr(), 0.01);
        assert_eq!(c.label(), "UNet + FCN, crop 256, 200 it, ce");
        c.validate().unwrap();
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let a = JobConfig::default();
        let mut b = a.clone();
        assert_eq!(a.hash(), b.hash());
        b.seed = 1;
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn crop_must_be_multiple_of_16() {
        let c = JobConfig {
            crop: 250,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "crop");
    }
}
