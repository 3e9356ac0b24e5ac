//! The backend extension: conv2d and batch norm on libtorch, forward and backward.
//!
//! `TorchKernels` is a burn 0.22 backend extension (`#[backend_extension(LibTorch, Autodiff)]`):
//! the macro generates its `Dispatch` impl, which routes a call to the `LibTorch` impl for
//! plain tensors and to the `Autodiff<LibTorch, C>` impl for tensors of an autodiff device.
//!
//! Backward strategy: the autodiff impl builds the forward *inside libtorch's autograd*:
//! each input becomes a detached libtorch leaf with `requires_grad`, the op runs on those
//! leaves with grad mode on, and the output (with its libtorch graph) is kept in the burn
//! node's backward state; burn gets the detached output. When burn's backward reaches the
//! node, it asks libtorch for the gradients of the leaves it needs with
//! `run_backward(dot(output, grad))`: libtorch's engine seeds the dot with 1, so the
//! output's gradient is exactly `grad`, and libtorch runs its own derivative of the op:
//! `at::convolution_backward` (cuDNN backward-data / backward-filter on CUDA, one call for
//! dx, dw and db) and the cuDNN / native batch-norm backward. Only the leaves whose burn
//! parents need a gradient are requested, so libtorch skips the rest (no dx for the first
//! conv). Nothing is recomputed; the price is the dot, one read of output and gradient.
//!
//! tch 0.22 does not generate `convolution_backward` or `native_batch_norm_backward` (their
//! bool-array argument is skipped), and `cudnn_batch_norm_backward` is CUDA only, so libtorch's
//! autograd is the one route to the native backward kernels on every device.

use super::kernel_options;
use super::KernelOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::AutodiffBackend;
use burn::backend::{backend_extension, Backend, LibTorch};
use burn::tensor::ops::ConvOptions;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_tch::TchTensor;
use std::sync::{Arc, Mutex};
use tch::Kind;

