//! `ops::conv_bn_relu` (one libtorch op) against burn's conv2d -> batch norm -> ReLU on CPU.
#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is the backend this project chose.

use crate::util::ops::*;
use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;
use sweep_train::ops::{self, RunningVariance};

const TOL: f32 = 1e-4;

/// Forward, running statistics and the gradients of `sum(y * r)` (and of a second use of
/// the output, which the in-place ReLU's saved output must survive).
fn run(
    training: bool,
    torch: bool,
    options: ConvOptions<2>,
    running_variance: RunningVariance,
) -> (Vec<Tensor<4>>, Vec<Tensor<1>>) {
    let device = cpu_autodiff();
    let x = tensor([2, 3, 10, 9], 1, &device).require_grad();
    let w = tensor([6, 3, 3, 3], 2, &device).require_grad();
    let gamma = tensor([6], 3, &device)
        .add_scalar(1.3)
        .detach()
        .require_grad();
    let beta = tensor([6], 4, &device).require_grad();
    let rm = tensor([6], 5, &device).mul_scalar(0.1);
    let rv = tensor([6], 6, &device).abs().add_scalar(0.5);
    let f = if torch {
        ops::conv_bn_relu
    } else {
        ops::conv_bn_relu_reference
    };
    let bn = ops::BnLayer {
        running_variance,
        ..ops::BnLayer::new(gamma.clone(), beta.clone(), rm, rv, training)
    };
    let (y, stats) = f(x.clone(), w.clone(), None, options, bn);
    let r = tensor(y.dims(), 7, &device);
    // y is used twice: burn must not overwrite it in place (libtorch's ReLU saved it).
    let z = y.clone().mul_scalar(2.0).add_scalar(0.5);
    let loss = (y.clone() * r).sum() + (z.clone() * z).sum();
    let grads = loss.backward();
    assert_eq!(stats.is_some(), training);
    let mut vectors = vec![gamma.grad(&grads).unwrap(), beta.grad(&grads).unwrap()];
    if let Some((m, v)) = stats {
        vectors.push(m);
        vectors.push(v);
    }
    (
        vec![y.inner(), x.grad(&grads).unwrap(), w.grad(&grads).unwrap()],
        vectors,
    )
}

#[test]
fn conv_bn_relu_matches_burn() {
    let option_sets = [
        ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ConvOptions::new_with_padding([2, 2], [(1, 2), (0, 1)], [1, 1], 1),
    ];
    for options in option_sets {
        for (training, convention) in [
            (true, RunningVariance::Biased),
            (true, RunningVariance::Unbiased),
            (false, RunningVariance::Biased),
        ] {
            let (t4, t1) = run(training, true, options.clone(), convention);
            let (b4, b1) = run(training, false, options.clone(), convention);
            let name = format!("training {training} {convention:?}, {options:?}");
            for (what, (a, b)) in ["y", "dx", "dw"].iter().zip(t4.iter().zip(&b4)) {
                assert_close(&format!("{name}: {what}"), a, b, TOL);
            }
            let names = ["dgamma", "dbeta", "running mean", "running var"];
            assert_eq!(t1.len(), b1.len());
            for (what, (a, b)) in names.iter().zip(t1.iter().zip(&b1)) {
                assert_close(&format!("{name}: {what}"), a, b, TOL);
            }
        }
    }
}

/// The module form updates the running statistics like `BatchNorm::forward`, and with a
/// conv bias (not fused) still matches.
#[test]
fn conv_bn_relu_module_matches_modules() {
    let device = cpu_autodiff();
    for bias in [false, true] {
        let conv = Conv2dConfig::new([3, 5], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .with_bias(bias)
            .init(&device);
        let ours = BatchNormConfig::new(5).init(&device);
        let burns = BatchNormConfig::new(5).init(&device);
        for step in 0..2u64 {
            let x = tensor([2, 3, 8, 7], 10 + step, &device);
            let y_ours = ops::conv_bn_relu_module(&conv, &ours, x.clone(), RunningVariance::Biased);
            let y_burn = relu(burns.forward(conv.forward(x)));
            assert_close(
                &format!("bias {bias} step {step}: y"),
                &y_ours,
                &y_burn,
                TOL,
            );
            let g_ours = y_ours.sum().backward();
            let g_burn = y_burn.sum().backward();
            let w = conv.weight.val();
            assert_close(
                &format!("bias {bias} step {step}: dw"),
                &w.grad(&g_ours).unwrap(),
                &w.grad(&g_burn).unwrap(),
                TOL,
            );
            assert_close(
                &format!("bias {bias} step {step}: running var"),
                &ours.running_var.value_sync(),
                &burns.running_var.value_sync(),
                TOL,
            );
        }
        // Inference on the valid (non-autodiff) modules.
        let (conv_v, ours_v, burns_v) = (conv.valid(), ours.valid(), burns.valid());
        let x = tensor([1, 3, 8, 7], 20, &cpu());
        assert_close(
            "inference",
            &ops::conv_bn_relu_module(&conv_v, &ours_v, x.clone(), RunningVariance::Biased),
            &relu(burns_v.forward(conv_v.forward(x))),
            TOL,
        );
    }
}
