//! `embedding`: the unheard track nearest to where the session points, in
//! the space of track vectors learned from the logs (`analysis train
//! --model embedding`; never the simulator's embeddings).
//!
//! The query is the recency-faded sum of the recent listens' vectors: a like
//! pulls it towards a track, a skip pushes it away. Candidates are the
//! neighbour-graph entries of the session's latest likes (the index's
//! nearest-neighbour lists), scored by their inner product with the query
//! and marked down per play of their artist this session. Without a trained
//! index, or when every candidate was heard, it answers from catalog
//! metadata (same artist, then same genre) of the latest like.

use super::session::{top_scored, Weighting};
use super::{Candidates, Context, Recommender};
use crate::catalog::TrackId;
use crate::state::StateUpdate;

#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingSettings {
    pub weighting: Weighting,
    /// Latest likes whose graph neighbours are candidates.
    pub seeds: usize,
    /// Score taken off a candidate per play of its artist this session.
    pub artist_penalty: f32,
    /// Share of answers that are a uniformly random allowed track instead:
    /// exploration, so the logs the next training reads also test tracks the
    /// current vectors would never serve. The serving policy draws them
    /// ([`Recommender::explore`]).
    pub explore: f64,
}

impl Default for EmbeddingSettings {
    fn default() -> Self {
        EmbeddingSettings {
            weighting: Weighting::default(),
            seeds: 3,
            artist_penalty: 0.1,
            explore: 0.0,
        }
    }
}

pub struct Embedding {
    pub settings: EmbeddingSettings,
}

impl Embedding {
    /// Tracks whose neighbours are candidates: the latest likes, newest
    /// first, or the latest listen when nothing was liked yet.
    fn seeds(&self, weights: &[(TrackId, f32)]) -> Vec<TrackId> {
        let mut seeds: Vec<TrackId> = weights
            .iter()
            .filter(|(_, w)| *w > 0.0)
            .map(|&(t, _)| t)
            .take(self.settings.seeds)
            .collect();
        if seeds.is_empty() {
            seeds.extend(weights.first().map(|&(t, _)| t));
        }
        seeds
    }
}

