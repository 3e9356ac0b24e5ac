//! Adaptive search across agents: four agents on one queue run a TPE + ASHA search on the
//! toy worker (analytic learning curves, no training) while one agent after another is
//! killed with SIGKILL. Exactly the planned trials run, no trial has two jobs, nothing starts
//! after its trial was stopped, nothing is left running, and `sweep replay` re-derives the
//! decision log the agents wrote. Once on SQLite, once on PostgreSQL.

use crate::util::{fresh_postgres, stderr_of, toy_worker, wait_child, OpenDb, Sandbox};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};
use sweep_core::job::JobStatus;
use sweep_core::search::Action;

const TRIALS: usize = 40;

fn search_file(sb: &Sandbox) -> PathBuf {
    sb.write_sweep(&format!(
        "name: kill-search
base: {{iters: 27, checkpoint_every: 3, schedule: {{horizon: 27}}}}
search:
  method: tpe
  trials: {TRIALS}
  parallel: 6
  seed: 11
  space:
    optimizer.lr: {{log_uniform: [1.0e-4, 1.0e-1]}}
    model.head: {{choice: [fcn, deeplabv3, pspnet]}}
    crop: {{int: [128, 512], step: 64}}
stop:
  rule: asha
  fidelity: {{key: iters, min: 3, max: 27, eta: 3}}
"
    ))
}

/// An agent of this search playing `node`, its job processes the toy worker at 120 ms per
/// iteration (so that kills land mid-job, and the search outlasts the five kills 1.5 s apart
/// with time to spare: at 60 ms it sometimes ended first); its log in `<sandbox>/<node>.log`.
fn agent(sb: &Sandbox, db: &str, node: &str) -> Child {
    let toy = toy_worker();
    let log = std::fs::File::create(sb.path().join(format!("{node}.log"))).unwrap();
    let runs = sb.path().join("runs");
    sb.command(&["agent", "--sweep", "kill-search", "--lease", "1.5"])
        .args([
            "--runs",
            runs.to_str().unwrap(),
            "--worker-exe",
            toy.to_str().unwrap(),
        ])
        .env("SWEEP_DB", db)
        .env("SWEEP_NODE", node)
        .env("SWEEP_TOY_ITER_MS", "120")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("agent starts")
}

