use super::{Candidates, Context, Pool, Recommender};
use crate::state::StateUpdate;

/// Uniform over the allowed tracks of the catalog: the baseline every A/B
/// table starts from.
pub struct Random;

impl Recommender for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn candidates<'a>(&self, _: &Context<'a>, _: &mut StateUpdate) -> Candidates<'a> {
        Candidates::Uniform(Pool::Catalog)
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
            assert_eq!(track, Some(5), "only track 5 is unheard");
        }
    }
}
