//! Slurm: the sbatch script for `sweep slurm`, its submission, and the Slurm job an agent
//! runs in.
//!
//! One array job, one task per agent. Each task runs one pull-based `sweep agent` that
//! claims jobs from the shared PostgreSQL queue until none is left, so the array size is
//! the parallelism and no task is tied to particular jobs. The script is written to be
//! read: plain `#SBATCH` lines, one `exec` of the agent.
//!
//! The database URL usually holds a password, and a script lands in shared folders and
//! in Slurm's spool: it is written into the script only when it has none
//! ([`db_url_for_script`]); otherwise the script takes it from `$SWEEP_DB`, which sbatch
//! carries from the submitting shell (its default `--export=ALL`).

use anyhow::{bail, Context};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Seconds before the time limit at which Slurm sends the agent `SIGUSR1`: time to
/// checkpoint its running jobs and hand them back to the queue.
pub const SIGNAL_LEAD_S: u64 = 120;

/// Slurm may send that signal up to a minute early (its event resolution): the shortest
/// time limit accepted leaves the agents some time to work.
const SIGNAL_EARLY_S: u64 = 60;

/// One `sweep slurm` submission: an array of `agents` tasks, each running one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmJob {
    /// The sweep the agents work on.
    pub sweep: String,
    /// Array tasks, one agent each.
    pub agents: usize,
    /// GPUs per agent (`--gres=gpu:G`); 0 = a CPU agent.
    pub gpus_per_agent: usize,
    /// Jobs per GPU (GPU agents only).
    pub per_gpu: usize,
    /// Parallel jobs of a CPU agent (used only when `gpus_per_agent` is 0).
    pub workers: usize,
    /// `--cpus-per-task`; `None` = one core per job slot ([`SlurmJob::cpus_per_task`]).
    pub cpus_per_agent: Option<usize>,
    pub partition: Option<String>,
    /// Slurm's time limit, as `--time` takes it (see [`time_limit_secs`]).
    pub time: Option<String>,
    /// Further sbatch options, each written as its own `#SBATCH` line.
    pub sbatch_args: Vec<String>,
    /// Absolute path of the `sweep` binary, as the compute nodes see it.
    pub exe: PathBuf,
    /// The database URL, only when it holds no password; `None` = the script requires
    /// `$SWEEP_DB`.
    pub db_for_script: Option<String>,
    /// The agents' artifact folder (`--runs`); `None` = the agent's default.
    pub runs: Option<PathBuf>,
    /// Folder for the tasks' logs. Slurm does not create it: the caller must, before
    /// submitting, or the tasks fail without a log.
    pub log_dir: PathBuf,
    pub job_name: String,
}

/// Why a [`SlurmJob`] cannot be written as a script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SlurmConfigError(pub String);

fn invalid<T>(msg: impl Into<String>) -> Result<T, SlurmConfigError> {
    Err(SlurmConfigError(msg.into()))
}

impl SlurmJob {
    /// Checks everything [`SlurmJob::script`] relies on; call it first.
    pub fn validate(&self) -> Result<(), SlurmConfigError> {
        self.check_counts()?;
        check_name("sweep name", &self.sweep)?;
        check_name("Slurm job name", &self.job_name)?;
        if let Some(p) = &self.partition {
            check_partition(p)?;
        }
        if let Some(t) = &self.time {
            check_time(t)?;
        }
        for arg in &self.sbatch_args {
            check_sbatch_arg(arg)?;
        }
        self.check_paths()?;
        if let Some(url) = &self.db_for_script {
            check_script_url(url)?;
        }
        Ok(())
    }

    fn check_counts(&self) -> Result<(), SlurmConfigError> {
        if self.agents == 0 {
            return invalid("the number of agents must be at least 1");
        }
        if self.gpus_per_agent > 0 && self.per_gpu == 0 {
            return invalid("jobs per GPU must be at least 1");
        }
        if self.gpus_per_agent == 0 && self.workers == 0 {
            return invalid("a CPU agent needs at least 1 worker");
        }
        if self.cpus_per_agent == Some(0) {
            return invalid("CPUs per agent must be at least 1");
        }
        Ok(())
    }

