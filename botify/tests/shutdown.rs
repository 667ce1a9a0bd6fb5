//! Nothing lost: SIGTERM drains in-flight requests and flushes the log.

use std::path::Path;
use std::time::{Duration, Instant};

use testkit::binary::botify_command;
use testkit::{free_port, read_events, test_config, Processes};

#[actix_web::test]
async fn sigterm_flushes_one_line_per_answered_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &["random", "sticky_artist"]);
    config.port = free_port();
    let mut processes = Processes::new();
    let botify = Path::new(env!("CARGO_BIN_EXE_botify"));
    processes.spawn("botify", &mut botify_command(botify, &config));
    let base = format!("http://127.0.0.1:{}", config.port);
    let client = awc::Client::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/health")).send().await.is_err() {
        processes.assert_alive();
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
    // SIGTERM, then the exit status (SIGKILL only past a bounded wait).
    let exit = processes.get_mut("botify").unwrap().stop();
    assert!(exit.success(), "botify exited with {exit:?}");
    assert_eq!(read_events(&config.log_dir).len(), answered);
}
