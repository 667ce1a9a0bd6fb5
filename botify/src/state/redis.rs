//! The production state store: Redis, shared by every replica so any replica
//! can serve any request.
//!
//! Keys, all under a namespace (default `botify`) and all expiring:
//! - `{ns}:user:{<id>}:session` LIST, session TTL: one `"{track} {time}"`
//!   entry per listen this session, oldest first; the latest
//!   [`MAX_SESSION_LISTENS`] are read, and the list is trimmed to them
//!   once it outgrows them by [`TRIM_SLACK`]
//! - `{ns}:user:{<id>}:profile` HASH, profile TTL: `s:{artist}` listen-time
//!   sum, `n:{artist}` listen count, `fav` = `"{artist} {mean}"`
//!
//! The braces around the user id are a Redis Cluster hash tag: both keys of
//! a user hash to one slot, so on a cluster a request's pipeline still goes
//! to one node in one round trip.
//!
//! Keys of the layout before the hash tags (`{ns}:user:<id>:…`) are adopted
//! on a session's first request (`legacy.rs`), so an upgrade keeps every
//! profile.
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
//! MULTI/EXEC. Connections are lazy and self-healing (`redis_link.rs`), so the
//! service starts and recovers without Redis; failures surface as [`StoreError`] and the engine falls back.

mod legacy;

pub use self::legacy::Migration;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    ArtistStats, Listen, StateQuery, StateStore, StateUpdate, StoreError, Ttls, UserState,
    MAX_SESSION_LISTENS,
};
use crate::catalog::ArtistId;
use crate::redis_link::{RedisLink, RedisTarget};

#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `--redis-url`: one URL, or with `cluster` comma-separated seed nodes.
    pub url: String,
    /// Talk to a Redis Cluster (`--redis-cluster`).
    pub cluster: bool,
    /// Key prefix, so several deployments can share one Redis.
    pub namespace: String,
    /// Bound on one round trip (and on connecting).
    pub timeout: Duration,
    pub ttls: Ttls,
}

pub struct RedisStore {
    link: Arc<RedisLink>,
    settings: RedisSettings,
    /// Whether session starts still look for keys of the old layout.
    legacy: legacy::LegacyCheck,
}

impl RedisStore {
    /// Creates the store without connecting: Redis may come up later.
    pub fn new(settings: RedisSettings) -> Result<Self, StoreError> {
        let target =
            RedisTarget::parse(&settings.url, settings.cluster).map_err(StoreError::Config)?;
        let link = Arc::new(RedisLink::new(&target, settings.timeout)?);
        Ok(RedisStore {
            link,
            settings,
            legacy: legacy::LegacyCheck::default(),
        })
    }

    /// The link this store talks through, for the control plane to share.
    pub fn link(&self) -> Arc<RedisLink> {
        self.link.clone()
    }

    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let result = match tokio::time::timeout(self.settings.timeout, work).await {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(self.settings.timeout)),
        };
        if result.is_err() {
            self.link.call_failed();
        }
        result
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

    /// `{namespace}:user:{<user>}:session`, the session's listens; a `user`
    /// of `*` makes the `KEYS` pattern of every session. The braces are a
    /// Redis Cluster hash tag: all of a user's keys hash to one slot.
    pub fn session_key(namespace: &str, user: impl std::fmt::Display) -> String {
        format!("{namespace}:user:{{{user}}}:session")
    }

    /// `{namespace}:user:{<user>}:profile`, the long-term profile hash.
    pub fn profile_key(namespace: &str, user: impl std::fmt::Display) -> String {
        format!("{namespace}:user:{{{user}}}:profile")
    }

    /// The user of a key built by [`Self::session_key`] or
    /// [`Self::profile_key`], if it is one.
    pub fn user_of_key(key: &str) -> Option<u64> {
        let (_, tagged) = key.split_once('{')?;
        let (user, _) = tagged.split_once('}')?;
        user.parse().ok()
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
        let (length, entries, mut state) = match query.profile_artist {
            None => {
                let (length, entries): (usize, Vec<String>) =
                    self.bounded(self.link.pipe_for(&session, &pipe)).await?;
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
                ) = self.bounded(self.link.pipe_for(&session, &pipe)).await?;
                (
                    length,
                    entries,
                    Self::profile_state((sum, count, favourite))?,
                )
            }
        };
        if length > MAX_SESSION_LISTENS + TRIM_SLACK {
            let mut trim = redis::pipe();
            trim.ltrim(&session, -(MAX_SESSION_LISTENS as isize), -1)
                .ignore();
            self.bounded(self.link.pipe_for::<()>(&session, &trim))
                .await?;
        }
        state.listens = entries
            .iter()
            .map(|entry| Self::parse_listen(entry))
            .collect::<Result<_, _>>()?;
        // A session's first listen: the one time the old layout may hold
        // what this user's new keys lack. Failing to adopt it serves the
        // request with what the new keys hold; the next session retries.
        if length == 1 && self.legacy_may_remain().await {
            if let Err(err) = self.adopt_legacy(user, query, &mut state).await {
                tracing::warn!(user, %err, "cannot adopt keys of the old Redis layout");
            }
        }
        Ok(state)
    }

    async fn end_session(
        &self,
        user: u64,
        listen: Listen,
        query: StateQuery,
    ) -> Result<UserState, StoreError> {
        let session = self.session(user);
        let mut pipe = redis::pipe();
        pipe.del(&session).ignore();
        match query.profile_artist {
            None => {
                self.bounded(self.link.pipe_for::<()>(&session, &pipe))
                    .await?;
                Ok(UserState::default())
            }
            Some(artist) => {
                self.queue_profile(&mut pipe, user, artist, listen);
                let reply: ProfileReply = self.bounded(self.link.pipe_for(&session, &pipe)).await?;
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
        self.bounded(self.link.pipe_for::<()>(&profile, &pipe))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(self.link.cmd::<String>(&redis::cmd("PING")))
            .await
            .map(|_| ())
    }

    fn kind(&self) -> &'static str {
        "redis"
    }

    /// On a cluster, the master serving the user's hash slot.
    fn fault_domain(&self, user: u64) -> usize {
        self.link.fault_domain(&self.session(user))
    }

    fn fault_domains(&self) -> usize {
        self.link.fault_domains()
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
