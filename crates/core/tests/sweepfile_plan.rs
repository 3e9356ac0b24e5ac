//! Sweep expansion: grid, include, exclude, seeds, dedupe, order, --set, stages, and the
//! shipped sweep files.

use crate::util::{sweep_file, workspace_root};
use std::collections::HashSet;
use std::path::Path;
use sweep_core::job::{Head, LossKind, LossSpec};
use sweep_core::sweepfile::{load, parse, PlannedJob, SweepSpec};

fn spec(text: &str, sets: &[&str]) -> SweepSpec {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    parse(Path::new("sweeps/t.yaml"), text, &sets).unwrap_or_else(|e| panic!("{e}"))
}

fn plan(text: &str) -> Vec<PlannedJob> {
    spec(text, &[]).plan().unwrap()
}

fn varied(job: &PlannedJob) -> Vec<(&str, &str)> {
    job.varied
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

const GRID3: &str = "name: t
base: {iters: 10}
grid:
  crop: [256, 288, 320]
  model.head: [fcn, deeplabv3, pspnet]
  loss: [ce, dice, focal]
";

#[test]
fn grid_include_exclude_seeds_count() {
    // 27 grid points - 3 (crop 288 + focal, any head) + 1 include, x 3 seeds = 75
    let text = format!(
        "{GRID3}include:\n  - {{crop: 304, model.head: pspnet, loss: dice}}\nexclude:\n  - {{crop: 288, loss: focal}}\nseeds: [0, 1, 2]\n"
    );
    let jobs = plan(&text);
    assert_eq!(jobs.len(), (27 - 3 + 1) * 3);
    let hashes: HashSet<_> = jobs.iter().map(|j| &j.hash).collect();
    assert_eq!(hashes.len(), jobs.len());
    assert!(!jobs.iter().any(|j| j.config.train().unwrap().crop == 288
        && j.config.train().unwrap().loss == LossSpec::Name(LossKind::Focal)));
    assert_eq!(
        jobs.iter()
            .filter(|j| j.config.train().unwrap().crop == 304)
            .count(),
        3
    );
    for seed in 0..3 {
        assert_eq!(
            jobs.iter()
                .filter(|j| j.config.train().unwrap().seed == seed)
                .count(),
            25
        );
    }
    // seed-major: every config of seed 0 first
    assert!(jobs[..25]
        .iter()
        .all(|j| j.config.train().unwrap().seed == 0));
    assert!(jobs[25..50]
        .iter()
        .all(|j| j.config.train().unwrap().seed == 1));
    assert!(jobs.iter().all(|j| j.config.train().unwrap().iters == 10));
}

#[test]
fn grid_order_first_key_slowest() {
    let jobs = plan("name: t\ngrid:\n  crop: [256, 320]\n  model.head: [fcn, pspnet]\n");
    let got: Vec<(usize, Head)> = jobs
        .iter()
        .map(|j| {
            (
                j.config.train().unwrap().crop,
                j.config.train().unwrap().model.head,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (256, Head::Fcn),
            (256, Head::Pspnet),
            (320, Head::Fcn),
            (320, Head::Pspnet)
        ]
    );
    assert_eq!(
        varied(&jobs[1]),
        vec![("crop", "256"), ("model.head", "pspnet")]
    );
    assert_eq!(jobs[1].label, "UNet + PSPNet, crop 256, 200 it, ce");
    // key order as written, not alphabetical
    let jobs = plan("name: t\ngrid:\n  model.head: [fcn, pspnet]\n  crop: [256, 320]\n");
    assert_eq!(jobs[1].config.train().unwrap().crop, 320);
    assert_eq!(jobs[1].config.train().unwrap().model.head, Head::Fcn);
    assert_eq!(
        varied(&jobs[1]),
        vec![("model.head", "fcn"), ("crop", "320")]
    );
}

#[test]
fn duplicates_are_kept_once() {
    // an include equal to a grid point, spelt with an alias and a nested mapping
    let text = format!("{GRID3}include:\n  - {{crop: 320, model: {{head: aspp}}, loss: dice}}\n");
    let jobs = plan(&text);
    assert_eq!(jobs.len(), 27);
    // repeated seeds, repeated grid values
    let jobs = plan("name: t\ngrid:\n  crop: [256, 256]\nseeds: [3, 3]\n");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].config.train().unwrap().seed, 3);
    // the first occurrence wins (its position in the plan)
    let jobs =
        plan("name: t\ninclude:\n  - {crop: 320}\n  - {crop: 256}\n  - {crop: 320, iters: 200}\n");
    let crops: Vec<usize> = jobs
        .iter()
        .map(|j| j.config.train().unwrap().crop)
        .collect();
    assert_eq!(crops, vec![320, 256]);
}

