//! Batch norm with burn's (or PyTorch's) semantics, on libtorch's kernels where the tensors
//! live on LibTorch.

use super::kernels::TorchKernels;
use super::uses_torch_kernels;
use burn::backend::Dispatch;
use burn::nn::BatchNorm;
use burn::tensor::Tensor;

/// Which batch variance feeds the running variance in training. Normalisation always uses
/// the biased one; only the running statistic differs between the two libraries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunningVariance {
    /// burn's `nn::BatchNorm`: the biased (population) batch variance.
    Biased,
    /// PyTorch's `nn.BatchNorm2d` (and so MMSegmentation): the unbiased batch variance,
    /// biased * n / (n - 1) with n = N * H * W (factor 1 when n = 1).
    Unbiased,
}

/// Batch norm of `x` `[N, C, H, W]` with burn's `BatchNorm` semantics.
///
/// Training: normalises with the batch's mean and biased variance and returns the updated
/// running statistics, `running * (1 - momentum) + batch * momentum` with the *biased*
/// batch variance (burn's convention; see [`batch_norm_with`] for PyTorch's), detached.
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
    batch_norm_with(
        x,
        gamma,
        beta,
        running_mean,
        running_var,
        momentum,
        eps,
        training,
        RunningVariance::Biased,
    )
}

/// [`batch_norm`] with a choice of running-variance convention.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_with(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    running_mean: Tensor<1>,
    running_var: Tensor<1>,
    momentum: f64,
    eps: f64,
    training: bool,
    running_variance: RunningVariance,
) -> (Tensor<4>, Option<(Tensor<1>, Tensor<1>)>) {
    if !uses_torch_kernels(&x.device()) {
        return batch_norm_reference_with(
            x,
            gamma,
            beta,
            running_mean,
            running_var,
            momentum,
            eps,
            training,
            running_variance,
        );
    }
    check_shapes(&x, &gamma, &beta, &running_mean, &running_var);
    if training {
        let count = per_channel(&x);
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
            running_variance,
            count,
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
    batch_norm_reference_with(
        x,
        gamma,
        beta,
        running_mean,
        running_var,
        momentum,
        eps,
        training,
        RunningVariance::Biased,
    )
}

/// [`batch_norm_reference`] with a choice of running-variance convention.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_reference_with(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    running_mean: Tensor<1>,
    running_var: Tensor<1>,
    momentum: f64,
    eps: f64,
    training: bool,
    running_variance: RunningVariance,
) -> (Tensor<4>, Option<(Tensor<1>, Tensor<1>)>) {
    if training {
        let count = per_channel(&x);
        let result = burn::tensor::module::batch_norm_train(x, gamma, beta, eps);
        let stats = update_running(
            running_mean,
            running_var,
            result.mean,
            result.variance,
            momentum,
            running_variance,
            count,
        );
        (result.output, Some(stats))
    } else {
        let y = burn::tensor::module::batch_norm(x, gamma, beta, running_mean, running_var, eps);
        (y, None)
    }
}

/// Values per channel, n = N * H * W.
pub(crate) fn per_channel(x: &Tensor<4>) -> usize {
    let [n, _, h, w] = x.dims();
    n * h * w
}

/// The running-statistics update of burn-nn 0.22.1 `BatchNorm::forward_train`, operation
/// for operation; with `Unbiased`, the batch variance term is scaled by n / (n - 1) inside
/// the momentum factor as `torch.nn.BatchNorm2d` does.
pub(crate) fn update_running(
    running_mean: Tensor<1>,
    running_var: Tensor<1>,
    mean: Tensor<1>,
    var: Tensor<1>,
    momentum: f64,
    running_variance: RunningVariance,
    count: usize,
) -> (Tensor<1>, Tensor<1>) {
    let var_factor = match running_variance {
        RunningVariance::Biased => momentum,
        RunningVariance::Unbiased if count > 1 => momentum * count as f64 / (count - 1) as f64,
        RunningVariance::Unbiased => momentum,
    };
    let mean = running_mean
        .mul_scalar(1.0 - momentum)
        .add(mean.detach().mul_scalar(momentum));
    let var = running_var
        .mul_scalar(1.0 - momentum)
        .add(var.detach().mul_scalar(var_factor));
    (mean.detach(), var.detach())
}

/// `bn.forward(x)` of burn's `nn::BatchNorm` on a 4-D input, through [`batch_norm`]:
/// the same training/inference choice (autodiff device and training flag on) and, in
/// training, the same update of the module's running statistics (`RunningState::update`
/// takes `&self`, so the module is updated in place as burn's own forward does).
pub fn batch_norm_module(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    batch_norm_module_with(bn, x, RunningVariance::Biased)
}

/// [`batch_norm_module`] with a choice of running-variance convention
/// (`Unbiased`: PyTorch's `BatchNorm2d`, for models that reproduce MMSegmentation).
pub fn batch_norm_module_with(
    bn: &BatchNorm,
    x: Tensor<4>,
    running_variance: RunningVariance,
) -> Tensor<4> {
    let device = x.device();
    let training = module_training(bn, &x);
    let (running_mean, running_var) = module_running_stats(bn, training, &device);
    let (y, stats) = batch_norm_with(
        x,
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

/// burn's `BatchNorm::forward` choice: batch statistics on an autodiff device with the
/// layer's training flag on, running statistics otherwise.
pub(crate) fn module_training(bn: &BatchNorm, x: &Tensor<4>) -> bool {
    x.device().is_autodiff() && bn.training.is_enabled()
}

/// The module's running statistics on `device` (synchronised first in training, as burn does).
pub(crate) fn module_running_stats(
    bn: &BatchNorm,
    training: bool,
    device: &burn::tensor::Device,
) -> (Tensor<1>, Tensor<1>) {
    let (mean, var) = if training {
        (bn.running_mean.value_sync(), bn.running_var.value_sync())
    } else {
        (bn.running_mean.value(), bn.running_var.value())
    };
    (mean.to_device(device), var.to_device(device))
}

/// Writes updated running statistics back into the module (no-op in inference).
pub(crate) fn store_running_stats(bn: &BatchNorm, stats: Option<(Tensor<1>, Tensor<1>)>) {
    if let Some((mean, var)) = stats {
        bn.running_mean.update(mean);
        bn.running_var.update(var);
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
