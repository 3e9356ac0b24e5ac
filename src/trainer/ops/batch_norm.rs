//! Batch norm with burn's semantics, on libtorch's kernels where the tensors live on LibTorch.

use super::kernels::TorchKernels;
use super::uses_torch_kernels;
use burn::backend::Dispatch;
use burn::nn::BatchNorm;
use burn::tensor::Tensor;

/// Batch norm of `x` `[N, C, H, W]` with burn's `BatchNorm` semantics.
///
/// Training: normalises with the batch's mean and biased variance and returns the updated
/// running statistics, `running * (1 - momentum) + batch * momentum` with the *biased*
/// batch variance (burn's convention; PyTorch's running variance is unbiased), detached.
/// Inference: normalises with `running_mean` / `running_var` and returns `None`.
/// Gradients flow to `x`, `gamma` and `beta`; the statistics are constants.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    running_mean: Tensor<1>,
    running_var: Tensor<1>,
    momentum: f64,
    eps: f64,
    training: bool,
) -> (Tensor<4>, Option<(Tensor<1>, Tensor<1>)>) {
    if !uses_torch_kernels(&x.device()) {
        return batch_norm_reference(
            x,
            gamma,
            beta,
            running_mean,
            running_var,
            momentum,
            eps,
            training,
        );
    }
    check_shapes(&x, &gamma, &beta, &running_mean, &running_var);
    if training {
        let (y, mean, var) = <Dispatch as TorchKernels>::torch_batch_norm_train(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            eps,
        );
        let stats = update_running(
            running_mean,
            running_var,
            Tensor::from_dispatch(mean),
            Tensor::from_dispatch(var),
            momentum,
        );
        (Tensor::from_dispatch(y), Some(stats))
    } else {
        let y = <Dispatch as TorchKernels>::torch_batch_norm_eval(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            running_mean.into_dispatch(),
            running_var.into_dispatch(),
            eps,
        );
        (Tensor::from_dispatch(y), None)
    }
}

/// burn's own batch norm (the fallback, and the reference the tests compare with):
/// `module::batch_norm_train` / `module::batch_norm` and burn-nn's running-stat update.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_reference(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    running_mean: Tensor<1>,
    running_var: Tensor<1>,
    momentum: f64,
    eps: f64,
    training: bool,
) -> (Tensor<4>, Option<(Tensor<1>, Tensor<1>)>) {
    if training {
        let result = burn::tensor::module::batch_norm_train(x, gamma, beta, eps);
        let stats = update_running(
            running_mean,
            running_var,
            result.mean,
            result.variance,
            momentum,
        );
        (result.output, Some(stats))
    } else {
        let y = burn::tensor::module::batch_norm(x, gamma, beta, running_mean, running_var, eps);
        (y, None)
    }
}

/// burn-nn 0.22.1 `BatchNorm::forward_train`'s update, operation for operation.
pub(crate) fn update_running(
    running_mean: Tensor<1>,
    running_var: Tensor<1>,
    mean: Tensor<1>,
    var: Tensor<1>,
    momentum: f64,
) -> (Tensor<1>, Tensor<1>) {
    let mean = running_mean
        .mul_scalar(1.0 - momentum)
        .add(mean.detach().mul_scalar(momentum));
    let var = running_var
        .mul_scalar(1.0 - momentum)
        .add(var.detach().mul_scalar(momentum));
    (mean.detach(), var.detach())
}

/// `bn.forward(x)` of burn's `nn::BatchNorm` on a 4-D input, through [`batch_norm`]:
/// the same training/inference choice (autodiff device and training flag on) and, in
/// training, the same update of the module's running statistics (`RunningState::update`
/// takes `&self`, so the module is updated in place as burn's own forward does).
pub fn batch_norm_module(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    let training = device.is_autodiff() && bn.training.is_enabled();
    if training {
        let running_mean = bn.running_mean.value_sync().to_device(&device);
        let running_var = bn.running_var.value_sync().to_device(&device);
        let (y, stats) = batch_norm(
            x,
            bn.gamma.val(),
            bn.beta.val(),
            running_mean,
            running_var,
            bn.momentum,
            bn.epsilon,
            true,
        );
        let (mean, var) = stats.expect("training batch norm returns running statistics");
        bn.running_mean.update(mean);
        bn.running_var.update(var);
        y
    } else {
        let running_mean = bn.running_mean.value().to_device(&device);
        let running_var = bn.running_var.value().to_device(&device);
        batch_norm(
            x,
            bn.gamma.val(),
            bn.beta.val(),
            running_mean,
            running_var,
            bn.momentum,
            bn.epsilon,
            false,
        )
        .0
    }
}

fn check_shapes(
    x: &Tensor<4>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    running_mean: &Tensor<1>,
    running_var: &Tensor<1>,
) {
    let channels = x.dims()[1];
    for (name, t) in [
        ("gamma", gamma),
        ("beta", beta),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ] {
        assert!(
            t.dims() == [channels],
            "batch_norm: {name} has shape {:?}, expected [{channels}] (input {:?})",
            t.dims(),
            x.dims()
        );
    }
}