    fn check_paths(&self) -> Result<(), SlurmConfigError> {
        // Absolute: the script runs on other machines, from whatever folder sbatch ran in.
        check_absolute("the sweep binary", &self.exe)?;
        if let Some(runs) = &self.runs {
            check_absolute("the runs folder", runs)?;
        }
        check_absolute("the log folder", &self.log_dir)?;
        // The log folder goes into an unquoted `#SBATCH --output=` line, which sbatch
        // splits at whitespace; a backslash there turns off Slurm's %-patterns.
        let log = utf8("the log folder", &self.log_dir)?;
        if log
            .chars()
            .any(|c| c.is_whitespace() || "'\"\\".contains(c))
        {
            return invalid(format!(
                "the log folder {log:?} must have no spaces, quotes or backslashes (it goes into an #SBATCH line)"
            ));
        }
        Ok(())
    }

    /// `--cpus-per-task`: the one asked for, else one core per job slot.
    pub fn cpus_per_task(&self) -> usize {
        self.cpus_per_agent.unwrap_or(self.slots()).max(1)
    }

    /// Jobs one agent runs at a time.
    pub fn slots(&self) -> usize {
        if self.gpus_per_agent > 0 {
            self.gpus_per_agent * self.per_gpu
        } else {
            self.workers
        }
    }

    /// The sbatch script. Assumes [`SlurmJob::validate`] passed.
    pub fn script(&self) -> String {
        let mut s = String::from("#!/bin/bash\n");
        for directive in self.directives() {
            let _ = writeln!(s, "#SBATCH {directive}");
        }
        s.push_str(&self.body());
        s
    }

    /// The `#SBATCH` options, in order; the extra ones last.
    fn directives(&self) -> Vec<String> {
        let mut d = vec![
            format!("--job-name={}", self.job_name),
            format!("--array=0-{}", self.agents - 1),
            // %x job name, %A the array's job id, %a the task: one log per agent.
            format!("--output={}/%x-%A_%a.out", slurm_filename(&self.log_dir)),
            format!("--cpus-per-task={}", self.cpus_per_task()),
        ];
        if self.gpus_per_agent > 0 {
            d.push(format!("--gres=gpu:{}", self.gpus_per_agent));
        }
        if let Some(p) = &self.partition {
            d.push(format!("--partition={p}"));
        }
        if let Some(t) = &self.time {
            d.push(format!("--time={t}"));
        }
        // B: signals the batch shell only, which the body replaces with the agent (exec).
        d.push(format!("--signal=B:USR1@{SIGNAL_LEAD_S}"));
        d.extend(self.sbatch_args.iter().cloned());
        d
    }

    /// Everything after the `#SBATCH` block (sbatch reads directives only up to the first
    /// command, so comments go here).
    fn body(&self) -> String {
        let mut s = format!(
            "\n# sweep {}: {} agent(s), each taking jobs from the shared queue until none is left.\nset -euo pipefail\n\n",
            self.sweep, self.agents
        );
        s.push_str(&self.db_lines());
        if self.gpus_per_agent > 0 {
            s.push_str(&self.gpu_lines());
        }
        s.push_str(
            "\n# exec: the agent becomes the batch shell, the process --signal=B:USR1 reaches, so it\n\
             # can checkpoint and hand its jobs back before the time limit.\n",
        );
        let words: Vec<String> = self.agent_args().iter().map(Word::render).collect();
        let _ = writeln!(s, "exec {}", words.join(" "));
        s
    }

    fn db_lines(&self) -> String {
        match &self.db_for_script {
            Some(url) => DB_DEFAULT_LINES.replace("URL", &shell_quote(url)),
            None => DB_FROM_ENV_LINES.to_string(),
        }
    }

    /// Sets `$gpus` to this task's GPUs. Slurm names them in CUDA_VISIBLE_DEVICES: 0..G-1
    /// where cgroups hide the node's other GPUs (ConstrainDevices=yes), the node's own
    /// indices where they do not. The agent sets CUDA_VISIBLE_DEVICES per job from
    /// `--gpus`, so a fixed 0..G-1 would put every task on the node's first GPUs.
    fn gpu_lines(&self) -> String {
        let fallback: Vec<String> = (0..self.gpus_per_agent).map(|g| g.to_string()).collect();
        GPU_LINES.replace("FALLBACK", &fallback.join(","))
    }

    /// The agent's command line.
    fn agent_args(&self) -> Vec<Word> {
        let lit = |s: &str| Word::Lit(s.to_string());
        let mut a = vec![
            Word::Lit(self.exe.to_string_lossy().into_owned()),
            // The agent reads SWEEP_DB from its environment: a URL on the command line
            // (and its password) would be visible to every user of the node in `ps`.
            lit("agent"),
            lit("--sweep"),
            lit(&self.sweep),
        ];
        if self.gpus_per_agent > 0 {
            a.extend([lit("--gpus"), Word::Var("gpus"), lit("--per-gpu")]);
            a.push(lit(&self.per_gpu.to_string()));
        } else {
            a.extend([lit("--workers"), lit(&self.workers.to_string())]);
        }
        if let Some(runs) = &self.runs {
            a.extend([lit("--runs"), lit(&runs.to_string_lossy())]);
        }
        a
    }
}

