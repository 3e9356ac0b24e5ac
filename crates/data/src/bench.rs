//! `sweep bench data`: a generated nnU-Net folder of many scans, then what `sweep` does with
//! it, each measured in its own process so that peak memory is that step's own: the data
//! check (images/s), `Dataset::open`, and training at batch 2 on it beside the same job on a
//! 100-scan set (data wait, peak memory). nnU-Net's own integrity check is the baseline of
//! the check's ratio where `nnunetv2` is installed.

use crate::synthetic::Synthetic;
use crate::Dataset;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use sweep_core::job::{DataConfig, FoldBy, SplitConfig};

pub struct BenchData {
    pub cases: usize,
    pub size: u32,
    /// Training iterations of each job.
    pub steps: usize,
    /// Where the generated sets go (kept); a temporary folder when `None`.
    pub dir: PathBuf,
    /// The `sweep` binary the children run.
    pub exe: PathBuf,
}

/// One child process: its wall time, peak resident memory and standard output.
struct Child {
    secs: f64,
    peak_mib: f64,
    stdout: String,
}

/// Runs `cmd` to its end (stderr to `log`); its peak memory, and that of the processes it
/// waited for (a run's job processes), from `wait4`.
fn measured(mut cmd: Command, log: &Path) -> Result<Child> {
    let t = Instant::now();
    let log_file =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let mut pipe = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut s).map(|_| s)
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 writes status and usage of our own child
    // (reaped here, so `child` is never waited on again).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = t.elapsed().as_secs_f64();
    if r < 0 {
        bail!("waiting for {pid}: {}", std::io::Error::last_os_error());
    }
    let stdout = reader.join().expect("reader thread").unwrap_or_default();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!(
            "{cmd:?} failed (wait status {status}); its log: {}",
            log.display()
        );
    }
    Ok(Child {
        secs,
        peak_mib: usage.ru_maxrss as f64 / 1024.0,
        stdout,
    })
}

/// The CV fold a benchmark job trains on (the generated sets have no split of their own).
fn fold0() -> SplitConfig {
    SplitConfig::Fold {
        folds: 5,
        fold: 0,
        by: FoldBy::Subject,
    }
}

fn synthetic(cases: usize, size: u32) -> Synthetic {
    Synthetic {
        cases,
        size,
        classes: vec!["IRF".into(), "SRF".into(), "PED".into()],
        per_group: 10,
        seed: 0,
    }
}

/// A sweep file of one job on `root`: batch 2, `steps` iterations, a tiny UNet, the final
/// evaluation on 20 validation scans (what is measured is the training loop).
fn job_file(dir: &Path, name: &str, root: &Path, size: u32, steps: usize) -> Result<PathBuf> {
    let file = dir.join(format!("{name}.yaml"));
    let crop = (size as usize / 2 / 16 * 16).max(16);
    std::fs::write(
        &file,
        format!(
            "name: {name}\ndata: {{root: {}, scale: [{size}, {size}], limit_val: 20, split: {{fold: {{folds: 5, fold: 0}}}}}}\n\
             base: {{model: {{base_channels: 8, aux_head: false}}, crop: {crop}, batch: 2, iters: {steps}, \
             checkpoint_every: 0, eval: {{mode: whole}}}}\n",
            root.display()
        ),
    )?;
    Ok(file)
}

/// `train:data_wait` and `train:img_per_s` of the one job in `db`.
fn train_numbers(exe: &Path, db: &Path, log: &Path) -> Result<(f64, f64)> {
    let mut cmd = Command::new(exe);
    cmd.args(["report", "--db"]).arg(db).args([
        "--format",
        "json",
        "--split",
        "train",
        "--sort",
        "img_per_s",
    ]);
    let out = measured(cmd, log)?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).context("reading the report")?;
    let m = &v[0]["metrics"];
    let get = |k: &str| m[k]["mean"].as_f64().unwrap_or(f64::NAN);
    Ok((get("data_wait"), get("img_per_s")))
}

struct Trained {
    peak_mib: f64,
    data_wait: f64,
    img_per_s: f64,
}

