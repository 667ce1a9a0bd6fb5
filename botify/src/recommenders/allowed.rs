//! Which tracks may be served now, and how many: what every candidate
//! list, draw and propensity is restricted to.

use rand::{Rng, RngCore};

use crate::catalog::{Catalog, TrackId};
use crate::filters::Filters;

/// Which tracks may be served now.
#[derive(Clone, Copy)]
pub struct Allowed<'a> {
    pub catalog: &'a Catalog,
    pub filters: &'a Filters,
    /// Tracks played this session (the current one included by the
    /// engine), sorted: every candidate is looked up in it.
    pub heard: &'a [TrackId],
}

/// Uniform draws over the catalog before an exact scan: with sessions far
/// shorter than the catalog the first draw nearly always lands.
const REJECTION_TRIES: usize = 32;

impl<'a> Allowed<'a> {
    /// The tracks of `catalog` that `filters` let through and the session
    /// has not `heard` (sorted, as [`UserState::heard`] gives them).
    ///
    /// [`UserState::heard`]: crate::state::UserState::heard
    pub fn new(catalog: &'a Catalog, filters: &'a Filters, heard: &'a [TrackId]) -> Allowed<'a> {
        debug_assert!(heard.is_sorted(), "heard tracks must be sorted: {heard:?}");
        Allowed {
            catalog,
            filters,
            heard,
        }
    }
}

impl Allowed<'_> {
    pub fn accepts(&self, track: TrackId) -> bool {
        self.catalog.contains(track)
            && self.heard.binary_search(&track).is_err()
            && !self.filters.is_blocked(self.catalog, track)
    }

    /// How many catalog tracks are accepted, counted exactly without a scan
    /// of the catalog: its size, minus the blocked tracks, minus the heard
    /// ones that are not blocked. The denominator of every uniform draw
    /// over the catalog, so the logged propensity is exact.
    pub fn count(&self) -> usize {
        let (catalog, filters) = (self.catalog, self.filters);
        let blocked_artists: usize = filters
            .blocked_artists
            .iter()
            .filter_map(|name| catalog.artist_id(name))
            .map(|artist| catalog.tracks_of_artist(artist).len())
            .sum();
        let blocked_tracks_alone = filters
            .blocked_tracks
            .iter()
            .filter(|&&t| catalog.contains(t) && !self.of_blocked_artist(t))
            .count();
        let mut heard: Vec<TrackId> = self
            .heard
            .iter()
            .copied()
            .filter(|&t| catalog.contains(t) && !filters.is_blocked(catalog, t))
            .collect();
        heard.sort_unstable();
        heard.dedup();
        catalog.len() - blocked_artists - blocked_tracks_alone - heard.len()
    }

    fn of_blocked_artist(&self, track: TrackId) -> bool {
        let name = self.catalog.artist_name(self.catalog.artist_of(track));
        self.filters.blocked_artists.contains(name)
    }

    /// A uniformly random accepted catalog track, `count` being
    /// [`count`](Self::count): rejection sampling over the contiguous ids
    /// (uniform, and O(1) while most tracks are accepted), then, if every
    /// try was refused, the accepted track of a uniformly drawn rank.
    pub fn draw(&self, count: usize, rng: &mut dyn RngCore) -> Option<TrackId> {
        if count == 0 {
            return None;
        }
        let n = self.catalog.len() as TrackId;
        for _ in 0..REJECTION_TRIES {
            let track = rng.gen_range(0..n);
            if self.accepts(track) {
                return Some(track);
            }
        }
        let rank = rng.gen_range(0..count);
        (0..n).filter(|&t| self.accepts(t)).nth(rank)
    }

