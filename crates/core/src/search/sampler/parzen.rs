//! TPE's Parzen estimators: a density over one parameter built from observed values, as in
//! Optuna's `_ParzenEstimator` (univariate, with its defaults).
//!
//! Numeric: a weighted mixture of Gaussians truncated to the range, one at each observation
//! plus a broad prior at the middle. Each bandwidth is the distance to the farther
//! neighbour (the range ends count as neighbours; the outermost observations use their inner
//! one), clipped to [range / min(100, 1 + kernels), range] (the "magic clip", which keeps a
//! tight cluster from collapsing to spikes). On a grid (ints, steps) the range grows by half
//! a step at each end and a kernel's mass at a grid point is its mass over that point's cell.
//!
//! Categorical: the observations' weights per category plus the prior spread evenly.

use super::gauss::{gauss, mass};
use crate::search::rng::Rng;
use crate::search::space::Internal;

/// sqrt(2 pi).
const SQRT_2PI: f64 = 2.506_628_274_631_000_5;

/// Optuna's `default_weights`: the last 25 observations weigh 1, older ones fade linearly
/// from 1/n, so that a long history drifts towards recent trials.
pub(super) fn recency_weights(n: usize) -> Vec<f64> {
    if n <= 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let step = if ramp > 1 {
        (1.0 - 1.0 / n as f64) / (ramp - 1) as f64
    } else {
        0.0
    };
    (0..ramp)
        .map(|i| 1.0 / n as f64 + i as f64 * step)
        .chain(std::iter::repeat_n(1.0, 25))
        .collect()
}

/// Kernels further than this many bandwidths from x are left out of the density at x: each
/// would add below e^-50 of its peak, under the last bit of the sum (which the prior kernel
/// alone keeps above e^-1/8 of its own peak).
const CUTOFF: f64 = 10.0;

/// A mixture of truncated (or discretised) Gaussians over one numeric parameter.
pub(super) struct Numeric {
    range: Internal,
    /// Truncation bounds: the range, widened by half a step on a grid.
    low: f64,
    high: f64,
    /// Every kernel, the observations' in their order and the prior last, to sample from.
    all: Kernels,
    /// Cumulative normalised weights of `all`, to pick a kernel.
    cumulative: Vec<f64>,
    /// The kernels no wider than `narrow` (nine in ten observations' at least), sorted by
    /// centre, so that the density at x sums only those within `CUTOFF * narrow` of it: a
    /// long history costs O(kernels near x) per candidate, not O(history).
    near: Kernels,
    narrow: f64,
    /// The wider kernels, the prior among them: summed at every x.
    wide: Kernels,
}

/// Kernels as parallel arrays, for tight loops.
#[derive(Default)]
struct Kernels {
    mus: Vec<f64>,
    inv_sigmas: Vec<f64>,
    /// Weight / (mass inside the bounds), and for a continuous range also
    /// / (sigma sqrt(2 pi)): everything in a kernel's density that does not depend on x.
    coefs: Vec<f64>,
}

impl Kernels {
    fn push(&mut self, mu: f64, inv_sigma: f64, coef: f64) {
        self.mus.push(mu);
        self.inv_sigmas.push(inv_sigma);
        self.coefs.push(coef);
    }

    /// The kernels `from..to`'s density at x (their mass over x's cell [x - step/2,
    /// x + step/2] on a grid), each times its coefficient, summed.
    fn sum(&self, x: f64, step: Option<f64>, from: usize, to: usize) -> f64 {
        let (mus, invs, coefs) = (
            &self.mus[from..to],
            &self.inv_sigmas[from..to],
            &self.coefs[from..to],
        );
        let kernels = mus.iter().zip(invs).zip(coefs);
        match step {
            None => kernels
                .map(|((&mu, &inv), &c)| c * gauss((x - mu) * inv))
                .sum(),
            Some(s) => {
                let (a, b) = (x - 0.5 * s, x + 0.5 * s);
                kernels
                    .map(|((&mu, &inv), &c)| c * mass((a - mu) * inv, (b - mu) * inv))
                    .sum()
            }
        }
    }
}