const DB_DEFAULT_LINES: &str = r#"if [ -z "${SWEEP_DB:-}" ]; then
    SWEEP_DB=URL
fi
export SWEEP_DB
"#;

const DB_FROM_ENV_LINES: &str = r#"# The database URL holds a password, so it is not written here: sbatch carries
# SWEEP_DB over from the shell that submits this script.
: "${SWEEP_DB:?set SWEEP_DB to the PostgreSQL URL before sbatch}"
export SWEEP_DB
"#;

const GPU_LINES: &str = r#"
# This task's GPUs, as Slurm numbers them here (FALLBACK outside Slurm).
gpus="${CUDA_VISIBLE_DEVICES:-FALLBACK}"
case "$gpus" in
    ''|*[!0-9,]*)
        echo "sweep: CUDA_VISIBLE_DEVICES=$gpus is not a list of GPU indices" >&2
        exit 1
        ;;
esac
"#;

/// One word of the agent's command line: literal text, or a variable the shell expands.
enum Word {
    Lit(String),
    Var(&'static str),
}

impl Word {
    fn render(&self) -> String {
        match self {
            Word::Lit(s) => shell_quote(s),
            Word::Var(name) => format!("\"${name}\""),
        }
    }
}

/// A path in an `--output=` pattern: a literal `%` is written `%%`.
fn slurm_filename(path: &Path) -> String {
    path.to_string_lossy().replace('%', "%%")
}

/// `s` as one word for bash: bare when it has only characters the shell leaves alone,
/// else in single quotes (a `'` inside becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./,:=@%+".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `url` when it may be written into a script: it has no password, neither as
/// `user:password@` nor as a `password=` parameter.
pub fn db_url_for_script(url: &str) -> Option<String> {
    (!url_has_password(url)).then(|| url.to_string())
}

fn url_has_password(url: &str) -> bool {
    // Both URL parameters and libpq's `key=value` form; a false alarm only means the
    // script reads $SWEEP_DB.
    if url.to_ascii_lowercase().contains("password=") {
        return true;
    }
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((userinfo, _)) => userinfo.contains(':'),
        None => false,
    }
}

fn check_script_url(url: &str) -> Result<(), SlurmConfigError> {
    if url_has_password(url) {
        return invalid("the database URL for the script holds a password; leave it out so the script reads $SWEEP_DB");
    }
    if url.is_empty() || url.chars().any(char::is_control) {
        return invalid(format!(
            "the database URL {url:?} is empty or has control characters"
        ));
    }
    Ok(())
}

/// The sweep file's rule for names: they end up in paths, command lines and `#SBATCH`.
fn check_name(what: &str, name: &str) -> Result<(), SlurmConfigError> {
    use crate::sweepfile::parse::{is_valid_name, NAME_RULE};
    if is_valid_name(name) {
        Ok(())
    } else {
        invalid(format!("{what} {name:?} {NAME_RULE}"))
    }
}

/// A partition, or a comma-separated list of them (Slurm takes the first that fits).
fn check_partition(p: &str) -> Result<(), SlurmConfigError> {
    let ok = p.split(',').all(|name| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    });
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "partition {p:?} must be a name (or a comma-separated list) of a-z, A-Z, 0-9, '.', '_', '-'"
        ))
    }
}

fn check_absolute(what: &str, path: &Path) -> Result<(), SlurmConfigError> {
    let text = utf8(what, path)?;
    if !path.is_absolute() {
        return invalid(format!("{what} {text:?} must be an absolute path"));
    }
    if text.chars().any(char::is_control) {
        return invalid(format!("{what} {text:?} has control characters"));
    }
    Ok(())
}

fn utf8<'a>(what: &str, path: &'a Path) -> Result<&'a str, SlurmConfigError> {
    path.to_str()
        .ok_or_else(|| SlurmConfigError(format!("{what} {} is not UTF-8", path.display())))
}

/// A time limit the agents can work in: one Slurm accepts, longer than the warning.
fn check_time(t: &str) -> Result<(), SlurmConfigError> {
    match time_limit_secs(t) {
        None => invalid(format!(
            "time limit {t:?} is not one Slurm accepts: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"
        )),
        Some(Some(s)) if s > 0 && s <= SIGNAL_LEAD_S + SIGNAL_EARLY_S => invalid(format!(
            "time limit {t:?} is too short: the agents are told to stop {SIGNAL_LEAD_S} s before it (Slurm may tell them up to {SIGNAL_EARLY_S} s earlier)"
        )),
        Some(_) => Ok(()),
    }
}

