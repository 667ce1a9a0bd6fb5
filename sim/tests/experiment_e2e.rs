//! End to end: `sim experiment` through the real binary, over HTTP, with a
//! real Redis, on a small world; the A/B table must show every arm and metric.

use std::process::Command;

use testkit::RedisServer;

#[test]
fn experiment_prints_every_arm_and_metric() {
    let redis = RedisServer::start();
    let work = tempfile::tempdir().unwrap();
    let sim = env!("CARGO_BIN_EXE_sim");
    let world = work.path().join("world");
    let status = Command::new(sim)
        .args([
            "world", "--tracks", "3000", "--users", "1000", "--seed", "7", "--out",
        ])
        .arg(&world)
        .status()
        .unwrap();
    assert!(status.success());
    let experiments = concat!(env!("CARGO_MANIFEST_DIR"), "/../experiments.toml");
    let output = Command::new(sim)
        .current_dir(work.path())
        .args([
            "experiment",
            "--training-episodes",
            "300",
            "--episodes",
            "600",
            "--concurrency",
            "16",
        ])
        .args(["--name", "e2e", "--experiments", experiments])
        .arg("--world")
        .arg(&world)
        .args(["--redis-url", &redis.url()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "sim experiment failed:\n{stdout}\n{stderr}"
    );
    for metric in [
        "time",
        "sessions",
        "mean_request_latency",
        "mean_tracks_per_session",
        "mean_time_per_session",
    ] {
        assert!(
            stdout.contains(metric),
            "metric {metric} missing:\n{stdout}"
        );
    }
    for arm in ["T1", "T2"] {
        assert!(stdout.contains(arm), "arm {arm} missing:\n{stdout}");
    }
    assert!(
        work.path().join("reports/e2e/index.html").exists(),
        "{stderr}"
    );
    let service_logs = std::fs::read_dir(work.path().join("log/e2e/service"))
        .unwrap()
        .count();
    assert!(service_logs > 0);
}
