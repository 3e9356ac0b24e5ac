//! Seed-aware, per-image statistical stopping: a trial stops at a rung only when it is
//! worse than the incumbent there beyond noise. Both were scored on the same validation
//! images, so the per-image differences cancel the images' difficulty, and the scores are
//! already means over each trial's seeds and folds; a one-sided bootstrap bound on the mean
//! difference then says whether "worse" could be luck. Bonferroni over the rungs keeps the
//! chance of ever stopping a trial that is as good as the incumbent below alpha.
//!
//! `stats::bootstrap` resamples pixel counts of whole arms, not per-image scores, so the
//! small resampler lives here.

use super::{by_merit, num, OnArrival, RungTable};
use crate::search::rng::Rng;

/// Bootstrap resamples per test.
const REPLICATES: usize = 2000;

/// The paired rule at family-wise error `alpha` over the rungs.
#[derive(Clone, Debug, PartialEq)]
pub struct Paired {
    pub alpha: f64,
}

impl Paired {
    pub fn new(alpha: f64) -> Paired {
        Paired { alpha }
    }
}

/// The best of `before` that has per-image scores at rung `k`, and those scores.
fn incumbent<'t>(
    table: &'t RungTable,
    before: &[(u64, f64)],
    k: usize,
) -> Option<(u64, &'t [f64])> {
    let mut rows: Vec<(u64, f64)> = before
        .iter()
        .copied()
        .filter(|r| table.images.contains_key(&(r.0, k)))
        .collect();
    rows.sort_by(by_merit);
    let best = rows.first()?.0;
    Some((best, table.images[&(best, k)].as_slice()))
}

/// Is `trial` worse than `incumbent` beyond noise? Differences `d_i = trial_i -
/// incumbent_i` over images (pairs with a NaN side left out); worse when the one-sided
/// bootstrap upper `1 - alpha` bound of mean(d) is below 0. Returns (worse, mean(d), upper
/// bound); unequal lengths or no pair give (false, NaN, NaN). Deterministic in `seed`.
pub fn paired_worse(trial: &[f64], incumbent: &[f64], alpha: f64, seed: u64) -> (bool, f64, f64) {
    let d: Vec<f64> = trial
        .iter()
        .zip(incumbent)
        .map(|(t, i)| t - i)
        .filter(|d| !d.is_nan())
        .collect();
    if d.is_empty() || trial.len() != incumbent.len() {
        return (false, f64::NAN, f64::NAN);
    }
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    let upper = upper_bound(&d, alpha.clamp(0.0, 1.0), seed);
    (upper < 0.0, mean, upper)
}

