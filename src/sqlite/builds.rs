//! SQLite builds other than the one crashfuzz is linked with: the words that name a build
//! ([`SqliteBuild`]: `bundled`, `system`, a version `3.X.Y`, or a path to a `libsqlite3.so`),
//! the table of versions crashfuzz can obtain itself, and the cache of the libraries it
//! compiles. Every `libsqlite3-sys` release on crates.io ships the SQLite amalgamation
//! (`sqlite3/sqlite3.c`); crashfuzz fetches the release that carries a version with cargo,
//! compiles the amalgamation once into a shared library with the compile options the bundled
//! build uses (so that two builds differ only in version), and keeps it.
//!
//! Invariants:
//! - **A cached library is whole or absent**: it is compiled to a temporary file in its own
//!   directory and renamed into place last, after its `build.json`.
//! - **One process builds a version at a time**: the build runs under an exclusive `flock` on
//!   the version directory's lock file, taken with a bounded wait; whoever waited finds the
//!   library there and builds nothing.
//! - **The library of version V is SQLite V**: the amalgamation's `SQLITE_VERSION` is read and
//!   compared with V before anything is compiled.
//! - Nothing here loads a library: the `__sql` child does ([`crate::sqlite::child`]), so that a
//!   build that crashes takes only that child down.
//!
//! cargo and the compiler run in crashfuzz's own process group, in the foreground as any build
//! tool, so that the Ctrl-C that stops crashfuzz stops them too; they run before any trial.

use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The SQLite versions crashfuzz can build, each with the `libsqlite3-sys` release whose
/// `sqlite3/sqlite3.c` is that version (each read from the released crate). Oldest first.
const KNOWN: &[(&str, &str)] = &[
    ("3.35.4", "0.22.2"),
    ("3.36.0", "0.23.0"),
    ("3.37.0", "0.23.2"),
    ("3.38.0", "0.24.0"),
    ("3.38.2", "0.24.2"),
    ("3.39.0", "0.25.0"),
    ("3.39.2", "0.25.1"),
    ("3.41.2", "0.26.0"),
    ("3.44.0", "0.27.0"),
    ("3.45.0", "0.28.0"),
    ("3.46.0", "0.29.0"),
    ("3.48.0", "0.31.0"),
    ("3.49.1", "0.32.0"),
    ("3.49.2", "0.34.0"),
    ("3.50.2", "0.35.0"),
    ("3.51.1", "0.36.0"),
    ("3.51.3", "0.37.0"),
    ("3.53.1", "0.38.0"),
    ("3.53.2", "0.38.1"),
    ("3.54.0", "0.39.0"),
    ("3.54.1", "0.39.1"),
];

/// The compile options of `libsqlite3-sys` 0.39.1's bundled build (its build.rs, on Linux,
/// without optional features), which is the SQLite crashfuzz is linked with: a cached build
/// differs from it only in version.
const BUNDLED_DEFINES: &[&str] = &[
    "-DSQLITE_CORE",
    "-DSQLITE_DEFAULT_FOREIGN_KEYS=1",
    "-DSQLITE_ENABLE_API_ARMOR",
    "-DSQLITE_ENABLE_COLUMN_METADATA",
    "-DSQLITE_ENABLE_DBSTAT_VTAB",
    "-DSQLITE_ENABLE_FTS3",
    "-DSQLITE_ENABLE_FTS3_PARENTHESIS",
    "-DSQLITE_ENABLE_FTS5",
    "-DSQLITE_ENABLE_JSON1",
    "-DSQLITE_ENABLE_LOAD_EXTENSION=1",
    "-DSQLITE_ENABLE_RTREE",
    "-DSQLITE_ENABLE_STAT4",
    "-DSQLITE_SOUNDEX",
    "-DSQLITE_THREADSAFE=1",
    "-DSQLITE_USE_URI",
    "-DHAVE_USLEEP=1",
    "-DHAVE_ISNAN",
    "-D_POSIX_THREAD_SAFE_FUNCTIONS",
    "-DHAVE_LOCALTIME_R",
];

/// The soname of every library here, and of the OS's own (`system`): a writer pointed at a
/// cache directory with `LD_LIBRARY_PATH` loads the cached build in place of the OS's.
pub const SONAME: &str = "libsqlite3.so.0";

