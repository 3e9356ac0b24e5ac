//! MMSegmentation's train transforms, on uint8 HWC images held in memory.
//!
//! Order as MMSeg's pipeline: (Random)Resize keep-ratio -> RandomCrop(cat_max_ratio) ->
//! RandomFlip -> PhotoMetricDistortion -> Normalize -> Pad to the crop (image 0 after
//! normalisation, label 255: MMSeg's data preprocessor pads the normalised batch).
//! Images are resized bilinearly with OpenCV's fixed-point arithmetic (mmcv uses cv2),
//! labels with OpenCV's nearest rule.
//!
//! Randomness: every draw of iteration `i` comes from a ChaCha8 stream keyed by
//! `(seed, i, sample index in the batch)`, and the images of iteration `i` from the
//! epoch-wise permutation keyed by `(seed, epoch)`: a batch is a pure function of
//! `(seed, i)`, so a resumed job needs no replay. (MMSeg's numpy / torch streams are not
//! reproduced: same distributions, different draws.)

use super::{Batch, Dataset, Sample, IGNORE, MEAN, STD};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sweep_core::job::JobConfig;

const DOMAIN_EPOCH: u64 = 1;
const DOMAIN_SAMPLE: u64 = 2;

/// A ChaCha8 stream keyed by `(seed, a, b, domain)`.
pub fn keyed_rng(seed: u64, a: u64, b: u64, domain: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (i, v) in [seed, a, b, domain].into_iter().enumerate() {
        key[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// Epoch `epoch`'s order of the `n` training images (a pure function of `(seed, epoch)`).
pub fn epoch_permutation(seed: u64, epoch: u64, n: usize) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut keyed_rng(seed, epoch, 0, DOMAIN_EPOCH));
    perm
}

/// Training-image indices of iteration `iter`: positions `iter * batch ..` of the endless
/// stream of shuffled epochs (batches run across epoch boundaries, as MMSeg's InfiniteSampler).
pub fn batch_indices(seed: u64, iter: usize, batch: usize, n: usize) -> Vec<usize> {
    assert!(n > 0, "no training images");
    let mut out = Vec::with_capacity(batch);
    let mut cached: Option<(usize, Vec<usize>)> = None;
    for k in 0..batch {
        let pos = iter * batch + k;
        let (epoch, idx) = (pos / n, pos % n);
        if cached.as_ref().is_none_or(|(e, _)| *e != epoch) {
            cached = Some((epoch, epoch_permutation(seed, epoch as u64, n)));
        }
        out.push(cached.as_ref().expect("set above").1[idx]);
    }
    out
}

/// mmcv's `rescale_size`: the (w, h) that fits `scale` keeping the aspect ratio
/// (long edge <= max(scale), short edge <= min(scale)), rounded half up.
pub fn scale_keep_ratio(w: usize, h: usize, scale: [usize; 2]) -> (usize, usize) {
    let long = scale[0].max(scale[1]) as f64;
    let short = scale[0].min(scale[1]) as f64;
    let f = (long / w.max(h) as f64).min(short / w.min(h) as f64);
    let r = |v: usize| ((v as f64 * f + 0.5) as usize).max(1);
    (r(w), r(h))
}

/// OpenCV INTER_LINEAR taps of one axis: source indices `(s0, s1)` and fixed-point weights
/// (scale 2048). OpenCV zeroes the weight at the horizontal borders (`clamp_weight`) but only
/// clamps the source rows vertically, which rounds differently in the last output rows.
fn linear_taps(
    src: usize,
    dst: usize,
    range: std::ops::Range<usize>,
    clamp_weight: bool,
) -> Vec<(usize, usize, i32, i32)> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as i64 - 1;
    range
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut f = f - s as f32;
            if clamp_weight {
                if s < 0 {
                    s = 0;
                    f = 0.0;
                }
                if s >= last {
                    s = last;
                    f = 0.0;
                }
            }
            let a0 = ((1.0 - f) * 2048.0).round_ties_even() as i32;
            let a1 = (f * 2048.0).round_ties_even() as i32;
            let idx = |i: i64| i.clamp(0, last) as usize;
            (idx(s), idx(s + 1), a0, a1)
        })
        .collect()
}

