//! Surface-distance metrics of one class in one 2-D image: the 95th-percentile Hausdorff
//! distance (HD95) and the average symmetric surface distance (ASSD), with the definitions
//! of medpy 0.4/0.5 (`medpy.metric.binary.hd95` / `assd`, connectivity 1) that nnU-Net-era
//! evaluations used, plus a per-image Dice with the same empty-mask policy.
//!
//! # Definitions
//! - Masks: `A = (pred == class)`, `B = (label == class)`. Label pixels equal to 255 (ignore)
//!   count as "not the class" in **both** masks: a prediction inside an ignored region is
//!   neither a hit nor a false alarm, and the ignored region is background for the surfaces
//!   (so it can create border pixels next to it). `class` must not be 255.
//! - Surface (border) of a mask: `mask XOR erosion(mask)` with the 4-connected cross
//!   structuring element; pixels outside the image are background (scipy's `binary_erosion`
//!   default `border_value=0`), so a mask pixel on the image edge is a border pixel.
//! - Directed surface distances `d(A→B)`: for each border pixel of `A`, the Euclidean distance
//!   to the nearest border pixel of `B`, with the pixel size [`Spacing`] (x = columns,
//!   y = rows). They come from an exact Euclidean distance transform (Felzenszwalb &
//!   Huttenlocher's separable transform: along columns, then the 1-D lower envelope of
//!   parabolas along rows), O(w·h), on the bounding box of the two masks.
//! - `hd95` = 95th percentile (numpy's default linear interpolation) of `d(A→B) ∪ d(B→A)`;
//!   `assd` = `(mean d(A→B) + mean d(B→A)) / 2`.
//! - Units: distances are in the unit of the spacing (pixels for [`Spacing::PIXELS`],
//!   [`PIXEL_UNIT`]); this module does not know the unit, the caller stores it with the values.
//!
//! # Empty masks (after Metrics Reloaded, Maier-Hein et al., Nature Methods 2024)
//! medpy raises when a mask is empty; here every image gets a [`Presence`]:
//! - [`Presence::Both`]: the distances above.
//! - [`Presence::Neither`] (class absent from prediction and label, a true negative image):
//!   `hd95` and `assd` are NaN and [`dice`] is NaN: undefined. Such an image is to be counted
//!   (reported by its presence), not averaged.
//! - [`Presence::LabelOnly`] (missed: class in the label, none predicted) and
//!   [`Presence::PredictionOnly`] (false alarm): `hd95` and `assd` are both the worst possible
//!   value, the image diagonal `sqrt((w·sx)² + (h·sy)²)`, and [`dice`] is 0. Metrics Reloaded
//!   recommends penalising with the maximum distance rather than dropping the image, which
//!   would reward a model for missing whole structures.
//!
//! # Panics
//! [`surface_distances`] and [`dice`] panic (caller bugs, not data conditions) when the
//! prediction and label lengths differ, when they are not `w·h`, when `class` is 255, or when
//! a spacing is not finite and positive.

use serde::{Deserialize, Serialize};

/// Label value that marks pixels to ignore.
const IGNORE: u8 = 255;

/// Unit string of distances computed with [`Spacing::PIXELS`].
pub const PIXEL_UNIT: &str = "px";

/// Size of one pixel (e.g. in mm): `x` along columns, `y` along rows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spacing {
    pub x: f64,
    pub y: f64,
}

impl Spacing {
    /// Unit pixels: distances in pixels ([`PIXEL_UNIT`]).
    pub const PIXELS: Spacing = Spacing { x: 1.0, y: 1.0 };
}

/// Which of the two masks hold the class in an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Both prediction and label hold the class: distances are measured.
    Both,
    /// Neither does: distances (and Dice) undefined, NaN.
    Neither,
    /// Missed: the class is in the label, none predicted. Distances = image diagonal.
    LabelOnly,
    /// False alarm: predicted, not in the label. Distances = image diagonal.
    PredictionOnly,
}

/// Surface distances of one class in one image, in the unit of the [`Spacing`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SurfaceScore {
    pub presence: Presence,
    pub hd95: f64,
    pub assd: f64,
}

