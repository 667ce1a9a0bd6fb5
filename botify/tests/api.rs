//! The HTTP API against the real server on a free loopback port.

use std::collections::HashSet;

use actix_web::http::Method;

use testkit::app::assert_error;
use testkit::{test_config, TestApp};

#[actix_web::test]
async fn session_never_repeats_a_track() {
    let app = TestApp::serving(&["sticky_artist"]).await;
    let mut heard = HashSet::from([0u32]);
    let mut track = 0;
    // Artist 0 has 10 tracks; 40 steps exhaust it and exercise the fallback.
    for _ in 0..40 {
        track = app.next(7, track, 0.8).await;
        assert!(
            heard.insert(track),
            "track {track} served twice in one session"
        );
    }
    app.last(7, track, 0.3).await;
    // A new session may hear the same tracks again.
    assert_ne!(app.next(7, 0, 1.0).await, 0);
    app.stop().await;
}

#[actix_web::test]
async fn bad_input_gets_a_4xx_json_error_and_the_server_keeps_serving() {
    let app = TestApp::serving(&["random", "memory"]).await;
    let big = format!(
        "{{\"track\": 1, \"time\": 1.0, \"pad\": \"{}\"}}",
        "x".repeat(10_000)
    );
    let posts: Vec<(&str, String)> = vec![
        ("/next/1", "{".into()),
        ("/next/1", "".into()),
        ("/next/1", "null".into()),
        ("/next/1", "[]".into()),
        ("/next/1", "\"track\"".into()),
        ("/next/1", r#"{"time": 1.0}"#.into()),
        ("/next/1", r#"{"track": 1}"#.into()),
        ("/next/1", r#"{"track": "1", "time": 1.0}"#.into()),
        ("/next/1", r#"{"track": 1.5, "time": 1.0}"#.into()),
        ("/next/1", r#"{"track": -3, "time": 1.0}"#.into()),
        ("/next/1", r#"{"track": 99999999999, "time": 1.0}"#.into()),
        ("/next/1", r#"{"track": 100000, "time": 1.0}"#.into()),
        ("/next/1", r#"{"track": 1, "time": 1.5}"#.into()),
        ("/next/1", r#"{"track": 1, "time": -0.1}"#.into()),
        ("/next/1", r#"{"track": 1, "time": 1e999}"#.into()),
        ("/next/1", r#"{"track": 1, "time": "NaN"}"#.into()),
        ("/next/1", r#"{"track": 1, "time": null}"#.into()),
        ("/next/1", "\u{0}\u{1}\u{2}".into()),
        ("/next/1", big),
        ("/next/-1", r#"{"track": 1, "time": 1.0}"#.into()),
        ("/next/abc", r#"{"track": 1, "time": 1.0}"#.into()),
        ("/next/1.5", r#"{"track": 1, "time": 1.0}"#.into()),
        (
            "/next/18446744073709551616",
            r#"{"track": 1, "time": 1.0}"#.into(),
        ),
        ("/next/", r#"{"track": 1, "time": 1.0}"#.into()),
        ("/next/1/2", r#"{"track": 1, "time": 1.0}"#.into()),
        ("/last/x", r#"{"track": 1, "time": 1.0}"#.into()),
        ("/last/1", r#"{"track": 1, "time": 7}"#.into()),
        ("/track/1", "{}".into()),
        ("/admin/reload", "{}".into()),
        ("/nothing/here", "{}".into()),
    ];
    for (path, body) in &posts {
        let (status, json) = app.post(path, body).await;
        assert!(
            (400..500).contains(&status),
            "POST {path} {body:.60} gave {status}"
        );
        assert!(
            json["error"].is_string() && json["message"].is_string(),
            "POST {path} {body:.60}: error body {json}"
        );
    }
    let gets = [
        "/track/abc",
        "/track/-1",
        "/track/100000",
        "/similar/abc",
        "/similar/100000",
        "/similar/1?k=0",
        "/similar/1?k=abc",
        "/top?k=-5",
        "/top?genre=polka",
        "/next/1",
        "/%ff%fe",
        "/admin/filters",
    ];
    for path in gets {
        let (status, json) = app.get(path).await;
        assert!((400..500).contains(&status), "GET {path} gave {status}");
        assert!(json["error"].is_string(), "GET {path}: {json}");
    }
    // Headers a client may get wrong, sent raw so no client library fixes them.
    let raw_requests = [
        "POST /next/1 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "POST /next/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\n{}",
        "POST /next/1 HTTP/1.1\r\nHost: x\r\nbroken header line\r\n\r\n",
        "POST /next/1 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain; charset=nonsense\r\nContent-Length: 25\r\n\r\n{\"track\": 1, \"time\": 0.5}",
        "POST /next/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GARBAGE\r\n\r\n",
    ];
    let address = app.base.trim_start_matches("http://").to_string();
    for raw in raw_requests {
        let status = raw_status(&address, raw);
        assert!(
            status.is_none_or(|s| s < 500),
            "raw request {raw:?} gave {status:?}"
        );
    }
    // Still serving.
    let track = app.next(1, 1, 0.5).await;
    assert!(track < 200);
    app.stop().await;
}

#[actix_web::test]
async fn specific_errors_say_what_was_wrong() {
    let app = TestApp::serving(&["random"]).await;
    assert_error(
        app.post("/next/1", r#"{"track": 5000, "time": 1.0}"#).await,
        404,
        "unknown_track",
    );
    assert_error(
        app.post("/next/1", r#"{"track": 5, "time": 3}"#).await,
        400,
        "invalid_time",
    );
    assert_error(
        app.post("/next/x", r#"{"track": 5, "time": 1}"#).await,
        400,
        "invalid_user",
    );
    assert_error(
        app.post("/next/1", r#"{"track": 5}"#).await,
        400,
        "missing_field",
    );
    assert_error(app.get("/nope").await, 404, "not_found");
    assert_error(app.get("/next/1").await, 405, "method_not_allowed");
    let body = r#"{"track": 1, "time": 1.0}"#;
    for path in ["/next", "/next/", "/last/1/2", "/nextx/1"] {
        let (status, json) = app.post(path, body).await;
        assert_eq!(
            (status, json["error"].as_str()),
            (404, Some("not_found")),
            "POST {path}"
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn catalog_endpoints_answer() {
    let app = TestApp::serving(&["random"]).await;
    let (status, root) = app.get("/").await;
    assert_eq!((status, root["status"].as_str()), (200, Some("alive")));
    let (status, track) = app.get("/track/21").await;
    assert_eq!(status, 200);
    assert_eq!(track["artist"], "artist1");
    let (status, top) = app.get("/top?genre=g2&k=3").await;
    assert_eq!(status, 200);
    assert_eq!(top["tracks"], serde_json::json!([2, 7, 12]));
    let (_, similar) = app.get("/similar/0?k=3").await;
    // Cold start: same artist (0, 20, 40, …) by popularity.
    assert_eq!(similar["similar"], serde_json::json!([20, 40, 60]));
    let (status, health) = app.get("/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    app.stop().await;
}

#[actix_web::test]
async fn metrics_count_requests_errors_and_treatments() {
    let app = TestApp::serving(&["random", "sticky_artist"]).await;
    for user in 0..20 {
        app.next(user, 3, 1.0).await;
    }
    app.post("/next/1", "{").await;
    let next_ok = app
        .metric("botify_http_requests_total{route=\"/next/{user}\",status=\"200\"}")
        .await;
    assert_eq!(next_ok, 20.0);
    let control = app
        .metric("botify_recommendations_total{arm=\"C\",recommender=\"random\"}")
        .await;
    let treatment = app
        .metric("botify_recommendations_total{arm=\"T1\",recommender=\"sticky_artist\"}")
        .await;
    assert_eq!(control + treatment, 20.0);
    assert!(control > 0.0 && treatment > 0.0);
    let errors = app
        .metric("botify_request_errors_total{code=\"malformed_json\"}")
        .await;
    assert_eq!(errors, 1.0);
    let (_, text) = app.get("/metrics").await;
    assert!(text
        .as_str()
        .unwrap()
        .contains("botify_recommend_duration_seconds_bucket{arm=\"T1\""));
    app.stop().await;
}

#[actix_web::test]
async fn every_answered_request_is_logged_with_its_experiments() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), &["random", "random"]);
    let app = TestApp::spawn(&config).await;
    let mut track = 0;
    for _ in 0..10 {
        track = app.next(42, track, 0.5).await;
    }
    app.last(42, track, 0.25).await;
    assert_eq!(app.stop().await, 11);
    let events = testkit::read_events(&config.log_dir);
    assert_eq!(events.len(), 11);
    let last = events.iter().find(|e| e.recommendation.is_none()).unwrap();
    assert_eq!((last.track, last.time), (track, 0.25));
    // User 42 is T1 in a two-arm split named TEST? Whatever it is, it must
    // match the assignment function.
    let arm = botify::experiments::arm_label(botify::experiments::assign("TEST", 2, 42));
    assert!(events.iter().all(|e| e.experiments["TEST"] == arm));
}

/// Sends `raw` bytes and returns the status code of the answer, if any (the
/// server may also just close a connection it cannot parse).
fn raw_status(address: &str, raw: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split(' ').nth(1).and_then(|s| s.parse().ok())
}

/// POSTs a listen with an `X-Simulated-Time` header.
async fn post_at(app: &TestApp, path: &str, at: &str) -> u16 {
    app.request(Method::POST, path)
        .insert_header(("content-type", "application/json"))
        .insert_header(("x-simulated-time", at))
        .send_body(r#"{"track": 0, "time": 1.0}"#)
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn a_simulated_clock_stamps_events_with_the_time_the_client_sends() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &["random"]);
    config.simulated_clock = true;
    let app = TestApp::spawn(&config).await;
    assert_eq!(post_at(&app, "/next/3", "1767225600000").await, 200);
    assert_eq!(post_at(&app, "/last/3", "1767225660000").await, 200);
    let (status, error) = {
        let mut response = app
            .request(Method::POST, "/next/3")
            .insert_header(("x-simulated-time", "yesterday"))
            .send_body(r#"{"track": 0, "time": 1.0}"#)
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        (response.status().as_u16(), body)
    };
    assert_eq!(status, 400);
    assert_eq!(error["error"], "invalid_simulated_time", "{error}");
    app.stop().await;
    let mut stamps: Vec<u64> = testkit::read_events(&config.log_dir)
        .iter()
        .map(|e| e.timestamp)
        .collect();
    stamps.sort_unstable();
    assert_eq!(stamps, vec![1_767_225_600_000, 1_767_225_660_000]);
}

#[actix_web::test]
async fn without_a_simulated_clock_the_header_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), &["random"]);
    let app = TestApp::spawn(&config).await;
    let before = botify::events::now_millis();
    assert_eq!(post_at(&app, "/next/3", "1767225600000").await, 200);
    assert_eq!(post_at(&app, "/next/3", "not a time").await, 200);
    app.stop().await;
    let events = testkit::read_events(&config.log_dir);
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.timestamp >= before));
}
