//! The toy's analytic learning curves. A config has a deterministic final quality; its
//! foreground Dice approaches that quality exponentially; each validation image adds a fixed
//! effect and seeded noise. Every number depends only on (config, seed, iteration), so a run
//! that paused or was killed on the way reports exactly what an uninterrupted one does.

use sweep_core::job::{Head, JobConfig};
use sweep_core::metrics::per_image::{image_summaries, DistanceScale};
use sweep_core::metrics::Metrics;
use sweep_core::protocol::{ImageMetric, MetricValue};

/// Validation images, `img00`..`img23`: enough for per-image bootstraps and paired tests.
pub const IMAGES: usize = 24;
/// Pixels of a validation image (512 x 512, DME's scale): background dominates, as for fluid.
const PIXELS: u64 = 512 * 512;
/// Foreground Dice (percent) of the untrained network: where every curve starts.
const FLOOR: f64 = 5.0;
/// The learning rate the toy likes best, and the Gaussian width of its optimum in ln(lr).
const BEST_LR: f64 = 0.01;
const LR_WIDTH: f64 = 1.5;
/// Hash streams, so that image effects, sizes and noise are independent of each other.
const EFFECT: u64 = 1;
const LABEL: u64 = 2;
const PRED: u64 = 3;
const NOISE_A: u64 = 4;
const NOISE_B: u64 = 5;

/// One config's curves.
pub struct Toy {
    /// Final mean Dice (percent) of each foreground class `c`, at index `c - 1`.
    quality: Vec<f64>,
    /// Time constant of the approach, in iterations.
    tau: f64,
    seed: u64,
    num_classes: usize,
    unit: &'static str,
}

/// What a validation reports: every metric (as a finished job stores them) and the rows.
pub struct Evaluation {
    pub metrics: Vec<MetricValue>,
    pub images: Vec<ImageMetric>,
}

impl Evaluation {
    /// The summary numbers (class None) that an `Event::Eval` carries, as the trainer sends.
    pub fn summary(&self) -> Vec<MetricValue> {
        self.metrics
            .iter()
            .filter(|m| m.class.is_none())
            .cloned()
            .collect()
    }
}

impl Toy {
    pub fn new(cfg: &JobConfig) -> Toy {
        let q = quality(cfg);
        // Later foreground classes are a little harder, never below the starting point.
        let quality = (1..cfg.model.num_classes)
            .map(|c| (q - 4.0 * (c - 1) as f64).max(FLOOR + 5.0))
            .collect();
        Toy {
            quality,
            tau: tau(cfg),
            seed: cfg.seed,
            num_classes: cfg.model.num_classes,
            unit: DistanceScale::new(cfg.data.pixel_spacing).unit,
        }
    }

    /// Mean foreground Dice of `class` at iteration `t`, before image effects and noise:
    /// `FLOOR + (q - FLOOR) (1 - exp(-t / tau))`.
    pub fn value(&self, t: usize, class: usize) -> f64 {
        let q = self.quality[class - 1];
        FLOOR + (q - FLOOR) * (1.0 - (-(t as f64) / self.tau).exp())
    }

    /// Training loss: falls as the first foreground class's curve rises (no noise, so it
    /// decreases strictly).
    pub fn loss(&self, t: usize) -> f64 {
        0.05 + 0.95 * (1.0 - self.value(t, 1) / 100.0)
    }

    /// Validation at iteration `t`: per-image rows, and from their counts the same metrics
    /// the trainer stores (IoUMetric summary and per class, plus `imgDice`).
    pub fn evaluate(&self, t: usize) -> Evaluation {
        let images: Vec<ImageMetric> = (0..IMAGES).flat_map(|i| self.image_rows(t, i)).collect();
        let mut metrics = self.totals(&images).to_values("val");
        metrics.extend(image_summaries("val", &images));
        Evaluation { metrics, images }
    }

    /// Foreground Dice of one image: curve + fixed image effect (+-8) + seeded noise (+-3).
    fn image_dice(&self, t: usize, class: usize, image: usize) -> f64 {
        let (c, i) = (class as u64, image as u64);
        let effect = 8.0 * (2.0 * unit(&[EFFECT, c, i]) - 1.0);
        let key = |stream| unit(&[stream, self.seed, c, i, t as u64]);
        let noise = 3.0 * (key(NOISE_A) + key(NOISE_B) - 1.0);
        (self.value(t, class) + effect + noise).clamp(0.0, 100.0)
    }

    /// One image's rows, background first. Foreground classes occupy disjoint regions and
    /// are only confused with background, so the background counts follow from theirs.
    fn image_rows(&self, t: usize, image: usize) -> Vec<ImageMetric> {
        let fg: Vec<Counts> = (1..self.num_classes)
            .map(|c| self.counts(c, image, self.image_dice(t, c, image)))
            .collect();
        let sum = |f: fn(&Counts) -> u64| fg.iter().map(f).sum::<u64>();
        let background = Counts {
            label: PIXELS - sum(|c| c.label),
            pred: PIXELS - sum(|c| c.pred),
            intersect: PIXELS - sum(|c| c.pred + c.label - c.intersect),
        };
        std::iter::once(background)
            .chain(fg)
            .enumerate()
            .map(|(class, c)| self.row(image, class, c))
            .collect()
    }

