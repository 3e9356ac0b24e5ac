//! Heavy training ops on libtorch's own kernels, forward and backward.
//!
//! burn-tch 0.22.1 runs conv2d's forward on libtorch but differentiates it with burn's
//! generic fallback (the weight gradient becomes a conv whose kernel is the full-size
//! output gradient, a pathological case for cuDNN), and composes batch norm out of many
//! elementwise kernels. The functions here keep burn's `Tensor<D>` API and semantics but,
//! on the LibTorch backend, run libtorch's convolution / batch norm and take the gradients
//! from libtorch's own autograd (`at::convolution_backward`, cuDNN/native batch-norm
//! backward): see [`kernels`] for how the two autograd systems are joined.
//!
//! On any other backend (burn's `Dispatch` can hold others) they fall back to burn's own
//! ops, so model code can call them unconditionally.
//!
//! Swapping in a model whose block calls `self.conv.forward(x)` and `self.bn.forward(x)`:
//! replace them with `ops::conv2d_module(&self.conv, x)` and
//! `ops::batch_norm_module(&self.bn, x, RunningVariance::Biased)` (`Unbiased`: PyTorch's
//! running variance, as MMSegmentation); nothing else changes (same parameters, same
//! records, same running-stat updates). A model that calls `module::conv2d(x, w, b, options)`
//! itself swaps in `ops::conv2d` (same signature). A conv -> BN -> ReLU block can instead make one call,
//! `ops::conv_bn_relu_module(&self.conv, &self.bn, x, convention)` or, with its own conv options and
//! convention, `ops::conv_bn_relu_block(x, w, b, options, &self.bn, convention)`, which runs
//! the three as a single libtorch op. [`set_kernel_options`] turns the libtorch path off
//! (burn's path everywhere) or adds cuDNN benchmark, channels_last and bf16 convolutions.

pub mod batch_norm;
pub mod conv;
pub mod fused;
pub mod kernels;

pub use batch_norm::{
    batch_norm, batch_norm_module, batch_norm_reference, BnLayer, BnOutput, RunningVariance,
};
pub use conv::{conv2d, conv2d_module, conv2d_module_options, conv2d_reference};
pub use fused::{conv_bn_relu, conv_bn_relu_block, conv_bn_relu_module, conv_bn_relu_reference};

use burn::backend::DispatchDevice;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU8, Ordering};

/// Process-wide choices for the libtorch kernels (one training job per process).
///
/// Feasibility notes (tch 0.22): tch has no memory-format API, so channels_last is made
/// with `permute(0,2,3,1).contiguous().permute(0,3,1,2)`, which libtorch recognises as
/// ChannelsLast; cuDNN then keeps NHWC through conv and batch norm, and burn-tch's other
/// ops are stride-agnostic (tested on CPU). `tch::autocast` only toggles autocast, whose
/// CUDA dtype defaults to fp16 (torch-sys does not expose `set_autocast_dtype`), and it would
/// not cover burn's own ops anyway; hence bf16 here is an explicit cast around each
/// convolution inside libtorch's graph (its backward then runs in bf16 too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelOptions {
    /// Route conv2d / batch norm on LibTorch devices to libtorch's kernels (default on).
    /// Off: burn's own ops everywhere, e.g. to compare.
    pub torch_kernels: bool,
    /// cuDNN autotuning (`torch.backends.cudnn.benchmark`): picks the fastest algorithm per
    /// shape on first use. Worth it for fixed crop sizes; a global libtorch flag.
    pub cudnn_benchmark: bool,
    /// Run convolutions in channels_last (NHWC) layout; their outputs stay NHWC and the
    /// following elementwise ops and batch norm keep that layout. Tensor cores prefer it.
    pub channels_last: bool,
    /// Run convolutions (forward and backward) in bfloat16, inputs and weights cast from
    /// f32 inside libtorch's graph, outputs cast back to f32: a manual autocast limited to
    /// convolutions (batch norm, loss and optimiser stay f32). Meant for CUDA.
    pub bf16: bool,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            torch_kernels: true,
            cudnn_benchmark: false,
            channels_last: false,
            bf16: false,
        }
    }
}

const TORCH_KERNELS: u8 = 1;
const CUDNN_BENCHMARK: u8 = 2;
const CHANNELS_LAST: u8 = 4;
const BF16: u8 = 8;

static OPTIONS: AtomicU8 = AtomicU8::new(TORCH_KERNELS);

impl KernelOptions {
    fn bits(self) -> u8 {
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        flag(self.torch_kernels, TORCH_KERNELS)
            | flag(self.cudnn_benchmark, CUDNN_BENCHMARK)
            | flag(self.channels_last, CHANNELS_LAST)
            | flag(self.bf16, BF16)
    }

    fn from_bits(bits: u8) -> Self {
        KernelOptions {
            torch_kernels: bits & TORCH_KERNELS != 0,
            cudnn_benchmark: bits & CUDNN_BENCHMARK != 0,
            channels_last: bits & CHANNELS_LAST != 0,
            bf16: bits & BF16 != 0,
        }
    }
}

/// Sets the process-wide kernel options (and libtorch's cuDNN benchmark flag).
pub fn set_kernel_options(options: KernelOptions) {
    OPTIONS.store(options.bits(), Ordering::Relaxed);
    tch::Cuda::cudnn_set_benchmark(options.cudnn_benchmark);
}

/// The current process-wide kernel options.
pub fn kernel_options() -> KernelOptions {
    KernelOptions::from_bits(OPTIONS.load(Ordering::Relaxed))
}

/// Turns cuDNN autotuning on or off, leaving the other options as they are.
pub fn set_cudnn_benchmark(on: bool) {
    set_kernel_options(KernelOptions {
        cudnn_benchmark: on,
        ..kernel_options()
    });
}

/// Whether tensors on `device` take the libtorch-kernel path.
pub fn uses_torch_kernels(device: &Device) -> bool {
    kernel_options().torch_kernels && is_libtorch(device)
}

/// Whether `device` is a LibTorch device (plain or autodiff).
pub fn is_libtorch(device: &Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        DispatchDevice::LibTorch(_)
    )
}