/// The region `[x0, x0 + cw) x [y0, y0 + ch)` of `src` (HWC u8, `c` channels, `w` x `h`)
/// bilinearly resized to `new_w` x `new_h`, as cv2.resize(INTER_LINEAR) computes it
/// (fixed point; an exact 2x downscale is a 2x2 average, as OpenCV switches to INTER_AREA).
#[allow(clippy::too_many_arguments)]
pub fn resize_bilinear_region(
    src: &[u8],
    w: usize,
    h: usize,
    c: usize,
    new_w: usize,
    new_h: usize,
    (x0, y0, cw, ch): (usize, usize, usize, usize),
) -> Vec<u8> {
    let mut out = vec![0u8; cw * ch * c];
    if new_w == w && new_h == h {
        for y in 0..ch {
            let s = ((y0 + y) * w + x0) * c;
            out[y * cw * c..(y + 1) * cw * c].copy_from_slice(&src[s..s + cw * c]);
        }
        return out;
    }
    if w == 2 * new_w && h == 2 * new_h {
        for y in 0..ch {
            let sy = 2 * (y0 + y);
            for x in 0..cw {
                let sx = 2 * (x0 + x);
                for k in 0..c {
                    let p = |yy: usize, xx: usize| u32::from(src[(yy * w + xx) * c + k]);
                    let sum = p(sy, sx) + p(sy, sx + 1) + p(sy + 1, sx) + p(sy + 1, sx + 1);
                    out[(y * cw + x) * c + k] = ((sum + 2) >> 2) as u8;
                }
            }
        }
        return out;
    }
    let xt = linear_taps(w, new_w, x0..x0 + cw, true);
    let yt = linear_taps(h, new_h, y0..y0 + ch, false);
    let mut row0 = vec![0i32; cw * c];
    let mut row1 = vec![0i32; cw * c];
    let hpass = |sy: usize, row: &mut [i32]| {
        let line = &src[sy * w * c..(sy + 1) * w * c];
        for (x, &(sx0, sx1, a0, a1)) in xt.iter().enumerate() {
            for k in 0..c {
                row[x * c + k] =
                    i32::from(line[sx0 * c + k]) * a0 + i32::from(line[sx1 * c + k]) * a1;
            }
        }
    };
    for (y, &(sy0, sy1, b0, b1)) in yt.iter().enumerate() {
        hpass(sy0, &mut row0);
        hpass(sy1, &mut row1);
        let dst = &mut out[y * cw * c..(y + 1) * cw * c];
        for i in 0..cw * c {
            // OpenCV's SIMD vertical pass (VResizeLinearVec_32s8u): 16-bit high products.
            let v = (((row0[i] >> 4) * b0) >> 16) + (((row1[i] >> 4) * b1) >> 16);
            dst[i] = ((v + 2) >> 2).clamp(0, 255) as u8;
        }
    }
    out
}

/// The whole of `src` bilinearly resized (cv2 INTER_LINEAR semantics).
pub fn resize_bilinear(
    src: &[u8],
    w: usize,
    h: usize,
    c: usize,
    new_w: usize,
    new_h: usize,
) -> Vec<u8> {
    resize_bilinear_region(src, w, h, c, new_w, new_h, (0, 0, new_w, new_h))
}

/// Label map resized with OpenCV's INTER_NEAREST rule: `sx = min(floor(dx * w / new_w), w - 1)`.
pub fn resize_nearest(src: &[u8], w: usize, h: usize, new_w: usize, new_h: usize) -> Vec<u8> {
    resize_nearest_region(src, w, h, new_w, new_h, (0, 0, new_w, new_h))
}

/// The region `(x0, y0, cw, ch)` of [`resize_nearest`]'s output, computed alone.
pub fn resize_nearest_region(
    src: &[u8],
    w: usize,
    h: usize,
    new_w: usize,
    new_h: usize,
    (x0, y0, cw, ch): (usize, usize, usize, usize),
) -> Vec<u8> {
    let fx = 1.0 / (new_w as f64 / w as f64);
    let fy = 1.0 / (new_h as f64 / h as f64);
    let xs: Vec<usize> = (x0..x0 + cw)
        .map(|x| ((x as f64 * fx).floor() as usize).min(w - 1))
        .collect();
    let mut out = Vec::with_capacity(cw * ch);
    for y in y0..y0 + ch {
        let sy = ((y as f64 * fy).floor() as usize).min(h - 1);
        let line = &src[sy * w..(sy + 1) * w];
        out.extend(xs.iter().map(|&sx| line[sx]));
    }
    out
}

