//! conv2d -> batch norm -> ReLU (MMSegmentation's ConvModule) as one libtorch op.
//!
//! Same results as the three calls in a row, but one burn node instead of three: one
//! libtorch graph, one gradient hand-over, libtorch's in-place ReLU and its backward.

use super::batch_norm::{
    batch_norm, batch_norm_reference, per_channel, store_running_stats, BnLayer, BnOutput,
    RunningVariance,
};
use super::conv::{conv2d, conv2d_module_options, conv2d_reference};
use super::kernels::TorchKernels;
use super::uses_torch_kernels;
use burn::backend::Dispatch;
use burn::nn::conv::Conv2d;
use burn::nn::BatchNorm;
use burn::tensor::activation::relu;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

/// `relu(batch_norm(conv2d(x, weight, bias, options), bn))` with [`conv2d`] and
/// [`batch_norm`]'s semantics and return value (updated running statistics in training).
/// Without bias (the usual case before batch norm) it runs as one libtorch op.
pub fn conv_bn_relu(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    bn: BnLayer,
) -> BnOutput {
    if bias.is_some() || !uses_torch_kernels(&x.device()) {
        let (y, stats) = batch_norm(conv2d(x, weight, bias, options), bn);
        return (relu(y), stats);
    }
    let (y, mean, var) = <Dispatch as TorchKernels>::torch_conv_bn_relu(
        x.into_dispatch(),
        weight.into_dispatch(),
        bn.gamma.clone().into_dispatch(),
        bn.beta.clone().into_dispatch(),
        bn.running_mean.clone().into_dispatch(),
        bn.running_var.clone().into_dispatch(),
        options,
        bn.eps,
        bn.training,
    );
    let y = Tensor::from_dispatch(y);
    // Batch norm ran on the conv's output: n = N * H_out * W_out.
    let count = per_channel(&y);
    let stats = bn.training.then(|| {
        bn.updated_running(
            Tensor::from_dispatch(mean),
            Tensor::from_dispatch(var),
            count,
        )
    });
    (y, stats)
}

/// burn's own conv2d, batch norm and ReLU (the reference the tests compare with).
pub fn conv_bn_relu_reference(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    bn: BnLayer,
) -> BnOutput {
    let (y, stats) = batch_norm_reference(conv2d_reference(x, weight, bias, options), bn);
    (relu(y), stats)
}

/// `relu(bn.forward(conv.forward(x)))` of burn's modules, through [`conv_bn_relu`], with
/// [`super::batch_norm_module`]'s training choice, running-statistics update and choice of
/// running-variance convention.
pub fn conv_bn_relu_module(
    conv: &Conv2d,
    bn: &BatchNorm,
    x: Tensor<4>,
    running_variance: RunningVariance,
) -> Tensor<4> {
    let options = conv2d_module_options(conv, x.dims());
    conv_bn_relu_block(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
        bn,
        running_variance,
    )
}

/// conv2d with explicit options, then `bn` (a burn `BatchNorm` module, its running
/// statistics updated in training as [`super::batch_norm_module`] does), then ReLU:
/// for models that compute their conv options themselves.
pub fn conv_bn_relu_block(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    bn: &BatchNorm,
    running_variance: RunningVariance,
) -> Tensor<4> {
    let layer = BnLayer::of_module(bn, &x, running_variance);
    let (y, stats) = conv_bn_relu(x, weight, bias, options, layer);
    store_running_stats(bn, stats);
    y
}