/// The record of one cached build, beside its library.
const BUILD_JSON: &str = "build.json";
const LOCK_FILE: &str = ".lock";
/// Leftovers of a build that was killed start with this; the next build removes them.
const PARTIAL_PREFIX: &str = ".partial-";

/// How long a process waits for another one's build of the same version.
const LOCK_WAIT_MAX: Duration = Duration::from_secs(30 * 60);
const LOCK_POLL: Duration = Duration::from_millis(250);
/// Bounds on the tools: a fetch over a slow network, a compile on a loaded machine.
const CARGO_TIME_MAX: Duration = Duration::from_secs(15 * 60);
const COMPILE_TIME_MAX: Duration = Duration::from_secs(20 * 60);

/// An SQLite build, as a scenario or the command line names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SqliteBuild {
    /// The SQLite crashfuzz is linked with (`rusqlite`'s bundled build).
    Bundled,
    /// The OS's shared library, [`SONAME`], found by the dynamic loader.
    System,
    /// A version from [`available`], built by crashfuzz and cached.
    Version(String),
    /// A `libsqlite3.so` file (the spelling holds a `/`).
    Library(PathBuf),
}

impl fmt::Display for SqliteBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqliteBuild::Bundled => f.write_str("bundled"),
            SqliteBuild::System => f.write_str("system"),
            SqliteBuild::Version(v) => f.write_str(v),
            SqliteBuild::Library(path) => write!(f, "{}", path.display()),
        }
    }
}

impl FromStr for SqliteBuild {
    type Err = BuildError;

    fn from_str(s: &str) -> Result<Self, BuildError> {
        match s {
            "bundled" => Ok(SqliteBuild::Bundled),
            "system" => Ok(SqliteBuild::System),
            path if path.contains('/') => Ok(SqliteBuild::Library(PathBuf::from(path))),
            version if is_version(version) => match crate_for(version) {
                Some(_) => Ok(SqliteBuild::Version(version.to_string())),
                None => Err(BuildError::UnknownVersion { version: version.to_string(), buildable: buildable() }),
            },
            other => Err(BuildError::Spelling { written: other.to_string() }),
        }
    }
}

impl TryFrom<String> for SqliteBuild {
    type Error = BuildError;

    fn try_from(s: String) -> Result<Self, BuildError> {
        s.parse()
    }
}

impl From<SqliteBuild> for String {
    fn from(build: SqliteBuild) -> String {
        build.to_string()
    }
}

/// `3.41.2`: three dot-separated numbers.
fn is_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The `libsqlite3-sys` release that ships `version`.
fn crate_for(version: &str) -> Option<&'static str> {
    KNOWN.iter().find(|(v, _)| *v == version).map(|&(_, c)| c)
}

/// The versions crashfuzz can build, oldest first: `(sqlite_version, crate_version)`.
pub fn available() -> Vec<(&'static str, &'static str)> {
    KNOWN.to_vec()
}

/// The buildable versions as one line, for messages.
fn buildable() -> String {
    KNOWN.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(", ")
}

/// What crashfuzz runs SQL with: a build made concrete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedBuild {
    /// The build as it was named.
    pub spec: SqliteBuild,
    pub library: Library,
}

/// Where a build's code is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Library {
    /// Linked into crashfuzz itself (`bundled`).
    Linked,
    /// A name the dynamic loader looks up in its search path (`system`).
    Soname(String),
    /// A shared library file.
    File(PathBuf),
}

impl ResolvedBuild {
    /// The SQLite crashfuzz is linked with.
    pub fn bundled() -> ResolvedBuild {
        ResolvedBuild { spec: SqliteBuild::Bundled, library: Library::Linked }
    }

    /// The argument that tells the `__sql` child what to load: `bundled`, a soname, or a path
    /// (a path always holds a `/`, a soname never does).
    pub fn child_arg(&self) -> OsString {
        match &self.library {
            Library::Linked => OsString::from("bundled"),
            Library::Soname(name) => OsString::from(name),
            Library::File(path) => path.clone().into_os_string(),
        }
    }
}

