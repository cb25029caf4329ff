//! The crash-image builder of the power-loss model: a pure function of (base
//! files, trace, cut point, device model, choices) to the files a power loss at that cut could
//! leave. No I/O, no clock, no global state: every property is tested without processes.
//!
//! # The model
//!
//! Files are *inodes* bound to *names* in one directory (the database's). The files present
//! when the trial started (`base`) are durable. Replaying the trace up to the cut:
//!
//! - **Data** (`Write`, `Truncate`) belongs to an inode. On a device with `fsync_barrier = true`
//!   (Linux) every `xSync` of a file makes every earlier data operation on that inode durable.
//!   With `false` (an OS whose plain fsync orders nothing, like macOS) a plain sync only
//!   *writes the file out*: its operations so far reach the drive's volatile cache, durable at
//!   the next cache flush. A sync carrying `SQLITE_SYNC_FULL` is `F_FULLFSYNC`: it writes out
//!   the synced file and flushes the drive's cache, so the synced file is durable whole, every
//!   other file up to its own last plain sync (what was written out), and the names up to the
//!   last directory sync. A write to another file that was never synced stays undetermined.
//! - **Names** change by creation (an `Open` with `created`) and deletion. A directory sync
//!   makes every earlier name change durable; it is a plain fsync, so on a device without
//!   barriers it only writes the directory out, durable at the next full sync.
//! - Everything after the last barrier is *undetermined*, and a [`Choice`] decides each one:
//!   a data operation is kept, dropped, or torn (only some of its sectors reach the disk; the
//!   others keep their old bytes or, with [`TornFill::Garbage`], hold garbage). Data operations
//!   to different sectors may persist in any subset (the page cache writes back, and a
//!   volatile disk cache reorders, freely between flushes); name changes persist as an
//!   in-order *prefix* (file systems journal metadata in order), so a dropped name change
//!   drops every later undetermined one too.
//! - **A sector is a snapshot.** The page cache writes a sector back as it stands at that
//!   moment, so what a sector holds after the cut is its content after some prefix of the
//!   writes to it: a write to a sector persists only if every earlier undetermined write to
//!   that sector did (the first one dropped there drops the later ones there, whatever their
//!   own choice). A WAL frame's header lost while the data after it in the same sector
//!   persisted is no disk's state.
//! - **A file grows in order.** ext4's ordered mode writes a file's new data before the
//!   metadata that exposes its new size, so a file is never longer than its persisted growth
//!   and never grows with zero-filled sectors: where an appended sector did not persist, the
//!   file ends, and nothing later persists beyond that point.
//! - **A truncation orders later writes beyond it.** A write after a truncation, at or beyond
//!   the truncation point rounded up to the file system block ([`FS_BLOCK_BYTES`]), lands in
//!   blocks the file system allocated after the truncation freed the old ones (ext4, for one,
//!   never reuses blocks freed by an uncommitted transaction); if the truncation did not
//!   persist, the inode still maps the old blocks and those bytes are not in the file. So a
//!   dropped truncation drops the part of every later undetermined write to the same file
//!   that lies at or beyond that block boundary, and every later truncation of it (metadata
//!   persists in order). Bytes below the boundary are written in place, in blocks the
//!   truncation never touched: their fate is their own. Without this rule the model builds a
//!   state no file system produces: a rollback journal whose truncation to 0 was lost yet
//!   whose first new record's page number (4 bytes) persisted over an old record, whose data
//!   and checksum (which does not cover the page number) still verify.
//! - `-shm` never appears: it is mmapped, never traced, and rebuilt from the WAL on recovery.
//!
//! "Keep everything" at cut `c` gives exactly the files the process saw after record `c`
//! (tested), which is also what a process crash at that point leaves.

use crate::base::dbfiles::Files;
use crate::fault::trace::{FileId, FileRef, Record, SYNC_FULL};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The simulated storage device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Device {
    /// The unit a write is torn in, in bytes.
    pub sector_size_bytes: u32,
    /// Plain fsync is a write barrier (Linux); `false` models an OS where only
    /// `SQLITE_SYNC_FULL` syncs (`PRAGMA fullfsync`, `checkpoint_fullfsync`) are.
    pub fsync_barrier: bool,
    pub torn_fill: TornFill,
}

impl Default for Device {
    fn default() -> Self {
        Device { sector_size_bytes: 512, fsync_barrier: true, torn_fill: TornFill::Old }
    }
}

/// `[fault.power_loss]`: how crash images are built from a trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PowerLossConfig {
    /// Crash images built from each trial's trace (cut points), each checked.
    pub images_per_trace: u32,
    /// Where the cuts fall: `random` record positions, or `systematic` (before every sync).
    pub cut_points: CutPoints,
    /// How each image's undetermined operations fare: `random` fates, or a `walk` that loses
    /// everything, then each operation alone, never the same image twice.
    pub fates: Fates,
    /// With `fates = "walk"`: the cuts per trace whose images the walk takes in turn.
    pub walk_cuts: u32,
    /// The unit a write is torn in, in bytes.
    pub sector_size_bytes: u32,
    /// Chance that an undetermined write that does not persist whole is torn rather than
    /// dropped, in percent.
    pub torn_percent: u32,
    /// What the sectors of a torn write that did not persist hold: `old` bytes or `garbage`.
    pub torn_fill: TornFill,
    /// Upper bound on the checks run to shrink one kept failure to its minimal set of lost
    /// writes (delta debugging); 0 turns shrinking off.
    pub explain_tests_max: u32,
}

impl Default for PowerLossConfig {
    fn default() -> Self {
        PowerLossConfig {
            images_per_trace: 8,
            cut_points: CutPoints::Random,
            fates: Fates::Random,
            walk_cuts: 4,
            sector_size_bytes: 512,
            torn_percent: 20,
            torn_fill: TornFill::Old,
            explain_tests_max: 48,
        }
    }
}

/// What the sectors of a torn write that did not reach the disk hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TornFill {
    /// The bytes they held before the write.
    Old,
    /// Bytes that were never written by anyone (a sector caught mid-write).
    Garbage,
}

/// The decision for one undetermined operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    Keep,
    Drop,
    /// Only these sectors of the write (indices from the write's first sector) persisted.
    Torn(Vec<u32>),
}

/// What an undetermined operation is, for choosing and for explaining.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undetermined {
    /// Index of its record in the trace.
    pub record: usize,
    pub what: OpKind,
    /// The name its file was bound to when it happened.
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum OpKind {
    Write { offset: u64, len: u64, sectors: u32 },
    Truncate { size: u64 },
    Create,
    Delete,
}

impl OpKind {
    fn is_name_change(&self) -> bool {
        match self {
            OpKind::Create | OpKind::Delete => true,
            OpKind::Write { .. } | OpKind::Truncate { .. } => false,
        }
    }
}

/// The undetermined operations at a cut, in trace order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Analysis {
    pub undetermined: Vec<Undetermined>,
    /// The device's sector, in bytes (the unit a write persists or tears in).
    pub sector_size_bytes: u32,
}

/// The file system block: a lost truncation takes with it what later writes put at or beyond
/// its point rounded up to this (ext4's default block).
pub const FS_BLOCK_BYTES: u64 = 4096;

/// Everything the replay of a trace prefix knows; shared by [`analyze`] and [`build`].
struct Replay {
    /// Per inode: its data operations as record indices, and how many of them are durable.
    data: Vec<(Vec<usize>, usize)>,
    /// Per inode, on a device without barriers: how many of its data operations a plain sync
    /// wrote out to the drive's cache (durable at the next full sync).
    written_out: Vec<usize>,
    /// Name changes: (record index, name, Some(inode) for a creation, None for a deletion).
    names: Vec<(usize, String, Option<usize>)>,
    names_durable: usize,
    /// On a device without barriers: the name changes a directory sync wrote out.
    names_written_out: usize,
    /// The names the base files start bound to, as inode indices.
    base: Vec<(String, usize)>,
    /// Per data record index: the inode it applies to.
    inode_of: HashMap<usize, usize>,
    /// Per data or name record index: the name of its file at that time.
    name_of: HashMap<usize, String>,
}

