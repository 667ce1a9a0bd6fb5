//! The production state store: Redis, shared by every replica so any replica
//! can serve any request.
//!
//! Keys, all under a namespace (default `botify`) and all expiring:
//! - `{ns}:user:{id}:session` HASH, session TTL: `t:{track}` for each track
//!   played this session, `m` = `last_good best best_time fails`
//! - `{ns}:user:{id}:profile` HASH, profile TTL: `fav` = `artist mean`,
//!   `s:{artist}` listen-time sum, `n:{artist}` listen count
//!
//! Redis, not the network, is the bottleneck under load, so the layout
//! minimises commands: a load is one pipeline of one or two commands, an
//! update one pipeline of two (six for `memory`), each bounded by a timeout.
//! Every command touches self-contained fields (a set member, a counter, a
//! whole value), so concurrent updates of one user interleave without
//! corrupting anything and need no MULTI/EXEC. The connection is made lazily and re-made by the connection
//! manager after Redis restarts, so the service starts and recovers without
//! Redis; failures surface as [`StoreError`] and the engine falls back.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;

use super::{
    ArtistStats, SessionMemory, StateQuery, StateStore, StateUpdate, StoreError, Ttls, UserState,
};
use crate::catalog::TrackId;

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
    /// requests are sequential (each answer waits for its write), so they
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

/// The `t:{track}` fields of a session hash.
fn heard_tracks(session: &HashMap<String, String>) -> Result<Vec<TrackId>, StoreError> {
    session
        .keys()
        .filter_map(|field| field.strip_prefix("t:"))
        .map(|t| {
            t.parse()
                .map_err(|_| StoreError::Corrupt(format!("session field t:{t}")))
        })
        .collect()
}

fn encode_session(s: &SessionMemory) -> String {
    let opt = |v: Option<TrackId>| v.map_or("-".to_string(), |t| t.to_string());
    let (best, best_time) = match s.best {
        Some((t, time)) => (t.to_string(), time.to_string()),
        None => ("-".to_string(), "-".to_string()),
    };
    format!("{} {best} {best_time} {}", opt(s.last_good), s.fails)
}

fn decode_session(text: &str) -> Result<SessionMemory, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("session value {text:?}"));
    let parts: Vec<&str> = text.split(' ').collect();
    let [last_good, best, best_time, fails] = parts.as_slice() else {
        return Err(corrupt());
    };
    let track = |s: &str| -> Result<Option<TrackId>, StoreError> {
        if s == "-" {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| corrupt())
        }
    };
    let best = match (track(best)?, best_time.parse::<f64>()) {
        (Some(t), Ok(time)) => Some((t, time)),
        (None, _) => None,
        (Some(_), Err(_)) => return Err(corrupt()),
    };
    Ok(SessionMemory {
        last_good: track(last_good)?,
        best,
        fails: fails.parse().map_err(|_| corrupt())?,
    })
}

#[async_trait]
impl StateStore for RedisStore {
    async fn load(&self, user: u64, query: StateQuery) -> Result<UserState, StoreError> {
        let mut conn = self.connection();
        let session_key = self.key(user, "session");
        let session: HashMap<String, String> = if !query.memory {
            self.bounded(conn.hgetall(session_key)).await?
        } else {
            let artist = query.artist.unwrap_or(u32::MAX);
            let mut pipe = redis::pipe();
            pipe.hgetall(session_key).hmget(
                self.key(user, "profile"),
                &[
                    "fav".to_string(),
                    format!("s:{artist}"),
                    format!("n:{artist}"),
                ],
            );
            type Loaded = (
                HashMap<String, String>,
                (Option<String>, Option<f64>, Option<u32>),
            );
            let (session, (fav, sum, count)): Loaded =
                self.bounded(pipe.query_async(&mut conn)).await?;
            let favourite = match fav {
                Some(text) => {
                    let parsed = text
                        .split_once(' ')
                        .and_then(|(a, m)| Some((a.parse().ok()?, m.parse().ok()?)));
                    Some(parsed.ok_or_else(|| StoreError::Corrupt(format!("favourite {text:?}")))?)
                }
                None => None,
            };
            return Ok(UserState {
                heard: heard_tracks(&session)?,
                session: session
                    .get("m")
                    .map(|m| decode_session(m))
                    .transpose()?
                    .unwrap_or_default(),
                favourite,
                artist: if query.artist.is_some() {
                    ArtistStats {
                        sum: sum.unwrap_or(0.0),
                        count: count.unwrap_or(0),
                    }
                } else {
                    ArtistStats::default()
                },
            });
        };
        Ok(UserState {
            heard: heard_tracks(&session)?,
            ..UserState::default()
        })
    }

    async fn apply(&self, user: u64, update: &StateUpdate) -> Result<(), StoreError> {
        if update.is_empty() {
            return Ok(());
        }
        let ttls = self.settings.ttls;
        let (session_key, profile_key) = (self.key(user, "session"), self.key(user, "profile"));
        let mut pipe = redis::pipe();
        let mut fields: Vec<(String, String)> = Vec::with_capacity(2);
        if let Some(track) = update.heard {
            fields.push((format!("t:{track}"), String::new()));
        }
        if let Some(session) = &update.session {
            fields.push(("m".to_string(), encode_session(session)));
        }
        if update.end_session {
            pipe.del(&session_key).ignore();
        } else if !fields.is_empty() {
            pipe.hset_multiple(&session_key, &fields)
                .ignore()
                .expire(&session_key, ttls.session.as_secs() as i64)
                .ignore();
        }
        if let Some((artist, time)) = update.artist_listen {
            pipe.hincr(&profile_key, format!("s:{artist}"), time)
                .ignore()
                .hincr(&profile_key, format!("n:{artist}"), 1)
                .ignore();
        }
        if let Some((artist, mean)) = update.favourite {
            pipe.hset(&profile_key, "fav", format!("{artist} {mean}"))
                .ignore();
        }
        if update.artist_listen.is_some() || update.favourite.is_some() {
            pipe.expire(&profile_key, ttls.profile.as_secs() as i64)
                .ignore();
        }
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
    fn session_encoding_round_trips() {
        for s in [
            SessionMemory::default(),
            SessionMemory {
                last_good: Some(4),
                best: Some((9, 0.75)),
                fails: 3,
            },
        ] {
            assert_eq!(decode_session(&encode_session(&s)).unwrap(), s);
        }
        assert!(decode_session("1 2").is_err());
    }
}
