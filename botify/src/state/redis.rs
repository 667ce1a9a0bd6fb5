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

    fn key(&self, user: u64, what: &str) -> String {
        format!("{}:user:{user}:{what}", self.settings.namespace)
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

fn parse_listen(entry: &str) -> Result<Listen, StoreError> {
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

/// `fav` is `"{artist} {mean}"`.
fn encode_favourite((artist, mean): (ArtistId, f64)) -> String {
    format!("{artist} {mean}")
}

fn decode_favourite(text: &str) -> Result<(ArtistId, f64), StoreError> {
    text.split_once(' ')
        .and_then(|(artist, mean)| Some((artist.parse().ok()?, mean.parse().ok()?)))
        .ok_or_else(|| StoreError::Corrupt(format!("favourite {text:?}")))
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
        let profile = self.key(user, "profile");
        pipe.hincr(&profile, format!("s:{artist}"), listen.time)
            .hincr(&profile, format!("n:{artist}"), 1)
            .hset_nx(&profile, "fav", encode_favourite((artist, listen.time)))
            .ignore()
            .hget(&profile, "fav")
            .expire(&profile, self.settings.ttls.profile.as_secs() as i64)
            .ignore();
    }

    fn profile_state(reply: ProfileReply) -> Result<UserState, StoreError> {
        let (sum, count, favourite) = reply;
        Ok(UserState {
            listens: Vec::new(),
            favourite: favourite.as_deref().map(decode_favourite).transpose()?,
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
        let session = self.key(user, "session");
        let mut pipe = redis::pipe();
        pipe.rpush(&session, format!("{} {}", listen.track, listen.time))
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
            .map(|entry| parse_listen(entry))
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
        pipe.del(self.key(user, "session")).ignore();
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
        let profile = self.key(user, "profile");
        let mut pipe = redis::pipe();
        pipe.hset(&profile, "fav", encode_favourite(favourite))
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
        let entry = format!("{} {}", listen.track, listen.time);
        assert_eq!(parse_listen(&entry).unwrap(), listen);
        assert_eq!(
            decode_favourite(&encode_favourite((4, 0.1 + 0.2))).unwrap(),
            (4, 0.1 + 0.2)
        );
        for garbage in ["", "12", "x 0.5", "12 y"] {
            assert!(parse_listen(garbage).is_err(), "{garbage:?}");
            assert!(decode_favourite(garbage).is_err(), "{garbage:?}");
        }
    }
}
