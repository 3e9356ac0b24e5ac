//! Which differences of a leaderboard are real: the rows not distinguishable from the best,
//! and each row's probability of being best, by a paired bootstrap over validation images
//! and seeds (see [`crate::stats`] and the README's "Statistics" section).
//!
//! A row's runs are grouped by seed; with cross-validation a seed's run is the union of its
//! folds' validation images, so every image is scored once per seed. Only images every
//! tested row has are used, and only rows with per-image results take part.

use super::data_sets::families;
use super::{Group, MetricKey};
use crate::job::JobStatus;
use crate::metrics::surface::Presence;
use crate::metrics::Metrics;
use crate::protocol::ImageMetric;
use crate::stats::{self, Arm, ImageCounts};
use crate::store::{JobRow, Store};
use anyhow::Result;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Bootstrap replicates: enough for p-values near 0.05 to be stable to about ±0.01.
pub const REPLICATES: usize = 2000;
/// Family-wise error rate of the Holm-corrected comparisons with the best.
pub const ALPHA: f64 = 0.05;
/// The bootstrap's seed: the same database always gives the same report.
pub const BOOTSTRAP_SEED: u64 = 0;

/// Per-image results of a report's jobs, by job id.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    pub images: BTreeMap<i64, Vec<ImageMetric>>,
}

impl Evidence {
    /// Reads the per-image results of the succeeded jobs among `rows`.
    pub async fn load(store: &dyn Store, rows: &[JobRow]) -> Result<Evidence> {
        let mut images = BTreeMap::new();
        for r in rows.iter().filter(|r| r.status == JobStatus::Succeeded) {
            let rows = store.image_metrics(r.job_id).await?;
            if !rows.is_empty() {
                images.insert(r.job_id, rows);
            }
        }
        Ok(Evidence { images })
    }
}

/// How a group's validation images divide by where the foreground class is (per image and
/// foreground class, summed over the group's runs): the cases the empty-mask policy decides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImageTally {
    /// Runs with per-image results.
    pub runs: usize,
    /// Their distinct seeds: the folds of one seed together score every image once.
    pub seeds: usize,
    /// Image rows (image x foreground class x run).
    pub images: usize,
    pub both: usize,
    /// No fluid in the label and none predicted: Dice and distances undefined (left out).
    pub neither: usize,
    /// Fluid missed entirely: Dice 0, distances the image diagonal.
    pub label_only: usize,
    /// Fluid predicted where the label has none: Dice 0, distances the image diagonal.
    pub prediction_only: usize,
}

impl Evidence {
    /// The tally of a group's images of `split`; None without per-image results.
    pub fn tally(&self, group: &Group, split: &str) -> Option<ImageTally> {
        let mut t = ImageTally::default();
        let mut seeds = BTreeSet::new();
        for run in &group.runs {
            let Some(rows) = self.images.get(&run.job_id) else {
                continue;
            };
            t.runs += 1;
            seeds.insert(run.seed);
            for m in rows.iter().filter(|m| m.split == split && m.class > 0) {
                t.images += 1;
                match m.presence {
                    Some(Presence::Both) => t.both += 1,
                    Some(Presence::Neither) => t.neither += 1,
                    Some(Presence::LabelOnly) => t.label_only += 1,
                    Some(Presence::PredictionOnly) => t.prediction_only += 1,
                    None => {}
                }
            }
        }
        t.seeds = seeds.len();
        (t.runs > 0).then_some(t)
    }
}

/// One row's verdict against the best.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowTest {
    pub best: bool,
    /// Not distinguishable from the best at [`ALPHA`] (Holm); true for the best itself.
    pub indistinguishable: bool,
    pub prob_best: f64,
    /// One-sided bootstrap p-value of "the best is better than this row" (None for the best).
    pub p: Option<f64>,
    pub p_adjusted: Option<f64>,
    /// Rows compared with the best of this row's data set: the number Holm corrects for.
    pub comparisons: usize,
}

/// The bootstrap of a leaderboard: one entry per ranked group (None: not tested).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Significance {
    pub metric: String,
    pub rows: Vec<Option<RowTest>>,
    /// Validation images every tested row has (the resampled units, with the seeds).
    pub images: usize,
    pub replicates: usize,
    pub alpha: f64,
}

/// A metric of summed pixel counts.
pub type CountMetric = Box<dyn Fn(&Metrics) -> f64>;

/// The function of summed counts that `key` names (`mDice`, `aAcc`, `Dice.1`, ...), if any:
/// metrics of another split (`train:img_per_s`) are not made of image counts.
pub fn metric_fn(key: &MetricKey) -> Option<CountMetric> {
    if key.split.is_some() {
        return None;
    }
    let name = key.name.clone();
    match key.class {
        None => {
            let probe = Metrics::new(2);
            probe
                .summary()
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(&name))
                .then(|| -> CountMetric {
                    Box::new(move |m: &Metrics| {
                        m.summary()
                            .into_iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                            .map_or(f64::NAN, |(_, v)| v)
                    })
                })
        }
        Some(class) => crate::metrics::CLASS_METRICS
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&name))
            .then(|| -> CountMetric {
                Box::new(move |m: &Metrics| {
                    m.per_class_values()
                        .into_iter()
                        .find(|(n, c, _)| *c == class && n.eq_ignore_ascii_case(&name))
                        .map_or(f64::NAN, |(_, _, v)| v)
                })
            }),
    }
}

