//! Reference agents simulated against the user model, without botify.
//!
//! Used to calibrate the world generator: on the default world (seed 42) a
//! random recommender must get a mean session time in [`RANDOM_TARGET`] and
//! sticky-artist must beat it by a relative effect in [`STICKY_EFFECT_TARGET`],
//! so that A/B experiments against the service show the expected orders of
//! magnitude. `sim calibrate` prints these numbers; a test pins them.
//!
//! The sessions are played by the in-process runner, the same loop and
//! statistics as `sim run --agent`.

use std::ops::RangeInclusive;

use anyhow::Result;
use indicatif::ProgressBar;

use crate::agents::Agent;
use crate::runner::in_process::{self, Policy};
use crate::runner::{Plan, Summary};
use crate::world::World;

/// Mean session time a uniformly random recommender should get.
pub const RANDOM_TARGET: RangeInclusive<f64> = 1.7..=2.4;
/// Relative gain of sticky-artist over random that the world should produce.
pub const STICKY_EFFECT_TARGET: RangeInclusive<f64> = 0.30..=0.60;

/// Plays `sessions` sessions with `agent`: sessions `0..sessions` of the
/// run with `seed` (see [`crate::runner`]), so two agents simulated with the
/// same seed face the same users, interests and first tracks — their
/// difference has less noise than two independent samples would.
///
/// The summary's `reward` is the session time (first track excluded) and its
/// `steps` the recommended tracks per session.
pub fn play(world: &World, agent: &mut dyn Agent, sessions: u64, seed: u64) -> Result<Summary> {
    let plan = Plan {
        seed,
        first: 0,
        episodes: sessions,
    };
    in_process::run(
        world,
        plan,
        &mut Policy::Agent(agent),
        &ProgressBar::hidden(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::{RandomAgent, StickyArtistAgent};
    use crate::world::{generate, WorldParams};

    /// The calibration contract of the default world: seed 42, 20,000 sessions.
    #[test]
    fn default_world_meets_the_calibration_targets() {
        let world = World::new(generate(&WorldParams::default(), false).unwrap()).unwrap();
        let random = play(&world, &mut RandomAgent, 20_000, 42).unwrap();
        let sticky = play(&world, &mut StickyArtistAgent, 20_000, 42).unwrap();
        assert_eq!(random.sessions(), 20_000);
        let (random_mean, sticky_mean) = (random.reward.mean(), sticky.reward.mean());
        let effect = sticky_mean / random_mean - 1.0;
        assert!(
            RANDOM_TARGET.contains(&random_mean),
            "random mean session time {random_mean:.4} (summary {random:?})"
        );
        assert!(
            STICKY_EFFECT_TARGET.contains(&effect),
            "sticky effect {effect:.3} (random {random_mean:.4}, sticky {sticky_mean:.4})"
        );
    }
}
