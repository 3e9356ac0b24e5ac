//! Leaderboard of a sweep's results (`sweep report`) and its pictures.
//!
//! Jobs identical except for their seed are one row: `mean ± std` (sample std) over the
//! seeds, with their number `n`. Metrics are stored in percent and shown with 2 decimals.
//! Columns by default: the study's Model, mDice, mAccuracy (= mAcc), mIoU, mFscore.

pub mod anytime;
pub mod plan;
pub mod plot;
pub mod replay;
pub mod show;
pub mod status;
pub mod stopped;
pub use plan::{plan_json, plan_table};
pub use show::show;
pub use status::status;
pub mod compare;
mod compare_leaderboard;
mod data_sets;
pub mod external;
pub use data_sets::changed_since;
mod image_note;
pub mod pictures;
pub mod select;
pub mod significance;
mod table;

pub use pictures::{write_plots, Pictures};
pub use significance::{test_groups, Evidence, ImageTally, Significance};

pub use plot::{
    box_plots, leaderboard_chart, learning_curves, overlays, BoardMark, BoardRow, CurveGroup,
    OverlayPanel, RunCurve,
};

use crate::job::JobStatus;
use crate::store::{JobRow, Store};
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// Output format of [`render`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Markdown,
    Csv,
    Json,
}

/// What [`render`] shows. Derives `clap::Args` so the CLI can flatten it.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct ReportOptions {
    /// Only this sweep (default: every sweep in the database).
    #[arg(long)]
    pub sweep: Option<String>,
    /// Metric to sort by: mDice, mAcc (or mAccuracy), mIoU, mFscore, aAcc, or a class's
    /// metric as NAME.CLASS (Dice.1, IoU.1).
    #[arg(long, default_value = "mDice")]
    pub sort: String,
    /// Ascending (default descending: best first).
    #[arg(long)]
    pub asc: bool,
    /// Show only the first N rows.
    #[arg(long)]
    pub top: Option<usize>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Extra metric columns, comma-separated: aAcc,IoU.1,Dice.1
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Include jobs that did not succeed (adds a Status column).
    #[arg(long)]
    pub all: bool,
    /// Evaluation split whose metrics are shown (default: `val` when a job has it, else its first).
    #[arg(long)]
    pub split: Option<String>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            sweep: None,
            sort: "mDice".into(),
            asc: false,
            top: None,
            format: Format::Table,
            columns: Vec::new(),
            all: false,
            split: None,
        }
    }
}

/// The study's columns: (header, metric).
pub const DEFAULT_COLUMNS: &[(&str, &str)] = &[
    ("mDice", "mDice"),
    ("mAccuracy", "mAcc"),
    ("mIoU", "mIoU"),
    ("mFscore", "mFscore"),
];

/// A metric as stored: `name` and `class` (None for means and aAcc), and the split it is
/// read from when not the report's (`train:img_per_s`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricKey {
    pub name: String,
    pub class: Option<usize>,
    pub split: Option<String>,
}

impl MetricKey {
    /// `mDice`, `mAccuracy` (= mAcc), `Dice.1` (class 1), `train:data_wait` (another split than
    /// the report's). Names compare case-insensitively.
    pub fn parse(s: &str) -> Result<MetricKey> {
        let s = s.trim();
        let (split, s) = match s.split_once(':') {
            Some((sp, rest)) if !sp.trim().is_empty() => (Some(sp.trim().to_string()), rest.trim()),
            _ => (None, s),
        };
        if s.is_empty() {
            bail!("empty metric name");
        }
        let (name, class) = match s.rsplit_once('.') {
            Some((n, c))
                if !n.is_empty() && c.chars().all(|ch| ch.is_ascii_digit()) && !c.is_empty() =>
            {
                (n, Some(c.parse()?))
            }
            _ => (s, None),
        };
        let name = if name.eq_ignore_ascii_case("mAccuracy") {
            "mAcc"
        } else {
            name
        };
        Ok(MetricKey {
            name: name.to_string(),
            class,
            split,
        })
    }

