//! TEMPORARY: types only, until the tracing VFS lands.
use serde::{Deserialize, Serialize};
pub const VFS_NAME: &str = "crashfuzz-trace";
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoErrorKind {
    Ioerr,
    Full,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Injection {
    None,
    CrashAt { op: u64 },
    FailAt { op: u64, error: IoErrorKind, persistent: bool },
}
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfsConfig {
    pub writer: u64,
    pub trace_path: std::path::PathBuf,
    pub injection: Injection,
}
pub fn register(_cfg: VfsConfig) -> Result<(), String> {
    Err("not yet".into())
}
pub fn append(_record: &crate::fault::trace::Record) -> std::io::Result<()> {
    Err(std::io::Error::other("not yet"))
}
pub fn ops() -> u64 {
    0
}
pub fn injected() -> u64 {
    0
}
