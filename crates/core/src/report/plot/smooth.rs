//! The smoothed training loss: a debiased exponential moving average, as TensorBoard draws
//! by default, weighted per iteration rather than per logged point (as W&B's time-weighted
//! EMA is) so that a curve logged every 10 iterations is smoothed over the same stretch of
//! training as one logged every iteration.

/// Debiased EMA of `points` (`(iteration, value)`, in iteration order), where a value
/// `d` iterations old weighs `decay^d`: the weighted mean of everything so far, so the
/// first point is itself (no pull towards 0, TensorBoard's debiasing) and a constant stays
/// constant. Non-finite values are left out (neither drawn nor averaged: one diverged step
/// does not poison the rest); missing iterations only decay the past.
pub(super) fn ema(points: &[(usize, f64)], decay: f64) -> Vec<(usize, f64)> {
    let (mut sum, mut weight) = (0.0, 0.0);
    let mut last: Option<usize> = None;
    let mut out = Vec::with_capacity(points.len());
    for &(it, v) in points.iter().filter(|(_, v)| v.is_finite()) {
        let fade = last.map_or(0.0, |l| decay.powi(it.saturating_sub(l) as i32));
        sum = sum * fade + v;
        weight = weight * fade + 1.0;
        last = Some(it);
        out.push((it, sum / weight));
    }
    out
}

/// The per-iteration decay for a panel `span` iterations wide: a half-life of 1/25 of the
/// width. TensorBoard's default weight (0.6 per logged point, a half-life of 1.4 points) is
/// too light for per-step losses of batch 2, whose single-batch spikes reach 28 times the
/// typical value (a spike of 14 still stands 5 high). Tying the half-life to the panel's
/// width smooths a 200- and a 1000-iteration panel alike to the eye (8 and 40 iterations;
/// a spike of 14 lifts the line by about 1 in the first) and still follows the first
/// iterations' fall.
pub(super) fn decay_for(span: f64) -> f64 {
    let half_life = (span / 25.0).max(1.0);
    0.5f64.powf(1.0 / half_life)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn a_constant_stays_constant_from_the_first_point() {
        let pts: Vec<(usize, f64)> = (1..=50).map(|i| (i, 0.7)).collect();
        let s = ema(&pts, 0.9);
        assert_eq!(s.len(), 50);
        assert!(s.iter().all(|&(_, v)| close(v, 0.7)), "{s:?}");
    }

    #[test]
    fn it_is_debiased_as_tensorboard_smooths() {
        // TensorBoard: last = w*last + (1-w)*v; smoothed = last / (1 - w^n).
        let raw = [1.0, 3.0, 2.0, 8.0, 0.5];
        let w: f64 = 0.6;
        let mut last = 0.0;
        let mut tb = Vec::new();
        for (n, v) in raw.iter().enumerate() {
            last = w * last + (1.0 - w) * v;
            tb.push(last / (1.0 - w.powi(n as i32 + 1)));
        }
        let pts: Vec<(usize, f64)> = raw.iter().enumerate().map(|(i, &v)| (i, v)).collect();
        let ours = ema(&pts, w);
        assert!(close(ours[0].1, 1.0), "the first point is itself");
        for (a, b) in ours.iter().zip(&tb) {
            assert!(close(a.1, *b), "{ours:?} vs {tb:?}");
        }
    }

    #[test]
    fn nan_is_skipped_and_gaps_decay_the_past() {
        let s = ema(
            &[(0, 1.0), (1, f64::NAN), (2, f64::INFINITY), (3, 1.0)],
            0.5,
        );
        assert_eq!(s, vec![(0, 1.0), (3, 1.0)]);
        // Two iterations apart weigh decay^2 = 0.25: (0.25 * 0 + 1) / (0.25 + 1).
        let s = ema(&[(0, 0.0), (2, 1.0)], 0.5);
        assert!(close(s[1].1, 0.8), "{s:?}");
        assert!(ema(&[(0, f64::NAN)], 0.5).is_empty());
    }

    #[test]
    fn a_spike_is_damped() {
        let mut pts: Vec<(usize, f64)> = (0..200).map(|i| (i, 0.5)).collect();
        pts[100].1 = 14.0;
        let peak = ema(&pts, decay_for(200.0))
            .iter()
            .map(|p| p.1)
            .fold(0.0, f64::max);
        assert!(peak < 1.7, "{peak}");
        assert!(
            close(decay_for(25.0), 0.5),
            "half-life of at least one iteration"
        );
    }
}
