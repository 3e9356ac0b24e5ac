//! The segmentation network: UNet-S5-D16 backbone + decode head (+ auxiliary FCN head), as
//! MMSegmentation's `EncoderDecoder` with `configs/_base_/models/*_unet_s5-d16.py`.
//!
//! Backend-agnostic: only burn's `Module` and `Tensor<D>` APIs; the device decides the backend.
//! Parameter paths mirror MMSeg's state-dict keys (see [`mmseg_key`]).

pub mod blocks;
pub mod heads;
pub mod unet;

pub use blocks::ConvModule;
pub use heads::{head_channels, DecodeHead};
pub use unet::UNet;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sweep_core::job::{Head, ModelConfig};

/// Input channels: the study loads its grayscale B-scans as 3-channel images.
pub const IN_CHANNELS: usize = 3;
/// Backbone parameters of UNet-S5-D16 at base 64 (MMSeg; batch-norm buffers not counted).
pub const UNET_S5_D16_PARAMS: usize = 28_949_568;

#[derive(Module, Debug)]
pub struct Segmentor {
    pub backbone: UNet,
    /// Reads the full-resolution decoder output (`in_index` 4).
    pub decode_head: DecodeHead,
    /// FCN head on the half-resolution decoder output (`in_index` 3).
    pub auxiliary_head: Option<DecodeHead>,
}

/// Training outputs: logits of the decode head (full resolution) and of the auxiliary head
/// (half resolution; the loss resizes it to the label size).
pub struct SegOutput {
    pub logits: Tensor<4>,
    pub aux_logits: Option<Tensor<4>>,
}

impl Segmentor {
    /// The network with all weights zero (cheap, lazily allocated); see [`Segmentor::init`].
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        let base = cfg.base_channels;
        let outs = UNet::out_channels(base);
        Segmentor {
            backbone: UNet::new(IN_CHANNELS, base, device),
            decode_head: DecodeHead::new(
                cfg.head,
                outs[4],
                head_channels(cfg.head, base),
                cfg.num_classes,
                cfg.dropout,
                device,
            ),
            auxiliary_head: cfg.aux_head.then(|| {
                DecodeHead::new(
                    Head::Fcn,
                    outs[3],
                    head_channels(Head::Fcn, base),
                    cfg.num_classes,
                    cfg.dropout,
                    device,
                )
            }),
        }
    }

    /// The network with MMSeg's initialisation drawn from `seed` (see [`init_weights`]).
    pub fn init(cfg: &ModelConfig, seed: u64, device: &Device) -> Self {
        init_weights(Self::new(cfg, device), seed)
    }

    /// Training forward pass; `rng` drives dropout (None: no dropout).
    pub fn forward_train(&self, x: Tensor<4>, mut rng: Option<&mut ChaCha8Rng>) -> SegOutput {
        let outs = self.backbone.forward(x);
        let logits = self
            .decode_head
            .forward(outs[4].clone(), rng.as_deref_mut());
        let aux_logits = self
            .auxiliary_head
            .as_ref()
            .map(|h| h.forward(outs[3].clone(), rng));
        SegOutput { logits, aux_logits }
    }

    /// Inference: decode-head logits `[N, classes, H, W]` at the input's resolution.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let outs = self.backbone.forward(x);
        self.decode_head.forward(outs[4].clone(), None)
    }
}

/// Initialisation as MMSeg/MMCV do it: every conv of a `ConvModule` Kaiming-normal with fan-out
/// and ReLU gain (`std = sqrt(2 / (out_ch * kh * kw))`), `conv_seg` normal with std 0.01 and zero
/// bias, batch norm weight 1 / bias 0 (burn's defaults already).
///
/// Values are drawn on the host from a ChaCha8 stream seeded by `(seed, parameter path)`, so
/// they do not depend on the device, the backend or the order parameters are visited in.
pub fn init_weights(model: Segmentor, seed: u64) -> Segmentor {
    struct Init {
        seed: u64,
        path: Vec<String>,
    }
    impl ModuleMapper for Init {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let shape = param.lazy_shape();
            if D != 4 {
                return param;
            }
            let path = self.path.join(".");
            let dims = shape.dims::<D>();
            let std = if path.contains("conv_seg") {
                0.01
            } else {
                (2.0 / (dims[0] * dims[2] * dims[3]) as f64).sqrt()
            };
            let mut rng = ChaCha8Rng::seed_from_u64(blocks::mix(self.seed ^ fnv1a(&path)));
            let values = normals(&mut rng, shape.num_elements(), std);
            let device = param.lazy_device();
            let id = param.id;
            let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), &device);
            param.transform_for_load(tensor, id)
        }
    }
    model.map(&mut Init {
        seed,
        path: Vec::new(),
    })
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `n` normal samples (Box-Muller) with mean 0 and standard deviation `std`.
fn normals(rng: &mut ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let t = std::f64::consts::TAU * u2;
        out.push((r * t.cos()) as f32);
        out.push((r * t.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// Visits every float tensor of a module with its dotted path (`backbone.encoder.0.convs.0.conv.weight`).
pub fn visit_paths<M: Module>(module: &M, mut f: impl FnMut(&str, &[usize])) {
    struct V<'a> {
        path: Vec<String>,
        f: &'a mut dyn FnMut(&str, &[usize]),
    }
    impl ModuleVisitor for V<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let shape = param.lazy_shape();
            (self.f)(&self.path.join("."), &shape.dims::<D>());
        }
    }
    module.visit(&mut V {
        path: Vec::new(),
        f: &mut f,
    });
}

