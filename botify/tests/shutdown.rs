//! Nothing lost: SIGTERM drains in-flight requests and flushes the log, and
//! a replica being stopped says so on `/ready` while it still serves.

use std::path::Path;
use std::time::{Duration, Instant};

use testkit::binary::botify_command;
use testkit::{free_port, read_events, test_config, Processes};

/// `GET {base}{path}`: the status and the body as JSON.
async fn get(client: &awc::Client, base: &str, path: &str) -> (u16, serde_json::Value) {
    let mut response = client.get(format!("{base}{path}")).send().await.unwrap();
    let body = response.json().await.unwrap();
    (response.status().as_u16(), body)
}

/// `POST {base}/next/{user}`: the status, and whether the answer closes
/// its connection.
async fn next(client: &awc::Client, base: &str, user: u32, track: u32) -> (u16, bool) {
    let response = client
        .post(format!("{base}/next/{user}"))
        .send_body(format!("{{\"track\": {track}, \"time\": 0.5}}"))
        .await
        .unwrap();
    let closes = response
        .headers()
        .get("connection")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    (response.status().as_u16(), closes)
}

/// Starts the botify binary with `drain_secs`; returns once `/ready` says
/// so, with the processes, the base URL and the log folder.
async fn start(
    dir: &Path,
    drain_secs: u64,
    client: &awc::Client,
) -> (Processes, String, std::path::PathBuf) {
    let mut config = test_config(dir, &["random", "sticky_artist"]);
    config.port = free_port();
    config.drain_secs = drain_secs;
    let mut processes = Processes::new();
    let botify = Path::new(env!("CARGO_BIN_EXE_botify"));
    processes.spawn("botify", &mut botify_command(botify, &config));
    let base = format!("http://127.0.0.1:{}", config.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut response) = client.get(format!("{base}/ready")).send().await {
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(response.status(), 200, "{body}");
            assert_eq!(body, serde_json::json!({"status": "ready"}));
            break;
        }
        processes.assert_alive();
        assert!(Instant::now() < deadline, "botify did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (processes, base, config.log_dir)
}

#[actix_web::test]
async fn sigterm_flushes_one_line_per_answered_request() {
    let dir = tempfile::tempdir().unwrap();
    let client = awc::Client::default();
    let (mut processes, base, log_dir) = start(dir.path(), 0, &client).await;
    const N: u32 = 500;
    let mut answered = 0;
    for i in 0..N {
        assert_eq!(next(&client, &base, i % 37, i % 200).await, (200, false));
        answered += 1;
    }
    // SIGTERM, then the exit status (SIGKILL only past a bounded wait).
    let exit = processes.get_mut("botify").unwrap().stop();
    assert!(exit.success(), "botify exited with {exit:?}");
    assert_eq!(read_events(&log_dir).len(), answered);
}

#[actix_web::test]
async fn sigterm_drains_not_ready_but_serving_then_stops() {
    const DRAIN_SECS: u64 = 2;
    let dir = tempfile::tempdir().unwrap();
    let client = awc::Client::default();
    let (mut processes, base, log_dir) = start(dir.path(), DRAIN_SECS, &client).await;
    let botify = processes.get_mut("botify").unwrap();
    botify.terminate();
    let signalled = Instant::now();

    // Until the drain delay ends: 503 on /ready, yet /next still answers.
    let mut answered = 0;
    let mut draining_seen = false;
    while signalled.elapsed() < Duration::from_millis(DRAIN_SECS * 1000 - 500) {
        let (status, body) = get(&client, &base, "/ready").await;
        if status == 503 {
            assert_eq!(body, serde_json::json!({"status": "draining"}));
            draining_seen = true;
        } else {
            // The signal may not have been handled yet.
            assert_eq!((status, draining_seen), (200, false), "{body}");
        }
        // Still answered; once draining, on a connection closed after it.
        let (status, closes) = next(&client, &base, answered % 37, answered % 200).await;
        assert_eq!(status, 200);
        assert!(
            closes || !draining_seen,
            "a draining answer kept its connection"
        );
        answered += 1;
        assert!(botify.exit_status().is_none(), "exited during the drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(draining_seen, "/ready never answered 503 after SIGTERM");

    // Then it stops accepting and exits cleanly, every answer logged.
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = botify.exit_status() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "botify did not stop after the drain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "botify exited with {exit:?}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(DRAIN_SECS),
        "stopped before the drain delay: {:?}",
        signalled.elapsed()
    );
    assert_eq!(read_events(&log_dir).len(), answered as usize);
}
