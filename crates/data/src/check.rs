//! `sweep data check`: every file of a data set read and checked before anything trains,
//! and the data set's fingerprint printed (as nnU-Net's planner does): cases, groups,
//! channels, image sizes, intensities, class frequencies per split, empty masks, and a
//! content hash of every file.

use crate::cases::{case_digest, load_image, load_raw_label, LabelReader};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use sweep_core::dataset::{Case, DataSet, DataSetError, OwnSplit, IGNORE};
use sweep_core::job::SplitConfig;

/// What `sweep data check` found and measured.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub root: String,
    pub layout: sweep_core::dataset::Layout,
    pub description: String,
    pub classes: Vec<String>,
    pub channels: usize,
    pub cases: usize,
    /// Groups (patients) of the labelled cases; one per case without `groups`.
    pub groups: usize,
    pub grouped: bool,
    pub unlabelled: usize,
    /// `WxH` -> cases.
    pub sizes: BTreeMap<String, usize>,
    pub intensity: Vec<Intensity>,
    /// Class pixels and empty masks of every case, and of the own split's sides.
    pub splits: Vec<SplitStats>,
    /// Problems: each one fails the check.
    pub problems: Vec<String>,
    /// Worth knowing, not wrong (a study split that is not by patient).
    pub notes: Vec<String>,
    /// SHA-256 over the description and every case's files, in case order.
    pub fingerprint: String,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One channel's intensities over every image: nnU-Net's foreground-free summary.
#[derive(Debug, Serialize)]
pub struct Intensity {
    pub mean: f64,
    pub std: f64,
    pub min: u8,
    pub max: u8,
    pub p00_5: u8,
    pub p99_5: u8,
}

#[derive(Debug, Serialize)]
pub struct SplitStats {
    pub split: String,
    pub cases: usize,
    /// Per class, the fraction of labelled (not ignored) pixels, percent.
    pub class_percent: Vec<f64>,
    pub ignored_percent: f64,
    /// Cases with no pixel of any foreground class.
    pub empty_masks: usize,
}

/// One case, read.
struct CaseResult {
    digest: [u8; 32],
    size: Option<(usize, usize)>,
    channels: usize,
    /// Per class pixels, then ignored pixels last.
    pixels: Vec<u64>,
    /// Per channel, a histogram of the image's values.
    histogram: Vec<[u64; 256]>,
    problems: Vec<String>,
}

/// Reads and checks every file of the data set in `root`. `Err` only when there is no
/// usable description at all; everything else is a problem in the report.
pub fn check(root: &Path) -> Result<CheckReport, DataSetError> {
    let data_set = DataSet::describe(root)?;
    let labels = LabelReader::new(&data_set);
    let results = read_all(&data_set, &labels);
    let mut problems: Vec<String> = data_set.problems.iter().map(|p| p.to_string()).collect();
    problems.extend(results.iter().flat_map(|r| r.problems.iter().cloned()));
    let mut notes = Vec::new();
    problems.extend(split_problems(&data_set, &mut notes));
    let grouped = data_set.groups.is_some();
    Ok(CheckReport {
        name: data_set.name.clone(),
        root: data_set.root.display().to_string(),
        layout: data_set.layout,
        description: data_set.description.display().to_string(),
        classes: data_set.classes.clone(),
        channels: results.iter().map(|r| r.channels).max().unwrap_or(0),
        cases: data_set.cases.len(),
        groups: data_set.group_names().len(),
        grouped,
        unlabelled: data_set.test.len(),
        sizes: sizes(&results),
        intensity: intensity(&results),
        splits: split_stats(&data_set, &results),
        problems,
        notes,
        fingerprint: fingerprint(&data_set, &results),
    })
}

/// Every case read on all cores, with a progress bar on a terminal; results in case order.
fn read_all(data_set: &DataSet, labels: &LabelReader) -> Vec<CaseResult> {
    let cases = &data_set.cases;
    crate::parallel::map_indexed(cases.len(), "check", |i| {
        read_case(&cases[i], data_set, labels)
    })
}