impl fmt::Display for ResolvedBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.spec, &self.library) {
            (SqliteBuild::Library(_), Library::File(path)) => write!(f, "{}", path.display()),
            (spec, Library::File(path)) => write!(f, "{spec} ({})", path.display()),
            (spec, Library::Soname(name)) => write!(f, "{spec} ({name})"),
            (spec, Library::Linked) => write!(f, "{spec}"),
        }
    }
}

/// Why a build cannot be had. Each is the user's or the environment's (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "{written:?} names no SQLite build; allowed: \"bundled\", \"system\" (the OS's {SONAME}), a version \
         (\"3.41.2\"), or a path to a libsqlite3.so (with a /, e.g. \"./libsqlite3.so\")"
    )]
    Spelling { written: String },

    #[error(
        "SQLite {version} is not one crashfuzz can build; it builds {buildable} (`crashfuzz sqlite list`), and \
         \"system\" is the OS's own {SONAME}"
    )]
    UnknownVersion { version: String, buildable: String },

    #[error("{}: no such library file: {source}", path.display())]
    NoLibrary { path: PathBuf, source: std::io::Error },

    #[error("no cache directory: set CRASHFUZZ_SQLITE_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,

    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },

    #[error("cannot obtain SQLite {version} (libsqlite3-sys {crate_version}): `{command}` {failure}")]
    Fetch { version: String, crate_version: String, command: String, failure: String },

    #[error("{}: expected SQLite {version}, the file says {found}", path.display())]
    Amalgamation { version: String, path: PathBuf, found: String },

    #[error("cannot compile SQLite {version}: `{command}` {failure}")]
    Compile { version: String, command: String, failure: String },

    #[error("another process has been building SQLite {version} for {} s ({})", waited.as_secs(), lock.display())]
    LockTimeout { version: String, lock: PathBuf, waited: Duration },

    #[error("SQLite build {build} cannot be used: {reason}")]
    Unloadable { build: String, reason: String },
}

impl BuildError {
    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
        let context = context.into();
        move |source| BuildError::Io { context, source }
    }
}

/// The cache directory from the environment: `$CRASHFUZZ_SQLITE_CACHE`, else
/// `$XDG_CACHE_HOME/crashfuzz/sqlite`, else `$HOME/.cache/crashfuzz/sqlite`.
pub fn cache_dir() -> Result<PathBuf, BuildError> {
    cache_dir_from(|name| std::env::var_os(name))
}

/// [`cache_dir`] over any environment (empty values count as unset, as XDG says).
fn cache_dir_from(var: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, BuildError> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("CRASHFUZZ_SQLITE_CACHE") {
        return Ok(dir);
    }
    if let Some(dir) = set("XDG_CACHE_HOME") {
        return Ok(dir.join("crashfuzz").join("sqlite"));
    }
    set("HOME").map(|home| home.join(".cache").join("crashfuzz").join("sqlite")).ok_or(BuildError::NoCacheDir)
}

/// The library of `version` in `cache`, when it has been built.
pub fn cached(cache: &Path, version: &str) -> Option<PathBuf> {
    let path = cache.join(version).join(SONAME);
    path.is_file().then_some(path)
}

/// Makes `build` concrete, in the cache of [`cache_dir`]; see [`resolve_in`].
pub fn resolve(build: &SqliteBuild) -> Result<ResolvedBuild, BuildError> {
    match build {
        SqliteBuild::Version(_) => resolve_in(build, &cache_dir()?),
        SqliteBuild::Bundled | SqliteBuild::System | SqliteBuild::Library(_) => resolve_in(build, Path::new("")),
    }
}

/// Makes `build` concrete: a version is fetched, compiled and cached in `cache` unless it is
/// there already (this takes a minute, once); `system` is the soname for the dynamic loader;
/// a path must be a file. Whether a library loads is for the `__sql` child to say.
pub fn resolve_in(build: &SqliteBuild, cache: &Path) -> Result<ResolvedBuild, BuildError> {
    let library = match build {
        SqliteBuild::Bundled => Library::Linked,
        SqliteBuild::System => Library::Soname(SONAME.to_string()),
        SqliteBuild::Library(path) => match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => Library::File(path.clone()),
            Ok(_) => {
                return Err(BuildError::NoLibrary {
                    path: path.clone(),
                    source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
                });
            }
            Err(source) => return Err(BuildError::NoLibrary { path: path.clone(), source }),
        },
        SqliteBuild::Version(version) => {
            let Some(crate_version) = crate_for(version) else {
                return Err(BuildError::UnknownVersion { version: version.clone(), buildable: buildable() });
            };
            Library::File(build_cached(cache, version, crate_version)?)
        }
    };
    Ok(ResolvedBuild { spec: build.clone(), library })
}

