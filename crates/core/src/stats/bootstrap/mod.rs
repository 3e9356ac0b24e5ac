//! The paired bootstrap over validation images and seeds, on per-image pixel counts.
//!
//! A configuration ("arm") is evaluated on the same validation images as every other one,
//! so the image resample is shared by all arms in a replicate: the difference between two
//! arms is then free of the luck of which images were drawn. Seeds are not paired (seed 3
//! of one configuration has nothing in common with seed 3 of another), so each arm
//! resamples its own runs. The statistic keeps MMSeg's aggregate semantics: counts are
//! summed over the (resampled) images of a run before the metric is taken, and runs are
//! averaged after, so on the observed data it is the mean of the runs' reported values.
//!
//! Higher statistics are better; for a lower-is-better metric pass its negation.

mod design;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use design::BootstrapError;
use design::{for_each_replicate, Design, Evaluator};

use super::holm::{holm, HolmDecision};
use crate::metrics::Metrics;

/// One image's pixel counts per class (I = #(pred=label=c), P = #(pred=c), G = #(label=c)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageCounts {
    pub intersect: Vec<u64>,
    pub pred: Vec<u64>,
    pub label: Vec<u64>,
}

/// One configuration: `runs[seed][image]`; image i is the same validation image in every
/// arm (the caller aligns arms by image name). Runs of one arm may be different seeds; with
/// cross-validation a run is the concatenation of its folds' validation images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arm {
    pub runs: Vec<Vec<ImageCounts>>,
}

/// The metric taken on summed counts, e.g. `&|m| m.mdice()`.
pub type MetricFn<'a> = &'a dyn Fn(&Metrics) -> f64;

/// Which configurations cannot be told apart from the best one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BestTest {
    /// Index of the arm with the highest observed statistic (the lowest index on a tie).
    pub best: usize,
    /// Observed statistic per arm (all images, all runs).
    pub observed: Vec<f64>,
    /// Fraction of replicates in which the arm had the highest statistic; an exact tie
    /// splits the replicate equally, and a NaN statistic never wins.
    pub prob_best: Vec<f64>,
    /// Holm-corrected one-sided test of H0 "this arm is at least as good as the best";
    /// None for the best itself.
    pub vs_best: Vec<Option<HolmDecision>>,
    /// True for the best and every arm whose difference to it is not rejected.
    pub indistinguishable: Vec<bool>,
    pub replicates: usize,
}

/// A paired comparison of two arms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairedDiff {
    /// Observed statistic of a minus that of b.
    pub diff: f64,
    /// 2.5% and 97.5% percentiles of the bootstrap differences (linear interpolation
    /// between order statistics, numpy's default; NaN replicates left out).
    pub ci95: (f64, f64),
    /// min(1, 2 min((1 + #{d* <= 0}) / (1 + B), (1 + #{d* >= 0}) / (1 + B))).
    pub p_two_sided: f64,
    pub replicates: usize,
}

/// The statistic of `arm` on its data as observed: the mean over runs of the metric of each
/// run's counts summed over all images (a single run: exactly the report's value).
pub fn observed(arm: &Arm, metric: MetricFn) -> Result<f64, BootstrapError> {
    let design = Design::new(&[arm])?;
    Ok(Evaluator::new(metric, design.n_classes).observed(&design, 0))
}

/// Finds the best arm and tests every other one against it: one-sided bootstrap p-value
/// p_k = (1 + #{stat*(best) - stat*(k) <= 0}) / (1 + B), Holm-corrected at `alpha` over
/// the arms other than the best. `seed` makes the result reproducible.
pub fn rank_against_best(
    arms: &[Arm],
    metric: MetricFn,
    replicates: usize,
    seed: u64,
    alpha: f64,
) -> Result<BestTest, BootstrapError> {
    let refs: Vec<&Arm> = arms.iter().collect();
    let design = checked_design(&refs, replicates)?;
    let mut eval = Evaluator::new(metric, design.n_classes);
    let observed: Vec<f64> = (0..arms.len()).map(|a| eval.observed(&design, a)).collect();
    let best = argmax(&observed).ok_or(BootstrapError::UndefinedMetric)?;
    let (mut not_worse, mut wins) = (vec![0usize; arms.len()], vec![0.0; arms.len()]);
    for_each_replicate(&design, metric, replicates, seed, |stats| {
        for (k, n) in not_worse.iter_mut().enumerate() {
            *n += usize::from(not_positive(stats[best] - stats[k]));
        }
        credit_winners(stats, &mut wins);
    });
    let vs_best = holm_vs_best(best, &not_worse, replicates, alpha);
    let indistinguishable = vs_best.iter().map(|d| d.is_none_or(|d| !d.rejected));
    Ok(BestTest {
        best,
        observed,
        prob_best: wins.iter().map(|w| w / replicates as f64).collect(),
        indistinguishable: indistinguishable.collect(),
        vs_best,
        replicates,
    })
}