#[test]
fn exclude_matches_resolved_values() {
    // `aspp` is deeplabv3; exclude keys may be nested or dotted; includes are excluded too
    let text = "name: t\ngrid:\n  model.head: [fcn, deeplabv3]\n  crop: [256, 320]\ninclude:\n  - {model.head: deeplabv3, crop: 288}\nexclude:\n  - {model: {head: aspp}, crop: 256}\n  - {crop: 288}\n";
    let jobs = plan(text);
    let got: Vec<(Head, usize)> = jobs
        .iter()
        .map(|j| {
            (
                j.config.train().unwrap().model.head,
                j.config.train().unwrap().crop,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(Head::Fcn, 256), (Head::Fcn, 320), (Head::Deeplabv3, 320)]
    );
    // an exclude on the seed removes one seed of one config only
    let jobs = plan(
        "name: t\ngrid:\n  crop: [256, 320]\nseeds: [0, 1]\nexclude:\n  - {crop: 320, seed: 1}\n",
    );
    assert_eq!(jobs.len(), 3);
    assert!(!jobs
        .iter()
        .any(|j| j.config.train().unwrap().crop == 320 && j.config.train().unwrap().seed == 1));
}

#[test]
fn no_grid_no_include_is_one_job_of_base() {
    let s = spec("name: solo\nbase: {crop: 128}\n", &[]);
    let jobs = s.plan().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].config.train().unwrap().crop, 128);
    assert!(jobs[0].varied.is_empty());
    assert_eq!(s.name, "solo");
    assert_eq!(s.max_attempts, sweep_core::sweepfile::DEFAULT_MAX_ATTEMPTS);
    // an empty grid mapping is no grid
    assert_eq!(plan("name: t\ngrid: {}\ninclude: [{crop: 64}]\n").len(), 1);
}

#[test]
fn data_is_merged_into_every_job_and_can_be_overridden() {
    let text = "name: t
data: {dataset: dme, root: data/dme, scale: [128, 128], split: {subjects: {train: [1, 2, 3, 4, 5, 6, 7, 8], val: [9, 10]}}}
base: {crop: 64}
include:
  - {data.scale: [256, 256]}
  - {data: {flip: 0.5}}
";
    let jobs = plan(text);
    assert_eq!(jobs[0].config.train().unwrap().data.scale, [256, 256]);
    assert_eq!(jobs[1].config.train().unwrap().data.scale, [128, 128]);
    assert_eq!(jobs[1].config.train().unwrap().data.flip, 0.5);
    for j in &jobs {
        assert_eq!(
            j.config.train().unwrap().data.split,
            sweep_core::job::SplitConfig::Subjects {
                train: (1..=8).collect(),
                val: vec![9, 10]
            }
        );
        assert_eq!(j.config.train().unwrap().data.root, Path::new("data/dme"));
    }
    assert_eq!(
        varied(&jobs[1]),
        vec![("data.scale", "[128, 128]"), ("data.flip", "0.5")]
    );
    assert_eq!(
        jobs[1].label,
        "UNet + FCN, crop 64, 200 it, ce, data.scale=[128, 128], data.flip=0.5"
    );
}

#[test]
fn mapping_values_merge_unless_the_type_changes() {
    let jobs = plan(
        "name: t\nbase:\n  optimizer: {type: sgd, lr: 0.02, momentum: 0.8}\n  model: {head: pspnet, base_channels: 8}\ngrid:\n  optimizer: [{lr: 0.05}, {type: adamw, lr: 0.001}]\n  model: [{aux_head: false}]\n",
    );
    use sweep_core::job::OptimizerConfig;
    assert_eq!(
        jobs[0].config.train().unwrap().optimizer,
        OptimizerConfig::Sgd {
            lr: 0.05,
            momentum: 0.8,
            weight_decay: 5e-4
        }
    );
    assert!(
        matches!(jobs[1].config.train().unwrap().optimizer, OptimizerConfig::Adamw { lr, .. } if lr == 0.001)
    );
    for j in &jobs {
        assert_eq!(j.config.train().unwrap().model.head, Head::Pspnet);
        assert_eq!(j.config.train().unwrap().model.base_channels, 8);
        assert!(!j.config.train().unwrap().model.aux_head);
    }
}

