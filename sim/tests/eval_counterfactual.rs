//! `analysis eval --counterfactual` end to end on an exploration log the
//! simulator wrote through botify's real serving path (`sim run
//! --in-process`; only sim's tests can run the simulator): the logging arm
//! scored as its own target earns the log's own mean time per session, two
//! arms whose online values differ clearly are ranked as they earn online,
//! and an arm outside the log's support is flagged and ranked last.

use std::fs;
use std::path::Path;

use analysis::commands::eval::{self, Counterfactual, Options};
use analysis::commands::{ope, Input, Serving};
use analysis::logs::{self, ReadOptions};
use analysis::sessions;
use testkit::cli::Program;
use testkit::worlds;

const SIM: Program = Program::new(env!("CARGO_BIN_EXE_sim"));

/// The logging arm: contextual's catalog-metadata neighbours (no trained
/// model needed), the best one served, three answers in ten spread over
/// its top 50.
const LOGGING: &str = r#"{ recommender = "contextual", policy = "epsilon", epsilon = 0.3 }"#;
/// Explores less: its best candidate nine times in ten.
const LESS: &str = r#"{ recommender = "contextual", policy = "epsilon", epsilon = 0.1 }"#;
/// Explores more, half the time. The two earn clearly apart online (on
/// this world exploring earns more: the metadata's best neighbour is the
/// same artist again and again, which listeners tire of).
const MORE: &str = r#"{ recommender = "contextual", policy = "epsilon", epsilon = 0.5 }"#;
/// The whole catalog, evenly: mostly outside a top-50 logging support.
const OUTSIDE: &str = "random";

const HOLDOUT: f64 = 0.5;

fn serving(dir: &Path, world: &Path) -> Serving {
    Serving {
        models: dir.join("no-models"),
        catalog: world.join("tracks.jsonl"),
    }
}

/// The mean time per session of `log`'s sessions starting in its latest
/// `holdout` fraction, counted from the events alone, and their number.
fn own_mean_time(log: &Path, holdout: f64) -> (f64, usize) {
    let paths = logs::resolve(&[log.display().to_string()]).unwrap();
    let mut records = logs::read(&paths, &ReadOptions::default()).unwrap().records;
    sessions::sort(&mut records);
    let (all, _) = sessions::sessionize(&records);
    let cutoff = sessions::holdout_cutoff(&all, holdout).unwrap_or(0);
    let held: Vec<f64> = all
        .iter()
        .filter(|s| s.start >= cutoff)
        .map(|s| s.time)
        .collect();
    (held.iter().sum::<f64>() / held.len() as f64, held.len())
}

/// `spec`'s mean time per session served online, from its own day's log.
fn online_value(dir: &Path, world: &Path, name: &str, spec: &str) -> f64 {
    let (log, config) = worlds::simulate_day(&SIM, dir, world, name, spec, "1500");
    let own = ope::run(&ope::Options {
        input: Input::new([log.display()]),
        serving: serving(dir, world),
        target: vec![spec.to_string()],
        config: Some(config),
        ..ope::Options::default()
    })
    .unwrap();
    own.rows
        .iter()
        .find(|r| r.reward == "session")
        .unwrap()
        .logged_value
}

#[test]
fn eval_ranks_arms_by_their_counterfactual_value_on_an_exploration_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir_all(dir.join("no-models")).unwrap();
    let world = worlds::small(&SIM, dir, "300", "7");
    let (log, config) = worlds::simulate_day(&SIM, dir, &world, "logged", LOGGING, "3000");
    let arms = [OUTSIDE, LESS, LOGGING, MORE];
    let result = eval::run(&Options {
        input: Input::new([log.display()]),
        serving: serving(dir, &world),
        recommenders: vec!["none".to_string()],
        holdout: HOLDOUT,
        counterfactual: Counterfactual {
            arms: arms.iter().map(|a| a.to_string()).collect(),
            config: Some(config),
            ..Counterfactual::default()
        },
        ..Options::default()
    })
    .unwrap();
    let rows = &result.counterfactual;
    assert_eq!(rows.len(), arms.len(), "{rows:#?}");
    let row = |spec: &str| rows.iter().find(|r| r.arm == spec).unwrap();
    let ranks: Vec<usize> = rows.iter().map(|r| r.rank).collect();
    assert_eq!(ranks, [1, 2, 3, 4], "rows come ranked");

    // (a) The logging arm as its own target earns the held-out sessions'
    // own mean time per session.
    let (own, held_out) = own_mean_time(&log, HOLDOUT);
    let logging = row(LOGGING);
    assert_eq!(
        logging.session.n, held_out,
        "estimated on the held-out sessions"
    );
    assert!(
        (logging.session.estimate - own).abs() <= 0.02 * own,
        "logging arm: estimated {}, the log's own mean time per session {own}",
        logging.session.estimate
    );
    assert!(logging.trusted, "{logging:#?}");
    assert_eq!(logging.outside_support, Some(0.0), "{logging:#?}");

    // (c) An arm outside the log's support is flagged, and ranked last.
    let outside = row(OUTSIDE);
    assert!(!outside.trusted, "{outside:#?}");
    assert!(
        outside.outside_support.is_some_and(|o| o > 0.5),
        "{outside:#?}"
    );
    assert!(
        outside.reasons.iter().any(|r| r.contains("never serves")),
        "{outside:#?}"
    );
    assert!(
        rows.iter()
            .filter(|r| r.trusted)
            .all(|r| r.rank < outside.rank),
        "{rows:#?}"
    );

    // (b) Two supported arms whose online values differ clearly come in
    // the order they earn online.
    let less_online = online_value(dir, &world, "less", LESS);
    let more_online = online_value(dir, &world, "more", MORE);
    let ((better, better_online), (worse, worse_online)) = if less_online > more_online {
        ((row(LESS), less_online), (row(MORE), more_online))
    } else {
        ((row(MORE), more_online), (row(LESS), less_online))
    };
    assert!(
        better_online > 1.1 * worse_online,
        "the two arms' online values differ clearly: {better_online} against {worse_online}"
    );
    assert!(better.trusted && worse.trusted, "{better:#?}\n{worse:#?}");
    assert!(
        better.rank < worse.rank,
        "online {} earns {better_online}, {} {worse_online}; ranked {rows:#?}",
        better.arm,
        worse.arm
    );
    // Each estimate is near its arm's own value online.
    for (row, online) in [(better, better_online), (worse, worse_online)] {
        assert!(
            (row.session.estimate - online).abs() <= 0.1 * online,
            "{} estimated {}, online {online}",
            row.arm,
            row.session.estimate
        );
    }
}
