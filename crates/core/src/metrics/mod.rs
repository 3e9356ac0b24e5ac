//! Segmentation metrics with MMSegmentation's `IoUMetric` semantics (mmseg 1.2.2).
//!
//! Per image, over the pixels whose label is not 255, per class `c`: `I_c` = #(pred = label = c),
//! `P_c` = #(pred = c), `G_c` = #(label = c), `U_c = P_c + G_c - I_c`. These are summed over
//! the whole evaluation set first; then per class IoU = I/U, Acc = Recall = I/G,
//! Dice = 2I/(P+G), Precision = I/P, Fscore = 2 Precision Recall / (Precision + Recall)
//! (beta 1; NaN when Precision and Recall are both 0, as in MMSeg); aAcc = sum I / sum G.
//! Means are nanmean over classes (a 0/0 class is skipped). Values are in percent, stored
//! unrounded (MMSeg rounds to 2 decimals when it prints: see [`round2`]).
//! Label values outside `0..num_classes` (other than 255) are not counted, as torch.histc.

pub use values::{ImageMetric, MetricValue};

pub mod per_image;
pub mod surface;
mod values;

/// MMSeg's display rounding: `np.round(x, 2)` (half to even).
pub fn round2(v: f64) -> f64 {
    (v * 100.0).round_ties_even() / 100.0
}

fn ratio(a: f64, b: f64) -> f64 {
    // 0/0 is NaN (as torch); x/0 with x > 0 cannot occur for these areas.
    a / b
}

/// NaN-skipping mean; NaN when every value is NaN (numpy's nanmean).
pub fn nanmean(values: &[f64]) -> f64 {
    let v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Areas accumulated over an evaluation set.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    pub num_classes: usize,
    pub intersect: Vec<u64>,
    pub union: Vec<u64>,
    pub pred: Vec<u64>,
    pub label: Vec<u64>,
}

/// Per-class names as stored, in MMSeg's spelling.
pub const CLASS_METRICS: [&str; 6] = ["IoU", "Acc", "Dice", "Fscore", "Precision", "Recall"];

impl Metrics {
    pub fn new(num_classes: usize) -> Self {
        Metrics {
            num_classes,
            intersect: vec![0; num_classes],
            union: vec![0; num_classes],
            pred: vec![0; num_classes],
            label: vec![0; num_classes],
        }
    }