/// A crop window: offset and size (size is clamped to the image, as numpy slicing does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

/// One uniform crop draw (MMSeg `crop_bbox`: offset in `0..=margin`, y first).
pub fn draw_crop(rng: &mut impl Rng, w: usize, h: usize, crop: usize) -> CropBox {
    let y = rng.random_range(0..=h.saturating_sub(crop));
    let x = rng.random_range(0..=w.saturating_sub(crop));
    CropBox {
        x,
        y,
        w: crop.min(w - x),
        h: crop.min(h - y),
    }
}

/// MMSeg's cat_max_ratio test: at least two (non-ignore) classes, none covering
/// `>= ratio` of the counted pixels.
pub fn crop_is_balanced(label: &[u8], w: usize, b: CropBox, ratio: f32) -> bool {
    let mut counts = [0u64; 256];
    for y in b.y..b.y + b.h {
        for &v in &label[y * w + b.x..y * w + b.x + b.w] {
            counts[usize::from(v)] += 1;
        }
    }
    counts[usize::from(IGNORE)] = 0;
    let present = counts.iter().filter(|&&n| n > 0).count();
    let total: u64 = counts.iter().sum();
    let max = counts.iter().copied().max().unwrap_or(0);
    present > 1 && (max as f64 / total as f64) < f64::from(ratio)
}

/// MMSeg's RandomCrop box: draw; while `cat_max_ratio < 1` re-draw up to 10 times until
/// the crop is balanced (after 10 failures the last draw is kept).
pub fn random_crop_box(
    rng: &mut impl Rng,
    label: &[u8],
    w: usize,
    h: usize,
    crop: usize,
    cat_max_ratio: f32,
) -> CropBox {
    random_crop_box_with(rng, w, h, crop, cat_max_ratio, |b| {
        crop_is_balanced(label, w, b, cat_max_ratio)
    })
}

/// [`random_crop_box`] with the balance test given as a function of the box.
pub fn random_crop_box_with(
    rng: &mut impl Rng,
    w: usize,
    h: usize,
    crop: usize,
    cat_max_ratio: f32,
    balanced: impl Fn(CropBox) -> bool,
) -> CropBox {
    let mut b = draw_crop(rng, w, h, crop);
    if cat_max_ratio < 1.0 {
        for _ in 0..10 {
            if balanced(b) {
                break;
            }
            b = draw_crop(rng, w, h, crop);
        }
    }
    b
}

/// Mirror each row of an HWC image (`c` channels) in place.
pub fn flip_horizontal(data: &mut [u8], w: usize, c: usize) {
    for row in data.chunks_mut(w * c) {
        for x in 0..w / 2 {
            for k in 0..c {
                row.swap(x * c + k, (w - 1 - x) * c + k);
            }
        }
    }
}

/// MMSeg's `convert`: float32 `v * alpha + beta`, clipped to [0, 255], truncated to uint8.
fn convert(v: u8, alpha: f32, beta: f32) -> u8 {
    (f32::from(v) * alpha + beta).clamp(0.0, 255.0) as u8
}

/// OpenCV's 8-bit RGB -> HSV (H in 0..180), fixed point with 12-bit tables.
pub fn rgb_to_hsv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let v = r.max(g).max(b);
    let diff = v - r.min(g).min(b);
    let sdiv = if v == 0 {
        0
    } else {
        ((255 << 12) as f64 / v as f64).round() as i32
    };
    let hdiv = if diff == 0 {
        0
    } else {
        ((180 << 12) as f64 / (6.0 * diff as f64)).round() as i32
    };
    let s = (diff * sdiv + (1 << 11)) >> 12;
    let h = if v == r {
        g - b
    } else if v == g {
        b - r + 2 * diff
    } else {
        r - g + 4 * diff
    };
    let mut h = (h * hdiv + (1 << 11)) >> 12;
    if h < 0 {
        h += 180;
    }
    (h.clamp(0, 255) as u8, s.clamp(0, 255) as u8, v as u8)
}

