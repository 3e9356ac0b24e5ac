//! conv2d -> batch norm -> ReLU (MMSegmentation's ConvModule) as one libtorch op.
//!
//! Same results as the three calls in a row, but one burn node instead of three: one
//! libtorch graph, one gradient hand-over, libtorch's in-place ReLU and its backward.

use super::batch_norm::{
    batch_norm_reference_with, batch_norm_with, module_running_stats, module_training, per_channel,
    store_running_stats, update_running, RunningVariance,
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

/// `relu(batch_norm_with(conv2d(x, weight, bias, options), ...))` with [`conv2d`] and
/// [`batch_norm_with`]'s semantics and return value (updated running statistics in
/// training). Without bias (the usual case before batch norm) it runs as one libtorch op.
#[allow(clippy::too_many_arguments)]
pub fn conv_bn_relu(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    running_mean: Tensor<1>,
    running_var: Tensor<1>,
    momentum: f64,
    eps: f64,
    training: bool,
    running_variance: RunningVariance,
) -> (Tensor<4>, Option<(Tensor<1>, Tensor<1>)>) {
    if bias.is_some() || !uses_torch_kernels(&x.device()) {
        let h = conv2d(x, weight, bias, options);
        let (y, stats) = batch_norm_with(
            h,
            gamma,
            beta,
            running_mean,
            running_var,
            momentum,
            eps,
            training,
            running_variance,
        );
        return (relu(y), stats);
    }
    let (y, mean, var) = <Dispatch as TorchKernels>::torch_conv_bn_relu(
        x.into_dispatch(),
        weight.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        running_mean.clone().into_dispatch(),
        running_var.clone().into_dispatch(),
        options,
        eps,
        training,
    );
    let y = Tensor::from_dispatch(y);
    // Batch norm ran on the conv's output: n = N * H_out * W_out.
    let count = per_channel(&y);
    let stats = training.then(|| {
        update_running(
            running_mean,
            running_var,
            Tensor::from_dispatch(mean),
            Tensor::from_dispatch(var),
            momentum,
            running_variance,
            count,
        )
    });
    (y, stats)
}

/// burn's own conv2d, batch norm and ReLU (the reference the tests compare with).
#[allow(clippy::too_many_arguments)]
pub fn conv_bn_relu_reference(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    running_mean: Tensor<1>,
    running_var: Tensor<1>,
    momentum: f64,
    eps: f64,
    training: bool,
    running_variance: RunningVariance,
) -> (Tensor<4>, Option<(Tensor<1>, Tensor<1>)>) {
    let h = conv2d_reference(x, weight, bias, options);
    let (y, stats) = batch_norm_reference_with(
        h,
        gamma,
        beta,
        running_mean,
        running_var,
        momentum,
        eps,
        training,
        running_variance,
    );
    (relu(y), stats)
}

/// `relu(bn.forward(conv.forward(x)))` of burn's modules, through [`conv_bn_relu`], with
/// [`super::batch_norm_module`]'s training choice and running-statistics update.
pub fn conv_bn_relu_module(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let options = conv2d_module_options(conv, x.dims());
    conv_bn_relu_block(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
        bn,
        RunningVariance::Biased,
    )
}

/// conv2d with explicit options, then `bn` (a burn `BatchNorm` module, its running
/// statistics updated in training as [`super::batch_norm_module_with`] does), then ReLU:
/// for models that compute their conv options themselves.
pub fn conv_bn_relu_block(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    bn: &BatchNorm,
    running_variance: RunningVariance,
) -> Tensor<4> {
    let device = x.device();
    let training = module_training(bn, &x);
    let (running_mean, running_var) = module_running_stats(bn, training, &device);
    let (y, stats) = conv_bn_relu(
        x,
        weight,
        bias,
        options,
        bn.gamma.val(),
        bn.beta.val(),
        running_mean,
        running_var,
        bn.momentum,
        bn.epsilon,
        training,
        running_variance,
    );
    store_running_stats(bn, stats);
    y
}