/// conv2d and batch norm on libtorch's kernels (see the module docs).
///
/// Shapes: `x` `[N, C_in, H, W]`, `weight` `[C_out, C_in / groups, kH, kW]`, `bias`
/// `[C_out]`, batch-norm vectors `[C]`. Semantics are burn's (`module::conv2d`,
/// `module::batch_norm_train`, `module::batch_norm`).
#[backend_extension(LibTorch, Autodiff)]
pub trait TorchKernels: Backend {
    /// conv2d without bias.
    fn torch_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// conv2d with bias.
    fn torch_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// Batch norm with the batch's statistics: (output, batch mean, biased batch variance).
    /// The statistics are constants (no gradient flows through them).
    fn torch_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Batch norm with given statistics (inference); `mean` and `variance` are constants.
    fn torch_batch_norm_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// conv2d (no bias) -> batch norm -> ReLU as one op (one libtorch graph, in-place ReLU):
    /// (output, mean, variance). Training: the batch's statistics, as
    /// `torch_batch_norm_train`; inference (`training` false): normalised with `mean` /
    /// `variance`, which come back unchanged.
    #[allow(clippy::too_many_arguments)]
    fn torch_conv_bn_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        options: ConvOptions<2>,
        epsilon: f64,
        training: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

// ---------------------------------------------------------------------------------------
// libtorch forward computations, shared by the plain and the autodiff impls.

/// Whether a 4-D tensor is laid out channels_last (NHWC) rather than contiguous NCHW.
pub(crate) fn is_channels_last(t: &tch::Tensor) -> bool {
    if t.dim() != 4 || t.is_contiguous() {
        return false;
    }
    let size = t.size();
    let (c, h, w) = (size[1], size[2], size[3]);
    let stride = t.stride();
    // Size-1 dims have arbitrary strides.
    (c == 1 || stride[1] == 1)
        && (w == 1 || stride[3] == c)
        && (h == 1 || stride[2] == w * c)
        && (size[0] == 1 || stride[0] == h * w * c)
}

/// The same values in channels_last layout (a no-op when already so).
pub(crate) fn to_channels_last(t: &tch::Tensor) -> tch::Tensor {
    if is_channels_last(t) {
        t.shallow_clone()
    } else {
        t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    }
}

/// burn's conv2d on libtorch: asymmetric padding becomes an explicit zero pad, as in
/// burn-tch; channels_last and bf16 as the options say.
pub(crate) fn conv_forward(
    x: &tch::Tensor,
    weight: &tch::Tensor,
    bias: Option<&tch::Tensor>,
    options: &ConvOptions<2>,
    kernel: KernelOptions,
) -> tch::Tensor {
    let [(top, bottom), (left, right)] = options.padding;
    let (mut x, padding) = if top == bottom && left == right {
        (x.shallow_clone(), [top as i64, left as i64])
    } else {
        (
            x.constant_pad_nd([left as i64, right as i64, top as i64, bottom as i64]),
            [0, 0],
        )
    };
    let mut weight = weight.shallow_clone();
    let mut bias = bias.map(|b| b.shallow_clone());
    if kernel.channels_last {
        x = to_channels_last(&x);
        weight = to_channels_last(&weight);
    }
    let kind = x.kind();
    let cast = kernel.bf16 && kind == Kind::Float;
    if cast {
        x = x.to_kind(Kind::BFloat16);
        weight = weight.to_kind(Kind::BFloat16);
        bias = bias.map(|b| b.to_kind(Kind::BFloat16));
    }
    let y = x.conv2d(
        &weight,
        bias.as_ref(),
        options.stride.map(|s| s as i64),
        padding,
        options.dilation.map(|d| d as i64),
        options.groups as i64,
    );
    if cast {
        y.to_kind(kind)
    } else {
        y
    }
}

/// Batch norm with batch statistics: (output, mean, biased variance).
///
/// `at::batch_norm` picks cuDNN or the native kernel like PyTorch does, but reports the
/// batch statistics only through running-stat buffers, with the *unbiased* variance. Fresh
/// zero buffers and momentum 1 make them exactly the batch mean and n/(n-1) times the
/// biased variance, which burn's running stats use.
pub(crate) fn batch_norm_train_forward(
    x: &tch::Tensor,
    gamma: &tch::Tensor,
    beta: &tch::Tensor,
    epsilon: f64,
) -> (tch::Tensor, tch::Tensor, tch::Tensor) {
    let size = x.size();
    let channels = size[1];
    let per_channel = size.iter().product::<i64>() / channels.max(1);
    let options = (gamma.kind(), x.device());
    let mean = tch::Tensor::zeros([channels], options);
    let unbiased = tch::Tensor::zeros([channels], options);
    let y = x.batch_norm(
        Some(gamma),
        Some(beta),
        Some(&mean),
        Some(&unbiased),
        true,
        1.0,
        epsilon,
        true,
    );
    let variance = if per_channel > 1 {
        unbiased * ((per_channel - 1) as f64 / per_channel as f64)
    } else {
        // One value per channel: the biased variance is 0 (libtorch's unbiased one is not finite).
        unbiased.zeros_like()
    };
    // The autograd graph saved `mean` (as running_mean): hand out a copy, which burn may
    // then modify in place freely.
    (y, mean.copy(), variance)
}

pub(crate) fn batch_norm_eval_forward(
    x: &tch::Tensor,
    gamma: &tch::Tensor,
    beta: &tch::Tensor,
    mean: &tch::Tensor,
    variance: &tch::Tensor,
    epsilon: f64,
) -> tch::Tensor {
    x.batch_norm(
        Some(gamma),
        Some(beta),
        Some(mean),
        Some(variance),
        false,
        0.0,
        epsilon,
        true,
    )
}

/// conv2d -> batch norm -> in-place ReLU: (output, mean, variance) as `torch_conv_bn_relu`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_bn_relu_forward(
    x: &tch::Tensor,
    weight: &tch::Tensor,
    gamma: &tch::Tensor,
    beta: &tch::Tensor,
    mean: &tch::Tensor,
    variance: &tch::Tensor,
    options: &ConvOptions<2>,
    epsilon: f64,
    training: bool,
    kernel: KernelOptions,
) -> (tch::Tensor, tch::Tensor, tch::Tensor) {
    let h = conv_forward(x, weight, None, options, kernel);
    let (mut y, mean, variance) = if training {
        batch_norm_train_forward(&h, gamma, beta, epsilon)
    } else {
        (
            batch_norm_eval_forward(&h, gamma, beta, mean, variance, epsilon),
            mean.copy(),
            variance.copy(),
        )
    };
    // In place, as PyTorch's `ReLU(inplace=True)`: batch norm's backward does not need its
    // output, so the ReLU may overwrite it.
    let y = y.relu_();
    (y, mean, variance)
}