fn train(opts: &BenchData, name: &str, root: &Path) -> Result<Trained> {
    let file = job_file(&opts.dir, name, root, opts.size, opts.steps)?;
    let db = opts.dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&db);
    let runs = opts.dir.join(format!("{name}-runs"));
    let _ = std::fs::remove_dir_all(&runs);
    let mut cmd = Command::new(&opts.exe);
    cmd.arg("run")
        .arg(&file)
        .arg("--db")
        .arg(&db)
        .arg("--runs")
        .arg(&runs)
        .arg("--no-report");
    let run = measured(cmd, &opts.dir.join(format!("{name}.log")))?;
    let (data_wait, img_per_s) = train_numbers(&opts.exe, &db, &opts.dir.join("report.log"))?;
    Ok(Trained {
        peak_mib: run.peak_mib,
        data_wait,
        img_per_s,
    })
}

/// nnU-Net's own integrity check on the folder, when `nnunetv2` imports: its seconds.
fn nnunet_check(root: &Path) -> Option<f64> {
    let script = "import sys, time\n\
        from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity\n\
        t = time.time(); verify_dataset_integrity(sys.argv[1], 2); print(time.time() - t)\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(root)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Runs the benchmark; prints progress on stderr and returns the table.
pub fn run(opts: &BenchData) -> Result<String> {
    std::fs::create_dir_all(&opts.dir)?;
    let (big, small) = (opts.dir.join("large"), opts.dir.join("small"));
    for (root, cases) in [(&big, opts.cases), (&small, 100)] {
        if !sweep_core::dataset::DataSet::is_described(root) {
            let t = Instant::now();
            synthetic(cases, opts.size).write(root)?;
            eprintln!(
                "generated {cases} scans of {0}x{0} in {1:.1} s: {2}",
                opts.size,
                t.elapsed().as_secs_f64(),
                root.display()
            );
        }
    }
    let mut out = String::new();
    let row = |out: &mut String, what: &str, value: String| {
        out.push_str(&format!("{what:<44} {value}\n"))
    };
    eprintln!("data check of {} scans ...", opts.cases);
    let mut cmd = Command::new(&opts.exe);
    cmd.args(["data", "check", "--format", "json"]).arg(&big);
    let check = measured(cmd, &opts.dir.join("check.log"))?;
    let rate = opts.cases as f64 / check.secs;
    row(
        &mut out,
        "data check: scans/s (all cores)",
        format!("{rate:.0} ({:.1} s)", check.secs),
    );
    row(
        &mut out,
        "data check: peak memory",
        format!("{:.0} MiB", check.peak_mib),
    );
    match nnunet_check(&big) {
        Some(secs) => row(
            &mut out,
            "nnU-Net verify_dataset_integrity",
            format!("{secs:.1} s: sweep / nnU-Net time {:.2}", check.secs / secs),
        ),
        None => row(
            &mut out,
            "nnU-Net verify_dataset_integrity",
            "not run: nnunetv2 does not import here".into(),
        ),
    }
    let t = Instant::now();
    let ds = Dataset::open(&DataConfig {
        root: big.clone(),
        split: fold0(),
        ..DataConfig::default()
    })?;
    let where_ = if ds.train.loaded().is_some() {
        "in memory"
    } else {
        "read from disk"
    };
    row(
        &mut out,
        "Dataset::open (5-fold CV, fold 0)",
        format!(
            "{:.2} s, {} train scans {where_}",
            t.elapsed().as_secs_f64(),
            ds.train.len()
        ),
    );
    drop(ds);
    eprintln!(
        "training {} steps on 100 scans, then on {} ...",
        opts.steps, opts.cases
    );
    let s = train(opts, "small", &small)?;
    let b = train(opts, "large", &big)?;
    for (name, t) in [("100 scans", &s), (&*format!("{} scans", opts.cases), &b)] {
        row(
            &mut out,
            &format!("train {name}: data wait, img/s"),
            format!(
                "{:.2} % of step time, {:.1} img/s",
                t.data_wait, t.img_per_s
            ),
        );
        row(
            &mut out,
            &format!("train {name}: peak memory"),
            format!("{:.0} MiB", t.peak_mib),
        );
    }
    let extra = (b.peak_mib - s.peak_mib).round() as i64;
    row(
        &mut out,
        "peak memory, large - small",
        format!("{extra:+} MiB"),
    );
    Ok(out)
}
