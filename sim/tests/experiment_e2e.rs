//! End to end: `sim experiment` through the real binary, over HTTP, with a
//! real Redis, on a small world; the A/B table must show every arm and metric.

use testkit::cli::{arg, run_ok, Program};
use testkit::{worlds, RedisServer};

const SIM: Program = Program::new(env!("CARGO_BIN_EXE_sim"));

#[test]
fn experiment_prints_every_arm_and_metric() {
    let redis = RedisServer::start();
    let work = tempfile::tempdir().unwrap();
    let world = worlds::end_to_end(&SIM, work.path());
    let experiments = concat!(env!("CARGO_MANIFEST_DIR"), "/../experiments.toml");
    let (stdout, stderr) = run_ok(
        SIM.command(&[
            "experiment",
            "--training-episodes",
            "300",
            "--episodes",
            "600",
            "--concurrency",
            "16",
            "--name",
            "e2e",
            "--experiments",
            experiments,
            "--world",
            arg(&world),
            "--redis-url",
            &redis.url(),
        ])
        .current_dir(work.path()),
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
