//! Keys of the layout before the Redis Cluster hash tags,
//! `{ns}:user:<id>:session` and `{ns}:user:<id>:profile`, adopted into
//! today's keys so an upgrade loses no listener's profile or open session.
//!
//! Adoption happens on a session's first request (the request whose listen
//! made the session list one entry long), so other requests pay nothing.
//! Each old key is taken (read and deleted atomically by a script, so an
//! old replica still writing during a rolling upgrade loses no increment:
//! what it writes later is adopted at the user's next session); the two
//! takes run concurrently (on a Redis Cluster, to the other slots the old
//! keys hash to), one more round trip. Only when something was taken is it
//! merged into the new keys, in a second one on the user's slot:
//!
//! - profile counters (`s:{artist}`, `n:{artist}`) are **added**: old and new
//!   keys count disjoint listens, so the sums are the user's whole history;
//! - of the two favourites (`fav`), the one with the higher recorded mean
//!   is kept, the rule by which a favourite is chosen (on a tie, the new);
//! - old session listens go **before** the new ones, in their order.
//!
//! Merging is why adoption is safe to repeat: nothing is overwritten.
//! `botify migrate` ([`RedisStore::migrate_legacy`]) moves every old key
//! the same way at once; a moved key's TTL starts again, as after a listen.
//! It then sets the marker `{ns}:layout` = `hash-tagged`, and a replica
//! that reads it (once, at its first session start) stops looking: session
//! starts then cost nothing more. Run it once no replica of the old
//! version is left, since their writes would no longer be adopted.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU8, Ordering};

use super::{ProfileReply, RedisStore};
use crate::state::{Listen, StateQuery, StoreError, UserState, MAX_SESSION_LISTENS};

/// Takes a hash: its fields and values, flat, and deletes it.
const TAKE_HASH: &str = "local taken = redis.call('HGETALL', KEYS[1]) \
    redis.call('DEL', KEYS[1]) return taken";

/// Takes a list: its entries, oldest first, and deletes it.
const TAKE_LIST: &str = "local taken = redis.call('LRANGE', KEYS[1], 0, -1) \
    redis.call('DEL', KEYS[1]) return taken";

/// Adds taken profile fields to KEYS[1]; ARGV: profile TTL in seconds, the
/// taken `fav` (or empty), then field, value pairs.
const MERGE_PROFILE: &str = r#"
local function mean(fav)
  if not fav then return nil end
  return tonumber(string.match(fav, " (.+)$"))
end
for i = 3, #ARGV, 2 do
  local kind = string.sub(ARGV[i], 1, 2)
  if kind == "n:" then
    redis.call("HINCRBY", KEYS[1], ARGV[i], ARGV[i + 1])
  elseif kind == "s:" then
    redis.call("HINCRBYFLOAT", KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
local old = mean(ARGV[2])
if old then
  local new = mean(redis.call("HGET", KEYS[1], "fav"))
  if not new or old > new then
    redis.call("HSET", KEYS[1], "fav", ARGV[2])
  end
end
redis.call("EXPIRE", KEYS[1], ARGV[1])
return 1
"#;

/// What `botify migrate` moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Users who had keys of the old layout.
    pub users: usize,
    pub profiles: usize,
    pub sessions: usize,
}

/// One user's old keys, merged.
struct Moved {
    /// The session's listens after the merge (the latest ones).
    listens: Vec<Listen>,
    /// The queried part of the profile after the merge, when asked for.
    queried: Option<ProfileReply>,
    profile_fields: usize,
    session_listens: usize,
}

/// The marker `botify migrate` leaves, and its value.
const LAYOUT_MARKER: (&str, &str) = ("layout", "hash-tagged");

/// Whether this replica still looks for old keys: unknown (0, the default)
/// until the first session start reads the marker, then for good.
#[derive(Debug, Default)]
pub(super) struct LegacyCheck(AtomicU8);

impl LegacyCheck {
    const LOOK: u8 = 1;
    const NONE_LEFT: u8 = 2;
}

/// `text` matched literally by a `SCAN … MATCH` glob.
fn glob_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = matches!(c, '*' | '?' | '[' | ']' | '\\');
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

impl RedisStore {
    /// `{namespace}:user:<user>:session`, the session key before hash tags.
    pub fn legacy_session_key(namespace: &str, user: u64) -> String {
        format!("{namespace}:user:{user}:session")
    }

