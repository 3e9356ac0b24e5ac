//! The results database: schema, queue semantics, results.
//!
//! The suite is written once against the `Store` trait (as atuin and ripgrep do): each
//! test below is a generic `async fn` over a [`Backend`] that makes a fresh, empty database,
//! and `store_suite!(backend: tests...)` turns them into `#[tokio::test]`s for one backend.
//! It runs against SQLite and PostgreSQL (a fresh database per test on the server that
//! `SWEEP_TEST_POSTGRES` names; `scripts/test` starts a throwaway one). Without that
//! variable the PostgreSQL tests say so loudly and pass only outside CI: with `CI` set they
//! fail. What only a SQLite file can show (its folder, its migrations table, concurrent first
//! opens) is in [`sqlite_only`].

use crate::util::{job, metric, owner};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use sweep_core::job::{FailureKind, JobStatus};
use sweep_core::metrics::surface::Presence;
use sweep_core::protocol::ImageMetric;
use sweep_core::store::{
    ClaimRequest, CurvePoint, Ending, External, Fence, Finish, NewArtifact, NewExternal, NewJob,
    Outcome, Owner, Reported, Store, StoreError,
};

/// A database to run the suite against.
trait Backend: Sized {
    /// Makes a fresh, empty database and opens it (migrated).
    async fn fresh() -> Self;
    /// The handle the test works with.
    fn store(&self) -> Arc<dyn Store>;
    /// A second, independent handle on the same database (its own connections), as another
    /// process would open; after `close()` on the first, a reopen.
    async fn open_again(&self) -> Arc<dyn Store>;
}

pub mod backends {
    pub mod sqlite {
        use std::sync::Arc;
        use sweep_core::store::{self, Store};

        /// A SQLite file in its own temporary folder (removed on drop).
        pub struct Db {
            pub dir: tempfile::TempDir,
            store: Arc<dyn Store>,
        }

        impl Db {
            pub fn path(&self) -> std::path::PathBuf {
                self.dir.path().join("results.db")
            }
        }

        impl super::super::Backend for Db {
            async fn fresh() -> Db {
                let dir = tempfile::tempdir().unwrap();
                let store = store::open(&dir.path().join("results.db")).await.unwrap();
                Db { dir, store }
            }
            fn store(&self) -> Arc<dyn Store> {
                self.store.clone()
            }
            async fn open_again(&self) -> Arc<dyn Store> {
                store::open(&self.path()).await.unwrap()
            }
        }
    }

    pub mod postgres {
        use std::sync::Arc;
        use sweep_core::store::{self, DbLocation, Store};

        /// The server the PostgreSQL tests use (`postgres://user@host:port/db`).
        pub const ENV: &str = "SWEEP_TEST_POSTGRES";

        /// The test server's URL; fails the test when none is configured (a test that needs
        /// it is marked ignored at build time when the server is missing, see
        /// sweep-test-services).
        pub fn server_url() -> String {
            sweep_test_services::server("PostgreSQL", ENV)
        }

        /// A fresh database on the test server, dropped afterwards.
        pub struct Db {
            pub url: String,
            name: String,
            store: Arc<dyn Store>,
        }

        /// `postgres://u@h:p/db` with another database name.
        pub fn with_database(url: &str, db: &str) -> String {
            let base = url.split('?').next().unwrap_or(url);
            let cut = base.rfind('/').expect("a database in the URL");
            format!("{}/{db}", &base[..cut])
        }

        async fn admin(sql: &str) {
            use sqlx::Connection;
            let url = server_url();
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::Executor::execute(&mut conn, sql).await.unwrap();
            conn.close().await.unwrap();
        }

        /// A new empty database on the server; its URL.
        pub async fn create_database() -> (String, String) {
            let name = format!("sweep_t_{:016x}", rand::random::<u64>());
            admin(&format!("CREATE DATABASE {name}")).await;
            (with_database(&server_url(), &name), name)
        }

        impl super::super::Backend for Db {
            async fn fresh() -> Db {
                let (url, name) = create_database().await;
                let loc: DbLocation = url.parse().unwrap();
                let store = store::open(&loc).await.unwrap();
                Db { url, name, store }
            }
            fn store(&self) -> Arc<dyn Store> {
                self.store.clone()
            }
            async fn open_again(&self) -> Arc<dyn Store> {
                let loc: DbLocation = self.url.parse().unwrap();
                store::open(&loc).await.unwrap()
            }
        }

        impl Drop for Db {
            fn drop(&mut self) {
                // Off the test's runtime: Drop cannot await.
                let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(admin(&sql));
                })
                .join();
            }
        }
    }
}

/// The whole suite for `backends::$backend::Db`, as a module named `$backend`: one
/// `#[tokio::test]` per generic test (multi-threaded, so concurrency tests are real).
/// `$needs` marks the tests ignored where the backend's server is missing.
macro_rules! store_suite {
    ($backend:ident, $needs:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            type B = super::backends::$backend::Db;
            $(
                sweep_test_services::$needs! {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $test() {
                        super::$test::<B>().await
                    }
                }
            )*
        }
    };
}

/// One list of tests, run against each backend.
macro_rules! all_store_tests {
    ($backend:ident, $needs:ident) => {
        store_suite!($backend, $needs:
            reopen_is_idempotent,
            add_jobs_is_idempotent,
            claims_are_exclusive_under_concurrency,
            dependencies_gate_claims_and_blocked_jobs_are_listed,
            a_continued_job_waits_keeps_state_and_inherits_curves,
            failures_retry_until_max_attempts,
            permanent_failures_are_not_retried,
            finish_records_metrics_divergence_and_checks_the_owner,
            orphans_are_released_resumably,
            dead_owners_on_this_host_are_released_by_pid,
            curves_upsert_and_artifacts_record,
            an_attempts_end_records_its_last_reports_in_the_same_transaction,
            report_rows_of_an_unknown_sweep_names_the_known_ones,
            retired_jobs_are_kept_but_not_run,
            per_image_results_and_validation_curves_round_trip,
            expired_leases_are_taken_over_and_late_writes_refused,
            live_leases_are_kept_and_heartbeats_renew_them,
            claims_span_sweeps_and_record_the_slurm_job,
            export_then_import_copies_everything_once,
            external_rows_are_recorded_once_replaced_by_name_and_copied,
        );
    };
}

all_store_tests!(sqlite, anywhere);
all_store_tests!(postgres, needs_postgres);

