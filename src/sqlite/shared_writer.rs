//! The writer that runs on any SQLite build: crashfuzz itself, compiled a second time without
//! its `bundled` feature, so that it links the shared `libsqlite3.so.0` instead of carrying
//! SQLite inside. A cell whose `sqlite` axis names another build runs this executable with
//! `LD_LIBRARY_PATH` pointing at a directory whose `libsqlite3.so.0` is that build (nothing for
//! `system`: the loader's own search finds the OS's library). The workload, the tracing VFS and
//! every fault are the same code as the bundled writer's; only the SQLite differs.
//!
//! Why not load the build at run time into the bundled executable: rusqlite calls SQLite's
//! functions by their link-time names, and two SQLites linked into one executable clash. Why a
//! second target directory: Cargo unifies features across a build, so the same `cargo build`
//! cannot make both a bundled and a shared rusqlite.
//!
//! The executable links against a shared build of the bundled version (the newest, which has
//! every function rusqlite names) with lazy binding (`build.rs`), so an older library that
//! lacks a function only matters if it is called; the few rusqlite calls on every connection
//! are answered for old builds by the binary itself (`sqlite_compat.rs`).
//!
//! It is compiled from the source tree crashfuzz was built from, with the cargo that runs
//! crashfuzz (`$CARGO`, else `cargo`): a no-op when it is up to date, a couple of minutes once.

use crate::sqlite::builds::{self, BuildError, SONAME, SqliteBuild};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the shared writer is built, under crashfuzz's own target directory.
const TARGET_SUBDIR: &str = "target/shared-writer";
/// Bound on the compile, on a loaded 2-core machine from scratch.
const BUILD_TIME_MAX: Duration = Duration::from_secs(30 * 60);

/// The shared writer executable, compiled (or found up to date) once per process.
pub fn executable() -> Result<PathBuf, BuildError> {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(exe) = built.as_ref() {
        return Ok(exe.clone());
    }
    let exe = build(Path::new(env!("CARGO_MANIFEST_DIR")))?;
    *built = Some(exe.clone());
    Ok(exe)
}

/// Compiles the shared writer from the source at `manifest_dir`.
fn build(manifest_dir: &Path) -> Result<PathBuf, BuildError> {
    let unusable = |reason: String| BuildError::Unloadable { build: "the shared-library writer".into(), reason };
    let manifest = manifest_dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(unusable(format!(
            "it is compiled from crashfuzz's source, which is no longer at {} (run crashfuzz from its source tree)",
            manifest_dir.display()
        )));
    }
    let target_dir = manifest_dir.join(TARGET_SUBDIR);
    let link_dir = link_dir(&target_dir)?;
    let release = !cfg!(debug_assertions);
    let cargo = builds::cargo();
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--quiet", "--no-default-features", "--bin", "crashfuzz", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env("SQLITE3_LIB_DIR", &link_dir)
        .env_remove("LIBSQLITE3_SYS_USE_PKG_CONFIG");
    if release {
        command.arg("--release");
    }
    let exe = target_dir.join(if release { "release" } else { "debug" }).join("crashfuzz");
    let started = Instant::now();
    if !exe.is_file() {
        eprintln!(
            "crashfuzz: compiling the writer for SQLite builds other than the bundled one into {} — once, a few minutes",
            target_dir.display()
        );
    }
    let shown = format!("{} build --no-default-features --bin crashfuzz", cargo.to_string_lossy());
    builds::output_within(&mut command, BUILD_TIME_MAX)
        .map_err(|e| unusable(format!("`{shown}` could not run: {e}")))?
        .map_err(|failure| unusable(format!("`{shown}` {failure}")))?;
    if started.elapsed() > Duration::from_secs(5) {
        eprintln!("crashfuzz: the shared-library writer is ready ({:.0} s)", started.elapsed().as_secs_f64());
    }
    Ok(exe)
}

/// A directory with `libsqlite3.so`, the library the shared writer links against: a shared
/// build of the bundled version, built and cached like any other version.
fn link_dir(target_dir: &Path) -> Result<PathBuf, BuildError> {
    let version = rusqlite::version();
    let resolved = builds::resolve(&SqliteBuild::Version(version.to_string()))?;
    let builds::Library::File(library) = resolved.library else {
        unreachable!("a version resolves to a library file");
    };
    let dir = target_dir.join("link");
    std::fs::create_dir_all(&dir)
        .map_err(|e| BuildError::Io { context: format!("create {}", dir.display()), source: e })?;
    replace_symlink(&library, &dir.join("libsqlite3.so"))?;
    Ok(dir)
}

/// The directory a cell's writers find their `libsqlite3.so.0` in (`LD_LIBRARY_PATH`), or
/// `None` for the loader's own search (`system`). A library given by a path under another
/// name gets a directory of its own beside the shared writer, holding a link to it by the
/// soname.
pub fn library_dir(build: &builds::ResolvedBuild) -> Result<Option<PathBuf>, BuildError> {
    match &build.library {
        builds::Library::Linked => unreachable!("the bundled build needs no shared writer"),
        builds::Library::Soname(_) => Ok(None),
        builds::Library::File(path) if path.file_name() == Some(SONAME.as_ref()) => {
            Ok(path.parent().map(Path::to_path_buf))
        }
        builds::Library::File(path) => {
            let absolute = std::path::absolute(path)
                .map_err(|e| BuildError::Io { context: format!("resolve {}", path.display()), source: e })?;
            let hash = xxhash_rust::xxh3::xxh3_64(absolute.as_os_str().as_encoded_bytes());
            let dir =
                Path::new(env!("CARGO_MANIFEST_DIR")).join(TARGET_SUBDIR).join("libs").join(format!("{hash:016x}"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| BuildError::Io { context: format!("create {}", dir.display()), source: e })?;
            replace_symlink(&absolute, &dir.join(SONAME))?;
            Ok(Some(dir))
        }
    }
}

/// Makes `link` a symbolic link to `target`, replacing what was there in one rename (another
/// crashfuzz may be doing the same at the same moment).
fn replace_symlink(target: &Path, link: &Path) -> Result<(), BuildError> {
    let io = |e| BuildError::Io { context: format!("link {} to {}", link.display(), target.display()), source: e };
    let partial = link.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_file(&partial);
    std::os::unix::fs::symlink(target, &partial).and_then(|()| std::fs::rename(&partial, link)).map_err(io)
}
