use super::{neighbours, Context, Recommender};
use crate::catalog::TrackId;
use crate::state::StateUpdate;

/// The best unheard neighbour of the track just heard, from the trained
/// item-to-item table `table`, then from catalog metadata.
pub struct Contextual {
    pub table: String,
}

impl Recommender for Contextual {
    fn name(&self) -> &'static str {
        "contextual"
    }

    fn recommend(&self, ctx: &mut Context<'_>, _update: &mut StateUpdate) -> Option<TrackId> {
        ctx.allowed
            .first(neighbours(ctx.catalog, ctx.models, &self.table, ctx.track))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Fixture;
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
        let (track, _) = f.recommend(&rec(), 0, 1.0);
        assert_eq!(track, Some(5));
        f.heard(&[5]);
        let (track, _) = f.recommend(&rec(), 0, 1.0);
        assert_eq!(track, Some(4));
    }
}
