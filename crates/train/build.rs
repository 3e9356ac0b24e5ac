//! Puts libtorch's folder on the rpath of this crate's test binaries (unit and integration),
//! so `cargo test -p sweep-train` starts without LD_LIBRARY_PATH, as the root build.rs does
//! for the `sweep` binary (torch-sys reports the folder through its `links` metadata).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        // Resolve the checkout's `.libtorch` link, as the root build.rs does.
        let lib = std::fs::canonicalize(&lib)
            .map(|p| p.display().to_string())
            .unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