/// Parameters (what PyTorch's `parameters()` counts) and buffers (batch-norm running statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamCounts {
    pub params: usize,
    pub buffers: usize,
}

/// Counts without materialising lazily initialised weights.
pub fn param_counts<M: Module>(module: &M) -> ParamCounts {
    let mut c = ParamCounts {
        params: 0,
        buffers: 0,
    };
    visit_paths(module, |path, dims| {
        let n: usize = dims.iter().product();
        if path.ends_with("running_mean") || path.ends_with("running_var") {
            c.buffers += n;
        } else {
            c.params += n;
        }
    });
    c
}

/// The MMSegmentation state-dict key of one of our parameter paths, for importing `.pth`
/// checkpoints (`num_batches_tracked` has no counterpart here); see `trainer::import`.
///
/// `backbone.encoder.{i}.convs...` -> `backbone.encoder.{i}.{0|1}.convs...`,
/// `backbone.decoder.{k}.upsample.X` -> `backbone.decoder.{k}.upsample.interp_upsample.1.X`,
/// `decode_head.image_pool.X` -> `decode_head.image_pool.1.X`,
/// `decode_head.psp_modules.{j}.X` -> `decode_head.psp_modules.{j}.1.X`,
/// batch norm `gamma`/`beta` -> `weight`/`bias`; everything else is identical.
pub fn mmseg_key(path: &str) -> String {
    let mut parts: Vec<&str> = path.split('.').collect();
    let n = parts.len();
    if n >= 2 && parts[n - 2] == "bn" {
        match parts[n - 1] {
            "gamma" => parts[n - 1] = "weight",
            "beta" => parts[n - 1] = "bias",
            _ => {}
        }
    }
    let mut out: Vec<&str> = parts.clone();
    match parts.as_slice() {
        ["backbone", "encoder", i, ..] => out.insert(3, if *i == "0" { "0" } else { "1" }),
        ["backbone", "decoder", _, "upsample", ..] => {
            out.insert(4, "interp_upsample");
            out.insert(5, "1");
        }
        [_, "image_pool", ..] => out.insert(2, "1"),
        [_, "psp_modules", _, ..] => out.insert(3, "1"),
        _ => {}
    }
    out.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Tensor;

    fn cfg(head: Head, base: usize) -> ModelConfig {
        ModelConfig {
            head,
            base_channels: base,
            ..Default::default()
        }
    }

    #[test]
    fn backbone_has_mmseg_parameter_count() {
        // Lazy parameters: counting allocates nothing.
        let m = Segmentor::new(&cfg(Head::Fcn, 64), &Device::libtorch());
        assert_eq!(param_counts(&m.backbone).params, UNET_S5_D16_PARAMS);
        // Batch-norm running mean + var: 2 per channel of every ConvModule.
        // Encoder: 2 convs per stage; decoder block k: 2 conv_block convs + 1 upsample conv, all
        // with the skip's channels 64 * 2^k.
        let bn_channels: usize = 2 * 64 * (1 + 2 + 4 + 8 + 16) + 3 * 64 * (1 + 2 + 4 + 8);
        assert_eq!(param_counts(&m.backbone).buffers, 2 * bn_channels);
    }

    #[test]
    fn head_parameter_counts_match_pytorch() {
        // Numbers from src/bench/torch_train_step.py --count-params (the same network in PyTorch);
        // FCN by hand: conv3x3 64*64*9 + BN 2*64 + conv_seg 64*2 + 2 = 37122.
        let dev = Device::libtorch();
        for (head, base, decode, aux) in [
            (Head::Fcn, 64, 37_122, 73_986),
            (Head::Deeplabv3, 64, 41_442, 73_986),
            (Head::Pspnet, 64, 22_722, 73_986),
            (Head::Fcn, 8, 610, 1_186),
            (Head::Deeplabv3, 8, 674, 1_186),
            (Head::Pspnet, 8, 378, 1_186),
        ] {
            let m = Segmentor::new(&cfg(head, base), &dev);
            assert_eq!(
                param_counts(&m.decode_head).params,
                decode,
                "{head:?} base {base}"
            );
            assert_eq!(
                param_counts(m.auxiliary_head.as_ref().unwrap()).params,
                aux,
                "aux base {base}"
            );
        }
        assert_eq!(
            param_counts(&Segmentor::new(&cfg(Head::Fcn, 8), &dev).backbone).params,
            454_024
        );
    }

    #[test]
    fn paths_map_to_mmseg_keys() {
        let cases = [
            (
                "backbone.encoder.0.convs.0.conv.weight",
                "backbone.encoder.0.0.convs.0.conv.weight",
            ),
            (
                "backbone.encoder.3.convs.1.bn.gamma",
                "backbone.encoder.3.1.convs.1.bn.weight",
            ),
            (
                "backbone.encoder.4.convs.1.bn.running_var",
                "backbone.encoder.4.1.convs.1.bn.running_var",
            ),
            (
                "backbone.decoder.2.conv_block.convs.0.bn.beta",
                "backbone.decoder.2.conv_block.convs.0.bn.bias",
            ),
            (
                "backbone.decoder.0.upsample.conv.weight",
                "backbone.decoder.0.upsample.interp_upsample.1.conv.weight",
            ),
            (
                "decode_head.convs.0.conv.weight",
                "decode_head.convs.0.conv.weight",
            ),
            (
                "decode_head.image_pool.bn.gamma",
                "decode_head.image_pool.1.bn.weight",
            ),
            (
                "decode_head.aspp_modules.2.conv.weight",
                "decode_head.aspp_modules.2.conv.weight",
            ),
            (
                "decode_head.psp_modules.3.conv.weight",
                "decode_head.psp_modules.3.1.conv.weight",
            ),
            (
                "decode_head.bottleneck.bn.running_mean",
                "decode_head.bottleneck.bn.running_mean",
            ),
            ("decode_head.conv_seg.bias", "decode_head.conv_seg.bias"),
            (
                "auxiliary_head.convs.0.bn.gamma",
                "auxiliary_head.convs.0.bn.weight",
            ),
        ];
        for (ours, theirs) in cases {
            assert_eq!(mmseg_key(ours), theirs);
        }
        // Every path of every head kind exists in the model.
        for head in [Head::Fcn, Head::Deeplabv3, Head::Pspnet] {
            let mut paths = Vec::new();
            visit_paths(
                &Segmentor::new(&cfg(head, 4), &Device::libtorch()),
                |p, _| paths.push(p.to_string()),
            );
            for (ours, _) in cases {
                let applies = match head {
                    Head::Fcn => {
                        !ours.contains("image_pool")
                            && !ours.contains("aspp")
                            && !ours.contains("psp")
                            && !ours.contains("bottleneck")
                    }
                    Head::Deeplabv3 => {
                        !ours.starts_with("decode_head.convs") && !ours.contains("psp")
                    }
                    Head::Pspnet => {
                        !ours.starts_with("decode_head.convs")
                            && !ours.contains("aspp")
                            && !ours.contains("image_pool")
                    }
                };
                assert_eq!(paths.iter().any(|p| p == ours), applies, "{head:?}: {ours}");
            }
        }
    }

    #[test]
    fn forward_shapes_for_every_head() {
        crate::train::set_cpu_threads(1);
        let dev = Device::libtorch().autodiff();
        for head in [Head::Fcn, Head::Deeplabv3, Head::Pspnet] {
            let m = Segmentor::init(&cfg(head, 4), 0, &dev);
            let x = Tensor::<4>::ones([2, 3, 32, 48], &dev);
            let mut rng = blocks::rng_for(0, 0, 0);
            let out = m.forward_train(x.clone(), Some(&mut rng));
            assert_eq!(out.logits.dims(), [2, 2, 32, 48]);
            assert_eq!(out.aux_logits.unwrap().dims(), [2, 2, 16, 24]);
            assert_eq!(
                m.valid().forward(x.without_autodiff()).dims(),
                [2, 2, 32, 48]
            );
        }
    }

    #[test]
    #[should_panic(expected = "must be positive multiples of 16")]
    fn forward_rejects_sizes_not_multiple_of_16() {
        let dev = Device::libtorch();
        let m = Segmentor::init(&cfg(Head::Fcn, 4), 0, &dev);
        m.forward(Tensor::<4>::zeros([1, 3, 40, 32], &dev));
    }

    fn weights(m: &Segmentor) -> Vec<f32> {
        m.backbone.encoder[1].convs[0]
            .conv
            .weight
            .val()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap()
    }

    #[test]
    fn init_is_seeded_and_kaiming_fan_out() {
        let dev = Device::libtorch();
        let c = cfg(Head::Fcn, 8);
        let a = Segmentor::init(&c, 7, &dev);
        assert_eq!(weights(&a), weights(&Segmentor::init(&c, 7, &dev)));
        assert_ne!(weights(&a), weights(&Segmentor::init(&c, 8, &dev)));
        // encoder.1.convs.0: 16 x 8 x 3 x 3, std sqrt(2 / (16 * 9)) = 0.1179.
        let w = weights(&a);
        let var = w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64;
        assert!((var.sqrt() - 0.1179).abs() < 0.012, "std {}", var.sqrt());
        let seg = a
            .decode_head
            .conv_seg
            .weight
            .val()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert!(seg.iter().all(|v| v.abs() < 0.06) && seg.iter().any(|v| *v != 0.0));
        let bias = a
            .decode_head
            .conv_seg
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert!(bias.iter().all(|v| *v == 0.0));
    }
}
