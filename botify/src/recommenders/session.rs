//! What the current session says, for recommenders that read all of it
//! rather than only the last track: how much each recent listen should pull
//! or push, and which artists were already played.

use super::{ranked, Scored};
use crate::catalog::{ArtistId, Catalog, TrackId};
use crate::models::LIKED;
use crate::state::Listen;

/// How a session's listens weigh in a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weighting {
    /// Only the most recent listens count: the session's taste drifts.
    pub recent: usize,
    /// Each step back in time multiplies a listen's weight by this.
    pub decay: f32,
    /// A skip pushes with this fraction of a full like's pull.
    pub skip_weight: f32,
}

impl Default for Weighting {
    fn default() -> Self {
        Weighting {
            recent: 10,
            decay: 0.8,
            skip_weight: 0.5,
        }
    }
}

impl Weighting {
    /// The recent listens, newest first, with their weights: a like pulls
    /// by its listen time, a miss pushes by how much of it was skipped,
    /// both faded by recency.
    pub fn weigh(&self, listens: &[Listen]) -> Vec<(TrackId, f32)> {
        let mut fade = 1.0;
        listens
            .iter()
            .rev()
            .take(self.recent)
            .map(|listen| {
                let time = listen.time as f32;
                let pull = if time >= LIKED {
                    time
                } else {
                    -self.skip_weight * (1.0 - time)
                };
                let weighted = (listen.track, fade * pull);
                fade *= self.decay;
                weighted
            })
            .collect()
    }
}

/// Plays per artist in the session: the listener tires of an artist heard
/// again and again, so candidates of much-played artists are marked down.
/// Kept sorted by artist: a recommender looks up every candidate's artist,
/// hundreds per request, against up to fifty artists of a long session.
#[derive(Debug, Clone, Default)]
pub struct ArtistPlays {
    plays: Vec<(ArtistId, u32)>,
    /// Bit `artist % 64` of every artist played: most candidates are of an
    /// artist not played yet, and one bit answers for them without a search.
    played: u64,
}

impl ArtistPlays {
    pub fn of(catalog: &Catalog, listens: &[Listen]) -> ArtistPlays {
        let mut plays = ArtistPlays::default();
        for listen in listens {
            plays.record(catalog.artist_of(listen.track));
        }
        plays
    }

    /// Counts one more play of `artist`; returns its plays before this one.
    pub fn record(&mut self, artist: ArtistId) -> u32 {
        self.played |= Self::bit(artist);
        match self.plays.binary_search_by_key(&artist, |&(a, _)| a) {
            Ok(i) => {
                self.plays[i].1 += 1;
                self.plays[i].1 - 1
            }
            Err(i) => {
                self.plays.insert(i, (artist, 1));
                0
            }
        }
    }

    pub fn plays(&self, artist: ArtistId) -> u32 {
        if self.played & Self::bit(artist) == 0 {
            return 0;
        }
        self.plays
            .binary_search_by_key(&artist, |&(a, _)| a)
            .map_or(0, |i| self.plays[i].1)
    }

    fn bit(artist: ArtistId) -> u64 {
        1 << (artist % 64)
    }
}

/// What a session-wide recommender serves: its `top` best scored
/// candidates ([`best_scored`], artists already played this session marked
/// down), else the [`metadata_fallback`]'s. `scores` holds one entry per
/// track.
pub fn top_scored(
    ctx: &super::Context<'_>,
    scores: Vec<Scored>,
    artist_penalty: f32,
    weights: &[(TrackId, f32)],
    top: usize,
) -> Vec<Scored> {
    if !scores.is_empty() {
        let plays = ArtistPlays::of(ctx.catalog, &ctx.state.listens);
        let best = best_scored(scores, &ctx.allowed, &plays, artist_penalty, top);
        if !best.is_empty() {
            return best;
        }
    }
    metadata_fallback(ctx, weights, top)
}