#[test]
fn set_overrides() {
    let text = "name: t\nbase: {iters: 200}\ngrid:\n  crop: [256, 288, 320]\n  model.head: [fcn, pspnet]\ninclude:\n  - {crop: 64}\n";
    let s = spec(
        text,
        &[
            "base.iters=20",
            "name=quick2",
            "grid.crop=[256,320]",
            "seeds=[0,1]",
            "grid.model.head=[deeplabv3]",
            "include.0.crop=96",
            "max_attempts=5",
        ],
    );
    assert_eq!(s.name, "quick2");
    assert_eq!(s.max_attempts, 5);
    assert_eq!(s.overrides.len(), 7);
    let jobs = s.plan().unwrap();
    let got: Vec<(usize, Head, u64)> = jobs
        .iter()
        .map(|j| {
            (
                j.config.train().unwrap().crop,
                j.config.train().unwrap().model.head,
                j.config.train().unwrap().seed,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (256, Head::Deeplabv3, 0),
            (320, Head::Deeplabv3, 0),
            (96, Head::Fcn, 0),
            (256, Head::Deeplabv3, 1),
            (320, Head::Deeplabv3, 1),
            (96, Head::Fcn, 1)
        ]
    );
    assert!(jobs.iter().all(|j| j.config.train().unwrap().iters == 20));
    // the effective sweep shows the overrides; the source stays as read
    assert!(s.effective_yaml().contains("quick2"));
    assert_eq!(s.source, text);
    // a new nested key, a mapping merged, a whole grid replaced by a mapping
    let s = spec(
        text,
        &[
            "base.model.base_channels=8",
            "base.optimizer={type: sgd, lr: 0.1}",
            "grid={loss: [dice]}",
        ],
    );
    let jobs = s.plan().unwrap();
    assert_eq!(jobs.len(), 3 * 2 + 1);
    assert!(jobs
        .iter()
        .all(|j| j.config.train().unwrap().model.base_channels == 8
            && j.config.train().unwrap().optimizer.lr() == 0.1));
    // the grid gained a `loss` key; the include entry is not a grid point
    assert!(jobs[..6]
        .iter()
        .all(|j| j.config.train().unwrap().loss == LossSpec::Name(LossKind::Dice)));
    assert_eq!(
        jobs[6].config.train().unwrap().loss,
        LossSpec::Name(LossKind::Ce)
    );
    // later --set wins
    let s = spec(text, &["base.iters=20", "base.iters=30"]);
    assert!(s
        .plan()
        .unwrap()
        .iter()
        .all(|j| j.config.train().unwrap().iters == 30));
}

#[test]
fn stages_come_first_and_dependants_point_at_them() {
    let text = "name: t
data: {dataset: dme, root: data/dme}
base:
  init: {from: pretrain-chase}
  crop: 256
stages:
  finetune-chase: {init: {from: pretrain-chase}, data: {dataset: chase_db1, root: data/chase_db1}, iters: 50}
  pretrain-chase: {data: {dataset: chase_db1, root: data/chase_db1}, crop: 128}
grid:
  model.head: [fcn, pspnet]
";
    let jobs = plan(text);
    assert_eq!(jobs.len(), 4);
    assert_eq!(jobs[0].stage.as_deref(), Some("pretrain-chase"));
    assert_eq!(jobs[1].stage.as_deref(), Some("finetune-chase"));
    let pre = &jobs[0];
    assert_eq!(
        pre.config.train().unwrap().data.dataset.to_string(),
        "chase_db1"
    );
    assert_eq!(pre.config.train().unwrap().crop, 128);
    assert!(
        pre.config.train().unwrap().init.is_none(),
        "a stage does not inherit base.init"
    );
    assert!(pre.depends_on.is_none());
    assert_eq!(
        pre.label,
        "pretrain-chase: UNet + FCN, crop 128, 200 it, ce"
    );
    assert_eq!(jobs[1].depends_on.as_ref(), Some(&pre.hash));
    for j in &jobs[2..] {
        assert_eq!(j.stage, None);
        assert_eq!(j.config.train().unwrap().data.dataset.to_string(), "dme");
        assert_eq!(j.depends_on.as_ref(), Some(&pre.hash));
    }
}

fn study_labels() -> Vec<&'static str> {
    vec![
        "UNet + FCN, crop 256, 200 it, ce",
        "UNet + DeepLabV3, crop 256, 200 it, ce",
        "UNet + FCN, crop 320, 200 it, ce",
        "UNet + FCN, crop 288, 200 it, ce",
        "UNet + FCN, crop 256, 150 it, ce",
        "UNet + FCN, crop 256, 300 it, ce",
        "UNet + FCN, crop 320, 200 it, focal",
        "UNet + FCN, crop 320, 200 it, dice",
        "UNet + DeepLabV3, crop 320, 200 it, dice",
    ]
}