/// Enqueues the search, runs it on four agents while killing one every 1.5 s, five times
/// (each killed agent is replaced), and checks what the database holds.
fn killed_agents_lose_and_repeat_nothing(db: &str) {
    let sb = Sandbox::new();
    let file = search_file(&sb);
    let out = sb
        .command(&["run", file.to_str().unwrap(), "--enqueue-only"])
        .env("SWEEP_DB", db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let mut agents: Vec<(String, Child)> = (0..4)
        .map(|i| {
            let node = format!("node-{i}");
            let child = agent(&sb, db, &node);
            (node, child)
        })
        .collect();
    for kill in 0..5 {
        std::thread::sleep(Duration::from_millis(1500));
        let victim = kill % agents.len();
        let (node, child) = &mut agents[victim];
        assert!(
            child.try_wait().unwrap().is_none(),
            "the search ended before kill {} of 5: make its jobs slower",
            kill + 1
        );
        child.kill().unwrap();
        child.wait().unwrap();
        let replacement = format!("{node}-after-kill-{kill}");
        let fresh = agent(&sb, db, &replacement);
        agents[victim] = (replacement, fresh);
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for (node, child) in &mut agents {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_secs()
            .max(1);
        let status = wait_child(child, left);
        assert!(
            status.success(),
            "agent {node}: {}",
            crate::util::agent_log(&sb, node)
        );
    }
    check_the_record(db, &sb);
}

fn check_the_record(db: &str, sb: &Sandbox) {
    let store = OpenDb::new(db);
    let sweep = store.call(|s| s.sweep_id("kill-search")).unwrap();
    let log = store.call(|s| s.search_log(sweep));
    let proposals: Vec<u64> = log
        .decisions
        .iter()
        .filter(|d| d.action.name() == "propose")
        .map(|d| d.action.trial())
        .collect();
    assert_eq!(proposals.len(), TRIALS, "exactly the planned trials");
    assert_eq!(
        proposals.iter().collect::<BTreeSet<_>>().len(),
        TRIALS,
        "each trial once"
    );

    // One job per trial (one seed, no folds), each in a final state.
    let rows = store.call(|s| s.report_rows(Some("kill-search")));
    assert_eq!(rows.len(), TRIALS, "one job per trial");
    let mut by_trial: BTreeMap<u64, i64> = BTreeMap::new();
    for r in &rows {
        let trial = trial_of(&r.label);
        assert!(
            by_trial.insert(trial, r.job_id).is_none(),
            "trial {trial} has two jobs"
        );
        assert!(
            matches!(r.status, JobStatus::Succeeded | JobStatus::Stopped),
            "{} ended {}: {:?}",
            r.label,
            r.status,
            r.error
        );
    }

    // No attempt of a trial started after the decision that stopped it.
    for d in &log.decisions {
        let Action::Stop { trial, .. } = &d.action else {
            continue;
        };
        let resumed = log.decisions.iter().any(|later| {
            later.seq > d.seq
                && matches!(&later.action, Action::Promote { trial: t, .. } if t == trial)
        });
        assert!(!resumed, "ASHA never continues a stopped trial");
        let attempts = store.call(|s| s.attempts(by_trial[trial]));
        for a in attempts {
            assert!(
                a.started_at.is_none_or(|t| t <= d.decided_at),
                "trial {trial}: an attempt started after its stop"
            );
        }
    }

    // Every rung reported once per job (the unique key would refuse a second).
    let mut rungs = BTreeSet::new();
    for e in &log.events {
        if let sweep_core::search::EventKind::Rung {
            trial, job, rung, ..
        } = &e.event.kind
        {
            assert!(rungs.insert((*trial, *job, *rung)), "rung reported twice");
        }
    }

    let taken_back = log.decisions.len();
    let released: usize = rows
        .iter()
        .map(|r| {
            store
                .call(|s| s.attempts(r.job_id))
                .iter()
                .filter(|a| {
                    a.reason
                        .as_deref()
                        .is_some_and(|w| w.contains("lease expired"))
                })
                .count()
        })
        .sum();
    eprintln!(
        "{TRIALS} trials, {} succeeded, {} stopped, {taken_back} decisions, {released} attempt(s) taken back from killed agents",
        rows.iter().filter(|r| r.status == JobStatus::Succeeded).count(),
        rows.iter().filter(|r| r.status == JobStatus::Stopped).count(),
    );
    assert!(
        released >= 1,
        "no killed agent's job was taken back: the kills missed"
    );

    // What the report lists as stopped early is what the store says ended stopped, each
    // with the rung it reached and the rule's evidence.
    let stopped = sweep_core::report::stopped::stopped_trials(&log);
    let stopped_jobs: BTreeSet<u64> = rows
        .iter()
        .filter(|r| r.status == JobStatus::Stopped)
        .map(|r| trial_of(&r.label))
        .collect();
    assert_eq!(
        stopped.iter().map(|s| s.trial).collect::<BTreeSet<_>>(),
        stopped_jobs
    );
    assert!(stopped
        .iter()
        .all(|s| s.evidence.starts_with("asha:") && s.iteration.is_some() && s.value.is_some()));
    let report = sb
        .command(&["report", "--sweep", "kill-search"])
        .env("SWEEP_DB", db)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.contains(&format!("stopped early ({} trial(s)", stopped.len())),
        "{report}"
    );

    // The log follows from its events, as replay re-derives it.
    let out = sb
        .command(&["replay", "kill-search"])
        .env("SWEEP_DB", db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", stderr_of(&out));
    assert!(text.contains("all agree with the"), "{text}");
    assert!(
        sb.wait_no_orphans().is_empty(),
        "job processes outlived their agents"
    );
}

/// `..., trial 12` (the label of a search's job) -> 12.
fn trial_of(label: &str) -> u64 {
    label
        .split("trial ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no trial number in {label:?}"))
}

#[test]
fn sqlite_four_agents_five_kills_exactly_the_planned_trials() {
    let sb = Sandbox::new();
    let db = sb.path().join("search.db");
    killed_agents_lose_and_repeat_nothing(db.to_str().unwrap());
}

sweep_test_services::needs_postgres! {
    #[test]
    fn postgres_four_agents_five_kills_exactly_the_planned_trials() {
        let db = fresh_postgres();
        killed_agents_lose_and_repeat_nothing(&db);
    }
}