impl Numeric {
    /// The estimator of observations `xs` (internal coordinates) with `weights`.
    pub(super) fn new(xs: &[f64], weights: &[f64], range: Internal, prior_weight: f64) -> Numeric {
        let half = range.step.map_or(0.0, |s| 0.5 * s);
        let (low, high) = (range.low - half, range.high + half);
        let width = (high - low).max(f64::MIN_POSITIVE);
        let order = by_centre(xs);
        let mut sigmas = bandwidths(xs, &order, low, high, width);
        let narrow = percentile(&sigmas, 0.9);
        sigmas.push(width);
        let mut mus = xs.to_vec();
        mus.push(0.5 * (low + high));
        let total: f64 = weights.iter().sum::<f64>() + prior_weight;
        let ws: Vec<f64> = weights
            .iter()
            .chain([&prior_weight])
            .map(|w| w / total)
            .collect();
        let mut all = Kernels::default();
        for ((&mu, &sigma), &w) in mus.iter().zip(&sigmas).zip(&ws) {
            let inside = mass((low - mu) / sigma, (high - mu) / sigma);
            let density = if range.step.is_none() {
                1.0 / (sigma * SQRT_2PI)
            } else {
                1.0
            };
            all.push(mu, 1.0 / sigma, w / inside * density);
        }
        let (near, wide) = partition(&all, &order, &sigmas, narrow);
        let cumulative = running_sum(ws);
        Numeric {
            range,
            low,
            high,
            all,
            cumulative,
            near,
            narrow,
            wide,
        }
    }

    /// A draw: a kernel by weight, then its truncated Gaussian, then (on a grid) the nearest
    /// grid point.
    pub(super) fn sample(&self, rng: &mut Rng) -> f64 {
        let u = rng.uniform() * self.cumulative.last().copied().unwrap_or(1.0);
        let j = self
            .cumulative
            .partition_point(|&c| c <= u)
            .min(self.all.mus.len() - 1);
        let (mu, sigma) = (self.all.mus[j], 1.0 / self.all.inv_sigmas[j]);
        // Rejection: every kernel keeps over a third of its mass inside (its centre is
        // inside, its bandwidth at most the range), so 64 tries fail with p < 1e-11.
        let x = (0..64)
            .map(|_| mu + sigma * rng.normal())
            .find(|x| (self.low..=self.high).contains(x))
            .unwrap_or(mu);
        match self.range.step {
            Some(s) => {
                let k = ((x - self.range.low) / s).round();
                (self.range.low + k * s).clamp(self.range.low, self.range.high)
            }
            None => x,
        }
    }

    /// ln density at `x` (ln probability of x's grid cell, on a grid), summed in linear
    /// space, one exp per kernel near x: the prior kernel (centred, as wide as the range)
    /// keeps the sum far from underflow for any x in range.
    pub(super) fn ln_pdf(&self, x: f64) -> f64 {
        let reach = CUTOFF * self.narrow + self.range.step.map_or(0.0, |s| 0.5 * s);
        let from = self.near.mus.partition_point(|&m| m < x - reach);
        let to = self.near.mus.partition_point(|&m| m <= x + reach);
        let near = self.near.sum(x, self.range.step, from, to.max(from));
        (near + self.wide.sum(x, self.range.step, 0, self.wide.mus.len())).ln()
    }
}

/// The observations' kernels no wider than `narrow`, by centre, and the others by centre
/// then the prior (last in `all`). Equal neighbours (a value repeated on a grid, where a long
/// history holds hundreds of each) are merged into one kernel of their summed weight.
fn partition(all: &Kernels, order: &[usize], sigmas: &[f64], narrow: f64) -> (Kernels, Kernels) {
    let (mut near, mut wide) = (Kernels::default(), Kernels::default());
    let prior = all.mus.len() - 1;
    for &i in order.iter().chain([&prior]) {
        let to = if i < prior && sigmas[i] <= narrow {
            &mut near
        } else {
            &mut wide
        };
        let (mu, inv) = (all.mus[i], all.inv_sigmas[i]);
        match (to.mus.last(), to.inv_sigmas.last(), to.coefs.last_mut()) {
            (Some(&m), Some(&v), Some(c)) if m == mu && v == inv => *c += all.coefs[i],
            _ => to.push(mu, inv, all.coefs[i]),
        }
    }
    (near, wide)
}

/// Indices of `xs` in increasing order (ties in input order).
fn by_centre(xs: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&i, &j| xs[i].total_cmp(&xs[j]));
    order
}