/// When a learned recommender has nothing to offer (no trained model yet,
/// or every candidate heard): the first `top` allowed catalog-metadata
/// neighbours (same artist, then same genre), scored by rank, of the
/// session's newest like, or of the newest listen when nothing was liked;
/// `weights` are newest first, as [`Weighting::weigh`] gives them.
pub fn metadata_fallback(
    ctx: &super::Context<'_>,
    weights: &[(TrackId, f32)],
    top: usize,
) -> Vec<Scored> {
    let anchor = weights
        .iter()
        .find(|(_, w)| *w > 0.0)
        .or(weights.first())
        .map_or(ctx.track, |&(t, _)| t);
    ranked(&ctx.allowed, ctx.catalog.metadata_neighbours(anchor), top)
}

/// Sums the scores of repeated tracks: sorts by track and merges runs.
pub fn merge_scores(scores: &mut Vec<(TrackId, f32)>) {
    scores.sort_unstable_by_key(|&(t, _)| t);
    scores.dedup_by(|next, kept| {
        if next.0 == kept.0 {
            kept.1 += next.1;
            true
        } else {
            false
        }
    });
}

/// The `top` accepted candidates with the highest scores once each is
/// marked down by `artist_penalty` per play of its artist this session,
/// best first (ties: lower id). Reuses `scores`' allocation; a score that
/// is not a finite number is dropped, so the policy's arithmetic stays
/// finite.
pub fn best_scored(
    mut scores: Vec<Scored>,
    allowed: &super::Allowed<'_>,
    plays: &ArtistPlays,
    artist_penalty: f32,
    top: usize,
) -> Vec<Scored> {
    scores.retain(|&(track, score)| score.is_finite() && allowed.accepts(track));
    if artist_penalty != 0.0 {
        for (track, score) in &mut scores {
            *score -= artist_penalty * plays.plays(allowed.catalog.artist_of(*track)) as f32;
        }
    }
    let best_first = |a: &Scored, b: &Scored| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if scores.len() > top {
        if top == 0 {
            scores.clear();
        } else {
            scores.select_nth_unstable_by(top - 1, best_first);
            scores.truncate(top);
        }
    }
    scores.sort_unstable_by(best_first);
    scores
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::small;
    use crate::filters::Filters;
    use crate::recommenders::Allowed;

    fn listens(pairs: &[(TrackId, f64)]) -> Vec<Listen> {
        pairs
            .iter()
            .map(|&(track, time)| Listen { track, time })
            .collect()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn weights_fade_with_recency_newest_first_and_keep_only_the_recent() {
        let weighting = Weighting {
            recent: 3,
            decay: 0.5,
            skip_weight: 0.5,
        };
        let weights = weighting.weigh(&listens(&[(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)]));
        let tracks: Vec<TrackId> = weights.iter().map(|&(t, _)| t).collect();
        assert_eq!(tracks, vec![3, 2, 1], "newest first, only `recent` of them");
        assert!(close(weights[0].1, 1.0), "{weights:?}");
        for pair in weights.windows(2) {
            assert!(
                close(pair[1].1, pair[0].1 * weighting.decay),
                "each step back multiplies by decay: {weights:?}"
            );
        }
        let flat = Weighting {
            decay: 1.0,
            ..weighting
        };
        assert!(
            flat.weigh(&listens(&[(0, 0.9), (1, 0.9)]))
                .iter()
                .all(|&(_, w)| close(w, 0.9)),
            "decay 1 means no fade"
        );
    }

    #[test]
    fn a_like_pulls_by_its_time_and_a_skip_pushes_by_what_was_skipped() {
        let weighting = Weighting {
            recent: 10,
            decay: 1.0,
            skip_weight: 0.4,
        };
        let weights = weighting.weigh(&listens(&[
            (0, 0.8),
            (1, f64::from(LIKED)),
            (2, 0.3),
            (3, 0.0),
        ]));
        let weight = |track: TrackId| weights.iter().find(|&&(t, _)| t == track).unwrap().1;
        assert!(close(weight(0), 0.8), "a like pulls by its listen time");
        assert!(close(weight(1), LIKED), "the threshold itself is a like");
        assert!(
            close(weight(2), -0.4 * 0.7),
            "a miss pushes by skip_weight × the part skipped"
        );
        assert!(close(weight(3), -0.4), "a full skip pushes by skip_weight");
        assert!(weight(3) < weight(2) && weight(2) < 0.0);
    }

    #[test]
    fn artist_plays_count_the_session_listens_per_artist() {
        let catalog = small();
        let plays = ArtistPlays::of(&catalog, &listens(&[(0, 1.0), (3, 0.1), (2, 0.5)]));
        let artist = |name: &str| catalog.artist_id(name).unwrap();
        assert_eq!(plays.plays(artist("A")), 2, "tracks 0 and 2");
        assert_eq!(plays.plays(artist("B")), 1, "a skip is a play too");
        assert_eq!(plays.plays(artist("C")), 0);
        assert_eq!(ArtistPlays::default().plays(artist("A")), 0);
        // Artists 1, 65 and 129 share a bit of the played mask.
        let mut plays = ArtistPlays::default();
        assert_eq!(
            [plays.record(1), plays.record(65), plays.record(65)],
            [0, 0, 1]
        );
        assert_eq!(
            [plays.plays(1), plays.plays(65), plays.plays(129)],
            [1, 2, 0]
        );
    }

    #[test]
    fn merge_scores_sums_repeated_tracks_sorted_by_track() {
        let mut scores = vec![(3, 1.0), (1, 0.5), (3, 2.0), (1, -0.25), (2, 1.0), (3, 0.5)];
        merge_scores(&mut scores);
        assert_eq!(scores, vec![(1, 0.25), (2, 1.0), (3, 3.5)]);
        let mut empty = Vec::new();
        merge_scores(&mut empty);
        assert!(empty.is_empty());
    }

    #[test]
    fn best_scored_is_the_best_allowed_scores_after_the_artist_penalty() {
        let catalog = small();
        let filters = Filters::default();
        let allowed = Allowed::new(&catalog, &filters, &[4]);
        let best = |scores: &[Scored], plays: &ArtistPlays, penalty: f32| {
            best_scored(scores.to_vec(), &allowed, plays, penalty, 50)
                .first()
                .map(|&(t, _)| t)
        };
        let none = ArtistPlays::default();
        // Track 4 (heard) and 9 (not in the catalog) are never chosen.
        let scores = [(4, 9.0), (9, 9.0), (1, 0.5), (3, 0.7), (5, 0.2)];
        assert_eq!(best(&scores, &none, 0.1), Some(3));
        let list = best_scored(scores.to_vec(), &allowed, &none, 0.0, 2);
        assert_eq!(list, vec![(3, 0.7), (1, 0.5)], "the top 2, best first");

        // Artist B (tracks 3 and 4) played twice: 3 is marked down per play.
        let plays = ArtistPlays::of(&catalog, &listens(&[(4, 1.0), (4, 0.2)]));
        let scores = [(1, 0.5), (3, 0.7)];
        assert_eq!(
            best(&scores, &plays, 0.15),
            Some(1),
            "0.7 − 2 × 0.15 = 0.4 < 0.5"
        );
        assert_eq!(
            best(&scores, &plays, 0.05),
            Some(3),
            "0.7 − 2 × 0.05 = 0.6 > 0.5"
        );
        assert_eq!(best(&scores, &plays, 0.0), Some(3));

        // Ties go to the lower id, whatever the order given.
        assert_eq!(best(&[(5, 0.3), (2, 0.3)], &none, 0.1), Some(2));
        assert_eq!(best(&[(4, 1.0)], &none, 0.1), None);
        assert_eq!(
            best(&[(2, f32::NAN)], &none, 0.1),
            None,
            "no score, no candidate"
        );
        assert_eq!(best(&[], &none, 0.1), None);
    }
}
