//! `session_interest`: infers where the session points from the listener's
//! feedback, in the learned track space, and serves the unheard track it
//! expects to be listened to longest.
//!
//! A session has one interest, fixed while it lasts; the listener's first
//! track was chosen near it, and every later listen says how close the
//! track was. So the session estimate is the first track's vector plus each
//! later listen's vector weighted by how far its listen time sits above or
//! below neutral — corrected for the artist's earlier plays this session,
//! since a listener tires of an artist and a short listen of a third track
//! by one artist says less against the track than against the repetition.
//! Unlike `embedding`'s recency-faded query, no listen fades: the interest
//! does not drift, and the longer the session the sharper the estimate.
//!
//! Candidates are the neighbour-graph entries of the first track and of the
//! latest likes. Each is scored by its expected listen time: a logistic
//! curve of its cosine with the estimate, discounted per play of its artist
//! this session. The curve and the discount are fitted from the logs by
//! `analysis train` (`session_interest.json`), so the trade-off between a
//! close track and a fresh artist is learned, not tuned by hand.

use super::session::{metadata_fallback, ArtistPlays};
use super::{Candidates, Context, Recommender, Scored};
use crate::catalog::TrackId;
use crate::models::{dot, ListenCurve};
use crate::state::StateUpdate;

#[derive(Debug, Clone, PartialEq)]
pub struct SessionInterestSettings {
    /// Latest likes whose graph neighbours are candidates, besides the
    /// first track's.
    pub seeds: usize,
    /// A listen time above this pulls the estimate towards the track, below
    /// it pushes away.
    pub neutral: f32,
}

impl Default for SessionInterestSettings {
    fn default() -> Self {
        SessionInterestSettings {
            seeds: 5,
            neutral: 0.5,
        }
    }
}

pub struct SessionInterest {
    pub settings: SessionInterestSettings,
}

impl SessionInterest {
    /// The session estimate (not normalised) and the tracks whose
    /// neighbours are candidates: the first track, then the latest likes.
    fn estimate(&self, ctx: &Context<'_>, curve: &ListenCurve) -> (Vec<f32>, Vec<TrackId>) {
        let index = &ctx.models.embedding;
        let mut query = vec![0.0f32; index.dim()];
        let mut plays: Vec<(u32, i32)> = Vec::new();
        let mut likes: Vec<TrackId> = Vec::new();
        for (position, listen) in ctx.state.listens.iter().enumerate() {
            let artist = ctx.catalog.artist_of(listen.track);
            let earlier = match plays.iter_mut().find(|(a, _)| *a == artist) {
                Some((_, n)) => {
                    *n += 1;
                    *n - 1
                }
                None => {
                    plays.push((artist, 1));
                    0
                }
            };
            let weight = if position == 0 {
                1.0
            } else {
                let corrected = (listen.time as f32 / curve.discount.powi(earlier)).min(1.0);
                corrected - self.settings.neutral
            };
            if weight > 0.0 {
                likes.push(listen.track);
            }
            if let Some(v) = index.vector(listen.track) {
                query.iter_mut().zip(v).for_each(|(q, x)| *q += weight * x);
            }
        }
        let mut seeds: Vec<TrackId> = ctx
            .state
            .listens
            .first()
            .map(|l| l.track)
            .into_iter()
            .collect();
        seeds.extend(likes.iter().rev().take(self.settings.seeds));
        (query, seeds)
    }
}

impl Recommender for SessionInterest {
    fn name(&self) -> &'static str {
        "session_interest"
    }

    fn candidates<'a>(&self, ctx: &Context<'a>, _update: &mut StateUpdate) -> Candidates<'a> {
        let index = &ctx.models.embedding;
        if index.is_empty() || ctx.state.listens.is_empty() {
            return Candidates::Ranked(metadata_fallback(ctx, &[(ctx.track, 1.0)], ctx.top));
        }
        let curve = &ctx.models.listen_curve;
        let (mut query, seeds) = self.estimate(ctx, curve);
        let norm = dot(&query, &query).sqrt().max(f32::EPSILON);
        query.iter_mut().for_each(|q| *q /= norm);
        let plays = ArtistPlays::of(ctx.catalog, &ctx.state.listens);
        let mut scores: Vec<Scored> = seeds
            .iter()
            .flat_map(|&s| index.neighbours(s))
            .filter(|&&c| ctx.allowed.accepts(c))
            .filter_map(|&c| {
                let v = index.vector(c)?;
                let artist_plays = plays.plays(ctx.catalog.artist_of(c));
                Some((c, curve.expected_time(dot(&query, v), artist_plays)))
            })
            .collect();
        scores.sort_unstable_by_key(|&(track, _)| track);
        scores.dedup_by_key(|&mut (track, _)| track);
        let best = super::session::best_scored(scores, &ctx.allowed, &plays, 0.0, ctx.top);
        if best.is_empty() {
            let anchor = ctx.state.listens.last().map_or(ctx.track, |l| l.track);
            return Candidates::Ranked(metadata_fallback(ctx, &[(anchor, 1.0)], ctx.top));
        }
        Candidates::Ranked(best)
    }
}
