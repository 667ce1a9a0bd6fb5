//! `analysis eval --counterfactual` through the binary: what it refuses and
//! how, and its help. Its scores on real exploration logs are tested end to
//! end in `sim/tests/eval_counterfactual.rs`, where the simulator that
//! writes them can run.

use std::fs;
use std::path::Path;

use analysis::commands::synth;
use testkit::cli::{arg, Program};

const ANALYSIS: Program = Program::new(env!("CARGO_BIN_EXE_analysis"));

/// synth's logs (no `propensity`, as botify's before it logged one), an
/// empty models folder and a catalog of their 1,000 tracks, in `dir`.
fn synth_logs(dir: &Path) {
    synth::run(&synth::Options {
        out: dir.join("log"),
        events: 5_000,
        users: 200,
        tracks: 1_000,
        replicas: 1,
        ..synth::Options::default()
    })
    .unwrap();
    fs::create_dir_all(dir.join("models")).unwrap();
    analysis::synth::write_catalog(&dir.join("tracks.jsonl"), 1_000).unwrap();
}

#[test]
fn logs_without_propensities_fail_naming_the_logs_and_the_serving_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    synth_logs(dir);
    let logs = dir.join("log");
    let stderr = ANALYSIS.fails(&[
        "eval",
        "--logs",
        arg(&logs),
        "--models",
        arg(&dir.join("models")),
        "--catalog",
        arg(&dir.join("tracks.jsonl")),
        "--recommenders",
        "none",
        "--counterfactual",
        "memory",
        r#"{ recommender = "memory", policy = "softmax" }"#,
    ]);
    for needle in [
        "--counterfactual needs logged propensities",
        arg(&logs),
        "docs/policies.md",
        "softmax",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_arm_or_clip_is_refused_before_any_work() {
    // Logs and models that do not exist: every refusal comes first.
    let refused = |rest: &[&str]| {
        let mut args = vec!["eval", "--logs", "missing", "--models", "missing"];
        args.extend_from_slice(rest);
        ANALYSIS.fails(&args)
    };
    let stderr = refused(&[
        "--counterfactual",
        r#"{ recommender = "memory", policy = "softmax", temperatur = 0.3 }"#,
    ]);
    assert!(stderr.contains("--counterfactual"), "{stderr}");
    assert!(stderr.contains("\"temperatur\""), "{stderr}");

    let stderr = refused(&["--counterfactual", "magic"]);
    assert!(stderr.contains("unknown recommender \"magic\""), "{stderr}");

    let stderr = refused(&["--counterfactual", "memory", "--clip", "0.5"]);
    assert!(stderr.contains("--clip must be"), "{stderr}");

    let stderr = refused(&["--counterfactual", "memory", "--simulated-sessions", "0"]);
    assert!(
        stderr.contains("--simulated-sessions must be at least 1"),
        "{stderr}"
    );

    // The arms are replayed on the catalog: without it, nothing to do.
    let stderr = refused(&[
        "--catalog",
        "missing/tracks.jsonl",
        "--counterfactual",
        "memory",
    ]);
    assert!(
        stderr.contains("no --catalog file at missing/tracks.jsonl"),
        "{stderr}"
    );

    // The logging arm's experiments file means nothing without arms to score.
    let stderr = refused(&["--config", "experiments.toml"]);
    assert!(stderr.contains("--counterfactual ARM"), "{stderr}");
}

#[test]
fn the_help_explains_the_counterfactual_score_and_when_to_trust_it() {
    ANALYSIS.assert_help_names(
        "eval",
        &[
            "--counterfactual",
            "simulated",
            "listen curve",
            "--simulated-sessions",
            "SNIPS",
            "first_pick",
            "mean time per session",
            "trusted",
            "outside the logging arm's support",
            "--clip",
            "--config",
            "--experiment",
            "--botify-seed",
        ],
    );
}
