//! Helpers shared by the end-to-end tests: a sandbox (temporary folder and database) that
//! runs the real `sweep` binary, its store read back, and small conveniences.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use sweep_core::store::{self, JobRow};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sweep")
}

/// The test worker beside the `sweep` binary (crates/core/src/bin/sweep-toy-worker): it
/// speaks the job protocol with analytic learning curves and trains nothing, at the pace
/// and with the failures its environment asks for (`SWEEP_TOY_*`). `scripts/test` builds
/// it; alone: `cargo build -p sweep-core --bin sweep-toy-worker`.
pub fn toy_worker() -> PathBuf {
    let toy = Path::new(bin()).with_file_name("sweep-toy-worker");
    assert!(
        toy.exists(),
        "{} is missing: build it with `cargo build -p sweep-core --bin sweep-toy-worker`",
        toy.display()
    );
    toy
}

/// Every variable the toy worker reads: removed from each command of a sandbox, so that
/// only what a test sets reaches it.
const TOY_VARS: [&str; 4] = [
    "SWEEP_TOY_ITER_MS",
    "SWEEP_TOY_FAIL_LR_ABOVE",
    "SWEEP_TOY_CRASH_AT",
    "SWEEP_TOY_FAULTS",
];

/// Makes `cmd` (a `sweep run` or `sweep agent`) run its jobs on the toy worker, whose job
/// processes inherit `env` from it.
pub fn on_toy<'c>(cmd: &'c mut Command, env: &[(&str, &str)]) -> &'c mut Command {
    cmd.arg("--worker-exe")
        .arg(toy_worker())
        .envs(env.iter().copied())
}

/// A temporary folder with the sweep file and the database (`sweep.db`) of one test.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    /// Set: `sweep run` and `sweep agent` run their jobs on the toy worker with this
    /// environment (see [`Sandbox::toy`]).
    toy: Option<Vec<(String, String)>>,
}

impl Sandbox {
    /// Jobs run on the real trainer (`sweep worker`).
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
            toy: None,
        }
    }

    /// Jobs of `sweep run` and `sweep agent` run on the toy worker with the toy variables
    /// `env` (e.g. `SWEEP_TOY_ITER_MS`, `SWEEP_TOY_FAULTS`): no training, no libtorch.
    pub fn toy(env: &[(&str, &str)]) -> Self {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Sandbox {
            toy: Some(env.collect()),
            ..Sandbox::new()
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn db(&self) -> PathBuf {
        self.path().join("sweep.db")
    }
    pub fn write_sweep(&self, yaml: &str) -> PathBuf {
        let p = self.path().join("sweep.yaml");
        std::fs::write(&p, yaml).unwrap();
        p
    }
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("SWEEP_DB")
            .env("RUST_LOG", "warn");
        for v in TOY_VARS {
            c.env_remove(v);
        }
        if let (Some(env), Some(&("run" | "agent"))) = (&self.toy, args.first()) {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            on_toy(&mut c, &env);
        }
        c
    }
    pub fn run(&self, file: &Path, extra: &[&str]) -> Output {
        let (f, db) = (
            file.to_str().unwrap().to_string(),
            self.db().to_str().unwrap().to_string(),
        );
        let mut args = vec!["run", f.as_str(), "--db", db.as_str(), "--no-report"];
        args.extend_from_slice(extra);
        self.command(&args).output().expect("sweep runs")
    }
    pub fn spawn(&self, file: &Path, extra: &[&str]) -> Child {
        let (f, db) = (
            file.to_str().unwrap().to_string(),
            self.db().to_str().unwrap().to_string(),
        );
        let mut args = vec!["run", f.as_str(), "--db", db.as_str(), "--no-report"];
        args.extend_from_slice(extra);
        self.command(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sweep starts")
    }
    pub fn rows(&self) -> Vec<JobRow> {
        let db = self.db();
        rt().block_on(async {
            let store = store::open(&db).await.unwrap();
            store.report_rows(None).await.unwrap()
        })
    }
    pub fn integrity(&self) -> String {
        let db = self.db();
        rt().block_on(async {
            store::open(&db)
                .await
                .unwrap()
                .integrity_check()
                .await
                .unwrap()
        })
    }
    /// Processes whose command line mentions this sandbox (workers of its jobs).
    pub fn processes(&self) -> Vec<u32> {
        let needle = self.path().to_string_lossy().to_string();
        let me = std::process::id();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('Z'))
                .unwrap_or(false);
            if !zombie && String::from_utf8_lossy(&cmdline).contains(&needle) {
                found.push(pid);
            }
        }
        found
    }
    /// Waits until no process of this sandbox is left; returns the survivors otherwise.
    pub fn wait_no_orphans(&self) -> Vec<u32> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.processes();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `SWEEP_PYTHON`, else the workspace's `.venv` (scripts/setup-libtorch makes it), else python3.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SWEEP_PYTHON") {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn by_label(rows: &[JobRow]) -> BTreeMap<String, &JobRow> {
    rows.iter()
        .map(|r| (format!("{} seed {}", r.label, r.seed), r))
        .collect()
}