    /// Adds one image: `pred` and `label` are the same size; label 255 is ignored.
    pub fn add(&mut self, pred: &[u8], label: &[u8]) {
        assert_eq!(pred.len(), label.len(), "prediction and label sizes differ");
        let n = self.num_classes;
        let (mut i, mut p, mut g) = (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
        for (&pv, &lv) in pred.iter().zip(label) {
            if lv == 255 {
                continue;
            }
            let (pv, lv) = (usize::from(pv), usize::from(lv));
            if pv < n {
                p[pv] += 1;
            }
            if lv < n {
                g[lv] += 1;
                if pv == lv {
                    i[lv] += 1;
                }
            }
        }
        for c in 0..n {
            self.intersect[c] += i[c];
            self.pred[c] += p[c];
            self.label[c] += g[c];
            self.union[c] += p[c] + g[c] - i[c];
        }
    }

    /// Sums two accumulations (same number of classes).
    pub fn merge(&mut self, other: &Metrics) {
        assert_eq!(self.num_classes, other.num_classes);
        for c in 0..self.num_classes {
            self.intersect[c] += other.intersect[c];
            self.union[c] += other.union[c];
            self.pred[c] += other.pred[c];
            self.label[c] += other.label[c];
        }
    }

    fn per_class(&self, f: impl Fn(f64, f64, f64, f64) -> f64) -> Vec<f64> {
        (0..self.num_classes)
            .map(|c| {
                f(
                    self.intersect[c] as f64,
                    self.union[c] as f64,
                    self.pred[c] as f64,
                    self.label[c] as f64,
                ) * 100.0
            })
            .collect()
    }

    pub fn iou(&self) -> Vec<f64> {
        self.per_class(|i, u, _, _| ratio(i, u))
    }
    pub fn acc(&self) -> Vec<f64> {
        self.per_class(|i, _, _, g| ratio(i, g))
    }
    pub fn dice(&self) -> Vec<f64> {
        self.per_class(|i, _, p, g| ratio(2.0 * i, p + g))
    }
    pub fn precision(&self) -> Vec<f64> {
        self.per_class(|i, _, p, _| ratio(i, p))
    }
    pub fn recall(&self) -> Vec<f64> {
        self.acc()
    }
    /// F1 from precision and recall, as MMSeg computes it (NaN when both are 0 or NaN).
    pub fn fscore(&self) -> Vec<f64> {
        self.per_class(|i, _, p, g| {
            let (pr, re) = (ratio(i, p), ratio(i, g));
            2.0 * pr * re / (pr + re)
        })
    }
    /// Overall pixel accuracy (%).
    pub fn aacc(&self) -> f64 {
        let i: u64 = self.intersect.iter().sum();
        let g: u64 = self.label.iter().sum();
        ratio(i as f64, g as f64) * 100.0
    }
    pub fn miou(&self) -> f64 {
        nanmean(&self.iou())
    }
    pub fn macc(&self) -> f64 {
        nanmean(&self.acc())
    }
    pub fn mdice(&self) -> f64 {
        nanmean(&self.dice())
    }
    pub fn mfscore(&self) -> f64 {
        nanmean(&self.fscore())
    }
    pub fn mprecision(&self) -> f64 {
        nanmean(&self.precision())
    }
    pub fn mrecall(&self) -> f64 {
        nanmean(&self.recall())
    }

    /// The summary (class None): aAcc, mIoU, mAcc, mDice, mFscore, mPrecision, mRecall.
    pub fn summary(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("aAcc", self.aacc()),
            ("mIoU", self.miou()),
            ("mAcc", self.macc()),
            ("mDice", self.mdice()),
            ("mFscore", self.mfscore()),
            ("mPrecision", self.mprecision()),
            ("mRecall", self.mrecall()),
        ]
    }

    /// Per-class values `(name, class, value)` in [`CLASS_METRICS`] order.
    pub fn per_class_values(&self) -> Vec<(&'static str, usize, f64)> {
        let all = [
            self.iou(),
            self.acc(),
            self.dice(),
            self.fscore(),
            self.precision(),
            self.recall(),
        ];
        let mut out = Vec::new();
        for c in 0..self.num_classes {
            for (name, v) in CLASS_METRICS.iter().zip(&all) {
                out.push((*name, c, v[c]));
            }
        }
        out
    }

    /// Every metric as stored, unrounded, in percent. NaN values (a class absent from both
    /// prediction and label, a Precision 0/0, ...) are left out: NaN has no JSON / SQL form,
    /// and "absent" is what nanmean made of them.
    pub fn to_values(&self, split: &str) -> Vec<MetricValue> {
        let mv = |name: &str, class: Option<usize>, value: f64| MetricValue {
            split: split.to_string(),
            name: name.to_string(),
            class,
            value,
        };
        self.summary()
            .into_iter()
            .map(|(n, v)| mv(n, None, v))
            .chain(
                self.per_class_values()
                    .into_iter()
                    .map(|(n, c, v)| mv(n, Some(c), v)),
            )
            .filter(|m| !m.value.is_nan())
            .collect()
    }

    /// MMSeg-style text table (values rounded to 2 decimals).
    pub fn display(&self) -> String {
        let f = |v: f64| {
            if v.is_nan() {
                "nan".to_string()
            } else {
                format!("{:.2}", round2(v))
            }
        };
        let mut s = String::from("class  IoU     Acc     Dice    Fscore  Precision Recall\n");
        for c in 0..self.num_classes {
            s += &format!(
                "{c:<6} {:<7} {:<7} {:<7} {:<7} {:<9} {}\n",
                f(self.iou()[c]),
                f(self.acc()[c]),
                f(self.dice()[c]),
                f(self.fscore()[c]),
                f(self.precision()[c]),
                f(self.recall()[c])
            );
        }
        let parts: Vec<String> = self
            .summary()
            .into_iter()
            .map(|(n, v)| format!("{n} {}", f(v)))
            .collect();
        s += &parts.join("  ");
        s
    }
}
