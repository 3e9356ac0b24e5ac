//! Many agents on one PostgreSQL queue: a node killed mid-job, a node stalled past its lease,
//! copies between databases. Agents play different nodes on one machine (`SWEEP_NODE`), so
//! only their leases tell whether they are alive, as on a real cluster.

use crate::util::{
    agent_log, fresh_postgres, spawn_agent, stderr_of, wait_child, wait_for, OpenDb, Sandbox,
    TINY_UNET,
};
use std::collections::BTreeMap;
use sweep_core::job::JobStatus;

/// `n` jobs (one per seed) of `iters` iterations, checkpointing every 5: tiny UNets on
/// 64x64 images, cheap even when really trained (the Slurm test). The other tests run them
/// on the toy worker, at the pace their sandbox sets.
fn fleet_sweep(sb: &Sandbox, name: &str, n: usize, iters: usize) -> std::path::PathBuf {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/data/dme");
    let seeds: Vec<String> = (0..n).map(|s| s.to_string()).collect();
    sb.write_sweep(&format!(
        "name: {name}\ndata: {{dataset: dme, root: {root}, scale: [64, 64], limit_train: 4, limit_val: 2}}\n\
         base:\n  {TINY_UNET}\n  iters: {iters}\n  checkpoint_every: 5\nseeds: [{}]\n",
        seeds.join(", ")
    ))
}

/// A sandbox whose agents run their jobs on the toy worker at `ms` per iteration.
fn toy_at(ms: u64) -> Sandbox {
    Sandbox::toy(&[("SWEEP_TOY_ITER_MS", &ms.to_string())])
}

fn enqueue(sb: &Sandbox, file: &std::path::Path, db: &str) {
    let out = sb
        .command(&["run", file.to_str().unwrap(), "--enqueue-only"])
        .env("SWEEP_DB", db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("enqueued"), "{}", stderr_of(&out));
}

/// The running job of `node`, with its iteration, if any.
pub(crate) fn running_on(db: &OpenDb, sweep: i64, node: &str) -> Option<(i64, usize)> {
    let running = db.call(|s| s.running(sweep));
    running
        .into_iter()
        .find(|r| {
            r.owner
                .as_deref()
                .is_some_and(|o| o.starts_with(&format!("{node}:")))
        })
        .map(|r| (r.id, r.iteration))
}

/// Succeeded attempts per job: every job must have exactly one.
fn successes(db: &OpenDb, ids: &[i64]) -> BTreeMap<i64, usize> {
    ids.iter()
        .map(|&id| {
            let attempts = db.call(|s| s.attempts(id));
            let n = attempts
                .iter()
                .filter(|a| a.ended_as == JobStatus::Succeeded)
                .count();
            (id, n)
        })
        .collect()
}