/// `build.json`: what a cached library is and how it was made.
#[derive(Debug, Serialize, Deserialize)]
struct BuildRecord {
    sqlite_version: String,
    crate_version: String,
    /// The amalgamation compiled (in cargo's registry).
    source: PathBuf,
    /// The compiler command line, with `SOURCE` and `OUTPUT` for the files.
    command: Vec<String>,
    /// The amalgamation's xxh3-64, in hex.
    sqlite3_c_xxh3: String,
    built_at: String,
    build_s: f64,
}

/// The library of `version` in `cache`, built first if it is not there.
fn build_cached(cache: &Path, version: &str, crate_version: &str) -> Result<PathBuf, BuildError> {
    let dir = cache.join(version);
    let library = dir.join(SONAME);
    // The rename is the last step of a build: a library that is there is whole.
    if library.is_file() {
        return Ok(library);
    }
    std::fs::create_dir_all(&dir).map_err(BuildError::io(format!("create {}", dir.display())))?;
    let _lock = lock(&dir, version)?;
    if library.is_file() {
        return Ok(library);
    }
    remove_partials(&dir)?;
    let started = Instant::now();
    eprintln!(
        "crashfuzz: building SQLite {version} (libsqlite3-sys {crate_version}) into {} — once, about a minute",
        dir.display()
    );
    let source = fetch_amalgamation(&dir, version, crate_version)?;
    let mut text = Vec::new();
    File::open(&source)
        .and_then(|mut f| f.read_to_end(&mut text))
        .map_err(BuildError::io(format!("read {}", source.display())))?;
    let found = amalgamation_version(&text).unwrap_or_else(|| "no SQLITE_VERSION".to_string());
    if found != version {
        return Err(BuildError::Amalgamation { version: version.to_string(), path: source, found });
    }
    let partial = dir.join(format!("{PARTIAL_PREFIX}{}-{SONAME}", std::process::id()));
    let command = compile(version, &source, &partial)?;
    let record = BuildRecord {
        sqlite_version: version.to_string(),
        crate_version: crate_version.to_string(),
        source: source.clone(),
        command,
        sqlite3_c_xxh3: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&text)),
        built_at: chrono::Utc::now().to_rfc3339(),
        build_s: started.elapsed().as_secs_f64(),
    };
    let json_partial = dir.join(format!("{PARTIAL_PREFIX}{}-{BUILD_JSON}", std::process::id()));
    std::fs::write(&json_partial, serde_json::to_string_pretty(&record).expect("build record serializes"))
        .and_then(|()| std::fs::rename(&json_partial, dir.join(BUILD_JSON)))
        .map_err(BuildError::io(format!("write {}", dir.join(BUILD_JSON).display())))?;
    File::open(&partial)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(&partial, &library))
        .map_err(BuildError::io(format!("move the library into {}", library.display())))?;
    eprintln!("crashfuzz: built SQLite {version} in {:.0} s: {}", started.elapsed().as_secs_f64(), library.display());
    Ok(library)
}

/// The exclusive lock on a version's directory, waited for with a bound.
fn lock(dir: &Path, version: &str) -> Result<nix::fcntl::Flock<File>, BuildError> {
    use nix::fcntl::{Flock, FlockArg};
    let path = dir.join(LOCK_FILE);
    let started = Instant::now();
    let mut file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(BuildError::io(format!("open {}", path.display())))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(locked),
            Err((back, nix::errno::Errno::EWOULDBLOCK)) if started.elapsed() < LOCK_WAIT_MAX => {
                file = back;
                std::thread::sleep(LOCK_POLL);
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(BuildError::LockTimeout {
                    version: version.to_string(),
                    lock: path,
                    waited: started.elapsed(),
                });
            }
            Err((_, errno)) => {
                return Err(BuildError::Io { context: format!("flock {}", path.display()), source: errno.into() });
            }
        }
    }
}