fn read_case(case: &Case, data_set: &DataSet, labels: &LabelReader) -> CaseResult {
    let n = data_set.num_classes();
    let mut r = CaseResult {
        digest: [0; 32],
        size: None,
        channels: 0,
        pixels: vec![0; n + 1],
        histogram: Vec::new(),
        problems: Vec::new(),
    };
    match case_digest(case) {
        Ok(d) => r.digest = d,
        Err(e) => r.problems.push(e.to_string()),
    }
    let image = match load_image(case) {
        Ok(i) => i,
        Err(e) => {
            r.problems.push(e.to_string());
            return r;
        }
    };
    let (pixels, channels, h, w) = image;
    r.size = Some((w, h));
    r.channels = channels;
    r.histogram = vec![[0; 256]; channels];
    for (i, v) in pixels.iter().enumerate() {
        r.histogram[i % channels][usize::from(*v)] += 1;
    }
    match load_raw_label(&case.label) {
        Err(e) => r.problems.push(e.to_string()),
        Ok((_, lh, lw)) if (lw, lh) != (w, h) => r.problems.push(format!(
            "{}: the label is {lw}x{lh} but its image {} is {w}x{h}",
            case.label.display(),
            case.images[0].display()
        )),
        Ok((mut label, _, _)) => match labels.map(&mut label, &case.label) {
            Err(e) => r.problems.push(e.to_string()),
            Ok(()) => {
                for v in label {
                    let slot = if v == IGNORE { n } else { usize::from(v) };
                    r.pixels[slot] += 1;
                }
            }
        },
    }
    r
}

fn sizes(results: &[CaseResult]) -> BTreeMap<String, usize> {
    let mut sizes = BTreeMap::new();
    for (w, h) in results.iter().filter_map(|r| r.size) {
        *sizes.entry(format!("{w}x{h}")).or_insert(0) += 1;
    }
    sizes
}

fn intensity(results: &[CaseResult]) -> Vec<Intensity> {
    let channels = results.iter().map(|r| r.histogram.len()).max().unwrap_or(0);
    (0..channels)
        .map(|c| {
            let mut hist = [0u64; 256];
            for r in results.iter().filter(|r| r.histogram.len() == channels) {
                for (v, n) in r.histogram[c].iter().enumerate() {
                    hist[v] += n;
                }
            }
            summarise(&hist)
        })
        .collect()
}

fn summarise(hist: &[u64; 256]) -> Intensity {
    let total: u64 = hist.iter().sum::<u64>().max(1);
    let mean = hist
        .iter()
        .enumerate()
        .map(|(v, n)| v as f64 * *n as f64)
        .sum::<f64>()
        / total as f64;
    let var = hist
        .iter()
        .enumerate()
        .map(|(v, n)| (v as f64 - mean).powi(2) * *n as f64)
        .sum::<f64>()
        / total as f64;
    let quantile = |q: f64| {
        let target = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (v, n) in hist.iter().enumerate() {
            seen += n;
            if seen >= target.max(1) {
                return v as u8;
            }
        }
        255
    };
    let present = |v: &usize| hist[*v] > 0;
    Intensity {
        mean,
        std: var.sqrt(),
        min: (0..256).find(present).unwrap_or(0) as u8,
        max: (0..256).rev().find(present).unwrap_or(0) as u8,
        p00_5: quantile(0.005),
        p99_5: quantile(0.995),
    }
}

/// Every case, then the own split's train and val when there is one.
fn split_stats(data_set: &DataSet, results: &[CaseResult]) -> Vec<SplitStats> {
    let index: BTreeMap<&str, usize> = data_set
        .cases
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let stats = |split: &str, ids: Vec<&str>| {
        let n = data_set.num_classes();
        let mut pixels = vec![0u64; n + 1];
        let mut empty = 0;
        for id in &ids {
            let r = &results[index[id]];
            for (slot, p) in pixels.iter_mut().zip(&r.pixels) {
                *slot += p;
            }
            if r.pixels[1..n].iter().all(|p| *p == 0) {
                empty += 1;
            }
        }
        let labelled: u64 = pixels[..n].iter().sum::<u64>().max(1);
        let all: u64 = pixels.iter().sum::<u64>().max(1);
        SplitStats {
            split: split.to_string(),
            cases: ids.len(),
            class_percent: pixels[..n]
                .iter()
                .map(|p| 100.0 * *p as f64 / labelled as f64)
                .collect(),
            ignored_percent: 100.0 * pixels[n] as f64 / all as f64,
            empty_masks: empty,
        }
    };
    let mut out = vec![stats(
        "all",
        data_set.cases.iter().map(|c| c.id.as_str()).collect(),
    )];
    if let Ok(own) = data_set.select(&SplitConfig::Study) {
        out.push(stats(
            "train",
            own.train.iter().map(|c| c.id.as_str()).collect(),
        ));
        out.push(stats(
            "val",
            own.val.iter().map(|c| c.id.as_str()).collect(),
        ));
    }
    out
}