/// A fresh database with one sweep `s` of `n` jobs ([`job`]`(0..n)`).
async fn with_jobs<B: Backend>(n: usize, max_attempts: u32) -> (B, Arc<dyn Store>, i64) {
    let db = B::fresh().await;
    let store = db.store();
    let sweep = store.upsert_sweep("s", "s.yaml", "base: {}").await.unwrap();
    let jobs: Vec<NewJob> = (0..n).map(job).collect();
    store.add_jobs(sweep, &jobs, max_attempts).await.unwrap();
    (db, store, sweep)
}

fn succeeded(metrics: Vec<sweep_core::protocol::MetricValue>, iterations: usize) -> Finish {
    Finish::Succeeded {
        metrics,
        images: Vec::new(),
        iterations,
        sweep_version: None,
        data: None,
    }
}

fn curve_point(iteration: usize, loss: f64, lr: f64, secs: f64) -> CurvePoint {
    CurvePoint {
        iteration,
        loss,
        lr,
        secs,
    }
}

async fn reopen_is_idempotent<B: Backend>() {
    let db = B::fresh().await;
    let store = db.store();
    let id = store.upsert_sweep("dme", "a.yaml", "x").await.unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    store.close().await;

    let again = db.open_again().await;
    // Same sweep, same id; the spec text is updated.
    assert_eq!(again.upsert_sweep("dme", "b.yaml", "y").await.unwrap(), id);
    let sweeps = again.sweeps().await.unwrap();
    assert_eq!(sweeps.len(), 1);
    assert_eq!(sweeps[0].spec_path, "b.yaml");
    assert_eq!(again.sweep_id("dme").await.unwrap(), Some(id));
    assert_eq!(again.sweep_id("nope").await.unwrap(), None);
    assert_eq!(again.integrity_check().await.unwrap(), "ok");
    // A reopen is the same database.
    assert_eq!(again.identity(), store.identity());
}

async fn add_jobs_is_idempotent<B: Backend>() {
    let db = B::fresh().await;
    let store = db.store();
    let sweep = store.upsert_sweep("s", "s.yaml", "").await.unwrap();
    let first: Vec<NewJob> = (0..5).map(job).collect();
    assert_eq!(store.add_jobs(sweep, &first, 3).await.unwrap(), (5, 0));
    let more: Vec<NewJob> = (3..8).map(job).collect();
    assert_eq!(store.add_jobs(sweep, &more, 3).await.unwrap(), (3, 2));
    assert_eq!(store.counts(sweep).await.unwrap()[&JobStatus::Pending], 8);
    // The same hash in another sweep is another job.
    let other = store.upsert_sweep("t", "t.yaml", "").await.unwrap();
    assert_eq!(store.add_jobs(other, &first, 3).await.unwrap(), (5, 0));
    // Bad JSON names the job.
    let mut bad = job(100);
    bad.config_json = "{".into();
    let msg = format!("{:#}", store.add_jobs(sweep, &[bad], 3).await.unwrap_err());
    assert!(msg.contains("h0100"), "{msg}");
    // The failed batch added nothing.
    assert_eq!(store.counts(sweep).await.unwrap()[&JobStatus::Pending], 8);
}

async fn claims_are_exclusive_under_concurrency<B: Backend>() {
    let (db, a, sweep) = with_jobs::<B>(200, 3).await;
    // A second handle: its own pool, as another process would have.
    let b = db.open_again().await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = if t % 2 == 0 { a.clone() } else { b.clone() };
        let me = owner(&format!("task{t}"));
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(j) = store.claim_next(sweep, &me).await.unwrap() {
                assert_eq!(j.attempts, 1);
                got.push(j.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 200, "every job claimed once");
    assert_eq!(unique.len(), 200, "no job claimed twice");
    let counts = a.counts(sweep).await.unwrap();
    assert_eq!(counts[&JobStatus::Running], 200);
    assert_eq!(counts[&JobStatus::Pending], 0);
}

/// A shared prefix: the longer job waits for the shorter, which is told to keep its
/// optimiser state; when the longer one starts it takes over the shorter's curves (idempotently,
/// keeping points of its own), and only while its fence holds.
async fn a_continued_job_waits_keeps_state_and_inherits_curves<B: Backend>() {
    let db = B::fresh().await;
    let store = db.store();
    let sweep = store.upsert_sweep("s", "s.yaml", "").await.unwrap();
    let short = job(0);
    let mut long = job(1);
    long.depends_on = Some(short.hash.clone());
    long.continues = true;
    store
        .add_jobs(sweep, &[long.clone(), short.clone()], 1)
        .await
        .unwrap();
    let me = owner("x");
    let a = store.claim_next(sweep, &me).await.unwrap().unwrap();
    assert_eq!(a.hash, short.hash, "the longer job waits");
    assert!(a.keep_state && !a.continues);
    let fa = a.fence(&me);
    let points: Vec<CurvePoint> = (1..=2)
        .map(|i| curve_point(i, 1.0 / i as f64, 0.1, 0.5))
        .collect();
    store.record_curve(&fa, &points).await.unwrap();
    store
        .record_eval(&fa, 2, &[metric("mDice", None, 40.0)])
        .await
        .unwrap();
    store.finish(&fa, succeeded(vec![], 2)).await.unwrap();

    let b = store.claim_next(sweep, &me).await.unwrap().unwrap();
    assert_eq!(b.hash, long.hash);
    assert!(b.continues && !b.keep_state);
    assert_eq!(b.init_from_hash.as_ref(), Some(&short.hash));
    let fb = b.fence(&me);
    store
        .record_curve(&fb, &[curve_point(2, 9.0, 9.0, 9.0)])
        .await
        .unwrap();
    for _ in 0..2 {
        store
            .inherit_prefix_curves(&fb, sweep, &short.hash)
            .await
            .unwrap();
    }
    let curve = store.curve(b.id).await.unwrap();
    assert_eq!(curve.len(), 2, "{curve:?}");
    assert_eq!(curve[0], points[0], "taken over");
    assert_eq!(curve[1].loss, 9.0, "its own point is kept");
    assert_eq!(store.eval_curve(b.id).await.unwrap().len(), 1, "once");
    let stale = Fence {
        attempt: b.attempts + 1,
        ..fb.clone()
    };
    assert!(store
        .inherit_prefix_curves(&stale, sweep, &short.hash)
        .await
        .is_err());
}

async fn dependencies_gate_claims_and_blocked_jobs_are_listed<B: Backend>() {
    let db = B::fresh().await;
    let store = db.store();
    let sweep = store.upsert_sweep("s", "s.yaml", "").await.unwrap();
    let mut pre = job(0);
    pre.stage = Some("pretrain".into());
    let mut fine = job(1);
    fine.stage = Some("finetune".into());
    fine.depends_on = Some(pre.hash.clone());
    // The dependent job comes first in id order: it must still wait.
    store
        .add_jobs(sweep, &[fine.clone(), pre.clone()], 1)
        .await
        .unwrap();
    let me = owner("x");
    let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
    assert_eq!(c.hash, pre.hash);
    assert!(store.claim_next(sweep, &me).await.unwrap().is_none());
    store
        .set_artifact_dir(&c.fence(&me), "/runs/pre")
        .await
        .unwrap();
    assert_eq!(
        store.dependency_artifact(sweep, &pre.hash).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .finish(&c.fence(&me), succeeded(vec![], 100))
            .await
            .unwrap(),
        JobStatus::Succeeded
    );
    assert_eq!(
        store.dependency_artifact(sweep, &pre.hash).await.unwrap(),
        Some("/runs/pre".into())
    );
    let d = store.claim_next(sweep, &me).await.unwrap().unwrap();
    assert_eq!(d.hash, fine.hash);
    assert_eq!(d.init_from_hash, Some(pre.hash.clone()));

    // A dependency that fails for good blocks its dependant.
    let other = store.upsert_sweep("t", "t.yaml", "").await.unwrap();
    store
        .add_jobs(other, &[pre.clone(), fine.clone()], 1)
        .await
        .unwrap();
    let c = store.claim_next(other, &me).await.unwrap().unwrap();
    let status = store
        .finish(
            &c.fence(&me),
            Finish::Failed {
                reason: "exit 3".into(),
                stderr_tail: String::new(),
                kind: FailureKind::Transient,
            },
        )
        .await
        .unwrap();
    assert_eq!(status, JobStatus::Failed, "max_attempts 1: no retry");
    let blocked = store.blocked(other).await.unwrap();
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].label, fine.label);
    assert_eq!(blocked[0].dependency_status, Some(JobStatus::Failed));
    assert!(store.claim_next(other, &me).await.unwrap().is_none());
}

