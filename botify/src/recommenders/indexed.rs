use super::{ranked, Candidates, Context, Recommender};
use crate::state::StateUpdate;

/// The unheard tracks of the user's precomputed list
/// (`user_recommendations.jsonl`) in its order, scored by rank; the
/// engine's fallback for users without one.
pub struct Indexed;

impl Recommender for Indexed {
    fn name(&self) -> &'static str {
        "indexed"
    }

    fn candidates<'a>(&self, ctx: &Context<'a>, _update: &mut StateUpdate) -> Candidates<'a> {
        let list = ctx
            .models
            .user_lists
            .get(&ctx.user)
            .map_or(&[][..], Vec::as_slice);
        Candidates::Ranked(ranked(&ctx.allowed, list.iter().copied(), ctx.top))
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
