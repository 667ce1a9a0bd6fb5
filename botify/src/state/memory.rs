//! The embedded state store: a sharded in-process map.
//!
//! Used when no Redis URL is given and by in-process simulation, where it must
//! cost next to nothing per request. Expiry is lazy (checked on read) plus an
//! occasional sweep so abandoned users do not accumulate forever.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;

use super::{
    ArtistStats, SessionMemory, StateQuery, StateStore, StateUpdate, StoreError, Ttls, UserState,
};
use crate::catalog::{ArtistId, TrackId};

const SHARDS: usize = 64;
/// Sweep a shard for expired users once per this many writes to it.
const SWEEP_EVERY: u32 = 4096;

#[derive(Default)]
struct Entry {
    heard: Vec<TrackId>,
    session: SessionMemory,
    session_touched: Option<Instant>,
    favourite: Option<(ArtistId, f64)>,
    artists: HashMap<ArtistId, ArtistStats>,
    profile_touched: Option<Instant>,
}

#[derive(Default)]
struct Shard {
    users: HashMap<u64, Entry>,
    writes: u32,
}

pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    ttls: Ttls,
}

impl MemoryStore {
    pub fn new(ttls: Ttls) -> Self {
        MemoryStore {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            ttls,
        }
    }

    fn shard(&self, user: u64) -> std::sync::MutexGuard<'_, Shard> {
        // A panic while holding the lock cannot leave an entry half-written
        // in a way later requests would misread, so recover from poisoning.
        self.shards[(user % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn expire(&self, entry: &mut Entry, now: Instant) {
        if entry
            .session_touched
            .is_some_and(|t| now.duration_since(t) > self.ttls.session)
        {
            entry.heard.clear();
            entry.session = SessionMemory::default();
            entry.session_touched = None;
        }
        if entry
            .profile_touched
            .is_some_and(|t| now.duration_since(t) > self.ttls.profile)
        {
            entry.favourite = None;
            entry.artists.clear();
            entry.profile_touched = None;
        }
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn load(&self, user: u64, query: StateQuery) -> Result<UserState, StoreError> {
        let mut shard = self.shard(user);
        let Some(entry) = shard.users.get_mut(&user) else {
            return Ok(UserState::default());
        };
        self.expire(entry, Instant::now());
        let mut state = UserState {
            heard: entry.heard.clone(),
            ..UserState::default()
        };
        if query.memory {
            state.session = entry.session;
            state.favourite = entry.favourite;
            if let Some(artist) = query.artist {
                state.artist = entry.artists.get(&artist).copied().unwrap_or_default();
            }
        }
        Ok(state)
    }

    async fn apply(&self, user: u64, update: &StateUpdate) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(user);
        shard.writes = shard.writes.wrapping_add(1);
        if shard.writes.is_multiple_of(SWEEP_EVERY) {
            let ttls = self.ttls;
            shard.users.retain(|_, e| {
                let alive =
                    |t: Option<Instant>, ttl| t.is_some_and(|t| now.duration_since(t) <= ttl);
                alive(e.session_touched, ttls.session) || alive(e.profile_touched, ttls.profile)
            });
        }
        let entry = shard.users.entry(user).or_default();
        self.expire(entry, now);
        if let Some(track) = update.heard {
            if !entry.heard.contains(&track) {
                entry.heard.push(track);
            }
            entry.session_touched = Some(now);
        }
        if let Some(session) = update.session {
            entry.session = session;
            entry.session_touched = Some(now);
        }
        if let Some((artist, time)) = update.artist_listen {
            let stats = entry.artists.entry(artist).or_default();
            stats.sum += time;
            stats.count += 1;
            entry.profile_touched = Some(now);
        }
        if let Some(favourite) = update.favourite {
            entry.favourite = Some(favourite);
            entry.profile_touched = Some(now);
        }
        if update.end_session {
            entry.heard.clear();
            entry.session = SessionMemory::default();
            entry.session_touched = None;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::super::contract;
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn heard_tracks_accumulate_and_clear_on_session_end() {
        contract::heard_tracks_accumulate_and_clear_on_session_end(&MemoryStore::new(
            Ttls::default(),
        ))
        .await;
    }

    #[tokio::test]
    async fn memory_fields_round_trip_and_session_fields_reset() {
        contract::memory_fields_round_trip_and_session_fields_reset(&MemoryStore::new(
            Ttls::default(),
        ))
        .await;
    }

    #[tokio::test]
    async fn session_state_expires_after_its_ttl() {
        let store = MemoryStore::new(Ttls {
            session: Duration::from_millis(20),
            profile: Duration::from_secs(60),
        });
        let update = StateUpdate {
            heard: Some(1),
            artist_listen: Some((2, 1.0)),
            ..Default::default()
        };
        store.apply(5, &update).await.unwrap();
        std::thread::sleep(Duration::from_millis(40));
        let query = StateQuery {
            memory: true,
            artist: Some(2),
        };
        let state = store.load(5, query).await.unwrap();
        assert!(state.heard.is_empty(), "session expired");
        assert_eq!(state.artist.count, 1, "profile still alive");
    }
}
