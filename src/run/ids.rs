//! Identities a campaign hands out: each trial's seed (ChaCha8 stream `trial` of the campaign
//! seed, so any trial can be re-run alone) and each writer's id (unique across a campaign, so a
//! database kept across trials never confuses two trials' writers).
//!
//! Leaf module.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Writer ids are `(trial + 1) * WRITER_ID_STRIDE + w`, unique across a campaign so that a
/// database kept across trials (`continue`) never confuses two trials' writers. The recovery
/// write of check 8 uses the last id of the block.
pub const WRITER_ID_STRIDE: u64 = 1000;

/// Upper bound on writers per trial (the scenario validates `workload.writers` against it).
pub const WRITERS_MAX: u64 = 64;

pub fn writer_id(trial: u64, w: u64) -> u64 {
    debug_assert!(w < WRITERS_MAX);
    (trial + 1) * WRITER_ID_STRIDE + w
}

pub fn recovery_writer_id(trial: u64) -> u64 {
    (trial + 1) * WRITER_ID_STRIDE + WRITER_ID_STRIDE - 1
}

/// The derived seed of trial `trial`: ChaCha8 seeded with the campaign seed, stream `trial`.
/// Any trial can be re-run alone from (campaign seed, trial index).
pub fn trial_seed(campaign_seed: u64, trial: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(campaign_seed);
    rng.set_stream(trial);
    rng.random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trial_seeds_are_stable_and_distinct() {
        assert_eq!(trial_seed(42, 7), trial_seed(42, 7));
        let seeds: std::collections::BTreeSet<u64> = (0..1000).map(|t| trial_seed(42, t)).collect();
        assert_eq!(seeds.len(), 1000);
        assert_ne!(trial_seed(42, 0), trial_seed(43, 0));
    }

    #[test]
    fn writer_ids_never_collide_across_trials() {
        let mut ids = std::collections::BTreeSet::new();
        for t in 0..200 {
            for w in 0..WRITERS_MAX {
                assert!(ids.insert(writer_id(t, w)));
            }
            assert!(ids.insert(recovery_writer_id(t)));
        }
        assert!(!ids.contains(&crate::writer::session_store::SEED_WRITER));
    }
}