// ---------------------------------------------------------------------------------------
// Plain LibTorch: forward only.

impl TorchKernels for LibTorch {
    fn torch_conv2d(x: TchTensor, weight: TchTensor, options: ConvOptions<2>) -> TchTensor {
        let _guard = tch::no_grad_guard();
        TchTensor::new(conv_forward(
            &x.tensor,
            &weight.tensor,
            None,
            &options,
            kernel_options(),
        ))
    }

    fn torch_conv2d_bias(
        x: TchTensor,
        weight: TchTensor,
        bias: TchTensor,
        options: ConvOptions<2>,
    ) -> TchTensor {
        let _guard = tch::no_grad_guard();
        TchTensor::new(conv_forward(
            &x.tensor,
            &weight.tensor,
            Some(&bias.tensor),
            &options,
            kernel_options(),
        ))
    }

    fn torch_batch_norm_train(
        x: TchTensor,
        gamma: TchTensor,
        beta: TchTensor,
        epsilon: f64,
    ) -> (TchTensor, TchTensor, TchTensor) {
        let _guard = tch::no_grad_guard();
        let (y, mean, var) =
            batch_norm_train_forward(&x.tensor, &gamma.tensor, &beta.tensor, epsilon);
        (TchTensor::new(y), TchTensor::new(mean), TchTensor::new(var))
    }

    fn torch_batch_norm_eval(
        x: TchTensor,
        gamma: TchTensor,
        beta: TchTensor,
        mean: TchTensor,
        variance: TchTensor,
        epsilon: f64,
    ) -> TchTensor {
        let _guard = tch::no_grad_guard();
        TchTensor::new(batch_norm_eval_forward(
            &x.tensor,
            &gamma.tensor,
            &beta.tensor,
            &mean.tensor,
            &variance.tensor,
            epsilon,
        ))
    }

    fn torch_conv_bn_relu(
        x: TchTensor,
        weight: TchTensor,
        gamma: TchTensor,
        beta: TchTensor,
        mean: TchTensor,
        variance: TchTensor,
        options: ConvOptions<2>,
        epsilon: f64,
        training: bool,
    ) -> (TchTensor, TchTensor, TchTensor) {
        let _guard = tch::no_grad_guard();
        let (y, mean, var) = conv_bn_relu_forward(
            &x.tensor,
            &weight.tensor,
            &gamma.tensor,
            &beta.tensor,
            &mean.tensor,
            &variance.tensor,
            &options,
            epsilon,
            training,
            kernel_options(),
        );
        (TchTensor::new(y), TchTensor::new(mean), TchTensor::new(var))
    }
}

// ---------------------------------------------------------------------------------------
// Autodiff<LibTorch>: forward inside libtorch's autograd, backward by libtorch.

/// libtorch's autograd graph of one forward call, kept until burn's backward reaches it.
struct TorchGraph {
    /// The op's output, carrying its libtorch `grad_fn`.
    output: tch::Tensor,
    /// One libtorch leaf (requires_grad) per burn parent, in the parents' order.
    leaves: Vec<tch::Tensor>,
    /// burn handles of the inputs libtorch saved: while they live, burn-tch sees the storage
    /// as shared and never writes into it in place (which would make libtorch's saved
    /// tensors stale; libtorch would refuse the backward).
    _saved: Vec<TchTensor>,
}

/// Backward state: the graph, taken (and freed) by the backward step.
#[derive(Clone)]
pub struct GraphState(Arc<Mutex<Option<TorchGraph>>>);

impl std::fmt::Debug for GraphState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraphState(libtorch autograd graph)")
    }
}

impl GraphState {
    fn new(graph: TorchGraph) -> Self {
        GraphState(Arc::new(Mutex::new(Some(graph))))
    }

