//! State in a real Redis: layout, expiry, faults and recovery.

mod common;

use std::time::{Duration, Instant};

use botify::state::{RedisSettings, RedisStore, StateQuery, StateStore, StateUpdate, Ttls};
use common::{test_config, RedisServer, TestApp};
use redis::Commands;

fn store(redis: &RedisServer, namespace: &str) -> RedisStore {
    RedisStore::new(RedisSettings {
        url: redis.url(),
        namespace: namespace.into(),
        timeout: Duration::from_millis(200),
        ttls: Ttls::default(),
    })
    .unwrap()
}

#[tokio::test]
async fn redis_store_keeps_heard_tracks_and_memory_fields() {
    let redis = RedisServer::start();
    let store = store(&redis, "t1");
    for track in [3, 5, 3] {
        let update = StateUpdate {
            heard: Some(track),
            artist_listen: Some((6, 0.5)),
            ..Default::default()
        };
        store.apply(77, &update).await.unwrap();
    }
    let query = StateQuery {
        memory: true,
        artist: Some(6),
    };
    let state = store.load(77, query).await.unwrap();
    let mut heard = state.heard.clone();
    heard.sort();
    assert_eq!(heard, vec![3, 5]);
    assert_eq!(state.artist.count, 3);
    assert!((state.artist.sum - 1.5).abs() < 1e-9);
    let end = StateUpdate {
        end_session: true,
        ..Default::default()
    };
    store.apply(77, &end).await.unwrap();
    let state = store.load(77, query).await.unwrap();
    assert!(state.heard.is_empty(), "session cleared");
    assert_eq!(state.artist.count, 3, "profile kept");
}

#[actix_web::test]
async fn keys_are_namespaced_and_expire() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &["memory"]);
    config.redis_url = Some(redis.url());
    config.redis_namespace = "ns".into();
    let app = TestApp::spawn(&config).await;
    let rec = app.next(5, 0, 1.0).await;
    app.next(5, rec, 0.9).await;
    let mut conn = redis.connection();
    let mut keys: Vec<String> = conn.keys("*").unwrap();
    keys.sort();
    assert_eq!(keys, vec!["ns:user:5:profile", "ns:user:5:session"]);
    for key in &keys {
        let ttl: i64 = conn.ttl(key).unwrap();
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
    }
    let fields: Vec<String> = conn.hkeys("ns:user:5:session").unwrap();
    let heard = fields.iter().filter(|f| f.starts_with("t:")).count();
    assert_eq!(heard, 2, "{fields:?}");
    app.last(5, rec, 0.2).await;
    let keys: Vec<String> = conn.keys("*").unwrap();
    assert_eq!(
        keys,
        vec!["ns:user:5:profile"],
        "session keys cleared on /last"
    );
    app.stop().await;
}

#[actix_web::test]
async fn redis_outage_falls_back_fast_and_recovers_without_restart() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &["sticky_artist"]);
    config.redis_url = Some(redis.url());
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
        let written: bool = redis.connection().exists("botify:user:3:session").unwrap();
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
