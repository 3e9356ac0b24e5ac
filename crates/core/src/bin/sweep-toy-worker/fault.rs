//! `SWEEP_TOY_FAULTS`: failures on request, each the way the real one reaches the
//! scheduler (exit status, signal, stderr), so that its classification is what is tested.
//!
//! The value is a list of faults separated by `;`, each `[SELECTOR:]KIND@ITER[/ATTEMPTS]`:
//! - SELECTOR: conditions joined by `&`, all of which must hold: `seed=N` (the job's seed),
//!   `label~TEXT` (TEXT occurs in the job's label); none: every job;
//! - KIND: `abort` (SIGABRT), `exit` (exit code 3), `oom` (Rust's allocation-failure abort),
//!   `nan` (the loss becomes NaN: the job ends diverged), `torch` (a failed libtorch call:
//!   tch's panic);
//! - ITER: the 1-based iteration at whose start the fault fires;
//! - ATTEMPTS: comma-separated 1-based attempt numbers; none: every attempt.
//!
//! Example: `seed=1:abort@4; seed=2:exit@6/1; label~crop 320&seed=0:nan@5`. Anything else
//! is an error naming the fault and what is wrong with it.

use std::fmt;
use std::str::FromStr;

/// How a job misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Abort,
    Exit,
    Oom,
    Nan,
    Torch,
}

const KINDS: [(&str, Kind); 5] = [
    ("abort", Kind::Abort),
    ("exit", Kind::Exit),
    ("oom", Kind::Oom),
    ("nan", Kind::Nan),
    ("torch", Kind::Torch),
];

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = KINDS
            .iter()
            .find(|(_, k)| k == self)
            .map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

/// One condition of a selector.
#[derive(Clone, Debug, PartialEq)]
enum Condition {
    Seed(u64),
    LabelContains(String),
}

/// One fault of the list.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    when: Vec<Condition>,
    pub kind: Kind,
    pub at_iter: usize,
    /// Empty: every attempt.
    attempts: Vec<u32>,
}

/// The job an attempt runs, as far as selectors look at it.
pub struct JobView<'a> {
    pub seed: u64,
    pub label: &'a str,
    pub attempt: u32,
}

impl Fault {
    fn applies(&self, job: &JobView, iter: usize) -> bool {
        self.at_iter == iter
            && (self.attempts.is_empty() || self.attempts.contains(&job.attempt))
            && self.when.iter().all(|c| match c {
                Condition::Seed(s) => job.seed == *s,
                Condition::LabelContains(t) => job.label.contains(t.as_str()),
            })
    }
}

/// The parsed `SWEEP_TOY_FAULTS`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults(Vec<Fault>);

impl Faults {
    /// The kind of the first fault that fires at iteration `iter` of this attempt.
    pub fn at(&self, job: &JobView, iter: usize) -> Option<Kind> {
        self.0.iter().find(|f| f.applies(job, iter)).map(|f| f.kind)
    }
}

impl FromStr for Faults {
    type Err = String;

    fn from_str(text: &str) -> Result<Faults, String> {
        let mut faults = Vec::new();
        // Empty items are allowed so that a trailing `;` is not an error.
        for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let fault = parse_fault(item).map_err(|e| format!("fault {item:?}: {e}"))?;
            faults.push(fault);
        }
        Ok(Faults(faults))
    }
}

/// `[SELECTOR:]KIND@ITER[/ATTEMPTS]`.
fn parse_fault(item: &str) -> Result<Fault, String> {
    // The last `:` ends the selector: KIND@ITER/ATTEMPTS has none, a label may.
    let (selector, what) = match item.rsplit_once(':') {
        Some((s, w)) => (Some(s), w.trim()),
        None => (None, item),
    };
    let when = match selector {
        Some(s) => s
            .split('&')
            .map(parse_condition)
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let (kind, rest) = what
        .split_once('@')
        .ok_or_else(|| format!("{what:?} is not KIND@ITER"))?;
    let kind = parse_kind(kind.trim())?;
    let (iter, attempts) = match rest.split_once('/') {
        Some((i, a)) => (i, Some(a)),
        None => (rest, None),
    };
    let at_iter = positive::<usize>("iteration", iter)?;
    let attempts = match attempts {
        Some(a) => a
            .split(',')
            .map(|n| positive::<u32>("attempt", n))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(Fault {
        when,
        kind,
        at_iter,
        attempts,
    })
}

fn parse_condition(text: &str) -> Result<Condition, String> {
    let text = text.trim();
    if let Some(seed) = text.strip_prefix("seed=") {
        let seed = seed.trim();
        return seed
            .parse()
            .map(Condition::Seed)
            .map_err(|_| format!("seed {seed:?} is not a number"));
    }
    match text.strip_prefix("label~") {
        Some(t) if !t.trim().is_empty() => Ok(Condition::LabelContains(t.trim().to_string())),
        _ => Err(format!(
            "selector {text:?}: expected seed=N or label~TEXT (joined by &)"
        )),
    }
}

fn parse_kind(name: &str) -> Result<Kind, String> {
    KINDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
        .ok_or_else(|| {
            let names: Vec<&str> = KINDS.iter().map(|(n, _)| *n).collect();
            format!("unknown kind {name:?} (expected {})", names.join(", "))
        })
}

/// A number of at least 1 (iterations and attempts count from 1).
fn positive<T: FromStr + PartialOrd + From<u8>>(what: &str, text: &str) -> Result<T, String> {
    let text = text.trim();
    match text.parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err(format!("{what} {text:?} is not a number of at least 1")),
    }
}

/// Ends the process as the real failure of `kind` does (every kind but `nan`, which the
/// caller turns into a diverged outcome).
pub fn die(kind: Kind, iter: usize) -> ! {
    eprintln!("toy: fault {kind} at iteration {iter} (SWEEP_TOY_FAULTS)");
    match kind {
        Kind::Abort => std::process::abort(),
        Kind::Exit => std::process::exit(3),
        Kind::Oom => die_of_oom(),
        Kind::Torch => fail_as_libtorch(),
        Kind::Nan => unreachable!("a NaN loss does not end the process"),
    }
}

/// Rust's allocation-failure handler: prints "memory allocation of N bytes failed" and
/// aborts, as a process whose allocation failed does.
fn die_of_oom() -> ! {
    let layout = std::alloc::Layout::from_size_align(1 << 46, 64).expect("a valid layout");
    std::alloc::handle_alloc_error(layout)
}

/// tch's error type, so that the panic below reads exactly as tch's does.
#[derive(Debug)]
enum TchError {
    // Read by the derived Debug, which is what the panic prints.
    Torch(#[allow(dead_code)] String),
}

/// A failed libtorch call as tch reports it: `unwrap` on `Err(Torch("<libtorch's text>"))`,
/// with libtorch's C++ context after its first line. The panic hook turns it into an
/// `error: libtorch: ...` line, as `sweep worker`'s does; the process exits with 101.
#[allow(clippy::unnecessary_literal_unwrap)] // the point: tch's unwrap of its error
fn fail_as_libtorch() -> ! {
    let text = "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)\n\
                Exception raised from meta at /pytorch/aten/src/ATen/native/LinearAlgebra.cpp:192 \
                (most recent call first):\nframe #0: c10::Error::Error(...)";
    Err::<(), _>(TchError::Torch(text.into())).unwrap();
    unreachable!("unwrap on an Err panics")
}

/// As `sweep worker`'s panic hook: the default report, then one `error: ` line with
/// libtorch's first line (or the panic's), which the scheduler records as the reason.
pub fn install_panic_report() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let payload = info.payload();
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        eprintln!("error: {}", summary(&text));
    }));
}

