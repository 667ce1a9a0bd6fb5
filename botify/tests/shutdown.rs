//! Nothing lost: SIGTERM drains in-flight requests and flushes the log.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, read_events, test_config};

#[actix_web::test]
async fn sigterm_flushes_one_line_per_answered_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), &["random", "sticky_artist"]);
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_botify"))
        .args(["--port", &port.to_string()])
        .arg("--catalog")
        .arg(&config.catalog)
        .arg("--experiments")
        .arg(&config.experiments)
        .arg("--log-dir")
        .arg(&config.log_dir)
        .arg("--models")
        .arg(&config.models)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "botify did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    const N: u32 = 500;
    let mut answered = 0;
    for i in 0..N {
        let response = client
            .post(format!("{base}/next/{}", i % 37))
            .send_body(format!("{{\"track\": {}, \"time\": 0.5}}", i % 200))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        answered += 1;
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "botify exited with {exit:?}");
    assert_eq!(read_events(&config.log_dir).len(), answered);
}
