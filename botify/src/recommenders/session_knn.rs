//! `session_knn`: what listeners of similar past sessions liked next
//! (V-SKNN, Ludewig & Jannach 2018, with listen times as weights).
//!
//! The recent listens are weighted by recency and listen time (a like
//! pulls, a skip pushes; see [`Weighting`]). Each recent like matches the
//! most recent past sessions that liked the same track (at most `sample`
//! per track, from the sessions `analysis train --model session-knn`
//! kept); a past session's similarity is the sum of its matches' weights,
//! cosine-normalised by its own number of likes. The `k` most similar
//! sessions then vote: each of their tracks scores the session's similarity
//! times its listen time if it was liked there, and loses `skip_weight`
//! times the similarity if it was skipped there. The best unheard track
//! wins, marked down per play of its artist this session; without past
//! sessions to match, catalog metadata of the latest like answers.

use super::session::{best_candidate, merge_scores, ArtistPlays, Weighting};
use super::{Context, Recommender};
use crate::catalog::TrackId;
use crate::models::{SessionIndex, LIKED};
use crate::state::StateUpdate;

/// A listen at or below this time counts as a skip in a past session.
const SKIPPED: f32 = 0.2;

#[derive(Debug, Clone, PartialEq)]
pub struct SessionKnnSettings {
    pub weighting: Weighting,
    /// Past sessions that vote.
    pub k: usize,
    /// Most recent past sessions matched per liked track.
    pub sample: usize,
    /// Score taken off a candidate per play of its artist this session.
    pub artist_penalty: f32,
}

impl Default for SessionKnnSettings {
    fn default() -> Self {
        SessionKnnSettings {
            weighting: Weighting::default(),
            k: 50,
            sample: 200,
            artist_penalty: 0.1,
        }
    }
}

pub struct SessionKnn {
    pub settings: SessionKnnSettings,
}

/// Scores of the tracks of the past sessions most similar to `query`
/// (tracks with their weights; only positive weights match). Unsorted,
/// one entry per track.
pub fn vote(
    index: &SessionIndex,
    query: &[(TrackId, f32)],
    k: usize,
    sample: usize,
    skip_weight: f32,
) -> Vec<(TrackId, f32)> {
    let mut similar: Vec<(TrackId, f32)> = Vec::new();
    for &(track, weight) in query.iter().filter(|(_, w)| *w > 0.0) {
        similar.extend(index.liked(track, sample).map(|s| (s, weight)));
    }
    merge_scores(&mut similar);
    for (session, similarity) in &mut similar {
        *similarity *= index.session(*session).norm;
    }
    if similar.len() > k && k > 0 {
        similar.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        similar.truncate(k);
    }
    let mut scores: Vec<(TrackId, f32)> = Vec::new();
    for &(session, similarity) in &similar {
        let past = index.session(session);
        for (&track, &time) in past.tracks.iter().zip(past.times.iter()) {
            if time >= LIKED {
                scores.push((track, similarity * time));
            } else if time <= SKIPPED {
                scores.push((track, -skip_weight * similarity));
            }
        }
    }
    merge_scores(&mut scores);
    scores
}

impl Recommender for SessionKnn {
    fn name(&self) -> &'static str {
        "session_knn"
    }

    fn recommend(&self, ctx: &mut Context<'_>, _update: &mut StateUpdate) -> Option<TrackId> {
        let listens = &ctx.state.listens;
        let settings = &self.settings;
        let weights = settings.weighting.weigh(listens);
        let index = &ctx.models.sessions;
        if !index.is_empty() {
            let scores = vote(
                index,
                &weights,
                settings.k,
                settings.sample,
                settings.weighting.skip_weight,
            );
            let plays = ArtistPlays::of(ctx.catalog, listens);
            let best = best_candidate(&scores, &ctx.allowed, &plays, settings.artist_penalty);
            if best.is_some() {
                return best;
            }
        }
        let anchor = weights
            .iter()
            .find(|(_, w)| *w > 0.0)
            .map_or(ctx.track, |&(t, _)| t);
        ctx.allowed.first(ctx.catalog.metadata_neighbours(anchor))
    }
}