    /// An empty [`Unseen`] set: it admits each accepted track once.
    pub fn unseen(&self) -> Unseen<'_> {
        let mut marked = vec![0u64; self.catalog.len().div_ceil(64)];
        for &track in self.heard {
            if let Some(word) = marked.get_mut(track as usize / 64) {
                *word |= 1 << (track % 64);
            }
        }
        Unseen {
            marked,
            catalog: self.catalog,
            filters: (!self.filters.blocks_nothing()).then_some(self.filters),
        }
    }

    /// How many tracks of `list` are accepted (a track listed twice counts
    /// twice, as a uniform draw over the list weighs it).
    pub fn count_in(&self, list: &[TrackId]) -> usize {
        list.iter().filter(|&&t| self.accepts(t)).count()
    }

    /// A uniformly random accepted track of `list`, `count` being
    /// [`count_in`](Self::count_in) of it.
    pub fn draw_in(
        &self,
        list: &[TrackId],
        count: usize,
        rng: &mut dyn RngCore,
    ) -> Option<TrackId> {
        if count == 0 {
            return None;
        }
        let rank = rng.gen_range(0..count);
        list.iter().copied().filter(|&t| self.accepts(t)).nth(rank)
    }
}

/// The accepted tracks not offered yet: what a recommender that gathers
/// candidates from several overlapping lists checks each one against.
///
/// One bit per catalog track, the heard ones set from the start: a few
/// hundred candidates are then checked by a bit each, instead of a sort to
/// drop repeats and a search of the heard tracks per candidate.
pub struct Unseen<'a> {
    marked: Vec<u64>,
    catalog: &'a Catalog,
    /// `None` when they block nothing, as they mostly do: no check then.
    filters: Option<&'a Filters>,
}

impl Unseen<'_> {
    /// Whether `track` is accepted and offered for the first time; marks it
    /// offered.
    pub fn offer(&mut self, track: TrackId) -> bool {
        let Some(word) = self.marked.get_mut(track as usize / 64) else {
            return false;
        };
        let bit = 1 << (track % 64);
        let first = *word & bit == 0;
        *word |= bit;
        first
            && self.catalog.contains(track)
            && !self
                .filters
                .is_some_and(|filters| filters.is_blocked(self.catalog, track))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::small;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn count_is_the_number_of_accepted_tracks_whatever_overlaps() {
        let catalog = small();
        // 3 is also of blocked artist B; 99 is not in the catalog.
        let filters = Filters::blocking(&[3, 5, 99], &["B", "Nobody"]);
        // 4 is heard and blocked; 0 heard twice; 77 not in the catalog.
        let heard = [0, 0, 4, 77];
        let allowed = Allowed::new(&catalog, &filters, &heard);
        let scanned = (0..catalog.len() as TrackId)
            .filter(|&t| allowed.accepts(t))
            .count();
        assert_eq!(allowed.count(), scanned);
        assert_eq!(scanned, 2, "tracks 1 and 2");
    }

    #[test]
    fn unseen_offers_each_accepted_track_once() {
        let catalog = small();
        let filters = Filters::blocking(&[3], &["C"]);
        let heard = [0, 2];
        let allowed = Allowed::new(&catalog, &filters, &heard);
        let mut unseen = allowed.unseen();
        let offered: Vec<TrackId> = [0, 1, 2, 3, 4, 5, 1, 4, 6, 99, 1000]
            .into_iter()
            .filter(|&t| unseen.offer(t))
            .collect();
        // 0 and 2 heard, 3 blocked, 5 by blocked artist C, 6 and beyond
        // outside the catalog, 1 and 4 offered before.
        assert_eq!(offered, [1, 4]);
        let accepted: Vec<TrackId> = (0..8).filter(|&t| allowed.accepts(t)).collect();
        assert_eq!(accepted, [1, 4]);
    }

    #[test]
    fn draws_are_uniform_over_the_accepted_tracks() {
        let catalog = small();
        let filters = Filters::default();
        let heard = [0, 1, 2, 3];
        let allowed = Allowed::new(&catalog, &filters, &heard);
        let mut rng = SmallRng::seed_from_u64(1);
        let count = allowed.count();
        let mut fours = 0;
        for _ in 0..2000 {
            let track = allowed.draw(count, &mut rng).unwrap();
            assert!(track == 4 || track == 5);
            fours += usize::from(track == 4);
        }
        assert!((900..1100).contains(&fours), "{fours}");
        assert_eq!(allowed.draw(0, &mut rng), None);
        let list = [5, 0, 4];
        assert_eq!(allowed.count_in(&list), 2);
        let drawn = allowed.draw_in(&list, 2, &mut rng).unwrap();
        assert!(drawn == 4 || drawn == 5);
    }
}
