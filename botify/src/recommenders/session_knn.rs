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
//! times the similarity if it was skipped there; each vote is scaled by the
//! listen's exposure weight (inverse propensity, from training), so tracks
//! the logging policy rarely served are not outvoted by its favourites. The
//! best unheard tracks
//! are the candidates, marked down per play of their artist this session;
//! without past sessions to match, catalog metadata of the latest like.

use super::session::{merge_scores, top_scored, Weighting};
use super::{Candidates, Context, Recommender};
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
        let listens = past.tracks.iter().zip(past.times.iter());
        for ((&track, &time), &exposure) in listens.zip(past.weights.iter()) {
            if time >= LIKED {
                scores.push((track, exposure * similarity * time));
            } else if time <= SKIPPED {
                scores.push((track, -exposure * skip_weight * similarity));
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

    fn candidates<'a>(&self, ctx: &Context<'a>, _update: &mut StateUpdate) -> Candidates<'a> {
        let settings = &self.settings;
        let weights = settings.weighting.weigh(&ctx.state.listens);
        let index = &ctx.models.sessions;
        let scores = if index.is_empty() {
            Vec::new()
        } else {
            vote(
                index,
                &weights,
                settings.k,
                settings.sample,
                settings.weighting.skip_weight,
            )
        };
        Candidates::Ranked(top_scored(
            ctx,
            scores,
            settings.artist_penalty,
            &weights,
            ctx.top,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{arm, assert_metadata_fallback, Fixture};
    use super::*;
    use crate::models::Models;
    use crate::recommenders::{build, BuildError};

    fn knn() -> SessionKnn {
        SessionKnn {
            settings: SessionKnnSettings::default(),
        }
    }

    /// A fixture whose models hold `sessions` (each its `(track, time)`
    /// listens), and whose session so far is `before`.
    fn fixture(sessions: &[&[(TrackId, f64)]], before: &[(TrackId, f64)]) -> Fixture {
        let mut f = Fixture::new();
        f.models = Models {
            sessions: SessionIndex::from_listens(sessions),
            ..Default::default()
        };
        f.listened(before);
        f
    }

    #[test]
    fn serves_the_track_liked_in_the_most_similar_past_session() {
        // The session liked 1, then 0. Both past sessions liked 0; the one
        // that also liked 1 is the more similar, whichever track it liked next.
        let both_likes: &[(TrackId, f64)] = &[(0, 1.0), (1, 1.0), (3, 1.0)];
        let one_like: &[(TrackId, f64)] = &[(0, 1.0), (4, 1.0)];
        let mut f = fixture(&[both_likes, one_like], &[(1, 1.0)]);
        assert_eq!(f.recommend(&knn(), 0, 1.0).0, Some(3));

        let both_likes: &[(TrackId, f64)] = &[(0, 1.0), (1, 1.0), (4, 1.0)];
        let one_like: &[(TrackId, f64)] = &[(0, 1.0), (3, 1.0)];
        let mut f = fixture(&[one_like, both_likes], &[(1, 1.0)]);
        assert_eq!(f.recommend(&knn(), 0, 1.0).0, Some(4));
    }

    #[test]
    fn a_track_skipped_in_similar_sessions_ranks_below_one_liked() {
        let liked_3: &[(TrackId, f64)] = &[(0, 1.0), (3, 1.0)];
        let liked_4: &[(TrackId, f64)] = &[(0, 1.0), (4, 1.0)];
        // Without skips 3 and 4 tie, and the lower id wins.
        let mut f = fixture(&[liked_3, liked_4], &[]);
        assert_eq!(f.recommend(&knn(), 0, 1.0).0, Some(3));

        let skipped_3: &[(TrackId, f64)] = &[(0, 1.0), (3, 0.1)];
        let mut f = fixture(&[liked_3, liked_4, skipped_3], &[]);
        assert_eq!(f.recommend(&knn(), 0, 1.0).0, Some(4));
        let scores = vote(&f.models.sessions, &[(0, 1.0)], 50, 200, 0.5);
        let score = |track| scores.iter().find(|&&(t, _)| t == track).unwrap().1;
        assert!(score(3) < score(4), "{scores:?}");
    }

    #[test]
    fn never_serves_a_heard_track() {
        // 3 gets the most votes (its session also liked 3, as this one did),
        // but it was heard: the next vote wins, not the catalog fallback.
        let liked_3: &[(TrackId, f64)] = &[(0, 1.0), (3, 1.0)];
        let liked_4: &[(TrackId, f64)] = &[(0, 1.0), (4, 0.6)];
        let mut f = fixture(&[liked_3, liked_4], &[(3, 1.0)]);
        let fallback = f.catalog.metadata_neighbours(0).find(|&t| t != 3);
        let (track, _) = f.recommend(&knn(), 0, 1.0);
        assert_eq!(track, Some(4));
        assert_ne!(track, fallback, "served from the vote");

        // Listening on, from the vote and then from the fallback, every
        // answer is new until there is nothing left to propose.
        let mut track = track;
        while let Some(next) = track {
            let heard = f.state.heard();
            assert!(!heard.contains(&next), "{next} heard in {heard:?}");
            track = f.recommend(&knn(), next, 1.0).0;
        }
        assert!(f.state.heard().len() > 3, "{:?}", f.state.heard());
    }

    #[test]
    fn falls_back_to_catalog_metadata_of_the_latest_like_without_sessions() {
        assert!(fixture(&[], &[]).models.sessions.is_empty());
        assert_metadata_fallback(&knn(), |before| fixture(&[], before));
    }

    #[test]
    fn artist_penalty_prefers_a_new_artist_over_a_much_played_one_when_scores_are_close() {
        // Artist A (tracks 0, 1, 2) played twice, then 3 (artist B) liked.
        // Past sessions that liked 3 liked 0 (artist A) or 5 (artist C).
        let before: &[(TrackId, f64)] = &[(1, 1.0), (2, 1.0)];
        let liked_0: &[(TrackId, f64)] = &[(3, 1.0), (0, 1.0)];
        // What `rec` serves after 3 when the session that liked 5 heard it
        // for `time`.
        let served = |rec: &SessionKnn, time| {
            let liked_5 = [(3, 1.0), (5, time)];
            let mut f = fixture(&[liked_0, &liked_5], before);
            f.recommend(rec, 3, 1.0).0
        };

        assert_eq!(served(&knn(), 0.9), Some(5), "0.9 > 1.0 − 2 × 0.1");
        let no_penalty = SessionKnn {
            settings: SessionKnnSettings {
                artist_penalty: 0.0,
                ..SessionKnnSettings::default()
            },
        };
        assert_eq!(served(&no_penalty, 0.9), Some(0));

        // Far apart, the much-played artist still wins: a penalty, not a ban.
        assert_eq!(served(&knn(), 0.5), Some(0), "0.5 < 1.0 − 2 × 0.1");
    }

    #[test]
    fn build_reads_k_from_the_arm() {
        // The most similar past session liked 3; two less similar ones both
        // liked 4, which together outvote it when they may vote.
        let best: &[(TrackId, f64)] = &[(0, 1.0), (3, 1.0)];
        let other: &[(TrackId, f64)] = &[(0, 1.0), (4, 1.0), (5, 1.0)];
        let serve = |spec: &str| {
            let rec = build(&arm(spec)).unwrap();
            assert_eq!(rec.name(), "session_knn");
            let mut f = fixture(&[best, other, other], &[]);
            f.recommend(rec.as_ref(), 0, 1.0).0
        };
        assert_eq!(serve(r#"{ recommender = "session_knn", k = 10 }"#), Some(4));
        assert_eq!(serve(r#"{ recommender = "session_knn", k = 1 }"#), Some(3));
        assert_eq!(serve(r#""session_knn""#), Some(4), "default k = 50");
    }

    #[test]
    fn build_rejects_a_decay_outside_0_to_1() {
        let err = build(&arm(r#"{ recommender = "session_knn", decay = 1.5 }"#)).err();
        assert_eq!(
            err,
            Some(BuildError::InvalidParam {
                recommender: "session_knn".into(),
                param: "decay".into(),
                value: "1.5".into(),
                expected: crate::recommenders::params::FRACTION,
            })
        );
        for decay in ["0.0", "1.0"] {
            let spec = format!(r#"{{ recommender = "session_knn", decay = {decay} }}"#);
            assert!(build(&arm(&spec)).is_ok(), "decay = {decay}");
        }
    }
}
