use super::{neighbours, ranked, Candidates, Context, Recommender};
use crate::state::StateUpdate;

/// The unheard neighbours of the track just heard, best first, from the
/// trained item-to-item table `table`, then from catalog metadata; ranked
/// only, so scored by rank.
pub struct Contextual {
    pub table: String,
}

impl Recommender for Contextual {
    fn name(&self) -> &'static str {
        "contextual"
    }

    fn candidates<'a>(&self, ctx: &Context<'a>, _update: &mut StateUpdate) -> Candidates<'a> {
        let neighbours = neighbours(ctx.catalog, ctx.models, &self.table, ctx.track);
        Candidates::Ranked(ranked(&ctx.allowed, neighbours, ctx.top))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, TOP};
    use super::*;
    use crate::models::ItemTable;

    fn rec() -> Contextual {
        Contextual {
            table: "item2item".into(),
        }
    }

    #[test]
    fn cold_start_uses_metadata_only() {
        let mut f = Fixture::new();
        let (track, _) = f.recommend(&rec(), 0, 1.0);
        assert_eq!(track, Some(1), "the most popular other track by artist A");
    }

    #[test]
    fn trained_table_comes_first_and_skips_heard_tracks() {
        let mut f = Fixture::new();
        f.models
            .tables
            .insert("item2item".into(), ItemTable::from_pairs([(0, vec![5, 4])]));
        let (candidates, _) = f.candidates(&rec(), 0, 1.0);
        let Candidates::Ranked(list) = candidates else {
            panic!("a ranked list: {candidates:?}");
        };
        assert_eq!(&list[..2], [(5, 1.0), (4, 0.5)], "scored by rank");
        assert!(list.len() <= TOP && list.iter().all(|&(t, _)| t != 0));
        f.heard(&[5]);
        let (track, _) = f.recommend(&rec(), 0, 1.0);
        assert_eq!(track, Some(4), "5 heard: 4 is the best left");
    }
}
