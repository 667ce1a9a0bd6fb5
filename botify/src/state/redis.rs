//! The production state store: Redis, shared by every replica so any replica
//! can serve any request.
//!
//! Keys, all under a namespace (default `botify`) and all expiring:
//! - `{ns}:user:{id}:heard`   SET of tracks played this session (session TTL)
//! - `{ns}:user:{id}:session` STRING `last_good best best_time fails` (session TTL)
//! - `{ns}:user:{id}:profile` HASH `fav` = `artist mean`, `s:{artist}` listen-time
//!   sum, `n:{artist}` listen count (profile TTL)
//!
//! A load is one pipeline, an update one MULTI/EXEC pipeline, each bounded by
//! a timeout. The connection is made lazily and re-made by the connection
//! manager after Redis restarts, so the service starts and recovers without
//! Redis; failures surface as [`StoreError`] and the engine falls back.

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

pub struct RedisStore {
    connection: ConnectionManager,
    settings: RedisSettings,
}

impl RedisStore {
    /// Creates the store without connecting: Redis may come up later.
    pub fn new(settings: RedisSettings) -> Result<Self, StoreError> {
        let client = redis::Client::open(settings.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(RedisStore {
            connection,
            settings,
        })
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
        let mut conn = self.connection.clone();
        let heard_key = self.key(user, "heard");
        if !query.memory {
            let heard: Vec<TrackId> = self.bounded(conn.smembers(heard_key)).await?;
            return Ok(UserState {
                heard,
                ..UserState::default()
            });
        }
        let artist = query.artist.unwrap_or(u32::MAX);
        let mut pipe = redis::pipe();
        pipe.smembers(heard_key)
            .get(self.key(user, "session"))
            .hmget(
                self.key(user, "profile"),
                &[
                    "fav".to_string(),
                    format!("s:{artist}"),
                    format!("n:{artist}"),
                ],
            );
        type Loaded = (
            Vec<TrackId>,
            Option<String>,
            (Option<String>, Option<f64>, Option<u32>),
        );
        let (heard, session, (fav, sum, count)): Loaded =
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
        Ok(UserState {
            heard,
            session: session
                .as_deref()
                .map(decode_session)
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
        })
    }

    async fn apply(&self, user: u64, update: &StateUpdate) -> Result<(), StoreError> {
        if update.is_empty() {
            return Ok(());
        }
        let ttls = self.settings.ttls;
        let (heard_key, session_key, profile_key) = (
            self.key(user, "heard"),
            self.key(user, "session"),
            self.key(user, "profile"),
        );
        let mut pipe = redis::pipe();
        pipe.atomic();
        if let Some(track) = update.heard {
            pipe.sadd(&heard_key, track)
                .ignore()
                .expire(&heard_key, ttls.session.as_secs() as i64)
                .ignore();
        }
        if let Some(session) = &update.session {
            pipe.set_ex(
                &session_key,
                encode_session(session),
                ttls.session.as_secs(),
            )
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
        if update.end_session {
            pipe.del(&[&heard_key, &session_key]).ignore();
        }
        let mut conn = self.connection.clone();
        self.bounded(pipe.query_async::<()>(&mut conn)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.connection.clone();
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
