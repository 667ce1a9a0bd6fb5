use super::{Candidates, Context, Pool, Recommender};
use crate::state::StateUpdate;

/// A random track among the `k` most popular: popularity from logs once
/// `analysis train` has run, catalog metadata before.
pub struct TopPop {
    pub k: usize,
}

impl Recommender for TopPop {
    fn name(&self) -> &'static str {
        "toppop"
    }

    fn candidates<'a>(&self, ctx: &Context<'a>, _update: &mut StateUpdate) -> Candidates<'a> {
        let popular = ctx
            .models
            .top_tracks
            .as_deref()
            .unwrap_or(ctx.catalog.by_popularity());
        Candidates::Uniform(Pool::Tracks(&popular[..self.k.min(popular.len())]))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Fixture;
    use super::*;

    #[test]
    fn serves_from_the_top_k_of_trained_popularity() {
        let mut f = Fixture::new();
        f.models.top_tracks = Some(vec![4, 0, 5]);
        let rec = TopPop { k: 2 };
        for _ in 0..20 {
            let (track, _) = f.recommend(&rec, 3, 1.0);
            assert!(matches!(track, Some(4) | Some(0)), "{track:?}");
        }
    }

    #[test]
    fn uses_catalog_popularity_before_training() {
        let mut f = Fixture::new();
        let (track, _) = f.recommend(&TopPop { k: 1 }, 0, 1.0);
        assert_eq!(track, Some(3), "track 3 is the most popular in the catalog");
    }
}
