//! State in a real Redis: layout, expiry, faults and recovery.

use std::time::{Duration, Instant};

use botify::state::{
    Listen, RedisSettings, RedisStore, StateQuery, StateStore, StoreError, Ttls, UserState,
    MAX_SESSION_LISTENS, TRIM_SLACK,
};
use redis::Commands;
use testkit::{redis_config, RedisServer, TestApp};

fn store(redis: &RedisServer, namespace: &str) -> RedisStore {
    RedisStore::new(RedisSettings {
        url: redis.url(),
        cluster: false,
        namespace: namespace.into(),
        timeout: Duration::from_millis(200),
        ttls: Ttls::default(),
    })
    .unwrap()
}

/// Records `track`, half heard, in `user`'s session (no profile asked).
async fn record(store: &RedisStore, user: u64, track: u32) -> Result<UserState, StoreError> {
    let listen = Listen { track, time: 0.5 };
    store.record(user, listen, StateQuery::default()).await
}

// The behaviour every store must have, here against a real Redis.
#[path = "../src/state/contract.rs"]
mod contract;

contract::tests! {
    setup: { let redis = RedisServer::start(); }
    store: store(&redis, "contract")
}

#[tokio::test]
async fn a_long_session_list_is_trimmed_in_batches() {
    let redis = RedisServer::start();
    let store = store(&redis, "t5");
    let mut conn = redis.connection();
    let length = |conn: &mut redis::Connection| -> usize {
        conn.llen(RedisStore::session_key("t5", 1)).unwrap()
    };
    let limit = MAX_SESSION_LISTENS + TRIM_SLACK;
    for track in 0..limit as u32 {
        record(&store, 1, track).await.unwrap();
    }
    assert_eq!(length(&mut conn), limit, "no trim up to the slack");
    let state = record(&store, 1, 0).await.unwrap();
    assert_eq!(length(&mut conn), MAX_SESSION_LISTENS, "trimmed past it");
    assert_eq!(state.listens.len(), MAX_SESSION_LISTENS);
}

