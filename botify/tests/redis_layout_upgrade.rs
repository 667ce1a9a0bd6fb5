//! An upgrade keeps every profile: keys of the layout before the Redis
//! Cluster hash tags (`{ns}:user:<id>:profile`, `…:session`), written here
//! with raw Redis commands as the old version wrote them, are adopted on
//! each user's next session, on one Redis and on a Redis Cluster. The
//! memory recommender reads the adopted profile back (its favourite artist
//! follows the user's whole history), old and new counts add up, an old
//! replica still writing the old layout during a rolling upgrade loses
//! nothing, and the old keys are gone.
//!
//! Needs `redis-server` and `redis-cli` (scripts/test installs them).

use std::collections::HashMap;

use botify::recommenders::Memory;
use botify::state::RedisStore;
use redis::ConnectionLike;
use testkit::{test_config, RedisCluster, RedisServer, TestApp};

const USERS: u64 = 12;
/// Old-layout profile of every user: (artist, listen-time sum, listens).
const OLD_ARTISTS: [(u32, f64, u64); 2] = [(3, 2.25, 3), (7, 0.5, 2)];
/// The old favourite's recorded mean (artist 3's: 2.25 / 3).
const OLD_FAVOURITE: (u32, f64) = (3, 0.75);
/// An open session under the old layout: its listens, oldest first.
const OLD_SESSION: [(u32, f64); 2] = [(40, 1.0), (61, 0.25)];

fn write_old_layout(redis: &mut dyn ConnectionLike, namespace: &str, user: u64) {
    let profile = RedisStore::legacy_profile_key(namespace, user);
    for (artist, sum, count) in OLD_ARTISTS {
        let _: () = redis::cmd("HSET")
            .arg(&profile)
            .arg(RedisStore::sum_field(artist))
            .arg(sum)
            .arg(RedisStore::count_field(artist))
            .arg(count)
            .query(redis)
            .unwrap();
    }
    let _: () = redis::cmd("HSET")
        .arg(&profile)
        .arg(RedisStore::FAVOURITE_FIELD)
        .arg(RedisStore::encode_favourite(OLD_FAVOURITE))
        .query(redis)
        .unwrap();
    let session = RedisStore::legacy_session_key(namespace, user);
    for (track, time) in OLD_SESSION {
        let entry = RedisStore::encode_listen(botify::state::Listen { track, time });
        let _: () = redis::cmd("RPUSH")
            .arg(&session)
            .arg(entry)
            .query(redis)
            .unwrap();
    }
}

fn profile(redis: &mut dyn ConnectionLike, namespace: &str, user: u64) -> HashMap<String, String> {
    redis::cmd("HGETALL")
        .arg(RedisStore::profile_key(namespace, user))
        .query(redis)
        .unwrap()
}

fn exists(redis: &mut dyn ConnectionLike, key: String) -> bool {
    redis::cmd("EXISTS").arg(key).query::<u32>(redis).unwrap() == 1
}

/// (sum, count) of `artist` in a profile; (0, 0) when absent.
fn stats(profile: &HashMap<String, String>, artist: u32) -> (f64, u64) {
    let field = |name: String| profile.get(&name).map_or(0.0, |v| v.parse().unwrap());
    (
        field(RedisStore::sum_field(artist)),
        field(RedisStore::count_field(artist)) as u64,
    )
}