/// OpenCV's 8-bit HSV (H in 0..180) -> RGB as its AVX2 path computes it (float32, truncated;
/// OpenCV rounds only in the scalar tail of an image, its last < 32 pixels). Checked against
/// cv2 4.10 on 250k HSV triples.
pub fn hsv_to_rgb(h: u8, s: u8, v: u8) -> (u8, u8, u8) {
    let h = f32::from(h) * (6.0f32 / 180.0);
    let (s, v) = (
        f32::from(s) * (1.0f32 / 255.0),
        f32::from(v) * (1.0f32 / 255.0),
    );
    let pre = h.trunc();
    let f = h - pre;
    let sector = (pre - (pre * (1.0f32 / 6.0)).trunc() * 6.0) as usize;
    // The compiler fuses `1 - s * f` into one FMA in OpenCV's AVX2 build.
    let tab = [
        v,
        v * (1.0 - s),
        v * (-s).mul_add(f, 1.0),
        v * (-s).mul_add(1.0 - f, 1.0),
    ];
    // OpenCV's sector table gives (b, g, r).
    const SECTOR: [[usize; 3]; 6] = [
        [1, 3, 0],
        [1, 0, 2],
        [3, 0, 1],
        [0, 2, 1],
        [0, 1, 3],
        [2, 1, 0],
    ];
    let [bi, gi, ri] = SECTOR[sector.min(5)];
    let q = |x: f32| (x * 255.0).trunc().clamp(0.0, 255.0) as u8;
    (q(tab[ri]), q(tab[gi]), q(tab[bi]))
}

/// Applies `f` to every pixel's HSV (colour images only; a gray pixel has S = 0 and is a
/// fixed point of both saturation and hue changes).
fn map_hsv(data: &mut [u8], c: usize, f: impl Fn(u8, u8, u8) -> (u8, u8, u8)) {
    if c != 3 {
        return;
    }
    for px in data.chunks_mut(3) {
        let (h, s, v) = rgb_to_hsv(px[0], px[1], px[2]);
        let (h, s, v) = f(h, s, v);
        let (r, g, b) = hsv_to_rgb(h, s, v);
        px.copy_from_slice(&[r, g, b]);
    }
}

/// MMSeg's PhotoMetricDistortion with its defaults (brightness +-32, contrast 0.5-1.5,
/// saturation 0.5-1.5, hue +-18), its order and its coin flips, on the uint8 image.
pub fn photometric_distortion(rng: &mut impl Rng, data: &mut [u8], c: usize) {
    if rng.random_bool(0.5) {
        let beta = rng.random_range(-32.0f32..32.0);
        data.iter_mut().for_each(|v| *v = convert(*v, 1.0, beta));
    }
    fn contrast(rng: &mut impl Rng, data: &mut [u8]) {
        if rng.random_bool(0.5) {
            let alpha = rng.random_range(0.5f32..1.5);
            data.iter_mut().for_each(|v| *v = convert(*v, alpha, 0.0));
        }
    }
    let contrast_first = rng.random_bool(0.5);
    if contrast_first {
        contrast(rng, data);
    }
    if rng.random_bool(0.5) {
        let alpha = rng.random_range(0.5f32..1.5);
        map_hsv(data, c, |h, s, v| (h, convert(s, alpha, 0.0), v));
    }
    if rng.random_bool(0.5) {
        let delta: i32 = rng.random_range(-18..18);
        map_hsv(data, c, |h, s, v| {
            ((i32::from(h) + delta).rem_euclid(180) as u8, s, v)
        });
    }
    if !contrast_first {
        contrast(rng, data);
    }
}

/// HWC uint8 (`c` = 1 or 3 channels) -> CHW float, 3 channels, `(v - mean) / std`.
pub fn normalize_chw(data: &[u8], c: usize, w: usize, h: usize) -> Vec<f32> {
    let n = w * h;
    let mut out = vec![0f32; 3 * n];
    for k in 0..3 {
        let src_k = if c == 1 { 0 } else { k };
        let (m, s) = (MEAN[k], STD[k]);
        for (i, o) in out[k * n..(k + 1) * n].iter_mut().enumerate() {
            *o = (f32::from(data[i * c + src_k]) - m) / s;
        }
    }
    out
}

