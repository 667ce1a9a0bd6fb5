//! `analysis ope` end to end on logs the simulator wrote through botify's
//! real serving path (`sim run --in-process`): the logging arm evaluated as
//! its own target gives back its on-policy value, another target's estimate
//! agrees with that target's own on-policy run, and a mistyped key of a
//! target is refused by name.

use std::fs;
use std::path::{Path, PathBuf};

use analysis::commands::ope::{self, Options};
use analysis::commands::{Input, Note, Serving};
use testkit::cli::{arg, Program};
use testkit::worlds;

const SIM: Program = Program::new(env!("CARGO_BIN_EXE_sim"));

/// The stochastic logging arm: sticky_artist's even draw over the artist's
/// tracks, with three answers in ten uniform over the catalog, so every
/// track has a propensity and any target is within its support.
const LOGGING: &str = r#"{ recommender = "sticky_artist", noise = 0.3 }"#;

/// The models folder of every run here: none is ever written, so every
/// arm serves untrained.
const UNTRAINED: &str = "no-models";

fn options(dir: &Path, world: &Path, log: &Path, config: &Path, targets: &[&str]) -> Options {
    Options {
        input: Input::new([log.display()]),
        serving: Serving {
            models: dir.join(UNTRAINED),
            catalog: world.join("tracks.jsonl"),
        },
        target: targets.iter().map(|t| t.to_string()).collect(),
        config: Some(config.to_path_buf()),
        ..Options::default()
    }
}

/// One simulated day of `episodes` sessions of `world` served untrained by
/// `spec`, logged into `dir/name`: (log folder, experiments file).
fn untrained_day(
    dir: &Path,
    world: &Path,
    name: &str,
    spec: &str,
    episodes: &str,
) -> (PathBuf, PathBuf) {
    let untrained = dir.join(UNTRAINED);
    worlds::simulate_day(&SIM, dir, world, &untrained, name, spec, episodes)
}

#[test]
fn ope_recovers_the_logging_arm_and_agrees_with_another_arms_own_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let world = worlds::small(&SIM, dir, "300", "7");
    let (log, config) = untrained_day(dir, &world, "logged", LOGGING, "1500");
    let report = dir.join("report");
    let result = ope::run(&Options {
        report: Some(report.clone()),
        ..options(dir, &world, &log, &config, &[LOGGING, "random"])
    })
    .unwrap();

    // The report: the table and a chart per reward.
    assert_eq!(
        result.report.as_deref(),
        Some(report.join("index.html").as_path())
    );
    let page = fs::read_to_string(report.join("index.html")).unwrap();
    for reward in ["first_pick", "session"] {
        assert!(page.contains(&format!("{reward}.svg")), "{page}");
        let svg = fs::read_to_string(report.join(format!("{reward}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("random snips"),
            "{reward}"
        );
    }

    // The replay of the logging arm reproduces every logged propensity.
    let infos: Vec<&str> = result
        .notes
        .0
        .iter()
        .filter_map(|n| match n {
            Note::Info(text) => Some(text.as_str()),
            Note::Warning(_) => None,
        })
        .collect();
    assert!(
        infos
            .iter()
            .any(|t| t.contains("gives the logged propensity on 100.00%")),
        "{:?}",
        result.notes
    );

    // JSON: one row per target × estimator × reward, with its fields.
    let json = serde_json::to_value(&result.rows).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2 * 3 * 2);
    for row in rows {
        for key in [
            "target",
            "estimator",
            "reward",
            "estimate",
            "lower",
            "upper",
            "ess",
            "max_weight",
            "outside_support",
            "n",
        ] {
            assert!(row.get(key).is_some(), "{key} missing in {row}");
        }
        assert!(["ips", "snips", "dr"].contains(&row["estimator"].as_str().unwrap()));
        assert!(["first_pick", "session"].contains(&row["reward"].as_str().unwrap()));
        // sticky_artist's tracks and random's catalog are all within the
        // noisy logging arm's support.
        assert_eq!(row["outside_support"].as_f64(), Some(0.0), "{row}");
    }

    // The logging arm as its own target: every weight is 1 (to the f32
    // the readers keep a propensity in), so IPS and SNIPS are its
    // on-policy mean, inside their intervals.
    for row in result
        .rows
        .iter()
        .filter(|r| r.target == LOGGING && r.estimator != "dr")
    {
        assert!(
            (row.value.estimate - row.logged_value).abs() < 1e-6,
            "{row:?}"
        );
        assert!(
            row.value.lower <= row.logged_value && row.logged_value <= row.value.upper,
            "{row:?}"
        );
        assert!((row.value.max_weight - 1.0).abs() < 1e-6, "{row:?}");
        assert!((row.value.ess - row.value.n as f64).abs() < 1e-3, "{row:?}");
    }

    // `random` served on its own: its first picks' mean listened fraction
    // is what the estimate from the other arm's logs must find.
    let (random_log, random_config) = untrained_day(dir, &world, "random", "\"random\"", "1500");
    let own = ope::run(&options(
        dir,
        &world,
        &random_log,
        &random_config,
        &["random"],
    ))
    .unwrap();
    let truth = own.rows[0].logged_value;
    let estimate = result
        .rows
        .iter()
        .find(|r| r.target == "random" && r.estimator == "snips" && r.reward == "first_pick")
        .unwrap();
    let half_width = estimate.value.upper - estimate.value.estimate;
    assert!(
        (estimate.value.estimate - truth).abs() <= 2.0 * half_width,
        "random's first pick: estimated {estimate:?}, on-policy {truth}"
    );
    assert!(
        estimate.value.upper < estimate.logged_value,
        "random is estimated below the logging arm: {estimate:?}"
    );
}

