//! The resolved configuration of one job: everything that determines its result.
//!
//! A sweep file's `base`, with one grid point / include entry / seed applied, is
//! deserialised into [`JobConfig`]. Every field has a default, so the canonical JSON of a
//! `JobConfig` (all defaults filled in) is what the job's identity hash is computed from:
//! two spellings of the same job hash the same, any change of a knob hashes differently.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// `NAMES` (the spellings a sweep file accepts, as serde spells them), `name()`, `Display`
/// and `FromStr` for a field-less config enum. The spellings must equal the serde renames:
/// `names_match_serde` checks that they do.
macro_rules! named {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const NAMES: &'static [&'static str] = &[$($name),+];
            pub fn name(&self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            /// The sweep file's spelling; the error reads like a sweep file's.
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(format!(
                        "unknown {} {s:?}, expected one of {}{}",
                        $what,
                        Self::NAMES.join(", "),
                        crate::suggest::did_you_mean(s, Self::NAMES.iter().copied())
                    )),
                }
            }
        }
    };
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    #[serde(default)]
    pub data: DataConfig,
    #[serde(default)]
    pub model: ModelConfig,
    /// Loss of the decode head (and of the auxiliary head unless `aux_loss` is given).
    #[serde(default)]
    pub loss: LossSpec,
    /// Loss of the auxiliary head; defaults to `loss`. Scaled by `model.aux_weight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux_loss: Option<LossSpec>,
    /// Training crop (square), pixels; multiple of 16.
    #[serde(default = "d_crop")]
    pub crop: usize,
    #[serde(default = "d_iters")]
    pub iters: usize,
    #[serde(default = "d_batch")]
    pub batch: usize,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub seed: u64,
    /// Write a checkpoint every this many iterations (0: only at the end).
    #[serde(default = "d_checkpoint_every")]
    pub checkpoint_every: usize,
    /// Initial weights: another job of the sweep (`from: <job name>`) or a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitConfig>,
    /// Parts of the network whose parameters (and batch-norm statistics) stay fixed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<String>,
    /// Numerics and memory layout of the training step (fp32 unless asked).
    #[serde(default, skip_serializing_if = "ComputeConfig::is_default")]
    pub compute: ComputeConfig,
}

/// How the training step computes: precision and layout of the convolutions.
///
/// Part of the job's identity (bf16 changes the numbers); all-default is left out of the
/// canonical JSON, so jobs written before this section existed keep their hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeConfig {
    /// `fp32`, or `bf16`: convolutions (forward and backward) in bfloat16 with fp32 master
    /// weights, batch norm, loss and optimiser (bf16 has fp32's exponent range, so no loss
    /// scaling is needed, as in PyTorch's bf16 autocast).
    #[serde(default)]
    pub precision: Precision,
    /// Convolutions in channels_last (NHWC) layout, which tensor cores prefer.
    #[serde(default)]
    pub channels_last: bool,
}

impl ComputeConfig {
    pub fn is_default(&self) -> bool {
        *self == ComputeConfig::default()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The data set's short name, as reports show it. With no `root`, the shipped folder
    /// `data/{dataset}` (`dme`, `chase_db1`); with a `root` and no `dataset`, the name its
    /// description gives (else the folder's name).
    #[serde(default = "d_dataset")]
    pub dataset: String,
    /// The data set's folder, described by its `dataset.json` (nnU-Net v2) or
    /// `dataset.yaml` (MMSegmentation layout): see `sweep_core::dataset`.
    #[serde(default = "d_root")]
    pub root: PathBuf,
    #[serde(default)]
    pub split: SplitConfig,
    /// Resize keep-ratio to fit this (width, height) before cropping, as MMSeg's `Resize(scale)`.
    #[serde(default = "d_scale")]
    pub scale: [usize; 2],
    /// Random-resize ratio range applied on top of `scale` (vessel zoo pipeline: [0.5, 2.0]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_range: Option<[f32; 2]>,
    /// RandomCrop re-draws (up to 10 times) while one class covers >= this fraction.
    #[serde(default = "d_cat_max_ratio")]
    pub cat_max_ratio: f32,
    /// Horizontal flip probability.
    #[serde(default)]
    pub flip: f32,
    /// MMSeg PhotoMetricDistortion (brightness, contrast).
    #[serde(default)]
    pub photometric: bool,
    /// Use only the first N training images (quick demos and tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_train: Option<usize>,
    /// Use only the first N validation images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_val: Option<usize>,
    /// Size of a label pixel in mm, `[x, y]`, when known: surface distances (HD95, ASSD) are
    /// then in mm, else in label pixels. Neither shipped data set states one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_spacing: Option<[f64; 2]>,
}

/// Which images train and which evaluate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SplitConfig {
    /// The data set's own split: `train` / `val` of its `dataset.yaml`, or fold 0 of its
    /// `splits_final.json` (DME: `splits/train.txt` / `splits/val.txt`; CHASE_DB1:
    /// children 01-10 train, 11-14 validate).
    #[default]
    Study,
    /// Patient-level split over the data set's numbered `groups` (DME: `img_K` belongs to
    /// subject `K / 11 + 1`, stated in `data/dme/subjects.csv`).
    Subjects { train: Vec<u32>, val: Vec<u32> },
    /// Patient-level K-fold cross-validation, `{fold: {folds: 5, fold: 2, by: subject}}`:
    /// validate on fold `fold` (0-based) of `folds`, train on the other folds. The data set's
    /// groups (one per case when it has none), in natural order, are cut into `folds` contiguous groups, the first
    /// `n % folds` one subject larger (scikit-learn's `KFold` without shuffling), so a
    /// patient's images are all on one side. The sweep file's `cv:` key sets it per job.
    Fold {
        folds: u32,
        fold: u32,
        #[serde(default)]
        by: FoldBy,
    },
}