/// The file name of a traced path: everything after the last `/`.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn replay(base_names: &[String], records: &[Record], device: &Device) -> Replay {
    let mut r = Replay {
        data: Vec::new(),
        written_out: Vec::new(),
        names: Vec::new(),
        names_durable: 0,
        names_written_out: 0,
        base: Vec::new(),
        inode_of: HashMap::new(),
        name_of: HashMap::new(),
    };
    // What the running process sees: name -> inode, and its open handles.
    let mut bound: HashMap<String, usize> = HashMap::new();
    for name in base_names {
        let inode = r.data.len();
        r.data.push((Vec::new(), 0));
        r.written_out.push(0);
        r.base.push((name.clone(), inode));
        bound.insert(name.clone(), inode);
    }
    let mut handles: HashMap<FileRef, (usize, String)> = HashMap::new();
    // Files by their identity on the file system: a second handle of one file is that file,
    // whoever believed they created it (two connections opening one WAL with O_CREAT).
    let mut by_id: HashMap<FileId, usize> = HashMap::new();
    for (i, record) in records.iter().enumerate() {
        match record {
            Record::Open { file, path, created, id, .. } => {
                let name = file_name(path).to_string();
                let known = id.and_then(|id| by_id.get(&id).copied());
                let inode = match (known, bound.get(&name), created) {
                    (Some(inode), _, _) | (None, Some(&inode), false) => inode,
                    // A new directory entry: a new inode, and a name change that may or may
                    // not survive. (Unbound yet not created cannot happen with one directory
                    // and every pre-existing file in `base`; treat it as a creation.)
                    (None, Some(_), true) | (None, None, _) => {
                        let inode = r.data.len();
                        r.data.push((Vec::new(), 0));
                        r.written_out.push(0);
                        r.names.push((i, name.clone(), Some(inode)));
                        r.name_of.insert(i, name.clone());
                        bound.insert(name.clone(), inode);
                        inode
                    }
                };
                if let Some(id) = id {
                    by_id.insert(*id, inode);
                }
                handles.insert(*file, (inode, name));
            }
            Record::Write { file, .. } | Record::Truncate { file, .. } => {
                let Some((inode, name)) = handles.get(file) else { continue };
                r.data[*inode].0.push(i);
                r.inode_of.insert(i, *inode);
                r.name_of.insert(i, name.clone());
            }
            Record::Sync { file, flags } => {
                let full = flags & 0x0f == SYNC_FULL;
                match (device.fsync_barrier, full) {
                    // fsync orders this file's own writes (Linux): its data so far is durable.
                    (true, _) => {
                        if let Some((inode, _)) = handles.get(file) {
                            let ops = &mut r.data[*inode];
                            ops.1 = ops.0.len();
                        }
                    }
                    // A full sync on a device without fsync barriers is F_FULLFSYNC: the synced
                    // file is written out and the drive flushes its cache, so that file is
                    // durable whole and every other one as far as it was written out.
                    (false, true) => {
                        if let Some((inode, _)) = handles.get(file) {
                            r.written_out[*inode] = r.data[*inode].0.len();
                        }
                        for (ops, written_out) in r.data.iter_mut().zip(&r.written_out) {
                            ops.1 = ops.1.max(*written_out);
                        }
                        r.names_durable = r.names_durable.max(r.names_written_out);
                    }
                    // A plain fsync there only writes the file out to the drive's cache.
                    (false, false) => {
                        if let Some((inode, _)) = handles.get(file) {
                            r.written_out[*inode] = r.data[*inode].0.len();
                        }
                    }
                }
            }
            Record::DirSync { .. } => {
                if device.fsync_barrier {
                    r.names_durable = r.names.len();
                } else {
                    r.names_written_out = r.names.len();
                }
            }
            Record::Delete { path, .. } => {
                let name = file_name(path).to_string();
                r.names.push((i, name.clone(), None));
                r.name_of.insert(i, name.clone());
                // The file system may give a later file the same number.
                if let Some(inode) = bound.remove(&name) {
                    by_id.retain(|_, of| *of != inode);
                }
            }
            Record::Close { file } => {
                handles.remove(file);
            }
            Record::Begin { .. } | Record::Ack { .. } | Record::Injected { .. } | Record::Untraced { .. } => {}
        }
    }
    r
}

fn sectors_of(offset: u64, len: u64, sector: u64) -> u32 {
    if len == 0 {
        return 0;
    }
    ((offset + len - 1) / sector - offset / sector + 1) as u32
}

/// The undetermined operations of `records[..cut]` given the files present at the start.
pub fn analyze(base_names: &[String], records: &[Record], cut: usize, device: &Device) -> Analysis {
    let records = &records[..cut.min(records.len())];
    let r = replay(base_names, records, device);
    let mut undetermined = Vec::new();
    for (ops, durable) in &r.data {
        for &i in &ops[*durable..] {
            let what = match &records[i] {
                Record::Write { offset, data, .. } => OpKind::Write {
                    offset: *offset,
                    len: data.len() as u64,
                    sectors: sectors_of(*offset, data.len() as u64, u64::from(device.sector_size_bytes)),
                },
                Record::Truncate { size, .. } => OpKind::Truncate { size: *size },
                other => unreachable!("data operations are writes and truncates, not {other:?}"),
            };
            undetermined.push(Undetermined { record: i, what, name: r.name_of[&i].clone() });
        }
    }
    for (i, name, created) in &r.names[r.names_durable..] {
        let what = if created.is_some() { OpKind::Create } else { OpKind::Delete };
        undetermined.push(Undetermined { record: *i, what, name: name.clone() });
    }
    undetermined.sort_by_key(|u| u.record);
    Analysis { undetermined, sector_size_bytes: device.sector_size_bytes }
}

/// How the fate of every undetermined operation of an image is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fates {
    /// Seeded at random, one fate per image ([`random_choices`]).
    Random,
    /// Deterministic enumeration ([`walk`]): at each cut, every undetermined operation lost
    /// (the durability floor), then each one lost alone with everything else kept.
    Walk,
}

/// One image of a [`walk`]: which of the walk's cuts, and the operation lost alone there
/// (`None`: every undetermined operation lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Step {
    pub cut: usize,
    pub lost_alone: Option<usize>,
}

impl Step {
    /// The choices of this step for a cut with `undetermined` operations.
    pub fn choices(&self, undetermined: usize) -> Vec<Choice> {
        (0..undetermined)
            .map(|k| match self.lost_alone {
                Some(lost) if lost != k => Choice::Keep,
                Some(_) | None => Choice::Drop,
            })
            .collect()
    }
}

/// The first `images` steps of a walk over cuts whose windows hold `windows[c]` undetermined
/// operations each. Each cut's own sequence is the floor (everything lost) followed by every
/// operation lost alone, in an order `rng` shuffles; the cuts take turns, one step each, and a
/// cut whose sequence is done drops out. No step repeats, and once `images` reaches
/// `Σ (windows[c] + 1)` every single loss at every cut is in the walk: the fewest images that
/// can reach them, since one image loses one operation alone at most. A cut with an empty
/// window has only its floor (a process crash at that cut).
pub fn walk(windows: &[usize], images: usize, rng: &mut impl Rng) -> Vec<Step> {
    use rand::seq::SliceRandom;
    let sequences: Vec<Vec<Option<usize>>> = windows
        .iter()
        .map(|&n| {
            let mut alone: Vec<usize> = (0..n).collect();
            alone.shuffle(rng);
            std::iter::once(None).chain(alone.into_iter().map(Some)).collect()
        })
        .collect();
    let rounds = sequences.iter().map(Vec::len).max().unwrap_or(0);
    (0..rounds)
        .flat_map(|round| {
            sequences
                .iter()
                .enumerate()
                .filter_map(move |(cut, seq)| seq.get(round).map(|&lost_alone| Step { cut, lost_alone }))
        })
        .take(images)
        .collect()
}

/// Random choices for `analysis`, one *fate* per image:
/// - half the images, a mixture: a keep probability drawn from {0, 0.3, 0.5, 0.7, 1} (all
///   lost, mostly lost, ..., everything reached the disk), each data operation kept with it,
///   else torn with `torn_percent` percent (when it spans two sectors or more), else dropped;
///   name changes persist as a prefix of uniform length;
/// - a quarter, exactly one operation lost (uniform), everything else kept;
/// - a quarter, one contiguous run of operations lost (uniform start and length), everything
///   else kept.
///
/// A mixture almost never loses exactly one of many operations (with n undetermined, about
/// 0.06 · 0.7^(n−1)), which is where ordering bugs hide: the last two fates reach those states
/// (one given operation alone lost: 1 in 4n images).
pub fn random_choices(analysis: &Analysis, torn_percent: u32, rng: &mut impl Rng) -> Vec<Choice> {
    let n = analysis.undetermined.len();
    if n > 0 {
        match rng.random_range(0..4) {
            0 => {
                let lost = rng.random_range(0..n);
                return (0..n).map(|k| if k == lost { Choice::Drop } else { Choice::Keep }).collect();
            }
            1 => {
                let start = rng.random_range(0..n);
                let end = rng.random_range(start + 1..=n);
                return (0..n).map(|k| if (start..end).contains(&k) { Choice::Drop } else { Choice::Keep }).collect();
            }
            _ => {}
        }
    }
    mixture(analysis, torn_percent, rng)
}

/// The mixture fate of [`random_choices`].
fn mixture(analysis: &Analysis, torn_percent: u32, rng: &mut impl Rng) -> Vec<Choice> {
    const KEEP: [f64; 5] = [0.0, 0.3, 0.5, 0.7, 1.0];
    let keep = KEEP[rng.random_range(0..KEEP.len())];
    let names = analysis.undetermined.iter().filter(|u| u.what.is_name_change()).count();
    let mut names_kept = rng.random_range(0..=names);
    analysis
        .undetermined
        .iter()
        .map(|u| match &u.what {
            OpKind::Create | OpKind::Delete => {
                if names_kept > 0 {
                    names_kept -= 1;
                    Choice::Keep
                } else {
                    Choice::Drop
                }
            }
            OpKind::Truncate { .. } => {
                if rng.random_bool(keep) {
                    Choice::Keep
                } else {
                    Choice::Drop
                }
            }
            OpKind::Write { sectors, .. } => {
                if rng.random_bool(keep) {
                    Choice::Keep
                } else if *sectors >= 2 && rng.random_range(0..100) < torn_percent {
                    // A nonempty proper subset of the sectors.
                    let n = *sectors;
                    let mut kept: Vec<u32> = (0..n).filter(|_| rng.random_bool(0.5)).collect();
                    if kept.is_empty() {
                        kept.push(rng.random_range(0..n));
                    } else if kept.len() == n as usize {
                        kept.remove(rng.random_range(0..kept.len()));
                    }
                    Choice::Torn(kept)
                } else {
                    Choice::Drop
                }
            }
        })
        .collect()
}

