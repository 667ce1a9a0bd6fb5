//! Direct simulation of agents against the user model, without botify.
//!
//! Used to calibrate the world generator: on the default world (seed 42) a
//! random recommender must get a mean session time in [`RANDOM_TARGET`] and
//! sticky-artist must beat it by a relative effect in [`STICKY_EFFECT_TARGET`],
//! so that A/B experiments against the service show the expected orders of
//! magnitude. `sim calibrate` prints these numbers; a test pins them.

use std::ops::RangeInclusive;

use rand::Rng;

use crate::agents::Agent;
use crate::rng::session_rng;
use crate::user_model::Session;
use crate::world::World;

/// Mean session time a uniformly random recommender should get.
pub const RANDOM_TARGET: RangeInclusive<f64> = 1.7..=2.4;
/// Relative gain of sticky-artist over random that the world should produce.
pub const STICKY_EFFECT_TARGET: RangeInclusive<f64> = 0.30..=0.60;

/// Outcome of many sessions under one agent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub sessions: u64,
    /// Mean episode reward (session time, first track excluded).
    pub mean_time: f64,
    /// Standard error of `mean_time`.
    pub std_error: f64,
    /// Mean number of recommended tracks per session.
    pub mean_steps: f64,
}

/// Runs `sessions` sessions with `agent`. Session `i` draws its user
/// uniformly from [`session_rng`]`(seed, i)`, so two agents simulated with
/// the same seed face the same users, interests and first tracks — their
/// difference has less noise than two independent samples would.
pub fn simulate(world: &World, agent: &mut dyn Agent, sessions: u64, seed: u64) -> Summary {
    let (mut sum, mut sum_sq, mut steps) = (0.0, 0.0, 0u64);
    for i in 0..sessions {
        let mut rng = session_rng(seed, i);
        let user = rng.gen_range(0..world.num_users());
        let mut session = Session::start(world, user, &mut rng);
        while !session.is_over() {
            let track = agent.recommend(&session, &mut rng);
            session.listen(track);
        }
        sum += session.reward();
        sum_sq += session.reward() * session.reward();
        steps += u64::from(session.steps());
    }
    let n = sessions.max(1) as f64;
    let mean = sum / n;
    let variance = (sum_sq / n - mean * mean).max(0.0) * n / (n - 1.0).max(1.0);
    Summary {
        sessions,
        mean_time: mean,
        std_error: (variance / n).sqrt(),
        mean_steps: steps as f64 / n,
    }
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
        let random = simulate(&world, &mut RandomAgent, 20_000, 42);
        let sticky = simulate(&world, &mut StickyArtistAgent, 20_000, 42);
        let effect = sticky.mean_time / random.mean_time - 1.0;
        assert!(
            RANDOM_TARGET.contains(&random.mean_time),
            "random mean session time {random:?}"
        );
        assert!(
            STICKY_EFFECT_TARGET.contains(&effect),
            "sticky effect {effect:.3} (random {random:?}, sticky {sticky:?})"
        );
    }
}
