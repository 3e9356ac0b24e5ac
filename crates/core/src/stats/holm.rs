//! Holm–Bonferroni step-down correction: family-wise error control when one best
//! configuration is compared with every other one.

use serde::Serialize;

/// The outcome for one hypothesis of the family.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct HolmDecision {
    /// The raw p-value.
    pub p: f64,
    /// Holm's adjusted p-value: max over the smaller-or-equal p_(j) of min(1, (m-j+1) p_(j)).
    pub p_adjusted: f64,
    /// Whether the hypothesis is rejected at the family-wise level `alpha`.
    pub rejected: bool,
}

/// Holm's procedure over `p_values` at family-wise level `alpha`; the decisions come back
/// in the input order. Sorted ascending, p_(i) is rejected while p_(i) <= alpha / (m-i+1),
/// and the first non-rejection stops it. A NaN p-value sorts last and is never rejected.
pub fn holm(p_values: &[f64], alpha: f64) -> Vec<HolmDecision> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    // Stable: equal p-values keep their input order (their adjusted values are equal anyway).
    order.sort_by(|&i, &j| {
        let (a, b) = (p_values[i], p_values[j]);
        a.is_nan().cmp(&b.is_nan()).then(a.total_cmp(&b))
    });
    let mut out = vec![
        HolmDecision {
            p: f64::NAN,
            p_adjusted: f64::NAN,
            rejected: false,
        };
        m
    ];
    let (mut running_max, mut rejecting) = (0.0_f64, true);
    for (rank, &i) in order.iter().enumerate() {
        let p = p_values[i];
        let factor = (m - rank) as f64;
        // f64::min ignores NaN: a NaN p-value is adjusted to 1.
        running_max = running_max.max((factor * p).min(1.0));
        rejecting = rejecting && p <= alpha / factor;
        out[i] = HolmDecision {
            p,
            p_adjusted: running_max,
            rejected: rejecting,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_family_of_four() {
        // Sorted: 0.005 (#3), 0.01 (#0), 0.03 (#2), 0.04 (#1); m = 4, alpha = 0.05.
        // 0.005 <= 0.05/4 = 0.0125 reject, adj 4*0.005 = 0.02;
        // 0.01 <= 0.05/3 = 0.01667 reject, adj 3*0.01 = 0.03;
        // 0.03 > 0.05/2 = 0.025 stop, adj 2*0.03 = 0.06; 0.04: adj max(0.06, 0.04) = 0.06.
        let d = holm(&[0.01, 0.04, 0.03, 0.005], 0.05);
        let rejected: Vec<bool> = d.iter().map(|x| x.rejected).collect();
        assert_eq!(rejected, [true, false, false, true]);
        let adj: Vec<f64> = d.iter().map(|x| x.p_adjusted).collect();
        for (got, want) in adj.iter().zip([0.03, 0.06, 0.06, 0.02]) {
            assert!(close(*got, want), "{adj:?}");
        }
        assert_eq!(d[1].p, 0.04);
    }

    #[test]
    fn stops_at_first_non_rejection() {
        // 0.04 > 0.05/2 stops the procedure, so 0.045 <= 0.05/1 is not rejected either.
        let d = holm(&[0.045, 0.04], 0.05);
        assert!(!d[0].rejected && !d[1].rejected);
        assert!(close(d[1].p_adjusted, 0.08) && close(d[0].p_adjusted, 0.08));
    }

    #[test]
    fn caps_at_one_nan_and_empty() {
        assert!(holm(&[], 0.05).is_empty());
        let d = holm(&[0.6, f64::NAN, 0.001], 0.05);
        assert!(d[2].rejected && !d[0].rejected && !d[1].rejected);
        assert!(close(d[2].p_adjusted, 0.003));
        assert_eq!(d[0].p_adjusted, 1.0);
        assert_eq!(d[1].p_adjusted, 1.0);
    }
}