/// HD95 and ASSD of `class` between `pred` and `label`, row-major `w`×`h` images (see the
/// module doc for the definitions, the ignore label and the empty-mask policy).
///
/// # Panics
/// When a length is not `w·h`, `class` is 255, or a spacing is not finite and positive.
pub fn surface_distances(
    pred: &[u8],
    label: &[u8],
    w: usize,
    h: usize,
    class: u8,
    spacing: Spacing,
) -> SurfaceScore {
    check_inputs(pred, label, Some((w, h)), class);
    assert!(
        spacing.x.is_finite() && spacing.x > 0.0 && spacing.y.is_finite() && spacing.y > 0.0,
        "pixel spacing must be finite and positive, got {spacing:?}"
    );
    let (a, b) = masks(pred, label, class);
    let presence = presence_of(a.contains(&true), b.contains(&true));
    let (hd95, assd) = match presence {
        Presence::Neither => (f64::NAN, f64::NAN),
        Presence::LabelOnly | Presence::PredictionOnly => {
            let diag = (w as f64 * spacing.x).hypot(h as f64 * spacing.y);
            (diag, diag)
        }
        Presence::Both => both_present(&a, &b, w, h, spacing),
    };
    SurfaceScore {
        presence,
        hd95,
        assd,
    }
}

/// (hd95, assd) of two non-empty masks.
fn both_present(a: &[bool], b: &[bool], w: usize, h: usize, spacing: Spacing) -> (f64, f64) {
    let (a, b, w, h) = crop_to_union(a, b, w, h);
    let (ba, bb) = (border(&a, w, h), border(&b, w, h));
    let d_ab = directed(&ba, &bb, w, h, spacing);
    let d_ba = directed(&bb, &ba, w, h, spacing);
    let assd = (mean(&d_ab) + mean(&d_ba)) / 2.0;
    let mut all = d_ab;
    all.extend(d_ba);
    all.sort_unstable_by(f64::total_cmp);
    (percentile_linear(&all, 95.0 / 100.0), assd)
}

/// Both masks cut to the smallest rectangle holding them (a speed-up for small structures).
/// Exact: every border pixel lies inside it, and a pixel just outside it is background
/// whether it is in the image or not, so the borders and their distances do not change.
fn crop_to_union(
    a: &[bool],
    b: &[bool],
    w: usize,
    h: usize,
) -> (Vec<bool>, Vec<bool>, usize, usize) {
    let (mut x0, mut x1, mut y0, mut y1) = (w, 0, h, 0);
    for y in 0..h {
        let row = |x: usize| a[y * w + x] || b[y * w + x];
        if let Some(first) = (0..w).find(|&x| row(x)) {
            let last = (first..w).rev().find(|&x| row(x)).unwrap_or(first);
            (x0, x1) = (x0.min(first), x1.max(last + 1));
            (y0, y1) = (y0.min(y), y + 1);
        }
    }
    let crop = |m: &[bool]| -> Vec<bool> {
        (y0..y1)
            .flat_map(|y| m[y * w + x0..y * w + x1].iter().copied())
            .collect()
    };
    (crop(a), crop(b), x1 - x0, y1 - y0)
}

/// Dice `2|A∩B| / (|A|+|B|)` of `class` in one image, as a fraction in [0, 1] (not percent),
/// over the pixels whose label is not 255. NaN when neither mask holds the class, 0 when
/// exactly one does.
///
/// # Panics
/// When the lengths differ or `class` is 255.
pub fn dice(pred: &[u8], label: &[u8], class: u8) -> f64 {
    check_inputs(pred, label, None, class);
    let (mut inter, mut p, mut g) = (0u64, 0u64, 0u64);
    for (&pv, &lv) in pred.iter().zip(label) {
        if lv == IGNORE {
            continue;
        }
        let (in_p, in_g) = (pv == class, lv == class);
        p += u64::from(in_p);
        g += u64::from(in_g);
        inter += u64::from(in_p && in_g);
    }
    if p + g == 0 {
        return f64::NAN;
    }
    2.0 * inter as f64 / (p + g) as f64
}

fn check_inputs(pred: &[u8], label: &[u8], size: Option<(usize, usize)>, class: u8) {
    assert_eq!(
        pred.len(),
        label.len(),
        "prediction ({}) and label ({}) sizes differ",
        pred.len(),
        label.len()
    );
    if let Some((w, h)) = size {
        assert_eq!(
            pred.len(),
            w * h,
            "image of {} pixels is not {w}x{h}",
            pred.len()
        );
    }
    assert_ne!(class, IGNORE, "class 255 is the ignore label, not a class");
}