async fn failures_retry_until_max_attempts<B: Backend>() {
    let (_db, store, sweep) = with_jobs::<B>(1, 2).await;
    let me = owner("a");
    let fail = || Finish::Failed {
        reason: "process aborted (SIGABRT)".into(),
        stderr_tail: "terminate called".into(),
        kind: FailureKind::Transient,
    };
    let c1 = store.claim_next(sweep, &me).await.unwrap().unwrap();
    assert_eq!((c1.attempts, c1.max_attempts), (1, 2));
    assert_eq!(c1.failures, 0);
    assert_eq!(
        store.finish(&c1.fence(&me), fail()).await.unwrap(),
        JobStatus::Pending,
        "a transient failure with attempts left is retried"
    );
    assert_eq!(store.counts(sweep).await.unwrap()[&JobStatus::Pending], 1);
    // Finishing twice: no longer ours.
    let e = store.finish(&c1.fence(&me), fail()).await.unwrap_err();
    assert!(matches!(
        e.downcast_ref::<StoreError>(),
        Some(StoreError::NotOwner { .. })
    ));

    let c2 = store.claim_next(sweep, &me).await.unwrap().unwrap();
    assert_eq!((c2.id, c2.attempts), (c1.id, 2));
    assert_eq!(c2.failures, 1);
    assert_eq!(
        store.finish(&c2.fence(&me), fail()).await.unwrap(),
        JobStatus::Failed
    );
    let counts = store.counts(sweep).await.unwrap();
    assert_eq!(
        (counts[&JobStatus::Failed], counts[&JobStatus::Pending]),
        (1, 0)
    );
    assert!(store.claim_next(sweep, &me).await.unwrap().is_none());
    let rows = store.report_rows(Some("s")).await.unwrap();
    assert_eq!(rows[0].status, JobStatus::Failed);
    assert_eq!(rows[0].attempts, 2);
    assert_eq!(rows[0].error.as_deref(), Some("process aborted (SIGABRT)"));
    // Both attempts are recorded: the first was retried, the second ended the job.
    let attempts = store.attempts(c1.id).await.unwrap();
    let ended: Vec<(u32, JobStatus)> = attempts.iter().map(|a| (a.attempt, a.ended_as)).collect();
    assert_eq!(ended, vec![(1, JobStatus::Pending), (2, JobStatus::Failed)]);
    assert!(attempts
        .iter()
        .all(|a| a.failure == Some(FailureKind::Transient)));
}

async fn permanent_failures_are_not_retried<B: Backend>() {
    let (_db, store, sweep) = with_jobs::<B>(1, 3).await;
    let me = owner("a");
    let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
    let status = store
        .finish(
            &c.fence(&me),
            Finish::Failed {
                reason: "bad config".into(),
                stderr_tail: String::new(),
                kind: FailureKind::Permanent,
            },
        )
        .await
        .unwrap();
    assert_eq!(status, JobStatus::Failed);
    assert!(store.claim_next(sweep, &me).await.unwrap().is_none());
    let counts = store.counts(sweep).await.unwrap();
    assert_eq!(
        (counts[&JobStatus::Failed], counts[&JobStatus::Pending]),
        (1, 0)
    );
}

async fn finish_records_metrics_divergence_and_checks_the_owner<B: Backend>() {
    let (_db, store, sweep) = with_jobs::<B>(2, 3).await;
    let me = owner("a");
    let thief = owner("b");
    let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
    assert!(store.heartbeat(&c.fence(&me), 40).await.unwrap());
    assert!(!store.heartbeat(&c.fence(&thief), 41).await.unwrap());
    let running = store.running(sweep).await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].iteration, 40);
    assert_eq!(running[0].total_iters, Some(100));
    assert_eq!(running[0].owner.as_deref(), Some("test-host:1:a"));

    let metrics = vec![
        metric("mDice", None, 77.63),
        metric("Dice", Some(1), 59.09),
        metric("IoU", Some(0), f64::NAN),
    ];
    let done = Finish::Succeeded {
        metrics: metrics.clone(),
        images: Vec::new(),
        iterations: 100,
        sweep_version: Some("0.2.0-test".into()),
        data: None,
    };
    assert!(store.finish(&c.fence(&thief), done.clone()).await.is_err());
    assert_eq!(
        store.finish(&c.fence(&me), done).await.unwrap(),
        JobStatus::Succeeded
    );
    assert!(!store.heartbeat(&c.fence(&me), 100).await.unwrap());

    let d = store.claim_next(sweep, &me).await.unwrap().unwrap();
    assert_eq!(
        store
            .finish(
                &d.fence(&me),
                Finish::Diverged {
                    iter: 17,
                    last_finite_loss: Some(2.5),
                },
            )
            .await
            .unwrap(),
        JobStatus::Diverged
    );

    let rows = store.report_rows(None).await.unwrap();
    let ok = rows.iter().find(|r| r.job_id == c.id).unwrap();
    assert_eq!(ok.status, JobStatus::Succeeded);
    assert_eq!(ok.iteration, 100);
    assert_eq!(ok.sweep_version.as_deref(), Some("0.2.0-test"));
    assert_eq!(ok.metrics.len(), 3);
    let dice1 = ok.metrics.iter().find(|m| m.class == Some(1)).unwrap();
    assert_eq!(dice1.value, 59.09);
    assert!(ok
        .metrics
        .iter()
        .find(|m| m.name == "IoU")
        .unwrap()
        .value
        .is_nan());
    let bad = rows.iter().find(|r| r.job_id == d.id).unwrap();
    assert_eq!(bad.status, JobStatus::Diverged);
    assert_eq!(bad.iteration, 17);
    assert!(bad.error.as_deref().unwrap().contains("iteration 17"));
    let counts = store.counts(sweep).await.unwrap();
    assert_eq!(
        (counts[&JobStatus::Succeeded], counts[&JobStatus::Diverged]),
        (1, 1)
    );
}

