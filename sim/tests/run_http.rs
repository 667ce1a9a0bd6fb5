//! `sim run` over HTTP against the real botify server: reproducible sessions,
//! and clear, clean failures when the service is missing or dies mid-run.

use std::path::Path;
use std::time::Duration;

use botify::app::Background;
use testkit::cli::{text, Program};
use testkit::config::config_with_catalog;
use testkit::{free_port, worlds};

const SIM: Program = Program::new(env!("CARGO_BIN_EXE_sim"));

fn small_world(dir: &Path) -> String {
    let params = ["--tracks", "2000", "--users", "300", "--seed", "3"];
    let world = worlds::write(&SIM, &dir.join("world"), &params);
    world.display().to_string()
}

/// A small world, botify serving it, and botify's URL.
fn served_world(dir: &Path) -> (String, Background, String) {
    let world = small_world(dir);
    let server = service(dir, &world);
    let url = format!("http://127.0.0.1:{}", server.port);
    (world, server, url)
}

fn service(dir: &Path, world: &str) -> Background {
    // `contextual` before training is deterministic (metadata neighbours), so
    // the sessions depend on the simulator's seed alone.
    let catalog = Path::new(world).join("tracks.jsonl");
    let mut config = config_with_catalog(dir, catalog, &["contextual"]);
    config.workers = Some(1);
    Background::start(config).unwrap()
}

/// `sim run` of `world` against botify at `url`, with `more` flags.
fn over_http<'a>(world: &'a str, url: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--world", world, "--url", url];
    args.extend_from_slice(more);
    args
}

/// The `day 1: …` summary line of a run's stdout.
fn summary_line(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("day 1:"))
        .unwrap_or_default();
    // Keep the statistics, drop the timing that follows them.
    line.split(';').next().unwrap().to_string()
}

#[test]
fn http_runs_are_reproducible_whatever_the_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let (world, server, url) = served_world(dir.path());
    let run = |concurrency: &str| {
        let (stdout, _) = SIM.ok(&over_http(
            &world,
            &url,
            &[
                "--episodes",
                "300",
                // The static model: exactly --episodes sessions (days and
                // returns have their own test, sim/tests/dynamics.rs).
                "--dynamics",
                "none",
                "--concurrency",
                concurrency,
            ],
        ));
        stdout
    };
    let one = run("1");
    let many = run("32");
    assert!(
        summary_line(&one).contains("300 sessions"),
        "{}",
        summary_line(&one)
    );
    assert_eq!(
        summary_line(&one),
        summary_line(&many),
        "same sessions, same rewards"
    );
    assert!(many.contains("client latency (µs): p50"));
    let lines = server.stop().unwrap();
    assert!(lines > 600, "both runs logged: {lines}");

    // In-process with an agent, the whole run is a function of the seed.
    let agent = |seed: &str| {
        summary_line(
            &SIM.ok(&[
                "run",
                "--world",
                &world,
                "--agent",
                "random",
                "--episodes",
                "500",
                "--seed",
                seed,
            ])
            .0,
        )
    };
    assert_eq!(agent("5"), agent("5"));
    assert_ne!(agent("5"), agent("6"));
}

#[test]
fn unreachable_service_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let world = small_world(dir.path());
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let stderr = SIM.fails(&over_http(&world, &url, &["--episodes", "10"]));
    assert!(stderr.contains("cannot reach botify at"), "{stderr}");
}

#[test]
fn a_service_dying_mid_run_stops_the_run_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (world, server, url) = served_world(dir.path());
    let child = SIM
        .command(&over_http(
            &world,
            &url,
            // The static model plays sessions as they come; a population
            // would first plan its whole (huge) day, and the service would
            // die before the run began.
            &[
                "--episodes",
                "100000000",
                "--dynamics",
                "none",
                "--concurrency",
                "8",
            ],
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    server.stop().unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("run stopped after"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("(partial)"));
}