    /// `{namespace}:user:<user>:profile`, the profile key before hash tags.
    pub fn legacy_profile_key(namespace: &str, user: u64) -> String {
        format!("{namespace}:user:{user}:profile")
    }

    /// `{namespace}:layout`, set by `botify migrate` once no old key is left.
    pub fn layout_marker_key(namespace: &str) -> String {
        format!("{namespace}:{}", LAYOUT_MARKER.0)
    }

    /// Whether a session start should look for old keys: until the marker
    /// says none are left (read once; a failed read is retried next time).
    pub(super) async fn legacy_may_remain(&self) -> bool {
        match self.legacy.0.load(Ordering::Relaxed) {
            LegacyCheck::LOOK => true,
            LegacyCheck::NONE_LEFT => false,
            _ => {
                let key = Self::layout_marker_key(&self.settings.namespace);
                let read = redis::cmd("GET").arg(key).to_owned();
                match self.bounded(self.link.cmd::<Option<String>>(&read)).await {
                    Ok(marker) => {
                        let none_left = marker.as_deref() == Some(LAYOUT_MARKER.1);
                        let check = if none_left {
                            LegacyCheck::NONE_LEFT
                        } else {
                            LegacyCheck::LOOK
                        };
                        self.legacy.0.store(check, Ordering::Relaxed);
                        !none_left
                    }
                    Err(_) => true,
                }
            }
        }
    }

    async fn take(&self, script: &str, key: String) -> Result<Vec<String>, StoreError> {
        let take = redis::cmd("EVAL").arg(script).arg(1).arg(key).to_owned();
        self.bounded(self.link.cmd(&take)).await
    }

    /// Adopts `user`'s keys of the old layout, if any, into the new ones and
    /// updates `state` (read after this request's listen) to include them.
    pub(super) async fn adopt_legacy(
        &self,
        user: u64,
        query: StateQuery,
        state: &mut UserState,
    ) -> Result<(), StoreError> {
        let Some(moved) = self.move_legacy(user, query).await? else {
            return Ok(());
        };
        tracing::info!(
            user,
            profile_fields = moved.profile_fields,
            session_listens = moved.session_listens,
            "adopted keys of the old Redis layout"
        );
        state.listens = moved.listens;
        if let Some(reply) = moved.queried {
            let listens = std::mem::take(&mut state.listens);
            *state = Self::profile_state(reply)?;
            state.listens = listens;
        }
        Ok(())
    }

