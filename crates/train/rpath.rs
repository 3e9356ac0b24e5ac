// Shared by the build scripts of the packages whose binaries load libtorch (included with
// `include!`): puts libtorch's folder on their rpath so they start without LD_LIBRARY_PATH.
// torch-sys reports the folder through its `links` metadata.

/// Emits `cargo:<directive>=-Wl,-rpath,<libtorch lib folder>` when torch-sys is a dependency.
fn rpath_to_libtorch(directive: &str) {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        // Resolve the checkout's `.libtorch` link to the shared cache so copies of the
        // binary keep working when the checkout moves.
        let lib = std::fs::canonicalize(&lib)
            .map(|p| p.display().to_string())
            .unwrap_or(lib);
        println!("cargo:{directive}=-Wl,-rpath,{lib}");
    }
}
