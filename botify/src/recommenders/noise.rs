//! `noise = p` on any arm: with probability p the arm's answer is replaced by
//! a uniformly random track. An effect of known direction and, measured on a
//! large run, known size — what the A/B proof on simulated ground truth
//! (`sim proof`) needs to check that intervals cover the truth.

use rand::Rng;

use super::{Context, Random, Recommender};
use crate::catalog::{Catalog, TrackId};
use crate::state::{StateQuery, StateUpdate};

/// Another recommender whose answer is replaced by a random track with
/// probability `share`.
pub struct Noisy {
    pub inner: Box<dyn Recommender>,
    pub share: f64,
}

impl Recommender for Noisy {
    /// The inner recommender's name: the arm is still that recommender.
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn state_query(&self, catalog: &Catalog, track: TrackId) -> StateQuery {
        self.inner.state_query(catalog, track)
    }

    fn recommend(&self, ctx: &mut Context<'_>, update: &mut StateUpdate) -> Option<TrackId> {
        // No draw at share 0, so the inner recommender sees the same random stream.
        if self.share > 0.0 && ctx.rng.gen_bool(self.share) {
            if let Some(track) = Random.recommend(ctx, update) {
                return Some(track);
            }
        }
        self.inner.recommend(ctx, update)
    }

    fn end_session(&self, ctx: &Context<'_>, update: &mut StateUpdate) {
        self.inner.end_session(ctx, update);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{arm, Fixture};
    use super::super::{build, StickyArtist};
    use super::*;

    #[test]
    fn noise_replaces_the_answer_with_the_given_probability() {
        // A fresh fixture per draw, seeded alike for the three recommenders,
        // so each sees the same session and the same random stream.
        let run = |rec: &dyn Recommender, seed: u64| {
            let mut f = Fixture::new();
            f.rng = rand::SeedableRng::seed_from_u64(seed);
            f.recommend(rec, 0, 1.0).0
        };
        let always = Noisy {
            inner: Box::new(StickyArtist),
            share: 1.0,
        };
        let never = Noisy {
            inner: Box::new(StickyArtist),
            share: 0.0,
        };
        let mut differs = 0;
        for seed in 0..200 {
            let expected = run(&StickyArtist, seed);
            assert_eq!(run(&never, seed), expected, "noise = 0 changes nothing");
            differs += usize::from(run(&always, seed) != expected);
        }
        assert!(differs > 100, "random answers mostly differ: {differs}/200");
        assert_eq!(always.name(), "sticky_artist");
    }

    #[test]
    fn any_arm_takes_a_noise_share_in_zero_to_one() {
        let built = build(&arm(r#"{ recommender = "sticky_artist", noise = 0.2 }"#)).unwrap();
        assert_eq!(built.name(), "sticky_artist");
        let err = build(&arm(r#"{ recommender = "random", noise = 1.5 }"#))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("noise = 1.5 is outside 0..=1"),
            "{err}"
        );
    }
}
