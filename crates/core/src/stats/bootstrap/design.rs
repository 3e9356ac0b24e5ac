//! The bootstrap's input, validated once and flattened for the replicate loop, and the
//! statistic evaluated on resampling weights.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Arm, ImageCounts, MetricFn};
use crate::metrics::Metrics;

/// Why a set of arms cannot be bootstrapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapError {
    #[error("no configurations to compare")]
    NoArms,
    #[error("configuration {arm} has no runs")]
    NoRuns { arm: usize },
    #[error("configuration 0, run 0 has no validation images")]
    NoImages,
    #[error("image 0 of configuration 0, run 0 has no classes")]
    NoClasses,
    #[error(
        "configuration {arm}, run {run} has {found} validation images, expected {expected} \
         (every run of every configuration must list the same images in the same order)"
    )]
    ImageCountMismatch {
        arm: usize,
        run: usize,
        expected: usize,
        found: usize,
    },
    #[error(
        "configuration {arm}, run {run}, image {image} has {found} classes in one of its \
         intersect/pred/label counts, expected {expected}"
    )]
    ClassCountMismatch {
        arm: usize,
        run: usize,
        image: usize,
        expected: usize,
        found: usize,
    },
    #[error(
        "configuration {arm}, run {run}, image {image}, class {class}: the intersection \
         exceeds the predicted or the labelled pixel count"
    )]
    InconsistentCounts {
        arm: usize,
        run: usize,
        image: usize,
        class: usize,
    },
    #[error("the number of bootstrap replicates must be positive")]
    NoReplicates,
    #[error("the metric is NaN for every configuration")]
    UndefinedMetric,
}

/// One arm's counts as one array: `[run][image][class][I, P, G]`.
pub(super) struct FlatArm {
    pub(super) runs: usize,
    counts: Vec<u64>,
}

/// Validated arms sharing one image list and one class count.
pub(super) struct Design {
    pub(super) n_images: usize,
    pub(super) n_classes: usize,
    pub(super) arms: Vec<FlatArm>,
}

impl Design {
    /// Validates and flattens; errors name the first offending arm / run / image.
    pub(super) fn new(arms: &[&Arm]) -> Result<Design, BootstrapError> {
        let first = arms.first().ok_or(BootstrapError::NoArms)?;
        let run0 = first
            .runs
            .first()
            .ok_or(BootstrapError::NoRuns { arm: 0 })?;
        let image0 = run0.first().ok_or(BootstrapError::NoImages)?;
        let n_classes = image0.intersect.len();
        if n_classes == 0 {
            return Err(BootstrapError::NoClasses);
        }
        let mut design = Design {
            n_images: run0.len(),
            n_classes,
            arms: Vec::with_capacity(arms.len()),
        };
        for (a, arm) in arms.iter().enumerate() {
            let flat = design.flatten(a, arm)?;
            design.arms.push(flat);
        }
        Ok(design)
    }

    fn flatten(&self, a: usize, arm: &Arm) -> Result<FlatArm, BootstrapError> {
        if arm.runs.is_empty() {
            return Err(BootstrapError::NoRuns { arm: a });
        }
        let mut counts = Vec::with_capacity(arm.runs.len() * self.n_images * self.n_classes * 3);
        for (r, run) in arm.runs.iter().enumerate() {
            if run.len() != self.n_images {
                return Err(BootstrapError::ImageCountMismatch {
                    arm: a,
                    run: r,
                    expected: self.n_images,
                    found: run.len(),
                });
            }
            for (i, image) in run.iter().enumerate() {
                self.push_image(image, (a, r, i), &mut counts)?;
            }
        }
        let runs = arm.runs.len();
        Ok(FlatArm { runs, counts })
    }

    /// Appends one image's `I, P, G` per class after checking its shape and consistency.
    fn push_image(
        &self,
        counts: &ImageCounts,
        (arm, run, image): (usize, usize, usize),
        out: &mut Vec<u64>,
    ) -> Result<(), BootstrapError> {
        let n = self.n_classes;
        for found in [
            counts.intersect.len(),
            counts.pred.len(),
            counts.label.len(),
        ] {
            if found != n {
                return Err(BootstrapError::ClassCountMismatch {
                    arm,
                    run,
                    image,
                    expected: n,
                    found,
                });
            }
        }
        for class in 0..n {
            let (i, p, g) = (
                counts.intersect[class],
                counts.pred[class],
                counts.label[class],
            );
            if i > p || i > g {
                return Err(BootstrapError::InconsistentCounts {
                    arm,
                    run,
                    image,
                    class,
                });
            }
            out.extend_from_slice(&[i, p, g]);
        }
        Ok(())
    }
}

