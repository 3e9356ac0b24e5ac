//! Micro-benchmarks and the CUDA check of `trainer::ops` (ignored: run by hand).
//!
//! CPU:  cargo test -p sweep-train --test train -- --ignored --nocapture ops_bench::cpu_
//! CUDA: the `cuda_check_and_benchmark` test, built with ../shared/tools/gpu-build.
//! Nothing here asserts on time.
#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is the backend this project chose.

use crate::util::ops::*;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};
use std::time::Instant;
use sweep_train::ops::{self, KernelOptions};

#[derive(Module, Debug)]
struct ConvBnRelu {
    conv: Conv2d,
    bn: BatchNorm,
}

impl ConvBnRelu {
    fn new(cin: usize, cout: usize, device: &Device) -> Self {
        ConvBnRelu {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }

    /// The swap the model makes: `ops::*_module` instead of the modules' `forward`
    /// (which path runs inside is chosen by the kernel options), or the fused call.
    fn forward(&self, x: Tensor<4>, fused: bool) -> Tensor<4> {
        if fused {
            ops::conv_bn_relu_module(&self.conv, &self.bn, x, ops::RunningVariance::Biased)
        } else {
            relu(ops::batch_norm_module(
                &self.bn,
                ops::conv2d_module(&self.conv, x),
                ops::RunningVariance::Biased,
            ))
        }
    }
}

/// A UNet-S5-style encoder (two conv-BN-ReLU per level, max-pool between), channels
/// base * 2^level: most of the network's convolution work.
#[derive(Module, Debug)]
struct Encoder {
    blocks: Vec<ConvBnRelu>,
    pool: MaxPool2d,
}

impl Encoder {
    fn new(base: usize, levels: usize, device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut cin = 3;
        for level in 0..levels {
            let c = base << level;
            blocks.push(ConvBnRelu::new(cin, c, device));
            blocks.push(ConvBnRelu::new(c, c, device));
            cin = c;
        }
        Encoder {
            blocks,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        }
    }