/// Removes what a killed build left (only ever called under the lock).
fn remove_partials(dir: &Path) -> Result<(), BuildError> {
    let entries = std::fs::read_dir(dir).map_err(BuildError::io(format!("list {}", dir.display())))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(PARTIAL_PREFIX) {
            let path = entry.path();
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            removed.map_err(BuildError::io(format!("remove {}", path.display())))?;
        }
    }
    Ok(())
}

/// `#define SQLITE_VERSION "3.41.2"` of an amalgamation.
fn amalgamation_version(text: &[u8]) -> Option<String> {
    const DEFINE: &[u8] = b"#define SQLITE_VERSION ";
    let at = text.windows(DEFINE.len()).position(|w| w == DEFINE)? + DEFINE.len();
    let line = text[at..].split(|&b| b == b'\n').next()?;
    Some(String::from_utf8_lossy(line).trim().trim_matches('"').to_string())
}

/// Fetches `libsqlite3-sys` `crate_version` with cargo (a scratch package that depends on it)
/// and returns the path of its `sqlite3/sqlite3.c` in cargo's registry.
fn fetch_amalgamation(dir: &Path, version: &str, crate_version: &str) -> Result<PathBuf, BuildError> {
    let scratch = tempfile::Builder::new()
        .prefix(&format!("{PARTIAL_PREFIX}fetch-"))
        .tempdir_in(dir)
        .map_err(BuildError::io(format!("create a scratch package in {}", dir.display())))?;
    // `[workspace]`: a cache under some cargo project (a target directory) is not part of it.
    let manifest = format!(
        "[package]\nname = \"crashfuzz-sqlite-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [lib]\npath = \"lib.rs\"\n\n[dependencies]\nlibsqlite3-sys = {{ version = \"={crate_version}\", \
         default-features = false }}\n\n[workspace]\n"
    );
    std::fs::write(scratch.path().join("Cargo.toml"), manifest)
        .and_then(|()| std::fs::write(scratch.path().join("lib.rs"), ""))
        .map_err(BuildError::io(format!("write a scratch package in {}", scratch.path().display())))?;
    let cargo = cargo();
    let fetch_failed = |command: &str, failure: String| BuildError::Fetch {
        version: version.to_string(),
        crate_version: crate_version.to_string(),
        command: command.to_string(),
        failure,
    };
    let mut fetch = Command::new(&cargo);
    fetch.args(["fetch", "--quiet"]).current_dir(scratch.path());
    let command = format!("{} fetch", cargo.to_string_lossy());
    output_within(&mut fetch, CARGO_TIME_MAX)
        .map_err(|e| fetch_failed(&command, format!("could not run: {e}")))?
        .map_err(|failure| fetch_failed(&command, failure))?;
    let mut metadata = Command::new(&cargo);
    metadata.args(["metadata", "--format-version", "1", "--offline"]).current_dir(scratch.path());
    let command = format!("{} metadata --format-version 1 --offline", cargo.to_string_lossy());
    let out = output_within(&mut metadata, CARGO_TIME_MAX)
        .map_err(|e| fetch_failed(&command, format!("could not run: {e}")))?
        .map_err(|failure| fetch_failed(&command, failure))?;
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| fetch_failed(&command, format!("printed no JSON: {e}")))?;
    let manifest_path = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "libsqlite3-sys" && p["version"] == crate_version)
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or_else(|| fetch_failed(&command, format!("lists no libsqlite3-sys {crate_version}")))?;
    let source = Path::new(manifest_path).with_file_name("sqlite3").join("sqlite3.c");
    if !source.is_file() {
        return Err(fetch_failed(&command, format!("gave a package without {}", source.display())));
    }
    Ok(source)
}