/// Evaluates the arm statistic with reusable buffers (no allocation per replicate).
pub(super) struct Evaluator<'m> {
    metric: MetricFn<'m>,
    scratch: Metrics,
    sums: Vec<u64>,
}

impl<'m> Evaluator<'m> {
    pub(super) fn new(metric: MetricFn<'m>, n_classes: usize) -> Self {
        Evaluator {
            metric,
            scratch: Metrics::new(n_classes),
            sums: vec![0; 3 * n_classes],
        }
    }

    /// Mean over runs (each counted `run_w[r]` times) of the metric of that run's counts
    /// summed over the images (each counted `image_w[i]` times).
    pub(super) fn stat(&mut self, arm: &FlatArm, image_w: &[u32], run_w: &[u32]) -> f64 {
        let per_run = image_w.len() * self.sums.len();
        let mut total = 0.0;
        for (r, &rw) in run_w.iter().enumerate() {
            if rw != 0 {
                let run = &arm.counts[r * per_run..(r + 1) * per_run];
                weighted_sum(run, image_w, &mut self.sums);
                total += f64::from(rw) * self.run_value();
            }
        }
        total / arm.runs as f64
    }

    /// The metric of the summed counts in `sums` (union = P + G - I, as MMSeg).
    fn run_value(&mut self) -> f64 {
        let m = &mut self.scratch;
        for (c, s) in self.sums.chunks_exact(3).enumerate() {
            let (i, p, g) = (s[0], s[1], s[2]);
            m.intersect[c] = i;
            m.pred[c] = p;
            m.label[c] = g;
            m.union[c] = p + g - i;
        }
        (self.metric)(m)
    }

    /// The statistic on the data as observed: every image and every run once.
    pub(super) fn observed(&mut self, design: &Design, arm: usize) -> f64 {
        let arm = &design.arms[arm];
        let image_w = vec![1; design.n_images];
        let run_w = vec![1; arm.runs];
        self.stat(arm, &image_w, &run_w)
    }
}

/// Calls `f` with every arm's statistic on each of `replicates` resamples: one image
/// resample shared by all arms (the pairing), one run resample per arm (seeds of different
/// configurations are independent). Seeded [`StdRng`]: reproducible for one build of the
/// `rand` crate, which does not promise the same stream across its versions.
pub(super) fn for_each_replicate(
    design: &Design,
    metric: MetricFn,
    replicates: usize,
    seed: u64,
    mut f: impl FnMut(&[f64]),
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut eval = Evaluator::new(metric, design.n_classes);
    let mut image_w = vec![0u32; design.n_images];
    let mut run_w: Vec<Vec<u32>> = design.arms.iter().map(|a| vec![0; a.runs]).collect();
    let mut stats = vec![0.0; design.arms.len()];
    for _ in 0..replicates {
        draw_multiplicities(&mut rng, &mut image_w);
        for w in &mut run_w {
            draw_multiplicities(&mut rng, w);
        }
        for ((s, arm), w) in stats.iter_mut().zip(&design.arms).zip(&run_w) {
            *s = eval.stat(arm, &image_w, w);
        }
        f(&stats);
    }
}

/// `sums = Σ_i image_w[i] * run[i]`, `run` being `[image][class][I, P, G]`. The hot loop:
/// plain indexing, because iterator adapters are function calls at opt-level 0 (tests).
#[allow(clippy::needless_range_loop)]
fn weighted_sum(run: &[u64], image_w: &[u32], sums: &mut [u64]) {
    let stride = sums.len();
    for j in 0..stride {
        sums[j] = 0;
    }
    for i in 0..image_w.len() {
        let w = u64::from(image_w[i]);
        if w != 0 {
            let cell = &run[i * stride..(i + 1) * stride];
            for j in 0..stride {
                sums[j] += w * cell[j];
            }
        }
    }
}

/// A resample with replacement of `w.len()` indices, as how often each index was drawn.
fn draw_multiplicities(rng: &mut StdRng, w: &mut [u32]) {
    w.fill(0);
    let n = w.len();
    for _ in 0..n {
        w[rng.random_range(0..n)] += 1;
    }
}