/// Parses Slurm's `--time`: `Some(Some(seconds))`, `Some(None)` for no limit
/// (`UNLIMITED`, `INFINITE`), `None` when Slurm would refuse it. Like Slurm, the fields
/// are not range-checked (`90` minutes and `1:90` are fine); 0 means no limit to Slurm.
pub fn time_limit_secs(t: &str) -> Option<Option<u64>> {
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("infinite") {
        return Some(None);
    }
    let (days, clock) = match t.split_once('-') {
        Some((d, rest)) => (Some(number(d)?), rest),
        None => (None, t),
    };
    let fields = clock.split(':').map(number).collect::<Option<Vec<u64>>>()?;
    let secs = match (days, fields.as_slice()) {
        (None, [m]) => m * 60,
        (None, [m, s]) => m * 60 + s,
        (_, [h, m, s]) => h * 3600 + m * 60 + s,
        (Some(_), [h]) => h * 3600,
        (Some(_), [h, m]) => h * 3600 + m * 60,
        _ => return None,
    };
    Some(Some(days.unwrap_or(0) * 86_400 + secs))
}

fn number(field: &str) -> Option<u64> {
    if field.is_empty() || field.len() > 9 || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    field.parse().ok()
}

/// sbatch options the script writes itself, and what sets them instead.
const OWNED_OPTIONS: &[(&str, Option<char>, &str)] = &[
    ("--array", Some('a'), "the number of agents"),
    ("--job-name", Some('J'), "the job name"),
    ("--output", Some('o'), "the log folder"),
    ("--cpus-per-task", Some('c'), "the CPUs per agent"),
    ("--gres", None, "the GPUs per agent"),
    ("--partition", Some('p'), "the partition"),
    ("--time", Some('t'), "the time limit"),
    (
        "--signal",
        None,
        "sweep itself: the agents rely on it to hand jobs back in time",
    ),
];

/// An extra sbatch option: one `#SBATCH` line, and not one the script already writes.
fn check_sbatch_arg(arg: &str) -> Result<(), SlurmConfigError> {
    if !arg.starts_with('-') || arg.chars().any(char::is_control) {
        return invalid(format!(
            "sbatch argument {arg:?} must be one option starting with '-', on one line"
        ));
    }
    let name = arg.split(['=', ' ', '\t']).next().unwrap_or(arg);
    for (long, short, source) in OWNED_OPTIONS {
        // getopt takes unambiguous abbreviations of long options (`--part=gpu`).
        let is_long = name.len() > 3 && long.starts_with(name);
        let is_short = short.is_some_and(|c| {
            let mut chars = arg.chars();
            chars.next() == Some('-') && chars.next() == Some(c)
        });
        if is_long || is_short {
            return invalid(format!(
                "sbatch argument {arg:?}: {long} is written by sweep (from {source}); leave it out"
            ));
        }
    }
    Ok(())
}

/// Runs `sbatch --parsable SCRIPT` and returns the job id it printed.
pub fn submit(script_path: &Path) -> anyhow::Result<String> {
    submit_with(OsStr::new("sbatch"), script_path)
}

fn submit_with(program: &OsStr, script: &Path) -> anyhow::Result<String> {
    let out = match Command::new(program).arg("--parsable").arg(script).output() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
            "sbatch is not installed here (not on PATH); submit {} with sbatch on a Slurm login node",
            script.display()
        ),
        result => result.with_context(|| format!("running sbatch on {}", script.display()))?,
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "sbatch refused {} ({}): {}",
            script.display(),
            out.status,
            stderr.trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    parse_job_id(&stdout).with_context(|| {
        format!(
            "sbatch accepted {} but printed no job id (stdout {:?}, stderr {:?})",
            script.display(),
            stdout.trim(),
            stderr.trim()
        )
    })
}

