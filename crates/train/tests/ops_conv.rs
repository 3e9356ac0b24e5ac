//! `ops::conv2d` (libtorch forward + backward) against burn's own conv2d on CPU.
#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is the backend this project chose.

use crate::util::ops::*;
use burn::nn::conv::Conv2dConfig;
use burn::nn::PaddingConfig2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;
use sweep_train::ops;

const TOL: f32 = 1e-4;

struct Case {
    name: &'static str,
    x: [usize; 4],
    w: [usize; 4],
    bias: bool,
    options: ConvOptions<2>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "3x3 pad 1, bias, batch 2",
            x: [2, 3, 9, 9],
            w: [4, 3, 3, 3],
            bias: true,
            options: ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        },
        Case {
            name: "3x3 stride 2 pad 1, bias, batch 1, odd width",
            x: [1, 4, 10, 11],
            w: [6, 4, 3, 3],
            bias: true,
            options: ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
        },
        Case {
            name: "3x3 dilation 12 pad 12, no bias",
            x: [2, 4, 30, 28],
            w: [4, 4, 3, 3],
            bias: false,
            options: ConvOptions::new([1, 1], [12, 12], [12, 12], 1),
        },
        Case {
            name: "groups 2, no bias",
            x: [2, 4, 8, 8],
            w: [6, 2, 3, 3],
            bias: false,
            options: ConvOptions::new([1, 1], [1, 1], [1, 1], 2),
        },
        Case {
            name: "1x1, no padding, bias",
            x: [1, 3, 7, 8],
            w: [5, 3, 1, 1],
            bias: true,
            options: ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        },
        Case {
            name: "asymmetric padding, stride 2",
            x: [2, 2, 7, 7],
            w: [3, 2, 3, 3],
            bias: true,
            options: ConvOptions::new_with_padding([2, 2], [(0, 1), (1, 2)], [1, 1], 1),
        },
        Case {
            name: "3x5 kernel, stride (2, 1), dilation (1, 2)",
            x: [2, 3, 9, 12],
            w: [4, 3, 3, 5],
            bias: false,
            options: ConvOptions::new([2, 1], [1, 4], [1, 2], 1),
        },
    ]
}

struct Run {
    y: Tensor<4>,
    dx: Tensor<4>,
    dw: Tensor<4>,
    db: Option<Tensor<1>>,
}

/// Forward and the gradients of `sum(y * r)` (r random, so every gradient is non-trivial).
fn run(case: &Case, torch: bool) -> Run {
    let device = cpu_autodiff();
    let x = tensor(case.x, 1, &device).require_grad();
    let w = tensor(case.w, 2, &device).require_grad();
    let b = case
        .bias
        .then(|| tensor([case.w[0]], 3, &device).require_grad());
    let y = if torch {
        ops::conv2d(x.clone(), w.clone(), b.clone(), case.options.clone())
    } else {
        ops::conv2d_reference(x.clone(), w.clone(), b.clone(), case.options.clone())
    };
    let r = tensor(y.dims(), 4, &device);
    let grads = (y.clone() * r).sum().backward();
    Run {
        dx: x.grad(&grads).expect("dx"),
        dw: w.grad(&grads).expect("dw"),
        db: b.map(|b| b.grad(&grads).expect("db")),
        y: y.inner(),
    }
}

#[test]
fn conv2d_matches_burn_forward_and_gradients() {
    for case in cases() {
        let torch = run(&case, true);
        let burn = run(&case, false);
        let name = case.name;
        assert_close(&format!("{name}: y"), &torch.y, &burn.y, TOL);
        assert_close(&format!("{name}: dx"), &torch.dx, &burn.dx, TOL);
        assert_close(&format!("{name}: dw"), &torch.dw, &burn.dw, TOL);
        if let (Some(a), Some(b)) = (&torch.db, &burn.db) {
            assert_close(&format!("{name}: db"), a, b, TOL);
        }
    }
}

#[test]
fn conv2d_on_a_plain_device_matches_burn() {
    let device = cpu();
    for case in cases() {
        let x = tensor(case.x, 5, &device);
        let w = tensor(case.w, 6, &device);
        let b = case.bias.then(|| tensor([case.w[0]], 7, &device));
        let torch = ops::conv2d(x.clone(), w.clone(), b.clone(), case.options.clone());
        let burn = ops::conv2d_reference(x, w, b, case.options.clone());
        assert_close(case.name, &torch, &burn, TOL);
    }
}

