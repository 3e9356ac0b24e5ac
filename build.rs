//! Puts libtorch's folder on the binary's rpath so `target/*/sweep` starts without
//! LD_LIBRARY_PATH. torch-sys reports the folder through its `links` metadata.
fn main() {
    // sqlx::migrate!() embeds migrations/: a new file there must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        // Resolve the checkout's `.libtorch` link to the shared cache so copies of the
        // binary keep working when the checkout moves.
        let lib = std::fs::canonicalize(&lib)
            .map(|p| p.display().to_string())
            .unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
