//! `ops::batch_norm` (libtorch forward + backward) against burn's batch norm on CPU.
#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is the backend this project chose.

use crate::util::ops::*;
use burn::module::Module;
use burn::nn::BatchNormConfig;
use burn::tensor::{Device, Tensor};
use sweep_train::ops::{self, BnLayer, RunningVariance};

const TOL: f32 = 1e-4;

struct Run {
    y: Tensor<4>,
    stats: Option<(Tensor<1>, Tensor<1>)>,
    dx: Tensor<4>,
    dgamma: Tensor<1>,
    dbeta: Tensor<1>,
}

fn run(shape: [usize; 4], momentum: f64, training: bool, torch: bool) -> Run {
    let device = cpu_autodiff();
    let c = shape[1];
    // Inputs away from zero mean / unit variance so normalisation does something.
    let x = tensor(shape, 1, &device)
        .mul_scalar(3.0)
        .add_scalar(0.7)
        .detach()
        .require_grad();
    let gamma = tensor([c], 2, &device)
        .add_scalar(1.5)
        .detach()
        .require_grad();
    let beta = tensor([c], 3, &device).require_grad();
    let running_mean = tensor([c], 4, &device);
    let running_var = tensor([c], 5, &device).abs().add_scalar(0.5);
    let f = if torch {
        ops::batch_norm
    } else {
        ops::batch_norm_reference
    };
    let bn = BnLayer {
        momentum,
        ..BnLayer::new(
            gamma.clone(),
            beta.clone(),
            running_mean,
            running_var,
            training,
        )
    };
    let (y, stats) = f(x.clone(), bn);
    let r = tensor(y.dims(), 6, &device);
    let grads = (y.clone() * r).sum().backward();
    Run {
        dx: x.grad(&grads).expect("dx"),
        dgamma: gamma.grad(&grads).expect("dgamma"),
        dbeta: beta.grad(&grads).expect("dbeta"),
        y: y.inner(),
        stats,
    }
}

#[test]
fn batch_norm_matches_burn_forward_gradients_and_running_stats() {
    for (shape, momentum) in [
        ([2, 3, 5, 6], 0.1),
        ([1, 4, 7, 5], 0.3),
        ([2, 2, 1, 3], 0.1),
        ([1, 3, 16, 16], 1.0),
    ] {
        for training in [true, false] {
            let torch = run(shape, momentum, training, true);
            let burn = run(shape, momentum, training, false);
            let name = format!("{shape:?} momentum {momentum} training {training}");
            assert_close(&format!("{name}: y"), &torch.y, &burn.y, TOL);
            assert_close(&format!("{name}: dx"), &torch.dx, &burn.dx, TOL);
            assert_close(&format!("{name}: dgamma"), &torch.dgamma, &burn.dgamma, TOL);
            assert_close(&format!("{name}: dbeta"), &torch.dbeta, &burn.dbeta, TOL);
            match (&torch.stats, &burn.stats) {
                (Some((tm, tv)), Some((bm, bv))) => {
                    assert!(training);
                    assert_close(&format!("{name}: running mean"), tm, bm, TOL);
                    assert_close(&format!("{name}: running var"), tv, bv, TOL);
                }
                (None, None) => assert!(!training),
                _ => panic!("{name}: one path returned running stats, the other not"),
            }
        }
    }
}

#[test]
fn batch_norm_on_a_plain_device_matches_burn() {
    let device = cpu();
    let x = tensor([2, 3, 4, 5], 7, &device)
        .mul_scalar(2.0)
        .add_scalar(-0.4);
    let gamma = tensor([3], 8, &device);
    let beta = tensor([3], 9, &device);
    let mean = tensor([3], 10, &device);
    let var = tensor([3], 11, &device).abs().add_scalar(0.2);
    for training in [true, false] {
        let args = || {
            (
                x.clone(),
                gamma.clone(),
                beta.clone(),
                mean.clone(),
                var.clone(),
            )
        };
        let (a, b, c, d, e) = args();
        let (y_t, s_t) = ops::batch_norm(a, BnLayer::new(b, c, d, e, training));
        let (a, b, c, d, e) = args();
        let (y_b, s_b) = ops::batch_norm_reference(a, BnLayer::new(b, c, d, e, training));
        assert_close("y", &y_t, &y_b, TOL);
        assert_eq!(s_t.is_some(), training);
        if let (Some((tm, tv)), Some((bm, bv))) = (s_t, s_b) {
            assert_close("running mean", &tm, &bm, TOL);
            assert_close("running var", &tv, &bv, TOL);
        }
    }
}

