//! The generator and the engine: a campaign (`campaign`) schedules trials over the cells with
//! one seed, each trial (`trial`) runs its processes (`topology`) through its fault and hands
//! the crash images to the oracle; `lane` prepares each trial's database, `keep` keeps and
//! replays failures, `resume` continues a killed campaign from its run directory, `ids` hands out trial seeds and writer ids, `env` is what every trial shares, `writers`
//! readies each cell's writer on its SQLite build.
pub mod campaign;
pub mod env;
pub mod ids;
pub mod keep;
pub mod lane;
pub mod resume;
pub mod topology;
pub mod trial;
pub mod writers;