impl SplitConfig {
    /// Checks what needs no data: at least 2 folds, `fold` one of them. (More folds than
    /// subjects is found when the data set is opened.)
    pub fn validate(&self) -> Result<(), super::ConfigError> {
        let SplitConfig::Fold { folds, fold, .. } = *self else {
            return Ok(());
        };
        if folds < 2 {
            return Err(super::ConfigError::new(
                "data.split.fold.folds",
                format!("{folds} fold(s): cross-validation needs at least 2"),
            ));
        }
        if fold >= folds {
            return Err(super::ConfigError::new(
                "data.split.fold.fold",
                format!(
                    "{fold} is not one of the {folds} folds (numbered from 0 to {})",
                    folds - 1
                ),
            ));
        }
        Ok(())
    }

    /// `fold 3/5` for labels (1-based, as people count; the config's `fold` is 0-based).
    pub fn fold_label(&self) -> Option<String> {
        match self {
            SplitConfig::Fold { folds, fold, .. } => Some(format!("fold {}/{folds}", fold + 1)),
            _ => None,
        }
    }
}

/// What a cross-validation fold holds whole: every image of a subject (patient) is in the
/// same fold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FoldBy {
    /// The data set's `groups` (DME: `img_K` belongs to subject `K / 11 + 1`; CHASE_DB1:
    /// `Image_NNL/R` to child NN).
    #[default]
    Subject,
}

named!(FoldBy, "fold grouping", { Subject => "subject" });

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `unet-s5-d16`, the only one so far.
    #[serde(default)]
    pub backbone: Backbone,
    #[serde(default)]
    pub head: Head,
    #[serde(default = "d_true")]
    pub aux_head: bool,
    #[serde(default = "d_aux_weight")]
    pub aux_weight: f32,
    /// 64 in the study; small values make CPU tests fast.
    #[serde(default = "d_base_channels")]
    pub base_channels: usize,
    #[serde(default = "d_num_classes")]
    pub num_classes: usize,
    #[serde(default = "d_dropout")]
    pub dropout: f32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Backbone {
    /// MMSeg's `UNet` with its default arguments: 5 stages, 4 downsamplings.
    #[default]
    #[serde(rename = "unet-s5-d16")]
    UnetS5D16,
}

named!(Backbone, "backbone", { UnetS5D16 => "unet-s5-d16" });

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    #[default]
    Fcn,
    /// ASPP head (DeepLabV3). `aspp` is accepted too.
    #[serde(alias = "aspp")]
    Deeplabv3,
    /// PSP head (PSPNet). `psp` is accepted too.
    #[serde(alias = "psp")]
    Pspnet,
}

impl Head {
    pub const NAMES: &'static [&'static str] = &["fcn", "deeplabv3", "pspnet"];
    pub fn display(&self) -> &'static str {
        match self {
            Head::Fcn => "FCN",
            Head::Deeplabv3 => "DeepLabV3",
            Head::Pspnet => "PSPNet",
        }
    }
}

/// A loss: one name (`ce`, `dice`, `focal`) or a weighted list of terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LossSpec {
    Name(LossKind),
    Terms(Vec<LossTerm>),
}

impl Default for LossSpec {
    fn default() -> Self {
        LossSpec::Name(LossKind::Ce)
    }
}

