//! The session-memory recommender (docs/recommenders.md#memory).
//!
//! It knows, per user, the last track they liked, the best track of the
//! session, how many recommendations in a row missed, and their favourite
//! artist. The session facts are derived from the session's listens, which
//! the state store keeps in order; the favourite artist is kept in the
//! user's long-term profile. Each request first picks an *anchor* — the
//! track to recommend from — then a contextual neighbour of it:
//! - the previous track, if it was liked (`time >= liked_threshold`);
//! - otherwise the last liked track (a miss should not steer the session);
//! - past `fail_limit` misses in a row, the best track of the session.
//!
//! The anchor's neighbours come from a configurable [`Source`] — a trained
//! item-to-item table (the default), the learned embedding's neighbour
//! graph, or the past sessions that liked the anchor — so the session rules
//! can sit on top of any candidate source and an experiment can show
//! whether they add. The anchor's unheard neighbours are the candidates,
//! scored by rank; when it has none, every allowed track of the favourite
//! artist, equally likely; failing that, the engine's fallback.

use super::session_knn::{self, SessionKnnSettings};
use super::{neighbours, ranked, Candidates, Context, Pool, Recommender};
use crate::catalog::{ArtistId, Catalog, TrackId};
use crate::models::DEFAULT_TABLE;
use crate::state::{Listen, StateQuery, StateUpdate};

/// Where the anchor's neighbours come from; each is followed by catalog
/// metadata (same artist, then same genre) for anchors it does not know.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// An item-to-item table by name (`item2item`, `item2item_als`, …).
    Table(String),
    /// The learned embedding's nearest-neighbour lists.
    Embedding,
    /// What past sessions that liked the anchor liked (`session_knn`'s vote
    /// with the anchor as the whole query).
    SessionKnn,
}

