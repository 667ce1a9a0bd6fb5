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

use super::session::{best_candidate, ArtistPlays, Weighting};
use super::{Context, Recommender};
use crate::catalog::TrackId;
use crate::models::dot;
use crate::state::StateUpdate;

#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingSettings {
    pub weighting: Weighting,
    /// Latest likes whose graph neighbours are candidates.
    pub seeds: usize,
    /// Score taken off a candidate per play of its artist this session.
    pub artist_penalty: f32,
}

impl Default for EmbeddingSettings {
    fn default() -> Self {
        EmbeddingSettings {
            weighting: Weighting::default(),
            seeds: 3,
            artist_penalty: 0.1,
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

    fn recommend(&self, ctx: &mut Context<'_>, _update: &mut StateUpdate) -> Option<TrackId> {
        let index = &ctx.models.embedding;
        let listens = &ctx.state.listens;
        let weights = self.settings.weighting.weigh(listens);
        let seeds = self.seeds(&weights);
        if !index.is_empty() {
            let mut query = vec![0.0f32; index.dim()];
            for &(track, weight) in &weights {
                if let Some(v) = index.vector(track) {
                    query.iter_mut().zip(v).for_each(|(q, x)| *q += weight * x);
                }
            }
            let scores: Vec<(TrackId, f32)> = seeds
                .iter()
                .flat_map(|&s| index.neighbours(s))
                .filter_map(|&c| index.vector(c).map(|v| (c, dot(&query, v))))
                .collect();
            let plays = ArtistPlays::of(ctx.catalog, listens);
            let best = best_candidate(&scores, &ctx.allowed, &plays, self.settings.artist_penalty);
            if best.is_some() {
                return best;
            }
        }
        let anchor = *seeds.first().unwrap_or(&ctx.track);
        ctx.allowed.first(ctx.catalog.metadata_neighbours(anchor))
    }
}
