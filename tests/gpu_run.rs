//! `scripts/gpu-run`, the one call that the GPU machine's few minutes run: rehearsed here on
//! CPU at toy scale (`--rehearse`), every step and the report, so that a wrong flag or file
//! name is found before it costs GPU time; and its stop when the binaries cannot use a GPU.

use crate::util::{bin, stderr_of, Sandbox};
use std::path::Path;
use std::process::{Command, Output};

fn gpu_run(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(root.join("scripts/gpu-run"));
    cmd.args(args)
        .current_dir(root)
        .env("OUT", sb.path().join("out"))
        .env("WORK", sb.path().join("work"))
        .env("RUNS", sb.path().join("runs"))
        .env("SWEEP", bin())
        .env("RUST_LOG", "warn")
        .env_remove("SWEEP_DB");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("scripts/gpu-run starts")
}

fn read(sb: &Sandbox, file: &str) -> String {
    let path = sb.path().join("work").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_gpu_script_rehearses_every_step_on_cpu_and_reports_each() {
    let sb = Sandbox::new();
    let out = gpu_run(&sb, &["--rehearse"], &[("BUDGET", "900")]);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
    assert!(out.status.success(), "{log}");
    let steps: Vec<(String, String)> = read(&sb, "steps.tsv")
        .lines()
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            (cells[0].to_string(), cells[1].to_string())
        })
        .collect();
    let names: Vec<&str> = steps.iter().map(|(n, _)| n.as_str()).collect();
    let all = [
        "doctor",
        "bench",
        "bench-burn",
        "pergpu1",
        "pergpu4",
        "study",
        "predict",
        "command",
        "transfer",
    ];
    assert_eq!(names, all, "{log}");
    assert!(steps.iter().all(|(_, rc)| rc == "0"), "{steps:?}\n{log}");

    let report = read(&sb, "gpu-report.md");
    for part in [
        "rehearsed on CPU",
        "| 1 x 32 | fp32 |",
        "Where sweep's step time goes",
        "Baseline, burn's own conv / batch norm at 1 x 32",
        "| 1 | 2 of 2 |",
        "| 4 | 2 of 2 |",
        "4 of 4 jobs succeeded",
        "| UNet + DeepLabV3, crop 32, 2 it, dice | - |",
        "init=pretrain-chase",
    ] {
        assert!(
            report.contains(part),
            "no {part:?} in the report:\n{report}"
        );
    }
    // The study's results came back as a database and a report the dashboard can read.
    let study: serde_json::Value = serde_json::from_str(&read(&sb, "study-report.json")).unwrap();
    let runs: Vec<&serde_json::Value> = study
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row["runs"].as_array().unwrap())
        .collect();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    assert!(sb.path().join("work/study.db").exists());
    // What comes back from the GPU machine (at most 8 files): the report and one archive.
    let mut back: Vec<String> = std::fs::read_dir(sb.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    back.sort();
    assert_eq!(back, ["gpu-report.md", "gpu-run.tar.gz"]);
    assert_eq!(
        std::fs::read_to_string(sb.path().join("out/gpu-report.md")).unwrap(),
        report
    );
    let list = Command::new("tar")
        .arg("tzf")
        .arg(sb.path().join("out/gpu-run.tar.gz"))
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for file in ["./study.db", "./transfer.db", "./bench.json", "./steps.tsv"] {
        assert!(
            list.lines().any(|l| l == file),
            "no {file} in the archive:\n{list}"
        );
    }
}

#[test]
fn the_gpu_script_stops_at_once_when_the_binaries_see_no_gpu() {
    let sb = Sandbox::new();
    // No device visible, even on a machine that has one.
    let out = gpu_run(&sb, &[], &[("CUDA_VISIBLE_DEVICES", "")]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("cannot train on cuda; nothing else was run"),
        "{}",
        stderr_of(&out)
    );
    let doctor: serde_json::Value = serde_json::from_str(&read(&sb, "doctor.json")).unwrap();
    let problem = doctor["problem"].as_str().expect("a problem named");
    assert!(problem.contains("CUDA"), "{problem}");
    assert_eq!(
        read(&sb, "steps.tsv").lines().count(),
        1,
        "only the doctor ran"
    );
}
