//! `sim run --retrain-every`: the closed loop of serving, logging, training
//! and reloading, through the real `sim` binary (which runs `analysis train`
//! in-process) and, over HTTP, a real botify server.
//!
//! The worlds are smaller than the brief's 2000 tracks: training time in a
//! debug build grows with the catalog (exact neighbour scans), and these
//! tests retrain three times.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use botify::app::Background;
use hyper::{Method, StatusCode};
use sim::runner::http::Botify;
use testkit::cli::{arg, text, Program};
use testkit::config::config_with_catalog;
use testkit::{free_port, worlds};

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

const SIM: Program = Program::new(env!("CARGO_BIN_EXE_sim"));

fn spawn(args: &[&str]) -> Child {
    SIM.command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sim")
}

fn succeeded(run: &Output) {
    let (stdout, stderr) = text(run);
    assert!(run.status.success(), "sim failed:\n{stdout}\n{stderr}");
}

fn small_world(dir: &Path) -> PathBuf {
    let params = ["--tracks", "500", "--users", "200", "--seed", "7"];
    worlds::write(&SIM, &dir.join("world"), &params)
}

/// `sim run` over HTTP for two days: how both HTTP tests start.
fn two_days_over_http<'a>(world: &'a Path, url: &'a str, episodes: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--world",
        arg(world),
        "--url",
        url,
        "--days",
        "2",
        "--episodes",
        episodes,
    ]
}

/// The mean reward on the `day {day}:` summary line of a run.
fn reward(run: &Output, day: u64) -> f64 {
    let (stdout, _) = text(run);
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
    text(run)
        .0
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
            arg(&world),
            "--in-process",
            "--days",
            "3",
            "--episodes",
            "300",
            "--experiments",
            arg(&experiments),
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

    let (_, stderr) = text(&daily);
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

    let (_, second_stderr) = text(&second);
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

/// One day of `arm` alone, then a retraining, then a second day.
fn two_days_in_process(dir: &Path, world: &Path, name: &str, arm: &str) -> (Output, PathBuf) {
    let experiments = worlds::one_arm_experiments(dir, name, arm);
    let models = dir.join(name).join("models");
    let logs = dir.join(name).join("log");
    let args = [
        "run",
        "--world",
        arg(world),
        "--in-process",
        "--days",
        "2",
        "--episodes",
        "1000",
        "--experiments",
        arg(&experiments),
        "--retrain-every",
        "--models",
        arg(&models),
        "--log-dir",
        arg(&logs),
    ];
    let run = spawn(&args).wait_with_output().unwrap();
    succeeded(&run);
    (run, models)
}

#[test]
fn session_interest_learns_from_its_own_exploration_and_weighs_what_it_explored() {
    let dir = tempfile::tempdir().unwrap();
    let world = small_world(dir.path());
    let explore = r#"{ recommender = "session_interest", policy = "softmax", temperature = 0.3 }"#;
    let (exploring, models) = two_days_in_process(dir.path(), &world, "explore", explore);
    let (sticky, _) = two_days_in_process(dir.path(), &world, "sticky", "\"sticky_artist\"");
    // Day 1 serves catalog metadata; day 2 what day 1's logs taught.
    let (learned, baseline) = (reward(&exploring, 2), reward(&sticky, 2));
    assert!(
        learned > 2.0 * baseline && learned > 1.3 * reward(&exploring, 1),
        "day 2: session_interest {learned}, sticky_artist {baseline}; day 1 {}",
        reward(&exploring, 1)
    );
    // The softmax logged propensities, so session_knn's index carries each
    // listen's exposure weight, and the listen curve was fitted.
    let sessions = fs::read_to_string(models.join("sessions.jsonl")).unwrap();
    assert!(
        sessions.contains("\"weights\""),
        "{}",
        &sessions[..500.min(sessions.len())]
    );
    let curve = fs::read_to_string(models.join("listen_curve.json")).unwrap();
    let curve: serde_json::Value = serde_json::from_str(&curve).unwrap();
    for field in ["bias", "sharpness", "discount"] {
        assert!(curve[field].is_number(), "{curve}");
    }
}

#[test]
fn retraining_over_http_without_train_logs_or_admin_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let world = small_world(dir.path());
    let url = format!("http://127.0.0.1:{}", free_port());
    let mut base = two_days_over_http(&world, &url, "10");
    base.push("--retrain-every");
    let refused = |extra: &[&str], needs: &str| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let run = SIM.output(&args);
        let (_, stderr) = text(&run);
        assert_eq!(run.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(needs), "should ask for {needs}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        // Refused before contacting the (absent) service.
        assert!(!stderr.contains("cannot reach botify"), "{stderr}");
    };
    let logs = dir.path().join("log");
    refused(&[], "--admin-token");
    refused(&["--train-logs", arg(&logs)], "--admin-token");
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

/// Retraining blocks the simulator's runtime for longer than botify's HTTP
/// keep-alive (actix's default, 5 s), so the `POST /admin/reload` that
/// follows must not go out on a pooled connection botify already closed
/// (the client drops connections idle for 2 s). The pause between days
/// makes this small retraining outlast the keep-alive too, so the test does
/// not depend on how fast this machine trains.
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

    let mut args = two_days_over_http(&world, &url, "500");
    args.extend([
        "--concurrency",
        "8",
        "--retrain-every",
        // A retraining on real logs outlasts botify's keep-alive; this
        // pause makes this small one do too, whatever the machine's speed.
        "--between-days",
        "sleep 6",
        "--train-logs",
        arg(&logs),
        "--models",
        arg(&models),
        "--admin-token",
        "T",
    ]);
    let (_, stderr) = SIM.ok(&args);
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