/// The paired bootstrap of stat(a) - stat(b): percentile interval and two-sided p-value.
pub fn compare(
    a: &Arm,
    b: &Arm,
    metric: MetricFn,
    replicates: usize,
    seed: u64,
) -> Result<PairedDiff, BootstrapError> {
    let design = checked_design(&[a, b], replicates)?;
    let mut eval = Evaluator::new(metric, design.n_classes);
    let diff = eval.observed(&design, 0) - eval.observed(&design, 1);
    let mut diffs = Vec::with_capacity(replicates);
    for_each_replicate(&design, metric, replicates, seed, |s| {
        diffs.push(s[0] - s[1])
    });
    // NaN counts on both sides: it is no evidence either way.
    let le = diffs.iter().filter(|d| not_positive(**d)).count();
    let ge = diffs.iter().filter(|d| d.is_nan() || **d >= 0.0).count();
    let denom = (1 + replicates) as f64;
    let p_one = (1 + le.min(ge)) as f64 / denom;
    diffs.retain(|d| !d.is_nan());
    diffs.sort_by(f64::total_cmp);
    Ok(PairedDiff {
        diff,
        ci95: (percentile(&diffs, 0.025), percentile(&diffs, 0.975)),
        p_two_sided: (2.0 * p_one).min(1.0),
        replicates,
    })
}

/// p_k = (1 + not_worse[k]) / (1 + B) for every k but the best, Holm-corrected together.
fn holm_vs_best(
    best: usize,
    not_worse: &[usize],
    replicates: usize,
    alpha: f64,
) -> Vec<Option<HolmDecision>> {
    let denom = (1 + replicates) as f64;
    let others: Vec<usize> = (0..not_worse.len()).filter(|&k| k != best).collect();
    let p: Vec<f64> = others
        .iter()
        .map(|&k| (1 + not_worse[k]) as f64 / denom)
        .collect();
    let mut vs_best = vec![None; not_worse.len()];
    for (&k, d) in others.iter().zip(holm(&p, alpha)) {
        vs_best[k] = Some(d);
    }
    vs_best
}

fn checked_design(arms: &[&Arm], replicates: usize) -> Result<Design, BootstrapError> {
    let design = Design::new(arms)?;
    if replicates == 0 {
        return Err(BootstrapError::NoReplicates);
    }
    Ok(design)
}

/// d <= 0, with NaN counted as "not worse" (an undefined replicate is no evidence).
fn not_positive(d: f64) -> bool {
    d.is_nan() || d <= 0.0
}

/// Index of the largest non-NaN value, the first one on a tie.
fn argmax(values: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &v) in values.iter().enumerate() {
        if !v.is_nan() && best.is_none_or(|b| v > values[b]) {
            best = Some(i);
        }
    }
    best
}

/// Adds one replicate's win to the arms with the highest statistic, split on a tie.
fn credit_winners(stats: &[f64], wins: &mut [f64]) {
    let Some(top) = argmax(stats).map(|i| stats[i]) else {
        return;
    };
    let tied = stats.iter().filter(|&&s| s == top).count() as f64;
    for (w, &s) in wins.iter_mut().zip(stats) {
        if s == top {
            *w += 1.0 / tied;
        }
    }
}

/// The q-quantile of sorted values, interpolating linearly between order statistics.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return f64::NAN;
    };
    let h = last as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(last);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}