/// The `q` quantile of `xs` (the lower of two neighbours); 0 for none.
fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut copy = xs.to_vec();
    let at = ((xs.len() - 1) as f64 * q) as usize;
    *copy.select_nth_unstable_by(at, f64::total_cmp).1
}

fn running_sum(xs: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    xs.into_iter()
        .map(|x| {
            acc += x;
            acc
        })
        .collect()
}

/// Optuna's univariate bandwidths (before the prior is appended), clipped.
fn bandwidths(xs: &[f64], order: &[usize], low: f64, high: f64, width: f64) -> Vec<f64> {
    let n = xs.len();
    let at = |r: usize| xs[order[r]];
    let min_sigma = width / f64::min(100.0, 1.0 + (n + 1) as f64);
    let mut sigmas = vec![0.0; n];
    for (r, &i) in order.iter().enumerate() {
        let left = at(r) - if r == 0 { low } else { at(r - 1) };
        let right = if r + 1 == n { high } else { at(r + 1) } - at(r);
        let sigma = match (r, n) {
            (_, 1) => left.max(right),
            (0, _) => right,
            (r, n) if r + 1 == n => left,
            _ => left.max(right),
        };
        sigmas[i] = sigma.clamp(min_sigma, width);
    }
    sigmas
}

/// Smoothed category frequencies.
pub(super) struct Categorical {
    ln_p: Vec<f64>,
    cumulative: Vec<f64>,
}

impl Categorical {
    /// From observed category `indices` with `weights`, over `n` categories.
    pub(super) fn new(
        indices: &[usize],
        weights: &[f64],
        n: usize,
        prior_weight: f64,
    ) -> Categorical {
        let mut mass = vec![prior_weight / n as f64; n];
        for (&i, &w) in indices.iter().zip(weights) {
            mass[i] += w;
        }
        let total: f64 = mass.iter().sum();
        let ln_p = mass.iter().map(|m| (m / total).ln()).collect();
        let cumulative = running_sum(mass.iter().map(|m| m / total));
        Categorical { ln_p, cumulative }
    }

