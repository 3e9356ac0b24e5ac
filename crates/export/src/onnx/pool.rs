//! Adaptive average pooling at a fixed input size as two MatMuls with constant averaging
//! matrices: PyTorch's bin `i` of `out` over a length `len` covers
//! `[floor(i * len / out), ceil((i + 1) * len / out))`, bins may overlap, and a 2-D bin is
//! the product of a row bin and a column bin, so its mean is `P_h · X · P_wᵀ`.

/// PyTorch's `adaptive_avg_pool` bins: `(start, end)` of each of the `out` bins over `len`.
pub fn bins(len: usize, out: usize) -> Vec<(usize, usize)> {
    (0..out)
        .map(|i| (i * len / out, ((i + 1) * len).div_ceil(out)))
        .collect()
}

/// `[out, len]` row-major: row `i` is `1 / bin size` over bin `i`, zero elsewhere.
pub fn averaging_matrix(len: usize, out: usize) -> Vec<f32> {
    let mut m = vec![0.0; out * len];
    for (i, (start, end)) in bins(len, out).into_iter().enumerate() {
        let w = 1.0 / (end - start) as f32;
        m[i * len + start..i * len + end].fill(w);
    }
    m
}

/// The transpose of an `[rows, cols]` row-major matrix.
pub fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols)
        .flat_map(|c| (0..rows).map(move |r| m[r * cols + c]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_pytorch_and_may_overlap() {
        assert_eq!(bins(10, 3), [(0, 4), (3, 7), (6, 10)]);
        assert_eq!(bins(64, 3), [(0, 22), (21, 43), (42, 64)]);
        assert_eq!(bins(96, 6)[5], (80, 96));
        assert_eq!(bins(64, 1), [(0, 64)]);
        // Every position is covered, bins are at least len / out long.
        for (len, out) in [(64, 6), (96, 6), (16, 3), (5, 6)] {
            let b = bins(len, out);
            assert_eq!((b[0].0, b[out - 1].1), (0, len));
            assert!(b.windows(2).all(|w| w[1].0 <= w[0].1 && w[0].0 <= w[1].0));
            assert!(b.iter().all(|(s, e)| e - s >= len / out && e > s));
        }
    }

    #[test]
    fn averaging_rows_are_bin_means() {
        let m = averaging_matrix(10, 3);
        let x: Vec<f32> = (0..10).map(|v| v as f32).collect();
        let means: Vec<f32> = m
            .chunks(10)
            .map(|row| row.iter().zip(&x).map(|(a, b)| a * b).sum())
            .collect();
        // (0+1+2+3)/4, (3+4+5+6)/4, (6+7+8+9)/4
        assert_eq!(means, [1.5, 4.5, 7.5]);
        assert_eq!(
            transpose(&[1., 2., 3., 4., 5., 6.], 2, 3),
            [1., 4., 2., 5., 3., 6.]
        );
    }
}