    /// [`MetricKey::parse`], then a class given by name (`Dice.fluid`) resolved to its id
    /// through the classes the rows' data sets name.
    pub fn parse_in(s: &str, rows: &[JobRow]) -> Result<MetricKey> {
        let mut key = Self::parse(s)?;
        if key.class.is_none() {
            if let Some((name, class)) = key.name.rsplit_once('.') {
                let id = rows.iter().find_map(|r| {
                    r.classes
                        .iter()
                        .position(|c| c.eq_ignore_ascii_case(class.trim()))
                });
                if let (Some(id), false) = (id, name.is_empty()) {
                    key.name = name.to_string();
                    key.class = Some(id);
                }
            }
        }
        Ok(key)
    }

    fn matches(&self, m: &crate::protocol::MetricValue) -> bool {
        m.class == self.class && m.name.eq_ignore_ascii_case(&self.name)
    }
}

impl std::fmt::Display for MetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(sp) = &self.split {
            write!(f, "{sp}:")?;
        }
        match self.class {
            Some(c) => write!(f, "{}.{c}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

/// Mean and sample standard deviation of the values a group has for one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// None for a single value.
    pub std: Option<f64>,
    pub values: Vec<f64>,
}

impl Stat {
    pub fn of(values: Vec<f64>) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.len() > 1)
            .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        Some(Stat { mean, std, values })
    }

    /// `77.44` or `77.44 ± 1.23`.
    pub fn display(&self) -> String {
        match self.std {
            Some(s) => format!("{:.2} ± {:.2}", self.mean, s),
            None => format!("{:.2}", self.mean),
        }
    }
}

/// Jobs identical except for their seed (same sweep, stage, status, config without `seed`).
/// Only current jobs: one retired (its stage edited since, say) is not averaged with its
/// replacement.
#[derive(Clone, Debug)]
pub struct Group<'a> {
    pub sweep: String,
    pub label: String,
    pub status: String,
    pub runs: Vec<&'a JobRow>,
}

impl Group<'_> {
    /// Whether the row was scored from another program's predictions (`sweep evaluate`).
    pub fn is_external(&self) -> bool {
        self.runs[0].external.is_some()
    }

    /// The label as tables show it: an external row says so.
    pub fn shown_label(&self) -> String {
        if self.is_external() {
            format!("{} (external)", self.label)
        } else {
            self.label.clone()
        }
    }

    /// Why the group's runs did not succeed (their distinct first error lines), if any.
    pub fn reason(&self) -> Option<String> {
        let mut reasons: Vec<&str> = Vec::new();
        for r in self
            .runs
            .iter()
            .filter(|r| r.status != JobStatus::Succeeded)
        {
            if let Some(reason) = r.reason() {
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
            }
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// The split a run's metrics are read from: `split` if given, else `val`, else its first.
    fn split_of<'r>(run: &'r JobRow, split: Option<&'r str>) -> Option<&'r str> {
        if let Some(s) = split {
            return Some(s);
        }
        if run.metrics.iter().any(|m| m.split == "val") {
            return Some("val");
        }
        run.metrics.iter().map(|m| m.split.as_str()).min()
    }

    /// The metric over the group's runs (those that have it).
    pub fn stat(&self, key: &MetricKey, split: Option<&str>) -> Option<Stat> {
        let values: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| {
                let sp = match &key.split {
                    Some(own) => own.as_str(),
                    None => Self::split_of(r, split)?,
                };
                r.metrics
                    .iter()
                    .find(|m| m.split == sp && key.matches(m))
                    .map(|m| m.value)
            })
            .collect();
        Stat::of(values)
    }

    /// Every metric key the runs have in the chosen split, sorted (means first, then per class).
    pub fn metric_keys(&self, split: Option<&str>) -> Vec<MetricKey> {
        let mut keys: Vec<MetricKey> = Vec::new();
        for r in &self.runs {
            let Some(sp) = Self::split_of(r, split) else {
                continue;
            };
            for m in r.metrics.iter().filter(|m| m.split == sp) {
                let k = MetricKey {
                    name: m.name.clone(),
                    class: m.class,
                    split: None,
                };
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        keys.sort_by(|a, b| {
            (a.class.is_some(), a.class, &a.name).cmp(&(b.class.is_some(), b.class, &b.name))
        });
        keys
    }
}

/// Groups repeated seeds. Order: first appearance.
pub fn group_rows<'a>(rows: &'a [JobRow], all: bool) -> Vec<Group<'a>> {
    let mut index: BTreeMap<(String, Option<String>, String, String), usize> = BTreeMap::new();
    let mut groups: Vec<Group<'a>> = Vec::new();
    // Retired jobs (no longer produced by the sweep file) only with `all`, marked as such.
    for row in rows
        .iter()
        .filter(|r| all || (r.status == JobStatus::Succeeded && !r.retired))
    {
        let status = if row.retired {
            format!("{} (retired)", row.status)
        } else {
            row.status.to_string()
        };
        let config = match serde_json::from_str::<serde_json::Value>(&row.config_json) {
            Ok(mut v) => {
                if let Some(obj) = v.as_object_mut() {
                    obj.remove("seed");
                }
                // The folds of one cross-validation are one group, as seeds are (their
                // number stays in the key: 3 and 5 folds are different estimates).
                let fold = v.pointer_mut("/data/split/fold");
                if let Some(fold) = fold.and_then(|f| f.as_object_mut()) {
                    fold.remove("fold");
                }
                // A command job's seed and fold are among its program's parameters.
                if let Some(params) = v.get_mut("params").and_then(|p| p.as_object_mut()) {
                    params.remove("seed");
                    params.remove("fold");
                }
                v.to_string()
            }
            // Unparsable config: its own group.
            Err(_) => format!("job {}", row.job_id),
        };
        // External rows have no model config: each name is its own row (its folds one row).
        let config = match &row.external {
            Some(e) => format!("external {:?} {config}", e.name),
            None => config,
        };
        let key = (row.sweep.clone(), row.stage.clone(), status.clone(), config);
        match index.get(&key) {
            Some(&i) => groups[i].runs.push(row),
            None => {
                index.insert(key, groups.len());
                groups.push(Group {
                    sweep: row.sweep.clone(),
                    label: String::new(),
                    status,
                    runs: vec![row],
                });
            }
        }
    }
    for g in &mut groups {
        g.label = common_label(&g.runs);
    }
    groups
}