    pub(super) fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.uniform() * self.cumulative.last().copied().unwrap_or(1.0);
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.ln_p.len() - 1)
    }

    pub(super) fn ln_pmf(&self, i: usize) -> f64 {
        self.ln_p[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: Internal = Internal {
        low: 0.0,
        high: 1.0,
        step: None,
    };

    /// The integral of exp(ln_pdf) over the range, by the midpoint rule.
    fn total_mass(p: &Numeric, low: f64, high: f64) -> f64 {
        let n = 20_000;
        let h = (high - low) / n as f64;
        (0..n)
            .map(|i| p.ln_pdf(low + (i as f64 + 0.5) * h).exp() * h)
            .sum()
    }

    #[test]
    fn recency_weights_follow_optuna() {
        assert_eq!(recency_weights(3), [1.0; 3]);
        let w = recency_weights(30); // linspace(1/30, 1, 5) then 25 ones
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-15 && (w[4] - 1.0).abs() < 1e-15);
        assert!((w[2] - (1.0 / 30.0 + 1.0) / 2.0).abs() < 1e-12);
        assert_eq!(w.len(), 30);
        assert_eq!(recency_weights(26)[0], 1.0 / 26.0);
    }

    #[test]
    fn bandwidths_follow_optuna() {
        // Sorted 0.1, 0.2, 0.6: ends use their inner neighbour, the middle the farther one;
        // 0.1 is clipped up to range / (1 + 4 kernels).
        let s = bandwidths(&[0.6, 0.1, 0.2], &[1, 2, 0], 0.0, 1.0, 1.0);
        assert_eq!(
            s.iter()
                .map(|x| (x * 1e9).round() / 1e9)
                .collect::<Vec<_>>(),
            [0.4, 0.2, 0.4]
        );
        // One observation: the farther range end. Duplicates: clipped to range / (1 + kernels).
        assert!((bandwidths(&[0.3], &[0], 0.0, 1.0, 1.0)[0] - 0.7).abs() < 1e-12);
        assert_eq!(bandwidths(&[0.5; 3], &[0, 1, 2], 0.0, 1.0, 1.0), [0.2; 3]);
    }

    #[test]
    fn the_cutoff_changes_nothing_but_rounding() {
        let mut rng = Rng::new(9);
        let xs: Vec<f64> = (0..1000).map(|_| rng.uniform().powi(3)).collect();
        let p = Numeric::new(&xs, &recency_weights(1000), UNIT, 1.0);
        assert!(p.near.mus.len() >= 900 && p.wide.mus.len() < 101);
        for i in 0..200 {
            let x = f64::from(i) / 199.0;
            let full = p.all.sum(x, None, 0, p.all.mus.len()).ln();
            assert!(
                (p.ln_pdf(x) - full).abs() < 1e-13,
                "x={x}: {} vs {full}",
                p.ln_pdf(x)
            );
        }
    }

    #[test]
    fn repeated_grid_values_share_a_kernel() {
        let grid = Internal {
            low: 0.0,
            high: 4.0,
            step: Some(1.0),
        };
        let xs: Vec<f64> = (0..500).map(|i| f64::from(i % 5)).collect();
        let p = Numeric::new(&xs, &[1.0; 500], grid, 1.0);
        assert!(
            p.near.mus.len() + p.wide.mus.len() <= 16,
            "{} kernels",
            p.near.mus.len()
        );
        let total: f64 = (0..5).map(|x| p.ln_pdf(f64::from(x)).exp()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        for x in 0..5 {
            let full = p.all.sum(f64::from(x), grid.step, 0, p.all.mus.len()).ln();
            assert!((p.ln_pdf(f64::from(x)) - full).abs() < 1e-12);
        }
    }

    #[test]
    fn continuous_density_integrates_to_one() {
        let p = Numeric::new(&[0.05, 0.3, 0.31, 0.9], &[1.0; 4], UNIT, 1.0);
        assert!((total_mass(&p, 0.0, 1.0) - 1.0).abs() < 1e-5);
        let log = Internal {
            low: 1e-4f64.ln(),
            high: 0.1f64.ln(),
            step: None,
        };
        let q = Numeric::new(&[-5.0, -4.0], &[0.5, 1.0], log, 1.0);
        assert!((total_mass(&q, log.low, log.high) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn grid_masses_sum_to_one() {
        let grid = Internal {
            low: 1.0,
            high: 9.0,
            step: Some(2.0),
        };
        let p = Numeric::new(&[1.0, 3.0, 3.0], &[1.0; 3], grid, 1.0);
        let total: f64 = [1.0, 3.0, 5.0, 7.0, 9.0]
            .iter()
            .map(|&x| p.ln_pdf(x).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
        assert!(p.ln_pdf(3.0) > p.ln_pdf(9.0));
    }

    #[test]
    fn samples_follow_the_density() {
        let p = Numeric::new(&[0.2], &[3.0], UNIT, 1.0); // 3/4 of the weight on the kernel at 0.2
        let mut rng = Rng::new(4);
        let xs: Vec<f64> = (0..4000).map(|_| p.sample(&mut rng)).collect();
        assert!(xs.iter().all(|x| (0.0..=1.0).contains(x)));
        let below_half = xs.iter().filter(|&&x| x < 0.5).count() as f64 / 4000.0;
        let h = 1e-3;
        let want: f64 = (0..500)
            .map(|i| p.ln_pdf((i as f64 + 0.5) * h).exp() * h)
            .sum();
        assert!((below_half - want).abs() < 0.03, "{below_half} vs {want}");
        let grid = Internal {
            low: 0.0,
            high: 4.0,
            step: Some(1.0),
        };
        let g = Numeric::new(&[2.0], &[1.0], grid, 1.0);
        assert!((0..200)
            .map(|_| g.sample(&mut rng))
            .all(|x| x.fract() == 0.0 && (0.0..=4.0).contains(&x)));
    }

    #[test]
    fn categorical_smooths_counts_with_the_prior() {
        let c = Categorical::new(&[0, 0, 2], &[1.0, 1.0, 1.0], 4, 1.0);
        let p: Vec<f64> = (0..4).map(|i| c.ln_pmf(i).exp()).collect();
        let want = [2.25 / 4.0, 0.25 / 4.0, 1.25 / 4.0, 0.25 / 4.0];
        assert!(
            p.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{p:?}"
        );
        let mut rng = Rng::new(1);
        let zeros = (0..4000).filter(|_| c.sample(&mut rng) == 0).count() as f64 / 4000.0;
        assert!((zeros - want[0]).abs() < 0.03, "{zeros}");
    }
}