/// The share of the logging arm's requests whose replay gave the logged
/// propensity, from `analysis ope`'s note.
fn replayed_propensities(result: &ope::Ope) -> &str {
    result
        .notes
        .0
        .iter()
        .find_map(|n| match n {
            Note::Info(text) | Note::Warning(text) => text
                .split_once("gives the logged propensity on ")
                .map(|(_, rest)| rest.split_once(' ').map_or(rest, |(share, _)| share)),
        })
        .expect("a note on the logging arm's replay")
}

#[test]
fn replay_rebuilds_each_listeners_profile_across_their_sessions() {
    // Without trained models `memory` has no neighbours to rank and draws
    // from the listener's favourite artist: a long-term profile built over
    // every earlier session of the day. Only a replay that rebuilds it
    // reproduces every logged propensity.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let world = worlds::small(&SIM, dir, "150", "11");
    let spec = r#"{ recommender = "memory", noise = 0.2 }"#;
    let (log, config) = untrained_day(dir, &world, "memory", spec, "1200");
    let result = ope::run(&options(dir, &world, &log, &config, &[spec])).unwrap();
    assert_eq!(
        replayed_propensities(&result),
        "100.00%",
        "{:?}",
        result.notes
    );
    // Listeners came back within the day: the profile mattered.
    let events = testkit::events::read_events(&log);
    let sessions = events.iter().filter(|e| e.recommendation.is_none()).count();
    let users: std::collections::HashSet<u64> = events.iter().map(|e| e.user).collect();
    let sessions_per_user = sessions as f64 / users.len() as f64;
    assert!(sessions_per_user > 1.5, "{sessions_per_user}");
}

#[test]
fn a_mistyped_target_key_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let mut options = Options {
        input: Input::new(["missing-logs"]),
        serving: Serving {
            models: tmp.path().to_path_buf(),
            ..Serving::default()
        },
        ..Options::default()
    };
    options.target =
        vec![r#"{ recommender = "memory", policy = "softmax", temperatur = 0.3 }"#.into()];
    let err = ope::run(&options).unwrap_err().to_string();
    assert!(err.contains("\"temperatur\""), "{err}");
    options.target = vec![r#"{ recommender = "memory", "#.into()];
    let err = ope::run(&options).unwrap_err().to_string();
    assert!(err.contains("TOML inline table"), "{err}");
}

#[test]
fn ope_proof_sets_each_estimate_against_the_targets_own_day() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let world = worlds::small(&SIM, dir, "300", "5");
    let out = dir.join("proof.json");
    let (stdout, _) = SIM.ok(&[
        "ope-proof",
        "--world",
        arg(&world),
        "--work",
        arg(&dir.join("work")),
        "--episodes",
        "1500",
        "--train-episodes",
        "1500",
        "--logging",
        r#"{ recommender = "session_knn", policy = "epsilon", epsilon = 0.3 }"#,
        "--target",
        "session_knn",
        "--target",
        r#"{ recommender = "session_knn", policy = "epsilon", epsilon = 0.9 }"#,
        "--out",
        arg(&out),
    ]);
    assert!(stdout.contains("bars (first_pick"), "{stdout}");
    let proof: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&out).unwrap()).unwrap();

    // Each target's truth comes from its own day, and the greedy twin
    // serves better first picks than the near-uniform one.
    let truths = proof["truths"].as_array().unwrap();
    assert_eq!(truths.len(), 2);
    let first_pick = |i: usize| truths[i]["first_pick"].as_f64().unwrap();
    assert!(first_pick(0) > first_pick(1), "{truths:?}");

    // Every target × judged estimator × reward, each against its truth.
    let pairs = proof["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2 * 2 * 2);
    for pair in pairs {
        let truth = pair["truth"].as_f64().unwrap();
        let estimate = pair["estimate"].as_f64().unwrap();
        let error = pair["error"].as_f64().unwrap();
        assert!(((estimate - truth) / truth - error).abs() < 1e-9, "{pair}");
        // Both targets draw from the logging arm's own candidates.
        assert_eq!(pair["outside_support"].as_f64(), Some(0.0), "{pair}");
        if pair["reward"] == "first_pick" {
            assert!(
                error.abs() < 0.15,
                "first_pick within the logging support: {pair}"
            );
        }
    }
    let records = proof["verdict"]["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    for record in records {
        let tau = record["kendall"][0][1].as_f64().unwrap();
        assert!(
            tau == 1.0 || tau == -1.0,
            "two targets: τ is ±1, got {record}"
        );
    }
}
