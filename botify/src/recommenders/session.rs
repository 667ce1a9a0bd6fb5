//! What the current session says, for recommenders that read all of it
//! rather than only the last track: how much each recent listen should pull
//! or push, and which artists were already played.

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
#[derive(Debug, Clone, Default)]
pub struct ArtistPlays(Vec<(ArtistId, u32)>);

impl ArtistPlays {
    pub fn of(catalog: &Catalog, listens: &[Listen]) -> ArtistPlays {
        let mut plays: Vec<(ArtistId, u32)> = Vec::new();
        for listen in listens {
            let artist = catalog.artist_of(listen.track);
            match plays.iter_mut().find(|(a, _)| *a == artist) {
                Some((_, n)) => *n += 1,
                None => plays.push((artist, 1)),
            }
        }
        ArtistPlays(plays)
    }

    pub fn plays(&self, artist: ArtistId) -> u32 {
        self.0
            .iter()
            .find(|(a, _)| *a == artist)
            .map_or(0, |&(_, n)| n)
    }
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

/// The accepted candidate with the highest score once each is marked down
/// by `artist_penalty` per play of its artist this session (ties: lower id).
pub fn best_candidate(
    scores: &[(TrackId, f32)],
    allowed: &super::Allowed<'_>,
    plays: &ArtistPlays,
    artist_penalty: f32,
) -> Option<TrackId> {
    let mut best: Option<(f32, TrackId)> = None;
    for &(track, score) in scores {
        if !allowed.accepts(track) {
            continue;
        }
        let score = score - artist_penalty * plays.plays(allowed.catalog.artist_of(track)) as f32;
        if best.is_none_or(|(s, t)| score > s || (score == s && track < t)) {
            best = Some((score, track));
        }
    }
    best.map(|(_, t)| t)
}
