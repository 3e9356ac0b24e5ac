//! UNet-S5-D16 and its decode heads as ONNX nodes, in the order and with the names of
//! crates/train/src/model (unet.rs, blocks.rs, heads.rs): every node is named after the
//! MMSeg module it computes, every weight is the initializer of its MMSeg key.

use anyhow::Result;
use sweep_core::job::{Head, ModelConfig};

use super::graph::{float, int, ints, string, Attr, Graph};
use super::pool;

/// Input channels (the study's B-scans come as 3-channel images).
pub const IN_CHANNELS: usize = 3;
/// Encoder stages; stages 1..4 halve the resolution.
const NUM_STAGES: usize = 5;
/// DeepLabV3's ASPP dilations (the 1 branch is a 1x1 conv); model/heads.rs.
const ASPP_DILATIONS: [usize; 4] = [1, 12, 24, 36];
/// PSPNet's pooling scales; model/heads.rs.
const PSP_POOL_SCALES: [usize; 4] = [1, 2, 3, 6];
/// PyTorch's batch-norm epsilon (burn's `BatchNormConfig` default too).
const BN_EPS: f32 = 1e-5;

/// Channels of a head's hidden layers, as model/heads.rs `head_channels`.
pub fn head_channels(head: Head, base: usize) -> usize {
    match head {
        Head::Fcn => base.max(1),
        Head::Deeplabv3 | Head::Pspnet => (base / 4).max(1),
    }
}

/// `Segmentor::forward`: backbone, decode head on the full-resolution decoder output,
/// logits written to `output`. `size` is the input's (fixed) height and width.
pub fn segmentor(
    g: &mut Graph,
    cfg: &ModelConfig,
    x: &str,
    size: [usize; 2],
    output: &str,
) -> Result<()> {
    let outs = unet(g, x, cfg.base_channels)?;
    let feat = decode_head(g, cfg, &outs[4], size)?;
    // Dropout2d is the identity at inference.
    let p = "decode_head.conv_seg";
    let ch = head_channels(cfg.head, cfg.base_channels);
    let w = g.param(&format!("{p}.weight"), &[cfg.num_classes, ch, 1, 1])?;
    let b = g.param(&format!("{p}.bias"), &[cfg.num_classes])?;
    g.node_to(
        "Conv",
        p,
        &[&feat, &w, &b],
        vec![ints("kernel_shape", &[1, 1])],
        output,
    );
    Ok(())
}

/// MMCV's `ConvModule`: conv (no bias, "same" padding) -> batch norm (running statistics)
/// -> ReLU, under MMSeg key `prefix`.
fn conv_module(
    g: &mut Graph,
    prefix: &str,
    x: &str,
    [in_ch, out_ch]: [usize; 2],
    kernel: usize,
    dilation: usize,
) -> Result<String> {
    let (k, d) = (kernel as i64, dilation as i64);
    let pad = d * (k - 1) / 2;
    let w = g.param(
        &format!("{prefix}.conv.weight"),
        &[out_ch, in_ch, kernel, kernel],
    )?;
    let conv = g.node(
        "Conv",
        &format!("{prefix}.conv"),
        &[x, &w],
        vec![
            ints("kernel_shape", &[k, k]),
            ints("dilations", &[d, d]),
            ints("pads", &[pad; 4]),
        ],
    );
    let bn: Vec<String> = ["weight", "bias", "running_mean", "running_var"]
        .iter()
        .map(|n| g.param(&format!("{prefix}.bn.{n}"), &[out_ch]))
        .collect::<Result<_>>()?;
    let norm = g.node(
        "BatchNormalization",
        &format!("{prefix}.bn"),
        &[&conv, &bn[0], &bn[1], &bn[2], &bn[3]],
        vec![float("epsilon", BN_EPS)],
    );
    Ok(g.node("Relu", &format!("{prefix}.activate"), &[&norm], vec![]))
}