impl Recommender for Embedding {
    fn name(&self) -> &'static str {
        "embedding"
    }

    fn explore(&self) -> f64 {
        self.settings.explore
    }

    fn candidates<'a>(&self, ctx: &Context<'a>, _update: &mut StateUpdate) -> Candidates<'a> {
        let index = &ctx.models.embedding;
        let weights = self.settings.weighting.weigh(&ctx.state.listens);
        let mut scores: Vec<(TrackId, f32)> = Vec::new();
        if !index.is_empty() {
            let mut query = vec![0.0f32; index.dim()];
            for &(track, weight) in &weights {
                if let Some(v) = index.vector(track) {
                    v.add_to(&mut query, weight);
                }
            }
            scores = self
                .seeds(&weights)
                .iter()
                .flat_map(|&s| index.neighbours(s))
                .filter_map(|&c| index.vector(c).map(|v| (c, v.dot(&query))))
                .collect();
            // Seeds share neighbours: one entry per track (same score).
            scores.sort_unstable_by_key(|&(track, _)| track);
            scores.dedup_by_key(|&mut (track, _)| track);
        }
        Candidates::Ranked(top_scored(
            ctx,
            scores,
            self.settings.artist_penalty,
            &weights,
            ctx.top,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{arm, assert_metadata_fallback, Fixture};
    use super::*;
    use crate::models::{EmbeddingIndex, Models};
    use crate::recommenders::{build, BuildError};

    fn embedding() -> Embedding {
        Embedding {
            settings: EmbeddingSettings::default(),
        }
    }

    /// A fixture whose embedding holds `rows` (track, vector, neighbours),
    /// and whose session so far is `before`.
    fn fixture(rows: &[(TrackId, &[f32], &[TrackId])], before: &[(TrackId, f64)]) -> Fixture {
        let mut f = Fixture::new();
        f.models = Models {
            embedding: EmbeddingIndex::from_rows(rows),
            ..Default::default()
        };
        f.listened(before);
        f
    }

    /// Tracks 0 and 1 (artist A) both list 3, 5, 4 as neighbours; 0 points
    /// along x, 1 along y.
    const POINTS: [(TrackId, &[f32], &[TrackId]); 5] = [
        (0, &[1.0, 0.0], &[3, 5, 4]),
        (1, &[0.0, 1.0], &[3, 5, 4]),
        (3, &[0.0, 1.0], &[]),
        (4, &[0.8, -0.6], &[]),
        (5, &[0.6, 0.8], &[]),
    ];

    #[test]
    fn serves_the_neighbour_closest_to_the_query() {
        let mut f = fixture(&POINTS, &[]);
        assert_eq!(
            f.recommend(&embedding(), 0, 1.0).0,
            Some(4),
            "x: 0.8 > 0.6 > 0"
        );
        let mut f = fixture(&POINTS, &[]);
        assert_eq!(
            f.recommend(&embedding(), 1, 1.0).0,
            Some(3),
            "y: 1 > 0.8 > −0.6"
        );
    }

    /// Track 0 (liked) lists 3 and 4; 3 is a little closer to it. Track 1
    /// sits on 3's side, track 2 on 4's.
    const SKIPS: [(TrackId, &[f32], &[TrackId]); 5] = [
        (0, &[1.0, 0.0], &[3, 4]),
        (1, &[0.0, 1.0], &[]),
        (2, &[0.0, -1.0], &[]),
        (3, &[0.9, 0.44], &[]),
        (4, &[0.85, -0.5], &[]),
    ];

    #[test]
    fn a_skip_pushes_the_query_away_from_the_skipped_track() {
        let liked = &[(0, 1.0)];
        let mut f = fixture(&SKIPS, &[]);
        assert_eq!(f.recommend(&embedding(), 0, 1.0).0, Some(3), "closer to 0");

        let mut f = fixture(&SKIPS, liked);
        assert_eq!(
            f.recommend(&embedding(), 1, 0.0).0,
            Some(4),
            "skipping 1 pushes the query away from 3"
        );
        let mut f = fixture(&SKIPS, liked);
        assert_eq!(
            f.recommend(&embedding(), 2, 0.0).0,
            Some(3),
            "skipping 2 pushes it away from 4"
        );

        // With no weight on skips, skipping 1 changes nothing.
        let rec = build(&arm(r#"{ recommender = "embedding", skip_weight = 0.0 }"#)).unwrap();
        let mut f = fixture(&SKIPS, liked);
        assert_eq!(f.recommend(rec.as_ref(), 1, 0.0).0, Some(3));
    }

    #[test]
    fn never_serves_a_heard_track() {
        let rows: [(TrackId, &[f32], &[TrackId]); 3] = [
            (0, &[1.0, 0.0], &[4, 3]),
            (3, &[0.5, 0.5], &[]),
            (4, &[1.0, 0.1], &[]),
        ];
        // 4 is the closest, but heard: the next neighbour, not the fallback.
        let mut f = fixture(&rows, &[(4, 1.0)]);
        let fallback = f.catalog.metadata_neighbours(0).find(|&t| t != 4);
        let (track, _) = f.recommend(&embedding(), 0, 1.0);
        assert_eq!(track, Some(3));
        assert_ne!(track, fallback);

        // Every neighbour heard: catalog metadata, still unheard.
        let mut f = fixture(&rows, &[(4, 1.0), (3, 1.0)]);
        let (track, _) = f.recommend(&embedding(), 0, 1.0);
        let heard = f.state.heard();
        assert_eq!(
            track,
            f.catalog
                .metadata_neighbours(0)
                .find(|t| !heard.contains(t))
        );
        assert!(track.is_some_and(|t| !heard.contains(&t)));
    }

    #[test]
    fn falls_back_to_catalog_metadata_of_the_latest_like_without_an_index() {
        assert!(fixture(&[], &[]).models.embedding.is_empty());
        assert_metadata_fallback(&embedding(), |before| fixture(&[], before));
    }

    #[test]
    fn build_rejects_a_decay_outside_0_to_1() {
        let err = build(&arm(r#"{ recommender = "embedding", decay = 2.0 }"#)).err();
        let expected = BuildError::InvalidParam {
            recommender: "embedding".into(),
            param: "decay".into(),
            value: 2.0f32.to_string(),
            expected: crate::recommenders::params::FRACTION,
        };
        assert_eq!(err.as_ref(), Some(&expected));
        let message = expected.to_string();
        assert!(
            message.contains("embedding") && message.contains("decay") && message.contains("0..=1"),
            "{message}"
        );
        let rec = build(&arm(r#"{ recommender = "embedding", decay = 0.5 }"#)).unwrap();
        assert_eq!(rec.name(), "embedding");
        assert!(build(&arm(r#"{ recommender = "embedding", decay = -0.1 }"#)).is_err());
    }

    #[test]
    fn explore_asks_the_policy_for_that_share_of_uniform_answers() {
        let rec = build(&arm(r#"{ recommender = "embedding", explore = 0.1 }"#)).unwrap();
        assert_eq!(rec.explore(), 0.1, "the policy mixes it with noise");
        assert_eq!(embedding().explore(), 0.0);
        let mut f = fixture(&POINTS, &[]);
        assert_eq!(
            f.recommend(rec.as_ref(), 0, 1.0).0,
            Some(4),
            "the candidates stay the nearest"
        );
        assert!(build(&arm(r#"{ recommender = "embedding", explore = 1.5 }"#)).is_err());
    }
}