#[test]
fn finetune_yaml_is_the_studys_nine_rows() {
    let s = load(&sweep_file("finetune"), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "finetune");
    assert_eq!(s.max_attempts, 3);
    assert!(s.warnings.is_empty());
    let jobs = s.plan().unwrap();
    // The nine rows for seed 0 (the study's runs, their hashes unchanged), then seeds 1, 2.
    let labels: Vec<&str> = jobs.iter().map(|j| j.label.as_str()).collect();
    assert_eq!(labels, study_labels().repeat(3));
    assert_eq!(
        varied(&jobs[8]),
        vec![
            ("model.head", "deeplabv3"),
            ("crop", "320"),
            ("iters", "200"),
            ("loss", "dice"),
            ("seed", "0")
        ]
    );
    for (i, j) in jobs.iter().enumerate() {
        let c = j.config.train().unwrap();
        assert_eq!(c.data.dataset.to_string(), "dme");
        assert_eq!(c.data.split, sweep_core::job::SplitConfig::Study);
        assert_eq!(c.data.scale, [512, 512]);
        assert_eq!(c.data.cat_max_ratio, 0.75);
        assert_eq!(c.batch, 2);
        assert_eq!(c.seed, (i / 9) as u64);
        assert_eq!(c.model.base_channels, 64);
        assert!(c.model.aux_head);
        assert_eq!(c.schedule.horizon, Some(40000));
        assert_eq!(c.schedule.min_lr, 1e-4);
        assert_eq!(
            (c.eval.mode.to_string().as_str(), c.eval.crop, c.eval.stride),
            ("slide", 256, 170)
        );
        assert_eq!(
            c.optimizer,
            sweep_core::job::OptimizerConfig::Sgd {
                lr: 0.01,
                momentum: 0.9,
                weight_decay: 5e-4
            }
        );
        assert!(j.stage.is_none());
        // 150 -> 200 -> 300 iterations of crop 256 with CE share their training.
        let fcn_256_ce = j.label.starts_with("UNet + FCN, crop 256,") && j.label.ends_with(", ce");
        let continues = fcn_256_ce && j.config.train().unwrap().iters > 150;
        assert_eq!(j.continues, continues, "{}", j.label);
        assert_eq!(j.depends_on.is_some(), continues, "{}", j.label);
    }
}

#[test]
fn grid_yaml_is_81_jobs_covering_the_study() {
    let s = load(&sweep_file("grid"), &[]).unwrap_or_else(|e| panic!("{e}"));
    let jobs = s.plan().unwrap();
    assert_eq!(jobs.len(), 81);
    let labels: HashSet<&str> = jobs.iter().map(|j| j.label.as_str()).collect();
    assert_eq!(labels.len(), 81);
    for l in study_labels() {
        assert!(labels.contains(l), "{l}");
    }
    // the same config as finetune.yaml's rows: same hashes
    let fine = load(&sweep_file("finetune"), &[]).unwrap().plan().unwrap();
    let grid_hashes: HashSet<&str> = jobs.iter().map(|j| j.hash.as_str()).collect();
    for j in &fine[..9] {
        assert!(grid_hashes.contains(j.hash.as_str()), "{}", j.label);
    }
    let with_seeds = load(&sweep_file("grid"), &["seeds=[0,1,2]".into()]).unwrap();
    assert_eq!(with_seeds.plan().unwrap().len(), 243);
}