/// MMSeg's `BasicConvBlock` as UNet-S5-D16 uses it: 2 x conv3x3 module (`{prefix}.convs.{j}`).
fn basic_conv_block(
    g: &mut Graph,
    prefix: &str,
    x: &str,
    [in_ch, out_ch]: [usize; 2],
) -> Result<String> {
    let mut x = x.to_string();
    for j in 0..2 {
        let inp = if j == 0 { in_ch } else { out_ch };
        x = conv_module(g, &format!("{prefix}.convs.{j}"), &x, [inp, out_ch], 3, 1)?;
    }
    Ok(x)
}

/// `UNet::forward`: the five decoder outputs, coarsest first (`outs[4]`: full resolution,
/// `base` channels).
fn unet(g: &mut Graph, x: &str, base: usize) -> Result<Vec<String>> {
    let ch = |i: usize| base << i;
    let mut skips = Vec::with_capacity(NUM_STAGES);
    let mut x = x.to_string();
    for i in 0..NUM_STAGES {
        // MMSeg: encoder.0 is the block, encoder.i is Sequential(MaxPool2d, block).
        let prefix = format!("backbone.encoder.{i}");
        let in_ch = if i == 0 { IN_CHANNELS } else { ch(i - 1) };
        if i > 0 {
            let pool = vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])];
            x = g.node("MaxPool", &format!("{prefix}.0"), &[&x], pool);
        }
        let block = format!("{prefix}.{}", if i == 0 { 0 } else { 1 });
        x = basic_conv_block(g, &block, &x, [in_ch, ch(i)])?;
        skips.push(x.clone());
    }
    let mut outs = vec![x.clone()];
    // decoder[k] joins stage k + 1 into the skip of stage k; decoder[3] runs first.
    for k in (0..NUM_STAGES - 1).rev() {
        x = up_conv_block(g, k, &skips[k], &x, [ch(k + 1), ch(k)])?;
        outs.push(x.clone());
    }
    Ok(outs)
}

/// MMSeg's `UpConvBlock` with `InterpConv`: bilinear x2, conv1x1 module to the skip's
/// channels, concat `[skip, up]`, 2 x conv3x3.
fn up_conv_block(
    g: &mut Graph,
    k: usize,
    skip: &str,
    x: &str,
    [in_ch, skip_ch]: [usize; 2],
) -> Result<String> {
    let prefix = format!("backbone.decoder.{k}");
    let up = format!("{prefix}.upsample.interp_upsample");
    let scales = g.constant_f32(&format!("{up}.0.scales"), &[4], &[1.0, 1.0, 2.0, 2.0]);
    let resized = g.node("Resize", &format!("{up}.0"), &[x, "", &scales], bilinear());
    let up = conv_module(g, &format!("{up}.1"), &resized, [in_ch, skip_ch], 1, 1)?;
    let cat = g.node(
        "Concat",
        &format!("{prefix}.cat"),
        &[skip, &up],
        vec![int("axis", 1)],
    );
    basic_conv_block(
        g,
        &format!("{prefix}.conv_block"),
        &cat,
        [2 * skip_ch, skip_ch],
    )
}

/// The decode head's features before dropout and `conv_seg`.
fn decode_head(g: &mut Graph, cfg: &ModelConfig, x: &str, size: [usize; 2]) -> Result<String> {
    // UNet's full-resolution output has `base` channels.
    let in_ch = cfg.base_channels;
    let ch = head_channels(cfg.head, cfg.base_channels);
    match cfg.head {
        Head::Fcn => conv_module(g, "decode_head.convs.0", x, [in_ch, ch], 3, 1),
        Head::Deeplabv3 => aspp(g, x, [in_ch, ch], size),
        Head::Pspnet => psp(g, x, [in_ch, ch], size),
    }
}