impl LossSpec {
    /// The terms with their defaults filled in.
    pub fn terms(&self) -> Vec<LossTerm> {
        match self {
            LossSpec::Name(kind) => vec![LossTerm::of(*kind)],
            LossSpec::Terms(t) => t.clone(),
        }
    }
    /// Short label for tables: `ce`, `dice`, `ce+3*dice`.
    pub fn label(&self) -> String {
        self.terms()
            .iter()
            .map(|t| {
                let name = t.kind.name();
                if (t.weight - 1.0).abs() < 1e-9 {
                    name.to_string()
                } else {
                    format!("{}*{name}", t.weight)
                }
            })
            .collect::<Vec<_>>()
            .join("+")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    #[serde(alias = "cross_entropy", alias = "cross-entropy")]
    Ce,
    Dice,
    Focal,
}

impl LossKind {
    pub const NAMES: &'static [&'static str] = &["ce", "dice", "focal"];
    pub fn name(&self) -> &'static str {
        match self {
            LossKind::Ce => "ce",
            LossKind::Dice => "dice",
            LossKind::Focal => "focal",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossTerm {
    #[serde(rename = "type")]
    pub kind: LossKind,
    #[serde(default = "d_one")]
    pub weight: f32,
    /// Cross-entropy class weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weight: Option<Vec<f32>>,
    /// Dice: `sigmoid` (MMSeg 1.x, default) or `softmax` (MMSeg <= 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<DiceActivation>,
    /// Focal: gamma (default 2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f32>,
    /// Focal: alpha (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f32>,
}

impl LossTerm {
    pub fn of(kind: LossKind) -> Self {
        LossTerm {
            kind,
            weight: 1.0,
            class_weight: None,
            activation: None,
            gamma: None,
            alpha: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DiceActivation {
    #[default]
    Sigmoid,
    Softmax,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum OptimizerConfig {
    Sgd {
        #[serde(default = "d_lr")]
        lr: f64,
        #[serde(default = "d_momentum")]
        momentum: f64,
        #[serde(default = "d_weight_decay")]
        weight_decay: f64,
    },
    Adamw {
        #[serde(default = "d_adam_lr")]
        lr: f64,
        #[serde(default = "d_adam_wd")]
        weight_decay: f64,
        #[serde(default = "d_beta1")]
        beta1: f64,
        #[serde(default = "d_beta2")]
        beta2: f64,
    },
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Sgd {
            lr: d_lr(),
            momentum: d_momentum(),
            weight_decay: d_weight_decay(),
        }
    }
}

impl OptimizerConfig {
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd { lr, .. } | OptimizerConfig::Adamw { lr, .. } => *lr,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `poly` or `constant`.
    #[serde(rename = "type", default)]
    pub kind: ScheduleKind,
    #[serde(default = "d_power")]
    pub power: f64,
    #[serde(default = "d_min_lr")]
    pub min_lr: f64,
    /// Poly horizon T in iterations; defaults to the job's `iters`. The study kept 40000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon: Option<usize>,
    /// Linear warm-up iterations (from `warmup_ratio * lr`).
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub warmup_iters: usize,
    #[serde(default = "d_warmup_ratio")]
    pub warmup_ratio: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// `min_lr + (lr - min_lr) (1 - t/T)^power` (MMEngine `PolyLR`).
    #[default]
    Poly,
    /// `lr` throughout (after any warm-up).
    Constant,
}

named!(ScheduleKind, "schedule", { Poly => "poly", Constant => "constant" });

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            kind: ScheduleKind::Poly,
            power: d_power(),
            min_lr: d_min_lr(),
            horizon: None,
            warmup_iters: 0,
            warmup_ratio: d_warmup_ratio(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// `slide` (overlapping windows, logits averaged) or `whole`.
    #[serde(default)]
    pub mode: EvalMode,
    #[serde(default = "d_eval_crop")]
    pub crop: usize,
    #[serde(default = "d_stride")]
    pub stride: usize,
    /// Write each evaluated image's prediction (class indices) as a PNG.
    #[serde(default)]
    pub save_predictions: bool,
    /// Also evaluate every this many iterations during training (0: only at the end); the
    /// numbers become the job's validation curve.
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub every: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalMode {
    /// Overlapping `crop` windows every `stride` pixels, logits averaged.
    #[default]
    Slide,
    /// The whole image at once (padded to a multiple of 16).
    Whole,
}

named!(EvalMode, "mode", { Slide => "slide", Whole => "whole" });

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            mode: EvalMode::Slide,
            crop: d_eval_crop(),
            stride: d_stride(),
            save_predictions: false,
            every: 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    /// Name of another job of the same sweep (a stage) whose final checkpoint initialises this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A checkpoint file: sweep's own (`.ckpt`) or an MMSegmentation state dict (`.pth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Load the backbone only (automatic when heads or classes differ).
    #[serde(default)]
    pub backbone_only: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: d_dataset(),
            root: d_root(),
            split: SplitConfig::Study,
            scale: d_scale(),
            ratio_range: None,
            cat_max_ratio: d_cat_max_ratio(),
            flip: 0.0,
            photometric: false,
            limit_train: None,
            limit_val: None,
            pixel_spacing: None,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            backbone: Backbone::UnetS5D16,
            head: Head::Fcn,
            aux_head: true,
            aux_weight: d_aux_weight(),
            base_channels: d_base_channels(),
            num_classes: d_num_classes(),
            dropout: d_dropout(),
        }
    }
}

impl Default for JobConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every JobConfig field has a default")
    }
}

fn d_crop() -> usize {
    256
}
fn d_iters() -> usize {
    200
}
fn d_batch() -> usize {
    2
}
fn d_checkpoint_every() -> usize {
    50
}
fn d_dataset() -> String {
    "dme".into()
}
fn d_root() -> PathBuf {
    PathBuf::from("data/dme")
}
fn d_scale() -> [usize; 2] {
    [512, 512]
}
fn d_cat_max_ratio() -> f32 {
    0.75
}
fn d_true() -> bool {
    true
}
fn d_aux_weight() -> f32 {
    0.4
}
fn d_base_channels() -> usize {
    64
}
fn d_num_classes() -> usize {
    2
}
fn d_dropout() -> f32 {
    0.1
}
fn d_one() -> f32 {
    1.0
}
fn d_lr() -> f64 {
    0.01
}
fn d_momentum() -> f64 {
    0.9
}
fn d_weight_decay() -> f64 {
    5e-4
}
fn d_adam_lr() -> f64 {
    6e-5
}
fn d_adam_wd() -> f64 {
    0.01
}
fn d_beta1() -> f64 {
    0.9
}
fn d_beta2() -> f64 {
    0.999
}
fn d_power() -> f64 {
    0.9
}
fn d_min_lr() -> f64 {
    1e-4
}
fn d_warmup_ratio() -> f64 {
    0.1
}
fn d_eval_crop() -> usize {
    256
}
fn d_stride() -> usize {
    170
}
fn is_zero_usize(v: &usize) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `NAMES`, `name()` and `FromStr` spell every variant as serde does, and a variant
    /// serialises as the plain string it did when these fields were `String`s.
    fn check_names<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + Serialize + FromStr<Err = String>,
        T: for<'de> Deserialize<'de> + fmt::Display,
    {
        let names: Vec<String> = all.iter().map(|v| v.to_string()).collect();
        for (v, name) in all.iter().zip(&names) {
            assert_eq!(serde_json::to_string(v).unwrap(), format!("{name:?}"));
            assert_eq!(serde_json::from_str::<T>(&format!("{name:?}")).unwrap(), *v);
            assert_eq!(name.parse::<T>().unwrap(), *v);
        }
        assert!(T::from_str("zzz").is_err());
    }