async fn orphans_are_released_resumably<B: Backend>() {
    let (_db, store, sweep) = with_jobs::<B>(3, 3).await;
    let dead = owner("dead");
    let alive = owner("alive");
    let a = store.claim_next(sweep, &dead).await.unwrap().unwrap();
    let b = store.claim_next(sweep, &alive).await.unwrap().unwrap();
    store
        .set_artifact_dir(&a.fence(&dead), "/runs/a")
        .await
        .unwrap();
    store.heartbeat(&a.fence(&dead), 60).await.unwrap();

    let released = store
        .release_orphans(sweep, &|o| o.ends_with(":dead"))
        .await
        .unwrap();
    assert_eq!(released, vec![a.id]);
    let counts = store.counts(sweep).await.unwrap();
    assert_eq!(
        (
            counts[&JobStatus::Interrupted],
            counts[&JobStatus::Running],
            counts[&JobStatus::Pending]
        ),
        (1, 1, 1)
    );
    // The vanished owner can no longer write.
    assert!(!store.heartbeat(&a.fence(&dead), 61).await.unwrap());
    // Resumed before new work, same folder, attempt counted on the new claim.
    let again = store.claim_next(sweep, &alive).await.unwrap().unwrap();
    assert_eq!(again.id, a.id);
    assert_eq!(again.attempts, 2);
    assert_eq!(again.artifact_dir.as_deref(), Some("/runs/a"));
    let rows = store.report_rows(None).await.unwrap();
    assert_eq!(
        rows.iter().find(|r| r.job_id == a.id).unwrap().iteration,
        60
    );

    // mark_interrupted only by the owner.
    store.mark_interrupted(&b.fence(&dead)).await.unwrap();
    assert_eq!(store.counts(sweep).await.unwrap()[&JobStatus::Running], 2);
    store.mark_interrupted(&b.fence(&alive)).await.unwrap();
    assert_eq!(
        store.counts(sweep).await.unwrap()[&JobStatus::Interrupted],
        1
    );
    assert_eq!(
        store
            .finish(&again.fence(&alive), Finish::Interrupted)
            .await
            .unwrap(),
        JobStatus::Interrupted
    );
    assert_eq!(
        store.counts(sweep).await.unwrap()[&JobStatus::Interrupted],
        2
    );
}

async fn dead_owners_on_this_host_are_released_by_pid<B: Backend>() {
    let (_db, store, sweep) = with_jobs::<B>(2, 3).await;
    let me = Owner::current();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = Owner {
        pid: child.id(),
        ..me.clone()
    };
    child.wait().unwrap();
    let a = store.claim_next(sweep, &gone).await.unwrap().unwrap();
    let b = store.claim_next(sweep, &me).await.unwrap().unwrap();
    // Fresh leases: only the pid check can release `a`.
    let released = store.release_dead_owners(Some(sweep)).await.unwrap();
    assert_eq!(released, vec![a.id]);
    assert!(store.heartbeat(&b.fence(&me), 1).await.unwrap());
}

async fn curves_upsert_and_artifacts_record<B: Backend>() {
    let (_db, store, sweep) = with_jobs::<B>(1, 3).await;
    let c = store.claim_next(sweep, &owner("a")).await.unwrap().unwrap();
    let f = c.fence(&owner("a"));
    store
        .record_curve(
            &f,
            &[
                curve_point(1, 0.9, 0.01, 0.5),
                curve_point(2, 0.8, 0.01, 0.5),
                curve_point(3, 0.7, 0.01, 0.5),
            ],
        )
        .await
        .unwrap();
    // A resumed job re-records iteration 3 and goes on; a NaN loss round-trips.
    store
        .record_curve(
            &f,
            &[
                curve_point(3, 0.65, 0.009, 0.4),
                curve_point(4, f64::NAN, 0.008, 0.4),
            ],
        )
        .await
        .unwrap();
    let curve = store.curve(c.id).await.unwrap();
    assert_eq!(curve.len(), 4);
    assert_eq!(curve[2], curve_point(3, 0.65, 0.009, 0.4));
    assert_eq!(curve[0], curve_point(1, 0.9, 0.01, 0.5));
    assert_eq!(curve[3].iteration, 4);
    assert!(curve[3].loss.is_nan());

    store
        .record_artifact(&f, "checkpoint", "/runs/a/iter_50.ckpt", Some(50))
        .await
        .unwrap();
    store
        .record_artifact(&f, "final", "/runs/a/final.ckpt", None)
        .await
        .unwrap();
    let msg = format!(
        "{:#}",
        store
            .record_artifact(&f, "weights", "/x", None)
            .await
            .unwrap_err()
    );
    assert!(msg.contains("weights"), "{msg}");
    let arts = store.artifacts(c.id).await.unwrap();
    assert_eq!(
        arts,
        vec![
            ("checkpoint".into(), "/runs/a/iter_50.ckpt".into(), Some(50)),
            ("final".into(), "/runs/a/final.ckpt".into(), None),
        ]
    );
}

fn artifact(kind: &str, path: &str, iteration: usize) -> NewArtifact {
    NewArtifact {
        kind: kind.into(),
        path: path.into(),
        iteration: Some(iteration),
    }
}

