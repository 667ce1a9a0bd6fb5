//! An upgrade keeps every profile: keys of the layout before the Redis
//! Cluster hash tags (`{ns}:user:<id>:profile`, `…:session`), written here
//! with raw Redis commands as the old version wrote them, are adopted on
//! each user's next session, on one Redis and on a Redis Cluster. The
//! memory recommender reads the adopted profile back (its favourite artist
//! follows the user's whole history), old and new counts add up, an old
//! replica still writing the old layout during a rolling upgrade loses
//! nothing, and the old keys are gone. `botify migrate` moves them all at
//! once, adding to keys a user already has, moves nothing the second time,
//! and leaves a marker after which new replicas stop looking.
//!
//! Needs `redis-server` and `redis-cli` (scripts/test installs them).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

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

        let adopted = testkit::redis::profile(redis, &namespace, user);
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
        let listens = testkit::redis::session_listens(redis, &namespace, user);
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
    let before = stats(&testkit::redis::profile(redis, &namespace, user), 7);
    app.next(user, 3, 1.0).await;
    let _: () = redis::cmd("HINCRBY")
        .arg(RedisStore::legacy_profile_key(&namespace, user))
        .arg(RedisStore::count_field(7))
        .arg(4)
        .query(redis)
        .unwrap();
    assert_eq!(
        stats(&testkit::redis::profile(redis, &namespace, user), 7),
        before
    );
    app.last(user, 3, 1.0).await;
    app.next(user, 7, 0.0).await;
    assert_eq!(
        stats(&testkit::redis::profile(redis, &namespace, user), 7).1,
        before.1 + 4 + 1
    );
    assert!(!exists(
        redis,
        RedisStore::legacy_profile_key(&namespace, user)
    ));

    // A user with nothing under the old layout starts from scratch.
    let newcomer = 1_000;
    app.next(newcomer, 3, 0.5).await;
    let fresh = testkit::redis::profile(redis, &namespace, newcomer);
    assert_eq!(stats(&fresh, catalog.artist_of(3)).1, 1, "{fresh:?}");
    assert_eq!(
        app.metric("botify_fallbacks_total{reason=\"state_unavailable\"}")
            .await,
        0.0
    );

    // Once `botify migrate` has run, a replica started afterwards reads its
    // marker and no longer looks for old keys at session starts; one
    // started before still does.
    let report = migrate(&config.redis_url.clone().unwrap(), cluster);
    assert!(report.contains("of 0 users"), "{report}");
    assert!(exists(redis, RedisStore::layout_marker_key(&namespace)));
    let after = TestApp::spawn(&config).await;
    let (late, later) = (2_000, 2_001);
    write_old_layout(redis, &namespace, late);
    write_old_layout(redis, &namespace, later);
    after.next(late, 3, 0.5).await;
    assert!(
        exists(redis, RedisStore::legacy_profile_key(&namespace, late)),
        "looked anyway"
    );
    app.next(later, 3, 0.5).await;
    assert!(
        !exists(redis, RedisStore::legacy_profile_key(&namespace, later)),
        "never adopted"
    );
    after.stop().await;
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

/// `botify --redis-url … migrate`: its report line.
fn migrate(url: &str, cluster: bool) -> String {
    let mut command = Command::new(Path::new(env!("CARGO_BIN_EXE_botify")));
    command.args(["--redis-url", url]);
    if cluster {
        command.arg("--redis-cluster");
    }
    let output = command.arg("migrate").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "botify migrate: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn migrate_moves_every_key(url: String, cluster: bool, redis: &mut dyn ConnectionLike) {
    let namespace = "botify";
    for user in 0..USERS {
        write_old_layout(redis, namespace, user);
    }
    // User 0 already has a new-layout profile (served since the upgrade):
    // artist 3 heard 5 times, favourite artist 9 at a mean of 0.1.
    let _: () = redis::cmd("HSET")
        .arg(RedisStore::profile_key(namespace, 0))
        .arg(RedisStore::count_field(3))
        .arg(5)
        .arg(RedisStore::sum_field(3))
        .arg(1.0)
        .arg(RedisStore::FAVOURITE_FIELD)
        .arg(RedisStore::encode_favourite((9, 0.1)))
        .query(redis)
        .unwrap();

    let report = migrate(&url, cluster);
    assert!(
        report.contains(&format!(
            "of {USERS} users ({USERS} profiles, {USERS} sessions)"
        )),
        "{report}"
    );
    for user in 0..USERS {
        let moved = testkit::redis::profile(redis, namespace, user);
        let (had_sum, had) = if user == 0 { (1.0, 5) } else { (0.0, 0) };
        let (old_artist, old_sum, old_count) = OLD_ARTISTS[0];
        let (sum, count) = stats(&moved, old_artist);
        assert_eq!(count, old_count + had, "user {user}: {moved:?}");
        assert!(
            (sum - old_sum - had_sum).abs() < 1e-9,
            "user {user}: {moved:?}"
        );
        assert_eq!(stats(&moved, OLD_ARTISTS[1].0).1, OLD_ARTISTS[1].2);
        // The favourite with the higher recorded mean: the old one.
        let favourite = RedisStore::decode_favourite(&moved[RedisStore::FAVOURITE_FIELD]).unwrap();
        assert_eq!(favourite, OLD_FAVOURITE, "user {user}");
        let session = testkit::redis::session_listens(redis, namespace, user);
        assert_eq!(session.len(), OLD_SESSION.len(), "user {user}: {session:?}");
        for old in [
            RedisStore::legacy_profile_key(namespace, user),
            RedisStore::legacy_session_key(namespace, user),
        ] {
            assert!(!exists(redis, old.clone()), "{old} is still there");
        }
    }
    assert!(exists(redis, RedisStore::layout_marker_key(namespace)));
    let again = migrate(&url, cluster);
    assert!(again.contains("of 0 users"), "{again}");
}

#[test]
fn botify_migrate_moves_every_key_of_the_old_layout_on_one_redis() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    migrate_moves_every_key(server.url(), false, &mut redis);
}

#[test]
fn botify_migrate_moves_every_key_of_the_old_layout_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let mut redis = cluster.connection();
    migrate_moves_every_key(cluster.url(), true, &mut redis);
}