sweep_test_services::needs_postgres! {
    #[test]
    fn three_agents_one_killed_mid_job_every_job_once() {
        let db = fresh_postgres();
        let sb = toy_at(50);
        let file = fleet_sweep(&sb, "fleet", 6, 40);
        enqueue(&sb, &file, &db);
        let store = OpenDb::new(&db);
        let sweep = store.call(|s| s.sweep_id("fleet")).unwrap();
        let lease = ["--sweep", "fleet", "--lease", "2"];
        let mut a = spawn_agent(&sb, &db, "node-a", &lease);
        let mut others = [
            spawn_agent(&sb, &db, "node-b", &lease),
            spawn_agent(&sb, &db, "node-c", &lease),
        ];

        // Kill node-a's agent once its job has checkpointed (iteration 10 or more).
        let mut victim = None;
        wait_for(60, "node-a to be 10 iterations into a job", || {
            victim = running_on(&store, sweep, "node-a").filter(|(_, it)| *it >= 10);
            victim.is_some()
        });
        let (victim, killed_at) = victim.unwrap();
        a.kill().unwrap();
        a.wait().unwrap();
        for agent in &mut others {
            assert!(
                wait_child(agent, 120).success(),
                "{}",
                agent_log(&sb, "node-b")
            );
        }

        let rows = store.call(|s| s.report_rows(Some("fleet")));
        assert_eq!(rows.len(), 6);
        assert!(
            rows.iter().all(|r| r.status == JobStatus::Succeeded),
            "{rows:?}"
        );
        let ids: Vec<i64> = rows.iter().map(|r| r.job_id).collect();
        assert!(
            successes(&store, &ids).values().all(|&n| n == 1),
            "a job succeeded more than once"
        );
        // The killed agent's job: taken back after its lease expired, finished elsewhere, from
        // its checkpoint.
        let attempts = store.call(|s| s.attempts(victim));
        assert!(attempts.len() >= 2, "{attempts:?}");
        assert_eq!(attempts[0].ended_as, JobStatus::Interrupted);
        assert!(
            attempts[0]
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("lease expired"),
            "{attempts:?}"
        );
        let last = attempts.last().unwrap();
        assert_eq!(last.ended_as, JobStatus::Succeeded);
        assert!(
            !last.owner.as_deref().unwrap().starts_with("node-a:"),
            "{last:?}"
        );
        let logs = agent_log(&sb, "node-b") + &agent_log(&sb, "node-c");
        let resumed = logs
            .lines()
            .find(|l| {
                l.contains(&format!("job {victim} (attempt")) && l.contains("resuming from iteration")
            })
            .unwrap_or_else(|| panic!("no agent resumed job {victim} from a checkpoint:\n{logs}"));
        let from: usize = resumed
            .split("resuming from iteration ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(
            from >= 5 && from <= killed_at + 5,
            "resumed from {from}, killed at {killed_at}"
        );
        assert!(
            sb.wait_no_orphans().is_empty(),
            "job processes outlived their agents"
        );
    }
}

