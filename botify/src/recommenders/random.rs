use rand::Rng;

use super::{Context, Recommender};
use crate::catalog::TrackId;
use crate::state::StateUpdate;

/// Uniform over the catalog: the baseline every A/B table starts from.
pub struct Random;

/// Random draws before giving up to the engine's exhaustive fallback; with
/// sessions far shorter than the catalog the first draw nearly always wins.
const TRIES: usize = 16;

impl Recommender for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn recommend(&self, ctx: &mut Context<'_>, _update: &mut StateUpdate) -> Option<TrackId> {
        let n = ctx.catalog.len() as TrackId;
        (0..TRIES)
            .map(|_| ctx.rng.gen_range(0..n))
            .find(|&t| ctx.allowed.accepts(t))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Fixture;
    use super::*;

    #[test]
    fn never_returns_a_heard_track() {
        let mut f = Fixture::new();
        f.heard(&[0, 1, 2, 3]);
        for _ in 0..50 {
            let (track, _) = f.recommend(&Random, 4, 1.0);
            if let Some(t) = track {
                assert_eq!(t, 5, "only track 5 is unheard");
            }
        }
    }
}