/// DeepLabV3's ASPP head: image pool (global mean, conv1x1, broadcast back: the bilinear
/// resize of a 1x1 map is a broadcast), the dilated branches, conv3x3 bottleneck.
fn aspp(g: &mut Graph, x: &str, [in_ch, ch]: [usize; 2], [h, w]: [usize; 2]) -> Result<String> {
    let p = "decode_head.image_pool";
    let pooled = g.node("GlobalAveragePool", &format!("{p}.0"), &[x], vec![]);
    let pooled = conv_module(g, &format!("{p}.1"), &pooled, [in_ch, ch], 1, 1)?;
    let shape = g.constant_i64(&format!("{p}.size"), &[1, 1, h as i64, w as i64]);
    let mut outs = vec![g.node("Expand", &format!("{p}.resize"), &[&pooled, &shape], vec![])];
    for (j, d) in ASPP_DILATIONS.into_iter().enumerate() {
        let k = if d == 1 { 1 } else { 3 };
        let prefix = format!("decode_head.aspp_modules.{j}");
        outs.push(conv_module(g, &prefix, x, [in_ch, ch], k, d)?);
    }
    bottleneck(g, &outs, [outs.len() * ch, ch])
}

/// PSPNet's pyramid pooling: per scale adaptive mean pool, conv1x1, bilinear resize back;
/// concat with the input, conv3x3 bottleneck.
fn psp(g: &mut Graph, x: &str, [in_ch, ch]: [usize; 2], size: [usize; 2]) -> Result<String> {
    let mut outs = vec![x.to_string()];
    for (j, s) in PSP_POOL_SCALES.into_iter().enumerate() {
        let p = format!("decode_head.psp_modules.{j}");
        let pooled = adaptive_avg_pool(g, &format!("{p}.0"), x, size, s);
        let conv = conv_module(g, &format!("{p}.1"), &pooled, [in_ch, ch], 1, 1)?;
        outs.push(resize_to(g, &format!("{p}.resize"), &conv, size));
    }
    bottleneck(g, &outs, [in_ch + PSP_POOL_SCALES.len() * ch, ch])
}

fn bottleneck(g: &mut Graph, branches: &[String], chans: [usize; 2]) -> Result<String> {
    let refs: Vec<&str> = branches.iter().map(String::as_str).collect();
    let cat = g.node("Concat", "decode_head.cat", &refs, vec![int("axis", 1)]);
    conv_module(g, "decode_head.bottleneck", &cat, chans, 3, 1)
}

/// `adaptive_avg_pool2d(x, [s, s])` of an `[N, C, h, w]` map: `P_h · x · P_wᵀ`.
fn adaptive_avg_pool(g: &mut Graph, name: &str, x: &str, [h, w]: [usize; 2], s: usize) -> String {
    let pw = pool::transpose(&pool::averaging_matrix(w, s), s, w);
    let pw = g.constant_f32(&format!("{name}.cols"), &[w, s], &pw);
    let ph = g.constant_f32(
        &format!("{name}.rows"),
        &[s, h],
        &pool::averaging_matrix(h, s),
    );
    let cols = g.node("MatMul", &format!("{name}.pool_cols"), &[x, &pw], vec![]);
    g.node(
        "MatMul",
        &format!("{name}.pool_rows"),
        &[&ph, &cols],
        vec![],
    )
}

/// Bilinear resize (align_corners false) to `[h, w]`: Resize's `sizes` are the input's
/// `[N, C]` followed by `[h, w]` (opset 17 has no `axes`).
fn resize_to(g: &mut Graph, name: &str, x: &str, [h, w]: [usize; 2]) -> String {
    let nc = g.node(
        "Shape",
        &format!("{name}.batch_channels"),
        &[x],
        vec![int("start", 0), int("end", 2)],
    );
    let hw = g.constant_i64(&format!("{name}.hw"), &[h as i64, w as i64]);
    let sizes = g.node(
        "Concat",
        &format!("{name}.sizes"),
        &[&nc, &hw],
        vec![int("axis", 0)],
    );
    g.node("Resize", name, &[x, "", "", &sizes], bilinear())
}

/// Resize attributes equal to PyTorch's `F.interpolate(mode="bilinear", align_corners=False)`.
fn bilinear() -> Vec<Attr> {
    vec![
        string("mode", "linear"),
        string("coordinate_transformation_mode", "pytorch_half_pixel"),
    ]
}