    fn take(&self) -> Option<TorchGraph> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl TorchGraph {
    /// Runs `forward` under libtorch's autograd on fresh leaves of `inputs` (burn's parents, in
    /// order) and returns its detached output, its other results and the graph that
    /// differentiates it. `constants` (non-differentiable inputs) are kept alive with the
    /// inputs; `keep_output` also keeps the output (for backwards that read it, as ReLU's).
    fn record<R>(
        inputs: Vec<TchTensor>,
        constants: Vec<TchTensor>,
        keep_output: bool,
        forward: impl FnOnce(&[tch::Tensor]) -> (tch::Tensor, R),
    ) -> (TchTensor, R, GraphState) {
        tch::with_grad(|| {
            let leaves: Vec<tch::Tensor> = inputs.iter().map(leaf).collect();
            let (y, extra) = forward(&leaves);
            let output = TchTensor::new(y.detach());
            let mut saved = inputs;
            saved.extend(constants);
            if keep_output {
                saved.push(output.clone());
            }
            let graph = TorchGraph {
                output: y,
                leaves,
                _saved: saved,
            };
            (output, extra, GraphState::new(graph))
        })
    }
}

/// A libtorch leaf sharing `t`'s storage, tracked by libtorch's autograd.
fn leaf(t: &TchTensor) -> tch::Tensor {
    t.tensor.detach().set_requires_grad(true)
}

/// `dot(output, grad)`: a scalar whose gradient with respect to `output` is `grad`.
fn seed(output: &tch::Tensor, grad: &tch::Tensor) -> tch::Tensor {
    let grad = if grad.kind() == output.kind() {
        grad.shallow_clone()
    } else {
        grad.to_kind(output.kind())
    };
    // Flatten NHWC outputs in memory order so the reshape is a view, not a copy.
    let (output, grad) = if is_channels_last(output) {
        (output.permute([0, 2, 3, 1]), grad.permute([0, 2, 3, 1]))
    } else {
        (output.shallow_clone(), grad)
    };
    output.reshape([-1]).dot(&grad.reshape([-1]))
}

/// The backward step shared by all ops: libtorch's gradients of the needed leaves.
fn torch_backward<const N: usize>(ops: Ops<GraphState, N>, grads: &mut Gradients) {
    let grad = grads.consume::<LibTorch>(&ops.node);
    let Some(graph) = ops.state.take() else {
        return;
    };
    let wanted: Vec<usize> = (0..N).filter(|&i| ops.parents[i].is_some()).collect();
    if wanted.is_empty() {
        return;
    }
    let inputs: Vec<&tch::Tensor> = wanted.iter().map(|&i| &graph.leaves[i]).collect();
    let results = tch::with_grad(|| {
        let seed = seed(&graph.output, &grad.tensor);
        tch::Tensor::run_backward(&[seed], &inputs, false, false)
    });
    for (&i, g) in wanted.iter().zip(results) {
        let node = ops.parents[i].as_ref().expect("wanted parents are tracked");
        let g = if g.defined() {
            g
        } else {
            graph.leaves[i].zeros_like()
        };
        grads.register::<LibTorch>(node.id, TchTensor::new(g));
    }
}

macro_rules! torch_op {
    ($name:ident, $n:literal) => {
        #[derive(Debug)]
        struct $name;

        impl Backward<LibTorch, $n> for $name {
            type State = GraphState;

            fn backward(
                self,
                ops: Ops<Self::State, $n>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                torch_backward(ops, grads);
            }
        }
    };
}

torch_op!(Conv2dNoBias, 2);
torch_op!(Conv2dWithBias, 3);
torch_op!(BatchNormTrain, 3);
torch_op!(BatchNormEval, 3);
torch_op!(ConvBnRelu, 4);

impl<C: CheckpointStrategy> TorchKernels for Autodiff<LibTorch, C> {
    fn torch_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (weight, w_node) = weight.into_parts();
        match Conv2dNoBias
            .prepare::<C>([x_node, w_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::UnTracked(prep) => prep.finish(LibTorch::torch_conv2d(x, weight, options)),
            OpsKind::Tracked(prep) => {
                let kernel = kernel_options();
                let (output, (), graph) = TorchGraph::record(vec![x, weight], vec![], false, |l| {
                    (conv_forward(&l[0], &l[1], None, &options, kernel), ())
                });
                prep.finish(graph, output)
            }
        }
    }