    /// Pixel counts whose Dice is `dice`: a fixed label area per image and class, a fixed
    /// over- or under-segmentation (so Precision and Recall differ), I = D (P + G) / 2.
    fn counts(&self, class: usize, image: usize, dice: f64) -> Counts {
        let (c, i) = (class as u64, image as u64);
        let scale = (self.num_classes - 1) as f64;
        let label = ((4000.0 + 8000.0 * unit(&[LABEL, c, i])) / scale).round() as u64;
        let pred = (label as f64 * (0.85 + 0.3 * unit(&[PRED, c, i]))).round() as u64;
        let intersect = (dice / 100.0 * (pred + label) as f64 / 2.0).round() as u64;
        Counts {
            label,
            pred,
            intersect: intersect.min(pred).min(label),
        }
    }

    fn row(&self, image: usize, class: usize, c: Counts) -> ImageMetric {
        let dice = 200.0 * c.intersect as f64 / (c.pred + c.label) as f64;
        ImageMetric {
            split: "val".into(),
            image: format!("img{image:02}"),
            class,
            intersect: c.intersect,
            pred: c.pred,
            label: c.label,
            dice: dice.is_finite().then_some(dice),
            hd95: None,
            assd: None,
            presence: None,
            unit: self.unit.into(),
        }
    }

    /// The IoUMetric accumulation of all rows.
    fn totals(&self, images: &[ImageMetric]) -> Metrics {
        let mut m = Metrics::new(self.num_classes);
        for r in images {
            m.intersect[r.class] += r.intersect;
            m.pred[r.class] += r.pred;
            m.label[r.class] += r.label;
            m.union[r.class] += r.pred + r.label - r.intersect;
        }
        m
    }
}

#[derive(Clone, Copy)]
struct Counts {
    label: u64,
    pred: u64,
    intersect: u64,
}

/// Final foreground Dice of a config: 20 + 52 G(ln(lr / 0.01)) with G a Gaussian of width
/// 1.5, plus the head, crop and class-weight effects (about 15 to 80 over plausible configs,
/// so mDice with a ~98 background lands between 55 and 90).
fn quality(cfg: &JobConfig) -> f64 {
    let x = (cfg.optimizer.lr() / BEST_LR).ln();
    let lr = (-x * x / (2.0 * LR_WIDTH * LR_WIDTH)).exp();
    20.0 + 52.0 * lr + head_bonus(cfg.model.head) + crop_effect(cfg.crop) + weight_effect(cfg)
}

/// Heads rank fcn < deeplabv3 < pspnet, by a few points: enough to find, not to dominate lr.
fn head_bonus(head: Head) -> f64 {
    match head {
        Head::Fcn => 0.0,
        Head::Deeplabv3 => 2.0,
        Head::Pspnet => 3.0,
    }
}

/// Larger crops help mildly: 1.5 points per doubling from 256, within +-3.
fn crop_effect(crop: usize) -> f64 {
    (1.5 * (crop.max(1) as f64 / 256.0).log2()).clamp(-3.0, 3.0)
}

/// Foreground class weights help up to a ratio of about 3 over background and hurt beyond:
/// 3 (g(r) - g(1)) with g(r) = exp(-(ln r - ln 3)^2 / 2), r = mean foreground / background
/// weight of the first loss term that has class weights (0 without any).
fn weight_effect(cfg: &JobConfig) -> f64 {
    let terms = cfg.loss.terms();
    let Some(w) = terms.iter().find_map(|t| t.class_weight.as_ref()) else {
        return 0.0;
    };
    let (bg, fg) = match w.split_first() {
        Some((bg, fg)) if !fg.is_empty() => (f64::from(*bg), fg),
        _ => return 0.0,
    };
    let r = fg.iter().map(|&v| f64::from(v)).sum::<f64>() / fg.len() as f64 / bg;
    if !(r.is_finite() && r > 0.0) {
        return 0.0;
    }
    let g = |r: f64| (-(r.ln() - 3f64.ln()).powi(2) / 2.0).exp();
    3.0 * (g(r) - g(1.0))
}

/// Time constant: 0.15 T sqrt(0.01 / lr), within [0.02 T, 2 T] (T = `iters`). Small lrs learn
/// slower, so early rungs favour large lrs: they rank imperfectly, but positively.
fn tau(cfg: &JobConfig) -> f64 {
    let total = cfg.iters.max(1) as f64;
    (0.15 * total * (BEST_LR / cfg.optimizer.lr()).sqrt()).clamp(0.02 * total, 2.0 * total)
}

/// A uniform number in [0, 1) from `keys` (splitmix64 chained): stable across platforms and
/// Rust versions, unlike `DefaultHasher`.
fn unit(keys: &[u64]) -> f64 {
    let h = keys.iter().fold(0x5eed_u64, |h, &k| mix(h ^ k));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
