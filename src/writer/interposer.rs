//! The `LD_PRELOAD` interposer (`src/interposer/`) as the engine uses it: compiled from the
//! source tree crashfuzz was built from, with the cargo that runs crashfuzz (`$CARGO`, else
//! `cargo`), into its own target directory (a no-op when up to date, seconds once), and loaded
//! into an application's writer for the faults that need its file I/O traced (power loss).

use crate::error::{Error, Result};
use crate::sqlite::builds;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Where the interposer is built, under crashfuzz's own target directory.
const TARGET_SUBDIR: &str = "target/interposer";
/// Bound on the compile, on a loaded 2-core machine from scratch.
const BUILD_TIME_MAX: Duration = Duration::from_secs(15 * 60);

/// The interposer's shared library, compiled (or found up to date) once per process.
pub fn library() -> Result<PathBuf> {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = built.as_ref() {
        return Ok(path.clone());
    }
    let path = build(Path::new(env!("CARGO_MANIFEST_DIR")))?;
    *built = Some(path.clone());
    Ok(path)
}

fn build(manifest_dir: &Path) -> Result<PathBuf> {
    let unusable = |reason: String| Error::Harness(format!("the LD_PRELOAD interposer: {reason}"));
    let manifest = manifest_dir.join("src/interposer/Cargo.toml");
    if !manifest.is_file() {
        return Err(unusable(format!(
            "it is compiled from crashfuzz's source, which is no longer at {} (run crashfuzz from its source tree)",
            manifest_dir.display()
        )));
    }
    let target_dir = manifest_dir.join(TARGET_SUBDIR);
    let cargo = builds::cargo();
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--quiet", "--release", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    let shown = format!("{} build -p crashfuzz-interposer", cargo.to_string_lossy());
    builds::output_within(&mut command, BUILD_TIME_MAX)
        .map_err(|e| unusable(format!("`{shown}` could not run: {e}")))?
        .map_err(|failure| unusable(format!("`{shown}` {failure}")))?;
    let library = target_dir.join("release/libcrashfuzz_interposer.so");
    if !library.is_file() {
        return Err(unusable(format!("`{shown}` made no {}", library.display())));
    }
    Ok(library)
}