/// The scheduler ends an attempt with what the job reported since the last flush and, for a
/// success, its final checkpoint: all recorded with the end, under the same fence, or none.
async fn an_attempts_end_records_its_last_reports_in_the_same_transaction<B: Backend>() {
    let (_db, store, sweep) = with_jobs::<B>(3, 3).await;
    let me = owner("a");
    let ending = |finish: Finish, artifacts: Vec<NewArtifact>| Ending {
        finish,
        reported: Reported {
            curve: vec![
                curve_point(1, 0.9, 0.01, 0.5),
                curve_point(2, 0.8, 0.01, 0.5),
            ],
            artifacts,
        },
        final_checkpoint: Some(artifact("final", "/runs/final.ckpt", 2)),
    };
    // A success: more metrics than one statement takes, the reports, the final checkpoint.
    let ok = store.claim_next(sweep, &me).await.unwrap().unwrap();
    let metrics: Vec<_> = (0..450)
        .map(|i| metric(&format!("m{i}"), None, i as f64))
        .collect();
    let checkpoint = artifact("checkpoint", "/runs/checkpoint.ckpt", 2);
    let end = ending(succeeded(metrics, 2), vec![checkpoint]);
    let status = store.end_attempt(&ok.fence(&me), end).await.unwrap();
    assert_eq!(status, JobStatus::Succeeded);
    assert_eq!(store.curve(ok.id).await.unwrap().len(), 2);
    let kinds: Vec<String> = store
        .artifacts(ok.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(kinds, ["checkpoint", "final"]);
    let row = store.report_rows(Some("s")).await.unwrap();
    let row = row.iter().find(|r| r.job_id == ok.id).unwrap();
    assert_eq!(row.metrics.len(), 450);
    assert_eq!(
        row.metrics.iter().map(|m| m.value).sum::<f64>(),
        (0..450).sum::<i32>() as f64
    );

    // A failure records its reports but no final checkpoint: there is no result.
    // (Permanent, so that the next claim is another job.)
    let failed = store.claim_next(sweep, &me).await.unwrap().unwrap();
    let crash = Finish::Failed {
        reason: "exit code 65".into(),
        stderr_tail: String::new(),
        kind: FailureKind::Permanent,
    };
    let status = store
        .end_attempt(&failed.fence(&me), ending(crash, vec![]))
        .await
        .unwrap();
    assert_eq!(status, JobStatus::Failed);
    assert_eq!(store.curve(failed.id).await.unwrap().len(), 2);
    assert!(store.artifacts(failed.id).await.unwrap().is_empty());

    // A stale fence or an unknown artifact kind: refused, and nothing of it written.
    let third = store.claim_next(sweep, &me).await.unwrap().unwrap();
    assert!(third.id != ok.id && third.id != failed.id);
    let mut stale = third.fence(&me);
    stale.attempt += 1;
    let refused = store
        .end_attempt(&stale, ending(succeeded(vec![], 2), vec![]))
        .await;
    assert!(matches!(
        refused.unwrap_err().downcast_ref::<StoreError>(),
        Some(StoreError::NotOwner { .. })
    ));
    let bad = ending(succeeded(vec![], 2), vec![artifact("weights", "/x", 1)]);
    let msg = format!(
        "{:#}",
        store.end_attempt(&third.fence(&me), bad).await.unwrap_err()
    );
    assert!(msg.contains("weights"), "{msg}");
    assert!(store.curve(third.id).await.unwrap().is_empty());
    assert!(store.artifacts(third.id).await.unwrap().is_empty());
    let job = store.find_job(&third.id.to_string()).await.unwrap();
    assert_eq!(job.status, JobStatus::Running);
}

async fn report_rows_of_an_unknown_sweep_names_the_known_ones<B: Backend>() {
    let (_db, store, _) = with_jobs::<B>(1, 3).await;
    let msg = format!("{:#}", store.report_rows(Some("dmee")).await.unwrap_err());
    assert!(msg.contains("dmee") && msg.contains("known: s"), "{msg}");
}

/// Jobs the sweep file no longer produces are kept but never claimed, counted or reported
/// as current; producing them again brings them back.
async fn retired_jobs_are_kept_but_not_run<B: Backend>() {
    let (_db, store, sweep) = with_jobs::<B>(3, 2).await;
    let hashes: Vec<String> = (0..3).map(|i| job(i).hash).collect();
    // The file now produces jobs 0 and 2 only.
    let current = vec![hashes[0].clone(), hashes[2].clone()];
    assert_eq!(store.retire_others(sweep, &current).await.unwrap(), 1);
    let me = owner("a");
    let mut claimed = Vec::new();
    while let Some(c) = store.claim_next(sweep, &me).await.unwrap() {
        claimed.push(c.hash);
    }
    assert_eq!(claimed, current);
    let counts = store.counts(sweep).await.unwrap();
    assert_eq!(counts.values().sum::<usize>(), 2);
    let rows = store.report_rows(None).await.unwrap();
    let retired: Vec<&str> = rows
        .iter()
        .filter(|r| r.retired)
        .map(|r| r.hash.as_str())
        .collect();
    assert_eq!(retired, vec![hashes[1].as_str()]);
    // Back in the file: pending again, claimable.
    assert_eq!(store.retire_others(sweep, &hashes).await.unwrap(), 0);
    let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
    assert_eq!(c.hash, hashes[1]);
}

/// What only a SQLite file can show: its folder, its migrations table, first opens racing.
mod sqlite_only {
    use sweep_core::store::{self, SqlStore, Store, StoreError};

    #[tokio::test]
    async fn migrations_create_parent_folders_and_reapply_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        // Parent folders are created too.
        let path = dir.path().join("nested/deeper/results.db");
        let store = store::open(&path).await.unwrap();
        let id = store.upsert_sweep("dme", "a.yaml", "x").await.unwrap();
        assert_eq!(store.integrity_check().await.unwrap(), "ok");
        assert!(store.location().contains(&path.display().to_string()));
        store.close().await;

        let again = SqlStore::open(&path.as_path().into()).await.unwrap();
        assert_eq!(again.location(), path.display().to_string());
        // Same sweep, same id; the spec text is updated.
        assert_eq!(again.upsert_sweep("dme", "b.yaml", "y").await.unwrap(), id);
        let sweeps = again.sweeps().await.unwrap();
        assert_eq!(sweeps.len(), 1);
        assert_eq!(sweeps[0].spec_path, "b.yaml");
        assert_eq!(again.sweep_id("dme").await.unwrap(), Some(id));
        assert_eq!(again.sweep_id("nope").await.unwrap(), None);
        assert_eq!(again.integrity_check().await.unwrap(), "ok");
    }

    #[tokio::test]
    async fn concurrent_first_opens_of_one_file_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh.db");
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let p = path.clone();
            tasks.push(tokio::spawn(async move { store::open(&p).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let s = store::open(&path).await.unwrap();
        assert_eq!(s.integrity_check().await.unwrap(), "ok");
    }

    #[tokio::test]
    async fn newer_schema_is_refused_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.db");
        let store = store::open(&path).await.unwrap();
        store.close().await;
        drop(store);
        // A later sweep applied a migration this binary does not have.
        {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time)
                 VALUES (99990101000000, 'from the future', CURRENT_TIMESTAMP, 1, x'00', 0)",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
        let err = store::open(&path).await.unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("99990101000000"), "{msg}");
        match err.downcast_ref::<StoreError>() {
            Some(StoreError::NewerSchema {
                location, unknown, ..
            }) => {
                assert!(location.contains(&path.display().to_string()), "{location}");
                assert_eq!(unknown, &vec![99990101000000]);
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn unwritable_path_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where a folder should be: unwritable even for root.
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "not a folder").unwrap();
        let path = file.join("results.db");
        let msg = format!("{:#}", store::open(&path).await.unwrap_err());
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }

    #[tokio::test]
    async fn read_only_opens_read_and_refuse_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let missing = SqlStore::open_read_only(&path.as_path().into()).await;
        assert!(
            missing.is_err() && !path.exists(),
            "a read-only open creates nothing"
        );
        let rw = store::open(&path).await.unwrap();
        rw.upsert_sweep("s", "s.yaml", "x").await.unwrap();
        let ro = SqlStore::open_read_only(&path.as_path().into())
            .await
            .unwrap();
        assert_eq!(ro.sweeps().await.unwrap().len(), 1);
        assert_eq!(ro.identity(), rw.identity());
        assert!(ro.upsert_sweep("t", "t.yaml", "y").await.is_err());
        assert_eq!(rw.sweeps().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn open_existing_refuses_a_missing_file_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo.db");
        let msg = format!("{:#}", store::open_existing(&path).await.unwrap_err());
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!path.exists());
        store::open(&path).await.unwrap().close().await;
        store::open_existing(&path).await.unwrap();
    }
}