fn presence_of(in_pred: bool, in_label: bool) -> Presence {
    match (in_pred, in_label) {
        (true, true) => Presence::Both,
        (false, false) => Presence::Neither,
        (false, true) => Presence::LabelOnly,
        (true, false) => Presence::PredictionOnly,
    }
}

/// The two masks; ignored label pixels are outside both.
fn masks(pred: &[u8], label: &[u8], class: u8) -> (Vec<bool>, Vec<bool>) {
    pred.iter()
        .zip(label)
        .map(|(&pv, &lv)| (lv != IGNORE && pv == class, lv == class))
        .unzip()
}

/// `mask XOR erosion(mask)` (4-connected cross, outside = background): mask pixels with a
/// 4-neighbour outside the mask or the image.
fn border(mask: &[bool], w: usize, h: usize) -> Vec<bool> {
    let at = |x: usize, y: usize| mask[y * w + x];
    let mut out = vec![false; mask.len()];
    for y in 0..h {
        for x in 0..w {
            if !at(x, y) {
                continue;
            }
            let interior = x > 0
                && x + 1 < w
                && y > 0
                && y + 1 < h
                && at(x - 1, y)
                && at(x + 1, y)
                && at(x, y - 1)
                && at(x, y + 1);
            out[y * w + x] = !interior;
        }
    }
    out
}

/// Distances from each `from` pixel to the nearest `to` pixel (`to` is not empty).
fn directed(from: &[bool], to: &[bool], w: usize, h: usize, spacing: Spacing) -> Vec<f64> {
    let dt = edt_squared(to, w, h, spacing);
    from.iter()
        .zip(&dt)
        .filter(|(&f, _)| f)
        .map(|(_, d)| d.sqrt())
        .collect()
}

/// Squared Euclidean distance of every pixel to the nearest `feature` pixel (infinite when
/// there is none), Felzenszwalb & Huttenlocher's separable transform: first along columns
/// (spacing y), then along rows (spacing x). The column pass on a 0/∞ input is the distance
/// to the nearest feature in the column, found here with two row-major scans (the envelope
/// would give the same values, with strided memory access).
fn edt_squared(feature: &[bool], w: usize, h: usize, spacing: Spacing) -> Vec<f64> {
    let rows = column_distances(feature, w, h);
    let cols: Vec<f64> = rows
        .iter()
        .map(|&d| match d {
            NONE => f64::INFINITY,
            d => (spacing.y * f64::from(d)).powi(2),
        })
        .collect();
    let mut out = vec![0.0; w * h];
    let (mut v, mut z) = (Vec::new(), Vec::new());
    if w > 0 {
        for (row_in, row_out) in cols.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
            lower_envelope(row_in, spacing.x, row_out, &mut v, &mut z);
        }
    }
    out
}

/// No feature in the column.
const NONE: u32 = u32::MAX;

/// Rows from each pixel to the nearest `feature` pixel of its column ([`NONE`]: none): a
/// downward and an upward scan, each remembering the last feature row per column.
fn column_distances(feature: &[bool], w: usize, h: usize) -> Vec<u32> {
    let mut dist = vec![NONE; w * h];
    let mut last = vec![NONE; w];
    for y in 0..h {
        scan_row(feature, &mut dist, &mut last, w, y);
    }
    last.fill(NONE);
    for y in (0..h).rev() {
        scan_row(feature, &mut dist, &mut last, w, y);
    }
    dist
}

fn scan_row(feature: &[bool], dist: &mut [u32], last: &mut [u32], w: usize, y: usize) {
    let (f_row, d_row) = (&feature[y * w..][..w], &mut dist[y * w..][..w]);
    for ((&f, d), l) in f_row.iter().zip(d_row).zip(last.iter_mut()) {
        if f {
            *l = y as u32;
        }
        if *l != NONE {
            *d = (*d).min((y as u32).abs_diff(*l));
        }
    }
}