/// Folds of `splits_final.json` that cut a group in two are problems (grouped CV is why
/// they exist); an own train/val split that does is worth a note (DME's study split is
/// documented as not by patient).
fn split_problems(data_set: &DataSet, notes: &mut Vec<String>) -> Vec<String> {
    if let OwnSplit::Lists { train, val } = &data_set.own_split {
        let shared = train.iter().filter(|id| val.contains(id)).count();
        if shared > 0 {
            notes.push(format!(
                "{shared} case(s) are in both the train and the val list of the data set's own split"
            ));
        }
    }
    if data_set.groups.is_none() {
        return Vec::new();
    }
    match &data_set.own_split {
        OwnSplit::None => Vec::new(),
        OwnSplit::Lists { train, val } => {
            let both = data_set.cut_groups(train, val);
            if !both.is_empty() {
                notes.push(format!(
                    "the data set's own train/val split is not by group: {} of its groups have cases on both sides (patient leakage; `cv:` splits by group)",
                    both.len()
                ));
            }
            Vec::new()
        }
        OwnSplit::Folds { file, folds } => folds
            .iter()
            .enumerate()
            .filter_map(|(k, (train, val))| {
                let both = data_set.cut_groups(train, val);
                (!both.is_empty()).then(|| {
                    format!(
                        "{}: fold {k} cuts group(s) {} in two (cases on both the train and the val side)",
                        file.display(),
                        both.join(", ")
                    )
                })
            })
            .collect(),
    }
}

fn fingerprint(data_set: &DataSet, results: &[CaseResult]) -> String {
    let mut h = Sha256::new();
    h.update(std::fs::read(&data_set.description).unwrap_or_default());
    for r in results {
        h.update(r.digest);
    }
    format!("sha256:{}", hex::encode(&h.finalize()[..16]))
}

/// The report as the terminal shows it.
pub fn render(r: &CheckReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let layout = match r.layout {
        sweep_core::dataset::Layout::NnUnet => "nnU-Net v2",
        sweep_core::dataset::Layout::MmSeg => "MMSegmentation layout",
    };
    let _ = writeln!(out, "data set {} ({layout}, {})", r.name, r.description);
    let classes: Vec<String> = r
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{i} {c}"))
        .collect();
    let _ = writeln!(out, "  classes      {}", classes.join(", "));
    let groups = if r.grouped {
        format!("{} groups", r.groups)
    } else {
        "no groups: folds split by case".into()
    };
    let _ = writeln!(
        out,
        "  cases        {} labelled ({groups}), {} unlabelled",
        r.cases, r.unlabelled
    );
    let _ = writeln!(out, "  channels     {}", r.channels);
    let sizes: Vec<String> = r.sizes.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    let _ = writeln!(out, "  image sizes  {}", sizes.join(", "));
    for (c, i) in r.intensity.iter().enumerate() {
        let _ = writeln!(
            out,
            "  intensity    channel {c}: mean {:.1}, std {:.1}, range {}-{}, 0.5-99.5 %: {}-{}",
            i.mean, i.std, i.min, i.max, i.p00_5, i.p99_5
        );
    }
    let _ = writeln!(out, "  class pixels (% of labelled pixels), empty masks:");
    for s in &r.splits {
        let per: Vec<String> = r
            .classes
            .iter()
            .zip(&s.class_percent)
            .map(|(c, p)| format!("{c} {p:.2}"))
            .collect();
        let ignored = if s.ignored_percent > 0.0 {
            format!(", ignored {:.2} % of pixels", s.ignored_percent)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "    {:<6} {:>5} cases: {}{ignored}; {} empty",
            s.split,
            s.cases,
            per.join(", "),
            s.empty_masks
        );
    }
    let _ = writeln!(out, "  fingerprint  {}", r.fingerprint);
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    if r.problems.is_empty() {
        let _ = writeln!(out, "check passed: no problems");
    } else {
        let _ = writeln!(out, "check failed: {} problem(s)", r.problems.len());
        for p in &r.problems {
            let _ = writeln!(out, "  {p}");
        }
    }
    out
}