sweep_test_services::needs_postgres! {
    #[test]
    fn an_agent_stalled_past_its_lease_is_taken_over_and_its_late_writes_refused() {
        let db = fresh_postgres();
        let sb = toy_at(50);
        let file = fleet_sweep(&sb, "stall", 1, 60);
        enqueue(&sb, &file, &db);
        let store = OpenDb::new(&db);
        let sweep = store.call(|s| s.sweep_id("stall")).unwrap();
        let lease = ["--sweep", "stall", "--lease", "1.5"];
        let mut a = spawn_agent(&sb, &db, "node-a", &lease);
        let mut job = None;
        wait_for(60, "node-a to train", || {
            job = running_on(&store, sweep, "node-a").filter(|(_, it)| *it >= 5);
            job.is_some()
        });
        let (job, _) = job.unwrap();
        // Freeze the agent (not its job process: a partition leaves that running).
        unsafe { libc::kill(a.id() as i32, libc::SIGSTOP) };
        let mut b = spawn_agent(&sb, &db, "node-b", &lease);
        wait_for(60, "node-b to take the job over", || {
            running_on(&store, sweep, "node-b").is_some()
                || store.call(|s| s.report_rows(Some("stall")))[0].status == JobStatus::Succeeded
        });
        assert!(
            wait_child(&mut b, 60).success(),
            "{}",
            agent_log(&sb, "node-b")
        );
        unsafe { libc::kill(a.id() as i32, libc::SIGCONT) };
        let status_a = wait_child(&mut a, 60);

        let row = store.call(|s| s.report_rows(Some("stall"))).remove(0);
        assert_eq!(row.status, JobStatus::Succeeded);
        assert_eq!(successes(&store, &[job])[&job], 1);
        let attempts = store.call(|s| s.attempts(job));
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        assert!(attempts[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("lease expired"));
        assert!(
            attempts[1].owner.as_deref().unwrap().starts_with("node-b:"),
            "{attempts:?}"
        );
        let log_a = agent_log(&sb, "node-a");
        assert!(
            log_a.contains("taken over"),
            "node-a did not notice:\n{log_a}"
        );
        assert!(status_a.success(), "node-a: {status_a:?}\n{log_a}");
        // The stalled agent's curve stops where it froze: what it sent after waking was refused.
        // (Its job process ran on meanwhile; the taker resumes from the newest checkpoint,
        // possibly the final one, so the curve may have a gap but never a stale duplicate.)
        let curve = store.call(|s| s.curve(job));
        let its: Vec<usize> = curve.iter().map(|p| p.iteration).collect();
        assert!(
            its.windows(2).all(|w| w[0] < w[1]) && its.iter().all(|&i| (1..=60).contains(&i)),
            "{its:?}"
        );
    }
}

sweep_test_services::needs_postgres! {
    #[test]
    fn db_copy_sqlite_to_postgres_and_back_leaves_the_report_identical() {
        let pg = fresh_postgres();
        let sb = toy_at(1);
        let file = fleet_sweep(&sb, "copied", 3, 5);
        let out = sb.run(&file, &["--workers", "2"]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        let back = sb.path().join("back.db");
        let db = sb.db();
        let copy = |from: &str, to: &str| {
            let out = sb
                .command(&["db", "copy", "--from", from, "--to", to])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr_of(&out));
            stderr_of(&out)
        };
        let first = copy(db.to_str().unwrap(), &pg);
        assert!(first.contains("3 job(s) added"), "{first}");
        let twice = copy(db.to_str().unwrap(), &pg);
        assert!(twice.contains("0 job(s) added, 3 skipped"), "{twice}");
        copy(&pg, back.to_str().unwrap());
        let report = |loc: &str| {
            let out = sb
                .command(&["report", "--db", loc, "--format", "json"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr_of(&out));
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        };
        let original = report(db.to_str().unwrap());
        assert_eq!(report(&pg), original);
        assert_eq!(report(back.to_str().unwrap()), original);
    }
}

sweep_test_services::needs_slurm! {
    #[test]
    fn sweep_slurm_submit_runs_a_sweep_with_two_array_tasks() {
        sweep_test_services::server("Slurm", "SWEEP_TEST_SLURM");
        let db = fresh_postgres();
        // Really trained: the script's agents run `sweep worker` (tiny UNets, a few seconds).
        let sb = Sandbox::new();
        let file = fleet_sweep(&sb, "on-slurm", 4, 10);
        let (runs, out_dir) = (sb.path().join("runs"), sb.path().join("slurm"));
        let out = sb
            .command(&[
                "slurm",
                file.to_str().unwrap(),
                "--agents",
                "2",
                "--time",
                "00:10:00",
                "--runs",
                runs.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
                "--submit",
            ])
            .env("SWEEP_DB", &db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("#SBATCH --array=0-1"), "{script}");
        assert!(script.contains("#SBATCH --signal=B:USR1@120"), "{script}");
        let job_id = script.lines().last().unwrap().trim().to_string();
        assert!(job_id.parse::<u64>().is_ok(), "no Slurm job id: {script}");

        let store = OpenDb::new(&db);
        wait_for(180, "the Slurm agents to finish the sweep", || {
            let rows = store.call(|s| s.report_rows(Some("on-slurm")));
            rows.iter().all(|r| r.status == JobStatus::Succeeded)
        });
        let report = sb
            .command(&["report", "--sweep", "on-slurm", "--format", "json"])
            .env("SWEEP_DB", &db)
            .output()
            .unwrap();
        assert!(report.status.success(), "{}", stderr_of(&report));
        let rows = store.call(|s| s.report_rows(Some("on-slurm")));
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| r.attempts == 1), "{rows:?}");
        // Both array tasks ran an agent, each with its log.
        let logs: Vec<_> = std::fs::read_dir(&out_dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".out"))
            .collect();
        assert_eq!(logs.len(), 2, "{logs:?}");
    }
}

