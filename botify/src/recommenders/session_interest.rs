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

use super::session::{best_scored, metadata_fallback, ArtistPlays, Weighting};
use super::{Candidates, Context, Recommender, Scored};
use crate::catalog::TrackId;
use crate::models::{dot, ListenCurve};
use crate::state::StateUpdate;

#[derive(Debug, Clone, PartialEq)]
pub struct SessionInterestSettings {
    /// Latest likes whose graph neighbours are candidates, besides the
    /// first track's. Five: two serve 14% faster but earned 0.4% less after
    /// a day of `random` traffic and 2–5% less on day 2 of the closed loop.
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
    /// The session estimate (not normalised), the tracks whose neighbours
    /// are candidates (the first track, then the latest likes), and the
    /// session's plays per artist.
    fn estimate(
        &self,
        ctx: &Context<'_>,
        curve: &ListenCurve,
    ) -> (Vec<f32>, Vec<TrackId>, ArtistPlays) {
        let index = &ctx.models.embedding;
        let mut query = vec![0.0f32; index.dim()];
        let mut plays = ArtistPlays::default();
        let mut likes: Vec<TrackId> = Vec::new();
        for (position, listen) in ctx.state.listens.iter().enumerate() {
            let earlier = plays.record(ctx.catalog.artist_of(listen.track));
            let weight = if position == 0 {
                1.0
            } else {
                let discount = curve.discount.powi(earlier as i32);
                (listen.time as f32 / discount).min(1.0) - self.settings.neutral
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
        (query, seeds, plays)
    }
}

impl Recommender for SessionInterest {
    fn name(&self) -> &'static str {
        "session_interest"
    }

    fn candidates<'a>(&self, ctx: &Context<'a>, _update: &mut StateUpdate) -> Candidates<'a> {
        let index = &ctx.models.embedding;
        // Without vectors, or when every candidate was heard: catalog
        // metadata of the latest like, as the other session recommenders.
        let fallback = || {
            let weights = Weighting::default().weigh(&ctx.state.listens);
            Candidates::Ranked(metadata_fallback(ctx, &weights, ctx.top))
        };
        if index.is_empty() || ctx.state.listens.is_empty() {
            return fallback();
        }
        let curve = &ctx.models.listen_curve;
        let (mut query, seeds, plays) = self.estimate(ctx, curve);
        let norm = dot(&query, &query).sqrt().max(f32::EPSILON);
        query.iter_mut().for_each(|q| *q /= norm);
        // Seeds share neighbours: each track is checked and scored once,
        // marked in a bitset of the catalog (cheaper than sorting the few
        // hundred ids to drop repeats). `best_scored` keeps the allowed
        // ones; a track outside the catalog has no bit and is dropped.
        let mut seen = vec![0u64; ctx.catalog.len().div_ceil(64)];
        let mut first_time = |track: TrackId| {
            let (word, bit) = (track as usize / 64, 1u64 << (track % 64));
            seen.get_mut(word).is_some_and(|w| {
                let new = *w & bit == 0;
                *w |= bit;
                new
            })
        };
        let scores: Vec<Scored> = seeds
            .iter()
            .flat_map(|&s| index.neighbours(s))
            .copied()
            .filter(|&c| first_time(c))
            .filter_map(|c| {
                let v = index.vector(c)?;
                let artist_plays = plays.plays(ctx.catalog.artist_of(c));
                Some((c, curve.expected_time(dot(&query, v), artist_plays)))
            })
            .collect();
        let best = best_scored(scores, &ctx.allowed, &plays, 0.0, ctx.top);
        if best.is_empty() {
            return fallback();
        }
        Candidates::Ranked(best)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{arm, assert_metadata_fallback, Fixture};
    use super::*;
    use crate::models::{EmbeddingIndex, Models};
    use crate::recommenders::build;

    fn interest() -> SessionInterest {
        SessionInterest {
            settings: SessionInterestSettings::default(),
        }
    }

