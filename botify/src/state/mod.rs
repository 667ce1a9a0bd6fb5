//! Per-user state: what the service remembers between requests.
//!
//! A request loads the state once ([`StateStore::load`]), recommenders work
//! on the loaded copy and describe what changed in a [`StateUpdate`], and the
//! update is written once ([`StateStore::apply`]) — one round trip each way
//! however many fields a recommender touches. Updates are deltas (add a heard
//! track, add a listen to an artist's running mean), not whole-state
//! overwrites, so concurrent requests for one user never corrupt the state.

mod memory;
mod redis;

pub use self::memory::MemoryStore;
pub use self::redis::{RedisSettings, RedisStore};

use std::time::Duration;

use async_trait::async_trait;

use crate::catalog::{ArtistId, TrackId};

/// Session-scoped fields of the `memory` recommender (reset on `/last`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SessionMemory {
    /// The last track the user liked this session.
    pub last_good: Option<TrackId>,
    /// The best-liked track this session and its listen time.
    pub best: Option<(TrackId, f64)>,
    /// Consecutive recommendations the user did not like.
    pub fails: u32,
}

/// A user's running listen-time total for one artist.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ArtistStats {
    pub sum: f64,
    pub count: u32,
}

impl ArtistStats {
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// What a request needs loaded; the store reads only that.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StateQuery {
    /// Load the `memory` recommender's fields.
    pub memory: bool,
    /// Load this artist's running stats (the previous track's artist).
    pub artist: Option<ArtistId>,
}

/// One user's state as loaded for a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserState {
    /// Tracks played this session, in no particular order.
    pub heard: Vec<TrackId>,
    pub session: SessionMemory,
    /// Favourite artist and its mean listen time (long-term).
    pub favourite: Option<(ArtistId, f64)>,
    /// Stats of the queried artist (long-term).
    pub artist: ArtistStats,
}

/// What one request changes. Applied atomically per user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateUpdate {
    /// A track played this session.
    pub heard: Option<TrackId>,
    /// New session-scoped memory fields.
    pub session: Option<SessionMemory>,
    /// A listen to add to an artist's running stats.
    pub artist_listen: Option<(ArtistId, f64)>,
    /// The new favourite artist and its mean.
    pub favourite: Option<(ArtistId, f64)>,
    /// The session ended: forget session-scoped fields (after the rest).
    pub end_session: bool,
}

impl StateUpdate {
    pub fn is_empty(&self) -> bool {
        *self == StateUpdate::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store timed out after {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("corrupt state: {0}")]
    Corrupt(String),
}

/// How long state lives without being touched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ttls {
    /// Session-scoped fields (heard tracks, session memory).
    pub session: Duration,
    /// Long-term fields (artist stats, favourite artist).
    pub profile: Duration,
}

impl Default for Ttls {
    fn default() -> Self {
        Ttls {
            session: Duration::from_secs(3600),
            profile: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Where per-user state lives. Implementations: [`MemoryStore`] (embedded,
/// one process) and [`RedisStore`] (shared by every replica).
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Reads what `query` asks for in one round trip.
    async fn load(&self, user: u64, query: StateQuery) -> Result<UserState, StoreError>;
    /// Writes `update` in one round trip, atomically for this user.
    async fn apply(&self, user: u64, update: &StateUpdate) -> Result<(), StoreError>;
    /// Checks the store answers (for `/health`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// `memory` or `redis`, for logs and `/health`.
    fn kind(&self) -> &'static str;
}

#[cfg(test)]
pub(crate) mod contract {
    //! Behaviour every store must have; run against each implementation.
    use super::*;

    pub async fn heard_tracks_accumulate_and_clear_on_session_end(store: &dyn StateStore) {
        let user = 77;
        for track in [3, 5, 3] {
            let update = StateUpdate {
                heard: Some(track),
                ..Default::default()
            };
            store.apply(user, &update).await.unwrap();
        }
        let mut heard = store.load(user, StateQuery::default()).await.unwrap().heard;
        heard.sort();
        assert_eq!(heard, vec![3, 5]);
        let end = StateUpdate {
            end_session: true,
            ..Default::default()
        };
        store.apply(user, &end).await.unwrap();
        let state = store.load(user, StateQuery::default()).await.unwrap();
        assert!(state.heard.is_empty());
    }

    pub async fn memory_fields_round_trip_and_session_fields_reset(store: &dyn StateStore) {
        let user = 78;
        let session = SessionMemory {
            last_good: Some(4),
            best: Some((9, 0.75)),
            fails: 2,
        };
        let update = StateUpdate {
            heard: Some(4),
            session: Some(session),
            artist_listen: Some((6, 0.5)),
            favourite: Some((6, 0.5)),
            end_session: false,
        };
        store.apply(user, &update).await.unwrap();
        let second = StateUpdate {
            artist_listen: Some((6, 1.0)),
            ..Default::default()
        };
        store.apply(user, &second).await.unwrap();
        let query = StateQuery {
            memory: true,
            artist: Some(6),
        };
        let state = store.load(user, query).await.unwrap();
        assert_eq!(state.session, session);
        assert_eq!(state.favourite, Some((6, 0.5)));
        assert_eq!(state.artist.count, 2);
        assert!((state.artist.sum - 1.5).abs() < 1e-9);
        let end = StateUpdate {
            end_session: true,
            ..Default::default()
        };
        store.apply(user, &end).await.unwrap();
        let state = store.load(user, query).await.unwrap();
        assert_eq!(
            state.session,
            SessionMemory::default(),
            "session fields reset"
        );
        assert_eq!(state.favourite, Some((6, 0.5)), "long-term fields survive");
        assert_eq!(state.artist.count, 2);
    }
}
