//! Kernel options (process-wide, hence run in their own process, one test): channels_last and
//! bf16 convolutions give burn's results; switching the libtorch kernels off gives burn's path.
#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is the backend this project chose.

use crate::util::ops::*;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;
use sweep_train::ops::{self, KernelOptions};

/// Gradients of x, w, gamma through conv(stride 2) -> fused conv-bn-relu -> sum(y * r).
fn run(torch: bool) -> Vec<Tensor<4>> {
    let device = cpu_autodiff();
    let x = tensor([2, 3, 13, 12], 1, &device).require_grad();
    let w1 = tensor([4, 3, 3, 3], 2, &device).require_grad();
    let b1 = tensor([4], 3, &device).require_grad();
    let w2 = tensor([6, 4, 3, 3], 4, &device).require_grad();
    let gamma = tensor([6], 5, &device)
        .add_scalar(1.5)
        .detach()
        .require_grad();
    let beta = tensor([6], 6, &device);
    let (rm, rv) = (Tensor::zeros([6], &device), Tensor::ones([6], &device));
    let o1 = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
    let o2 = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let bn = ops::BnLayer {
        running_variance: ops::RunningVariance::Unbiased,
        ..ops::BnLayer::new(gamma.clone(), beta, rm, rv, true)
    };
    let (y, stats) = if torch {
        let h = ops::conv2d(x.clone(), w1.clone(), Some(b1.clone()), o1);
        ops::conv_bn_relu(h, w2.clone(), None, o2, bn)
    } else {
        let h = ops::conv2d_reference(x.clone(), w1.clone(), Some(b1.clone()), o1);
        ops::conv_bn_relu_reference(h, w2.clone(), None, o2, bn)
    };
    let r = tensor(y.dims(), 7, &device);
    let grads = (y.clone() * r).sum().backward();
    let (_, var) = stats.unwrap();
    let as4 = |t: Tensor<1>| t.reshape([1, 1, 1, -1]);
    vec![
        y.inner(),
        x.grad(&grads).unwrap(),
        w1.grad(&grads).unwrap(),
        w2.grad(&grads).unwrap(),
        as4(b1.grad(&grads).unwrap()),
        as4(gamma.grad(&grads).unwrap()),
        as4(var),
    ]
}

/// Process-wide options: alone in its own process (the other tests run kernels meanwhile).
#[test]
fn kernel_options_keep_burns_results() {
    crate::util::in_own_process(
        module_path!(),
        "kernel_options_keep_burns_results",
        kernel_options_keep_burns_results_alone,
    );
}

fn kernel_options_keep_burns_results_alone() {
    let names = ["y", "dx", "dw1", "dw2", "db1", "dgamma", "running var"];
    let reference = run(false);
    let cases = [
        ("default", KernelOptions::default(), 1e-4),
        (
            "channels_last",
            KernelOptions {
                channels_last: true,
                ..KernelOptions::default()
            },
            1e-4,
        ),
        // bf16 has 8 significant bits: the convolutions agree to about 1e-2.
        (
            "bf16",
            KernelOptions {
                bf16: true,
                ..KernelOptions::default()
            },
            3e-2,
        ),
        (
            "channels_last + bf16",
            KernelOptions {
                channels_last: true,
                bf16: true,
                ..KernelOptions::default()
            },
            3e-2,
        ),
    ];
    for (label, options, tol) in cases {
        ops::set_kernel_options(options);
        assert_eq!(ops::kernel_options(), options);
        let got = run(true);
        for ((name, a), b) in names.iter().zip(&got).zip(&reference) {
            assert_close(&format!("{label}: {name}"), a, b, tol);
        }
    }
    // With bf16 the results must differ somewhat from f32 (the option does something).
    ops::set_kernel_options(KernelOptions {
        bf16: true,
        ..KernelOptions::default()
    });
    let bf16 = run(true);
    assert!(
        rel_err(&bf16[0], &reference[0]) > 1e-6,
        "bf16 changed nothing"
    );
    // Libtorch kernels off: burn's own path, bit for bit.
    ops::set_kernel_options(KernelOptions {
        torch_kernels: false,
        ..KernelOptions::default()
    });
    assert!(!ops::uses_torch_kernels(&cpu_autodiff()));
    for ((name, a), b) in names.iter().zip(&run(true)).zip(&reference) {
        assert_eq!(vec_of(a), vec_of(b), "kernels off: {name}");
    }
    ops::set_cudnn_benchmark(true);
    assert!(ops::kernel_options().cudnn_benchmark);
    ops::set_kernel_options(KernelOptions::default());
}