/// One training example after the pipeline: CHW normalised image and labels, `crop` x `crop`.
pub struct Example {
    pub image: Vec<f32>,
    pub label: Vec<u8>,
    pub crop_box: CropBox,
    pub flipped: bool,
    /// (w, h) of the resized image the crop was taken from.
    pub resized: (usize, usize),
}

/// The train pipeline on one sample, with all draws from `rng`.
pub fn train_example(s: &Sample, cfg: &JobConfig, rng: &mut impl Rng) -> Example {
    let d = &cfg.data;
    let crop = cfg.crop;
    let scale = match d.ratio_range {
        Some([lo, hi]) => {
            let r = if hi > lo {
                rng.random_range(f64::from(lo)..f64::from(hi))
            } else {
                f64::from(lo)
            };
            [
                ((d.scale[0] as f64 * r) as usize).max(1),
                ((d.scale[1] as f64 * r) as usize).max(1),
            ]
        }
        None => d.scale,
    };
    let (rw, rh) = scale_keep_ratio(s.w, s.h, scale);
    // Only the crop candidates of the resized label and the kept crop of the resized image
    // are computed: the same values as resizing everything, at a fraction of the cost.
    let label_crop =
        |b: CropBox| resize_nearest_region(&s.label, s.w, s.h, rw, rh, (b.x, b.y, b.w, b.h));
    // A label with fewer than two classes has no balanced crop: skip the counting (the
    // draws, and so the kept box, are the same).
    let mut first = None;
    let multi_class = s
        .label
        .iter()
        .any(|&v| v != IGNORE && *first.get_or_insert(v) != v);
    let b = random_crop_box_with(rng, rw, rh, crop, d.cat_max_ratio, |b| {
        let whole = CropBox { x: 0, y: 0, ..b };
        multi_class && crop_is_balanced(&label_crop(b), b.w, whole, d.cat_max_ratio)
    });
    let mut img =
        resize_bilinear_region(&s.image, s.w, s.h, s.channels, rw, rh, (b.x, b.y, b.w, b.h));
    let mut lab = label_crop(b);
    let flipped = rng.random::<f32>() < d.flip;
    if flipped {
        flip_horizontal(&mut img, b.w, s.channels);
        flip_horizontal(&mut lab, b.w, 1);
    }
    if d.photometric {
        photometric_distortion(rng, &mut img, s.channels);
    }
    let norm = normalize_chw(&img, s.channels, b.w, b.h);
    // Pad bottom / right to the crop: image 0 (after normalisation), label 255.
    let mut image = vec![0f32; 3 * crop * crop];
    let mut label = vec![IGNORE; crop * crop];
    for y in 0..b.h {
        for k in 0..3 {
            let src = &norm[k * b.w * b.h + y * b.w..k * b.w * b.h + (y + 1) * b.w];
            image[k * crop * crop + y * crop..k * crop * crop + y * crop + b.w]
                .copy_from_slice(src);
        }
        label[y * crop..y * crop + b.w].copy_from_slice(&lab[y * b.w..(y + 1) * b.w]);
    }
    Example {
        image,
        label,
        crop_box: b,
        flipped,
        resized: (rw, rh),
    }
}

/// The batch of iteration `iter`: a pure function of `(cfg.seed, iter)` and the data. Fails
/// only when a file of a split read from disk cannot be read any more.
pub fn train_batch(ds: &Dataset, cfg: &JobConfig, iter: usize) -> Result<Batch, crate::DataError> {
    let crop = cfg.crop;
    let idx = batch_indices(cfg.seed, iter, cfg.batch, ds.train.len());
    let mut images = Vec::with_capacity(idx.len() * 3 * crop * crop);
    let mut labels = Vec::with_capacity(idx.len() * crop * crop);
    for (k, &i) in idx.iter().enumerate() {
        let mut rng = keyed_rng(cfg.seed, iter as u64, k as u64, DOMAIN_SAMPLE);
        let sample = ds.train.get(i)?;
        let ex = train_example(&sample, cfg, &mut rng);
        images.extend_from_slice(&ex.image);
        labels.extend(ex.label.iter().map(|&v| i64::from(v)));
    }
    Ok(Batch {
        images,
        labels,
        n: idx.len(),
        h: crop,
        w: crop,
    })
}