/// 1-D squared distance transform `out[p] = min_q f[q] + (s·(p−q))²` (Felzenszwalb &
/// Huttenlocher 2012): the lower envelope of the parabolas rooted at the finite sites.
/// `v` (parabola sites) and `z` (where each starts to be lowest) are reused scratch.
fn lower_envelope(f: &[f64], s: f64, out: &mut [f64], v: &mut Vec<usize>, z: &mut Vec<f64>) {
    v.clear();
    z.clear();
    let s2 = s * s;
    for (q, &fq) in f.iter().enumerate() {
        if fq.is_infinite() {
            continue; // no parabola: infinite sites never win
        }
        let mut start = f64::NEG_INFINITY;
        while let (Some(&p), Some(&zp)) = (v.last(), z.last()) {
            let (qf, pf) = (q as f64, p as f64);
            start = ((fq + s2 * qf * qf) - (f[p] + s2 * pf * pf)) / (2.0 * s2 * (qf - pf));
            if start > zp {
                break;
            }
            v.pop(); // hidden below the new parabola
            z.pop();
            start = f64::NEG_INFINITY;
        }
        v.push(q);
        z.push(start);
    }
    if v.is_empty() {
        out.fill(f64::INFINITY);
        return;
    }
    let mut k = 0;
    for (p, o) in out.iter_mut().enumerate() {
        while k + 1 < v.len() && z[k + 1] < p as f64 {
            k += 1;
        }
        let d = s * (p as f64 - v[k] as f64);
        *o = f[v[k]] + d * d;
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// `numpy.percentile(v, 100·q)` with the default 'linear' method, `sorted` ascending and not
/// empty; numpy's `_lerp`, which interpolates from the upper end when the weight is ≥ 0.5.
fn percentile_linear(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let index = (n - 1) as f64 * q;
    let lo = index.floor();
    let gamma = index - lo;
    let lo = lo as usize;
    let (a, b) = (sorted[lo], sorted[(lo + 1).min(n - 1)]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const EPS: f64 = 1e-12;

    fn close(got: f64, want: f64) {
        assert!((got - want).abs() < EPS, "got {got}, want {want}");
    }

    /// A `w`×`h` image of zeros with `v` at `pixels` (x, y).
    fn image(w: usize, h: usize, pixels: &[(usize, usize)], v: u8) -> Vec<u8> {
        let mut img = vec![0; w * h];
        paint(&mut img, w, pixels, v);
        img
    }

    fn paint(img: &mut [u8], w: usize, pixels: &[(usize, usize)], v: u8) {
        for &(x, y) in pixels {
            img[y * w + x] = v;
        }
    }

    /// Pixels of the rectangle `x0..x1` × `y0..y1`.
    fn rect(x0: usize, x1: usize, y0: usize, y1: usize) -> Vec<(usize, usize)> {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .collect()
    }

    fn score(pred: &[u8], label: &[u8], w: usize, h: usize, sp: Spacing) -> SurfaceScore {
        surface_distances(pred, label, w, h, 1, sp)
    }

    #[test]
    fn identical_masks_are_zero() {
        // Every border pixel of A is a border pixel of B and back: all distances 0.
        let img = image(6, 5, &rect(1, 4, 1, 3), 1);
        let s = score(&img, &img, 6, 5, Spacing::PIXELS);
        assert_eq!(s.presence, Presence::Both);
        assert_eq!((s.hd95, s.assd), (0.0, 0.0));
        assert_eq!(dice(&img, &img, 1), 1.0);
    }

    #[test]
    fn single_pixels_three_apart() {
        // Each 1-pixel mask is its own border; d(A→B) = d(B→A) = [3]:
        // percentile of [3, 3] = 3, assd = (3 + 3) / 2 = 3.
        let pred = image(7, 5, &[(1, 2)], 1);
        let label = image(7, 5, &[(4, 2)], 1);
        let s = score(&pred, &label, 7, 5, Spacing::PIXELS);
        assert_eq!((s.presence, s.hd95, s.assd), (Presence::Both, 3.0, 3.0));
    }

    #[test]
    fn square_shifted_by_one_pixel() {
        // A = x 1..=3, y 1..=3; B = x 2..=4, same rows. Border = the square minus its centre:
        // A's centre (2,2), B's centre (3,2).
        // d(A→B): (1,1)→(2,1) 1, (2,1) 0, (3,1) 0, (1,2)→(2,2) 1, (3,2)→(2,2) 1 (its own
        // position is B's centre, not border), (1,3)→(2,3) 1, (2,3) 0, (3,3) 0: mean 4/8.
        // d(B→A) is the mirror image: mean 4/8. assd = 0.5.
        // 16 values, 8 zeros and 8 ones: index 15·0.95 = 14.25 lies between two ones: hd95 1.
        let pred = image(7, 7, &rect(1, 4, 1, 4), 1);
        let label = image(7, 7, &rect(2, 5, 1, 4), 1);
        let s = score(&pred, &label, 7, 7, Spacing::PIXELS);
        close(s.hd95, 1.0);
        close(s.assd, 0.5);
    }

    #[test]
    fn anisotropic_spacing() {
        // Single pixels 3 rows apart with y spacing 2: 3·2 = 6 (x spacing 0.5 plays no part).
        let sp = Spacing { x: 0.5, y: 2.0 };
        let pred = image(5, 7, &[(2, 1)], 1);
        let label = image(5, 7, &[(2, 4)], 1);
        let s = score(&pred, &label, 5, 7, sp);
        close(s.hd95, 6.0);
        close(s.assd, 6.0);
        // The same 3-pixel shift along x: 3·0.5 = 1.5.
        let label = image(5, 7, &[(4, 1)], 1);
        let pred = image(5, 7, &[(1, 1)], 1);
        close(score(&pred, &label, 5, 7, sp).hd95, 1.5);
    }

    #[test]
    fn anisotropic_square_shift_takes_the_nearer_axis() {
        // A = x 1..=3, y 1..=3; B = x 1..=3, y 2..=4; spacing x 1, y 2. Centres (2,2), (2,3).
        // d(A→B): top row (1,1),(2,1),(3,1) → one row down: 2 each; (1,2),(3,2),(1,3),(3,3)
        // are B border: 0; (2,3) is B's centre: (1,3)/(3,3) at 1 beat (2,2)/(2,4) at 2: 1.
        // Sum 7, mean 0.875; d(B→A) mirrors it: assd 0.875.
        // 16 values: 8 zeros, 2 ones, 6 twos; index 14.25 between two twos: hd95 2.
        let sp = Spacing { x: 1.0, y: 2.0 };
        let pred = image(6, 7, &rect(1, 4, 1, 4), 1);
        let label = image(6, 7, &rect(1, 4, 2, 5), 1);
        let s = score(&pred, &label, 6, 7, sp);
        close(s.hd95, 2.0);
        close(s.assd, 0.875);
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        // 23×1 image: A = (0,0); B = x 2..=22 (all border in a 1-row image).
        // d(A→B) = [2]; d(B→A) = [2, 3, …, 22] (21 values). Sorted, 22 values:
        // [2, 2, 3, …, 22], so sorted[i] = i + 1 for i ≥ 1.
        // numpy linear: index 21·0.95 = 19.95 → 20 + 0.95·(21 − 20) = 20.95 (max is 22).
        // assd = (2 + mean(2..=22) = 12) / 2 = 7.
        let pred = image(23, 1, &[(0, 0)], 1);
        let label = image(23, 1, &rect(2, 23, 0, 1), 1);
        let s = score(&pred, &label, 23, 1, Spacing::PIXELS);
        close(s.hd95, 20.95);
        close(s.assd, 7.0);
        // np.percentile([1, 2, 3, 4], 95): index 3·0.95 = 2.85 → 3 + 0.85 = 3.85.
        close(percentile_linear(&[1.0, 2.0, 3.0, 4.0], 0.95), 3.85);
        // np.percentile([5], 95) = 5.
        close(percentile_linear(&[5.0], 0.95), 5.0);
    }

    #[test]
    fn presence_cases_and_diagonal() {
        // 6×2 image, spacing (0.5, 2): diagonal sqrt((6·0.5)² + (2·2)²) = sqrt(9 + 16) = 5.
        let sp = Spacing { x: 0.5, y: 2.0 };
        let (empty, some) = (image(6, 2, &[], 0), image(6, 2, &[(3, 1)], 1));
        let neither = score(&empty, &empty, 6, 2, sp);
        assert_eq!(neither.presence, Presence::Neither);
        assert!(neither.hd95.is_nan() && neither.assd.is_nan());
        assert!(dice(&empty, &empty, 1).is_nan());
        let missed = score(&empty, &some, 6, 2, sp);
        assert_eq!(
            (missed.presence, missed.hd95, missed.assd),
            (Presence::LabelOnly, 5.0, 5.0)
        );
        assert_eq!(dice(&empty, &some, 1), 0.0);
        let alarm = score(&some, &empty, 6, 2, sp);
        let want = (Presence::PredictionOnly, 5.0, 5.0);
        assert_eq!((alarm.presence, alarm.hd95, alarm.assd), want);
        assert_eq!(dice(&some, &empty, 1), 0.0);
        assert_eq!(score(&some, &some, 6, 2, sp).presence, Presence::Both);
    }

    #[test]
    fn presence_serialises_snake_case() {
        let s = serde_json::to_string(&Presence::PredictionOnly).unwrap();
        assert_eq!(s, "\"prediction_only\"");
        let p: Presence = serde_json::from_str("\"label_only\"").unwrap();
        assert_eq!(p, Presence::LabelOnly);
    }

    #[test]
    fn ignore_label_is_outside_both_masks() {
        // pred holds (1,1) and (5,1); label holds (1,1) and ignores (5,1): A = B = {(1,1)},
        // distances 0. Without the ignore rule (5,1) would be 4 px from B.
        let pred = image(7, 3, &[(1, 1), (5, 1)], 1);
        let mut label = image(7, 3, &[(1, 1)], 1);
        paint(&mut label, 7, &[(5, 1)], IGNORE);
        let s = score(&pred, &label, 7, 3, Spacing::PIXELS);
        assert_eq!((s.presence, s.hd95, s.assd), (Presence::Both, 0.0, 0.0));
        // A prediction only inside the ignored region is no prediction: LabelOnly.
        let pred = image(7, 3, &[(5, 1)], 1);
        assert_eq!(
            score(&pred, &label, 7, 3, Spacing::PIXELS).presence,
            Presence::LabelOnly
        );
        // Dice: pred 3×3 square, label the same square with its centre ignored: A = B = the
        // 8-pixel ring, Dice 1 (16/17 if the centre counted for pred).
        let pred = image(5, 5, &rect(1, 4, 1, 4), 1);
        let mut label = pred.clone();
        paint(&mut label, 5, &[(2, 2)], IGNORE);
        assert_eq!(dice(&pred, &label, 1), 1.0);
        // Dice 2·1 / (2 + 3) = 0.4 with one shared pixel.
        let pred = image(5, 1, &[(0, 0), (1, 0)], 1);
        let label = image(5, 1, &[(1, 0), (2, 0), (3, 0)], 1);
        close(dice(&pred, &label, 1), 0.4);
    }

    #[test]
    fn image_edge_pixels_are_border() {
        // A full 4×3 mask: every pixel touching the image edge is border; only (1,1), (2,1)
        // are interior.
        let full = vec![true; 12];
        let b = border(&full, 4, 3);
        let interior: Vec<usize> = (0..12).filter(|&i| !b[i]).collect();
        assert_eq!(interior, vec![5, 6]);
        // pred = the whole 3×3 image, label = its centre. A's border = the 8 edge pixels:
        // 4 at distance 1 from the centre, 4 corners at √2; d(B→A) = [1].
        // 9 values sorted [1 ×5, √2 ×4]: index 8·0.95 = 7.6 between two √2: hd95 √2.
        // assd = ((4 + 4√2)/8 + 1) / 2 = (3 + √2) / 4.
        let pred = vec![1; 9];
        let label = image(3, 3, &[(1, 1)], 1);
        let s = score(&pred, &label, 3, 3, Spacing::PIXELS);
        close(s.hd95, 2f64.sqrt());
        close(s.assd, (3.0 + 2f64.sqrt()) / 4.0);
    }

    /// Border from the erosion definition, as (x, y) pixels.
    fn brute_border(m: &[bool], w: usize, h: usize) -> Vec<(usize, usize)> {
        let inside = |x: isize, y: isize| {
            x >= 0
                && y >= 0
                && (x as usize) < w
                && (y as usize) < h
                && m[y as usize * w + x as usize]
        };
        let cross = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)];
        let eroded = |x: isize, y: isize| cross.iter().all(|(dx, dy)| inside(x + dx, y + dy));
        let all = (0..h).flat_map(|y| (0..w).map(move |x| (x, y)));
        all.filter(|&(x, y)| m[y * w + x] && !eroded(x as isize, y as isize))
            .collect()
    }

    fn brute_directed(from: &[(usize, usize)], to: &[(usize, usize)], sp: Spacing) -> Vec<f64> {
        let dist = |(ax, ay): (usize, usize), (bx, by): (usize, usize)| {
            let dx = (ax as f64 - bx as f64) * sp.x;
            let dy = (ay as f64 - by as f64) * sp.y;
            (dx * dx + dy * dy).sqrt()
        };
        let nearest =
            |&a: &(usize, usize)| to.iter().map(|&b| dist(a, b)).fold(f64::INFINITY, f64::min);
        from.iter().map(nearest).collect()
    }

    /// (hd95, assd) by nearest-border search over all border pairs.
    fn brute(pred: &[u8], label: &[u8], w: usize, h: usize, sp: Spacing) -> (f64, f64) {
        let a: Vec<bool> = pred
            .iter()
            .zip(label)
            .map(|(&p, &l)| p == 1 && l != 255)
            .collect();
        let b: Vec<bool> = label.iter().map(|&l| l == 1).collect();
        let (ba, bb) = (brute_border(&a, w, h), brute_border(&b, w, h));
        let (d_ab, d_ba) = (brute_directed(&ba, &bb, sp), brute_directed(&bb, &ba, sp));
        let assd = (mean(&d_ab) + mean(&d_ba)) / 2.0;
        let mut all = [d_ab, d_ba].concat();
        all.sort_unstable_by(f64::total_cmp);
        (percentile_linear(&all, 0.95), assd)
    }

    fn random_image(rng: &mut StdRng, n: usize, values: &[u8], p_one: f64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                if rng.random_bool(p_one) {
                    1
                } else {
                    values[rng.random_range(0..values.len())]
                }
            })
            .collect()
    }

    #[test]
    fn edt_matches_brute_force_on_random_masks() {
        let mut rng = StdRng::seed_from_u64(20240601);
        let spacings = [
            Spacing::PIXELS,
            Spacing { x: 0.7, y: 1.3 },
            Spacing { x: 2.5, y: 0.4 },
        ];
        let mut checked = 0;
        while checked < 20 {
            let (w, h) = (rng.random_range(1..=12), rng.random_range(1..=12));
            let sp = spacings[rng.random_range(0..spacings.len())];
            let pred = random_image(&mut rng, w * h, &[0, 2], 0.3);
            let label = random_image(&mut rng, w * h, &[0, 0, 255], 0.3);
            let s = score(&pred, &label, w, h, sp);
            if s.presence != Presence::Both {
                continue;
            }
            let (hd95, assd) = brute(&pred, &label, w, h, sp);
            close(s.hd95, hd95);
            close(s.assd, assd);
            // The full transform too, against every pixel's nearest border pixel.
            let b: Vec<bool> = label.iter().map(|&l| l == 1).collect();
            let bb = brute_border(&b, w, h);
            let every: Vec<(usize, usize)> = rect(0, w, 0, h);
            let want = brute_directed(&every, &bb, sp);
            let got = edt_squared(&border(&b, w, h), w, h, sp);
            for (g, wv) in got.iter().zip(&want) {
                assert!(
                    (g.sqrt() - wv).abs() < 1e-9,
                    "{w}x{h} {sp:?}: {} vs {wv}",
                    g.sqrt()
                );
            }
            checked += 1;
        }
    }

    fn disc(w: usize, h: usize, cx: f64, cy: f64, r: f64) -> Vec<u8> {
        let inside = |i: usize| {
            let (x, y) = ((i % w) as f64, (i / w) as f64);
            (x - cx).hypot(y - cy) <= r
        };
        (0..w * h).map(|i| u8::from(inside(i))).collect()
    }

    #[test]
    fn full_size_image_matches_brute_force() {
        // 768×496 with anisotropic spacing: exercises the O(n) transform at the target size.
        let (w, h) = (768, 496);
        let sp = Spacing { x: 0.8, y: 1.2 };
        let pred = disc(w, h, 300.0, 250.0, 120.0);
        let label = disc(w, h, 309.5, 244.0, 104.0);
        let s = score(&pred, &label, w, h, sp);
        let (hd95, assd) = brute(&pred, &label, w, h, sp);
        assert!((s.hd95 - hd95).abs() < 1e-9 && (s.assd - assd).abs() < 1e-9);
        assert!(s.hd95 > 0.0 && s.assd > 0.0);
    }

    #[test]
    #[should_panic(expected = "is not 4x4")]
    fn wrong_size_panics() {
        surface_distances(&[0; 15], &[0; 15], 4, 4, 1, Spacing::PIXELS);
    }

    #[test]
    #[should_panic(expected = "sizes differ")]
    fn different_lengths_panic() {
        dice(&[0; 3], &[0; 4], 1);
    }
}
