//! conv2d -> batch norm -> ReLU (MMSegmentation's ConvModule) as one libtorch op.
//!
//! Same results as the three calls in a row, but one burn node instead of three: one
//! libtorch graph, one gradient hand-over, libtorch's in-place ReLU and its backward.

use super::batch_norm::{batch_norm, batch_norm_reference, update_running};
use super::conv::{conv2d, conv2d_module_options, conv2d_reference};
use super::kernels::TorchKernels;
use super::uses_torch_kernels;
use burn::backend::Dispatch;
use burn::nn::conv::Conv2d;
use burn::nn::BatchNorm;
use burn::tensor::activation::relu;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

/// `relu(batch_norm(conv2d(x, weight, bias, options), ...))` with [`conv2d`] and
/// [`batch_norm`]'s semantics and return value (updated running statistics in training).
/// Without bias (the usual case before batch norm) it runs as one libtorch op.
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
) -> (Tensor<4>, Option<(Tensor<1>, Tensor<1>)>) {
    if bias.is_some() || !uses_torch_kernels(&x.device()) {
        let h = conv2d(x, weight, bias, options);
        let (y, stats) = batch_norm(
            h,
            gamma,
            beta,
            running_mean,
            running_var,
            momentum,
            eps,
            training,
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
    let stats = training.then(|| {
        update_running(
            running_mean,
            running_var,
            Tensor::from_dispatch(mean),
            Tensor::from_dispatch(var),
            momentum,
        )
    });
    (Tensor::from_dispatch(y), stats)
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
) -> (Tensor<4>, Option<(Tensor<1>, Tensor<1>)>) {
    let h = conv2d_reference(x, weight, bias, options);
    let (y, stats) = batch_norm_reference(
        h,
        gamma,
        beta,
        running_mean,
        running_var,
        momentum,
        eps,
        training,
    );
    (relu(y), stats)
}

/// `relu(bn.forward(conv.forward(x)))` of burn's modules, through [`conv_bn_relu`], with
/// [`super::batch_norm_module`]'s training choice and running-statistics update.
pub fn conv_bn_relu_module(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    let training = device.is_autodiff() && bn.training.is_enabled();
    let options = conv2d_module_options(conv, x.dims());
    let (running_mean, running_var) = if training {
        (bn.running_mean.value_sync(), bn.running_var.value_sync())
    } else {
        (bn.running_mean.value(), bn.running_var.value())
    };
    let (y, stats) = conv_bn_relu(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
        bn.gamma.val(),
        bn.beta.val(),
        running_mean.to_device(&device),
        running_var.to_device(&device),
        bn.momentum,
        bn.epsilon,
        training,
    );
    if let Some((mean, var)) = stats {
        bn.running_mean.update(mean);
        bn.running_var.update(var);
    }
    y
}