/// Compiles the amalgamation into the shared library `output`; returns the command line.
fn compile(version: &str, source: &Path, output: &Path) -> Result<Vec<String>, BuildError> {
    // `$CC` may carry arguments of its own (`ccache gcc`).
    let cc = std::env::var("CC").ok().filter(|c| !c.trim().is_empty()).unwrap_or_else(|| "cc".to_string());
    let mut words: Vec<String> = cc.split_whitespace().map(str::to_string).collect();
    words.extend(["-O2", "-fPIC", "-shared", &format!("-Wl,-soname,{SONAME}")].map(str::to_string));
    words.extend(BUNDLED_DEFINES.iter().map(|d| d.to_string()));
    words.extend(["-o", "OUTPUT", "SOURCE", "-lm", "-lpthread", "-ldl"].map(str::to_string));
    let shown = words.join(" ");
    let mut command = Command::new(&words[0]);
    for word in &words[1..] {
        match word.as_str() {
            "OUTPUT" => command.arg(output),
            "SOURCE" => command.arg(source),
            other => command.arg(other),
        };
    }
    let failed =
        |failure: String| BuildError::Compile { version: version.to_string(), command: shown.clone(), failure };
    output_within(&mut command, COMPILE_TIME_MAX)
        .map_err(|e| failed(format!("could not run: {e} (set CC to a C compiler)")))?
        .map_err(failed)?;
    Ok(words)
}

/// Runs a tool to its end within `limit`. `Ok(Err(why))` when it failed or ran out of time,
/// with the end of what it said.
/// The cargo that runs crashfuzz (`$CARGO` under `cargo run` and `cargo test`), else the
/// `cargo` on `PATH`: what compiles other SQLite builds, the shared-library writer and the
/// interposer.
pub(crate) fn cargo() -> OsString {
    std::env::var_os("CARGO").filter(|c| !c.is_empty()).unwrap_or_else(|| OsString::from("cargo"))
}