fn image_row(image: &str, class: usize, counts: (u64, u64, u64), dice: Option<f64>) -> ImageMetric {
    ImageMetric {
        split: "val".into(),
        image: image.into(),
        class,
        intersect: counts.0,
        pred: counts.1,
        label: counts.2,
        dice,
        hd95: (class > 0).then_some(2.5),
        assd: (class > 0).then_some(1.25),
        presence: (class > 0).then_some(Presence::Both),
        unit: "px".into(),
    }
}

async fn per_image_results_and_validation_curves_round_trip<B: Backend>() {
    let (_db, store, sweep) = with_jobs::<B>(1, 3).await;
    let c = store.claim_next(sweep, &owner("a")).await.unwrap().unwrap();
    // Validation during training; a resumed job re-records iteration 10 (replaced, not added).
    let val = |v: f64| vec![metric("mDice", None, v), metric("mIoU", None, v - 5.0)];
    store
        .record_eval(&c.fence(&owner("a")), 10, &val(50.0))
        .await
        .unwrap();
    store
        .record_eval(&c.fence(&owner("a")), 10, &val(52.0))
        .await
        .unwrap();
    store
        .record_eval(&c.fence(&owner("a")), 20, &val(f64::NAN))
        .await
        .unwrap();
    let curve = store.eval_curve(c.id).await.unwrap();
    assert_eq!(curve.len(), 4, "{curve:?}");
    assert_eq!(
        (curve[0].0, curve[0].1.name.as_str(), curve[0].1.value),
        (10, "mDice", 52.0)
    );
    assert_eq!(
        (curve[1].0, curve[1].1.name.as_str(), curve[1].1.value),
        (10, "mIoU", 47.0)
    );
    assert!(curve[2].0 == 20 && curve[2].1.value.is_nan());

    let mut images = vec![
        image_row("img_2", 0, (90, 95, 92), Some(96.3)),
        image_row("img_2", 1, (5, 8, 8), Some(62.5)),
        image_row("img_1", 1, (0, 0, 0), None),
    ];
    images[2].presence = Some(Presence::Neither);
    images[2].hd95 = None;
    let finish = Finish::Succeeded {
        metrics: vec![metric("mDice", None, 70.0)],
        images: images.clone(),
        iterations: 20,
        sweep_version: None,
        data: None,
    };
    store.finish(&c.fence(&owner("a")), finish).await.unwrap();
    let back = store.image_metrics(c.id).await.unwrap();
    // Sorted by split, image, class; NULLs come back as None.
    assert_eq!(
        back,
        vec![images[2].clone(), images[0].clone(), images[1].clone()]
    );
    assert!(store.image_metrics(c.id + 100).await.unwrap().is_empty());
}

fn request<'a>(owner: &'a Owner, lease_ms: u64) -> ClaimRequest<'a> {
    ClaimRequest {
        sweeps: None,
        owner,
        lease: Duration::from_millis(lease_ms),
        slurm_job: None,
    }
}

/// A stalled owner (SIGSTOP, a partition) wakes after its lease was taken: every write it
/// makes is refused, and the job's result is the taker's, recorded once.
async fn expired_leases_are_taken_over_and_late_writes_refused<B: Backend>() {
    let (_db, store, _) = with_jobs::<B>(1, 3).await;
    let (stalled, taker) = (owner("stalled"), owner("taker"));
    let first = store.claim(request(&stalled, 300)).await.unwrap().unwrap();
    let late = first.fence(&stalled);
    assert!(store.heartbeat(&late, 5).await.unwrap());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        store.release_dead_owners(None).await.unwrap(),
        vec![first.id]
    );
    let second = store.claim(request(&taker, 30_000)).await.unwrap().unwrap();
    assert_eq!((second.id, second.attempts), (first.id, 2));

    // The stalled owner wakes up: nothing it sends is taken.
    assert!(!store.heartbeat(&late, 99).await.unwrap());
    let refused = |e: anyhow::Error| {
        matches!(
            e.downcast_ref::<StoreError>(),
            Some(StoreError::NotOwner { attempt: 1, .. })
        )
    };
    assert!(refused(
        store
            .record_curve(&late, &[curve_point(99, 0.1, 0.01, 1.0)])
            .await
            .unwrap_err()
    ));
    assert!(refused(
        store
            .record_artifact(&late, "checkpoint", "/late.ckpt", Some(99))
            .await
            .unwrap_err()
    ));
    assert!(refused(
        store
            .finish(&late, succeeded(vec![metric("mDice", None, 1.0)], 99))
            .await
            .unwrap_err()
    ));
    // The same owner claiming again is another attempt: its old fence stays stale.
    let mine = second.fence(&taker);
    let done = succeeded(vec![metric("mDice", None, 70.0)], 100);
    assert_eq!(
        store.finish(&mine, done).await.unwrap(),
        JobStatus::Succeeded
    );
    let row = store.report_rows(Some("s")).await.unwrap().pop().unwrap();
    assert_eq!((row.attempts, row.metrics.len()), (2, 1));
    assert_eq!(row.metrics[0].value, 70.0);
    assert!(store.curve(first.id).await.unwrap().is_empty());
    let attempts = store.attempts(first.id).await.unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].ended_as, JobStatus::Interrupted);
    assert!(
        attempts[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("lease expired"),
        "{attempts:?}"
    );
    assert_eq!(attempts[1].ended_as, JobStatus::Succeeded);
}

