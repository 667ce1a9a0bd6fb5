//! The direct model q̂ the doubly robust estimator leans on: the expected
//! listened fraction of a recommended track, whatever the state. Crude on
//! purpose — DR stays unbiased when q̂ is wrong as long as the propensities
//! are right; a good q̂ only narrows the interval.
//!
//! q̂(track) is the track's mean listened fraction when it was recommended,
//! shrunk towards its artist's mean with the weight of [`PRIOR`] listens,
//! the artist's mean shrunk likewise towards the global mean: a track heard
//! twice is mostly its artist, one heard a hundred times mostly itself.

use std::collections::HashMap;

use botify::catalog::Catalog;

use crate::logs::Record;
use crate::sessions::Session;

/// Pseudo-listens of the parent mean added to a track's or artist's own.
pub const PRIOR: f64 = 5.0;

/// Sum and count of listened fractions.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    total: f64,
    count: f64,
}

impl Sum {
    fn add(&mut self, time: f64) {
        self.total += time;
        self.count += 1.0;
    }

    /// The mean, shrunk towards `parent` by [`PRIOR`] pseudo-listens.
    fn shrunk(&self, parent: f64) -> f64 {
        (self.total + PRIOR * parent) / (self.count + PRIOR)
    }
}

/// Per-track expected reward, fitted on sessions the estimates do not use.
#[derive(Debug, Clone)]
pub struct RewardModel {
    tracks: HashMap<u32, Sum>,
    artists: HashMap<u32, Sum>,
    global: f64,
}

impl RewardModel {
    /// Fits on the recommended tracks of `sessions` (every event but each
    /// session's first, which reports the listener's own pick) that `keep`
    /// accepts. Tracks outside `catalog` have no artist: they count in the
    /// global mean only.
    pub fn fit(
        records: &[Record],
        sessions: &[Session],
        catalog: &Catalog,
        keep: impl Fn(&Session) -> bool,
    ) -> RewardModel {
        let mut tracks: HashMap<u32, Sum> = HashMap::new();
        let mut artists: HashMap<u32, Sum> = HashMap::new();
        let mut global = Sum::default();
        for session in sessions.iter().filter(|s| keep(s)) {
            for event in session.events(records).iter().skip(1) {
                global.add(event.time);
                if catalog.contains(event.track) {
                    tracks.entry(event.track).or_default().add(event.time);
                    let artist = catalog.artist_of(event.track);
                    artists.entry(artist).or_default().add(event.time);
                }
            }
        }
        RewardModel {
            tracks,
            artists,
            // With no data at all, half a track is the least committal guess.
            global: if global.count > 0.0 {
                global.total / global.count
            } else {
                0.5
            },
        }
    }

    /// The global mean listened fraction: q̂ of a track drawn uniformly.
    pub fn mean(&self) -> f64 {
        self.global
    }

    /// q̂(track).
    pub fn predict(&self, catalog: &Catalog, track: u32) -> f64 {
        if !catalog.contains(track) {
            return self.global;
        }
        let artist = catalog.artist_of(track);
        let artist_mean = self
            .artists
            .get(&artist)
            .map_or(self.global, |s| s.shrunk(self.global));
        self.tracks
            .get(&track)
            .map_or(artist_mean, |s| s.shrunk(artist_mean))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions;
    use crate::train::testing::bare_track;

    #[test]
    fn a_track_is_its_artist_until_heard_often_and_first_picks_do_not_count() {
        let track = |id: u32, artist: &str| bare_track(id, artist, None);
        let catalog = Catalog::from_tracks(vec![track(0, "A"), track(1, "A"), track(2, "B")]);
        // One session: the listener's own 2 (time 1, not a recommendation),
        // then 0 recommended and heard 0.2, then 1 heard 0.6.
        let mut records = vec![
            Record::new(1, 1, 2, 1.0, 0.001, Some(0), 0, false),
            Record::new(1, 2, 0, 0.2, 0.001, Some(1), 0, false),
            Record::new(1, 3, 1, 0.6, 0.001, None, 0, true),
        ];
        sessions::sort(&mut records);
        let (sessions, _) = sessions::sessionize(&records);
        let model = RewardModel::fit(&records, &sessions, &catalog, |_| true);
        let global = (0.2 + 0.6) / 2.0;
        assert!((model.mean() - global).abs() < 1e-12);
        let artist_a = (0.8 + PRIOR * global) / (2.0 + PRIOR);
        let track_0 = (0.2 + PRIOR * artist_a) / (1.0 + PRIOR);
        assert!((model.predict(&catalog, 0) - track_0).abs() < 1e-12);
        // B was never recommended: its artist is the global mean.
        assert!((model.predict(&catalog, 2) - global).abs() < 1e-12);
        // Outside the catalog: the global mean.
        assert!((model.predict(&catalog, 99) - global).abs() < 1e-12);
        // Nothing kept: half a track.
        let empty = RewardModel::fit(&records, &sessions, &catalog, |_| false);
        assert_eq!(empty.predict(&catalog, 0), 0.5);
    }
}