/// Deterministic garbage for an unpersisted sector of a torn write: never the old bytes nor
/// the new ones in general, always the same for the same record and sector.
fn garbage(record: usize, sector: u32, len: usize) -> Vec<u8> {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&(record as u64).to_le_bytes());
    h.update(&sector.to_le_bytes());
    let mut state = h.digest();
    (0..len)
        .map(|_| {
            // xorshift: cheap, deterministic, not meant to be random in any strong sense.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn write_at(content: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    if content.len() < offset + bytes.len() {
        content.resize(offset + bytes.len(), 0);
    }
    content[offset..offset + bytes.len()].copy_from_slice(bytes);
}

/// The files a power loss at `cut` leaves, given `choices` for `analyze(..)`'s undetermined
/// operations (same order, same length).
pub fn build(base: &Files, records: &[Record], cut: usize, device: &Device, choices: &[Choice]) -> Files {
    let records = &records[..cut.min(records.len())];
    let base_names: Vec<String> = base.keys().cloned().collect();
    let r = replay(&base_names, records, device);
    let analysis = analyze(&base_names, records, records.len(), device);
    assert_eq!(analysis.undetermined.len(), choices.len(), "one choice per undetermined operation");
    let choice_of: HashMap<usize, &Choice> =
        analysis.undetermined.iter().zip(choices).map(|(u, c)| (u.record, c)).collect();

    // Contents, inode by inode.
    let mut contents: Vec<Vec<u8>> = vec![Vec::new(); r.data.len()];
    for (name, inode) in &r.base {
        contents[*inode] = base[name].clone();
    }
    let sector = device.sector_size_bytes as usize;
    for (inode, (ops, _)) in r.data.iter().enumerate() {
        let content = &mut contents[inode];
        // Past a truncation that did not persist, later writes persist only below its point
        // rounded up to a block, and later truncations not at all; past an extension that did
        // not persist, nothing persists beyond where it stopped: see the module doc ("a
        // truncation orders later writes beyond it", "a sector is a snapshot").
        let mut reach = usize::MAX;
        // The file's size as the process saw it, before each operation.
        let mut size = content.len();
        // Sectors one of whose writes did not persist: no later write to them did either.
        let mut stale: std::collections::HashSet<usize> = std::collections::HashSet::new();
        for &i in ops {
            let chosen = choice_of.get(&i).copied().unwrap_or(&Choice::Keep);
            match &records[i] {
                Record::Truncate { size: to, .. } => {
                    let to = *to as usize;
                    if reach < usize::MAX || matches!(chosen, Choice::Drop) {
                        reach = reach.min((to as u64).next_multiple_of(FS_BLOCK_BYTES) as usize);
                    } else {
                        content.resize(to, 0);
                        // Sectors wholly past the new end are freed: writes there start afresh.
                        stale.retain(|&s| s * sector < to);
                    }
                    size = to;
                }
                Record::Write { offset, data, .. } => {
                    let (offset, end) = (*offset as usize, *offset as usize + data.len());
                    let first = offset / sector;
                    for s in 0..sectors_of(offset as u64, data.len() as u64, sector as u64) {
                        let index = first + s as usize;
                        let lo = (index * sector).max(offset);
                        let hi = ((index + 1) * sector).min(end).min(reach);
                        if lo >= hi {
                            continue;
                        }
                        let own = match chosen {
                            Choice::Keep => true,
                            Choice::Drop => false,
                            Choice::Torn(kept) => kept.contains(&s),
                        };
                        if own && !stale.contains(&index) {
                            write_at(content, lo, &data[lo - offset..hi - offset]);
                            continue;
                        }
                        stale.insert(index);
                        if hi > size {
                            // The file grew here and the growth did not persist: ordered mode
                            // never exposes a size whose data was not written, so the file
                            // ends where the persisted growth did.
                            reach = reach.min(lo.max(size));
                        } else if let (Choice::Torn(_), false, TornFill::Garbage) = (chosen, own, device.torn_fill) {
                            // This write's own sector, caught mid-write.
                            write_at(content, lo, &garbage(i, s, hi - lo));
                        }
                    }
                    size = size.max(end);
                }
                other => unreachable!("data operations are writes and truncates, not {other:?}"),
            }
        }
    }

    // Names: durable changes always, undetermined ones as an in-order prefix.
    let mut bound: BTreeMap<String, usize> = r.base.iter().cloned().collect();
    let mut prefix_alive = true;
    for (k, (i, name, created)) in r.names.iter().enumerate() {
        let persisted = k < r.names_durable || {
            prefix_alive &= matches!(choice_of.get(i), Some(Choice::Keep));
            prefix_alive
        };
        if persisted {
            match created {
                Some(inode) => bound.insert(name.clone(), *inode),
                None => bound.remove(name),
            };
        }
    }
    bound.into_iter().map(|(name, inode)| (name, std::mem::take(&mut contents[inode]))).collect()
}

/// Per writer: the sequence numbers acknowledged (in order) and the highest begun, in
/// `records[..cut]`.
pub fn acks_at(records: &[Record], cut: usize) -> BTreeMap<u64, (Vec<u64>, u64)> {
    let mut acks: BTreeMap<u64, (Vec<u64>, u64)> = BTreeMap::new();
    for record in &records[..cut.min(records.len())] {
        match record {
            Record::Begin { writer, seq } => {
                let e = acks.entry(*writer).or_default();
                e.1 = e.1.max(*seq);
            }
            Record::Ack { writer, seq } => acks.entry(*writer).or_default().0.push(*seq),
            Record::Open { .. }
            | Record::Write { .. }
            | Record::Truncate { .. }
            | Record::Sync { .. }
            | Record::DirSync { .. }
            | Record::Delete { .. }
            | Record::Close { .. }
            | Record::Injected { .. } | Record::Untraced { .. } => {}
        }
    }
    acks
}

/// Cut points for `images` crash images of a trace of `len` records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutPoints {
    /// Uniformly random record positions.
    Random,
    /// Just before every sync (everything since the previous barrier is in flight) and just
    /// after every acknowledgement, deletion and truncation; when there are more such positions
    /// than images, one at random within each of `images` equal ranges of them.
    Systematic,
}

/// The cuts of one trace: each a number of records (`1..=len`).
pub fn cuts(records: &[Record], images: usize, points: CutPoints, rng: &mut impl Rng) -> Vec<usize> {
    let len = records.len();
    if len == 0 || images == 0 {
        return Vec::new();
    }
    match points {
        CutPoints::Random => (0..images).map(|_| rng.random_range(1..=len)).collect(),
        CutPoints::Systematic => {
            // A cut `c` keeps records[..c]: before a sync is `c = i`, after an operation `i + 1`.
            let mut boundaries: Vec<usize> = records
                .iter()
                .enumerate()
                .filter_map(|(i, r)| match r {
                    Record::Sync { .. } => Some(i),
                    Record::Ack { .. } | Record::Delete { .. } | Record::Truncate { .. } => Some(i + 1),
                    _ => None,
                })
                .filter(|&c| c > 0)
                .collect();
            boundaries.push(len);
            boundaries.sort_unstable();
            boundaries.dedup();
            if boundaries.len() <= images {
                return boundaries;
            }
            let n = boundaries.len();
            (0..images).map(|k| boundaries[rng.random_range(k * n / images..(k + 1) * n / images)]).collect()
        }
    }
}

