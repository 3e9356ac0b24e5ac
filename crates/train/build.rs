//! libtorch's folder on the rpath of this crate's test binaries (unit and integration), so
//! `cargo test -p sweep-train` starts without LD_LIBRARY_PATH.
include!("rpath.rs");

fn main() {
    rpath_to_libtorch("rustc-link-arg");
}