#[test]
fn quick_yaml_is_a_small_cpu_demo() {
    let s = load(&sweep_file("quick"), &[]).unwrap_or_else(|e| panic!("{e}"));
    let jobs = s.plan().unwrap();
    let labels: Vec<&str> = jobs.iter().map(|j| j.label.as_str()).collect();
    assert_eq!(
        labels,
        vec![
            "UNet + FCN, crop 64, 300 it, ce",
            "UNet + FCN, crop 64, 300 it, ce+3*dice",
            "UNet + DeepLabV3, crop 64, 300 it, ce",
            "UNet + DeepLabV3, crop 64, 300 it, ce+3*dice",
        ]
    );
    for j in &jobs {
        let c = j.config.train().unwrap();
        assert_eq!(c.model.base_channels, 8);
        assert_eq!(c.data.scale, [128, 128]);
        assert_eq!(c.crop, 64);
        assert_eq!(c.eval.crop, 128);
        assert_eq!(c.batch, 4);
    }
    assert_eq!(
        varied(&jobs[1]),
        vec![
            ("model.head", "fcn"),
            (
                "loss",
                "[{type: ce, weight: 1, class_weight: [1, 50]}, {type: dice, weight: 3}]"
            )
        ]
    );
    let smoke = load(&sweep_file("quick"), &["base.iters=5".into()]).unwrap();
    assert!(smoke
        .plan()
        .unwrap()
        .iter()
        .all(|j| j.config.train().unwrap().iters == 5));
}

#[test]
fn every_shipped_sweep_loads() {
    let mut n = 0;
    for entry in std::fs::read_dir(workspace_root().join("sweeps")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let s = load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            // A search plans its stages only (its trials are proposed as it runs).
            assert!(!s.plan().unwrap().is_empty() || s.search.is_some());
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
            n += 1;
        }
    }
    assert!(n >= 3);
}

/// A changed stage makes new jobs of everything that starts from it (directly or through
/// another stage), and only of those.
#[test]
fn changing_a_stage_changes_its_dependants_identity() {
    let text = |pre_iters: usize| {
        format!(
            "name: t
data: {{dataset: dme, root: data/dme}}
stages:
  pre: {{data: {{dataset: chase_db1, root: data/chase_db1}}, iters: {pre_iters}}}
  mid: {{init: {{from: pre}}, iters: 50}}
include:
  - {{init: {{from: mid}}}}
  - {{model.head: pspnet}}
"
        )
    };
    let (a, b) = (plan(&text(100)), plan(&text(200)));
    let by_label = |jobs: &[PlannedJob], l: &str| {
        jobs.iter()
            .find(|j| j.label.starts_with(l))
            .unwrap_or_else(|| panic!("no job {l}"))
            .clone()
    };
    let (mid_a, mid_b) = (by_label(&a, "mid"), by_label(&b, "mid"));
    // mid's own config did not change, its starting point did.
    assert_eq!(mid_a.config, mid_b.config);
    assert_ne!(mid_a.hash, mid_b.hash);
    assert_eq!(mid_b.depends_on.as_ref(), Some(&by_label(&b, "pre").hash));
    let fine = |jobs: &[PlannedJob]| {
        jobs.iter()
            .find(|j| j.stage.is_none() && j.depends_on.is_some())
            .unwrap()
            .clone()
    };
    assert_ne!(fine(&a).hash, fine(&b).hash);
    assert_eq!(fine(&b).depends_on.as_ref(), Some(&mid_b.hash));
    // A job that starts from scratch keeps its identity.
    let scratch = |jobs: &[PlannedJob]| {
        jobs.iter()
            .find(|j| j.stage.is_none() && j.depends_on.is_none())
            .unwrap()
            .hash
            .clone()
    };
    assert_eq!(scratch(&a), scratch(&b));
    // The same file twice: the same identities (resume finds its jobs).
    let again = plan(&text(100));
    let hashes = |jobs: &[PlannedJob]| jobs.iter().map(|j| j.hash.clone()).collect::<Vec<_>>();
    assert_eq!(hashes(&a), hashes(&again));
}

#[test]
fn runs_is_relative_to_the_file_and_not_part_of_job_identity() {
    let with = spec("name: r\nruns: shared/runs\nbase: {crop: 128}\n", &[]);
    let without = spec("name: r\nbase: {crop: 128}\n", &[]);
    let dir = with.path.parent().unwrap().to_path_buf();
    assert_eq!(with.runs, Some(dir.join("shared/runs")));
    assert_eq!(without.runs, None);
    assert_eq!(
        with.plan().unwrap()[0].hash,
        without.plan().unwrap()[0].hash
    );
    let absolute = spec("name: r\nruns: /nfs/runs\n", &[]);
    assert_eq!(absolute.runs, Some(std::path::PathBuf::from("/nfs/runs")));
}
