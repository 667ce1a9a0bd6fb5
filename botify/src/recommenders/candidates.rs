//! What a recommender answers: its candidates, for the serving policy
//! (`crate::policy`) to turn into a distribution and draw from.

use rand::RngCore;

use super::Allowed;
use crate::catalog::TrackId;

/// A candidate track and its score: higher is better, on the
/// recommender's own scale (the policy normalises it).
pub type Scored = (TrackId, f32);

/// A recommender's candidates for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Candidates<'a> {
    /// Distinct allowed tracks with their scores, best first (ties: lower
    /// id), at most the `top` asked for. Empty: no candidate, the engine's
    /// fallback answers.
    Ranked(Vec<Scored>),
    /// Every allowed track of a set, equally likely: for recommenders whose
    /// whole point is an even draw. Kept as the set, not listed, so a draw
    /// over the catalog stays O(1).
    Uniform(Pool<'a>),
}

/// The set a [`Candidates::Uniform`] draws from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pool<'a> {
    /// The whole catalog.
    Catalog,
    /// These tracks.
    Tracks(&'a [TrackId]),
}

impl Pool<'_> {
    /// How many tracks of the pool are allowed.
    pub fn count(&self, allowed: &Allowed<'_>) -> usize {
        match self {
            Pool::Catalog => allowed.count(),
            Pool::Tracks(list) => allowed.count_in(list),
        }
    }

    /// A uniformly random allowed track of the pool, `count` being
    /// [`count`](Self::count).
    pub fn draw(
        &self,
        allowed: &Allowed<'_>,
        count: usize,
        rng: &mut dyn RngCore,
    ) -> Option<TrackId> {
        match self {
            Pool::Catalog => allowed.draw(count, rng),
            Pool::Tracks(list) => allowed.draw_in(list, count, rng),
        }
    }

    /// How many times an allowed `track` is in the pool (a list may name a
    /// track twice): with [`count`](Self::count), its chance in a draw.
    pub fn holds(&self, allowed: &Allowed<'_>, track: TrackId) -> usize {
        if !allowed.accepts(track) {
            return 0;
        }
        match self {
            Pool::Catalog => 1,
            Pool::Tracks(list) => list.iter().filter(|&&t| t == track).count(),
        }
    }
}

/// The score of the candidate at `rank` (0 = best) of a source that only
/// ranks (a co-listening row, a precomputed list): 1/(1 + rank), so the
/// head of a list stands out from its tail as trained scores do, rather
/// than every step down costing the same.
fn rank_score(rank: usize) -> f32 {
    1.0 / (1.0 + rank as f32)
}

/// The first `top` distinct allowed tracks of `tracks`, in order, scored by
/// [`rank_score`].
pub fn ranked(
    allowed: &Allowed<'_>,
    tracks: impl IntoIterator<Item = TrackId>,
    top: usize,
) -> Vec<Scored> {
    let mut list: Vec<Scored> = Vec::with_capacity(top.min(64));
    for track in tracks {
        if list.len() >= top {
            break;
        }
        if allowed.accepts(track) && !list.iter().any(|&(t, _)| t == track) {
            list.push((track, rank_score(list.len())));
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::small;
    use crate::filters::Filters;

    #[test]
    fn ranked_keeps_the_first_distinct_allowed_tracks_scored_by_rank() {
        let catalog = small();
        let filters = Filters::default();
        let allowed = Allowed::new(&catalog, &filters, &[0]);
        let list = ranked(&allowed, [0, 3, 9, 3, 1, 2], 2);
        assert_eq!(list, vec![(3, 1.0), (1, 0.5)], "0 heard, 9 unknown, 3 once");
        assert!(ranked(&allowed, [0], 5).is_empty());
        assert_eq!(Pool::Tracks(&[3, 3, 0]).holds(&allowed, 3), 2);
        assert_eq!(Pool::Tracks(&[3, 3, 0]).holds(&allowed, 0), 0);
        assert_eq!(Pool::Catalog.count(&allowed), catalog.len() - 1);
    }
}