/// The runs' label; if seeds made them differ (`..., seed 3`), the comma-separated parts
/// they share. Cross-validation folds (`..., fold 2/5`) become `..., 5-fold cv`.
fn common_label(runs: &[&JobRow]) -> String {
    let mut folds = None;
    let labels: Vec<String> = runs
        .iter()
        .map(|r| {
            let kept = r.label.split(", ").filter(|p| {
                let n = p.strip_prefix("fold ").and_then(|f| f.split_once('/'));
                let n = n.filter(|(k, n)| k.parse::<u32>().is_ok() && n.parse::<u32>().is_ok());
                if let Some((_, n)) = n {
                    folds = Some(n.to_string());
                }
                n.is_none()
            });
            kept.collect::<Vec<_>>().join(", ")
        })
        .collect();
    let first = &labels[0];
    let mut label = if labels.iter().all(|l| l == first) {
        first.clone()
    } else {
        let parts: Vec<&str> = first
            .split(", ")
            .filter(|p| labels.iter().all(|l| l.split(", ").any(|q| q == *p)))
            .collect();
        if parts.is_empty() {
            first.clone()
        } else {
            parts.join(", ")
        }
    };
    if let Some(n) = folds {
        label.push_str(&format!(", {n}-fold cv"));
    }
    label
}

/// The metric to sort by: `--sort`, unless it is the default (mDice) and no row reported
/// it (command jobs with metrics of their own): then the first summary metric they did.
fn sort_name(opts: &ReportOptions, rows: &[JobRow]) -> String {
    let default = ReportOptions::default().sort;
    let reported = |name: &str| {
        rows.iter()
            .any(|r| r.metrics.iter().any(|m| m.name.eq_ignore_ascii_case(name)))
    };
    if !opts.sort.eq_ignore_ascii_case(&default) || reported(&opts.sort) {
        return opts.sort.clone();
    }
    rows.iter()
        .flat_map(|r| &r.metrics)
        .find(|m| m.class.is_none() && m.split == "val")
        .map_or_else(|| opts.sort.clone(), |m| m.name.clone())
}