/// A live owner on another host keeps its job as long as it renews; the lease shows in
/// `running`.
async fn live_leases_are_kept_and_heartbeats_renew_them<B: Backend>() {
    let (_db, store, sweep) = with_jobs::<B>(1, 3).await;
    let remote = owner("remote");
    let c = store.claim(request(&remote, 600)).await.unwrap().unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(store.heartbeat(&c.fence(&remote), 1).await.unwrap());
        assert!(store.release_dead_owners(None).await.unwrap().is_empty());
    }
    let running = store.running(sweep).await.unwrap();
    let lease = running[0].lease_expires_at.expect("a lease");
    let left = lease - sweep_core::store::now_ms();
    assert!((0..=1_000).contains(&left), "lease ends in {left} ms");
}

async fn claims_span_sweeps_and_record_the_slurm_job<B: Backend>() {
    let (_db, store, first) = with_jobs::<B>(1, 3).await;
    let second = store.upsert_sweep("t", "t.yaml", "{}").await.unwrap();
    store.add_jobs(second, &[job(7)], 3).await.unwrap();
    let me = owner("agent");
    let only_second = ClaimRequest {
        sweeps: Some(&[second]),
        slurm_job: Some("4242_1"),
        ..request(&me, 30_000)
    };
    let c = store.claim(only_second.clone()).await.unwrap().unwrap();
    assert_eq!((c.sweep_id, c.hash.as_str()), (second, "h0007"));
    assert!(store.claim(only_second).await.unwrap().is_none());
    let any = store.claim(request(&me, 30_000)).await.unwrap().unwrap();
    assert_eq!(any.sweep_id, first);
    let running = store.running(second).await.unwrap();
    assert_eq!(running[0].slurm_job.as_deref(), Some("4242_1"));
    assert_eq!(running[0].owner.as_deref(), Some(me.to_string().as_str()));
}

/// `sweep db copy`'s two halves: everything recorded arrives, a running job arrives
/// interrupted, and importing again adds nothing.
async fn export_then_import_copies_everything_once<B: Backend>() {
    let (_db, store, sweep) = with_jobs::<B>(3, 3).await;
    let me = owner("a");
    let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
    let f = c.fence(&me);
    store.set_artifact_dir(&f, "/runs/s/h0000").await.unwrap();
    store
        .record_curve(
            &f,
            &[
                curve_point(1, 0.5, 0.01, 0.1),
                curve_point(2, f64::NAN, 0.01, 0.2),
            ],
        )
        .await
        .unwrap();
    store
        .record_eval(&f, 2, &[metric("mDice", None, 40.0)])
        .await
        .unwrap();
    store
        .record_artifact(&f, "checkpoint", "/runs/s/h0000/checkpoint.ckpt", Some(2))
        .await
        .unwrap();
    let finish = Finish::Succeeded {
        metrics: vec![
            metric("mDice", None, 61.5),
            metric("Dice", Some(1), f64::NAN),
        ],
        images: vec![image_row("a.png", 1, (5, 6, 7), Some(0.75))],
        iterations: 2,
        sweep_version: Some("0.2.0+test".into()),
        data: None,
    };
    store.finish(&f, finish).await.unwrap();
    let _running = store.claim_next(sweep, &me).await.unwrap().unwrap();

    let dumps = store.export(None).await.unwrap();
    assert_eq!(dumps.len(), 1);
    let target = B::fresh().await;
    let first = target.store().import(&dumps[0]).await.unwrap();
    assert_eq!(
        (first.sweeps_added, first.jobs_added, first.jobs_skipped),
        (1, 3, 0)
    );
    let again = target.store().import(&dumps[0]).await.unwrap();
    assert_eq!(
        (again.sweeps_added, again.jobs_added, again.jobs_skipped),
        (0, 0, 3)
    );

    let copied = target.store().export(None).await.unwrap();
    // Debug text, not ==: NaN (an absent class) must come back as NaN.
    assert_eq!(
        format!("{copied:?}"),
        format!("{dumps:?}"),
        "the copy exports as the original did"
    );
    let rows = target.store().report_rows(Some("s")).await.unwrap();
    let statuses: Vec<JobStatus> = rows.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            JobStatus::Succeeded,
            JobStatus::Interrupted,
            JobStatus::Pending
        ]
    );
    let id = rows[0].job_id;
    assert!(target.store().curve(id).await.unwrap()[1].loss.is_nan());
    assert_eq!(target.store().image_metrics(id).await.unwrap().len(), 1);
    assert_eq!(target.store().attempts(id).await.unwrap().len(), 1);
}

/// An external row (`sweep evaluate`) named `name` with content `content`, in `sweep`.
fn external(sweep: i64, name: &str, hash: &str, dice: f64) -> NewExternal {
    NewExternal {
        sweep_id: sweep,
        job: NewJob {
            hash: hash.into(),
            stage: None,
            label: name.into(),
            config_json: r#"{"data": {"dataset": "dme", "root": "data/dme", "split": "study"}}"#
                .into(),
            seed: 0,
            depends_on: None,
            continues: false,
            classes: vec!["background".into(), "fluid".into()],
        },
        external: External {
            name: name.into(),
            predictions: format!("/preds/{hash}"),
            content: hash.into(),
            cases: 1,
        },
        metrics: vec![
            metric("mDice", None, dice),
            metric("Dice", Some(1), f64::NAN),
        ],
        images: vec![image_row("img_1", 1, (5, 6, 7), Some(dice))],
        data_fingerprint: "train:- val:00ff".into(),
        sweep_version: "0.2.0+test".into(),
    }
}

fn mdice(row: &sweep_core::store::JobRow) -> f64 {
    row.metrics
        .iter()
        .find(|m| m.name == "mDice")
        .unwrap()
        .value
}