pub(crate) fn output_within(command: &mut Command, limit: Duration) -> std::io::Result<Result<Output, String>> {
    let Some(output) = crate::base::process::run_captured(command, limit, false)? else {
        return Ok(Err(format!("ran out of its {} s", limit.as_secs())));
    };
    if output.status.success() {
        return Ok(Ok(output));
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(6)..].join("\n  ");
    Ok(Err(format!("failed ({}):\n  {tail}", output.status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_round_trips() {
        for (written, build) in [
            ("bundled", SqliteBuild::Bundled),
            ("system", SqliteBuild::System),
            ("3.41.2", SqliteBuild::Version("3.41.2".into())),
            (
                "/usr/lib/x86_64-linux-gnu/libsqlite3.so.0",
                SqliteBuild::Library("/usr/lib/x86_64-linux-gnu/libsqlite3.so.0".into()),
            ),
            ("./libsqlite3.so", SqliteBuild::Library("./libsqlite3.so".into())),
        ] {
            let parsed: SqliteBuild = written.parse().unwrap_or_else(|e| panic!("{written}: {e}"));
            assert_eq!(parsed, build);
            assert_eq!(parsed.to_string(), written);
            // Serde carries it as the same string (scenarios, JSON).
            let json = serde_json::to_string(&build).unwrap();
            assert_eq!(json, format!("{written:?}"));
            assert_eq!(serde_json::from_str::<SqliteBuild>(&json).unwrap(), build);
        }
        for (version, _) in available() {
            assert_eq!(version.parse::<SqliteBuild>().unwrap(), SqliteBuild::Version(version.to_string()));
        }
    }

    #[test]
    fn an_unknown_version_lists_the_buildable_ones() {
        let e = "3.40.1".parse::<SqliteBuild>().unwrap_err();
        assert!(matches!(e, BuildError::UnknownVersion { .. }), "{e:?}");
        let said = e.to_string();
        assert!(said.contains("3.40.1") && said.contains("3.39.2, 3.41.2") && said.contains("system"), "{said}");
        // resolve says the same of a version built by hand.
        let e = resolve_in(&SqliteBuild::Version("3.40.1".into()), Path::new("/nonexistent")).unwrap_err();
        assert!(matches!(e, BuildError::UnknownVersion { .. }), "{e:?}");
        for bad in ["", "sqlite3", "3.41", "3.41.x", "libsqlite3.so.0", "Bundled"] {
            let e = bad.parse::<SqliteBuild>().unwrap_err();
            assert!(matches!(e, BuildError::Spelling { .. }), "{bad}: {e:?}");
            assert!(e.to_string().contains("\"bundled\", \"system\""), "{e}");
        }
        let e = serde_json::from_str::<SqliteBuild>("\"3.40.1\"").unwrap_err();
        assert!(e.to_string().contains("not one crashfuzz can build"), "{e}");
    }

    #[test]
    fn the_table_is_sorted_and_each_version_has_one_crate() {
        let key = |v: &str| v.split('.').map(|p| p.parse::<u32>().unwrap()).collect::<Vec<_>>();
        for pair in KNOWN.windows(2) {
            assert!(key(pair[0].0) < key(pair[1].0), "{pair:?}");
            assert!(key(pair[0].1) < key(pair[1].1), "{pair:?}");
        }
        assert!(KNOWN.iter().all(|(v, c)| is_version(v) && is_version(c)));
        // The bundled build's own version is in the table (the same SQLite, built apart).
        assert!(crate_for(rusqlite::version()).is_some(), "{}", rusqlite::version());
    }

    #[test]
    fn the_cache_directory_follows_the_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
        };
        const ALL: &[(&str, &str)] = &[("CRASHFUZZ_SQLITE_CACHE", "/c"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(cache_dir_from(env(ALL)).unwrap(), Path::new("/c"));
        assert_eq!(cache_dir_from(env(&ALL[1..])).unwrap(), Path::new("/x/crashfuzz/sqlite"));
        assert_eq!(cache_dir_from(env(&ALL[2..])).unwrap(), Path::new("/h/.cache/crashfuzz/sqlite"));
        assert_eq!(
            cache_dir_from(env(&[("XDG_CACHE_HOME", ""), ("HOME", "/h")])).unwrap(),
            Path::new("/h/.cache/crashfuzz/sqlite")
        );
        assert!(matches!(cache_dir_from(env(&[])), Err(BuildError::NoCacheDir)));
    }

    #[test]
    fn system_and_paths_resolve_without_building() {
        let none = Path::new("/nonexistent");
        let system = resolve_in(&SqliteBuild::System, none).unwrap();
        assert_eq!(system.library, Library::Soname(SONAME.into()));
        assert_eq!(system.child_arg(), SONAME);
        assert_eq!(resolve_in(&SqliteBuild::Bundled, none).unwrap(), ResolvedBuild::bundled());
        let missing = SqliteBuild::Library("/nonexistent/libsqlite3.so".into());
        assert!(matches!(resolve_in(&missing, none), Err(BuildError::NoLibrary { .. })));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libsqlite3.so");
        std::fs::write(&file, b"").unwrap();
        let resolved = resolve_in(&SqliteBuild::Library(file.clone()), none).unwrap();
        assert_eq!(resolved.library, Library::File(file.clone()));
        assert_eq!(resolved.child_arg(), file.as_os_str());
        // A cached version is found without cargo or a compiler.
        std::fs::create_dir_all(dir.path().join("3.41.2")).unwrap();
        std::fs::write(dir.path().join("3.41.2").join(SONAME), b"").unwrap();
        let cached = resolve_in(&SqliteBuild::Version("3.41.2".into()), dir.path()).unwrap();
        assert_eq!(cached.library, Library::File(dir.path().join("3.41.2").join(SONAME)));
    }

    #[test]
    fn a_second_builder_waits_for_the_first_and_partials_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path(), "3.41.2").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let started = Instant::now();
            let second = lock(&path, "3.41.2").map(|_| ());
            tx.send(()).unwrap();
            (second, started.elapsed())
        });
        // flock locks belong to the open file: a second open waits even in one process.
        assert!(rx.recv_timeout(Duration::from_millis(600)).is_err(), "the second lock did not wait");
        drop(first);
        let (second, waited) = waiter.join().unwrap();
        assert!(second.is_ok() && waited >= Duration::from_millis(600), "{second:?} after {waited:?}");
        std::fs::write(dir.path().join(format!("{PARTIAL_PREFIX}7-{SONAME}")), b"half").unwrap();
        std::fs::create_dir(dir.path().join(format!("{PARTIAL_PREFIX}fetch-x"))).unwrap();
        remove_partials(dir.path()).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [LOCK_FILE]);
    }

    #[test]
    fn the_amalgamation_says_its_version() {
        let text = b"/* ... */\n#define SQLITE_VERSION        \"3.41.2\"\n#define SQLITE_VERSION_NUMBER 3041002\n";
        assert_eq!(amalgamation_version(text).as_deref(), Some("3.41.2"));
        assert_eq!(amalgamation_version(b"int x;"), None);
    }
}