    fn forward(&self, mut x: Tensor<4>, fused: bool) -> Tensor<4> {
        for (i, block) in self.blocks.iter().enumerate() {
            if i > 0 && i % 2 == 0 {
                x = self.pool.forward(x);
            }
            x = block.forward(x, fused);
        }
        x
    }
}

/// ms per call of `reps` calls, the device synchronised around them.
fn time_ms(device: &Device, reps: usize, f: &mut dyn FnMut()) -> f64 {
    device.sync().expect("device sync");
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    device.sync().expect("device sync");
    start.elapsed().as_secs_f64() * 1e3 / reps as f64
}

fn with_options<T>(options: KernelOptions, f: impl FnOnce() -> T) -> T {
    let before = ops::kernel_options();
    ops::set_kernel_options(options);
    let out = f();
    ops::set_kernel_options(before);
    out
}

fn burn_path() -> KernelOptions {
    KernelOptions {
        torch_kernels: false,
        ..KernelOptions::default()
    }
}

fn variants(cuda: bool) -> Vec<(&'static str, KernelOptions)> {
    let torch = KernelOptions::default();
    let mut v = vec![("burn ops", burn_path()), ("libtorch ops", torch)];
    if cuda {
        let bench = KernelOptions {
            cudnn_benchmark: true,
            ..torch
        };
        v.push(("libtorch + cudnn.benchmark", bench));
        v.push((
            "  + channels_last",
            KernelOptions {
                channels_last: true,
                ..bench
            },
        ));
        v.push((
            "  + bf16 convs",
            KernelOptions {
                bf16: true,
                ..bench
            },
        ));
        v.push((
            "  + channels_last + bf16",
            KernelOptions {
                channels_last: true,
                bf16: true,
                ..bench
            },
        ));
    } else {
        v.push((
            "libtorch + channels_last",
            KernelOptions {
                channels_last: true,
                ..torch
            },
        ));
    }
    v
}

/// Per-op and encoder timings, forward + backward, for each kernel variant: the best of
/// `rounds` rounds, the variants interleaved within a round so that a busy machine
/// disturbs them alike.
#[allow(clippy::too_many_arguments)]
fn benchmark(
    device: &Device,
    cuda: bool,
    batch: usize,
    crop: usize,
    channels: usize,
    base: usize,
    reps: usize,
    rounds: usize,
) {
    println!(
        "device {device:?}: conv3x3 {channels}->{channels} and BN on {batch}x{channels}x{crop}x{crop}; encoder base {base} at {batch}x3x{crop}x{crop}; best of {rounds} rounds of {reps}"
    );
    let x = tensor([batch, channels, crop, crop], 1, device).detach();
    let x_in = x.clone().require_grad();
    let w = tensor([channels, channels, 3, 3], 2, device)
        .mul_scalar(0.1)
        .require_grad();
    let gamma = Tensor::<1>::ones([channels], device).require_grad();
    let beta = Tensor::<1>::zeros([channels], device).require_grad();
    let image = tensor([batch, 3, crop, crop], 3, device);
    let encoder = Encoder::new(base, 5, device);
    let conv_options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let mut conv_fwd = || {
        drop(ops::conv2d(
            x.clone(),
            w.clone(),
            None,
            conv_options.clone(),
        ));
    };
    let mut conv = || {
        let y = ops::conv2d(x_in.clone(), w.clone(), None, conv_options.clone());
        let _ = y.sum().backward();
    };
    let mut bn = || {
        let layer = ops::BnLayer::new(
            gamma.clone(),
            beta.clone(),
            Tensor::zeros([channels], device),
            Tensor::ones([channels], device),
            true,
        );
        let (y, _) = ops::batch_norm(x_in.clone(), layer);
        let _ = y.sum().backward();
    };
    let mut enc = || {
        let _ = encoder.forward(image.clone(), false).sum().backward();
    };
    let mut fused = || {
        let _ = encoder.forward(image.clone(), true).sum().backward();
    };
    let mut measures: [(&str, &mut dyn FnMut()); 5] = [
        ("conv fwd", &mut conv_fwd),
        ("conv fwd+bwd", &mut conv),
        ("BN fwd+bwd", &mut bn),
        ("encoder fwd+bwd", &mut enc),
        ("fused encoder", &mut fused),
    ];
    let variants = variants(cuda);
    let mut best = vec![[f64::INFINITY; 5]; variants.len()];
    for _ in 0..rounds {
        for (v, (_, options)) in variants.iter().enumerate() {
            with_options(*options, || {
                for (m, (_, f)) in measures.iter_mut().enumerate() {
                    // The fused call is the same as the separate ones on burn's path.
                    if m == 4 && !options.torch_kernels {
                        continue;
                    }
                    f(); // warm-up (and cuDNN autotuning)
                    best[v][m] = best[v][m].min(time_ms(device, reps, *f));
                }
            });
        }
    }
    let header: Vec<String> = measures.iter().map(|(n, _)| format!("{n:>16}")).collect();
    println!("{:<28}{} (ms per call)", "", header.join(""));
    for ((name, _), row) in variants.iter().zip(&best) {
        let cells: Vec<String> = row
            .iter()
            .map(|t| {
                if t.is_finite() {
                    format!("{t:>16.2}")
                } else {
                    format!("{:>16}", "-")
                }
            })
            .collect();
        let img_s = |t: f64| {
            if t.is_finite() {
                format!("{:.1} img/s", batch as f64 * 1e3 / t)
            } else {
                "-".to_string()
            }
        };
        println!(
            "{name:<28}{}   encoder {}, fused {}",
            cells.join(""),
            img_s(row[3]),
            img_s(row[4])
        );
    }
}

#[test]
#[ignore]
fn cpu_micro_benchmark() {
    // One libtorch thread: the shared CPU gives steadier numbers.
    tch::set_num_threads(1);
    benchmark(&cpu_autodiff(), false, 2, 64, 16, 8, 2, 5);
    benchmark(&cpu_autodiff(), false, 2, 128, 64, 16, 2, 3);
}

/// Largest relative error of each libtorch-path result against burn's, for one variant.
fn check(device: &Device, options: KernelOptions) -> f32 {
    let conv_cases = [
        (
            [2, 3, 33, 31],
            [8, 3, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            true,
        ),
        (
            [2, 8, 32, 32],
            [8, 8, 3, 3],
            ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
            false,
        ),
        (
            [1, 8, 40, 40],
            [8, 8, 3, 3],
            ConvOptions::new([1, 1], [12, 12], [12, 12], 1),
            false,
        ),
        (
            [2, 8, 16, 16],
            [8, 4, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 2),
            true,
        ),
        (
            [2, 8, 15, 15],
            [4, 8, 3, 3],
            ConvOptions::new_with_padding([2, 2], [(0, 1), (1, 1)], [1, 1], 1),
            true,
        ),
    ];
    let mut worst = 0.0f32;
    for (xs, ws, conv_options, bias) in conv_cases {
        let run = |torch: bool| {
            let x = tensor(xs, 1, device).require_grad();
            let w = tensor(ws, 2, device).mul_scalar(0.3).require_grad();
            let b = bias.then(|| tensor([ws[0]], 3, device).require_grad());
            let f = if torch {
                ops::conv2d
            } else {
                ops::conv2d_reference
            };
            let y = f(x.clone(), w.clone(), b.clone(), conv_options.clone());
            let r = tensor(y.dims(), 4, device);
            let grads = (y.clone() * r).sum().backward();
            let db = b.map(|b| b.grad(&grads).unwrap());
            (
                y.inner(),
                x.grad(&grads).unwrap(),
                w.grad(&grads).unwrap(),
                db,
            )
        };
        let (t, b) = with_options(options, || (run(true), run(false)));
        let errs = [
            rel_err(&t.0, &b.0),
            rel_err(&t.1, &b.1),
            rel_err(&t.2, &b.2),
        ];
        let db = match (&t.3, &b.3) {
            (Some(a), Some(b)) => rel_err(a, b),
            _ => 0.0,
        };
        println!(
            "  conv x {xs:?} w {ws:?}: y {:.1e} dx {:.1e} dw {:.1e} db {db:.1e}",
            errs[0], errs[1], errs[2]
        );
        worst = errs.iter().fold(worst.max(db), |m, e| m.max(*e));
    }
    for training in [true, false] {
        let run = |torch: bool| {
            let x = tensor([2, 8, 24, 24], 5, device)
                .mul_scalar(2.0)
                .add_scalar(0.5)
                .detach()
                .require_grad();
            let gamma = tensor([8], 6, device)
                .add_scalar(1.5)
                .detach()
                .require_grad();
            let beta = tensor([8], 7, device).require_grad();
            let rm = tensor([8], 8, device);
            let rv = tensor([8], 9, device).abs().add_scalar(0.5);
            let f = if torch {
                ops::batch_norm
            } else {
                ops::batch_norm_reference
            };
            let layer = ops::BnLayer::new(gamma.clone(), beta.clone(), rm, rv, training);
            let (y, stats) = f(x.clone(), layer);
            let r = tensor(y.dims(), 10, device);
            let grads = (y.clone() * r).sum().backward();
            (
                y.inner(),
                x.grad(&grads).unwrap(),
                gamma.grad(&grads).unwrap(),
                beta.grad(&grads).unwrap(),
                stats,
            )
        };
        let (t, b) = with_options(options, || (run(true), run(false)));
        let mut errs = vec![
            rel_err(&t.0, &b.0),
            rel_err(&t.1, &b.1),
            rel_err(&t.2, &b.2),
            rel_err(&t.3, &b.3),
        ];
        if let (Some((tm, tv)), Some((bm, bv))) = (&t.4, &b.4) {
            errs.push(rel_err(tm, bm));
            errs.push(rel_err(tv, bv));
        }
        let shown: Vec<String> = errs.iter().map(|e| format!("{e:.1e}")).collect();
        println!(
            "  batch norm training {training}: y dx dgamma dbeta [mean var] {}",
            shown.join(" ")
        );
        worst = errs.iter().fold(worst, |m, e| m.max(*e));
    }
    for training in [true, false] {
        let run = |torch: bool| {
            let x = tensor([2, 4, 20, 18], 11, device).require_grad();
            let w = tensor([8, 4, 3, 3], 12, device)
                .mul_scalar(0.3)
                .require_grad();
            let gamma = tensor([8], 13, device)
                .add_scalar(1.5)
                .detach()
                .require_grad();
            let beta = tensor([8], 14, device).require_grad();
            let rm = tensor([8], 15, device).mul_scalar(0.1);
            let rv = tensor([8], 16, device).abs().add_scalar(0.5);
            let f = if torch {
                ops::conv_bn_relu
            } else {
                ops::conv_bn_relu_reference
            };
            let conv_options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
            let layer = ops::BnLayer::new(gamma.clone(), beta.clone(), rm, rv, training);
            let (y, stats) = f(x.clone(), w.clone(), None, conv_options, layer);
            let r = tensor(y.dims(), 17, device);
            let grads = (y.clone() * r).sum().backward();
            let mut errs_in = vec![
                x.grad(&grads).unwrap(),
                w.grad(&grads).unwrap().reshape([8, 36, 1, 1]),
            ];
            errs_in.insert(0, y.inner());
            let mut vectors = vec![gamma.grad(&grads).unwrap(), beta.grad(&grads).unwrap()];
            if let Some((m, v)) = stats {
                vectors.push(m);
                vectors.push(v);
            }
            (errs_in, vectors)
        };
        let (t, b) = with_options(options, || (run(true), run(false)));
        let mut errs: Vec<f32> = t.0.iter().zip(&b.0).map(|(a, b)| rel_err(a, b)).collect();
        errs.extend(t.1.iter().zip(&b.1).map(|(a, b)| rel_err(a, b)));
        let shown: Vec<String> = errs.iter().map(|e| format!("{e:.1e}")).collect();
        println!(
            "  conv-bn-relu training {training}: y dx dw dgamma dbeta [mean var] {}",
            shown.join(" ")
        );
        worst = errs.iter().fold(worst, |m, e| m.max(*e));
    }
    worst
}

#[test]
#[ignore]
fn cpu_check_options() {
    let device = cpu_autodiff();
    for (name, options) in variants(false).into_iter().skip(1) {
        println!("{name}:");
        let worst = check(&device, options);
        assert!(worst < 1e-4, "{name}: worst relative error {worst:e}");
    }
}

/// On the GPU machine: correctness of every variant on CUDA, then the benchmark.
#[test]
#[ignore]
fn cuda_check_and_benchmark() {
    if !tch::Cuda::is_available() {
        println!("no CUDA device: skipped");
        return;
    }
    let device = Device::libtorch_cuda(0).autodiff();
    for (name, options) in variants(true).into_iter().skip(1) {
        println!("{name}:");
        let worst = check(&device, options);
        // TF32 (libtorch's default for cuDNN convs) on both paths, bf16 where asked.
        let tol = if options.bf16 { 5e-2 } else { 1e-2 };
        assert!(worst < tol, "{name}: worst relative error {worst:e}");
    }
    for (batch, crop) in [(2, 256), (16, 256)] {
        benchmark(&device, true, batch, crop, 64, 64, 5, 3);
    }
}
