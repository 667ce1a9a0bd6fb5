//! The production state store: Redis, shared by every replica so any replica
//! can serve any request.
//!
//! Keys, all under a namespace (default `botify`) and all expiring:
//! - `{ns}:user:{id}:session` LIST, session TTL: one `"{track} {time}"`
//!   entry per listen this session, oldest first; the latest
//!   [`MAX_SESSION_LISTENS`] are read, and the list is trimmed to them
//!   once it outgrows them by [`TRIM_SLACK`]
//! - `{ns}:user:{id}:profile` HASH, profile TTL: `s:{artist}` listen-time
//!   sum, `n:{artist}` listen count, `fav` = `"{artist} {mean}"`
//!
//! The layout is code too, public so tests read Redis the way the store
//! writes it: [`RedisStore::session_key`], [`RedisStore::profile_key`], the
//! field names and the entry formats.
//!
//! A request is one pipeline: append the listen, refresh the TTLs, bump the
//! artist's counters, set `fav` if the user has none yet (`HSETNX`: a first
//! listen is its own mean), and read everything back — the commands run in
//! order, so the read sees the writes. Only a change of favourite costs a second pipeline.
//! Every command is an append, a counter or a whole value, so concurrent
//! requests of one user interleave without corrupting anything and need no
//! MULTI/EXEC. The connection is made lazily and re-made by the connection
//! manager after Redis restarts, so the service starts and recovers without
//! Redis; failures surface as [`StoreError`] and the engine falls back.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{
    ArtistStats, Listen, StateQuery, StateStore, StateUpdate, StoreError, Ttls, UserState,
    MAX_SESSION_LISTENS,
};
use crate::catalog::ArtistId;

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    /// Key prefix, so several deployments can share one Redis.
    pub namespace: String,
    /// Bound on one round trip (and on connecting).
    pub timeout: Duration,
    pub ttls: Ttls,
}

/// Connections per store: one per HTTP worker thread on a small machine.
const CONNECTIONS: usize = 4;

pub struct RedisStore {
    /// Each thread sticks to one connection, whose driver task then runs on
    /// that same thread: no cross-thread wake-up per round trip. A user's
    /// requests are sequential (each answer waits for its writes), so they
    /// need no common connection to stay ordered.
    connections: Vec<ConnectionManager>,
    settings: RedisSettings,
}

thread_local! {
    /// This thread's connection slot, assigned round-robin on first use.
    static SLOT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}
static NEXT_SLOT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl RedisStore {
    /// Creates the store without connecting: Redis may come up later.
    pub fn new(settings: RedisSettings) -> Result<Self, StoreError> {
        let client = redis::Client::open(settings.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connections = (0..CONNECTIONS)
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RedisStore {
            connections,
            settings,
        })
    }

    /// This thread's connection (a cheap clone of a shared handle).
    fn connection(&self) -> ConnectionManager {
        let slot = SLOT.with(|slot| match slot.get() {
            Some(assigned) => assigned,
            None => {
                let assigned = NEXT_SLOT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                slot.set(Some(assigned));
                assigned
            }
        });
        self.connections[slot % self.connections.len()].clone()
    }

    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.settings.timeout, work).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(StoreError::Timeout(self.settings.timeout)),
        }
    }
}

/// The key layout of the module docs. The store builds every key, field and
/// entry through these; tests read Redis through them.
impl RedisStore {
    /// The profile field holding the favourite, `"{artist} {mean}"`.
    pub const FAVOURITE_FIELD: &'static str = "fav";
    /// The profile fields `s:{artist}`: the artist's listen-time sum.
    pub const SUM_FIELD_PREFIX: &'static str = "s:";
    /// The profile fields `n:{artist}`: the artist's listen count.
    pub const COUNT_FIELD_PREFIX: &'static str = "n:";

    /// `{namespace}:user:{user}:session`, the session's listens; a `user`
    /// of `*` makes the `KEYS` pattern of every session.
    pub fn session_key(namespace: &str, user: impl std::fmt::Display) -> String {
        format!("{namespace}:user:{user}:session")
    }

    /// `{namespace}:user:{user}:profile`, the long-term profile hash.
    pub fn profile_key(namespace: &str, user: impl std::fmt::Display) -> String {
        format!("{namespace}:user:{user}:profile")
    }

    /// `s:{artist}`.
    pub fn sum_field(artist: ArtistId) -> String {
        format!("{}{artist}", Self::SUM_FIELD_PREFIX)
    }

    /// `n:{artist}`.
    pub fn count_field(artist: ArtistId) -> String {
        format!("{}{artist}", Self::COUNT_FIELD_PREFIX)
    }

    /// A session entry: `"{track} {time}"`.
    pub fn encode_listen(listen: Listen) -> String {
        format!("{} {}", listen.track, listen.time)
    }

    /// A session entry back; anything else is [`StoreError::Corrupt`].
    pub fn parse_listen(entry: &str) -> Result<Listen, StoreError> {
        entry
            .split_once(' ')
            .and_then(|(track, time)| {
                Some(Listen {
                    track: track.parse().ok()?,
                    time: time.parse().ok()?,
                })
            })
            .ok_or_else(|| StoreError::Corrupt(format!("session entry {entry:?}")))
    }

    /// The `fav` field: `"{artist} {mean}"`.
    pub fn encode_favourite((artist, mean): (ArtistId, f64)) -> String {
        format!("{artist} {mean}")
    }

    /// The `fav` field back; anything else is [`StoreError::Corrupt`].
    pub fn decode_favourite(text: &str) -> Result<(ArtistId, f64), StoreError> {
        text.split_once(' ')
            .and_then(|(artist, mean)| Some((artist.parse().ok()?, mean.parse().ok()?)))
            .ok_or_else(|| StoreError::Corrupt(format!("favourite {text:?}")))
    }

