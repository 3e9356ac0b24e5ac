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

/// A batch-norm layer as the functions here take it: affine parameters, running statistics
/// and settings. [`BnLayer::of_module`] reads one from burn's `nn::BatchNorm`.
#[derive(Clone, Debug)]
pub struct BnLayer {
    pub gamma: Tensor<1>,
    pub beta: Tensor<1>,
    pub running_mean: Tensor<1>,
    pub running_var: Tensor<1>,
    pub momentum: f64,
    pub eps: f64,
    /// Batch statistics (and a running-statistics update) or the running ones.
    pub training: bool,
    pub running_variance: RunningVariance,
}

impl BnLayer {
    /// burn's defaults (momentum 0.1, eps 1e-5, biased running variance).
    pub fn new(
        gamma: Tensor<1>,
        beta: Tensor<1>,
        running_mean: Tensor<1>,
        running_var: Tensor<1>,
        training: bool,
    ) -> Self {
        BnLayer {
            gamma,
            beta,
            running_mean,
            running_var,
            momentum: 0.1,
            eps: 1e-5,
            training,
            running_variance: RunningVariance::Biased,
        }
    }

    /// burn's `BatchNorm::forward` choices for input `x`: batch statistics on an autodiff
    /// device with the layer's training flag on (running statistics synchronised first, as
    /// burn does), running statistics otherwise.
    pub fn of_module(bn: &BatchNorm, x: &Tensor<4>, running_variance: RunningVariance) -> Self {
        let device = x.device();
        let training = device.is_autodiff() && bn.training.is_enabled();
        let (mean, var) = if training {
            (bn.running_mean.value_sync(), bn.running_var.value_sync())
        } else {
            (bn.running_mean.value(), bn.running_var.value())
        };
        BnLayer {
            gamma: bn.gamma.val(),
            beta: bn.beta.val(),
            running_mean: mean.to_device(&device),
            running_var: var.to_device(&device),
            momentum: bn.momentum,
            eps: bn.epsilon,
            training,
            running_variance,
        }
    }

    fn check_shapes(&self, x: &Tensor<4>) {
        let channels = x.dims()[1];
        for (name, t) in [
            ("gamma", &self.gamma),
            ("beta", &self.beta),
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ] {
            assert!(
                t.dims() == [channels],
                "batch_norm: {name} has shape {:?}, expected [{channels}] (input {:?})",
                t.dims(),
                x.dims()
            );
        }
    }

    /// `running * (1 - momentum) + batch * momentum`, detached, for `count` = N * H * W
    /// values per channel: the update of burn-nn 0.22.1 `BatchNorm::forward_train`, operation
    /// for operation; with `Unbiased`, the batch variance term is scaled by n / (n - 1) inside
    /// the momentum factor as `torch.nn.BatchNorm2d` does.
    pub(crate) fn updated_running(
        self,
        mean: Tensor<1>,
        var: Tensor<1>,
        count: usize,
    ) -> (Tensor<1>, Tensor<1>) {
        let m = self.momentum;
        let var_factor = match self.running_variance {
            RunningVariance::Unbiased if count > 1 => m * count as f64 / (count - 1) as f64,
            _ => m,
        };
        let mean = self
            .running_mean
            .mul_scalar(1.0 - m)
            .add(mean.detach().mul_scalar(m));
        let var = self
            .running_var
            .mul_scalar(1.0 - m)
            .add(var.detach().mul_scalar(var_factor));
        (mean.detach(), var.detach())
    }
}

/// Output and, in training, the updated running statistics `(mean, var)`.
pub type BnOutput = (Tensor<4>, Option<(Tensor<1>, Tensor<1>)>);

/// Batch norm of `x` `[N, C, H, W]` with burn's `BatchNorm` semantics (PyTorch's running
/// variance with [`RunningVariance::Unbiased`]), on libtorch's kernels where `x` lives on
/// LibTorch.
///
/// Training: normalises with the batch's mean and biased variance and returns the updated
/// running statistics ([`BnLayer::updated_running`]). Inference: normalises with the running
/// statistics and returns `None`. Gradients flow to `x`, `gamma` and `beta`; the statistics
/// are constants.
pub fn batch_norm(x: Tensor<4>, bn: BnLayer) -> BnOutput {
    if !uses_torch_kernels(&x.device()) {
        return batch_norm_reference(x, bn);
    }
    bn.check_shapes(&x);
    if bn.training {
        let count = per_channel(&x);
        let (y, mean, var) = <Dispatch as TorchKernels>::torch_batch_norm_train(
            x.into_dispatch(),
            bn.gamma.clone().into_dispatch(),
            bn.beta.clone().into_dispatch(),
            bn.eps,
        );
        let stats = bn.updated_running(
            Tensor::from_dispatch(mean),
            Tensor::from_dispatch(var),
            count,
        );
        (Tensor::from_dispatch(y), Some(stats))
    } else {
        let y = <Dispatch as TorchKernels>::torch_batch_norm_eval(
            x.into_dispatch(),
            bn.gamma.into_dispatch(),
            bn.beta.into_dispatch(),
            bn.running_mean.into_dispatch(),
            bn.running_var.into_dispatch(),
            bn.eps,
        );
        (Tensor::from_dispatch(y), None)
    }
}

/// burn's own batch norm (the fallback, and the reference the tests compare with):
/// `module::batch_norm_train` / `module::batch_norm` and burn-nn's running-stat update.
pub fn batch_norm_reference(x: Tensor<4>, bn: BnLayer) -> BnOutput {
    if bn.training {
        let count = per_channel(&x);
        let result =
            burn::tensor::module::batch_norm_train(x, bn.gamma.clone(), bn.beta.clone(), bn.eps);
        let stats = bn.updated_running(result.mean, result.variance, count);
        (result.output, Some(stats))
    } else {
        let y = burn::tensor::module::batch_norm(
            x,
            bn.gamma,
            bn.beta,
            bn.running_mean,
            bn.running_var,
            bn.eps,
        );
        (y, None)
    }
}

/// Values per channel, n = N * H * W.
pub(crate) fn per_channel(x: &Tensor<4>) -> usize {
    let [n, _, h, w] = x.dims();
    n * h * w
}

/// `bn.forward(x)` of burn's `nn::BatchNorm` on a 4-D input, through [`batch_norm`]:
/// the same training/inference choice and, in training, the same update of the module's
/// running statistics (`RunningState::update` takes `&self`, so the module is updated in
/// place as burn's own forward does). `Unbiased`: PyTorch's `BatchNorm2d` convention, for
/// models that reproduce MMSegmentation.
pub fn batch_norm_module(
    bn: &BatchNorm,
    x: Tensor<4>,
    running_variance: RunningVariance,
) -> Tensor<4> {
    let layer = BnLayer::of_module(bn, &x, running_variance);
    let (y, stats) = batch_norm(x, layer);
    store_running_stats(bn, stats);
    y
}

/// Writes updated running statistics back into the module (no-op in inference).
pub(crate) fn store_running_stats(bn: &BatchNorm, stats: Option<(Tensor<1>, Tensor<1>)>) {
    if let Some((mean, var)) = stats {
        bn.running_mean.update(mean);
        bn.running_var.update(var);
    }
}