/// A hand-computed case: 1 channel, 3x3 input 1..9, 2x2 kernel of ones, bias 0.5.
#[test]
fn conv2d_hand_computed() {
    let device = cpu_autodiff();
    let x = Tensor::<1>::from_floats([1., 2., 3., 4., 5., 6., 7., 8., 9.], &device)
        .reshape([1, 1, 3, 3])
        .require_grad();
    let w = Tensor::<4>::ones([1, 1, 2, 2], &device).require_grad();
    let b = Tensor::<1>::from_floats([0.5], &device).require_grad();
    let y = ops::conv2d(
        x.clone(),
        w.clone(),
        Some(b.clone()),
        ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
    );
    // 2x2 windows: 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9, plus 0.5.
    assert_close_values("y", &vec_of(&y), &[12.5, 16.5, 24.5, 28.5], 1e-6);
    let grads = y.sum().backward();
    // Each input pixel is counted by as many windows as cover it.
    assert_close_values(
        "dx",
        &vec_of(&x.grad(&grads).unwrap()),
        &[1., 2., 1., 2., 4., 2., 1., 2., 1.],
        1e-6,
    );
    // dw[i][j] = sum of the window's pixels at offset (i, j): 1+2+4+5, 2+3+5+6, ...
    assert_close_values(
        "dw",
        &vec_of(&w.grad(&grads).unwrap()),
        &[12., 16., 24., 28.],
        1e-6,
    );
    assert_close_values("db", &vec_of(&b.grad(&grads).unwrap()), &[4.], 1e-6);
}

/// The first conv of a network: the image is a constant, only the weights need gradients.
#[test]
fn conv2d_with_a_constant_input_gives_weight_gradients() {
    let device = cpu_autodiff();
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let grads_of = |torch: bool| {
        let x = tensor([2, 3, 8, 8], 11, &device);
        let w = tensor([4, 3, 3, 3], 12, &device).require_grad();
        let y = if torch {
            ops::conv2d(x.clone(), w.clone(), None, options.clone())
        } else {
            ops::conv2d_reference(x.clone(), w.clone(), None, options.clone())
        };
        let grads = (y.clone() * y).sum().backward();
        assert!(
            x.grad(&grads).is_none(),
            "a constant input gets no gradient"
        );
        w.grad(&grads).expect("dw")
    };
    assert_close("dw", &grads_of(true), &grads_of(false), TOL);
}

/// The input and output of the op are used again afterwards; burn-tch must not write into
/// storage libtorch saved for the backward (that would make libtorch refuse it).
#[test]
fn conv2d_inputs_reused_after_the_op() {
    let device = cpu_autodiff();
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let grads_of = |torch: bool| {
        let x = tensor([2, 3, 6, 6], 21, &device).require_grad();
        let w1 = tensor([3, 3, 3, 3], 22, &device).require_grad();
        let w2 = tensor([3, 3, 3, 3], 23, &device).require_grad();
        let conv = |x: Tensor<4>, w: Tensor<4>| {
            if torch {
                ops::conv2d(x, w, None, options.clone())
            } else {
                ops::conv2d_reference(x, w, None, options.clone())
            }
        };
        let h = conv(x.clone(), w1.clone());
        let y = conv(h.clone(), w2.clone());
        // h and y are used again: a skip connection and an elementwise op on h.
        let z = h.mul_scalar(3.0).add_scalar(1.0) + y.clone();
        let loss = (z.clone() * z).sum() + y.sum();
        let grads = loss.backward();
        [
            x.grad(&grads).unwrap(),
            w1.grad(&grads).unwrap(),
            w2.grad(&grads).unwrap(),
        ]
    };
    let torch = grads_of(true);
    let burn = grads_of(false);
    for (name, (a, b)) in ["dx", "dw1", "dw2"].iter().zip(torch.iter().zip(&burn)) {
        assert_close(name, a, b, TOL);
    }
}

/// `conv2d_module` equals `Conv2d::forward`, including "same" padding with stride 2 (which
/// pads asymmetrically) and the parameters' gradients.
#[test]
fn conv2d_module_matches_conv2d_forward() {
    let device = cpu_autodiff();
    let configs = [
        Conv2dConfig::new([3, 4], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
        Conv2dConfig::new([3, 4], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .with_stride([2, 2]),
        Conv2dConfig::new([3, 4], [4, 4]).with_padding(PaddingConfig2d::Same),
        Conv2dConfig::new([3, 6], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(0, 2, 1, 0))
            .with_bias(false),
        Conv2dConfig::new([4, 4], [3, 3])
            .with_padding(PaddingConfig2d::Valid)
            .with_dilation([2, 2])
            .with_groups(2),
    ];
    for (i, config) in configs.iter().enumerate() {
        let conv = config.init(&device);
        let in_channels = config.channels[0];
        let x = tensor([2, in_channels, 9, 10], 30 + i as u64, &device).require_grad();
        let ours = ops::conv2d_module(&conv, x.clone());
        let burns = conv.forward(x.clone());
        assert_close(&format!("config {i}: y"), &ours, &burns, TOL);
        let r = tensor(ours.dims(), 40, &device);
        let g_ours = (ours * r.clone()).sum().backward();
        let g_burn = (burns * r).sum().backward();
        let w = conv.weight.val();
        assert_close(
            &format!("config {i}: dw"),
            &w.grad(&g_ours).unwrap(),
            &w.grad(&g_burn).unwrap(),
            TOL,
        );
        assert_close(
            &format!("config {i}: dx"),
            &x.grad(&g_ours).unwrap(),
            &x.grad(&g_burn).unwrap(),
            TOL,
        );
        if let Some(b) = &conv.bias {
            let b = b.val();
            assert_close(
                &format!("config {i}: db"),
                &b.grad(&g_ours).unwrap(),
                &b.grad(&g_burn).unwrap(),
                TOL,
            );
        }
    }
}
