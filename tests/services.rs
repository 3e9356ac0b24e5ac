//! The test services' own scripts (scripts/services), driven with scripted clients so that
//! their races happen every time rather than once in a few runs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

/// A fake `scontrol` that answers its n-th call with the n-th of `states` (the last one
/// after that) and counts its calls in `calls`.
const FAKE_SCONTROL: &str = r#"#!/bin/sh
n=$(($(cat "$FAKE_DIR/calls" 2>/dev/null || echo 0) + 1)); echo $n >"$FAKE_DIR/calls"
state=$(echo $FAKE_STATES | tr ' ' '\n' | sed -n "${n}p;\$p" | head -n 1)
echo "JobId=7 JobName=wrap UserId=root(0) JobState=$state Reason=None"
"#;

/// Runs `scripts/services/slurm wait-job` on job 7 against the scripted states; returns its
/// output and how many times it read the job's state.
fn wait_job(states: &str, secs: u32) -> (Output, u32) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("scontrol");
    std::fs::write(&fake, FAKE_SCONTROL).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/services/slurm");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = std::process::Command::new(script)
        .args([
            "wait-job",
            &dir.path().display().to_string(),
            "7",
            &secs.to_string(),
        ])
        .env("PATH", path)
        .env("FAKE_DIR", dir.path())
        .env("FAKE_STATES", states)
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap_or_default();
    (out, calls.trim().parse().unwrap_or(0))
}

#[test]
fn a_probe_job_that_completes_between_two_polls_is_a_success() {
    // Running at the first read, completed at the second: the script read the state twice
    // per pass, so the second read of the first pass saw COMPLETED and called it a failure.
    let (out, calls) = wait_job("RUNNING COMPLETED", 30);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(calls, 2, "one read per pass: RUNNING, then COMPLETED");
}

#[test]
fn a_probe_job_that_fails_is_reported_with_its_state() {
    let (out, _) = wait_job("PENDING RUNNING FAILED", 30);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("job 7 did not complete") && stderr.contains("JobState=FAILED"),
        "{stderr}"
    );
}

#[test]
fn a_probe_job_that_never_ends_times_out() {
    let (out, calls) = wait_job("RUNNING", 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("job 7 not done after 2 s"), "{stderr}");
    // At least a second of polling (the shell counts whole seconds), every 0.2 s.
    assert!(
        calls >= 3,
        "it kept polling until the deadline: {calls} reads"
    );
}