/// Delta debugging (ddmin) over the non-`Keep` choices: the smallest set found, within
/// `tests_max` calls of `fails`, such that turning every other choice to `Keep` still fails.
/// `fails` must be deterministic. Returns the shrunk choices and the number of tests run.
pub fn shrink(choices: &[Choice], tests_max: usize, fails: &mut dyn FnMut(&[Choice]) -> bool) -> (Vec<Choice>, usize) {
    let with_only = |kept: &[usize]| -> Vec<Choice> {
        choices.iter().enumerate().map(|(i, c)| if kept.contains(&i) { c.clone() } else { Choice::Keep }).collect()
    };
    let mut current: Vec<usize> = (0..choices.len()).filter(|&i| choices[i] != Choice::Keep).collect();
    let mut tests = 0;
    let mut n = 2usize;
    while current.len() >= 2 && tests < tests_max {
        let chunk = current.len().div_ceil(n);
        let mut reduced = false;
        for start in (0..current.len()).step_by(chunk) {
            if tests >= tests_max {
                break;
            }
            // Try the complement of this chunk first: it removes the most.
            let complement: Vec<usize> = current
                .iter()
                .enumerate()
                .filter(|(k, _)| *k < start || *k >= start + chunk)
                .map(|(_, &i)| i)
                .collect();
            tests += 1;
            if fails(&with_only(&complement)) {
                current = complement;
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= current.len() {
                break;
            }
            n = (n * 2).min(current.len());
        }
    }
    // A last pass: is even one choice needed? (A failure without any lost write is a process
    // crash failure; say so by returning no choices.)
    if current.len() == 1 && tests < tests_max {
        tests += 1;
        if fails(&with_only(&[])) {
            current.clear();
        }
    }
    (with_only(&current), tests)
}

/// What a database page or WAL frame an offset falls in, for explanations.
fn locate(name: &str, offset: u64, page_size: u64) -> String {
    if name.ends_with("-wal") {
        const WAL_HEADER: u64 = 32;
        const FRAME_HEADER: u64 = 24;
        if offset < WAL_HEADER {
            return "WAL header".into();
        }
        return format!("frame {}", (offset - WAL_HEADER) / (FRAME_HEADER + page_size) + 1);
    }
    if name.ends_with("-journal") {
        return if offset == 0 { "journal header".into() } else { format!("journal byte {offset}") };
    }
    format!("page {}", offset / page_size + 1)
}

/// Per undetermined operation, whether what it did shows in the image `choices` build: a kept
/// or torn data operation does, unless a lost truncation of its file took it (at or beyond
/// the truncation's block), every sector it wrote follows a lost write to that sector (a
/// sector is a snapshot), or its file's creation was lost (it went to an inode no name
/// reaches). Names are tracked by the name each operation was made under.
fn visible_in_image(analysis: &Analysis, choices: &[Choice]) -> Vec<bool> {
    let sector = u64::from(analysis.sector_size_bytes.max(1));
    let mut stale: std::collections::HashSet<(&str, u64)> = std::collections::HashSet::new();
    let mut reach: HashMap<&str, u64> = HashMap::new();
    let mut unnamed: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut names_alive = true;
    analysis
        .undetermined
        .iter()
        .zip(choices)
        .map(|(u, c)| {
            let name = u.name.as_str();
            let kept = !matches!(c, Choice::Drop);
            match &u.what {
                OpKind::Create | OpKind::Delete => {
                    // Name changes persist as a prefix.
                    names_alive &= kept;
                    match (&u.what, names_alive) {
                        (OpKind::Create, true) => {
                            unnamed.remove(name);
                            reach.remove(name);
                        }
                        (OpKind::Create, false) => {
                            unnamed.insert(name);
                        }
                        _ => {}
                    }
                    names_alive
                }
                OpKind::Truncate { size } => {
                    let cut_off = reach.contains_key(name);
                    if !kept && !cut_off {
                        reach.insert(name, size.next_multiple_of(FS_BLOCK_BYTES));
                    }
                    kept && !cut_off && !unnamed.contains(name)
                }
                OpKind::Write { offset, len, .. } => {
                    let sectors = (*offset / sector)..(offset + len.max(&1)).div_ceil(sector);
                    let mut shows = false;
                    for s in sectors {
                        if kept && !stale.contains(&(name, s)) {
                            shows = true;
                        } else {
                            stale.insert((name, s));
                        }
                    }
                    shows && reach.get(name).is_none_or(|r| offset < r) && !unnamed.contains(name)
                }
            }
        })
        .collect()
}

/// The shrunk choices in words: one line per lost, torn or un-done operation, each saying
/// which later operation did persist (what makes the loss an ordering problem).
pub fn explain(analysis: &Analysis, choices: &[Choice], page_size: u64) -> Vec<String> {
    let visible = visible_in_image(analysis, choices);
    let mut lines = Vec::new();
    for (k, (u, c)) in analysis.undetermined.iter().zip(choices).enumerate() {
        let what = match (&u.what, c) {
            (_, Choice::Keep) => continue,
            (OpKind::Write { offset, len, .. }, Choice::Drop) => format!(
                "lost: write #{} to {} at offset {offset} ({}, {len} bytes)",
                u.record,
                u.name,
                locate(&u.name, *offset, page_size)
            ),
            (OpKind::Write { offset, len, sectors }, Choice::Torn(kept)) => format!(
                "torn: write #{} to {} at offset {offset} ({}, {len} bytes): {} of {sectors} sectors persisted",
                u.record,
                u.name,
                locate(&u.name, *offset, page_size),
                kept.len()
            ),
            (OpKind::Truncate { size }, Choice::Drop | Choice::Torn(_)) => {
                format!(
                    "lost: truncation #{} of {} to {size} bytes (and with it what later writes put at or beyond \
                     byte {})",
                    u.record,
                    u.name,
                    size.next_multiple_of(FS_BLOCK_BYTES)
                )
            }
            (OpKind::Create, Choice::Drop | Choice::Torn(_)) => {
                format!("lost: creation #{} of {} (directory entry never synced)", u.record, u.name)
            }
            (OpKind::Delete, Choice::Drop | Choice::Torn(_)) => {
                format!("undone: deletion #{} of {} (directory never synced after it)", u.record, u.name)
            }
        };
        // The first later data operation that did persist: what makes the loss a matter of
        // order. (Name changes after a lost one are lost with it: they persist as a prefix.)
        let later_kept = analysis.undetermined[k + 1..]
            .iter()
            .zip(&choices[k + 1..])
            .zip(&visible[k + 1..])
            .filter(|(_, visible)| **visible)
            .find_map(|((l, c), _)| match (&l.what, c) {
                (OpKind::Write { offset, .. }, Choice::Keep) => Some(format!(
                    " while write #{} to {} ({}) persisted",
                    l.record,
                    l.name,
                    locate(&l.name, *offset, page_size)
                )),
                (OpKind::Truncate { .. }, Choice::Keep) => {
                    Some(format!(" while truncation #{} of {} persisted", l.record, l.name))
                }
                (OpKind::Write { .. } | OpKind::Truncate { .. }, Choice::Drop | Choice::Torn(_))
                | (OpKind::Create | OpKind::Delete, _) => None,
            })
            .unwrap_or_default();
        lines.push(format!("{what}{later_kept}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::trace::FileKind;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const DIR: &str = "/d/";

    fn f(h: u32) -> FileRef {
        FileRef { writer: 1, handle: h }
    }

    /// A small model of SQLite-like I/O: three names, random opens (creating or not),
    /// writes, truncates, syncs of both flavours, deletes with and without dirsync.
    fn op() -> impl Strategy<Value = (u8, u8, u16, u16, u8)> {
        (0u8..9, 0u8..3, 0u16..3000, 1u16..1500, any::<u8>())
    }

    fn trace_from(ops: Vec<(u8, u8, u16, u16, u8)>) -> Vec<Record> {
        let names = ["db", "db-wal", "db-journal"];
        let mut records = Vec::new();
        // Handles 0..3 are open on the base files from the start.
        for (h, name) in names.iter().enumerate() {
            records.push(Record::Open {
                file: f(h as u32),
                path: format!("{DIR}{name}"),
                kind: FileKind::MainDb,
                created: false,
                id: None,
            });
        }
        let mut open: Vec<bool> = vec![true; 3];
        let mut next = 3u32;
        let mut handle_of: Vec<u32> = vec![0, 1, 2];
        for (kind, file, offset, len, byte) in ops {
            let n = file as usize;
            let fr = f(handle_of[n]);
            match kind {
                0..=3 if open[n] => {
                    records.push(Record::Write { file: fr, offset: offset.into(), data: vec![byte; len as usize] })
                }
                4 if open[n] => records.push(Record::Truncate { file: fr, size: u64::from(offset) }),
                5 if open[n] => records.push(Record::Sync { file: fr, flags: if byte % 2 == 0 { 2 } else { 3 } }),
                6 => records.push(Record::DirSync { path: format!("{DIR}{}", names[n]) }),
                7 if n > 0 => {
                    records.push(Record::Delete { path: format!("{DIR}{}", names[n]), dir_sync: byte % 2 == 0 });
                    if byte % 2 == 0 {
                        records.push(Record::DirSync { path: format!("{DIR}{}", names[n]) });
                    }
                    open[n] = false;
                }
                8 if !open[n] => {
                    handle_of[n] = next;
                    records.push(Record::Open {
                        file: f(next),
                        path: format!("{DIR}{}", names[n]),
                        kind: FileKind::Wal,
                        created: true,
                        id: None,
                    });
                    next += 1;
                    open[n] = true;
                }
                _ => records.push(Record::Ack { writer: 1, seq: u64::from(byte) }),
            }
        }
        records
    }

    fn base() -> Files {
        [("db".to_string(), vec![7u8; 4096]), ("db-wal".to_string(), vec![]), ("db-journal".to_string(), vec![1; 10])]
            .into_iter()
            .collect()
    }

    /// The files as the running process saw them after `records` (no power loss at all).
    fn process_view(base: &Files, records: &[Record]) -> Files {
        let mut files = base.clone();
        let mut handles: HashMap<FileRef, String> = HashMap::new();
        // Deleted-but-open files keep their content for the handle, not the name.
        let mut orphans: HashMap<FileRef, Vec<u8>> = HashMap::new();
        for r in records {
            match r {
                Record::Open { file, path, created, .. } => {
                    let name = file_name(path).to_string();
                    if *created || !files.contains_key(&name) {
                        files.insert(name.clone(), Vec::new());
                    }
                    handles.insert(*file, name);
                }
                Record::Write { file, offset, data } => {
                    if let Some(c) = orphans.get_mut(file) {
                        write_at(c, *offset as usize, data);
                    } else if let Some(name) = handles.get(file) {
                        write_at(files.get_mut(name).unwrap(), *offset as usize, data);
                    }
                }
                Record::Truncate { file, size } => {
                    if let Some(c) = orphans.get_mut(file) {
                        c.resize(*size as usize, 0);
                    } else if let Some(name) = handles.get(file) {
                        files.get_mut(name).unwrap().resize(*size as usize, 0);
                    }
                }
                Record::Delete { path, .. } => {
                    let name = file_name(path).to_string();
                    if let Some(content) = files.remove(&name) {
                        for (h, n) in &handles {
                            if *n == name {
                                orphans.insert(*h, content.clone());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        files
    }

    /// The durability floor after `records` (everything undetermined lost), from the module
    /// doc alone. On a barrier device a file's data operations count up to its last sync, name
    /// changes (creations, deletions) up to the last directory sync. Without barriers only a
    /// full sync flushes: the file it syncs counts up to it, every other file up to its own
    /// last sync before it, the names up to the last directory sync before it. Returns the
    /// files and the records of the operations it leaves out, in trace order.
    fn durability_floor(base: &Files, records: &[Record]) -> (Files, Vec<usize>) {
        durability_floor_on(base, records, true)
    }

    fn durability_floor_on(base: &Files, records: &[Record], barrier: bool) -> (Files, Vec<usize>) {
        // A file is its inode: a base file's name, or the record that created it.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        enum Inode {
            Base(String),
            Created(usize),
        }
        let is_full = |r: &Record| matches!(r, Record::Sync { flags, .. } if flags & 0x0f == SYNC_FULL);
        // Without barriers, nothing after the last full sync is durable.
        let flushed_before = if barrier { records.len() } else { records.iter().rposition(is_full).unwrap_or(0) };
        let last_dir_sync = records[..flushed_before].iter().rposition(|r| matches!(r, Record::DirSync { .. }));
        let name_durable = |i: usize| last_dir_sync.is_some_and(|d| i < d);
        // Names as the process saw them, and as they are on the disk.
        let mut seen: HashMap<String, Inode> = base.keys().map(|n| (n.clone(), Inode::Base(n.clone()))).collect();
        let mut on_disk = seen.clone();
        let mut handles: HashMap<FileRef, Inode> = HashMap::new();
        let mut data: Vec<(usize, Inode)> = Vec::new();
        let mut last_sync: HashMap<Inode, usize> = HashMap::new();
        // Without barriers: per file, its last sync (written out, not yet flushed).
        let mut written_out: HashMap<Inode, usize> = HashMap::new();
        let mut left_out = Vec::new();
        for (i, r) in records.iter().enumerate() {
            match r {
                Record::Open { file, path, created, .. } => {
                    let name = file_name(path).to_string();
                    let inode = match seen.get(&name) {
                        Some(inode) if !created => inode.clone(),
                        _ => {
                            seen.insert(name.clone(), Inode::Created(i));
                            if name_durable(i) {
                                on_disk.insert(name, Inode::Created(i));
                            } else {
                                left_out.push(i);
                            }
                            Inode::Created(i)
                        }
                    };
                    handles.insert(*file, inode);
                }
                Record::Delete { path, .. } => {
                    seen.remove(file_name(path));
                    if name_durable(i) {
                        on_disk.remove(file_name(path));
                    } else {
                        left_out.push(i);
                    }
                }
                Record::Write { file, .. } | Record::Truncate { file, .. } => {
                    data.extend(handles.get(file).map(|inode| (i, inode.clone())));
                }
                Record::Sync { file, .. } => {
                    if let Some(inode) = handles.get(file) {
                        if barrier {
                            last_sync.insert(inode.clone(), i);
                        } else if is_full(r) {
                            // The flush: this file up to here, the others as far as written out.
                            for (of, point) in &written_out {
                                let durable = last_sync.entry(of.clone()).or_insert(0);
                                *durable = (*durable).max(*point);
                            }
                            last_sync.insert(inode.clone(), i);
                            written_out.insert(inode.clone(), i);
                        } else {
                            written_out.insert(inode.clone(), i);
                        }
                    }
                }
                Record::Close { file } => {
                    handles.remove(file);
                }
                Record::DirSync { .. } | Record::Begin { .. } | Record::Ack { .. } | Record::Injected { .. } | Record::Untraced { .. } => {}
            }
        }
        let synced = |i: usize, inode: &Inode| last_sync.get(inode).is_some_and(|&s| i < s);
        left_out.extend(data.iter().filter(|(i, inode)| !synced(*i, inode)).map(|(i, _)| *i));
        left_out.sort_unstable();
        let files = on_disk
            .into_iter()
            .map(|(name, inode)| {
                let mut content = match &inode {
                    Inode::Base(base_name) => base[base_name].clone(),
                    Inode::Created(_) => Vec::new(),
                };
                for (i, _) in data.iter().filter(|(i, of)| *of == inode && synced(*i, of)) {
                    match &records[*i] {
                        Record::Write { offset, data, .. } => write_at(&mut content, *offset as usize, data),
                        Record::Truncate { size, .. } => content.resize(*size as usize, 0),
                        other => unreachable!("data operations are writes and truncates, not {other:?}"),
                    }
                }
                (name, content)
            })
            .collect();
        (files, left_out)
    }

    fn keep_all(analysis: &Analysis) -> Vec<Choice> {
        vec![Choice::Keep; analysis.undetermined.len()]
    }

    proptest! {
        /// Keeping every undetermined operation reproduces the process's view at the cut.
        #[test]
        fn keep_everything_is_the_process_view(ops in proptest::collection::vec(op(), 0..60), cut in any::<prop::sample::Index>(), barrier in any::<bool>()) {
            let records = trace_from(ops);
            let cut = cut.index(records.len() + 1);
            let device = Device { fsync_barrier: barrier, ..Device::default() };
            let names: Vec<String> = base().keys().cloned().collect();
            let a = analyze(&names, &records, cut, &device);
            prop_assert_eq!(build(&base(), &records, cut, &device, &keep_all(&a)), process_view(&base(), &records[..cut]));
        }

        /// On a barrier device, dropping every undetermined operation leaves exactly the
        /// durability floor ([`durability_floor`], modelled apart from `build`), and the
        /// undetermined operations are exactly those the floor leaves out.
        #[test]
        fn dropping_every_undetermined_operation_leaves_the_durability_floor(ops in proptest::collection::vec(op(), 0..60), cut in any::<prop::sample::Index>()) {
            let records = trace_from(ops);
            let cut = cut.index(records.len() + 1);
            let device = Device::default();
            let names: Vec<String> = base().keys().cloned().collect();
            let a = analyze(&names, &records, cut, &device);
            let (floor, left_out) = durability_floor(&base(), &records[..cut]);
            prop_assert_eq!(a.undetermined.iter().map(|u| u.record).collect::<Vec<_>>(), left_out);
            let drop_all = vec![Choice::Drop; a.undetermined.len()];
            prop_assert_eq!(build(&base(), &records, cut, &device, &drop_all), floor);
        }

        /// Without barriers too: dropping every undetermined operation leaves the floor the
        /// reference computes for a device where only full syncs flush.
        #[test]
        fn without_barriers_dropping_everything_leaves_the_full_sync_floor(ops in proptest::collection::vec(op(), 0..60), cut in any::<prop::sample::Index>()) {
            let records = trace_from(ops);
            let cut = cut.index(records.len() + 1);
            let device = Device { fsync_barrier: false, ..Device::default() };
            let names: Vec<String> = base().keys().cloned().collect();
            let a = analyze(&names, &records, cut, &device);
            let (floor, left_out) = durability_floor_on(&base(), &records[..cut], false);
            prop_assert_eq!(a.undetermined.iter().map(|u| u.record).collect::<Vec<_>>(), left_out);
            let drop_all = vec![Choice::Drop; a.undetermined.len()];
            prop_assert_eq!(build(&base(), &records, cut, &device, &drop_all), floor);
        }

        /// On a barrier device, whatever the choices, a name that no undetermined operation
        /// concerns (no write, truncation, creation or deletion under it) is in the image
        /// exactly as in the durability floor: present with the same bytes, or absent.
        #[test]
        fn whatever_the_choices_a_file_no_undetermined_operation_touched_is_as_in_the_floor(ops in proptest::collection::vec(op(), 0..60), cut in any::<prop::sample::Index>(), seed in any::<u64>()) {
            let records = trace_from(ops);
            let cut = cut.index(records.len() + 1);
            let device = Device::default();
            let names: Vec<String> = base().keys().cloned().collect();
            let a = analyze(&names, &records, cut, &device);
            let choices = random_choices(&a, 30, &mut ChaCha8Rng::seed_from_u64(seed));
            let image = build(&base(), &records, cut, &device, &choices);
            let (floor, _) = durability_floor(&base(), &records[..cut]);
            for name in ["db", "db-wal", "db-journal"] {
                if !a.undetermined.iter().any(|u| u.name == name) {
                    prop_assert_eq!(image.get(name), floor.get(name), "{}", name);
                }
            }
        }

        /// The same seed gives the same choices and so the same image.
        #[test]
        fn same_seed_same_image(ops in proptest::collection::vec(op(), 0..40), seed in any::<u64>()) {
            let records = trace_from(ops);
            let device = Device { torn_fill: TornFill::Garbage, ..Device::default() };
            let names: Vec<String> = base().keys().cloned().collect();
            let a = analyze(&names, &records, records.len(), &device);
            let c1 = random_choices(&a, 50, &mut ChaCha8Rng::seed_from_u64(seed));
            let c2 = random_choices(&a, 50, &mut ChaCha8Rng::seed_from_u64(seed));
            prop_assert_eq!(&c1, &c2);
            prop_assert_eq!(build(&base(), &records, records.len(), &device, &c1), build(&base(), &records, records.len(), &device, &c2));
        }

        /// ddmin finds a 1-minimal failing subset for a monotone failure predicate ("some
        /// chosen element of a hidden set is not kept").
        #[test]
        fn shrink_finds_a_minimal_culprit(n in 1usize..40, culprits in proptest::collection::btree_set(0usize..40, 1..4)) {
            let choices: Vec<Choice> = (0..n).map(|i| if i % 3 == 0 { Choice::Keep } else { Choice::Drop }).collect();
            let culprits: Vec<usize> = culprits.into_iter().filter(|&c| c < n && choices[c] != Choice::Keep).collect();
            prop_assume!(!culprits.is_empty());
            let mut fails = |c: &[Choice]| culprits.iter().any(|&k| c[k] != Choice::Keep);
            let (shrunk, _) = shrink(&choices, 1000, &mut fails);
            let left: Vec<usize> = (0..n).filter(|&i| shrunk[i] != Choice::Keep).collect();
            prop_assert_eq!(left.len(), 1);
            prop_assert!(culprits.contains(&left[0]));
        }
    }

    #[test]
    fn only_the_write_after_the_last_sync_is_undetermined_and_dropping_it_leaves_what_was_synced() {
        let records = vec![
            Record::Open { file: f(0), path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None },
            Record::Write { file: f(0), offset: 0, data: vec![2; 4096] },
            Record::Sync { file: f(0), flags: 2 },
            Record::Write { file: f(0), offset: 4096, data: vec![3; 4096] },
        ];
        let base: Files = [("db".to_string(), vec![1u8; 8192])].into_iter().collect();
        let a = analyze(&["db".to_string()], &records, records.len(), &Device::default());
        let last =
            Undetermined { record: 3, what: OpKind::Write { offset: 4096, len: 4096, sectors: 8 }, name: "db".into() };
        assert_eq!(a.undetermined, vec![last]);
        let synced = [vec![2u8; 4096], vec![1u8; 4096]].concat();
        let image = build(&base, &records, records.len(), &Device::default(), &[Choice::Drop]);
        assert_eq!(image, [("db".to_string(), synced.clone())].into_iter().collect::<Files>());
        assert_eq!(durability_floor(&base, &records), (image, vec![3]));
        let image = build(&base, &records, records.len(), &Device::default(), &[Choice::Keep]);
        assert_eq!(image["db"], [vec![2u8; 4096], vec![3u8; 4096]].concat());
    }

    #[test]
    fn a_barrier_sync_makes_earlier_writes_durable_only_on_its_file() {
        let records = vec![
            Record::Open { file: f(0), path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None },
            Record::Open { file: f(1), path: "/d/db-wal".into(), kind: FileKind::Wal, created: false, id: None },
            Record::Write { file: f(1), offset: 0, data: vec![1; 100] },
            Record::Write { file: f(0), offset: 0, data: vec![2; 100] },
            Record::Sync { file: f(1), flags: 2 },
            Record::Write { file: f(1), offset: 100, data: vec![3; 100] },
        ];
        let names: Vec<String> = base().keys().cloned().collect();
        let a = analyze(&names, &records, records.len(), &Device::default());
        let undetermined: Vec<usize> = a.undetermined.iter().map(|u| u.record).collect();
        assert_eq!(undetermined, vec![3, 5]);
        // On a device without fsync barriers a NORMAL sync makes nothing durable, and a FULL
        // one makes its own file durable and the others only as far as they were written out:
        // the database's write was never synced, so it stays undetermined.
        let no_barrier = Device { fsync_barrier: false, ..Device::default() };
        let a = analyze(&names, &records, records.len(), &no_barrier);
        assert_eq!(a.undetermined.len(), 3);
        let mut full = records.clone();
        full[4] = Record::Sync { file: f(1), flags: SYNC_FULL };
        let a = analyze(&names, &full, full.len(), &no_barrier);
        assert_eq!(a.undetermined.iter().map(|u| u.record).collect::<Vec<_>>(), vec![3, 5]);
    }

    /// F_FULLFSYNC flushes the drive's cache, but only what was written out reaches it: a WAL
    /// write that no sync wrote out is still undetermined after a FULL sync of the database;
    /// with a plain sync of the WAL before it, nothing is.
    #[test]
    fn a_full_sync_without_barriers_makes_durable_only_what_was_written_out() {
        let no_barrier = Device { fsync_barrier: false, ..Device::default() };
        let names: Vec<String> = base().keys().cloned().collect();
        let mut records = vec![
            Record::Open { file: f(0), path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None },
            Record::Open { file: f(1), path: "/d/db-wal".into(), kind: FileKind::Wal, created: false, id: None },
            Record::Write { file: f(1), offset: 0, data: vec![1; 100] },
            Record::Sync { file: f(0), flags: SYNC_FULL },
        ];
        let a = analyze(&names, &records, records.len(), &no_barrier);
        assert_eq!(a.undetermined.iter().map(|u| u.record).collect::<Vec<_>>(), vec![2]);
        records.insert(3, Record::Sync { file: f(1), flags: 2 });
        assert!(analyze(&names, &records, records.len(), &no_barrier).undetermined.is_empty());
        // A plain sync alone writes out and makes nothing durable.
        records.pop();
        assert_eq!(analyze(&names, &records, records.len(), &no_barrier).undetermined.len(), 1);
    }

    /// A lost truncation takes only what later writes put at or beyond its block: SQLite's
    /// checkpoint truncates and rewrites the start of a file, and a state where the rewrite
    /// persisted and the truncation did not is one a file system leaves.
    #[test]
    fn a_lost_truncation_keeps_later_writes_below_its_block() {
        let records = vec![
            Record::Open { file: f(0), path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None },
            Record::Truncate { file: f(0), size: 6000 },
            Record::Write { file: f(0), offset: 0, data: vec![2; 4096] },
            Record::Write { file: f(0), offset: 8192, data: vec![3; 4096] },
            Record::Write { file: f(0), offset: 4096, data: vec![4; 8192] },
        ];
        let base: Files = [("db".to_string(), vec![1u8; 8192])].into_iter().collect();
        let a = analyze(&["db".to_string()], &records, 3, &Device::default());
        assert_eq!(a.undetermined.len(), 2);
        let image = build(&base, &records, 3, &Device::default(), &[Choice::Drop, Choice::Keep]);
        assert_eq!(image["db"], [vec![2u8; 4096], vec![1u8; 4096]].concat());
        // Beyond the block the truncation freed (6000 rounds up to 8192): gone with it; a
        // write straddling it keeps its part below.
        let keep = [Choice::Drop, Choice::Keep, Choice::Keep, Choice::Keep];
        let image = build(&base, &records, 5, &Device::default(), &keep);
        assert_eq!(image["db"], [vec![2u8; 4096], vec![4u8; 4096]].concat());
        let a = analyze(&["db".to_string()], &records, 5, &Device::default());
        let lines = explain(&a, &keep, 4096);
        assert_eq!(
            lines,
            vec![
                "lost: truncation #1 of db to 6000 bytes (and with it what later writes put at or beyond byte 8192) \
                 while write #2 to db (page 1) persisted"
            ]
        );
    }

    /// The page cache writes a sector back as a whole, as it stands: a later write to a sector
    /// cannot reach the disk without an earlier one to the same sector (a WAL frame's header
    /// lost while the data after it in the same sector persisted is no disk's state), while
    /// writes to different sectors persist independently.
    #[test]
    fn a_sector_persists_as_a_snapshot_of_its_writes_in_order() {
        let records = vec![
            Record::Open { file: f(0), path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None },
            Record::Write { file: f(0), offset: 0, data: vec![1; 24] },
            Record::Write { file: f(0), offset: 24, data: vec![2; 488] },
            Record::Write { file: f(0), offset: 512, data: vec![3; 512] },
        ];
        let base: Files = [("db".to_string(), vec![0u8; 1024])].into_iter().collect();
        let names = vec!["db".to_string()];
        let device = Device::default();
        assert_eq!(analyze(&names, &records, 4, &device).undetermined.len(), 3);
        let image = |choices: &[Choice]| build(&base, &records, 4, &device, choices)["db"].clone();
        // The header lost: the data after it in its sector is lost with it; the next sector's
        // write is its own.
        let lost_header = image(&[Choice::Drop, Choice::Keep, Choice::Keep]);
        assert_eq!(lost_header, [vec![0u8; 512], vec![3u8; 512]].concat());
        // The later write lost, the earlier kept: a snapshot in between.
        let lost_data = image(&[Choice::Keep, Choice::Drop, Choice::Drop]);
        assert_eq!(lost_data, [vec![1u8; 24], vec![0u8; 1000]].concat());
    }

    /// Ordered mode never exposes a size whose data was not written: a file grows only as far
    /// as its appended sectors persisted, in order, and never with zero-filled sectors.
    #[test]
    fn a_file_grows_only_as_far_as_its_appends_persisted_in_order() {
        let records = vec![
            Record::Open { file: f(0), path: "/d/db-wal".into(), kind: FileKind::Wal, created: false, id: None },
            Record::Write { file: f(0), offset: 0, data: vec![1; 512] },
            Record::Write { file: f(0), offset: 512, data: vec![2; 1024] },
            Record::Write { file: f(0), offset: 1536, data: vec![3; 512] },
        ];
        let base: Files = [("db-wal".to_string(), Vec::new())].into_iter().collect();
        let names = vec!["db-wal".to_string()];
        let device = Device::default();
        let image = |choices: &[Choice]| build(&base, &records, 4, &device, choices)["db-wal"].clone();
        assert_eq!(image(&[Choice::Drop, Choice::Keep, Choice::Keep]), Vec::<u8>::new());
        assert_eq!(image(&[Choice::Keep, Choice::Drop, Choice::Keep]), vec![1u8; 512]);
        // A torn append keeps only the sectors up to its first lost one.
        assert_eq!(image(&[Choice::Keep, Choice::Torn(vec![1]), Choice::Keep]), vec![1u8; 512]);
        assert_eq!(
            image(&[Choice::Keep, Choice::Torn(vec![0]), Choice::Keep]),
            [vec![1u8; 512], vec![2u8; 512]].concat()
        );
        assert_eq!(analyze(&names, &records, 4, &device).undetermined.len(), 3);
    }

    /// Two connections open one WAL, each with O_CREAT, each believing it created it: one
    /// file (the identity read at the open says so), so what the first handle wrote and
    /// synced is in the image; a name later deleted and created again is a new file, even
    /// with the same inode number.
    #[test]
    fn two_creations_of_one_file_are_one_file_and_its_synced_bytes_stay() {
        let id = Some(FileId { dev: 1, ino: 42 });
        let wal = |h: u32| Record::Open { file: f(h), path: "/d/db-wal".into(), kind: FileKind::Wal, created: true, id };
        let mut records = vec![
            wal(1),
            wal(2),
            Record::Write { file: f(1), offset: 0, data: vec![5; 512] },
            Record::Sync { file: f(1), flags: 2 },
            Record::DirSync { path: "/d/db-wal".into() },
        ];
        let base: Files = [("db".to_string(), vec![0u8; 4096])].into_iter().collect();
        let names = vec!["db".to_string()];
        let a = analyze(&names, &records, records.len(), &Device::default());
        assert!(a.undetermined.is_empty(), "{a:?}");
        let image = build(&base, &records, records.len(), &Device::default(), &[]);
        assert_eq!(image["db-wal"], vec![5; 512]);
        // Deleted and made again: the same number, a new (empty, unsynced) file.
        records.push(Record::Delete { path: "/d/db-wal".into(), dir_sync: true });
        records.push(Record::DirSync { path: "/d/db-wal".into() });
        records.push(wal(3));
        let a = analyze(&names, &records, records.len(), &Device::default());
        assert_eq!(a.undetermined.iter().map(|u| &u.what).collect::<Vec<_>>(), vec![&OpKind::Create]);
        let image = build(&base, &records, records.len(), &Device::default(), &[Choice::Keep]);
        assert_eq!(image["db-wal"], Vec::<u8>::new());
    }

    /// An explanation names as "persisted" only what shows in the image: not a write a lost
    /// truncation took, not a write to a file whose creation was lost.
    #[test]
    fn explanations_name_only_operations_that_show_in_the_image() {
        let records = vec![
            Record::Open { file: f(0), path: "/d/db-journal".into(), kind: FileKind::MainJournal, created: false, id: None },
            Record::Truncate { file: f(0), size: 0 },
            Record::Write { file: f(0), offset: 0, data: vec![2; 512] },
            Record::Delete { path: "/d/db-wal".into(), dir_sync: false },
            Record::Open { file: f(1), path: "/d/db-wal".into(), kind: FileKind::Wal, created: true, id: None },
            Record::Write { file: f(1), offset: 0, data: vec![3; 512] },
        ];
        let names: Vec<String> = base().keys().cloned().collect();
        let a = analyze(&names, &records, records.len(), &Device::default());
        let kinds: Vec<usize> = a.undetermined.iter().map(|u| u.record).collect();
        assert_eq!(kinds, vec![1, 2, 3, 4, 5]);
        let choices = [Choice::Drop, Choice::Keep, Choice::Drop, Choice::Drop, Choice::Keep];
        let lines = explain(&a, &choices, 4096);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains(" while ")), "{lines:?}");
        // Nor a write whose every sector follows a lost write there; one with a sector of its
        // own does show.
        let records = vec![
            Record::Open { file: f(0), path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None },
            Record::Write { file: f(0), offset: 0, data: vec![1; 24] },
            Record::Write { file: f(0), offset: 24, data: vec![2; 100] },
            Record::Write { file: f(0), offset: 100, data: vec![3; 600] },
        ];
        let a = analyze(&names, &records, records.len(), &Device::default());
        let lines = explain(&a, &[Choice::Drop, Choice::Keep, Choice::Keep], 4096);
        assert_eq!(lines, vec!["lost: write #1 to db at offset 0 (page 1, 24 bytes) while write #3 to db (page 1) persisted"]);
    }

    #[test]
    fn an_unsynced_journal_deletion_may_be_undone_and_the_journal_comes_back() {
        // DELETE mode under synchronous=FULL: the journal is created, synced (its directory
        // entry with it), the database written and synced, the journal deleted without a
        // directory sync.
        let records = vec![
            Record::Open { file: f(0), path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None },
            Record::Open { file: f(1), path: "/d/db-journal".into(), kind: FileKind::MainJournal, created: true, id: None },
            Record::Write { file: f(1), offset: 0, data: vec![9; 512] },
            Record::Sync { file: f(1), flags: 2 },
            Record::DirSync { path: "/d/db-journal".into() },
            Record::Write { file: f(0), offset: 0, data: vec![5; 4096] },
            Record::Sync { file: f(0), flags: 2 },
            Record::Delete { path: "/d/db-journal".into(), dir_sync: false },
            Record::Close { file: f(1) },
            Record::Ack { writer: 1, seq: 1 },
        ];
        let base: Files = [("db".to_string(), vec![0u8; 4096])].into_iter().collect();
        let names = vec!["db".to_string()];
        let a = analyze(&names, &records, records.len(), &Device::default());
        assert_eq!(a.undetermined.len(), 1);
        assert_eq!(a.undetermined[0].what, OpKind::Delete);
        let undone = build(&base, &records, records.len(), &Device::default(), &[Choice::Drop]);
        assert_eq!(undone["db-journal"], vec![9; 512], "the synced journal is back, whole");
        assert_eq!(undone["db"], vec![5; 4096]);
        let done = build(&base, &records, records.len(), &Device::default(), &[Choice::Keep]);
        assert!(!done.contains_key("db-journal"));
        assert_eq!(acks_at(&records, records.len())[&1], (vec![1], 0));
        let lines = explain(&a, &[Choice::Drop], 4096);
        assert_eq!(lines, vec!["undone: deletion #7 of db-journal (directory never synced after it)"]);
        // With a directory sync after the deletion (synchronous=EXTRA) nothing is undetermined.
        let mut extra = records.clone();
        extra.insert(8, Record::DirSync { path: "/d/db-journal".into() });
        assert!(analyze(&names, &extra, extra.len(), &Device::default()).undetermined.is_empty());
    }

    #[test]
    fn torn_writes_keep_exactly_the_chosen_sectors() {
        let records = vec![
            Record::Open { file: f(0), path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None },
            Record::Write { file: f(0), offset: 256, data: vec![1; 1024] },
        ];
        let base: Files = [("db".to_string(), vec![0u8; 2048])].into_iter().collect();
        let a = analyze(&["db".to_string()], &records, 2, &Device::default());
        assert_eq!(a.undetermined[0].what, OpKind::Write { offset: 256, len: 1024, sectors: 3 });
        let image = build(&base, &records, 2, &Device::default(), &[Choice::Torn(vec![1])]);
        let db = &image["db"];
        assert!(db[..512].iter().all(|&b| b == 0));
        assert!(db[512..1024].iter().all(|&b| b == 1));
        assert!(db[1024..].iter().all(|&b| b == 0));
        let garbage = Device { torn_fill: TornFill::Garbage, ..Device::default() };
        let image = build(&base, &records, 2, &garbage, &[Choice::Torn(vec![1])]);
        assert!(image["db"][256..512].iter().any(|&b| b != 0 && b != 1));
        assert!(image["db"][..256].iter().all(|&b| b == 0), "bytes outside the write are untouched");
        let lines = explain(&a, &[Choice::Torn(vec![1])], 4096);
        assert_eq!(lines, vec!["torn: write #1 to db at offset 256 (page 1, 1024 bytes): 1 of 3 sectors persisted"]);
    }

    #[test]
    fn a_lost_truncation_takes_the_later_writes_to_its_file_with_it() {
        let records = vec![
            Record::Open { file: f(0), path: "/d/db-journal".into(), kind: FileKind::MainJournal, created: false, id: None },
            Record::Truncate { file: f(0), size: 0 },
            Record::Write { file: f(0), offset: 512, data: vec![2; 4] },
        ];
        let base: Files = [("db-journal".to_string(), vec![1u8; 2048])].into_iter().collect();
        let a = analyze(&["db-journal".to_string()], &records, 3, &Device::default());
        assert_eq!(a.undetermined.len(), 2);
        let image = build(&base, &records, 3, &Device::default(), &[Choice::Drop, Choice::Keep]);
        assert_eq!(image["db-journal"], vec![1u8; 2048], "the old journal, whole");
        let image = build(&base, &records, 3, &Device::default(), &[Choice::Keep, Choice::Keep]);
        assert_eq!(image["db-journal"].len(), 516);
    }

    #[test]
    fn systematic_cuts_sit_before_every_sync() {
        let records = vec![
            Record::Open { file: f(0), path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None },
            Record::Write { file: f(0), offset: 0, data: vec![1] },
            Record::Sync { file: f(0), flags: 2 },
            Record::Write { file: f(0), offset: 0, data: vec![1] },
            Record::Sync { file: f(0), flags: 2 },
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(cuts(&records, 10, CutPoints::Systematic, &mut rng), vec![2, 4, 5]);
        // More positions than images: one at random in each range, in order.
        for _ in 0..20 {
            let two = cuts(&records, 2, CutPoints::Systematic, &mut rng);
            assert!([2, 4].contains(&two[0]) && [4, 5].contains(&two[1]) && two[0] < two[1], "{two:?}");
        }
        assert!(cuts(&records, 5, CutPoints::Random, &mut rng).iter().all(|&c| (1..=5).contains(&c)));
        // Right after an acknowledgement, a deletion and a truncation too.
        let records = vec![
            Record::Open { file: f(0), path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None },
            Record::Write { file: f(0), offset: 0, data: vec![1] },
            Record::Sync { file: f(0), flags: 2 },
            Record::Ack { writer: 1, seq: 1 },
            Record::Truncate { file: f(0), size: 0 },
            Record::Delete { path: "/d/db-journal".into(), dir_sync: false },
            Record::Write { file: f(0), offset: 0, data: vec![1] },
        ];
        assert_eq!(cuts(&records, 10, CutPoints::Systematic, &mut rng), vec![2, 4, 5, 6, 7]);
    }

    /// Exactly one operation lost, whichever it is, is a state the fates reach: in a window of
    /// 40 undetermined operations, a rule that fails only when operation k alone is lost is hit
    /// for every k (each with chance 1 in 160 per image; within 2,000 images of one seed),
    /// which a mixture alone would take some 10^7 images to reach.
    #[test]
    fn every_single_lost_operation_of_a_40_operation_window_is_reached() {
        let mut records =
            vec![Record::Open { file: f(0), path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None }];
        records.extend((0..40).map(|k| Record::Write { file: f(0), offset: k * 512, data: vec![1; 512] }));
        let a = analyze(&["db".to_string()], &records, records.len(), &Device::default());
        assert_eq!(a.undetermined.len(), 40);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut first_hit: Vec<Option<usize>> = vec![None; 40];
        let mut runs = 0;
        for image in 0..2000 {
            let choices = random_choices(&a, 20, &mut rng);
            let lost: Vec<usize> = (0..40).filter(|&k| choices[k] != Choice::Keep).collect();
            if let [k] = lost[..] {
                first_hit[k].get_or_insert(image);
            }
            let contiguous = lost.windows(2).all(|w| w[1] == w[0] + 1);
            runs += usize::from(lost.len() > 1 && lost.len() < 40 && contiguous);
        }
        assert!(first_hit.iter().all(Option::is_some), "{first_hit:?}");
        assert!(runs > 300, "contiguous runs lost: {runs}");
    }
}

#[cfg(test)]
mod walk_tests {
    use super::*;
    use crate::fault::trace::FileKind;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Forty one-sector writes over a durable file of zeros, none synced: a 40-operation
    /// window at the end of the trace.
    fn forty_writes() -> (Files, Vec<Record>) {
        let file = FileRef { writer: 1, handle: 0 };
        let base: Files = [("db".to_string(), vec![0u8; 40 * 512])].into_iter().collect();
        let mut records =
            vec![Record::Open { file, path: "/d/db".into(), kind: FileKind::MainDb, created: false, id: None }];
        records.extend((0..40u64).map(|k| Record::Write { file, offset: k * 512, data: vec![1; 512] }));
        (base, records)
    }

    /// The operations an image lost: the sectors still holding the base's zeros.
    fn lost_sectors(image: &Files) -> Vec<usize> {
        image["db"].chunks(512).enumerate().filter(|(_, s)| s.iter().all(|&b| b == 0)).map(|(k, _)| k).collect()
    }

    #[test]
    fn a_walk_reaches_every_single_loss_of_a_40_operation_window_in_41_images() {
        let (base, records) = forty_writes();
        let cut = records.len();
        let device = Device::default();
        let a = analyze(&["db".to_string()], &records, cut, &device);
        assert_eq!(a.undetermined.len(), 40);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let steps = walk(&[40], 10_000, &mut rng);
        assert_eq!(steps.len(), 41, "the floor and forty single losses, then the walk is done");
        // A rule that fails only when operation k alone is lost, for every k: built images,
        // read back by their bytes (the builder, not the plan, decides what an image holds).
        let mut first_hit: Vec<Option<usize>> = vec![None; 40];
        for (image, step) in steps.iter().enumerate() {
            let files = build(&base, &records, cut, &device, &step.choices(40));
            match (step.lost_alone, &lost_sectors(&files)[..]) {
                (None, lost) => assert_eq!(lost.len(), 40, "image {image}: the floor loses every write"),
                (Some(k), [lost]) => {
                    assert_eq!(*lost, k);
                    assert!(first_hit[k].replace(image).is_none(), "operation {k} lost alone twice");
                }
                (Some(k), lost) => panic!("image {image}: {k} alone was to be lost, the image lost {lost:?}"),
            }
        }
        assert!(first_hit.iter().all(|h| h.is_some_and(|i| i <= 40)), "{first_hit:?}");
        // One image shows one single loss at most, so no plan reaches forty in fewer than 40
        // images; the walk's first 8 reach the floor and 7 distinct single losses.
        let eight: std::collections::HashSet<_> =
            walk(&[40], 8, &mut ChaCha8Rng::seed_from_u64(3)).iter().map(|s| s.lost_alone).collect();
        assert_eq!(eight.len(), 8);
        assert!(eight.contains(&None));
    }

    #[test]
    fn a_walk_over_several_cuts_takes_them_in_turn() {
        let steps = walk(&[2, 0, 3], 100, &mut ChaCha8Rng::seed_from_u64(1));
        let cuts: Vec<usize> = steps.iter().map(|s| s.cut).collect();
        assert_eq!(cuts, vec![0, 1, 2, 0, 2, 0, 2, 2]);
        assert_eq!(steps[0].lost_alone, None);
        assert_eq!(steps[1].lost_alone, None, "an empty window has its floor alone");
        assert_eq!(Step { cut: 0, lost_alone: Some(1) }.choices(3), vec![Choice::Keep, Choice::Drop, Choice::Keep]);
        assert_eq!(Step { cut: 0, lost_alone: None }.choices(2), vec![Choice::Drop, Choice::Drop]);
    }

    proptest! {
        #[test]
        fn a_walk_never_repeats_and_reaches_everything_it_has_room_for(
            windows in proptest::collection::vec(0usize..30, 1..6),
            images in 1usize..120,
            seed in any::<u64>(),
        ) {
            let steps = walk(&windows, images, &mut ChaCha8Rng::seed_from_u64(seed));
            let total: usize = windows.iter().map(|n| n + 1).sum();
            prop_assert_eq!(steps.len(), images.min(total));
            let distinct: std::collections::HashSet<Step> = steps.iter().copied().collect();
            prop_assert_eq!(distinct.len(), steps.len());
            for s in &steps {
                prop_assert!(s.cut < windows.len());
                prop_assert!(s.lost_alone.is_none_or(|k| k < windows[s.cut]));
            }
            // Each cut starts with its floor, and the cuts still walking differ by one step at most.
            for (c, &n) in windows.iter().enumerate() {
                let own: Vec<&Step> = steps.iter().filter(|s| s.cut == c).collect();
                prop_assert!(own.first().is_none_or(|s| s.lost_alone.is_none()));
                let fair = images.min(total) / windows.len();
                prop_assert!(own.len() >= fair.min(n + 1), "cut {} got {} of {} steps", c, own.len(), steps.len());
            }
            if images >= total {
                prop_assert_eq!(distinct.len(), total);
            }
        }
    }
}
