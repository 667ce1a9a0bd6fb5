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
                v.add_to(&mut query, weight);
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
        // The seeds' neighbour lists are rarely in cache: one read per
        // cache line of each, up front, lets their misses overlap instead of
        // stalling the loop below one list at a time.
        for &seed in &seeds {
            for &track in index.neighbours(seed).iter().step_by(16) {
                std::hint::black_box(track);
            }
        }
        // Seeds share neighbours: each accepted track is scored once.
        let mut unseen = ctx.allowed.unseen();
        let mut closeness: Vec<Closeness> = Vec::with_capacity(seeds.len() * 64);
        for &seed in &seeds {
            for &track in index.neighbours(seed) {
                if unseen.offer(track) && index.has_vector(track) {
                    let artist_plays = plays.plays(ctx.catalog.artist_of(track));
                    closeness.push((track, 0.0, artist_plays));
                }
            }
        }
        // The inner products in a loop of their own: with no branch between
        // them, the processor fetches several candidates' rows at once.
        for (track, cosine, _) in &mut closeness {
            *cosine = index.row(*track).dot(&query);
        }
        let scores = expected_times(closeness, curve, ctx.top);
        let best = best_scored(scores, &ctx.allowed, &plays, 0.0, ctx.top);
        if best.is_empty() {
            return fallback();
        }
        Candidates::Ranked(best)
    }
}

/// A candidate, its cosine with the session estimate, and its artist's
/// plays this session.
type Closeness = (TrackId, f32, u32);

/// The expected listen time of each candidate that can be among the `top`
/// best; the others are dropped before the logistic curve is evaluated.
///
/// Why: the curve costs an `exp` per candidate, and a greedy arm asks for
/// one track of a few hundred. A track's expected time is at most the curve
/// at its cosine, which it reaches when its artist is fresh. So once `top`
/// fresh-artist candidates reach cosine `c`, a candidate below `c` cannot
/// outscore them and is not scored. Exact, but for two different cosines
/// whose expected times round to one float: the closer track then wins,
/// where scoring both would have let the lower id win the tie.
fn expected_times(mut closeness: Vec<Closeness>, curve: &ListenCurve, top: usize) -> Vec<Scored> {
    let mut fresh: Vec<f32> = closeness
        .iter()
        .filter(|c| c.2 == 0 && c.1.is_finite())
        .map(|c| c.1)
        .collect();
    if curve.sharpness > 0.0 && top > 0 && fresh.len() >= top {
        let (_, &mut kth, _) = fresh.select_nth_unstable_by(top - 1, |a, b| b.total_cmp(a));
        closeness.retain(|c| c.1 >= kth);
    }
    closeness
        .into_iter()
        .map(|(track, cosine, artist_plays)| (track, curve.expected_time(cosine, artist_plays)))
        .collect()
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

    const fn curve(bias: f32, sharpness: f32, discount: f32) -> ListenCurve {
        ListenCurve {
            bias,
            sharpness,
            discount,
        }
    }

    /// The default curve without the artist discount.
    const UNTIRED: ListenCurve = curve(0.5, 8.0, 1.0);

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
        let fresh = curve(0.85, 2.0, 1.0);
        let mut f = fixture(&ROWS, fresh, &[(0, 1.0)]);
        assert_eq!(f.recommend(&interest(), 3, 1.0).0, Some(4));
        // A listener who halves an artist's second play: 5 instead.
        let tired = curve(0.85, 2.0, 0.5);
        let mut f = fixture(&ROWS, tired, &[(0, 1.0)]);
        assert_eq!(f.recommend(&interest(), 3, 1.0).0, Some(5));
    }

    #[test]
    fn scoring_only_the_candidates_that_can_win_keeps_the_best_ones() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let curve = curve(0.4, 6.0, 0.7);
        let best = |scores: Vec<Scored>, top: usize| {
            let mut scores = scores;
            scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            scores.truncate(top);
            scores
        };
        let mut rng = SmallRng::seed_from_u64(3);
        for _ in 0..200 {
            let closeness: Vec<Closeness> = (0..rng.gen_range(1..300))
                .map(|track| (track, rng.gen_range(-1.0..1.0), rng.gen_range(0..4)))
                .collect();
            let all: Vec<Scored> = closeness
                .iter()
                .map(|&(track, cosine, plays)| (track, curve.expected_time(cosine, plays)))
                .collect();
            for top in [1, 5, 50] {
                let kept = expected_times(closeness.clone(), &curve, top);
                if top == 1 && all.len() >= 100 {
                    assert!(kept.len() < all.len() / 2, "few are scored for one best");
                }
                assert_eq!(best(kept, top), best(all.clone(), top), "top {top}");
            }
        }
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