async fn upgrade_keeps_every_profile(url: String, cluster: bool, redis: &mut dyn ConnectionLike) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &["memory"]);
    config.redis_url = Some(url);
    config.redis_cluster = cluster;
    let namespace = config.redis_namespace.clone();
    for user in 0..USERS {
        write_old_layout(redis, &namespace, user);
    }
    let app = TestApp::spawn(&config).await;
    let catalog = app.engine.catalog();

    for user in 0..USERS {
        // The session's first listen: artist 3 (the old favourite) for even
        // users, another artist for odd ones.
        let track = if user % 2 == 0 { 3 } else { 11 };
        let time = 0.5;
        let artist = catalog.artist_of(track);
        let recommended = app.next(user, track, time).await;
        assert!(
            !OLD_SESSION.iter().any(|&(t, _)| t == recommended),
            "user {user}: {recommended} was heard in the old session"
        );

        let adopted = profile(redis, &namespace, user);
        for (old_artist, old_sum, old_count) in OLD_ARTISTS {
            let (listened_sum, listened) = if old_artist == artist {
                (time, 1)
            } else {
                (0.0, 0)
            };
            let (sum, count) = stats(&adopted, old_artist);
            assert_eq!(count, old_count + listened, "user {user}: {adopted:?}");
            assert!(
                (sum - old_sum - listened_sum).abs() < 1e-9,
                "user {user}: {adopted:?}"
            );
        }
        // The favourite the memory recommender concluded from what the store
        // read back: the old favourite, then this listen by its own rule.
        let (sum, count) = stats(&adopted, artist);
        let expected = Memory::favourite_after(Some(OLD_FAVOURITE), artist, sum / count as f64);
        let favourite =
            RedisStore::decode_favourite(&adopted[RedisStore::FAVOURITE_FIELD]).unwrap();
        assert_eq!(favourite.0, expected.0, "user {user}: {adopted:?}");
        assert!(
            (favourite.1 - expected.1).abs() < 1e-9,
            "user {user}: {adopted:?}"
        );

        // The open session continues: old listens first.
        let session: Vec<String> = redis::cmd("LRANGE")
            .arg(RedisStore::session_key(&namespace, user))
            .arg(0)
            .arg(-1)
            .query(redis)
            .unwrap();
        let listens: Vec<(u32, f64)> = session
            .iter()
            .map(|e| {
                let listen = RedisStore::parse_listen(e).unwrap();
                (listen.track, listen.time)
            })
            .collect();
        let mut expected_listens = OLD_SESSION.to_vec();
        expected_listens.push((track, time));
        assert_eq!(listens, expected_listens, "user {user}");

        for old in [
            RedisStore::legacy_profile_key(&namespace, user),
            RedisStore::legacy_session_key(&namespace, user),
        ] {
            assert!(!exists(redis, old.clone()), "{old} is still there");
        }
    }

    // A later request of the session adds its listen once; an old replica
    // writing the old layout meanwhile (a rolling upgrade) is adopted, added
    // to the new counts, at the user's next session.
    let user = 0;
    let before = stats(&profile(redis, &namespace, user), 7);
    app.next(user, 3, 1.0).await;
    let _: () = redis::cmd("HINCRBY")
        .arg(RedisStore::legacy_profile_key(&namespace, user))
        .arg(RedisStore::count_field(7))
        .arg(4)
        .query(redis)
        .unwrap();
    assert_eq!(stats(&profile(redis, &namespace, user), 7), before);
    app.last(user, 3, 1.0).await;
    app.next(user, 7, 0.0).await;
    assert_eq!(
        stats(&profile(redis, &namespace, user), 7).1,
        before.1 + 4 + 1
    );
    assert!(!exists(
        redis,
        RedisStore::legacy_profile_key(&namespace, user)
    ));

    // A user with nothing under the old layout starts from scratch.
    let newcomer = 1_000;
    app.next(newcomer, 3, 0.5).await;
    let fresh = profile(redis, &namespace, newcomer);
    assert_eq!(stats(&fresh, catalog.artist_of(3)).1, 1, "{fresh:?}");
    assert_eq!(
        app.metric("botify_fallbacks_total{reason=\"state_unavailable\"}")
            .await,
        0.0
    );
    app.stop().await;
}

#[actix_web::test]
async fn profiles_of_the_old_layout_are_adopted_on_one_redis() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    upgrade_keeps_every_profile(server.url(), false, &mut redis).await;
}

#[actix_web::test]
async fn profiles_of_the_old_layout_are_adopted_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let mut redis = cluster.connection();
    upgrade_keeps_every_profile(cluster.url(), true, &mut redis).await;
}