#[test]
fn sigusr1_makes_an_agent_hand_its_job_back_for_another_to_resume() {
    let sb = toy_at(50);
    let db = sb.db().to_str().unwrap().to_string();
    let file = fleet_sweep(&sb, "preempted", 1, 80);
    enqueue(&sb, &file, &db);
    let store = OpenDb::new(&db);
    let sweep = store.call(|s| s.sweep_id("preempted")).unwrap();
    let mut a = spawn_agent(&sb, &db, "node-a", &["--lease", "3"]);
    wait_for(60, "node-a to be 10 iterations in", || {
        running_on(&store, sweep, "node-a").is_some_and(|(_, it)| it >= 10)
    });
    // What Slurm sends before a time limit.
    unsafe { libc::kill(a.id() as i32, libc::SIGUSR1) };
    let status = wait_child(&mut a, 30);
    assert_eq!(status.code(), Some(130), "{}", agent_log(&sb, "node-a"));
    let row = store.call(|s| s.report_rows(Some("preempted"))).remove(0);
    assert_eq!(row.status, JobStatus::Interrupted, "{row:?}");
    assert!(agent_log(&sb, "node-a").contains("SIGUSR1"));

    let mut b = spawn_agent(&sb, &db, "node-b", &[]);
    assert!(
        wait_child(&mut b, 60).success(),
        "{}",
        agent_log(&sb, "node-b")
    );
    let row = store.call(|s| s.report_rows(Some("preempted"))).remove(0);
    assert_eq!((row.status, row.attempts), (JobStatus::Succeeded, 2));
    assert!(
        agent_log(&sb, "node-b").contains("resuming from iteration"),
        "{}",
        agent_log(&sb, "node-b")
    );
}

#[test]
fn a_node_that_cannot_see_the_runs_folder_hands_the_job_back_unfailed() {
    let sb = toy_at(1);
    let db = sb.db().to_str().unwrap().to_string();
    let file = fleet_sweep(&sb, "shared", 1, 3);
    let shared = sb.path().join("shared-runs");
    let out = sb
        .command(&[
            "run",
            file.to_str().unwrap(),
            "--enqueue-only",
            "--runs",
            shared.to_str().unwrap(),
        ])
        .env("SWEEP_DB", &db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    // This "node" does not have the shared file system mounted.
    std::fs::remove_dir_all(&shared).unwrap();
    let out = sb
        .command(&["agent", "--sweep", "shared"])
        .env("SWEEP_DB", &db)
        .env("SWEEP_NODE", "node-without-nfs")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("node node-without-nfs: cannot see the runs folder")
            && err.contains("shared-runs"),
        "{err}"
    );
    let store = OpenDb::new(&db);
    let row = store.call(|s| s.report_rows(Some("shared"))).remove(0);
    assert_eq!(row.status, JobStatus::Interrupted, "{row:?}");
    assert!(
        !shared.exists(),
        "a local folder was made in place of the shared one"
    );
}

#[test]
fn bad_database_urls_fail_in_one_line_naming_host_and_database() {
    let sb = toy_at(1);
    let file = fleet_sweep(&sb, "nowhere", 1, 1);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        (
            "mysql://u:pw@db/x".to_string(),
            "unknown database scheme \"mysql\"",
        ),
        (
            format!("postgres://u:s3cr3t@127.0.0.1:{port}/lab"),
            "cannot connect to PostgreSQL at 127.0.0.1",
        ),
    ];
    for (url, expected) in cases {
        let out = sb
            .command(&["run", file.to_str().unwrap(), "--enqueue-only"])
            .env("SWEEP_DB", &url)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url}");
        let err = stderr_of(&out);
        assert!(err.contains(expected), "{url}: {err}");
        assert!(!err.contains("s3cr3t") && !err.contains(":pw@"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert!(!sb.db().exists(), "nothing may be written");
}