pub fn metric(row: &JobRow, name: &str) -> f64 {
    row.metrics
        .iter()
        .find(|m| m.name == name && m.class.is_none())
        .map(|m| m.value)
        .unwrap_or(f64::NAN)
}

/// Deterministic pseudo-random numbers for the kill schedule (xorshift).
pub struct Rng(pub u64);
impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub const TINY_UNET: &str = "model: {base_channels: 4, aux_head: false}
  crop: 32
  batch: 2
  eval: {mode: whole, crop: 64, stride: 32}";

/// A fresh, empty database on the test PostgreSQL server (`SWEEP_TEST_POSTGRES`; scripts/test
/// starts one): its URL. Fails without a server; the tests that call it are written inside
/// `sweep_test_services::needs_postgres!`, which marks them ignored when the build found none.
pub fn fresh_postgres() -> String {
    let server = sweep_test_services::server("PostgreSQL", "SWEEP_TEST_POSTGRES");
    let name = format!("sweep_e2e_{:08x}", std::process::id() ^ rand_u32());
    rt().block_on(async {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let base = server.split('?').next().unwrap();
    format!("{}/{name}", &base[..base.rfind('/').unwrap()])
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(7)
}

/// The store at a path or server URL, with the runtime its connections live on (a pool
/// must be used on the runtime that opened it).
pub struct OpenDb {
    pub rt: tokio::runtime::Runtime,
    pub store: std::sync::Arc<dyn store::Store>,
}

impl OpenDb {
    pub fn new(url: &str) -> OpenDb {
        let loc: store::DbLocation = url.parse().unwrap();
        let rt = rt();
        let store = rt.block_on(store::open(&loc)).unwrap();
        OpenDb { rt, store }
    }

    /// Runs one store call to completion.
    pub fn call<'a, T, F>(&'a self, f: impl FnOnce(&'a dyn store::Store) -> F) -> T
    where
        F: std::future::Future<Output = anyhow::Result<T>> + 'a,
    {
        self.rt.block_on(f(self.store.as_ref())).unwrap()
    }
}

/// A `sweep agent` of this sandbox playing node `node`, its log in `<sandbox>/<node>.log`.
pub fn spawn_agent(sb: &Sandbox, db: &str, node: &str, extra: &[&str]) -> Child {
    spawn_agent_with(sb, db, node, extra, &[])
}

/// [`spawn_agent`] with `env` for the agent and its job processes.
pub fn spawn_agent_with(
    sb: &Sandbox,
    db: &str,
    node: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Child {
    let log = std::fs::File::create(sb.path().join(format!("{node}.log"))).unwrap();
    let runs = sb.path().join("runs");
    let mut args = vec!["agent", "--runs", runs.to_str().unwrap()];
    args.extend_from_slice(extra);
    sb.command(&args)
        .env("SWEEP_DB", db)
        .env("SWEEP_NODE", node)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("agent starts")
}

pub fn agent_log(sb: &Sandbox, node: &str) -> String {
    std::fs::read_to_string(sb.path().join(format!("{node}.log"))).unwrap_or_default()
}

/// Polls `cond` every 50 ms until it holds or `secs` pass (then panics with `what`).
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a child to exit (killing it after `secs`); its exit status.
pub fn wait_child(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {} did not exit within {secs} s", child.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
