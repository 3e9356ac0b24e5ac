//! A job: one resolved training configuration, its identity and its human label.

pub mod config;
pub mod status;

pub use config::*;
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

impl JobConfig {
    /// Content hash of the canonical JSON: the job's identity in the store.
    pub fn hash(&self) -> String {
        let canonical = serde_json::to_string(self).expect("JobConfig serialises");
        let digest = Sha256::digest(canonical.as_bytes());
        hex::encode(&digest[..8])
    }

    /// Checks values that the types cannot: the job is rejected before it starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |f: &str, m: String| Err(ConfigError::new(f, m));
        if self.crop == 0 || self.crop % 16 != 0 {
            return err(
                "crop",
                format!(
                    "{} is not a positive multiple of 16 (UNet-S5-D16 downsamples 4 times)",
                    self.crop
                ),
            );
        }
        if self.eval.crop == 0 || self.eval.crop % 16 != 0 {
            return err(
                "eval.crop",
                format!("{} is not a positive multiple of 16", self.eval.crop),
            );
        }
        if self.eval.stride == 0 {
            return err("eval.stride", "must be positive".into());
        }
        if !matches!(self.eval.mode.as_str(), "slide" | "whole") {
            return err(
                "eval.mode",
                format!(
                    "unknown mode {:?} (expected slide or whole)",
                    self.eval.mode
                ),
            );
        }
        for (i, s) in self.data.scale.iter().enumerate() {
            if *s == 0 {
                return err(&format!("data.scale[{i}]"), "must be positive".into());
            }
        }
        if self.iters == 0 && self.init.is_none() {
            return err(
                "iters",
                "must be positive, or 0 with `init` (evaluation only: init.from or init.path gives the weights)"
                    .into(),
            );
        }
        if self.batch == 0 {
            return err("batch", "must be positive".into());
        }
        if !matches!(self.model.backbone.as_str(), "unet-s5-d16" | "noop") {
            return err(
                "model.backbone",
                format!(
                    "unknown backbone {:?} (expected unet-s5-d16 or noop)",
                    self.model.backbone
                ),
            );
        }
        if self.model.base_channels == 0 {
            return err("model.base_channels", "must be positive".into());
        }
        if self.model.num_classes < 2 {
            return err("model.num_classes", "must be at least 2".into());
        }
        if !(0.0..1.0).contains(&self.model.dropout) {
            return err(
                "model.dropout",
                format!("{} is not in [0, 1)", self.model.dropout),
            );
        }
        if !matches!(self.data.dataset.as_str(), "dme" | "chase_db1") {
            return err(
                "data.dataset",
                format!(
                    "unknown data set {:?} (expected dme or chase_db1)",
                    self.data.dataset
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.data.flip) {
            return err(
                "data.flip",
                format!("{} is not a probability", self.data.flip),
            );
        }
        if !matches!(self.schedule.kind.as_str(), "poly" | "constant") {
            return err(
                "schedule.type",
                format!(
                    "unknown schedule {:?} (expected poly or constant)",
                    self.schedule.kind
                ),
            );
        }
        if self.optimizer.lr() <= 0.0 {
            return err("optimizer.lr", "must be positive".into());
        }
        for (name, spec) in [
            ("loss", Some(&self.loss)),
            ("aux_loss", self.aux_loss.as_ref()),
        ] {
            let Some(spec) = spec else { continue };
            let terms = spec.terms();
            if terms.is_empty() {
                return err(name, "needs at least one term".into());
            }
            for (i, t) in terms.iter().enumerate() {
                if let Some(w) = &t.class_weight {
                    if w.len() != self.model.num_classes {
                        return err(
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
        if let Some(init) = &self.init {
            if init.from.is_some() == init.path.is_some() {
                return err("init", "give exactly one of `from` (a job of this sweep) or `path` (a checkpoint file)".into());
            }
        }
        Ok(())
    }

    /// The study's "Model" column: `UNet + DeepLabV3, crop 320, 200 it, dice`.
    pub fn label(&self) -> String {
        if self.model.backbone == "noop" {
            return format!("noop, {} it", self.iters);
        }
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
