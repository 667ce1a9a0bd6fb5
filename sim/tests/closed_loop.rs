//! `sim run --retrain-every`: the closed loop of serving, logging, training
//! and reloading, through the real `sim` binary (which runs `analysis train`
//! in-process) and, over HTTP, a real botify server.
//!
//! The worlds are smaller than the brief's 2000 tracks: training time in a
//! debug build grows with the catalog (exact neighbour scans), and these
//! tests retrain three times.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use botify::app::Background;
use hyper::{Method, StatusCode};
use sim::runner::http::Botify;
use testkit::config::config_with_catalog;
use testkit::free_port;

/// What a retraining writes into the models folder.
const MODEL_FILES: [&str; 4] = [
    "top_tracks.json",
    "item2item.jsonl",
    "embedding.jsonl",
    "sessions.jsonl",
];

/// The arms of the loop: a table-free baseline and the two learned
/// recommenders, which serve catalog metadata until the first retraining.
const ARMS: [&str; 3] = ["sticky_artist", "session_knn", "embedding"];

fn sim_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sim"));
    command.args(args).env_remove("BOTIFY_ADMIN_TOKEN");
    command
}

fn spawn(args: &[&str]) -> Child {
    sim_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sim")
}

fn sim(args: &[&str]) -> Output {
    sim_command(args).output().expect("run sim")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeded(run: &Output) {
    assert!(
        run.status.success(),
        "sim failed:\n{}\n{}",
        text(&run.stdout),
        text(&run.stderr)
    );
}

fn small_world(dir: &Path) -> PathBuf {
    let world = dir.join("world");
    let run = sim(&[
        "world",
        "--tracks",
        "500",
        "--users",
        "200",
        "--seed",
        "7",
        "--out",
        world.to_str().unwrap(),
    ]);
    succeeded(&run);
    world
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The mean reward on the `day {day}:` summary line of a run.
fn reward(run: &Output, day: u64) -> f64 {
    let stdout = text(&run.stdout);
    let prefix = format!("day {day}:");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in\n{stdout}"));
    let after = line.split("reward ").nth(1).expect("a reward");
    after.split_whitespace().next().unwrap().parse().unwrap()
}

/// The `day {day}:` summary line up to its timing.
fn summary(run: &Output, day: u64) -> String {
    let prefix = format!("day {day}:");
    text(&run.stdout)
        .lines()
        .find(|l| l.starts_with(&prefix))
        .map(|l| l.split(';').next().unwrap().to_string())
        .unwrap_or_default()
}

fn assert_models_written(models: &Path, context: &str) {
    for file in MODEL_FILES {
        let written = models.join(file);
        let size = fs::metadata(&written).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 0,
            "{} missing or empty; {context}",
            written.display()
        );
    }
}

#[test]
fn in_process_runs_retrain_between_days_and_serve_what_they_learned() {
    let dir = tempfile::tempdir().unwrap();
    let world = small_world(dir.path());
    let experiments = testkit::config::write_experiments(dir.path(), &ARMS);
    let run = |every: Option<&str>, name: &str| {
        let (models, logs) = (
            dir.path().join(name).join("models"),
            dir.path().join(name).join("log"),
        );
        let mut args = vec![
            "run",
            "--world",
            path(&world),
            "--in-process",
            "--days",
            "3",
            "--episodes",
            "300",
            "--experiments",
            path(&experiments),
        ];
        args.push("--retrain-every");
        args.extend(every);
        let mut args: Vec<String> = args.into_iter().map(String::from).collect();
        args.extend([
            "--models".into(),
            models.display().to_string(),
            "--log-dir".into(),
            logs.display().to_string(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        (spawn(&args), models, logs)
    };
    // Both runs at once: they share nothing but the world and the seed.
    let (daily, daily_models, daily_logs) = run(None, "daily");
    let (second, second_models, _) = run(Some("2"), "second");
    let daily = daily.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    succeeded(&daily);
    succeeded(&second);

    let stderr = text(&daily.stderr);
    assert_models_written(&daily_models, &stderr);
    for day in 1..=3 {
        let folder = daily_logs.join(format!("day-{day}"));
        let lines: usize = fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
            .map(|f| {
                fs::read_to_string(f.unwrap().path())
                    .unwrap()
                    .lines()
                    .count()
            })
            .sum();
        assert!(lines >= 300, "day {day} logged {lines} lines");
    }
    assert!(stderr.contains("day 1: retraining"), "{stderr}");
    assert!(stderr.contains("day 2: retraining"), "{stderr}");
    assert!(
        !stderr.contains("day 3: retraining"),
        "nothing to retrain for after the last day: {stderr}"
    );

    let second_stderr = text(&second.stderr);
    assert!(
        !second_stderr.contains("day 1: retraining"),
        "{second_stderr}"
    );
    assert!(
        second_stderr.contains("day 2: retraining"),
        "{second_stderr}"
    );
    assert!(
        !second_stderr.contains("day 3: retraining"),
        "{second_stderr}"
    );
    assert_models_written(&second_models, &second_stderr);

    // Same seed, same listeners: day 1 is the same untrained day in both
    // runs; on day 2 only the daily run serves models, learned from day 1.
    assert_eq!(summary(&daily, 1), summary(&second, 1));
    assert!(!summary(&daily, 2).is_empty());
    let (trained, untrained) = (reward(&daily, 2), reward(&second, 2));
    assert!(
        trained > untrained * 1.2,
        "day 2 with models {trained}, without {untrained}"
    );
}

#[test]
fn retraining_over_http_without_train_logs_or_admin_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let world = small_world(dir.path());
    let url = format!("http://127.0.0.1:{}", free_port());
    let base = [
        "run",
        "--world",
        path(&world),
        "--url",
        &url,
        "--days",
        "2",
        "--episodes",
        "10",
        "--retrain-every",
    ];
    let refused = |extra: &[&str], needs: &str| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let run = sim(&args);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(needs), "should ask for {needs}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        // Refused before contacting the (absent) service.
        assert!(!stderr.contains("cannot reach botify"), "{stderr}");
    };
    let logs = dir.path().join("log");
    refused(&[], "--admin-token");
    refused(&["--train-logs", path(&logs)], "--admin-token");
    refused(&["--admin-token", "T"], "--train-logs");
}

/// `GET /health`'s answer, on a connection of its own (botify closes idle
/// ones after its keep-alive).
fn health(runtime: &tokio::runtime::Runtime, url: &str) -> serde_json::Value {
    let botify = Botify::new(url, 1);
    runtime.block_on(async {
        let (status, body) = botify
            .request(Method::GET, "/health", String::new(), None)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        serde_json::from_slice(&body).unwrap()
    })
}

/// Fails today, every time: retraining takes longer than botify's HTTP
/// keep-alive (actix's default, 5 s), during which the simulator's runtime
/// is blocked, so the `POST /admin/reload` that follows goes out on a
/// pooled connection botify already closed ("connection closed before
/// message completed"). `--between-days 'sleep 6' --reload` fails the same
/// way (hence the pause below, so the test does not depend on how fast this
/// machine trains). Retrying the reload on a fresh connection (or dropping
/// idle pooled connections before it) would fix it.
#[test]
fn http_runs_retrain_on_botifys_logs_and_botify_reloads_them() {
    let dir = tempfile::tempdir().unwrap();
    let world = small_world(dir.path());
    let mut config = config_with_catalog(dir.path(), world.join("tracks.jsonl"), &ARMS);
    config.admin_token = Some("T".into());
    let (models, logs) = (config.models.clone(), config.log_dir.clone());
    let server = Background::start(config).unwrap();
    let url = format!("http://127.0.0.1:{}", server.port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = health(&runtime, &url);
    assert_eq!(before["models"]["top_tracks"], false, "{before}");
    assert_eq!(
        before["models"]["tables"],
        serde_json::json!([]),
        "{before}"
    );

    let run = sim(&[
        "run",
        "--world",
        path(&world),
        "--url",
        &url,
        "--days",
        "2",
        "--episodes",
        "500",
        "--concurrency",
        "8",
        "--retrain-every",
        // A retraining on real logs outlasts botify's keep-alive; this
        // pause makes this small one do too, whatever the machine's speed.
        "--between-days",
        "sleep 6",
        "--train-logs",
        path(&logs),
        "--models",
        path(&models),
        "--admin-token",
        "T",
    ]);
    succeeded(&run);
    let stderr = text(&run.stderr);
    assert!(stderr.contains("day 1: retraining"), "{stderr}");
    assert!(stderr.contains("botify reloaded models"), "{stderr}");
    assert_models_written(&models, &stderr);

    let after = health(&runtime, &url);
    assert_eq!(after["models"]["top_tracks"], true, "{after}");
    let tables = after["models"]["tables"].as_array().unwrap();
    assert!(tables.contains(&"item2item".into()), "{after}");
    let logged = server.stop().unwrap();
    assert!(logged >= 2 * 500, "two days logged: {logged} lines");
}
