//! Optuna's `MedianPruner` on rungs: a trial whose rung value is below the median of the
//! trials that reached the rung before it stops there. Cheap and familiar, but blind to
//! noise: with few seeds a good configuration can be stopped by one unlucky run.

use super::{num, OnArrival, RungTable};

/// The median rule; `startup` results must be at a rung before anything stops there.
#[derive(Clone, Debug, PartialEq)]
pub struct Median {
    pub startup: usize,
}

impl Default for Median {
    /// Optuna's `n_startup_trials = 5`.
    fn default() -> Median {
        Median { startup: 5 }
    }
}

/// The median of non-empty values (the mean of the middle two for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

impl OnArrival for Median {
    const NAME: &'static str = "median";

    /// Stop? and why, against the results that completed `k` before `trial`.
    fn judge(&self, table: &RungTable, trial: u64, k: usize) -> (bool, String) {
        let at = table.name(k);
        let Some((value, before)) = table.arrival(trial, k) else {
            return (false, format!("median: no result at rung {at}"));
        };
        // As Optuna's nanmedian: the others' NaN results are left out (a NaN of its own stops).
        let mut others: Vec<f64> = before.iter().map(|r| r.1).filter(|v| !v.is_nan()).collect();
        let n = others.len();
        if n < self.startup {
            return (
                false,
                format!(
                    "median: {n} earlier results at rung {at}, {} needed",
                    self.startup
                ),
            );
        }
        if value.is_nan() {
            return (true, format!("median: NaN at rung {at}"));
        }
        let m = median(&mut others);
        let (stop, op) = if value < m {
            (true, "<")
        } else {
            (false, ">=")
        };
        let why = format!(
            "median: {} {op} median {} of {n} others at rung {at}",
            num(value),
            num(m)
        );
        (stop, why)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::table;
    use super::*;
    use crate::search::rule::StopRule;

    /// Five earlier results at rung 0 (median 0.7), then trial 6 with `value`.
    fn five_then(value: f64) -> RungTable {
        let mut rows = vec![(1, 0.5), (2, 0.9), (3, 0.7), (4, 0.6), (5, 0.8)];
        rows.push((6, value));
        table(&[50, 150, 450], vec![rows])
    }

    #[test]
    fn sixth_below_the_median_of_five_is_stopped() {
        let v = Median::default().on_rung(&five_then(0.65), 6, 0).unwrap();
        assert_eq!(
            v.evidence,
            "median: 0.65 < median 0.7 of 5 others at rung 50"
        );
    }

    #[test]
    fn sixth_at_or_above_the_median_continues() {
        let t = five_then(0.7);
        assert!(Median::default().on_rung(&t, 6, 0).is_none());
        let (trial, v) = Median::default().promote(&t, &[(6, 0)]).unwrap();
        assert_eq!(trial, 6);
        assert_eq!(
            v.evidence,
            "median: 0.7 >= median 0.7 of 5 others at rung 50"
        );
    }

    #[test]
    fn nothing_stops_before_five_earlier_results() {
        let t = table(
            &[50, 450],
            vec![vec![(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.1)]],
        );
        let rule = Median::default();
        assert!((1..=4).all(|trial| rule.on_rung(&t, trial, 0).is_none()));
        let (_, v) = rule.promote(&t, &[(4, 0)]).unwrap();
        assert_eq!(v.evidence, "median: 3 earlier results at rung 50, 5 needed");
    }

    #[test]
    fn later_results_do_not_change_an_arrival_verdict() {
        // Trial 6 was above the median when it arrived; two better trials came after it.
        let mut t = five_then(0.75);
        t.by_rung[0].extend([(7, 0.95), (8, 0.99)]);
        assert!(Median::default().on_rung(&t, 6, 0).is_none());
    }

    #[test]
    fn even_count_median_and_nan() {
        let mut rows: Vec<(u64, f64)> = (1..=6).map(|t| (t, t as f64)).collect();
        rows.push((7, 3.4));
        rows.push((8, f64::NAN));
        let t = table(&[50, 450], vec![rows]);
        let rule = Median::default();
        let v = rule.on_rung(&t, 7, 0).unwrap();
        assert_eq!(
            v.evidence,
            "median: 3.4 < median 3.5 of 6 others at rung 50"
        );
        assert_eq!(
            rule.on_rung(&t, 8, 0).unwrap().evidence,
            "median: NaN at rung 50"
        );
    }

    #[test]
    fn promotes_first_paused_first_and_explains_final_stops() {
        let t = five_then(0.9);
        let rule = Median::default();
        assert_eq!(rule.promote(&t, &[(6, 0), (2, 0)]).unwrap().0, 6);
        assert!(rule.promote(&t, &[]).is_none());
        let v = rule.final_stop(&t, 6, 0);
        assert_eq!(
            v.evidence,
            "median: search over before promotion from rung 50"
        );
    }
}