/// One channel, x = 1, 2, 3, 4: mean 2.5, biased variance 1.25 (burn's running variance
/// uses the biased one: PyTorch's unbiased 5/3 would give 1.0667 below).
#[test]
fn batch_norm_hand_computed() {
    let device = cpu_autodiff();
    let x = Tensor::<1>::from_floats([1., 2., 3., 4.], &device)
        .reshape([1, 1, 2, 2])
        .require_grad();
    let gamma = Tensor::<1>::from_floats([2.0], &device).require_grad();
    let beta = Tensor::<1>::from_floats([1.0], &device).require_grad();
    let layer = BnLayer::new(
        gamma.clone(),
        beta.clone(),
        Tensor::zeros([1], &device),
        Tensor::ones([1], &device),
        true,
    );
    let (y, stats) = ops::batch_norm(x.clone(), layer.clone());
    let std = (1.25f32 + 1e-5).sqrt();
    let expected: Vec<f32> = [1., 2., 3., 4.]
        .iter()
        .map(|v| 2.0 * (v - 2.5) / std + 1.0)
        .collect();
    assert_close_values("y", &vec_of(&y), &expected, 1e-5);
    let (mean, var) = stats.unwrap();
    assert_close_values("running mean", &vec_of(&mean), &[0.25], 1e-6);
    assert_close_values("running var", &vec_of(&var), &[0.9 + 0.1 * 1.25], 1e-6);
    // PyTorch's convention: the unbiased variance 5/3 feeds the running variance.
    let (_, stats) = ops::batch_norm(
        x.clone(),
        BnLayer {
            running_variance: RunningVariance::Unbiased,
            ..layer
        },
    );
    let (mean, var) = stats.unwrap();
    assert_close_values("unbiased: running mean", &vec_of(&mean), &[0.25], 1e-6);
    assert_close_values(
        "unbiased: running var",
        &vec_of(&var),
        &[0.9 + 0.1 * 5.0 / 3.0],
        1e-6,
    );
    // d sum(y) / d beta = 4; / d gamma = sum(normalised) = 0; / d x = 0 (normalisation
    // removes any shift of the whole batch).
    let grads = y.sum().backward();
    assert_close_values("dbeta", &vec_of(&beta.grad(&grads).unwrap()), &[4.0], 1e-5);
    assert_close_values(
        "dgamma",
        &vec_of(&gamma.grad(&grads).unwrap()),
        &[0.0],
        1e-5,
    );
    assert_close_values("dx", &vec_of(&x.grad(&grads).unwrap()), &[0.0; 4], 1e-5);
}

/// `batch_norm_module` behaves as `BatchNorm::forward`: outputs, gradients and the module's
/// running statistics after several training steps, then inference.
#[test]
fn batch_norm_module_matches_batch_norm_forward() {
    let device = cpu_autodiff();
    // Two separate modules: clones of a BatchNorm share their running state.
    let ours = BatchNormConfig::new(3).with_momentum(0.2).init(&device);
    let burns = BatchNormConfig::new(3).with_momentum(0.2).init(&device);
    for step in 0..3u64 {
        let x = tensor([2, 3, 5, 4], 50 + step, &device)
            .mul_scalar(1.0 + step as f32)
            .add_scalar(0.3)
            .detach()
            .require_grad();
        let y_ours = ops::batch_norm_module(&ours, x.clone(), RunningVariance::Biased);
        let y_burn = burns.forward(x.clone());
        assert_close(&format!("step {step}: y"), &y_ours, &y_burn, TOL);
        let r = tensor(y_ours.dims(), 60 + step, &device);
        let g_ours = (y_ours * r.clone()).sum().backward();
        let g_burn = (y_burn * r).sum().backward();
        assert_close(
            &format!("step {step}: dx"),
            &x.grad(&g_ours).unwrap(),
            &x.grad(&g_burn).unwrap(),
            TOL,
        );
        assert_close(
            &format!("step {step}: dgamma"),
            &ours.gamma.val().grad(&g_ours).unwrap(),
            &burns.gamma.val().grad(&g_burn).unwrap(),
            TOL,
        );
        assert_close(
            &format!("step {step}: running mean"),
            &ours.running_mean.value_sync(),
            &burns.running_mean.value_sync(),
            TOL,
        );
        assert_close(
            &format!("step {step}: running var"),
            &ours.running_var.value_sync(),
            &burns.running_var.value_sync(),
            TOL,
        );
    }
    // The statistics moved away from their initial 0 / 1.
    assert!(vec_of(&ours.running_mean.value_sync())
        .iter()
        .all(|v| v.abs() > 1e-3));
    // Inference: the modules without autodiff, with the learned running statistics.
    let ours_eval = ours.valid();
    let burns_eval = burns.valid();
    let x = tensor([1, 3, 4, 4], 70, &Device::libtorch());
    let before = vec_of(&ours_eval.running_mean.value_sync());
    assert_close(
        "inference y",
        &ops::batch_norm_module(&ours_eval, x.clone(), RunningVariance::Biased),
        &burns_eval.forward(x),
        TOL,
    );
    assert_eq!(
        vec_of(&ours_eval.running_mean.value_sync()),
        before,
        "inference leaves the running statistics alone"
    );
}

/// `batch_norm_module(.., Unbiased)` keeps PyTorch's running variance: compared with
/// that update written out (burn's batch statistics, unbiased by n / (n - 1)).
#[test]
fn batch_norm_module_with_pytorch_running_variance() {
    let device = cpu_autodiff();
    let bn = BatchNormConfig::new(3).with_momentum(0.1).init(&device);
    let mut expected_mean = Tensor::<1>::zeros([3], &device);
    let mut expected_var = Tensor::<1>::ones([3], &device);
    for step in 0..3u64 {
        let x = tensor([2, 3, 4, 5], 80 + step, &device)
            .mul_scalar(2.0)
            .add_scalar(0.1 * step as f32);
        let y = ops::batch_norm_module(&bn, x.clone(), RunningVariance::Unbiased);
        let stats = burn::tensor::module::batch_norm_train(
            x,
            Tensor::ones([3], &device),
            Tensor::zeros([3], &device),
            1e-5,
        );
        assert_close(&format!("step {step}: y"), &y, &stats.output, TOL);
        let n = 2.0 * 4.0 * 5.0;
        expected_mean = expected_mean
            .mul_scalar(0.9)
            .add(stats.mean.mul_scalar(0.1));
        expected_var = expected_var
            .mul_scalar(0.9)
            .add(stats.variance.mul_scalar(0.1 * n / (n - 1.0)));
        assert_close(
            &format!("step {step}: running mean"),
            &bn.running_mean.value_sync(),
            &expected_mean,
            TOL,
        );
        assert_close(
            &format!("step {step}: running var"),
            &bn.running_var.value_sync(),
            &expected_var,
            TOL,
        );
    }
}
