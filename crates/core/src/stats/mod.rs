//! Statistics for comparing configurations: pure functions, no I/O.
//!
//! - [`t`]: Student's t CDF and quantile (confidence intervals, p-values);
//! - [`summarize`]: mean, sample std and t interval of per-seed values;
//! - [`welch()`]: Welch's t-test between two configurations' per-seed values;
//! - [`holm()`]: Holm–Bonferroni correction when one best is tested against all others;
//! - [`bootstrap`]: the paired bootstrap over validation images and seeds on per-image
//!   pixel counts, which keeps MMSeg's aggregate metric semantics.

pub mod bootstrap;
pub mod holm;
mod special;
pub mod summary;
pub mod t;
pub mod welch;

pub use bootstrap::{
    compare, observed, rank_against_best, Arm, BestTest, BootstrapError, ImageCounts, MetricFn,
    PairedDiff,
};
pub use holm::{holm, HolmDecision};
pub use summary::{summarize, Summary};
pub use t::{t_cdf, t_quantile, t_sf};
pub use welch::{welch, TwoSample};