    #[test]
    fn names_match_serde() {
        check_names(&[Backbone::UnetS5D16]);
        assert_eq!(Backbone::NAMES, ["unet-s5-d16"]);
        check_names(&[ScheduleKind::Poly, ScheduleKind::Constant]);
        assert_eq!(ScheduleKind::NAMES, ["poly", "constant"]);
        check_names(&[EvalMode::Slide, EvalMode::Whole]);
        check_names(&[FoldBy::Subject]);
        assert_eq!(FoldBy::NAMES, ["subject"]);
        assert_eq!(EvalMode::NAMES, ["slide", "whole"]);
    }

    #[test]
    fn defaults_serialise_as_the_strings_they_were() {
        let json = serde_json::to_value(JobConfig::default()).unwrap();
        assert_eq!(json["model"]["backbone"], "unet-s5-d16");
        assert_eq!(json["data"]["dataset"], "dme");
        assert_eq!(json["schedule"]["type"], "poly");
        assert_eq!(json["eval"]["mode"], "slide");
    }

    #[test]
    fn fold_split_serialises_readably_and_validates() {
        let split = SplitConfig::Fold {
            folds: 5,
            fold: 2,
            by: FoldBy::Subject,
        };
        assert_eq!(
            serde_json::to_string(&split).unwrap(),
            r#"{"fold":{"folds":5,"fold":2,"by":"subject"}}"#
        );
        let read: SplitConfig =
            serde_json::from_str(r#"{"fold": {"folds": 5, "fold": 2}}"#).unwrap();
        assert_eq!(read, split);
        assert_eq!(split.fold_label().as_deref(), Some("fold 3/5"));
        assert_eq!(SplitConfig::Study.fold_label(), None);
        split.validate().unwrap();
        let bad = |folds, fold| {
            let e = SplitConfig::Fold {
                folds,
                fold,
                by: FoldBy::Subject,
            }
            .validate()
            .unwrap_err();
            e.to_string()
        };
        assert_eq!(
            bad(1, 0),
            "data.split.fold.folds: 1 fold(s): cross-validation needs at least 2"
        );
        assert_eq!(
            bad(5, 5),
            "data.split.fold.fold: 5 is not one of the 5 folds (numbered from 0 to 4)"
        );
    }
}