/// External rows: recorded once (the same files again write nothing), replaced under the
/// same name (the earlier row retired, and current again when its files come back), never
/// the label of a sweep's own job, never claimed or retired by the sweep file, and copied.
async fn external_rows_are_recorded_once_replaced_by_name_and_copied<B: Backend>() {
    let (_db, store, sweep) = with_jobs::<B>(2, 3).await;
    let first = store
        .record_external(&external(sweep, "nnunet", "e1", 80.0))
        .await
        .unwrap();
    assert_eq!(
        (first.outcome, first.retired.as_slice()),
        (Outcome::Added, &[][..])
    );
    let again = store
        .record_external(&external(sweep, "nnunet", "e1", 99.0))
        .await
        .unwrap();
    assert_eq!(
        (again.job_id, again.outcome, again.scored_at),
        (first.job_id, Outcome::Unchanged, first.scored_at)
    );
    let row = store.find_job("nnunet").await.unwrap();
    assert_eq!(row.job_id, first.job_id);
    assert_eq!(
        (row.status, row.attempts, row.retired),
        (JobStatus::Succeeded, 0, false)
    );
    assert_eq!(row.external.as_ref().unwrap().predictions, "/preds/e1");
    assert_eq!(row.data_fingerprint.as_deref(), Some("train:- val:00ff"));
    assert_eq!(row.classes, ["background", "fluid"]);
    assert_eq!(mdice(&row), 80.0, "unchanged: the first numbers stay");
    assert_eq!(store.image_metrics(row.job_id).await.unwrap().len(), 1);

    let second = store
        .record_external(&external(sweep, "nnunet", "e2", 70.0))
        .await
        .unwrap();
    assert_eq!(
        (second.outcome, second.retired.clone()),
        (Outcome::Replaced, vec![first.job_id])
    );
    assert_eq!(
        store.find_job("nnunet").await.unwrap().job_id,
        second.job_id
    );
    let back = store
        .record_external(&external(sweep, "nnunet", "e1", 81.0))
        .await
        .unwrap();
    assert_eq!(
        (back.job_id, back.outcome),
        (first.job_id, Outcome::Replaced)
    );
    assert_eq!(back.retired, vec![second.job_id]);
    assert_eq!(mdice(&store.find_job("nnunet").await.unwrap()), 81.0);

    let own = store
        .record_external(&external(sweep, "job 0", "e3", 1.0))
        .await;
    let err = format!("{:#}", own.unwrap_err());
    assert!(err.contains("one of the sweep's own jobs"), "{err}");
    // The sweep file knows nothing of external rows: they are neither retired nor claimed.
    assert_eq!(
        store.retire_others(sweep, &["h0000".into()]).await.unwrap(),
        1
    );
    assert!(!store.find_job("nnunet").await.unwrap().retired);
    let claimed = store.claim_next(sweep, &owner("a")).await.unwrap().unwrap();
    assert_eq!(claimed.hash, "h0000");
    assert!(store
        .claim_next(sweep, &owner("a"))
        .await
        .unwrap()
        .is_none());

    let target = B::fresh().await;
    target
        .store()
        .import(&store.export(None).await.unwrap()[0])
        .await
        .unwrap();
    let copied = target.store().report_rows(Some("s")).await.unwrap();
    let externals: Vec<_> = copied.iter().filter(|r| r.external.is_some()).collect();
    assert_eq!(externals.len(), 2);
    assert_eq!(externals[0].external, row.external);
    assert_eq!(
        externals.iter().map(|r| r.retired).collect::<Vec<_>>(),
        [false, true]
    );
}

/// What only a server can get wrong: unreachable, refused, a newer schema; every error names
/// the host and database and never the password.
mod postgres_only {
    use super::backends::postgres::{create_database, server_url, with_database};
    use sweep_core::store::{self, DbLocation, StoreError};

    async fn open_error(url: &str) -> String {
        let loc: DbLocation = url.parse().unwrap();
        format!("{:#}", store::open(&loc).await.unwrap_err())
    }

    sweep_test_services::needs_postgres! {
        #[tokio::test]
        async fn unreachable_servers_and_unknown_roles_are_named_without_the_password() {
            // A port nobody listens on.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let msg = open_error(&format!("postgres://alice:hunter22@127.0.0.1:{port}/lab")).await;
            assert!(
                msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("\"lab\""),
                "{msg}"
            );
            assert!(!msg.contains("hunter22"), "{msg}");
            // A role the server does not know.
            let url = server_url();
            let rest = url.split_once('@').unwrap().1;
            let msg = open_error(&format!("postgres://nobody_here:hunter22@{rest}")).await;
            assert!(
                msg.contains("nobody_here") && !msg.contains("hunter22"),
                "{msg}"
            );
            // A database that does not exist.
            let msg = open_error(&with_database(&url, "no_such_db_here")).await;
            assert!(msg.contains("no_such_db_here"), "{msg}");
        }
    }

    sweep_test_services::needs_postgres! {
        #[tokio::test]
        async fn read_only_connections_refuse_every_write() {
            let (url, _name) = create_database().await;
            let loc: DbLocation = url.parse().unwrap();
            let rw = store::open(&loc).await.unwrap();
            rw.upsert_sweep("s", "s.yaml", "x").await.unwrap();
            let ro = sweep_core::store::SqlStore::open_read_only(&loc)
                .await
                .unwrap();
            use sweep_core::store::Store as _;
            assert_eq!(ro.sweeps().await.unwrap().len(), 1);
            let err = ro.upsert_sweep("t", "t.yaml", "y").await.unwrap_err();
            assert!(format!("{err:#}").contains("read-only"), "{err:#}");
            assert_eq!(rw.sweeps().await.unwrap().len(), 1);
        }
    }

    sweep_test_services::needs_postgres! {
        #[tokio::test]
        async fn a_newer_schema_is_refused_and_nothing_is_written() {
            let (url, _name) = create_database().await;
            let loc: DbLocation = url.parse().unwrap();
            let s = store::open(&loc).await.unwrap();
            s.close().await;
            {
                use sqlx::{Connection, Executor};
                let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                c.execute("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                           VALUES (99, 'from the future', true, '\\x00', 0)").await.unwrap();
                c.close().await.unwrap();
            }
            let err = store::open(&loc).await.unwrap_err();
            assert!(
                matches!(err.downcast_ref::<StoreError>(), Some(StoreError::NewerSchema { unknown, .. }) if unknown == &vec![99]),
                "{err:#}"
            );
            assert!(format!("{err:#}").contains(&loc.to_string()), "{err:#}");
        }
    }
}
