//! The embedded state store: a sharded map kept in this process.
//!
//! Used when no Redis URL is given and by in-process simulation, where it must
//! cost next to nothing per request. Expiry is lazy (checked on read) plus an
//! occasional sweep so abandoned users do not accumulate forever.
//!
//! Its [`StateStore::kind`] is `memory`, as `/`, `/health` and the start-up
//! log have always shown it (output formats do not follow type names); the
//! type is named for where the state lives, not to read like the `memory`
//! recommender.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;

use super::{
    Listen, Profile, StateQuery, StateStore, StateUpdate, StoreError, Ttls, UserState,
    MAX_SESSION_LISTENS,
};

const SHARDS: usize = 64;
/// Sweep a shard for expired users once per this many writes to it.
const SWEEP_EVERY: u32 = 4096;

#[derive(Default)]
struct Entry {
    listens: VecDeque<Listen>,
    session_touched: Option<Instant>,
    profile: Profile,
    profile_touched: Option<Instant>,
}

impl Entry {
    /// Adds `listen` to the profile when the query asks for it, and
    /// returns the long-term state (empty when it does not).
    fn add_to_profile(&mut self, query: StateQuery, listen: Listen, now: Instant) -> UserState {
        match self.profile.add(query, listen) {
            Some(state) => {
                self.profile_touched = Some(now);
                state
            }
            None => UserState::default(),
        }
    }
}

#[derive(Default)]
struct Shard {
    users: HashMap<u64, Entry>,
    writes: u32,
}

pub struct InProcessStore {
    shards: Vec<Mutex<Shard>>,
    ttls: Ttls,
}

impl InProcessStore {
    pub fn new(ttls: Ttls) -> Self {
        InProcessStore {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            ttls,
        }
    }

    /// Runs `change` on the user's entry (created if missing, expired parts
    /// dropped) under its shard's lock.
    fn with_entry<T>(&self, user: u64, change: impl FnOnce(&mut Entry, Instant) -> T) -> T {
        let now = Instant::now();
        // A panic while holding the lock cannot leave an entry half-written
        // in a way later requests would misread, so recover from poisoning.
        let mut shard = self.shards[(user % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
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
        change(entry, now)
    }

    fn expire(&self, entry: &mut Entry, now: Instant) {
        if entry
            .session_touched
            .is_some_and(|t| now.duration_since(t) > self.ttls.session)
        {
            entry.listens.clear();
            entry.session_touched = None;
        }
        if entry
            .profile_touched
            .is_some_and(|t| now.duration_since(t) > self.ttls.profile)
        {
            entry.profile.clear();
            entry.profile_touched = None;
        }
    }
}

#[async_trait]
impl StateStore for InProcessStore {
    async fn record(
        &self,
        user: u64,
        listen: Listen,
        query: StateQuery,
    ) -> Result<UserState, StoreError> {
        Ok(self.with_entry(user, |entry, now| {
            if entry.listens.len() == MAX_SESSION_LISTENS {
                entry.listens.pop_front();
            }
            entry.listens.push_back(listen);
            entry.session_touched = Some(now);
            let mut state = entry.add_to_profile(query, listen, now);
            state.listens = entry.listens.iter().copied().collect();
            state
        }))
    }

    async fn end_session(
        &self,
        user: u64,
        listen: Listen,
        query: StateQuery,
    ) -> Result<UserState, StoreError> {
        Ok(self.with_entry(user, |entry, now| {
            entry.listens.clear();
            entry.session_touched = None;
            entry.add_to_profile(query, listen, now)
        }))
    }

    async fn apply(&self, user: u64, update: &StateUpdate) -> Result<(), StoreError> {
        if !update.is_empty() {
            self.with_entry(user, |entry, now| {
                entry.profile.apply(update);
                entry.profile_touched = Some(now);
            });
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

    fn store() -> InProcessStore {
        InProcessStore::new(Ttls::default())
    }

    contract::tests!(store: store());

    #[tokio::test]
    async fn session_state_expires_after_its_ttl() {
        let store = InProcessStore::new(Ttls {
            session: Duration::from_millis(20),
            profile: Duration::from_secs(60),
        });
        let query = StateQuery {
            profile_artist: Some(2),
        };
        let listen = Listen {
            track: 1,
            time: 1.0,
        };
        store.record(5, listen, query).await.unwrap();
        std::thread::sleep(Duration::from_millis(40));
        let state = store.record(5, listen, query).await.unwrap();
        assert_eq!(state.listens, vec![listen], "the old session expired");
        assert_eq!(state.artist.count, 2, "the profile is still alive");
    }
}
