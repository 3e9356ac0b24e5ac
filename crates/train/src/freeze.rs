//! `freeze`: parts of the network whose parameters and batch-norm statistics stay fixed.
//!
//! Names (the `backbone.` prefix is optional on encoder / decoder names):
//!
//! | name              | frozen                                                        |
//! |-------------------|---------------------------------------------------------------|
//! | `backbone`        | the whole UNet (encoder and decoder)                          |
//! | `encoder`         | all 5 encoder stages                                          |
//! | `encoder.<i>`     | encoder stage `i` (0..=4; stage 0 is full resolution)         |
//! | `encoder:<n>`     | the first `n` encoder stages, 0..n (1..=5): `encoder:3` = 0, 1, 2 |
//! | `decoder`         | all 4 decoder blocks                                          |
//! | `decoder.<k>`     | decoder block `k` (0..=3, MMSeg's order: 3 runs first, 0 last) |
//! | `decode_head`     | the decode head                                               |
//! | `auxiliary_head`  | the auxiliary FCN head                                        |
//!
//! A frozen part is burn's [`Module::freeze`]: its tensors stop requiring gradients (so
//! `GradientsParams` has none for them and the optimiser, weight decay included, never
//! touches them) and its batch norms stop training, so they normalise with their running
//! statistics and never update them (MMSeg's `norm_eval` for that part). Channel dropout of a
//! frozen head still applies while training (it has no parameters to keep fixed).

use super::model::unet::NUM_STAGES;
use super::model::Segmentor;
use burn::module::Module;
use sweep_core::job::{ConfigError, ModelConfig};

/// What `freeze` accepts, for error messages.
pub const FREEZE_NAMES: &str = "backbone, encoder, encoder.<0-4>, encoder:<1-5> (the first N stages), \
decoder, decoder.<0-3>, decode_head, auxiliary_head (encoder/decoder names may start with `backbone.`)";

const DECODER_BLOCKS: usize = NUM_STAGES - 1;

/// One module that a `freeze` name covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    EncoderStage(usize),
    DecoderBlock(usize),
    DecodeHead,
    AuxiliaryHead,
}

impl Part {
    /// The module path of the part; every tensor under it starts with this plus `.`.
    pub fn path(&self) -> String {
        match self {
            Part::EncoderStage(i) => format!("backbone.encoder.{i}"),
            Part::DecoderBlock(k) => format!("backbone.decoder.{k}"),
            Part::DecodeHead => "decode_head".into(),
            Part::AuxiliaryHead => "auxiliary_head".into(),
        }
    }
}

/// The parts one `freeze` name covers, or None for an unknown name.
pub fn parse(name: &str) -> Option<Vec<Part>> {
    let rest = name.strip_prefix("backbone.").unwrap_or(name);
    let index = |s: &str, n: usize| s.parse::<usize>().ok().filter(|k| *k < n);
    Some(match rest {
        "backbone" if name == "backbone" => (0..NUM_STAGES)
            .map(Part::EncoderStage)
            .chain((0..DECODER_BLOCKS).map(Part::DecoderBlock))
            .collect(),
        "encoder" => (0..NUM_STAGES).map(Part::EncoderStage).collect(),
        "decoder" => (0..DECODER_BLOCKS).map(Part::DecoderBlock).collect(),
        "decode_head" if name == rest => vec![Part::DecodeHead],
        "auxiliary_head" if name == rest => vec![Part::AuxiliaryHead],
        _ => {
            if let Some(i) = rest.strip_prefix("encoder.") {
                vec![Part::EncoderStage(index(i, NUM_STAGES)?)]
            } else if let Some(n) = rest.strip_prefix("encoder:") {
                let n = n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=NUM_STAGES).contains(n))?;
                (0..n).map(Part::EncoderStage).collect()
            } else if let Some(k) = rest.strip_prefix("decoder.") {
                vec![Part::DecoderBlock(index(k, DECODER_BLOCKS)?)]
            } else {
                return None;
            }
        }
    })
}

/// The parts `names` cover (sorted, no duplicates), or the config error of the first bad name:
/// `freeze[i]: unknown part "..." (expected one of: ...)`.
pub fn parts(names: &[String], cfg: &ModelConfig) -> Result<Vec<Part>, ConfigError> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let field = format!("freeze[{i}]");
        let Some(p) = parse(name) else {
            return Err(ConfigError::new(
                field,
                format!("unknown part {name:?} (expected one of: {FREEZE_NAMES})"),
            ));
        };
        if p.contains(&Part::AuxiliaryHead) && !cfg.aux_head {
            return Err(ConfigError::new(
                field,
                "auxiliary_head is frozen but model.aux_head is false",
            ));
        }
        out.extend(p);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Checks `freeze` against the model config; errors name `freeze[i]`.