    fn torch_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (weight, w_node) = weight.into_parts();
        let (bias, b_node) = bias.into_parts();
        match Conv2dWithBias
            .prepare::<C>([x_node, w_node, b_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::UnTracked(prep) => {
                prep.finish(LibTorch::torch_conv2d_bias(x, weight, bias, options))
            }
            OpsKind::Tracked(prep) => {
                let kernel = kernel_options();
                let (output, (), graph) =
                    TorchGraph::record(vec![x, weight, bias], vec![], false, |l| {
                        (
                            conv_forward(&l[0], &l[1], Some(&l[2]), &options, kernel),
                            (),
                        )
                    });
                prep.finish(graph, output)
            }
        }
    }

    fn torch_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (x, x_node) = x.into_parts();
        let (gamma, g_node) = gamma.into_parts();
        let (beta, b_node) = beta.into_parts();
        let (output, mean, variance) = match BatchNormTrain
            .prepare::<C>([x_node, g_node, b_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = LibTorch::torch_batch_norm_train(x, gamma, beta, epsilon);
                (prep.finish(y), mean, var)
            }
            OpsKind::Tracked(prep) => {
                let (output, (mean, variance), graph) =
                    TorchGraph::record(vec![x, gamma, beta], vec![], false, |l| {
                        let (y, mean, variance) =
                            batch_norm_train_forward(&l[0], &l[1], &l[2], epsilon);
                        (y, (mean, variance))
                    });
                let output = prep.finish(graph, output);
                (output, TchTensor::new(mean), TchTensor::new(variance))
            }
        };
        (output, Self::from_inner(mean), Self::from_inner(variance))
    }

    fn torch_batch_norm_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (gamma, g_node) = gamma.into_parts();
        let (beta, b_node) = beta.into_parts();
        // The statistics are constants here, as in burn's inference path.
        let mean = mean.into_primitive();
        let variance = variance.into_primitive();
        match BatchNormEval
            .prepare::<C>([x_node, g_node, b_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::UnTracked(prep) => prep.finish(LibTorch::torch_batch_norm_eval(
                x, gamma, beta, mean, variance, epsilon,
            )),
            OpsKind::Tracked(prep) => {
                let (m, v) = (mean.tensor.shallow_clone(), variance.tensor.shallow_clone());
                let (output, (), graph) =
                    TorchGraph::record(vec![x, gamma, beta], vec![mean, variance], false, |l| {
                        (
                            batch_norm_eval_forward(&l[0], &l[1], &l[2], &m, &v, epsilon),
                            (),
                        )
                    });
                prep.finish(graph, output)
            }
        }
    }

    fn torch_conv_bn_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        options: ConvOptions<2>,
        epsilon: f64,
        training: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (x, x_node) = x.into_parts();
        let (weight, w_node) = weight.into_parts();
        let (gamma, g_node) = gamma.into_parts();
        let (beta, b_node) = beta.into_parts();
        let mean = mean.into_primitive();
        let variance = variance.into_primitive();
        let (output, mean, variance) = match ConvBnRelu
            .prepare::<C>([x_node, w_node, g_node, b_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = LibTorch::torch_conv_bn_relu(
                    x, weight, gamma, beta, mean, variance, options, epsilon, training,
                );
                (prep.finish(y), mean, var)
            }
            OpsKind::Tracked(prep) => {
                let kernel = kernel_options();
                let (m, v) = (mean.tensor.shallow_clone(), variance.tensor.shallow_clone());
                // ReLU's backward reads its output: burn must not write into it either.
                let (output, stats, graph) = TorchGraph::record(
                    vec![x, weight, gamma, beta],
                    vec![mean, variance],
                    true,
                    |l| {
                        let (y, batch_mean, batch_var) = conv_bn_relu_forward(
                            &l[0], &l[1], &l[2], &l[3], &m, &v, &options, epsilon, training, kernel,
                        );
                        (y, (batch_mean, batch_var))
                    },
                );
                let output = prep.finish(graph, output);
                (output, TchTensor::new(stats.0), TchTensor::new(stats.1))
            }
        };
        (output, Self::from_inner(mean), Self::from_inner(variance))
    }
}
