//! Keys of the layout before the Redis Cluster hash tags,
//! `{ns}:user:<id>:session` and `{ns}:user:<id>:profile`, adopted into
//! today's keys so an upgrade loses no listener's profile or open session.
//!
//! Adoption happens on a session's first request (the request whose listen
//! made the session list one entry long), so other requests pay nothing. It
//! costs one more round trip (two on a Redis Cluster, where the old keys sit
//! in other slots than the user's new ones): each old key is taken (read and
//! deleted atomically by a script, so an old replica still writing during a
//! rolling upgrade loses no increment: what it writes later is adopted at
//! the user's next session) and, when something was taken, merged into the
//! new keys in one more pipeline on the user's slot:
//!
//! - profile counters (`s:{artist}`, `n:{artist}`) are **added**: old and new
//!   keys count disjoint listens, so the sums are the user's whole history;
//! - of the two favourites (`fav`), the one with the higher recorded mean
//!   is kept, the rule by which a favourite is chosen (on a tie, the new);
//! - old session listens go **before** the new ones, in their order.
//!
//! Merging is why adoption is safe to repeat: nothing is overwritten.

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

impl RedisStore {
    /// `{namespace}:user:<user>:session`, the session key before hash tags.
    pub fn legacy_session_key(namespace: &str, user: u64) -> String {
        format!("{namespace}:user:{user}:session")
    }

    /// `{namespace}:user:<user>:profile`, the profile key before hash tags.
    pub fn legacy_profile_key(namespace: &str, user: u64) -> String {
        format!("{namespace}:user:{user}:profile")
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
                return profile.and(session).map(|_| ());
            }
        };
        if profile.is_empty() && session.is_empty() {
            return Ok(());
        }
        let merged = self.merge(user, query, &profile, &session).await;
        match merged {
            Ok((listens, queried)) => {
                tracing::info!(
                    user,
                    profile_fields = profile.len() / 2,
                    session_listens = session.len(),
                    "adopted keys of the old Redis layout"
                );
                state.listens = listens;
                if let Some(reply) = queried {
                    let listens = std::mem::take(&mut state.listens);
                    *state = Self::profile_state(reply)?;
                    state.listens = listens;
                }
                Ok(())
            }
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