/// `--parsable` prints `JOBID` or `JOBID;CLUSTER`; the last line, in case a site's
/// submit plugin printed something first.
fn parse_job_id(stdout: &str) -> Option<String> {
    let line = stdout.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let id = line.split(';').next().unwrap_or("").trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// The Slurm job this process runs in, from the environment: `ARRAYJOB_TASK` (`123_4`)
/// inside an array, else the job id; `None` outside Slurm.
pub fn slurm_job_from_env() -> Option<String> {
    slurm_job_from(|key| std::env::var(key).ok())
}

/// [`slurm_job_from_env`] over any lookup, so it is testable without the environment.
pub fn slurm_job_from(lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    let get = |key: &str| {
        lookup(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    match (get("SLURM_ARRAY_JOB_ID"), get("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => get("SLURM_JOB_ID"),
    }
}

// The tests run the script with bash and fake executables (Unix permissions).
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Output;

    fn gpu_job() -> SlurmJob {
        SlurmJob {
            sweep: "unet-lr".into(),
            agents: 4,
            gpus_per_agent: 2,
            per_gpu: 3,
            workers: 1,
            cpus_per_agent: None,
            partition: Some("gpu".into()),
            time: Some("12:00:00".into()),
            sbatch_args: vec!["--mem=64G".into(), "--account=lab".into()],
            exe: "/opt/sweep/bin/sweep".into(),
            db_for_script: None,
            runs: Some("/scratch/runs".into()),
            log_dir: "/scratch/logs".into(),
            job_name: "sweep-unet-lr".into(),
        }
    }

    fn cpu_job() -> SlurmJob {
        SlurmJob {
            gpus_per_agent: 0,
            workers: 5,
            partition: None,
            time: None,
            sbatch_args: vec![],
            ..gpu_job()
        }
    }

    fn directives(script: &str) -> Vec<&str> {
        script
            .lines()
            .filter_map(|l| l.strip_prefix("#SBATCH "))
            .collect()
    }

    fn exec_line(script: &str) -> &str {
        script.lines().rfind(|l| !l.is_empty()).unwrap()
    }

    #[test]
    fn array_has_one_task_per_agent() {
        assert!(directives(&gpu_job().script()).contains(&"--array=0-3"));
        let one = SlurmJob {
            agents: 1,
            ..gpu_job()
        };
        assert!(directives(&one.script()).contains(&"--array=0-0"));
    }

    #[test]
    fn signal_reaches_the_agent_through_exec() {
        let script = gpu_job().script();
        assert!(directives(&script).contains(&"--signal=B:USR1@120"));
        assert!(exec_line(&script).starts_with("exec /opt/sweep/bin/sweep agent "));
        let execs = script.lines().filter(|l| l.starts_with("exec ")).count();
        assert_eq!(execs, 1);
    }

    #[test]
    fn directives_come_before_the_first_command() {
        let script = gpu_job().script();
        let first_command = script.find("set -euo pipefail").unwrap();
        let last_directive = script.rfind("#SBATCH").unwrap();
        assert!(last_directive < first_command);
        assert!(script.starts_with("#!/bin/bash\n#SBATCH --job-name=sweep-unet-lr\n"));
    }

    #[test]
    fn gpu_agent_asks_for_gres_and_takes_its_gpus_from_slurm() {
        let job = gpu_job();
        let script = job.script();
        let d = directives(&script);
        assert!(d.contains(&"--gres=gpu:2"));
        assert!(d.contains(&"--cpus-per-task=6"), "2 GPUs x 3 jobs");
        assert!(d.contains(&"--partition=gpu"));
        assert!(d.contains(&"--time=12:00:00"));
        assert!(d.contains(&"--output=/scratch/logs/%x-%A_%a.out"));
        // Extra options last, each its own line.
        assert_eq!(&d[d.len() - 2..], ["--mem=64G", "--account=lab"]);
        assert_eq!(
            exec_line(&script),
            "exec /opt/sweep/bin/sweep agent --sweep unet-lr \
             --gpus \"$gpus\" --per-gpu 3 --runs /scratch/runs"
        );
    }

    #[test]
    fn cpu_agent_has_no_gres_and_runs_workers() {
        let script = cpu_job().script();
        assert!(!script.contains("--gres"));
        assert!(!script.contains("--gpus"));
        assert!(!script.contains("--partition"));
        assert!(!script.contains("--time"));
        assert!(directives(&script).contains(&"--cpus-per-task=5"));
        assert!(exec_line(&script).ends_with("--sweep unet-lr --workers 5 --runs /scratch/runs"));
        let pinned = SlurmJob {
            cpus_per_agent: Some(16),
            runs: None,
            ..cpu_job()
        };
        let script = pinned.script();
        assert!(directives(&script).contains(&"--cpus-per-task=16"));
        assert!(!script.contains("--runs"));
    }

    #[test]
    fn log_folder_percent_is_literal() {
        let job = SlurmJob {
            log_dir: "/scratch/100%/logs".into(),
            ..gpu_job()
        };
        assert!(directives(&job.script()).contains(&"--output=/scratch/100%%/logs/%x-%A_%a.out"));
    }

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("/opt/sweep-1.0/bin_x"), "/opt/sweep-1.0/bin_x");
        assert_eq!(shell_quote("0,1"), "0,1");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("my runs"), "'my runs'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME;rm"), "'$HOME;rm'");
    }

    #[test]
    fn paths_with_spaces_and_quotes_are_quoted() {
        let job = SlurmJob {
            exe: "/home/o'neil/my tools/sweep".into(),
            runs: Some("/scratch/o'neil runs".into()),
            ..gpu_job()
        };
        job.validate().unwrap();
        let line = exec_line(&job.script()).to_string();
        assert!(line.starts_with(r"exec '/home/o'\''neil/my tools/sweep' agent"));
        assert!(line.ends_with(r"--runs '/scratch/o'\''neil runs'"));
    }

    #[test]
    fn a_password_never_reaches_the_script() {
        assert_eq!(db_url_for_script("postgres://u:secret@db/sweeps"), None);
        assert_eq!(
            db_url_for_script("postgres://u@db/sweeps?password=secret"),
            None
        );
        assert_eq!(db_url_for_script("host=db user=u password=secret"), None);
        let plain = "postgres://u@db.lab:5432/sweeps?sslmode=require";
        assert_eq!(db_url_for_script(plain).as_deref(), Some(plain));
        assert!(db_url_for_script("postgresql:///sweeps").is_some());

        let leaky = SlurmJob {
            db_for_script: Some("postgres://u:secret@db/sweeps".into()),
            ..gpu_job()
        };
        assert!(leaky.validate().unwrap_err().0.contains("password"));

        let script = gpu_job().script();
        assert!(script.contains(": \"${SWEEP_DB:?"));
        let with_url = SlurmJob {
            db_for_script: Some(plain.into()),
            ..gpu_job()
        };
        assert!(with_url
            .script()
            .contains(&format!("SWEEP_DB={}\n", shell_quote(plain))));
    }

    #[test]
    fn time_limits_as_slurm_takes_them() {
        for (t, secs) in [
            ("30", 1800),
            ("90", 5400),
            ("30:15", 1815),
            ("12:00:00", 43_200),
            ("1-12", 129_600),
            ("1-12:30", 131_400),
            ("2-00:00:30", 172_830),
            ("0", 0),
        ] {
            assert_eq!(time_limit_secs(t), Some(Some(secs)), "{t}");
        }
        assert_eq!(time_limit_secs("UNLIMITED"), Some(None));
        assert_eq!(time_limit_secs("infinite"), Some(None));
        for bad in [
            "",
            "1h",
            "1:2:3:4",
            "1-",
            "-5",
            "1-2-3",
            "1--2",
            ":30",
            "12:00:00 ",
            "+5",
            "1.5",
        ] {
            assert_eq!(time_limit_secs(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn time_validation_explains() {
        let with = |t: &str| {
            SlurmJob {
                time: Some(t.into()),
                ..gpu_job()
            }
            .validate()
        };
        assert!(with("1-00:00:00").is_ok());
        assert!(with("4").is_ok());
        assert!(with("UNLIMITED").is_ok());
        assert!(with("2h").unwrap_err().0.contains("D-HH:MM:SS"));
        assert!(with("3").unwrap_err().0.contains("too short"));
        assert!(with("2:00").unwrap_err().0.contains("too short"));
    }

    #[test]
    fn validation_catches_each_mistake() {
        assert_eq!(gpu_job().validate(), Ok(()));
        assert_eq!(cpu_job().validate(), Ok(()));
        let cases: Vec<(SlurmJob, &str)> = vec![
            (
                SlurmJob {
                    agents: 0,
                    ..gpu_job()
                },
                "agents",
            ),
            (
                SlurmJob {
                    per_gpu: 0,
                    ..gpu_job()
                },
                "per GPU",
            ),
            (
                SlurmJob {
                    workers: 0,
                    ..cpu_job()
                },
                "worker",
            ),
            (
                SlurmJob {
                    cpus_per_agent: Some(0),
                    ..gpu_job()
                },
                "CPUs",
            ),
            (
                SlurmJob {
                    exe: "target/sweep".into(),
                    ..gpu_job()
                },
                "absolute",
            ),
            (
                SlurmJob {
                    runs: Some("runs".into()),
                    ..gpu_job()
                },
                "absolute",
            ),
            (
                SlurmJob {
                    log_dir: "/my logs".into(),
                    ..gpu_job()
                },
                "spaces",
            ),
            (
                SlurmJob {
                    job_name: "a\nb".into(),
                    ..gpu_job()
                },
                "job name",
            ),
            (
                SlurmJob {
                    job_name: "it's".into(),
                    ..gpu_job()
                },
                "job name",
            ),
            (
                SlurmJob {
                    sweep: "a b".into(),
                    ..gpu_job()
                },
                "sweep name",
            ),
            (
                SlurmJob {
                    partition: Some("gpu,".into()),
                    ..gpu_job()
                },
                "partition",
            ),
            (
                SlurmJob {
                    partition: Some("gpu a100".into()),
                    ..gpu_job()
                },
                "partition",
            ),
        ];
        for (job, needle) in cases {
            let err = job.validate().unwrap_err().0;
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
    }

    #[test]
    fn extra_sbatch_args_are_checked() {
        let with = |arg: &str| {
            SlurmJob {
                sbatch_args: vec![arg.into()],
                ..gpu_job()
            }
            .validate()
        };
        for ok in [
            "--mem=64G",
            "--gres-flags=enforce-binding",
            "-A lab",
            "--qos=long",
            "--exclusive",
        ] {
            assert_eq!(with(ok), Ok(()), "{ok}");
        }
        for owned in [
            "--array=0-9",
            "--part=gpu",
            "-pgpu",
            "-p gpu",
            "--time 1:00:00",
            "--signal=USR1@60",
            "-J x",
        ] {
            assert!(
                with(owned).unwrap_err().0.contains("written by sweep"),
                "{owned}"
            );
        }
        assert!(with("--mem=1G\n#SBATCH --array=0-99").is_err());
        assert!(with("mem=1G").is_err());
    }

    #[test]
    fn slurm_job_from_the_environment() {
        fn env<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
            move |k| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
            }
        }
        let array = [
            ("SLURM_ARRAY_JOB_ID", "123"),
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_JOB_ID", "127"),
        ];
        assert_eq!(slurm_job_from(env(&array)).as_deref(), Some("123_4"));
        assert_eq!(
            slurm_job_from(env(&[("SLURM_JOB_ID", "99")])).as_deref(),
            Some("99")
        );
        let half = [("SLURM_ARRAY_JOB_ID", "123"), ("SLURM_JOB_ID", "99")];
        assert_eq!(slurm_job_from(env(&half)).as_deref(), Some("99"));
        assert_eq!(slurm_job_from(env(&[("SLURM_JOB_ID", " ")])), None);
        assert_eq!(slurm_job_from(env(&[])), None);
    }

    #[test]
    fn sbatch_parsable_output() {
        assert_eq!(parse_job_id("4242\n").as_deref(), Some("4242"));
        assert_eq!(parse_job_id("4242;cluster1\n").as_deref(), Some("4242"));
        assert_eq!(
            parse_job_id("note: fairshare\n77;c\n\n").as_deref(),
            Some("77")
        );
        assert_eq!(parse_job_id("\n"), None);
        assert_eq!(parse_job_id(";cluster"), None);
    }

    /// An executable shell script at `path`.
    fn write_exe(path: &Path, body: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Runs `make()`, again if a parallel test's fork still held a just-written
    /// executable open (ETXTBSY).
    fn run_retrying(make: impl Fn() -> Command) -> Output {
        for _ in 0..5 {
            match make().output() {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    panic!(
                        "{:?} not found: the script tests need bash",
                        make().get_program()
                    )
                }
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {}
                Err(e) => panic!("{e}"),
                Ok(out) if String::from_utf8_lossy(&out.stderr).contains("Text file busy") => {}
                Ok(out) => return out,
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("executable stayed busy")
    }

    fn is_busy(e: &anyhow::Error) -> bool {
        e.chain().any(|c| {
            c.downcast_ref::<io::Error>()
                .is_some_and(|io| io.raw_os_error() == Some(libc::ETXTBSY))
        })
    }

    #[test]
    fn script_parses_with_bash() {
        let dir = tempfile::tempdir().unwrap();
        for (i, job) in [gpu_job(), cpu_job()].into_iter().enumerate() {
            let path = dir.path().join(format!("job{i}.sbatch"));
            std::fs::write(&path, job.script()).unwrap();
            let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Runs the script with a fake agent that prints `db=$SWEEP_DB`, then its arguments,
    /// one a line.
    fn run_with_fake_agent(job: &SlurmJob, env: &[(&str, &str)]) -> Output {
        write_exe(
            &job.exe,
            r#"printf 'db=%s\n' "$SWEEP_DB"; for a in "$@"; do printf '%s\n' "$a"; done"#,
        );
        let script = job.exe.with_file_name("job.sbatch");
        std::fs::write(&script, job.script()).unwrap();
        run_retrying(|| {
            let mut cmd = Command::new("bash");
            cmd.arg(&script)
                .env_remove("SWEEP_DB")
                .env_remove("CUDA_VISIBLE_DEVICES")
                .envs(env.iter().copied());
            cmd
        })
    }

    /// The agent's arguments, when the script ran it.
    fn agent_args_seen(out: Output) -> Vec<String> {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout.lines().map(String::from).collect()
    }

    #[test]
    fn agent_gets_every_argument_intact() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("o'neil runs");
        let job = SlurmJob {
            exe: dir.path().join("it's my tools").join("sweep"),
            runs: Some(runs.clone()),
            ..gpu_job()
        };
        let out = run_with_fake_agent(&job, &[("SWEEP_DB", "postgres://u:p w@db/x")]);
        let args = agent_args_seen(out);
        let expected = [
            "db=postgres://u:p w@db/x",
            "agent",
            "--sweep",
            "unet-lr",
            "--gpus",
            "0,1",
            "--per-gpu",
            "3",
            "--runs",
            runs.to_str().unwrap(),
        ];
        assert_eq!(args, expected);
    }

    #[test]
    fn agent_uses_the_gpus_slurm_gave_the_task() {
        let dir = tempfile::tempdir().unwrap();
        let job = SlurmJob {
            exe: dir.path().join("sweep"),
            ..gpu_job()
        };
        let db = ("SWEEP_DB", "postgres://u@db/x");
        let gpus_seen = |env: &[(&str, &str)]| {
            let args = agent_args_seen(run_with_fake_agent(&job, env));
            let at = args.iter().position(|a| a == "--gpus").unwrap();
            args[at + 1].clone()
        };
        // No cgroup isolation: the node's own indices, which the agent must use as is.
        assert_eq!(gpus_seen(&[db, ("CUDA_VISIBLE_DEVICES", "2,3")]), "2,3");
        assert_eq!(gpus_seen(&[db, ("CUDA_VISIBLE_DEVICES", "0,1")]), "0,1");
        assert_eq!(gpus_seen(&[db]), "0,1", "outside Slurm");
        let out = run_with_fake_agent(&job, &[db, ("CUDA_VISIBLE_DEVICES", "NoDevFiles")]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not a list of GPU indices"), "{stderr}");
    }

    #[test]
    fn script_requires_or_defaults_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let job = SlurmJob {
            exe: dir.path().join("sweep"),
            ..cpu_job()
        };
        let out = run_with_fake_agent(&job, &[]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("set SWEEP_DB"));

        let job = SlurmJob {
            db_for_script: Some("postgres://u@db/x".into()),
            ..job
        };
        let db_arg = |out: Output| {
            let first = agent_args_seen(out).first().cloned();
            first.and_then(|l| l.strip_prefix("db=").map(String::from))
        };
        let out = run_with_fake_agent(&job, &[]);
        assert_eq!(db_arg(out).as_deref(), Some("postgres://u@db/x"));
        let out = run_with_fake_agent(&job, &[("SWEEP_DB", "postgres://other@db/y")]);
        assert_eq!(db_arg(out).as_deref(), Some("postgres://other@db/y"));
    }

    #[test]
    fn submit_reports_id_refusal_and_missing_sbatch() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("job.sbatch");
        let ok = dir.path().join("sbatch-ok");
        write_exe(&ok, r#"[ "$1" = --parsable ] && echo '4242;cluster1'"#);
        let submit_via = |program: &Path| {
            for _ in 0..5 {
                match submit_with(program.as_os_str(), &script) {
                    Err(e) if is_busy(&e) => {
                        std::thread::sleep(std::time::Duration::from_millis(50))
                    }
                    result => return result,
                }
            }
            panic!("{} stayed busy", program.display())
        };
        assert_eq!(submit_via(&ok).unwrap(), "4242");

        let refuse = dir.path().join("sbatch-refuse");
        write_exe(
            &refuse,
            "echo 'sbatch: error: invalid partition' >&2; exit 1",
        );
        let err = submit_via(&refuse).unwrap_err().to_string();
        assert!(
            err.contains("invalid partition") && err.contains("job.sbatch"),
            "{err}"
        );

        let err = submit_with(OsStr::new("/nonexistent/sbatch"), &script).unwrap_err();
        assert!(err.to_string().contains("not installed"), "{err}");
    }
}