    /// Models holding `rows` (track, vector, neighbours) and `curve`, and a
    /// session so far of `before`, oldest first (the first is the
    /// listener's own pick).
    fn fixture(
        rows: &[(TrackId, &[f32], &[TrackId])],
        curve: ListenCurve,
        before: &[(TrackId, f64)],
    ) -> Fixture {
        let mut f = Fixture::new();
        f.models = Models {
            embedding: EmbeddingIndex::from_rows(rows),
            listen_curve: curve,
            ..Default::default()
        };
        f.listened(before);
        f
    }

    // The small catalog: artists A (tracks 0, 1, 2), B (3, 4), C (5).
    /// Track 0 points along x and lists 3, 4 and 5: 4 is the closest to x,
    /// 5 next but further towards −y, 3 the least close; 2 points along y.
    const ROWS: [(TrackId, &[f32], &[TrackId]); 6] = [
        (0, &[1.0, 0.0], &[3, 4, 5]),
        (1, &[0.8, 0.6], &[]),
        (2, &[0.0, 1.0], &[4, 3]),
        (3, &[0.6, 0.8], &[]),
        (4, &[0.95, -0.31], &[]),
        (5, &[0.9, -0.44], &[]),
    ];

    /// The default curve without the artist discount.
    const UNTIRED: ListenCurve = ListenCurve {
        bias: 0.5,
        sharpness: 8.0,
        discount: 1.0,
    };

    #[test]
    fn serves_the_track_closest_to_the_first_track_on_a_sessions_first_request() {
        let mut f = fixture(&ROWS, ListenCurve::default(), &[]);
        assert_eq!(
            f.recommend(&interest(), 0, 1.0).0,
            Some(4),
            "0.95 > 0.9 > 0.6"
        );
    }

    #[test]
    fn a_like_pulls_the_estimate_and_a_skip_pushes_it_without_fading_the_first_track() {
        // Liking 2 (along y) after 0 turns the estimate towards y: 3 wins.
        let mut f = fixture(&ROWS, ListenCurve::default(), &[(0, 1.0)]);
        assert_eq!(f.recommend(&interest(), 2, 1.0).0, Some(3));
        // Skipping 2 pushes it away from y: 5, further towards −y, wins.
        let mut f = fixture(&ROWS, ListenCurve::default(), &[(0, 1.0)]);
        assert_eq!(f.recommend(&interest(), 2, 0.0).0, Some(5));
        // Twenty neutral half listens later, the first track alone still
        // sets the estimate: nothing fades it.
        let long: Vec<(TrackId, f64)> = std::iter::once((0, 1.0))
            .chain((0..20).map(|_| (1, 0.5)))
            .collect();
        let mut f = fixture(&ROWS, UNTIRED, &long);
        assert_eq!(f.recommend(&interest(), 1, 0.5).0, Some(4));
    }

    #[test]
    fn the_fitted_listen_curve_trades_closeness_against_a_tired_artist() {
        // After liking 3 (artist B), 4 (also B) is the closest to the
        // estimate (cosine 0.82 against 5's 0.73).
        let fresh = ListenCurve {
            bias: 0.85,
            sharpness: 2.0,
            discount: 1.0,
        };
        let mut f = fixture(&ROWS, fresh, &[(0, 1.0)]);
        assert_eq!(f.recommend(&interest(), 3, 1.0).0, Some(4));
        // A listener who halves an artist's second play: 5 instead.
        let tired = ListenCurve {
            discount: 0.5,
            ..fresh
        };
        let mut f = fixture(&ROWS, tired, &[(0, 1.0)]);
        assert_eq!(f.recommend(&interest(), 3, 1.0).0, Some(5));
    }

    #[test]
    fn falls_back_to_catalog_metadata_of_the_latest_like_without_vectors() {
        assert_metadata_fallback(&interest(), |before| {
            fixture(&[], ListenCurve::default(), before)
        });
    }

    #[test]
    fn build_reads_seeds_and_neutral_and_rejects_a_neutral_outside_0_to_1() {
        let rec = build(&arm(
            r#"{ recommender = "session_interest", seeds = 2, neutral = 0.4 }"#,
        ));
        assert_eq!(rec.unwrap().name(), "session_interest");
        let err = build(&arm(
            r#"{ recommender = "session_interest", neutral = 1.5 }"#,
        ));
        assert!(err.is_err_and(|e| e.to_string().contains("neutral")));
    }
}