/// The `1 - alpha` percentile of the means of `REPLICATES` resamples of `d` (linear
/// interpolation between order statistics).
fn upper_bound(d: &[f64], alpha: f64, seed: u64) -> f64 {
    // The search's own generator: `rand`'s streams may change between releases, and a
    // stopping decision must replay identically from an old log.
    let mut rng = Rng::new(seed);
    let n = d.len() as u64;
    let mut means: Vec<f64> = (0..REPLICATES)
        .map(|_| (0..n).map(|_| d[rng.below(n) as usize]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let h = (REPLICATES - 1) as f64 * (1.0 - alpha);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(REPLICATES - 1);
    means[lo] + (h - lo as f64) * (means[hi] - means[lo])
}

/// The resampling seed of a (trial, rung) test: fixed, so a replay decides the same.
fn seed(trial: u64, rung: usize) -> u64 {
    trial.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ rung as u64
}

impl OnArrival for Paired {
    const NAME: &'static str = "paired";

    /// Stop? and why: `trial` against the best of the trials that completed rung `k` before
    /// it with per-image scores.
    fn judge(&self, table: &RungTable, trial: u64, k: usize) -> (bool, String) {
        let at = table.name(k);
        let (Some((_, before)), Some(mine)) =
            (table.arrival(trial, k), table.images.get(&(trial, k)))
        else {
            return (
                false,
                format!("paired: no per-image scores at rung {at}, not tested"),
            );
        };
        let Some((inc, theirs)) = incumbent(table, before, k) else {
            return (
                false,
                format!("paired: no earlier trial with per-image scores at rung {at}"),
            );
        };
        if mine.len() != theirs.len() {
            let (a, b) = (mine.len(), theirs.len());
            return (
                false,
                format!("paired: {a} vs {b} images of trial {inc} at rung {at}, not comparable"),
            );
        }
        let level = self.alpha / table.non_final() as f64;
        let (worse, diff, upper) = paired_worse(mine, theirs, level, seed(trial, k));
        let op = if worse { "<" } else { ">=" };
        let why = format!(
            "paired: mean diff {} vs trial {inc} on {} images at rung {at} ({}% upper bound {} {op} 0)",
            num(diff),
            mine.len(),
            num(100.0 * (1.0 - level)),
            num(upper),
        );
        (worse, why)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::table;
    use super::*;
    use crate::search::rule::StopRule;

    /// 40 images of the incumbent: 60..80, unevenly hard.
    fn base() -> Vec<f64> {
        (0..40).map(|i| 60.0 + ((i * 7919) % 20) as f64).collect()
    }

    /// `base` shifted by `shift`, plus `noise(i)`.
    fn shifted(shift: f64, noise: impl Fn(usize) -> f64) -> Vec<f64> {
        base()
            .iter()
            .enumerate()
            .map(|(i, b)| b + shift + noise(i))
            .collect()
    }

    /// Alternating ±sd: a sample mean of exactly 0, sd about `sd`.
    fn alternating(sd: f64) -> impl Fn(usize) -> f64 {
        move |i| if i % 2 == 0 { sd } else { -sd }
    }

    /// Trial 1 (the incumbent, `base`) then trial 2 (`images`) at rung 0 of [50, 150, 450].
    fn two(images: Vec<f64>) -> RungTable {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let mut t = table(
            &[50, 150, 450],
            vec![vec![(1, mean(&base())), (2, mean(&images))]],
        );
        t.images.insert((1, 0), base());
        t.images.insert((2, 0), images);
        t
    }

    #[test]
    fn ten_points_worse_with_small_noise_is_stopped() {
        let small = |i: usize| ((i * 31) % 7) as f64 / 10.0 - 0.3;
        let t = two(shifted(-10.0, small));
        let v = Paired::new(0.05).on_rung(&t, 2, 0).unwrap();
        let e = v.evidence;
        assert!(e.starts_with("paired: mean diff -9.99"), "{e}");
        assert!(
            e.contains(" vs trial 1 on 40 images at rung 50 (97.5% upper bound -9.9"),
            "{e}"
        );
        assert!(e.ends_with(" < 0)"), "{e}");
    }

    #[test]
    fn half_a_point_worse_with_sd_5_is_not_stopped() {
        let t = two(shifted(-0.5, alternating(5.0)));
        let rule = Paired::new(0.05);
        assert!(rule.on_rung(&t, 2, 0).is_none());
        let (trial, v) = rule.promote(&t, &[(2, 0)]).unwrap();
        assert_eq!(trial, 2);
        assert!(
            v.evidence
                .starts_with("paired: mean diff -0.5 vs trial 1 on 40 images"),
            "{}",
            v.evidence
        );
        assert!(v.evidence.ends_with(" >= 0)"), "{}", v.evidence);
    }

    #[test]
    fn alpha_matters_on_a_borderline_case() {
        let (trial, inc) = (shifted(-0.3, alternating(5.0)), base());
        let (worse, diff, upper) = paired_worse(&trial, &inc, 0.5, 7);
        assert!(worse, "at alpha 0.5 the bound is about the mean: {upper}");
        assert!((diff + 0.3).abs() < 1e-9);
        let (worse, _, upper) = paired_worse(&trial, &inc, 0.01, 7);
        assert!(
            !worse && upper > 1.0,
            "at alpha 0.01 the bound is about +1.5: {upper}"
        );
    }

    #[test]
    fn no_images_never_stop() {
        let mut t = two(shifted(-10.0, |_| 0.0));
        t.images.remove(&(2, 0));
        let rule = Paired::new(0.05);
        assert!(rule.on_rung(&t, 2, 0).is_none());
        let (_, v) = rule.promote(&t, &[(2, 0)]).unwrap();
        assert_eq!(
            v.evidence,
            "paired: no per-image scores at rung 50, not tested"
        );
        let first = rule.promote(&t, &[(1, 0)]).unwrap().1;
        assert_eq!(
            first.evidence,
            "paired: no earlier trial with per-image scores at rung 50"
        );
    }

    #[test]
    fn the_incumbent_is_the_best_earlier_trial_with_images() {
        // Trial 3 (best, no images) and trial 4 (after trial 2) are not candidates.
        let mut t = two(shifted(-10.0, |_| 0.0));
        t.by_rung[0].insert(1, (3, 99.0));
        t.by_rung[0].insert(0, (5, 50.0));
        t.by_rung[0].push((4, 99.0));
        t.images.insert((5, 0), shifted(-20.0, |_| 0.0));
        t.images.insert((4, 0), shifted(20.0, |_| 0.0));
        let v = Paired::new(0.05).on_rung(&t, 2, 0).unwrap();
        assert!(v.evidence.contains("vs trial 1 "), "{}", v.evidence);
        let v = Paired::new(0.05).judge(&t, 1, 0).1;
        assert!(v.starts_with("paired: mean diff 20 vs trial 5 "), "{v}");
    }

    #[test]
    fn unequal_or_empty_inputs_are_no_evidence() {
        let (worse, diff, _) = paired_worse(&[1.0, 2.0], &[3.0], 0.5, 1);
        assert!(!worse && diff.is_nan());
        assert!(!paired_worse(&[], &[], 0.5, 1).0);
        let (worse, diff, _) = paired_worse(&[1.0, f64::NAN], &[2.0, 0.0], 0.5, 1);
        assert!(worse && diff == -1.0, "the NaN pair is left out");
    }

    #[test]
    fn resampling_is_deterministic_per_seed() {
        let (trial, inc) = (shifted(-1.0, |i| 5.0 * (i as f64).sin()), base());
        let a = paired_worse(&trial, &inc, 0.05, 11);
        assert_eq!(a, paired_worse(&trial, &inc, 0.05, 11));
        assert_ne!(a.2, paired_worse(&trial, &inc, 0.05, 12).2);
        assert_ne!(seed(1, 0), seed(1, 1));
    }

    #[test]
    fn final_stop_says_the_search_ended() {
        let t = two(base());
        let v = Paired::new(0.05).final_stop(&t, 2, 1);
        assert_eq!(
            v.evidence,
            "paired: search over before promotion from rung 150"
        );
    }
}
