//! Spearman's rank correlation: whether an early rung orders trials as the full length does
//! (the premise of early stopping), insensitive to the metric's scale.

/// Spearman's rho of (x, y) pairs: Pearson's correlation of their ranks, ties given their
/// average rank. Pairs with a NaN side are left out; None below 3 pairs or when either
/// side is constant (rho is undefined).
pub fn spearman(pairs: &[(f64, f64)]) -> Option<f64> {
    let kept: Vec<&(f64, f64)> = pairs
        .iter()
        .filter(|p| !p.0.is_nan() && !p.1.is_nan())
        .collect();
    if kept.len() < 3 {
        return None;
    }
    let x = ranks(&kept.iter().map(|p| p.0).collect::<Vec<_>>());
    let y = ranks(&kept.iter().map(|p| p.1).collect::<Vec<_>>());
    pearson(&x, &y)
}

/// 1-based ranks, ties sharing the mean of the ranks they span.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let v = values[order[start]];
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| values[i] == v)
                .count();
        // Ranks start+1 ..= end share their mean.
        let shared = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = shared;
        }
        start = end;
    }
    ranks
}

/// Pearson's correlation; None when either side has no variance.
fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotone_is_one_reversed_is_minus_one() {
        let up: Vec<(f64, f64)> = (0..6).map(|i| (i as f64, (i as f64).exp())).collect();
        assert_eq!(spearman(&up), Some(1.0));
        let down: Vec<(f64, f64)> = up.iter().map(|&(x, y)| (x, -y)).collect();
        assert_eq!(spearman(&down), Some(-1.0));
    }

    #[test]
    fn ties_get_average_ranks() {
        // x ranks 1, 2.5, 2.5, 4; y ranks 1, 3, 2, 4: rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9).
        let rho = spearman(&[(1.0, 10.0), (2.0, 30.0), (2.0, 20.0), (3.0, 40.0)]).unwrap();
        assert!((rho - 0.9f64.sqrt()).abs() < 1e-12, "{rho}");
        assert_eq!(ranks(&[5.0, 1.0, 5.0, 5.0, 0.0]), [4.0, 2.0, 4.0, 4.0, 1.0]);
    }

    #[test]
    fn undefined_below_three_pairs_or_without_variance() {
        assert_eq!(spearman(&[(1.0, 2.0), (2.0, 3.0)]), None);
        assert_eq!(spearman(&[(1.0, 2.0), (2.0, 2.0), (3.0, 2.0)]), None);
        assert_eq!(spearman(&[(1.0, 1.0), (2.0, 2.0), (f64::NAN, 3.0)]), None);
        let with_nan = [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (4.0, f64::NAN)];
        assert_eq!(spearman(&with_nan), Some(1.0));
    }
}