pub fn check_freeze(names: &[String], cfg: &ModelConfig) -> Result<(), ConfigError> {
    parts(names, cfg).map(|_| ())
}

/// True when the tensor at `path` (`backbone.encoder.0.convs.0.conv.weight`) is in a frozen part.
pub fn is_frozen(parts: &[Part], path: &str) -> bool {
    parts.iter().any(|p| {
        path.strip_prefix(p.path().as_str())
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Freezes the parts `names` cover (see the module docs).
pub fn apply_freeze(mut model: Segmentor, names: &[String]) -> Result<Segmentor, ConfigError> {
    let aux_head = model.auxiliary_head.is_some();
    let cfg = ModelConfig {
        aux_head,
        ..Default::default()
    };
    for part in parts(names, &cfg)? {
        let b = &mut model.backbone;
        match part {
            Part::EncoderStage(i) => {
                let m = b.encoder.remove(i).freeze();
                b.encoder.insert(i, m);
            }
            Part::DecoderBlock(k) => {
                let m = b.decoder.remove(k).freeze();
                b.decoder.insert(k, m);
            }
            Part::DecodeHead => model.decode_head = model.decode_head.freeze(),
            Part::AuxiliaryHead => {
                model.auxiliary_head = model.auxiliary_head.take().map(Module::freeze);
            }
        }
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::visit_paths;
    use burn::tensor::Device;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_cover_their_parts() {
        use Part::*;
        assert_eq!(
            parse("encoder:3").unwrap(),
            vec![EncoderStage(0), EncoderStage(1), EncoderStage(2)]
        );
        assert_eq!(parse("backbone.encoder:1").unwrap(), vec![EncoderStage(0)]);
        assert_eq!(parse("encoder.4").unwrap(), vec![EncoderStage(4)]);
        assert_eq!(parse("backbone.decoder.0").unwrap(), vec![DecoderBlock(0)]);
        assert_eq!(parse("backbone").unwrap().len(), 9);
        assert_eq!(parse("decoder").unwrap().len(), 4);
        for bad in [
            "encoder.5",
            "encoder:0",
            "encoder:6",
            "decoder.4",
            "decoder:2",
            "backbone.backbone",
            "backbone.decode_head",
            "head",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_names_are_rejected_naming_the_entry() {
        let cfg = ModelConfig::default();
        let e = check_freeze(&names(&["encoder", "neck"]), &cfg).unwrap_err();
        assert_eq!(e.field, "freeze[1]");
        assert!(
            e.message.contains("\"neck\"") && e.message.contains("encoder:<1-5>"),
            "{e}"
        );
        let no_aux = ModelConfig {
            aux_head: false,
            ..Default::default()
        };
        let e = check_freeze(&names(&["auxiliary_head"]), &no_aux).unwrap_err();
        assert_eq!(e.field, "freeze[0]");
        check_freeze(
            &names(&["backbone.encoder.0", "auxiliary_head", "encoder:2"]),
            &cfg,
        )
        .unwrap();
    }

    #[test]
    fn every_model_tensor_is_classified_by_its_part() {
        let cfg = ModelConfig {
            base_channels: 4,
            ..Default::default()
        };
        let m = crate::model::Segmentor::new(&cfg, &Device::libtorch());
        let p = parts(&names(&["encoder:2", "decoder.3", "auxiliary_head"]), &cfg).unwrap();
        let mut frozen = 0;
        visit_paths(&m, |path, _| {
            let want = path.starts_with("backbone.encoder.0.")
                || path.starts_with("backbone.encoder.1.")
                || path.starts_with("backbone.decoder.3.")
                || path.starts_with("auxiliary_head.");
            assert_eq!(is_frozen(&p, path), want, "{path}");
            frozen += want as usize;
        });
        assert!(frozen > 0);
        // `encoder.1` does not cover `encoder.10...` (prefix ends at a dot).
        assert!(!is_frozen(
            &[Part::EncoderStage(1)],
            "backbone.encoder.10.x"
        ));
    }
}
