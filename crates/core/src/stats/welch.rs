//! Welch's unequal-variance t-test: two configurations compared by their per-seed values
//! when no per-image counts are available.

use serde::Serialize;

use super::summary::mean_var;
use super::t::{t_quantile, t_sf};

/// A two-sample comparison of means.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TwoSample {
    /// mean(a) - mean(b).
    pub diff: f64,
    /// 95% interval of the difference: diff ± t_{0.975, df} se.
    pub ci95: (f64, f64),
    /// Two-sided p-value of H0 "equal means".
    pub p_two_sided: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
}

/// Welch's t-test of mean(a) = mean(b), NaN values skipped. None unless both sides have at
/// least two values and at least one has a non-zero variance (otherwise se = 0).
pub fn welch(a: &[f64], b: &[f64]) -> Option<TwoSample> {
    let (na, ma, va) = mean_var(a)?;
    let (nb, mb, vb) = mean_var(b)?;
    let (ea, eb) = (va / na as f64, vb / nb as f64);
    let se2 = ea + eb;
    if se2 <= 0.0 {
        return None;
    }
    let se = se2.sqrt();
    let df = se2 * se2 / (ea * ea / (na - 1) as f64 + eb * eb / (nb - 1) as f64);
    let diff = ma - mb;
    let half = t_quantile(0.975, df) * se;
    Some(TwoSample {
        diff,
        ci95: (diff - half, diff + half),
        p_two_sided: (2.0 * t_sf((diff / se).abs(), df)).min(1.0),
        df,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_case() {
        // a = 1..5: mean 3, var 10/4 = 2.5; b = 2a: mean 6, var 40/4 = 10.
        // se² = 2.5/5 + 10/5 = 2.5, t = -3 / sqrt(2.5) = -1.8973665961010276,
        // df = 2.5² / ((0.5²)/4 + 2²/4) = 6.25 / 1.0625 = 100/17 = 5.882352941176471.
        // mpmath (40 digits): p = 2 P(T_df > 1.897...) = 0.10753119493062724 (also by
        // integrating the density), t_{0.975, df} = 2.4588237096991469, so the interval is
        // -3 ± 2.4588237096991469 * 1.5811388300841898 = (-6.887741643736976, 0.887741643736976).
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [2.0, 4.0, 6.0, 8.0, 10.0];
        let r = welch(&a, &b).unwrap();
        assert_eq!(r.diff, -3.0);
        assert!((r.df - 100.0 / 17.0).abs() < 1e-12);
        assert!((r.p_two_sided - 0.107_531_194_930_627_24).abs() < 1e-9);
        assert!((r.ci95.0 - -6.887_741_643_736_976).abs() < 1e-8);
        assert!((r.ci95.1 - 0.887_741_643_736_976).abs() < 1e-8);
        // Swapping the sides flips the difference and keeps the p-value.
        let s = welch(&b, &a).unwrap();
        assert_eq!(s.diff, 3.0);
        assert!((s.p_two_sided - r.p_two_sided).abs() < 1e-15);
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(welch(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(welch(&[1.0, 1.0], &[2.0, 2.0]), None);
        assert_eq!(welch(&[1.0, f64::NAN], &[1.0, 2.0]), None);
        // One side constant is fine: df = n_other - 1 exactly.
        let r = welch(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((r.df - 2.0).abs() < 1e-12);
    }
}
