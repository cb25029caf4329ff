//! Build script: only for the binary without the `bundled` feature (the writer that runs on
//! another SQLite build), which links the shared libsqlite3 with lazy binding.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_BUNDLED").is_none() {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,lazy");
    }
}
