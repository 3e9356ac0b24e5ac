//! Decides, when the tests are built, which test services are missing: each one gets the cfg
//! `missing_<service>`, and the crate's macros then mark that service's tests ignored with
//! the reason (a test that cannot run must not pass). `scripts/services/with-services`
//! exports `SWEEP_TEST_SERVICES_UP` (`postgres,slurm,chromium`, those it started): a list
//! that stays the same from run to run, unlike the servers' URLs, so running the tests again
//! rebuilds nothing. Under `CI` nothing is missing: every test runs, and one whose server is
//! absent fails.

const SERVICES: [&str; 3] = ["postgres", "slurm", "chromium"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo:rerun-if-env-changed=SWEEP_TEST_SERVICES_UP");
    for s in SERVICES {
        println!("cargo::rustc-check-cfg=cfg(missing_{s})");
    }
    if std::env::var_os("CI").is_some() {
        return;
    }
    let up = std::env::var("SWEEP_TEST_SERVICES_UP").unwrap_or_default();
    for s in SERVICES {
        if !up.split(',').any(|u| u.trim() == s) {
            println!("cargo:rustc-cfg=missing_{s}");
        }
    }
}