    /// Moves every key of the old layout into the new one (`botify
    /// migrate`): the users are found by `SCAN` (on every master of a
    /// cluster), then each is moved as on a session's first request, so it
    /// is safe while replicas serve and safe to run again.
    pub async fn migrate_legacy(&self) -> Result<Migration, StoreError> {
        let namespace = &self.settings.namespace;
        let prefix = format!("{namespace}:user:");
        let mut users = BTreeSet::new();
        for kind in ["profile", "session"] {
            // `[0-9]` right after `user:`: old keys, never the `{`-tagged ones.
            let pattern = format!("{}:user:[0-9]*:{kind}", glob_escape(namespace));
            for key in self.link.scan(&pattern).await? {
                let id = key
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.strip_suffix(&format!(":{kind}")));
                if let Some(user) = id.and_then(|id| id.parse::<u64>().ok()) {
                    users.insert(user);
                }
            }
        }
        let mut migration = Migration::default();
        for user in users {
            if let Some(moved) = self.move_legacy(user, StateQuery::default()).await? {
                migration.users += 1;
                migration.profiles += usize::from(moved.profile_fields > 0);
                migration.sessions += usize::from(moved.session_listens > 0);
            }
        }
        let marker = redis::cmd("SET")
            .arg(Self::layout_marker_key(namespace))
            .arg(LAYOUT_MARKER.1)
            .to_owned();
        self.bounded(self.link.cmd::<()>(&marker)).await?;
        Ok(migration)
    }

    /// Takes `user`'s old keys and merges them into the new ones; `None`
    /// when there were none. A failure puts back what was taken.
    async fn move_legacy(&self, user: u64, query: StateQuery) -> Result<Option<Moved>, StoreError> {
        let namespace = &self.settings.namespace;
        let (profile, session) = tokio::join!(
            self.take(TAKE_HASH, Self::legacy_profile_key(namespace, user)),
            self.take(TAKE_LIST, Self::legacy_session_key(namespace, user)),
        );
        let (profile, session) = match (profile, session) {
            (Ok(profile), Ok(session)) => (profile, session),
            (profile, session) => {
                // The other take may have succeeded: what it took goes back.
                let taken =
                    |r: &Result<Vec<String>, StoreError>| r.as_deref().unwrap_or_default().to_vec();
                self.put_back(user, &taken(&profile), &taken(&session))
                    .await;
                return profile.and(session).map(|_| None);
            }
        };
        if profile.is_empty() && session.is_empty() {
            return Ok(None);
        }
        match self.merge(user, query, &profile, &session).await {
            Ok((listens, queried)) => Ok(Some(Moved {
                listens,
                queried,
                profile_fields: profile.len() / 2,
                session_listens: session.len(),
            })),
            Err(err) => {
                self.put_back(user, &profile, &session).await;
                Err(err)
            }
        }
    }

    /// Merges taken old keys into the new ones; the session's listens and,
    /// when the request reads the profile, its part of the state.
    async fn merge(
        &self,
        user: u64,
        query: StateQuery,
        profile: &[String],
        session: &[String],
    ) -> Result<(Vec<Listen>, Option<ProfileReply>), StoreError> {
        let (session_key, profile_key) = (self.session(user), self.profile(user));
        let mut pipe = redis::pipe();
        if !session.is_empty() {
            pipe.lpush(&session_key, session.iter().rev().collect::<Vec<_>>())
                .ignore()
                .expire(&session_key, self.settings.ttls.session.as_secs() as i64)
                .ignore();
        }
        pipe.lrange(&session_key, -(MAX_SESSION_LISTENS as isize), -1);
        if !profile.is_empty() {
            let favourite = profile
                .chunks(2)
                .find(|pair| pair[0] == Self::FAVOURITE_FIELD)
                .map_or("", |pair| pair[1].as_str());
            pipe.cmd("EVAL")
                .arg(MERGE_PROFILE)
                .arg(1)
                .arg(&profile_key)
                .arg(self.settings.ttls.profile.as_secs())
                .arg(favourite)
                .arg(profile)
                .ignore();
        }
        let (entries, queried) = match query.profile_artist {
            None => {
                let (entries,): (Vec<String>,) = self.bounded(self.link.pipe(&pipe)).await?;
                (entries, None)
            }
            Some(artist) => {
                pipe.hget(&profile_key, Self::sum_field(artist))
                    .hget(&profile_key, Self::count_field(artist))
                    .hget(&profile_key, Self::FAVOURITE_FIELD);
                let (entries, sum, count, favourite): (Vec<String>, f64, u32, Option<String>) =
                    self.bounded(self.link.pipe(&pipe)).await?;
                (entries, Some((sum, count, favourite)))
            }
        };
        let listens = entries
            .iter()
            .map(|entry| Self::parse_listen(entry))
            .collect::<Result<_, _>>()?;
        Ok((listens, queried))
    }

    /// After a failed merge: the taken keys back where they were, so the
    /// next session adopts them (best effort: Redis just failed once).
    async fn put_back(&self, user: u64, profile: &[String], session: &[String]) {
        let namespace = &self.settings.namespace;
        if !profile.is_empty() {
            let key = Self::legacy_profile_key(namespace, user);
            let mut pipe = redis::pipe();
            pipe.cmd("HSET")
                .arg(&key)
                .arg(profile)
                .ignore()
                .expire(&key, self.settings.ttls.profile.as_secs() as i64)
                .ignore();
            if let Err(err) = self.bounded(self.link.pipe::<()>(&pipe)).await {
                tracing::error!(user, %err, "lost an old-layout profile while adopting it");
            }
        }
        if !session.is_empty() {
            let key = Self::legacy_session_key(namespace, user);
            let mut pipe = redis::pipe();
            pipe.rpush(&key, session)
                .ignore()
                .expire(&key, self.settings.ttls.session.as_secs() as i64)
                .ignore();
            if let Err(err) = self.bounded(self.link.pipe::<()>(&pipe)).await {
                tracing::error!(user, %err, "lost an old-layout session while adopting it");
            }
        }
    }
}