    fn session(&self, user: u64) -> String {
        Self::session_key(&self.settings.namespace, user)
    }

    fn profile(&self, user: u64) -> String {
        Self::profile_key(&self.settings.namespace, user)
    }
}

/// A session list may outgrow [`MAX_SESSION_LISTENS`] by this much before it
/// is trimmed: reads only ever take the latest listens, and trimming in a
/// batch keeps the `LTRIM` off nearly every request of a long session.
pub const TRIM_SLACK: usize = 100;

/// What the profile part of a pipeline answers: the artist's sum and
/// count after this listen, and the favourite.
type ProfileReply = (f64, u32, Option<String>);

impl RedisStore {
    /// Queues the commands adding `listen` to `artist`'s stats (and making
    /// it the favourite of a user who has none) and reading the profile
    /// back: three replies, a [`ProfileReply`].
    fn queue_profile(
        &self,
        pipe: &mut redis::Pipeline,
        user: u64,
        artist: ArtistId,
        listen: Listen,
    ) {
        let profile = self.profile(user);
        pipe.hincr(&profile, Self::sum_field(artist), listen.time)
            .hincr(&profile, Self::count_field(artist), 1)
            .hset_nx(
                &profile,
                Self::FAVOURITE_FIELD,
                Self::encode_favourite((artist, listen.time)),
            )
            .ignore()
            .hget(&profile, Self::FAVOURITE_FIELD)
            .expire(&profile, self.settings.ttls.profile.as_secs() as i64)
            .ignore();
    }

    fn profile_state(reply: ProfileReply) -> Result<UserState, StoreError> {
        let (sum, count, favourite) = reply;
        Ok(UserState {
            listens: Vec::new(),
            favourite: favourite
                .as_deref()
                .map(Self::decode_favourite)
                .transpose()?,
            artist: ArtistStats { sum, count },
        })
    }
}

#[async_trait]
impl StateStore for RedisStore {
    async fn record(
        &self,
        user: u64,
        listen: Listen,
        query: StateQuery,
    ) -> Result<UserState, StoreError> {
        let session = self.session(user);
        let mut pipe = redis::pipe();
        pipe.rpush(&session, Self::encode_listen(listen))
            .expire(&session, self.settings.ttls.session.as_secs() as i64)
            .ignore()
            .lrange(&session, -(MAX_SESSION_LISTENS as isize), -1);
        let mut conn = self.connection();
        let (length, entries, mut state) = match query.profile_artist {
            None => {
                let (length, entries): (usize, Vec<String>) =
                    self.bounded(pipe.query_async(&mut conn)).await?;
                (length, entries, UserState::default())
            }
            Some(artist) => {
                self.queue_profile(&mut pipe, user, artist, listen);
                let (length, entries, sum, count, favourite): (
                    usize,
                    Vec<String>,
                    f64,
                    u32,
                    Option<String>,
                ) = self.bounded(pipe.query_async(&mut conn)).await?;
                (
                    length,
                    entries,
                    Self::profile_state((sum, count, favourite))?,
                )
            }
        };
        if length > MAX_SESSION_LISTENS + TRIM_SLACK {
            let trim = redis::cmd("LTRIM")
                .arg(&session)
                .arg(-(MAX_SESSION_LISTENS as isize))
                .arg(-1)
                .to_owned();
            self.bounded(trim.query_async::<()>(&mut conn)).await?;
        }
        state.listens = entries
            .iter()
            .map(|entry| Self::parse_listen(entry))
            .collect::<Result<_, _>>()?;
        Ok(state)
    }

    async fn end_session(
        &self,
        user: u64,
        listen: Listen,
        query: StateQuery,
    ) -> Result<UserState, StoreError> {
        let mut pipe = redis::pipe();
        pipe.del(self.session(user)).ignore();
        let mut conn = self.connection();
        match query.profile_artist {
            None => {
                self.bounded(pipe.query_async::<()>(&mut conn)).await?;
                Ok(UserState::default())
            }
            Some(artist) => {
                self.queue_profile(&mut pipe, user, artist, listen);
                let reply: ProfileReply = self.bounded(pipe.query_async(&mut conn)).await?;
                Self::profile_state(reply)
            }
        }
    }

    async fn apply(&self, user: u64, update: &StateUpdate) -> Result<(), StoreError> {
        let Some(favourite) = update.favourite else {
            return Ok(());
        };
        let profile = self.profile(user);
        let mut pipe = redis::pipe();
        pipe.hset(
            &profile,
            Self::FAVOURITE_FIELD,
            Self::encode_favourite(favourite),
        )
        .ignore()
        .expire(&profile, self.settings.ttls.profile.as_secs() as i64)
        .ignore();
        let mut conn = self.connection();
        self.bounded(pipe.query_async::<()>(&mut conn)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.connection();
        self.bounded(redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .map(|_| ())
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_round_trip_and_garbage_is_corrupt() {
        let listen = Listen {
            track: 12,
            time: 0.123456789,
        };
        let entry = RedisStore::encode_listen(listen);
        assert_eq!(RedisStore::parse_listen(&entry).unwrap(), listen);
        assert_eq!(
            RedisStore::decode_favourite(&RedisStore::encode_favourite((4, 0.1 + 0.2))).unwrap(),
            (4, 0.1 + 0.2)
        );
        for garbage in ["", "12", "x 0.5", "12 y"] {
            assert!(RedisStore::parse_listen(garbage).is_err(), "{garbage:?}");
            assert!(
                RedisStore::decode_favourite(garbage).is_err(),
                "{garbage:?}"
            );
        }
    }
}
