//! Adaptive searches run end to end by the scheduler on the toy worker (analytic learning
//! curves, no training): the trial cap holds, every trial ends in a final state, and the
//! decision log the agents wrote is what a replay re-derives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use sweep_core::job::JobStatus;
use sweep_core::report::replay::replay;
use sweep_core::scheduler::{self, RunOptions};
use sweep_core::search::Action;
use sweep_core::store::{self, DbLocation, Store};
use sweep_core::sweepfile;

fn toy() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sweep-toy-worker"))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

const ASHA: &str = "name: toy-asha
base: {iters: 27, schedule: {horizon: 27}, eval: {every: 0}}
search:
  method: random
  trials: 9
  parallel: 3
  seed: 4
  space:
    optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}
    model.head: {choice: [fcn, deeplabv3, pspnet]}
stop:
  rule: asha
  fidelity: {key: iters, min: 3, max: 27, eta: 3}
";

fn options(dir: &Path) -> RunOptions {
    let mut opts = RunOptions::new(DbLocation::Sqlite(dir.join("results.db")));
    opts.runs = Some(dir.join("runs"));
    opts.exe = Some(toy());
    opts.workers = 2;
    opts
}

/// The sweep's jobs by status, and its search log.
async fn outcome(
    store: &dyn Store,
    name: &str,
) -> (BTreeMap<JobStatus, usize>, sweep_core::store::SearchLog) {
    let id = store.sweep_id(name).await.unwrap().unwrap();
    (
        store.counts(id).await.unwrap(),
        store.search_log(id).await.unwrap(),
    )
}

fn decisions<'a>(log: &'a sweep_core::store::SearchLog, name: &str) -> Vec<&'a Action> {
    log.decisions
        .iter()
        .map(|d| &d.action)
        .filter(|a| a.name() == name)
        .collect()
}

#[test]
fn an_asha_search_runs_its_trials_promotes_the_best_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sweepfile::parse(Path::new("toy-asha.yaml"), ASHA, &[]).unwrap();
    let opts = options(dir.path());
    let summary = rt().block_on(scheduler::run(&spec, &opts)).unwrap();
    assert_eq!(summary.exit_code(), 0, "{summary:?}");
    rt().block_on(async {
        let store = store::open(&opts.db).await.unwrap();
        let (counts, log) = outcome(store.as_ref(), "toy-asha").await;
        // Exactly the cap, each trial once; nothing left waiting or running.
        assert_eq!(decisions(&log, "propose").len(), 9);
        let total: usize = counts.values().sum();
        assert_eq!(total, 9, "{counts:?}");
        for st in [
            JobStatus::Pending,
            JobStatus::Running,
            JobStatus::Paused,
            JobStatus::Interrupted,
        ] {
            assert_eq!(counts[&st], 0, "{st}: {counts:?}");
        }
        // Successive halving: some trials reach the end, most are stopped at a rung.
        let finished = counts[&JobStatus::Succeeded];
        assert!((1..9).contains(&finished), "{counts:?}");
        assert_eq!(counts[&JobStatus::Stopped], 9 - finished, "{counts:?}");
        assert!(!decisions(&log, "promote").is_empty());
        // The log follows from its events.
        let replayed = replay(&log);
        assert!(replayed.agrees(), "{}", replayed.text);
        assert_eq!(replayed.derived, log.decisions.len());
        // `sweep status` says where the search stands, from the same rows.
        let status = sweep_core::report::status(store.as_ref(), Some("toy-asha"))
            .await
            .unwrap();
        let line = format!(
            "9 of 9 trials proposed (random, seed 4, stop: asha); 0 in flight, 0 paused at a rung, \
             {finished} finished, {} stopped, 0 failed",
            9 - finished
        );
        assert!(status.contains(&line), "{status}");
        store.close().await;
    });

    // Run again: everything is decided, nothing is proposed or trained twice.
    let again = rt().block_on(scheduler::run(&spec, &opts)).unwrap();
    assert_eq!((again.added, again.attempts), (0, 0), "{again:?}");
}