/// Groups, sorts (missing or NaN values last either way; ties by label) and cuts to `top`.
pub fn rank<'a>(rows: &'a [JobRow], opts: &ReportOptions) -> Result<Vec<Group<'a>>> {
    let sort = MetricKey::parse_in(&sort_name(opts, rows), rows)?;
    let split = opts.split.as_deref();
    let mut keyed: Vec<(Option<f64>, Group<'a>)> = group_rows(rows, opts.all)
        .into_iter()
        .filter(|g| opts.sweep.as_ref().is_none_or(|s| &g.sweep == s))
        .map(|g| {
            let v = g.stat(&sort, split).map(|s| s.mean).filter(|v| !v.is_nan());
            (v, g)
        })
        .collect();
    if !keyed.is_empty() && keyed.iter().all(|(v, _)| v.is_none()) && !rows.is_empty() {
        let known: std::collections::BTreeSet<String> = keyed
            .iter()
            .flat_map(|(_, g)| g.metric_keys(split))
            .map(|k| k.to_string())
            .collect();
        if !known.is_empty() {
            bail!(
                "--sort {}: no job has this metric (known: {})",
                opts.sort,
                known.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
    }
    keyed.sort_by(|(va, ga), (vb, gb)| {
        let by_value = match (va, vb) {
            (Some(a), Some(b)) => {
                let o = a.total_cmp(b);
                if opts.asc {
                    o
                } else {
                    o.reverse()
                }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        by_value
            .then_with(|| ga.label.cmp(&gb.label))
            .then_with(|| ga.runs[0].job_id.cmp(&gb.runs[0].job_id))
    });
    if let Some(n) = opts.top {
        keyed.truncate(n);
    }
    Ok(keyed.into_iter().map(|(_, group)| group).collect())
}

/// Renders the leaderboard of `rows` (from [`Store::report_rows`]) without per-image results:
/// means, spreads and t intervals over seeds, no bootstrap.
pub fn render(rows: &[JobRow], opts: &ReportOptions) -> Result<String> {
    render_with(rows, &Evidence::default(), opts)
}

/// A ranked leaderboard with everything its renderings show.
pub(crate) struct Board<'a> {
    pub groups: Vec<Group<'a>>,
    pub columns: Vec<(String, MetricKey)>,
    /// The sort metric: its confidence interval and the bootstrap are about it.
    pub sort: MetricKey,
    pub significance: Option<Significance>,
    pub images: Vec<Option<ImageTally>>,
    /// The per-image note, chosen over every row (also those `top` cuts).
    pub image_note: Option<image_note::ImageNote>,
}

impl Board<'_> {
    /// The sort metric's summary (n, mean, std, t interval) of group `i`.
    pub fn summary(&self, i: usize, split: Option<&str>) -> Option<crate::stats::Summary> {
        let stat = self.groups[i].stat(&self.sort, split)?;
        crate::stats::summarize(&stat.values)
    }

    pub fn test(&self, i: usize) -> Option<&significance::RowTest> {
        self.significance.as_ref()?.rows[i].as_ref()
    }
}

/// [`render`] with the jobs' per-image results: adds the bootstrap's "≈ best" and P(best).
/// Rows of other sweeps than `opts.sweep` (when given) are left out.
pub fn render_with(rows: &[JobRow], evidence: &Evidence, opts: &ReportOptions) -> Result<String> {
    let board = board(rows, evidence, opts)?;
    Ok(match opts.format {
        Format::Table => table::text(&board, opts),
        Format::Markdown => table::markdown(&board, opts),
        Format::Csv => table::csv(&board, opts),
        Format::Json => table::json(&board, opts)?,
    })
}

/// Ranks the rows (of `opts.sweep` when given) and tests them against the best.
pub(crate) fn board<'a>(
    rows: &'a [JobRow],
    evidence: &Evidence,
    opts: &ReportOptions,
) -> Result<Board<'a>> {
    // Every row is tested, not only the `top` shown: cutting the table changes no verdict.
    let all_rows = ReportOptions {
        top: None,
        ..opts.clone()
    };
    let mut groups = rank(rows, &all_rows)?;
    let sort = MetricKey::parse_in(&sort_name(opts, rows), rows)?;
    let split = opts.split.as_deref().unwrap_or("val");
    let mut significance = test_groups(&groups, &sort, split, evidence, !opts.asc)?;
    let mut images: Vec<_> = groups.iter().map(|g| evidence.tally(g, split)).collect();
    let image_note = image_note::choose(&groups, &images, significance.as_ref());
    if let Some(n) = opts.top {
        groups.truncate(n);
        images.truncate(n);
        if let Some(s) = significance.as_mut() {
            s.rows.truncate(n);
        }
    }
    Ok(Board {
        columns: columns(opts, rows)?,
        groups,
        sort,
        significance,
        images,
        image_note,
    })
}

