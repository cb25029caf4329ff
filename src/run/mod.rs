//! The generator and the engine: a campaign (`campaign`) schedules trials over the cells with
//! one seed, each trial (`trial`) runs its processes (`topology`) through its fault and hands
//! the crash images to the oracle; `ids` hands out trial seeds and writer ids.
pub mod campaign;
pub mod ids;
pub mod topology;
pub mod trial;