impl Source {
    /// The anchor's neighbours, best first.
    fn neighbours<'a>(
        &self,
        ctx: &Context<'a>,
        anchor: TrackId,
    ) -> Box<dyn Iterator<Item = TrackId> + 'a> {
        let (catalog, models) = (ctx.catalog, ctx.models);
        match self {
            Source::Table(table) => Box::new(neighbours(catalog, models, table, anchor)),
            Source::Embedding => Box::new(
                models
                    .embedding
                    .neighbours(anchor)
                    .iter()
                    .copied()
                    .chain(catalog.metadata_neighbours(anchor)),
            ),
            Source::SessionKnn => {
                let defaults = SessionKnnSettings::default();
                let mut scores = session_knn::vote(
                    &models.sessions,
                    &[(anchor, 1.0)],
                    defaults.k,
                    defaults.sample,
                    defaults.weighting.skip_weight,
                );
                scores.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                Box::new(
                    scores
                        .into_iter()
                        .filter(|&(_, score)| score > 0.0)
                        .map(|(track, _)| track)
                        .chain(catalog.metadata_neighbours(anchor)),
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemorySettings {
    /// Where the anchor's neighbours come from.
    pub source: Source,
    /// A track counts as liked at or above this listen time.
    pub liked_threshold: f64,
    /// Misses in a row after which the anchor becomes the session's best track.
    pub fail_limit: u32,
}

impl Default for MemorySettings {
    fn default() -> Self {
        MemorySettings {
            source: Source::Table(DEFAULT_TABLE.to_string()),
            liked_threshold: 0.5,
            fail_limit: 2,
        }
    }
}

/// What a session's listens say about the listener so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct SessionMemory {
    /// The last track liked this session.
    last_good: Option<TrackId>,
    /// The best-liked track this session and its listen time (the first
    /// of equals).
    best: Option<(TrackId, f64)>,
    /// Listens in a row, up to the last one, that were not liked.
    misses: u32,
}

impl SessionMemory {
    /// Applies the rules listen by listen, oldest first.
    fn of(listens: &[Listen], liked_threshold: f64) -> SessionMemory {
        let mut memory = SessionMemory::default();
        for listen in listens {
            if listen.time >= liked_threshold {
                memory.last_good = Some(listen.track);
                memory.misses = 0;
            } else {
                memory.misses += 1;
            }
            if memory.best.is_none_or(|(_, best)| listen.time > best) {
                memory.best = Some((listen.track, listen.time));
            }
        }
        memory
    }
}

pub struct Memory {
    settings: MemorySettings,
}

impl Memory {
    pub fn new(settings: MemorySettings) -> Self {
        Memory { settings }
    }

    /// The favourite-artist rule: the favourite (artist, mean) after a
    /// listen to `artist`, whose mean listen time, this listen included, is
    /// `mean`. The listened artist becomes favourite when its mean beats
    /// the favourite's (or there is none yet), and the favourite's own mean
    /// is kept current when it is the one listened to.
    pub fn favourite_after(
        favourite: Option<(ArtistId, f64)>,
        artist: ArtistId,
        mean: f64,
    ) -> (ArtistId, f64) {
        match favourite {
            Some((favourite, _)) if favourite == artist => (artist, mean),
            Some((favourite, best_mean)) if best_mean >= mean => (favourite, best_mean),
            _ => (artist, mean),
        }
    }

    /// The favourite artist after this listen, when it changes.
    fn new_favourite(ctx: &Context<'_>) -> Option<(ArtistId, f64)> {
        let artist = ctx.catalog.artist_of(ctx.track);
        let favourite =
            Memory::favourite_after(ctx.state.favourite, artist, ctx.state.artist.mean());
        (ctx.state.favourite != Some(favourite)).then_some(favourite)
    }
}

impl Recommender for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn state_query(&self, catalog: &Catalog, track: TrackId) -> StateQuery {
        StateQuery {
            profile_artist: Some(catalog.artist_of(track)),
        }
    }

    fn candidates<'a>(&self, ctx: &Context<'a>, update: &mut StateUpdate) -> Candidates<'a> {
        update.favourite = Memory::new_favourite(ctx);

        let session = SessionMemory::of(&ctx.state.listens, self.settings.liked_threshold);
        let mut anchor = if ctx.time >= self.settings.liked_threshold {
            ctx.track
        } else {
            session.last_good.unwrap_or(ctx.track)
        };
        if session.misses > self.settings.fail_limit {
            anchor = session.best.map_or(anchor, |(best, _)| best);
        }

        let neighbours = self.settings.source.neighbours(ctx, anchor);
        let list = ranked(&ctx.allowed, neighbours, ctx.top);
        if !list.is_empty() {
            return Candidates::Ranked(list);
        }
        match update.favourite.or(ctx.state.favourite) {
            Some((favourite, _)) => {
                Candidates::Uniform(Pool::Tracks(ctx.catalog.tracks_of_artist(favourite)))
            }
            None => Candidates::Ranked(list),
        }
    }

    fn end_session(&self, ctx: &Context<'_>, update: &mut StateUpdate) {
        update.favourite = Memory::new_favourite(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Fixture;
    use super::*;
    use crate::models::ItemTable;
    use crate::state::ArtistStats;

    fn memory() -> Memory {
        Memory::new(MemorySettings::default())
    }

    fn listens(pairs: &[(TrackId, f64)]) -> Vec<Listen> {
        pairs
            .iter()
            .map(|&(track, time)| Listen { track, time })
            .collect()
    }

    /// A table where every track's only neighbour is `n(t)`, so the anchor
    /// can be read off the answer.
    fn fixture_with_marker_table() -> Fixture {
        let mut f = Fixture::new();
        let pairs = (0..6).map(|t| (t, vec![(t + 1) % 6]));
        f.models
            .tables
            .insert("item2item".into(), ItemTable::from_pairs(pairs));
        f
    }

    #[test]
    fn liked_track_becomes_last_good_and_resets_misses() {
        let session = SessionMemory::of(&listens(&[(3, 0.1), (4, 0.1), (0, 0.9)]), 0.5);
        assert_eq!((session.last_good, session.misses), (Some(0), 0));

        let mut f = fixture_with_marker_table();
        f.state.listens = listens(&[(3, 0.1), (4, 0.1)]);
        let (track, _) = f.recommend(&memory(), 0, 0.9);
        assert_eq!(track, Some(1), "anchored on the liked track");
    }

    #[test]
    fn miss_grows_misses_and_anchors_on_last_good() {
        let session = SessionMemory::of(&listens(&[(3, 0.9), (0, 0.1)]), 0.5);
        assert_eq!((session.last_good, session.misses), (Some(3), 1));

        let mut f = fixture_with_marker_table();
        f.state.listens = listens(&[(3, 0.9)]);
        let (track, _) = f.recommend(&memory(), 0, 0.1);
        assert_eq!(track, Some(4), "neighbour of last good track 3");
    }

    #[test]
    fn past_fail_limit_anchors_on_best_track() {
        let mut f = fixture_with_marker_table();
        // last good 3, best 1, two misses so far.
        f.state.listens = listens(&[(1, 1.0), (3, 0.6), (4, 0.1), (5, 0.1)]);
        let (track, _) = f.recommend(&memory(), 0, 0.1);
        assert_eq!(
            SessionMemory::of(&f.state.listens, 0.5).misses,
            3,
            "past the limit of 2"
        );
        assert_eq!(track, Some(2), "neighbour of best track 1");
    }

    #[test]
    fn best_track_is_the_first_with_the_highest_time() {
        let best = |pairs: &[(TrackId, f64)]| SessionMemory::of(&listens(pairs), 0.5).best;
        assert_eq!(best(&[(1, 0.7), (2, 0.8)]), Some((2, 0.8)));
        assert_eq!(best(&[(1, 0.7), (4, 0.6)]), Some((1, 0.7)));
        assert_eq!(best(&[(1, 0.7), (4, 0.7)]), Some((1, 0.7)));
        assert_eq!(best(&[]), None);
    }

    #[test]
    fn favourite_switches_when_beaten_and_keeps_its_mean_current() {
        let mut f = Fixture::new();
        let b = f.catalog.artist_id("B").unwrap();
        let a = f.catalog.artist_id("A").unwrap();
        // Listening to B (track 3) at 1.0 after a 0.4: B's mean is 0.7.
        f.state.favourite = Some((a, 0.5));
        f.state.artist = ArtistStats { sum: 1.4, count: 2 };
        let (_, update) = f.recommend(&memory(), 3, 1.0);
        assert_eq!(update.favourite, Some((b, 0.7)), "0.7 beats A's 0.5");

        f.state.artist = ArtistStats { sum: 0.2, count: 2 };
        let (_, update) = f.recommend(&memory(), 3, 0.2);
        assert_eq!(update.favourite, None, "B's mean 0.1 does not beat A's 0.5");

        // Listening to the favourite A (track 0): its mean follows, up or down.
        f.state.artist = ArtistStats { sum: 0.6, count: 2 };
        let (_, update) = f.recommend(&memory(), 0, 0.1);
        assert_eq!(update.favourite, Some((a, 0.3)));
        f.state.artist = ArtistStats { sum: 1.0, count: 2 };
        let (_, update) = f.recommend(&memory(), 0, 0.5);
        assert_eq!(
            update.favourite, None,
            "A's mean is still 0.5: nothing to write"
        );
    }

    #[test]
    fn favourite_artist_serves_when_no_neighbour_is_left() {
        let mut f = Fixture::new();
        let c = f.catalog.artist_id("C").unwrap();
        f.state.favourite = Some((c, 0.9));
        f.state.artist = ArtistStats { sum: 0.1, count: 5 };
        // Every neighbour of track 0 (artist A, then rock) is heard.
        f.heard(&[1, 2, 3, 4]);
        let (track, _) = f.recommend(&memory(), 0, 0.1);
        assert_eq!(track, Some(5), "artist C's only track, not the last played");
    }

    #[test]
    fn returns_none_for_the_fallback_when_nothing_fits() {
        let mut f = Fixture::new();
        f.heard(&[1, 2, 3, 4, 5]);
        let (track, _) = f.recommend(&memory(), 0, 0.1);
        assert_eq!(track, None);
    }
}