/// The study's columns (with command jobs among the rows: those some job reported, then
/// the other summary metrics the programs reported), then those asked for.
fn columns(opts: &ReportOptions, rows: &[JobRow]) -> Result<Vec<(String, MetricKey)>> {
    let mut columns: Vec<(String, MetricKey)> = DEFAULT_COLUMNS
        .iter()
        .map(|(h, m)| (h.to_string(), MetricKey::parse(m).expect("valid")))
        .collect();
    let summaries = |r: &'_ JobRow| -> Vec<String> {
        r.metrics
            .iter()
            .filter(|m| m.class.is_none() && m.split == "val")
            .map(|m| m.name.clone())
            .collect()
    };
    let programs: Vec<&JobRow> = rows
        .iter()
        .filter(|r| r.spec().is_ok_and(|s| s.command().is_some()))
        .collect();
    if !programs.is_empty() {
        let reported: Vec<String> = rows.iter().flat_map(summaries).collect();
        let has = |name: &str| reported.iter().any(|n| n.eq_ignore_ascii_case(name));
        columns.retain(|(_, k)| has(&k.name));
        for name in programs.into_iter().flat_map(summaries) {
            if !columns
                .iter()
                .any(|(_, k)| k.name.eq_ignore_ascii_case(&name))
            {
                let key = MetricKey::parse(&name)?;
                columns.push((name, key));
            }
        }
    }
    for c in &opts.columns {
        let key = MetricKey::parse_in(c, rows)?;
        if !columns.iter().any(|(_, k)| {
            k.name.eq_ignore_ascii_case(&key.name) && k.class == key.class && k.split == key.split
        }) {
            columns.push((c.trim().to_string(), key));
        }
    }
    Ok(columns)
}

/// Reads the database and renders (the `sweep report` command).
pub async fn report(store: &dyn Store, opts: &ReportOptions) -> Result<String> {
    let rows = store.report_rows(opts.sweep.as_deref()).await?;
    let evidence = Evidence::load(store, &rows).await?;
    let mut out = render_with(&rows, &evidence, opts)?;
    if let Some(name) = &opts.sweep {
        out += &search_section(store, name).await?;
    }
    Ok(out)
}

/// Below a search's leaderboard: where it stands and whether its early rungs rank trials as
/// their final values do.
async fn search_section(store: &dyn Store, name: &str) -> Result<String> {
    let Some(id) = store.sweep_id(name).await? else {
        return Ok(String::new());
    };
    let log = store.search_log(id).await?;
    let Some(summary) = replay::summary(name, &log) else {
        return Ok(String::new());
    };
    let mut out = format!("\n{summary}\n");
    for line in replay::rung_correlations(&log) {
        out += &format!("  {line}\n");
    }
    let metric = log
        .state()
        .policy()
        .map(|p| p.goal.key())
        .unwrap_or_default();
    if let Some(table) = stopped::stopped_table(&log, &metric) {
        out += &format!("{table}\n");
    }
    out += &format!("  each decision with its evidence: `sweep replay {name}`\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_keys_parse() {
        assert_eq!(
            MetricKey::parse("Dice.1").unwrap(),
            MetricKey {
                name: "Dice".into(),
                class: Some(1),
                split: None,
            }
        );
        let wait = MetricKey::parse("train:data_wait").unwrap();
        assert_eq!(wait.split.as_deref(), Some("train"));
        assert_eq!(wait.name, "data_wait");
        assert_eq!(wait.to_string(), "train:data_wait");
        assert!(MetricKey::parse("train:").is_err());
        assert_eq!(MetricKey::parse("mAccuracy").unwrap().name, "mAcc");
        assert_eq!(MetricKey::parse("mDice").unwrap().class, None);
        assert!(MetricKey::parse("  ").is_err());
    }

    #[test]
    fn sample_std_by_hand() {
        // values 70, 72, 77: mean 73, deviations -3, -1, 4 -> squares 9 + 1 + 16 = 26, /2 = 13.
        let s = Stat::of(vec![70.0, 72.0, 77.0]).unwrap();
        assert_eq!(s.mean, 73.0);
        assert!((s.std.unwrap() - 13f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.display(), "73.00 ± 3.61");
        assert_eq!(Stat::of(vec![65.436]).unwrap().display(), "65.44");
        assert!(Stat::of(vec![]).is_none());
    }
}