/// `libtorch: <first line>` for tch's `Torch("...")` errors, else `panicked: <first line>`.
fn summary(message: &str) -> String {
    let first = |t: &str| {
        t.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_string()
    };
    match message.split_once("Torch(\"") {
        Some((_, rest)) => {
            let text = rest.trim_end_matches("\")").replace("\\n", "\n");
            format!("libtorch: {}", first(&text.replace("\\\"", "\"")))
        }
        None => format!("panicked: {}", first(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(seed: u64, label: &str, attempt: u32) -> JobView<'_> {
        JobView {
            seed,
            label,
            attempt,
        }
    }

    #[test]
    fn selectors_kinds_iterations_and_attempts() {
        let f: Faults = "seed=1:abort@4; seed=2:exit@6/1; label~crop 320&seed=0:nan@5;torch@2/2,3;"
            .parse()
            .unwrap();
        let plain = "UNet + FCN, crop 256, 10 it, ce";
        assert_eq!(f.at(&job(1, plain, 1), 4), Some(Kind::Abort));
        assert_eq!(f.at(&job(1, plain, 1), 3), None);
        assert_eq!(f.at(&job(2, plain, 1), 6), Some(Kind::Exit));
        assert_eq!(f.at(&job(2, plain, 2), 6), None, "attempt 1 only");
        let big = "UNet + FCN, crop 320, 10 it, ce";
        assert_eq!(f.at(&job(0, big, 1), 5), Some(Kind::Nan));
        assert_eq!(f.at(&job(0, plain, 1), 5), None, "the label must match");
        assert_eq!(f.at(&job(7, plain, 3), 2), Some(Kind::Torch));
        assert_eq!(f.at(&job(7, plain, 1), 2), None);
        assert_eq!("".parse::<Faults>().unwrap(), Faults::default());
        // A label may hold a colon: the last one ends the selector.
        let f: Faults = "label~a:b:oom@3".parse().unwrap();
        assert_eq!(f.at(&job(0, "x a:b y", 1), 3), Some(Kind::Oom));
    }

    #[test]
    fn typos_are_errors_naming_the_fault() {
        let err = |s: &str| s.parse::<Faults>().unwrap_err();
        assert_eq!(
            err("seed=1:abrt@4"),
            r#"fault "seed=1:abrt@4": unknown kind "abrt" (expected abort, exit, oom, nan, torch)"#
        );
        assert!(
            err("abort").contains("is not KIND@ITER"),
            "{}",
            err("abort")
        );
        assert!(err("abort@0").contains("iteration \"0\""));
        assert!(err("abort@x").contains("iteration \"x\""));
        assert!(err("abort@3/").contains("attempt \"\""));
        assert!(err("abort@3/1,0").contains("attempt \"0\""));
        assert!(err("sed=1:abort@3").contains("expected seed=N or label~TEXT"));
        assert!(err("seed=one:abort@3").contains("seed \"one\""));
        assert!(err("label~:abort@3").contains("expected seed=N or label~TEXT"));
        assert!(err("seed=1&:abort@3").contains("selector \"\""));
    }

    #[test]
    fn panics_summarise_as_sweep_worker_does() {
        let tch = "called `Result::unwrap()` on an `Err` value: Torch(\"mat1 and mat2 shapes \
                   cannot be multiplied (2x3 and 2x3)\\nException raised from meta\")";
        assert_eq!(
            summary(tch),
            "libtorch: mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)"
        );
        assert_eq!(
            summary("index out of bounds\nmore"),
            "panicked: index out of bounds"
        );
    }
}