#[tokio::test]
async fn corrupt_stored_state_is_an_error_not_a_panic() {
    let redis = RedisServer::start();
    let store = store(&redis, "t4");
    let mut conn = redis.connection();
    let _: () = conn.rpush("t4:user:{1}:session", "not a listen").unwrap();
    let err = record(&store, 1, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    let _: () = conn.hset("t4:user:{2}:profile", "fav", "garbage").unwrap();
    let query = StateQuery {
        profile_artist: Some(3),
    };
    let listen = Listen {
        track: 1,
        time: 0.5,
    };
    let err = store.record(2, listen, query).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

#[actix_web::test]
async fn keys_are_namespaced_and_expire() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = redis_config(dir.path(), &redis, &["memory"]);
    config.redis_namespace = "ns".into();
    let app = TestApp::spawn(&config).await;
    let rec = app.next(5, 0, 1.0).await;
    app.next(5, rec, 0.9).await;
    let mut conn = redis.connection();
    let mut keys: Vec<String> = conn.keys("*").unwrap();
    keys.sort();
    assert_eq!(keys, vec!["ns:user:{5}:profile", "ns:user:{5}:session"]);
    for key in &keys {
        let ttl: i64 = conn.ttl(key).unwrap();
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
    }
    let listens: Vec<String> = conn.lrange("ns:user:{5}:session", 0, -1).unwrap();
    assert_eq!(listens, vec!["0 1".to_string(), format!("{rec} 0.9")]);
    app.last(5, rec, 0.2).await;
    let keys: Vec<String> = conn.keys("*").unwrap();
    assert_eq!(
        keys,
        vec!["ns:user:{5}:profile"],
        "session keys cleared on /last"
    );
    app.stop().await;
}

#[actix_web::test]
async fn redis_outage_falls_back_fast_and_recovers_without_restart() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let dir = tempfile::tempdir().unwrap();
    let config = redis_config(dir.path(), &redis, &["sticky_artist"]);
    let app = TestApp::spawn(&config).await;
    app.next(1, 0, 1.0).await;
    assert_eq!(
        app.metric("botify_fallbacks_total{reason=\"state_unavailable\"}")
            .await,
        0.0
    );

    redis.kill();
    for i in 0..20 {
        let started = Instant::now();
        app.next(2, i, 0.5).await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(300),
            "request {i} took {took:?}"
        );
    }
    let fallbacks = app
        .metric("botify_fallbacks_total{reason=\"state_unavailable\"}")
        .await;
    assert!(fallbacks >= 20.0, "fallbacks counted: {fallbacks}");
    let (status, health) = app.get("/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("degraded")));

    let redis = RedisServer::start_on(port);
    // Past the cooldown the service probes Redis again by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        app.next(3, 0, 1.0).await;
        let written: bool = redis
            .connection()
            .exists("botify:user:{3}:session")
            .unwrap();
        if written {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "state never written after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, health) = app.get("/health").await;
    assert_eq!(health["status"], "ok");
    app.stop().await;
}

/// Listeners' long-term profiles live in Redis for 30 days; with the
/// append-only file the deployment configures, a Redis restart in the
/// middle of traffic loses none of them: listeners keep listening while
/// Redis goes down and comes back, every request is answered, and
/// afterwards every listener's profile holds at least what it held before
/// the restart, and grows again as soon as Redis is back.
#[actix_web::test]
async fn profiles_survive_a_restart_of_a_persistent_redis_in_the_middle_of_a_run() {
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::rc::Rc;

    let data = tempfile::tempdir().unwrap();
    let port = testkit::free_port();
    let mut redis = RedisServer::start_persistent_on(port, data.path());
    let dir = tempfile::tempdir().unwrap();
    let config = redis_config(dir.path(), &redis, &["memory"]);
    let namespace = config.redis_namespace.clone();
    let app = Rc::new(TestApp::spawn(&config).await);
    let users: Vec<u64> = (0..40).collect();

    // The run: every listener plays session after session until told to stop.
    let running = Rc::new(Cell::new(true));
    let sessions = Rc::new(Cell::new(0u64));
    let run = {
        let (app, running, sessions, users) = (
            app.clone(),
            running.clone(),
            sessions.clone(),
            users.clone(),
        );
        actix_web::rt::spawn(async move {
            while running.get() {
                for &user in &users {
                    // `next` and `last` assert a 200: no request fails.
                    let next = app.next(user, (user % 20) as u32, 1.0).await;
                    let next = app.next(user, next, 0.8).await;
                    app.last(user, next, 0.3).await;
                }
                sessions.set(sessions.get() + users.len() as u64);
            }
        })
    };
    let listens = |profile: &HashMap<String, String>| -> u64 {
        profile
            .iter()
            .filter(|(k, _)| k.starts_with(RedisStore::COUNT_FIELD_PREFIX))
            .map(|(_, v)| v.parse::<u64>().unwrap())
            .sum()
    };
    let profiles = |conn: &mut redis::Connection| -> Vec<HashMap<String, String>> {
        users
            .iter()
            .map(|&user| {
                conn.hgetall(RedisStore::profile_key(&namespace, user))
                    .unwrap()
            })
            .collect()
    };
    let wait_sessions = |at_least: u64| {
        let sessions = sessions.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while sessions.get() < at_least {
                assert!(Instant::now() < deadline, "the run stalled");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_sessions(2 * users.len() as u64).await;

    // Mid-run: what the listeners hold now (writes landing after this read
    // only add), then SIGTERM (Redis flushes its append-only file) and back.
    let before = profiles(&mut redis.connection());
    assert!(
        before
            .iter()
            .all(|p| p.contains_key(RedisStore::FAVOURITE_FIELD)),
        "every listener has a profile before the restart"
    );
    redis.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let redis = RedisServer::start_persistent_on(port, data.path());
    // The run goes on until botify, reconnected by itself, has added to
    // every restored profile.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = profiles(&mut redis.connection());
        if now
            .iter()
            .zip(&before)
            .all(|(n, b)| listens(n) > listens(b))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "botify never wrote to the restarted Redis for some listener"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.set(false);
    run.await.unwrap();

    let after = profiles(&mut redis.connection());
    for ((user, before), after) in users.iter().zip(&before).zip(&after) {
        assert!(
            after.contains_key(RedisStore::FAVOURITE_FIELD),
            "user {user} lost the favourite: {after:?}"
        );
        for (field, value) in before {
            if field.starts_with(RedisStore::COUNT_FIELD_PREFIX) {
                let kept: u64 = after.get(field).map_or(0, |v| v.parse().unwrap());
                assert!(
                    kept >= value.parse::<u64>().unwrap(),
                    "user {user}, {field}: {kept} listens after the restart, {value} before"
                );
            }
        }
    }
    Rc::try_unwrap(app)
        .ok()
        .expect("the run is over")
        .stop()
        .await;
}