/// A group's per-image counts of `split`, by seed then image (folds of one seed merged).
fn by_seed(
    group: &Group,
    split: &str,
    evidence: &Evidence,
) -> BTreeMap<u64, BTreeMap<String, ImageCounts>> {
    let mut out: BTreeMap<u64, BTreeMap<String, ImageCounts>> = BTreeMap::new();
    for run in &group.runs {
        let Some(rows) = evidence.images.get(&run.job_id) else {
            continue;
        };
        let images = out.entry(run.seed).or_default();
        for m in rows.iter().filter(|m| m.split == split) {
            let counts = images
                .entry(m.image.clone())
                .or_insert_with(|| ImageCounts {
                    intersect: Vec::new(),
                    pred: Vec::new(),
                    label: Vec::new(),
                });
            if counts.intersect.len() <= m.class {
                counts.intersect.resize(m.class + 1, 0);
                counts.pred.resize(m.class + 1, 0);
                counts.label.resize(m.class + 1, 0);
            }
            counts.intersect[m.class] = m.intersect;
            counts.pred[m.class] = m.pred;
            counts.label[m.class] = m.label;
        }
    }
    out.retain(|_, images| !images.is_empty());
    out
}

/// Images present in every run of every arm.
fn common_images(arms: &[&BTreeMap<u64, BTreeMap<String, ImageCounts>>]) -> Vec<String> {
    let mut runs = arms.iter().flat_map(|a| a.values());
    let Some(first) = runs.next() else {
        return Vec::new();
    };
    let mut common: BTreeSet<&String> = first.keys().collect();
    for run in runs {
        common.retain(|name| run.contains_key(*name));
    }
    common.into_iter().cloned().collect()
}

/// The bootstrap's input: one [`Arm`] per group that has per-image results, on the images
/// they all have.
pub(super) struct Arms {
    pub arms: Vec<Arm>,
    /// Index (into the groups given) of each arm.
    pub tested: Vec<usize>,
    pub images: usize,
}

/// Arms of the groups with per-image results of `split`; None when none has them on a
/// common set of images.
pub(super) fn build_arms(groups: &[&Group], split: &str, evidence: &Evidence) -> Option<Arms> {
    let seeded: Vec<_> = groups.iter().map(|g| by_seed(g, split, evidence)).collect();
    let tested: Vec<usize> = (0..groups.len())
        .filter(|&i| !seeded[i].is_empty())
        .collect();
    let present: Vec<_> = tested.iter().map(|&i| &seeded[i]).collect();
    let images = common_images(&present);
    if images.is_empty() {
        return None;
    }
    let arms = present
        .iter()
        .map(|runs| Arm {
            runs: runs
                .values()
                .map(|by_name| images.iter().map(|n| by_name[n].clone()).collect())
                .collect(),
        })
        .collect();
    Some(Arms {
        arms,
        tested,
        images: images.len(),
    })
}

/// The bootstrap over the groups (in rank order) that have per-image results of `split`
/// for the metric `key`, within each data set: every row is tested against the best row of
/// its own data set. None when no data set has two such rows or the metric is not
/// image-based. The images and replicates reported are the main data set's (the first
/// tested of [`families`]).
pub fn test_groups(
    groups: &[Group],
    key: &MetricKey,
    split: &str,
    evidence: &Evidence,
    higher_is_better: bool,
) -> Result<Option<Significance>> {
    let Some(metric) = metric_fn(key) else {
        return Ok(None);
    };
    let signed = |m: &Metrics| {
        if higher_is_better {
            metric(m)
        } else {
            -metric(m)
        }
    };
    let mut rows = vec![None; groups.len()];
    let mut main = None;
    for members in families(groups) {
        let refs: Vec<&Group> = members.iter().map(|&i| &groups[i]).collect();
        let Some(arms) = build_arms(&refs, split, evidence).filter(|a| a.arms.len() >= 2) else {
            continue;
        };
        let test =
            stats::rank_against_best(&arms.arms, &signed, REPLICATES, BOOTSTRAP_SEED, ALPHA)?;
        for (k, &local) in arms.tested.iter().enumerate() {
            rows[members[local]] = Some(RowTest {
                best: k == test.best,
                indistinguishable: test.indistinguishable[k],
                prob_best: test.prob_best[k],
                p: test.vs_best[k].as_ref().map(|d| d.p),
                p_adjusted: test.vs_best[k].as_ref().map(|d| d.p_adjusted),
                comparisons: arms.arms.len() - 1,
            });
        }
        main.get_or_insert((arms.images, test.replicates));
    }
    let Some((images, replicates)) = main else {
        return Ok(None);
    };
    Ok(Some(Significance {
        metric: key.to_string(),
        rows,
        images,
        replicates,
        alpha: ALPHA,
    }))
}
