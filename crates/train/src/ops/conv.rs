//! conv2d with burn's semantics, on libtorch's kernels where the tensors live on LibTorch.

use super::kernels::TorchKernels;
use super::uses_torch_kernels;
use burn::backend::Dispatch;
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

/// 2-D convolution, exactly `burn::tensor::module::conv2d` (stride, per-side padding,
/// dilation, groups), with libtorch's forward and backward on LibTorch devices.
///
/// `x` `[N, C_in, H, W]`, `weight` `[C_out, C_in / groups, kH, kW]`, `bias` `[C_out]`.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    if !uses_torch_kernels(&x.device()) {
        return conv2d_reference(x, weight, bias, options);
    }
    check_shapes(&x, &weight, bias.as_ref(), &options);
    let out = match bias {
        None => <Dispatch as TorchKernels>::torch_conv2d(
            x.into_dispatch(),
            weight.into_dispatch(),
            options,
        ),
        Some(bias) => <Dispatch as TorchKernels>::torch_conv2d_bias(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
            options,
        ),
    };
    Tensor::from_dispatch(out)
}

/// burn's own conv2d (the fallback, and the reference the tests compare with).
pub fn conv2d_reference(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    burn::tensor::module::conv2d(x, weight, bias, options)
}

/// `conv.forward(x)` of burn's `nn::conv::Conv2d`, through [`conv2d`].
pub fn conv2d_module(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let options = conv2d_module_options(conv, x.dims());
    conv2d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
    )
}

/// The `ConvOptions` burn's `Conv2d::forward` uses for an input of shape `dims`
/// (its `PaddingConfig2d` resolved as in burn-nn 0.22.1 `padding.rs`).
pub fn conv2d_module_options(conv: &Conv2d, dims: [usize; 4]) -> ConvOptions<2> {
    let [_, _, height, width] = dims;
    let (rows, cols) = match conv.padding {
        PaddingConfig2d::Valid => ((0, 0), (0, 0)),
        PaddingConfig2d::Same => (
            same_padding(conv.kernel_size[0], conv.stride[0], height),
            same_padding(conv.kernel_size[1], conv.stride[1], width),
        ),
        PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
    };
    ConvOptions::new_with_padding(conv.stride, [rows, cols], conv.dilation, conv.groups)
}

/// burn-nn's "same" padding: total padding so that out = ceil(in / stride); the odd pixel
/// goes to the end (bottom / right). Like burn, it ignores dilation.
fn same_padding(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = if out > 0 {
        ((out - 1) * stride + kernel).saturating_sub(size)
    } else {
        0
    };
    (total / 2, total - total / 2)
}

/// The checks burn's conv2d makes, so a mistake reads as a shape error, not a libtorch one.
fn check_shapes(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) {
    let [_, c_in, _, _] = x.dims();
    let [c_out, c_per_group, _, _] = weight.dims();
    let groups = options.groups;
    assert!(
        c_in == c_per_group * groups,
        "conv2d: input has {c_in} channels but weight {:?} with groups {groups} expects {}",
        weight.dims(),
        c_per_group * groups
    );
    assert!(
        c_out % groups == 0,
        "conv2d: {c_out} output channels are not divisible by groups {groups}"
    );
    if let Some(bias) = bias {
        assert!(
            bias.dims() == [c_out],
            "conv2d: bias has shape {:?}, expected [{c_out}]",
            bias.dims()
        );
    }
}
