//! Per-user state: what the service remembers between requests.
//!
//! The store keeps *facts*, not conclusions: the listens of the current
//! session, in order, and per-artist listen-time totals. Whatever a
//! recommender concludes from them (the `memory` recommender's last liked
//! track, best track and miss streak) is derived on each request, so a
//! request's own listen can be recorded and the state read back in a single
//! round trip ([`StateStore::record`]), and changing a threshold never
//! invalidates stored state. The one conclusion that is stored, the
//! favourite artist, is written by a second round trip only when a request
//! changes it ([`StateStore::apply`]).
//!
//! Every write is a delta (append a listen, add to a counter) or a whole
//! value, so concurrent requests for one user interleave without corrupting
//! anything.

mod in_process;
mod profile;
mod redis;

pub use self::in_process::InProcessStore;
pub use self::profile::Profile;
pub use self::redis::{Migration, RedisSettings, RedisStore, TRIM_SLACK};

use std::time::Duration;

use async_trait::async_trait;

use crate::catalog::{ArtistId, TrackId};

/// A session remembers at most this many listens (the most recent ones), so
/// a listener who never stops costs bounded memory and bounded reads.
pub const MAX_SESSION_LISTENS: usize = 500;

/// One listen: a track and how much of it was played, `0..=1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Listen {
    pub track: TrackId,
    pub time: f64,
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

/// What a request needs beyond the session's listens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StateQuery {
    /// Add the listen to this artist's long-term stats and read the profile
    /// back (the listened track's artist; used by `memory`).
    pub profile_artist: Option<ArtistId>,
}

/// One user's state as a request sees it, the request's own listen included.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserState {
    /// This session's listens, oldest first (the last
    /// [`MAX_SESSION_LISTENS`] of them).
    pub listens: Vec<Listen>,
    /// Favourite artist and its mean listen time (long-term).
    pub favourite: Option<(ArtistId, f64)>,
    /// Stats of the queried artist, this listen included (long-term).
    pub artist: ArtistStats,
}

impl UserState {
    /// What a request knows when the store is unavailable: its own listen.
    pub fn stateless(listen: Listen, query: StateQuery) -> UserState {
        UserState {
            listens: vec![listen],
            favourite: None,
            artist: match query.profile_artist {
                Some(_) => ArtistStats {
                    sum: listen.time,
                    count: 1,
                },
                None => ArtistStats::default(),
            },
        }
    }

    /// The tracks of this session's listens, sorted, each once: what
    /// [`Allowed`](crate::recommenders::Allowed) looks candidates up in.
    pub fn heard(&self) -> Vec<TrackId> {
        let mut heard: Vec<TrackId> = self.listens.iter().map(|l| l.track).collect();
        heard.sort_unstable();
        heard.dedup();
        heard
    }
}

/// What a recommender decided to store beyond the recorded listen.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StateUpdate {
    /// The new favourite artist and its mean.
    pub favourite: Option<(ArtistId, f64)>,
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
    #[error("{0}")]
    Config(String),
}

/// How long state lives without being touched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ttls {
    /// Session-scoped state (the session's listens).
    pub session: Duration,
    /// Long-term state (artist stats, favourite artist).
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

/// Where per-user state lives. Implementations: [`InProcessStore`] (embedded,
/// one process) and [`RedisStore`] (shared by every replica).
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Appends `listen` to the session (and to the queried artist's stats)
    /// and returns the state with it, in one round trip. A user's first
    /// listen ever also makes that artist the favourite.
    async fn record(
        &self,
        user: u64,
        listen: Listen,
        query: StateQuery,
    ) -> Result<UserState, StoreError>;
    /// Ends the session after its final `listen`: forgets the session's
    /// listens, adds the listen to the queried artist's stats, and returns
    /// the long-term state, in one round trip.
    async fn end_session(
        &self,
        user: u64,
        listen: Listen,
        query: StateQuery,
    ) -> Result<UserState, StoreError>;
    /// Writes what a recommender decided, in one round trip.
    async fn apply(&self, user: u64, update: &StateUpdate) -> Result<(), StoreError>;
    /// Checks the store answers (for `/health`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// `memory` or `redis`, for logs and `/health`.
    fn kind(&self) -> &'static str;
    /// Which part of the store holds `user`'s state, in
    /// `0..fault_domains()`: parts that fail independently (a cluster's
    /// masters) are different domains, so the engine's breaker isolates
    /// them. Domain 0 is the whole store and where a `ping` failure counts.
    fn fault_domain(&self, _user: u64) -> usize {
        0
    }
    /// How many fault domains there can be.
    fn fault_domains(&self) -> usize {
        1
    }
}

/// Behaviour every store must have, run against each implementation: by
/// the unit tests for [`InProcessStore`], by `tests/redis_state.rs` (which
/// includes this file) for [`RedisStore`] against a real Redis.
#[cfg(test)]
pub(crate) mod contract;
