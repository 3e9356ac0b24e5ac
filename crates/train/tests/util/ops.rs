//! Shared helpers for the `ops_*` tests: seeded tensors and closeness checks.

use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn cpu() -> Device {
    Device::libtorch()
}

pub fn cpu_autodiff() -> Device {
    Device::libtorch().autodiff()
}

/// Uniform values in [-1, 1) from a seed.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

pub fn tensor<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(values(n, seed), shape), device)
}

pub fn vec_of<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.to_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 data")
}

/// Largest |a - b| relative to the largest |b| (so near-zero entries don't dominate).
pub fn rel_err<const D: usize>(actual: &Tensor<D>, expected: &Tensor<D>) -> f32 {
    assert_eq!(actual.dims(), expected.dims(), "shapes differ");
    let a = vec_of(actual);
    let b = vec_of(expected);
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    let diff = a
        .iter()
        .zip(&b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff.is_finite(), "non-finite difference");
    diff / scale
}

#[track_caller]
pub fn assert_close<const D: usize>(
    what: &str,
    actual: &Tensor<D>,
    expected: &Tensor<D>,
    tol: f32,
) {
    let err = rel_err(actual, expected);
    assert!(
        err <= tol,
        "{what}: relative error {err:e} > {tol:e}\n actual   {:?}\n expected {:?}",
        &vec_of(actual)[..vec_of(actual).len().min(8)],
        &vec_of(expected)[..vec_of(expected).len().min(8)]
    );
}

#[track_caller]
pub fn assert_close_values(what: &str, actual: &[f32], expected: &[f32], tol: f32) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol * e.abs().max(1.0),
            "{what}[{i}]: {a} vs expected {e}"
        );
    }
}
