use super::{Context, Recommender};
use crate::catalog::TrackId;
use crate::state::StateUpdate;

/// The first unheard track of the user's precomputed list
/// (`user_recommendations.jsonl`); the engine's fallback for users without one.
pub struct Indexed;

impl Recommender for Indexed {
    fn name(&self) -> &'static str {
        "indexed"
    }

    fn recommend(&self, ctx: &mut Context<'_>, _update: &mut StateUpdate) -> Option<TrackId> {
        let list = ctx.models.user_lists.get(&ctx.user)?;
        ctx.allowed.first(list.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Fixture;
    use super::*;

    #[test]
    fn walks_the_users_list_in_order() {
        let mut f = Fixture::new();
        assert_eq!(f.recommend(&Indexed, 0, 1.0).0, None, "no list yet");
        f.models.user_lists.insert(1, vec![0, 5, 2]);
        assert_eq!(f.recommend(&Indexed, 0, 1.0).0, Some(5), "0 is playing");
    }
}
