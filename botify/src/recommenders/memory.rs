//! The session-memory recommender (seed `002`).
//!
//! It remembers, per user, the last track they liked, the best track of the
//! session, how many recommendations in a row missed, and their favourite
//! artist. Each request first picks an *anchor* — the track to recommend
//! from — then a contextual neighbour of it:
//! - the previous track, if it was liked (`time >= liked_threshold`);
//! - otherwise the last liked track (a miss should not steer the session);
//! - past `fail_limit` misses in a row, the best track of the session.
//!
//! When the anchor has no unheard neighbour it serves another track of the
//! favourite artist, and failing that, the engine's fallback.

use super::{neighbours, Context, Recommender};
use crate::catalog::{Catalog, TrackId};
use crate::models::DEFAULT_TABLE;
use crate::state::{ArtistStats, StateQuery, StateUpdate};

#[derive(Debug, Clone, PartialEq)]
pub struct MemorySettings {
    /// Item-to-item table for neighbours.
    pub table: String,
    /// A track counts as liked at or above this listen time.
    pub liked_threshold: f64,
    /// Misses in a row after which the anchor becomes the session's best track.
    pub fail_limit: u32,
}

impl Default for MemorySettings {
    fn default() -> Self {
        MemorySettings {
            table: DEFAULT_TABLE.to_string(),
            liked_threshold: 0.5,
            fail_limit: 2,
        }
    }
}

pub struct Memory {
    settings: MemorySettings,
}

impl Memory {
    pub fn new(settings: MemorySettings) -> Self {
        Memory { settings }
    }

    /// Adds the listen to the artist's running mean and refreshes the
    /// favourite artist: the listened artist becomes favourite when its mean
    /// beats the current favourite's, and the favourite's own mean is kept
    /// current when it is the one listened to.
    fn record_artist(ctx: &Context<'_>, update: &mut StateUpdate) {
        let artist = ctx.catalog.artist_of(ctx.track);
        let stats = ArtistStats {
            sum: ctx.state.artist.sum + ctx.time,
            count: ctx.state.artist.count + 1,
        };
        let mean = stats.mean();
        update.artist_listen = Some((artist, ctx.time));
        update.favourite = match ctx.state.favourite {
            Some((favourite, _)) if favourite == artist => Some((artist, mean)),
            Some((_, best_mean)) if best_mean >= mean => None,
            _ => Some((artist, mean)),
        };
    }
}

impl Recommender for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn state_query(&self, catalog: &Catalog, track: TrackId) -> StateQuery {
        StateQuery {
            memory: true,
            artist: Some(catalog.artist_of(track)),
        }
    }

    fn recommend(&self, ctx: &mut Context<'_>, update: &mut StateUpdate) -> Option<TrackId> {
        Memory::record_artist(ctx, update);

        let before = ctx.state.session;
        let mut session = before;
        let liked = ctx.time >= self.settings.liked_threshold;
        let mut anchor = if liked {
            session.last_good = Some(ctx.track);
            session.fails = 0;
            ctx.track
        } else {
            session.fails += 1;
            session.last_good.unwrap_or(ctx.track)
        };
        if session
            .best
            .is_none_or(|(_, best_time)| ctx.time > best_time)
        {
            session.best = Some((ctx.track, ctx.time));
        }
        if session.fails > self.settings.fail_limit {
            anchor = session.best.map_or(anchor, |(best, _)| best);
        }
        if session != before {
            update.session = Some(session);
        }

        let table = &self.settings.table;
        ctx.allowed
            .first(neighbours(ctx.catalog, ctx.models, table, anchor))
            .or_else(|| {
                let (favourite, _) = update.favourite.or(ctx.state.favourite)?;
                ctx.allowed
                    .pick_random(ctx.catalog.tracks_of_artist(favourite), ctx.rng)
            })
    }

    fn end_session(&self, ctx: &Context<'_>, update: &mut StateUpdate) {
        Memory::record_artist(ctx, update);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Fixture;
    use super::*;
    use crate::models::ItemTable;
    use crate::state::SessionMemory;

    fn memory() -> Memory {
        Memory::new(MemorySettings::default())
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
    fn liked_track_becomes_last_good_and_resets_fails() {
        let mut f = fixture_with_marker_table();
        f.state.session.fails = 2;
        let (track, update) = f.recommend(&memory(), 0, 0.9);
        let session = update.session.unwrap();
        assert_eq!(session.last_good, Some(0));
        assert_eq!(session.fails, 0);
        assert_eq!(track, Some(1), "anchored on the liked track");
    }

    #[test]
    fn miss_grows_fails_and_anchors_on_last_good() {
        let mut f = fixture_with_marker_table();
        f.state.session = SessionMemory {
            last_good: Some(3),
            best: Some((3, 0.9)),
            fails: 0,
        };
        let (track, update) = f.recommend(&memory(), 0, 0.1);
        assert_eq!(update.session.unwrap().fails, 1);
        assert_eq!(track, Some(4), "neighbour of last good track 3");
    }

    #[test]
    fn past_fail_limit_anchors_on_best_track() {
        let mut f = fixture_with_marker_table();
        f.state.session = SessionMemory {
            last_good: Some(3),
            best: Some((1, 1.0)),
            fails: 2,
        };
        let (track, update) = f.recommend(&memory(), 0, 0.1);
        assert_eq!(update.session.unwrap().fails, 3);
        assert_eq!(track, Some(2), "neighbour of best track 1");
    }

    #[test]
    fn best_track_tracks_the_highest_time() {
        let mut f = fixture_with_marker_table();
        f.state.session.best = Some((1, 0.7));
        let (_, update) = f.recommend(&memory(), 2, 0.8);
        assert_eq!(update.session.unwrap().best, Some((2, 0.8)));
        let (_, update) = f.recommend(&memory(), 4, 0.6);
        assert_eq!(update.session.unwrap().best, Some((1, 0.7)));
    }

    #[test]
    fn artist_mean_updates_and_favourite_switches_when_beaten() {
        let mut f = Fixture::new();
        let b = f.catalog.artist_id("B").unwrap();
        let a = f.catalog.artist_id("A").unwrap();
        f.state.favourite = Some((a, 0.5));
        f.state.artist = ArtistStats { sum: 0.4, count: 1 };
        let (_, update) = f.recommend(&memory(), 3, 1.0);
        assert_eq!(update.artist_listen, Some((b, 1.0)));
        assert_eq!(
            update.favourite,
            Some((b, 0.7)),
            "B's mean 0.7 beats A's 0.5"
        );

        f.state.artist = ArtistStats { sum: 0.0, count: 1 };
        let (_, update) = f.recommend(&memory(), 3, 0.2);
        assert_eq!(update.favourite, None, "B's mean 0.1 does not beat A's 0.5");
    }

    #[test]
    fn favourite_artist_serves_when_no_neighbour_is_left() {
        let mut f = Fixture::new();
        let c = f.catalog.artist_id("C").unwrap();
        f.state.favourite = Some((c, 0.9));
        f.state.artist = ArtistStats { sum: 0.0, count: 5 };
        // Every neighbour of track 0 (artist A, then rock) is heard.
        f.state.heard = vec![1, 2, 3, 4];
        let (track, _) = f.recommend(&memory(), 0, 0.1);
        assert_eq!(track, Some(5), "artist C's only track, not the last played");
    }

    #[test]
    fn returns_none_for_the_fallback_when_nothing_fits() {
        let mut f = Fixture::new();
        f.state.heard = vec![1, 2, 3, 4, 5];
        let (track, _) = f.recommend(&memory(), 0, 0.1);
        assert_eq!(track, None);
    }
}
