//! The `memory` recommender's state in real Redis, and the admin API.

use std::collections::HashMap;

use redis::Commands;
use testkit::app::assert_error;
use testkit::{test_config, RedisServer, TestApp};

/// The stored state of `user`: the session's listens as `(track, time)`,
/// oldest first, and the profile hash.
fn stored(redis: &RedisServer, user: u64) -> (Vec<(u32, f64)>, HashMap<String, String>) {
    let mut conn = redis.connection();
    let entries: Vec<String> = conn
        .lrange(format!("botify:user:{{{user}}}:session"), 0, -1)
        .unwrap();
    let listens = entries
        .iter()
        .map(|e| {
            let (track, time) = e.split_once(' ').expect("a \"track time\" entry");
            (track.parse().unwrap(), time.parse().unwrap())
        })
        .collect();
    let profile: HashMap<String, String> = conn
        .hgetall(format!("botify:user:{{{user}}}:profile"))
        .unwrap();
    (listens, profile)
}

#[actix_web::test]
async fn memory_walks_a_session_with_state_in_redis() {
    let redis = RedisServer::start();
    let app = TestApp::serving_on(&redis, &["memory"]).await;
    let user = 9;

    // Step 1: the first track (0, artist0) fully listened: liked, and the
    // first listen ever makes artist0 the favourite.
    let r1 = app.next(user, 0, 1.0).await;
    let (listens, profile) = stored(&redis, user);
    assert_eq!(listens, vec![(0, 1.0)]);
    assert_eq!(profile["fav"], "0 1");
    assert_eq!(
        (profile["s:0"].as_str(), profile["n:0"].as_str()),
        ("1", "1")
    );
    // Cold start: the anchor's neighbour is another track of artist0.
    assert_eq!(r1 % 20, 0, "artist0's tracks are 0, 20, 40, …");

    // Step 2: r1 skipped (time 0.1): a miss, the anchor stays on track 0.
    let r2 = app.next(user, r1, 0.1).await;
    let (listens, profile) = stored(&redis, user);
    assert_eq!(listens, vec![(0, 1.0), (r1, 0.1)]);
    assert_eq!(profile["n:0"], "2");
    assert_eq!(profile["fav"], "0 0.55", "artist0's mean is now (1+0.1)/2");
    assert_eq!(r2 % 20, 0, "still anchored on track 0, by artist0");
    assert_ne!(r2, r1);

    // Step 3: a track of artist 3 liked at 0.9: artist0's mean 0.55 is
    // beaten, artist 3 becomes the favourite and track 3 the anchor.
    let r3 = app.next(user, 3, 0.9).await;
    let (listens, profile) = stored(&redis, user);
    assert_eq!(listens, vec![(0, 1.0), (r1, 0.1), (3, 0.9)]);
    assert_eq!(profile["fav"], "3 0.9");
    assert_eq!(r3 % 20, 3, "anchor 3: a neighbour by artist 3");

    // /last: the session goes, the long-term profile stays.
    app.last(user, r3, 0.4).await;
    let (listens, profile) = stored(&redis, user);
    assert!(listens.is_empty());
    assert_eq!(
        profile["n:3"], "2",
        "the last listen counts toward the artist mean"
    );
    assert_eq!(profile["fav"], "3 0.65", "the favourite's mean follows");
    // Steps 2, 3 and /last changed the favourite; step 1 set it in the
    // first pipeline (HSETNX), so it needed no second round trip.
    assert_eq!(app.metric("botify_state_updates_total").await, 3.0);
    app.stop().await;
}

#[actix_web::test]
async fn concurrent_requests_for_one_user_never_corrupt_state() {
    let redis = RedisServer::start();
    let app = TestApp::serving_on(&redis, &["memory"]).await;
    let requests = (0..64u32).map(|i| app.next(11, i % 200, if i % 2 == 0 { 1.0 } else { 0.2 }));
    futures_util::future::join_all(requests).await;
    // `stored` panics on any entry that is not a whole listen.
    let (listens, profile) = stored(&redis, 11);
    let mut heard: Vec<u32> = listens.iter().map(|&(track, _)| track).collect();
    heard.sort();
    assert_eq!(
        heard,
        (0..64).collect::<Vec<_>>(),
        "every listen recorded once"
    );
    let counted: u32 = profile
        .iter()
        .filter(|(k, _)| k.starts_with("n:"))
        .map(|(_, v)| v.parse::<u32>().unwrap())
        .sum();
    assert_eq!(counted, 64, "no artist increment lost");
    let (artist, mean) = profile["fav"].split_once(' ').unwrap();
    assert!(profile.contains_key(&format!("n:{artist}")), "{profile:?}");
    assert!(mean.parse::<f64>().is_ok(), "favourite intact: {profile:?}");
    // The user's state is still usable: read without a stateless fallback.
    app.next(11, 100, 1.0).await;
    assert_eq!(
        app.metric("botify_fallbacks_total{reason=\"state_unavailable\"}")
            .await,
        0.0
    );
    app.stop().await;
}

