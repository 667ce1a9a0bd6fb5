//! The control plane across replicas: filters, added tracks and the served
//! models version live in Redis (or, embedded, in a file in `--data-dir`),
//! every replica follows a change within a second, a restart keeps them,
//! and a Redis fault never fails a request.

use std::time::{Duration, Instant};

use botify::config::Config;
use botify::control::RedisControl;
use redis::Commands;
use testkit::app::assert_error;
use testkit::{read_events, redis_config, test_config, RedisServer, TestApp};

const TOKEN: &str = "s3cret";
/// How soon every replica must serve a change.
const CONVERGED: Duration = Duration::from_secs(1);

fn replica_config(dir: &std::path::Path, redis: &RedisServer) -> Config {
    let mut config = redis_config(dir, redis, &["random"]);
    config.admin_token = Some(TOKEN.into());
    config
}

/// The same configuration with a log folder of its own: another replica.
fn replica(config: &Config, name: &str) -> Config {
    let mut config = config.clone();
    config.log_dir = config.log_dir.join(name);
    config
}

async fn control_version(app: &TestApp) -> u64 {
    let (_, health) = app.get("/health").await;
    health["control_plane"]["version"].as_u64().unwrap()
}

/// Waits until `app` serves control plane `version`; the time it took.
async fn until_version(app: &TestApp, version: u64, within: Duration) -> Duration {
    let started = Instant::now();
    while control_version(app).await != version {
        assert!(
            started.elapsed() < within,
            "{} serves control plane {}, not {version}",
            app.base,
            control_version(app).await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// How many of `requests` answers of `/next` on `app` are by `artist`.
async fn served_by(app: &TestApp, artist: &str, requests: u64) -> usize {
    let catalog = app.engine.catalog();
    let mut by_artist = 0;
    for user in 0..requests {
        let track = app.next(user, (user % 200) as u32, 0.5).await;
        by_artist += usize::from(catalog.artist_name(catalog.artist_of(track)) == artist);
    }
    by_artist
}

#[actix_web::test]
async fn replicas_on_one_redis_follow_a_change_within_a_second_and_keep_it_across_restarts() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = replica_config(dir.path(), &redis);
    let one = TestApp::spawn(&replica(&config, "one")).await;
    let two = TestApp::spawn(&replica(&config, "two")).await;
    assert_eq!(control_version(&two).await, 0, "nothing changed yet");
    assert!(
        served_by(&two, "artist3", 300).await > 0,
        "random serves artist3 before it is blocked"
    );

    // Block an artist on replica one: replica two stops serving it.
    let (status, body) = one
        .put_filters(TOKEN, r#"{"blocked_artists": ["artist3"]}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    let waited = until_version(&two, 1, CONVERGED).await;
    assert!(waited < CONVERGED, "replica two followed in {waited:?}");
    assert_eq!(served_by(&two, "artist3", 300).await, 0);

    // Add a track on replica one: replica two serves it.
    one.add_new_song(TOKEN, 4).await;
    let started = Instant::now();
    while two.get("/track/200").await.0 != 200 {
        assert!(started.elapsed() < CONVERGED, "track 200 is a 404 on two");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, health) = two.get("/health").await;
    assert_eq!(health["control_plane"]["version"], 2);
    assert_eq!(health["control_plane"]["store"], "redis");

    // Both replicas restart: the control plane is still there.
    one.stop().await;
    two.stop().await;
    let one = TestApp::spawn(&replica(&config, "one")).await;
    let two = TestApp::spawn(&replica(&config, "two")).await;
    for app in [&one, &two] {
        until_version(app, 2, CONVERGED).await;
        let (status, track) = app.get("/track/200").await;
        assert_eq!((status, track["title"].as_str()), (200, Some("new song")));
        let (_, filters) = app.admin("GET", "/admin/filters", Some(TOKEN), "").await;
        assert_eq!(filters["blocked_artists"], serde_json::json!(["artist3"]));
    }
    assert_eq!(served_by(&one, "artist3", 300).await, 0);

    // A change whose message was missed (written without a publication)
    // still reaches every replica, through the version poll.
    let mut conn = redis.connection();
    let key = RedisControl::key(&config.redis_namespace);
    let doc: String = conn.hget(&key, "doc").unwrap();
    let doc = doc.replace("artist3", "artist5");
    let _: () = conn.hset(&key, "doc", doc).unwrap();
    let _: () = conn.hincr(&key, "version", 1).unwrap();
    for app in [&one, &two] {
        until_version(app, 3, CONVERGED).await;
        let (_, filters) = app.admin("GET", "/admin/filters", Some(TOKEN), "").await;
        assert_eq!(filters["blocked_artists"], serde_json::json!(["artist5"]));
    }
    one.stop().await;
    two.stop().await;
}

#[actix_web::test]
async fn a_redis_fault_keeps_the_last_control_plane_and_fails_no_request() {
    let port = testkit::free_port();
    let mut redis = RedisServer::start_on(port);
    let dir = tempfile::tempdir().unwrap();
    let config = replica_config(dir.path(), &redis);
    let one = TestApp::spawn(&replica(&config, "one")).await;
    let (status, _) = one
        .put_filters(TOKEN, r#"{"blocked_artists": ["artist3"]}"#)
        .await;
    assert_eq!(status, 200);

    redis.kill();
    // Every request is answered, still without the blocked artist.
    assert_eq!(served_by(&one, "artist3", 300).await, 0);
    assert_eq!(control_version(&one).await, 1, "the last known one serves");
    let refused = one.put_filters(TOKEN, r#"{"blocked_tracks": [1]}"#).await;
    assert_error(refused, 409, "control_plane_unavailable");
    let (_, filters) = one.admin("GET", "/admin/filters", Some(TOKEN), "").await;
    assert_eq!(
        filters["blocked_tracks"],
        serde_json::json!([]),
        "unchanged"
    );
    // The next poll (every 250 ms) fails and is counted; allow a few.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while one
        .metric("botify_control_plane_errors_total{op=\"poll\"}")
        .await
        == 0.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "failed polls are counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Redis comes back empty (it persisted nothing): the replica writes back
    // what it serves, and a replica started now gets it.
    let _redis = RedisServer::start_on(port);
    let started = Instant::now();
    let two = loop {
        let two = TestApp::spawn(&replica(&config, "two")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, filters) = two.admin("GET", "/admin/filters", Some(TOKEN), "").await;
        if filters["blocked_artists"] == serde_json::json!(["artist3"]) {
            break two;
        }
        two.stop().await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the control plane was never written back"
        );
    };
    assert_eq!(served_by(&two, "artist3", 300).await, 0);
    one.stop().await;
    two.stop().await;
}

#[actix_web::test]
async fn embedded_mode_keeps_the_control_plane_in_the_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &["random"]);
    config.admin_token = Some(TOKEN.into());
    config.data_dir = Some(dir.path().join("data"));
    let app = TestApp::spawn(&config).await;
    let (status, _) = app.put_filters(TOKEN, r#"{"blocked_tracks": [7]}"#).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .add_track(TOKEN, r#"{"artist": "artist1", "title": "kept"}"#)
        .await;
    assert_eq!(status, 201);
    app.stop().await;
    assert!(dir.path().join("data/control.json").is_file());

    // Loaded before the restarted server answers anything.
    let app = TestApp::spawn(&config).await;
    let (_, health) = app.get("/health").await;
    assert_eq!(health["control_plane"]["version"], 2);
    assert_eq!(health["control_plane"]["store"], "file");
    assert_eq!(app.get("/track/200").await.0, 200);
    let (_, filters) = app.admin("GET", "/admin/filters", Some(TOKEN), "").await;
    assert_eq!(filters["blocked_tracks"], serde_json::json!([7]));
    app.stop().await;
}

/// Writes `top_tracks.json` aside and renames it in, as `analysis train`
/// writes every file.
fn train(models: &std::path::Path, top: &[u32]) {
    std::fs::create_dir_all(models).unwrap();
    let aside = models.join("top_tracks.json.tmp");
    std::fs::write(&aside, serde_json::to_string(top).unwrap()).unwrap();
    std::fs::rename(aside, models.join("top_tracks.json")).unwrap();
}

#[actix_web::test]
async fn every_event_carries_the_model_version_and_a_reload_reaches_every_replica() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = replica_config(dir.path(), &redis);
    train(&config.models, &[1, 2, 3]);
    let first = botify::models::fingerprint(&config.models)
        .unwrap()
        .unwrap();
    let one = TestApp::spawn(&replica(&config, "one")).await;
    let two = TestApp::spawn(&replica(&config, "two")).await;
    for user in 0..20 {
        let track = one.next(user, 0, 1.0).await;
        two.last(user, track, 0.5).await;
    }

    // Retrained; one replica is told to reload, the other follows.
    std::thread::sleep(Duration::from_millis(20));
    train(&config.models, &[4, 5, 6, 7]);
    let second = botify::models::fingerprint(&config.models)
        .unwrap()
        .unwrap();
    assert_ne!(first, second, "a new training run is a new version");
    let (status, body) = one.admin("POST", "/admin/reload", Some(TOKEN), "").await;
    assert_eq!(
        (status, body["model_version"].as_str()),
        (200, Some(second.as_str()))
    );
    let started = Instant::now();
    while two.get("/health").await.1["model_version"] != second.as_str() {
        assert!(started.elapsed() < CONVERGED, "replica two never reloaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for user in 20..40 {
        let track = two.next(user, 0, 1.0).await;
        one.last(user, track, 0.5).await;
    }
    one.stop().await;
    two.stop().await;

    let mut events = read_events(&config.log_dir.join("one"));
    events.extend(read_events(&config.log_dir.join("two")));
    assert_eq!(events.len(), 80);
    for event in &events {
        let expected = if event.user < 20 { &first } else { &second };
        assert_eq!(
            event.model_version.as_ref(),
            Some(expected),
            "user {}",
            event.user
        );
    }
}
