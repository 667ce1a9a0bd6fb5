//! Serving policies end to end: every answer carries the probability it
//! was served with, in the answer and in the event log; the same seed
//! replays the same answers; an arm with a mistyped key never starts.

use std::path::Path;

use botify::app::Application;
use botify::config::Config;
use serde_json::Value;
use testkit::{test_config, TestApp};

/// One arm per policy: softmax over a learned-style ranked list, epsilon
/// over a uniform set, greedy with noise, and the uniform baseline.
const ARMS: &str = r#"[
    { recommender = "contextual", policy = "softmax", temperature = 0.5 },
    { recommender = "sticky_artist", policy = "epsilon" },
    { recommender = "memory", noise = 0.3 },
    "random",
]"#;

/// A configuration of [`test_config`] whose active experiment has `arms`
/// (a TOML array) and whose draws are seeded with `seed`.
fn config(dir: &Path, arms: &str, seed: u64) -> Config {
    let mut config = test_config(dir, &["random"]);
    std::fs::write(
        &config.experiments,
        format!("active = \"TEST\"\n[[experiment]]\nname = \"TEST\"\narms = {arms}\n"),
    )
    .unwrap();
    config.seed = seed;
    config
}

/// Plays the same sessions for a few users: every `/next` answer, in order.
async fn play(app: &TestApp) -> Vec<Value> {
    let mut answers = Vec::new();
    for user in 0..12u64 {
        let mut track = (user * 17 % 200) as u32;
        for step in 0..8 {
            let time = if step % 3 == 0 { 0.2 } else { 0.9 };
            let answer = app.next_answer(user, track, time).await;
            track = answer["track"].as_u64().unwrap() as u32;
            answers.push(answer);
        }
        app.last(user, track, 0.5).await;
    }
    answers
}

#[actix_web::test]
async fn every_answer_and_its_log_line_carry_the_propensity_it_was_served_with() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), ARMS, 0);
    let app = TestApp::spawn(&config).await;
    let answers = play(&app).await;
    app.stop().await;
    let propensities: Vec<f64> = answers
        .iter()
        .map(|a| a["propensity"].as_f64().expect("a propensity"))
        .collect();
    assert!(
        propensities.iter().all(|&p| p > 0.0 && p <= 1.0),
        "{propensities:?}"
    );
    assert!(
        propensities.iter().any(|&p| p < 1.0),
        "some arms draw: {propensities:?}"
    );
    let events = testkit::read_events(&config.log_dir);
    let logged: Vec<f64> = events.iter().filter_map(|e| e.propensity).collect();
    assert_eq!(logged, propensities, "the log says what the answer said");
    assert!(events
        .iter()
        .all(|e| e.propensity.is_some() == e.recommendation.is_some()));
}

#[actix_web::test]
async fn the_same_seed_and_requests_give_the_same_answers() {
    let mut runs = Vec::new();
    for seed in [7, 7, 8] {
        let dir = tempfile::tempdir().unwrap();
        let app = TestApp::spawn(&config(dir.path(), ARMS, seed)).await;
        runs.push(play(&app).await);
        app.stop().await;
    }
    assert_eq!(runs[0], runs[1], "seed 7 twice");
    assert_ne!(runs[0], runs[2], "another seed, other draws");
}

#[test]
fn an_arm_with_a_mistyped_key_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let arms = r#"[{ recommender = "memory", policy = "softmax", temprature = 0.3 }]"#;
    let err = Application::build(&config(dir.path(), arms, 0))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("experiments.toml")
            && err.contains("arm 0")
            && err.contains("unknown key \"temprature\""),
        "{err}"
    );
    let arms = r#"[{ recommender = "memory", policy = "softmax", temperature = "hot" }]"#;
    let err = Application::build(&config(dir.path(), arms, 0))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("temperature = \"hot\""), "{err}");
}
