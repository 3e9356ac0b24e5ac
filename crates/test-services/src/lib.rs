//! Tests that need a server are written inside one of this crate's macros, which marks them
//! `#[ignore]` with the reason when the build found the server missing (see build.rs), so
//! that `cargo test` says "ignored" instead of a silent "ok":
//!
//! ```ignore
//! sweep_test_services::needs_postgres! {
//!     #[test]
//!     fn agents_share_a_queue() { ... }
//! }
//! ```
//!
//! A test the macro leaves in must then find its server (`SWEEP_TEST_POSTGRES`, ...) and
//! fails when it does not: under `CI`, or when the list says the server is up, a missing
//! server is a failure, never a skip.

/// What a test that needs a server it cannot find says when it fails.
pub fn missing(service: &str, var: &str) -> ! {
    panic!(
        "this test needs {service} and {var} is not set: run it under scripts/services/with-services \
         (scripts/test does), or set {var} and SWEEP_TEST_SERVICES_UP"
    )
}

/// The value of `var`, the server of a test that needs `service`; fails when it is not set.
pub fn server(service: &str, var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => missing(service, var),
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __mark {
    (ignore = $why:literal; $($item:tt)*) => {
        #[ignore = $why]
        $($item)*
    };
    (run; $($item:tt)*) => {
        $($item)*
    };
}

/// Tests that need the PostgreSQL server (`SWEEP_TEST_POSTGRES`).
#[cfg(missing_postgres)]
#[macro_export]
macro_rules! needs_postgres {
    ($($item:tt)*) => {
        $crate::__mark!(ignore = "needs PostgreSQL: run under scripts/services/with-services (scripts/test does), or set SWEEP_TEST_POSTGRES and SWEEP_TEST_SERVICES_UP=postgres"; $($item)*);
    };
}
#[cfg(not(missing_postgres))]
#[macro_export]
macro_rules! needs_postgres {
    ($($item:tt)*) => { $crate::__mark!(run; $($item)*); };
}

/// Tests that need the single-node Slurm cluster (`SWEEP_TEST_SLURM`).
#[cfg(missing_slurm)]
#[macro_export]
macro_rules! needs_slurm {
    ($($item:tt)*) => {
        $crate::__mark!(ignore = "needs Slurm: run under scripts/services/with-services (scripts/test does), or set SWEEP_TEST_SLURM and SWEEP_TEST_SERVICES_UP=slurm"; $($item)*);
    };
}
#[cfg(not(missing_slurm))]
#[macro_export]
macro_rules! needs_slurm {
    ($($item:tt)*) => { $crate::__mark!(run; $($item)*); };
}

/// Tests that need headless Chromium (`SWEEP_TEST_CHROMIUM`).
#[cfg(missing_chromium)]
#[macro_export]
macro_rules! needs_chromium {
    ($($item:tt)*) => {
        $crate::__mark!(ignore = "needs Chromium: run under scripts/services/with-services (scripts/test does), or set SWEEP_TEST_CHROMIUM and SWEEP_TEST_SERVICES_UP=chromium"; $($item)*);
    };
}
#[cfg(not(missing_chromium))]
#[macro_export]
macro_rules! needs_chromium {
    ($($item:tt)*) => { $crate::__mark!(run; $($item)*); };
}

/// Tests that need no server: the same suite written once for several backends
/// (`anywhere!` for SQLite beside `needs_postgres!`).
#[macro_export]
macro_rules! anywhere {
    ($($item:tt)*) => { $($item)* };
}
