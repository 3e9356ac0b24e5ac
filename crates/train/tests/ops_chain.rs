//! conv -> batch norm -> relu -> conv chains: libtorch ops against burn's, on CPU.
#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is the backend this project chose.

use crate::util::ops::*;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::activation::relu;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};
use sweep_train::ops;

const TOL: f32 = 1e-4;

#[test]
fn libtorch_kernels_are_used_on_libtorch_devices() {
    assert!(ops::uses_torch_kernels(&cpu()));
    assert!(ops::uses_torch_kernels(&cpu_autodiff()));
}

/// Gradients through conv -> bn -> relu -> conv(bias, stride 2) -> sum(y * r), for every
/// parameter and the input, and the running statistics. (A bias right before batch norm
/// would get an exactly-zero gradient, so the bias sits on the second conv.)
#[test]
fn chain_gradients_match_burn() {
    let run = |torch: bool| {
        let device = cpu_autodiff();
        let x = tensor([2, 3, 12, 10], 1, &device).require_grad();
        let w1 = tensor([5, 3, 3, 3], 2, &device).require_grad();
        let b2 = tensor([4], 3, &device).require_grad();
        let gamma = tensor([5], 4, &device)
            .add_scalar(1.2)
            .detach()
            .require_grad();
        let beta = tensor([5], 5, &device).require_grad();
        let w2 = tensor([4, 5, 3, 3], 6, &device).require_grad();
        let (rm, rv) = (Tensor::zeros([5], &device), Tensor::ones([5], &device));
        type Conv = fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>;
        type Bn = fn(Tensor<4>, ops::BnLayer) -> ops::BnOutput;
        let (conv, bn): (Conv, Bn) = if torch {
            (ops::conv2d, ops::batch_norm)
        } else {
            (ops::conv2d_reference, ops::batch_norm_reference)
        };
        let h = conv(
            x.clone(),
            w1.clone(),
            None,
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        );
        let layer = ops::BnLayer::new(gamma.clone(), beta.clone(), rm, rv, true);
        let (h, stats) = bn(h, layer);
        let h = relu(h);
        let y = conv(
            h,
            w2.clone(),
            Some(b2.clone()),
            ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
        );
        let r = tensor(y.dims(), 7, &device);
        let grads = (y.clone() * r).sum().backward();
        let (m, v) = stats.unwrap();
        (
            y.inner(),
            [
                x.grad(&grads).unwrap(),
                w1.grad(&grads).unwrap(),
                w2.grad(&grads).unwrap(),
            ],
            [
                b2.grad(&grads).unwrap(),
                gamma.grad(&grads).unwrap(),
                beta.grad(&grads).unwrap(),
                m,
                v,
            ],
        )
    };
    let (y_t, g4_t, g1_t) = run(true);
    let (y_b, g4_b, g1_b) = run(false);
    assert_close("y", &y_t, &y_b, TOL);
    for (name, (a, b)) in ["dx", "dw1", "dw2"].iter().zip(g4_t.iter().zip(&g4_b)) {
        assert_close(name, a, b, TOL);
    }
    let names = ["db2", "dgamma", "dbeta", "running mean", "running var"];
    for (name, (a, b)) in names.iter().zip(g1_t.iter().zip(&g1_b)) {
        assert_close(name, a, b, TOL);
    }
}

/// A block built from burn's modules, as the model's ConvModule is.
#[derive(Module, Debug)]
struct Block {
    conv1: Conv2d,
    bn: BatchNorm,
    conv2: Conv2d,
}

impl Block {
    /// Deterministic parameters (burn's initialiser draws from a global RNG).
    fn new(device: &Device) -> Self {
        let mut conv1 = Conv2dConfig::new([2, 4], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init(device);
        conv1.weight = Param::from_tensor(tensor([4, 2, 3, 3], 11, device).mul_scalar(0.5));
        conv1.bias = Some(Param::from_tensor(tensor([4], 12, device)));
        let mut conv2 = Conv2dConfig::new([4, 3], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_stride([2, 2])
            .with_bias(false)
            .init(device);
        conv2.weight = Param::from_tensor(tensor([3, 4, 3, 3], 13, device).mul_scalar(0.5));
        Block {
            conv1,
            bn: BatchNormConfig::new(4).init(device),
            conv2,
        }
    }

    fn forward(&self, x: Tensor<4>, torch: bool) -> Tensor<4> {
        if torch {
            let h = ops::conv2d_module(&self.conv1, x);
            let h = relu(ops::batch_norm_module(
                &self.bn,
                h,
                ops::RunningVariance::Biased,
            ));
            ops::conv2d_module(&self.conv2, h)
        } else {
            let h = self.conv1.forward(x);
            let h = relu(self.bn.forward(h));
            self.conv2.forward(h)
        }
    }
}

/// Three SGD steps (momentum, weight decay) of the same block through either path end with
/// the same parameters and running statistics: swapping the calls is invisible.
#[test]
fn training_steps_match_burn() {
    let device = cpu_autodiff();
    let train = |torch: bool| {
        let mut block = Block::new(&device);
        let mut optim = SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
            .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
            .init();
        let mut losses = Vec::new();
        for step in 0..3u64 {
            let x = tensor([2, 2, 9, 8], 20 + step, &device);
            let target = tensor([2, 3, 5, 4], 30 + step, &device);
            let diff = block.forward(x, torch) - target;
            let loss = (diff.clone() * diff).mean();
            losses.push(vec_of(&loss)[0]);
            let grads = GradientsParams::from_grads(loss.backward(), &block);
            block = optim.step(0.1, block, grads);
        }
        (block, losses)
    };
    let (ours, loss_t) = train(true);
    let (burns, loss_b) = train(false);
    assert_close_values("losses", &loss_t, &loss_b, TOL);
    assert!(
        loss_t[2] < loss_t[0],
        "training reduces the loss: {loss_t:?}"
    );
    let pairs = [
        (
            "conv1.weight",
            ours.conv1.weight.val(),
            burns.conv1.weight.val(),
        ),
        (
            "conv2.weight",
            ours.conv2.weight.val(),
            burns.conv2.weight.val(),
        ),
    ];
    for (name, a, b) in &pairs {
        assert_close(name, a, b, TOL);
    }
    let vectors = [
        (
            "conv1.bias",
            ours.conv1.bias.as_ref().unwrap().val(),
            burns.conv1.bias.as_ref().unwrap().val(),
        ),
        ("bn.gamma", ours.bn.gamma.val(), burns.bn.gamma.val()),
        ("bn.beta", ours.bn.beta.val(), burns.bn.beta.val()),
        (
            "bn.running_mean",
            ours.bn.running_mean.value_sync(),
            burns.bn.running_mean.value_sync(),
        ),
        (
            "bn.running_var",
            ours.bn.running_var.value_sync(),
            burns.bn.running_var.value_sync(),
        ),
    ];
    for (name, a, b) in &vectors {
        assert_close(name, a, b, TOL);
    }
}