fn admin_config(dir: &std::path::Path) -> botify::config::Config {
    let mut config = test_config(dir, &["contextual"]);
    config.admin_token = Some("s3cret".into());
    config
}

#[actix_web::test]
async fn admin_needs_the_token_and_changes_nothing_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&admin_config(dir.path())).await;
    let filters = r#"{"blocked_tracks": [1]}"#;
    for token in [None, Some("wrong")] {
        assert_error(
            app.admin("PUT", "/admin/filters", token, filters).await,
            401,
            "unauthorized",
        );
        let (status, _) = app
            .admin(
                "POST",
                "/admin/tracks",
                token,
                r#"{"artist": "x", "title": "y"}"#,
            )
            .await;
        assert_eq!(status, 401);
    }
    assert!(app.engine.filters().blocked_tracks.is_empty());
    assert_eq!(app.engine.catalog().len(), 200);
    app.stop().await;
}

#[actix_web::test]
async fn admin_adds_tracks_and_sets_filters() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&admin_config(dir.path())).await;
    let token = "s3cret";
    let added = app.add_new_song(token, 3).await;
    assert_eq!(
        added["similar"][0], 3,
        "metadata neighbours at once: artist3's best"
    );
    let (status, _) = app.get("/track/200").await;
    assert_eq!(status, 200);
    assert_eq!(
        app.next(1, 200, 1.0).await % 20,
        3,
        "servable and neighboured"
    );

    // Block artist3 and track 23: neither is ever served again.
    let (status, _) = app
        .put_filters(
            token,
            r#"{"blocked_artists": ["artist3"], "blocked_tracks": [4]}"#,
        )
        .await;
    assert_eq!(status, 200);
    for user in 0..30 {
        let track = app.next(100 + user, 3, 1.0).await;
        assert!(
            track % 20 != 3 && track != 4,
            "served blocked track {track}"
        );
    }
    let (_, similar) = app.get("/similar/3?k=50").await;
    let similar: Vec<u64> = serde_json::from_value(similar["similar"].clone()).unwrap();
    assert!(
        similar.iter().all(|t| t % 20 != 3 && *t != 4),
        "{similar:?}"
    );
    assert_error(
        app.put_filters(token, r#"{"promote_rate": 3}"#).await,
        400,
        "invalid_filters",
    );

    // Unknown ids are refused, named, and change nothing.
    let unknown = r#"{"blocked_tracks": [99999999], "blocked_artists": ["artist3", "Nobody"]}"#;
    let answer = app.put_filters(token, unknown).await;
    let body = assert_error(answer, 404, "unknown_filter_entries");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("99999999") && message.contains("Nobody") && !message.contains("artist3"),
        "{message}"
    );
    assert!(app.engine.filters().blocked_artists.contains("artist3"));

    // Promote track 150 on every answer.
    app.put_filters(token, r#"{"promoted_tracks": [150], "promote_rate": 1.0}"#)
        .await;
    assert_eq!(app.next(500, 0, 1.0).await, 150);
    let (_, filters) = app.admin("GET", "/admin/filters", Some(token), "").await;
    assert_eq!(filters["promoted_tracks"], serde_json::json!([150]));
    app.stop().await;
}

#[actix_web::test]
async fn admin_reload_swaps_models_and_keeps_old_ones_on_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path());
    let app = TestApp::spawn(&config).await;
    let token = Some("s3cret");
    std::fs::create_dir_all(&config.models).unwrap();
    std::fs::write(
        config.models.join("item2item.jsonl"),
        "{\"track\": 0, \"recommendations\": [199, 198]}\n",
    )
    .unwrap();
    std::fs::write(config.models.join("top_tracks.json"), "[150, 151]").unwrap();
    // Requests in flight during reloads all succeed.
    let traffic = async {
        for i in 0..200u32 {
            app.next(1000 + i as u64, i % 200, 1.0).await;
        }
    };
    let reloads = async {
        for _ in 0..5 {
            let (status, body) = app.admin("POST", "/admin/reload", token, "").await;
            assert_eq!(status, 200, "{body}");
        }
    };
    futures_util::future::join(traffic, reloads).await;
    assert_eq!(app.next(7, 0, 1.0).await, 199, "trained neighbour of 0");
    let (_, top) = app.get("/top?k=2").await;
    assert_eq!(top["tracks"], serde_json::json!([150, 151]));

    std::fs::write(config.models.join("item2item.jsonl"), "not json\n").unwrap();
    assert_error(
        app.admin("POST", "/admin/reload", token, "").await,
        422,
        "invalid_models",
    );
    assert_eq!(
        app.next(8, 0, 1.0).await,
        199,
        "previous models still serve"
    );
    app.stop().await;
}

#[actix_web::test]
async fn admin_routes_do_not_exist_without_a_token() {
    let app = TestApp::serving(&["random"]).await;
    let (status, _) = app
        .admin("POST", "/admin/reload", Some("anything"), "")
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}
