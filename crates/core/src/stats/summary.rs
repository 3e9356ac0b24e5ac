//! Mean, sample standard deviation and t confidence interval of a handful of values (the
//! seeds of one configuration), as a leaderboard shows them.

use serde::Serialize;

use super::t::t_quantile;

/// Location and spread of a sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Number of (non-NaN) values.
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (divisor n - 1); None for n = 1.
    pub std: Option<f64>,
    /// mean ± t_{0.975, n-1} std / sqrt(n): the 95% interval of the mean under normality;
    /// None for n < 2.
    pub ci95: Option<(f64, f64)>,
}

/// Summarizes `values`, skipping NaN (a run without the metric); None when none is left.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    // Two passes: the sum of squared deviations stays exact for near-equal values.
    let std = (n >= 2).then(|| {
        let ss: f64 = v.iter().map(|x| (x - mean).powi(2)).sum();
        (ss / (n - 1) as f64).sqrt()
    });
    let ci95 = std.map(|s| {
        let half = t_quantile(0.975, (n - 1) as f64) * s / (n as f64).sqrt();
        (mean - half, mean + half)
    });
    Some(Summary { n, mean, std, ci95 })
}

/// Sample mean and variance (divisor n - 1) of non-NaN values; None for fewer than two.
pub(crate) fn mean_var(values: &[f64]) -> Option<(usize, f64, f64)> {
    let s = summarize(values)?;
    s.std.map(|sd| (s.n, s.mean, sd * sd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_one_to_five() {
        // mean 3, std sqrt(10/4) = 1.5811388300841898, half width t_{.975,4} std/sqrt(5)
        // = 2.7764451051977944 * 0.7071067811865476 = 1.9632431614775577 (mpmath).
        let s = summarize(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(s.n, 5);
        assert_eq!(s.mean, 3.0);
        assert!((s.std.unwrap() - 2.5f64.sqrt()).abs() < 1e-15);
        let (lo, hi) = s.ci95.unwrap();
        assert!((lo - (3.0 - 1.963_243_161_477_557_7)).abs() < 1e-9);
        assert!((hi - (3.0 + 1.963_243_161_477_557_7)).abs() < 1e-9);
    }

    #[test]
    fn summary_edges() {
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[f64::NAN]), None);
        let one = summarize(&[f64::NAN, 7.5]).unwrap();
        assert_eq!((one.n, one.mean, one.std, one.ci95), (1, 7.5, None, None));
        let flat = summarize(&[2.0, 2.0, 2.0]).unwrap();
        assert_eq!(flat.std, Some(0.0));
        assert_eq!(flat.ci95, Some((2.0, 2.0)));
        let json = serde_json::to_string(&one).unwrap();
        assert_eq!(json, r#"{"n":1,"mean":7.5,"std":null,"ci95":null}"#);
    }
}
