//! `analysis eval --counterfactual` end to end on an exploration log the
//! simulator wrote through botify's real serving path (`sim run
//! --in-process`; only sim's tests can run the simulator), with models
//! trained on a day of `random` traffic: the logging arm scored as its own
//! target earns the log's own mean time per session, two arms whose online
//! values differ clearly are ranked as they earn online, and an arm outside
//! the log's support is flagged, yet ranked by its simulated estimate.

use std::fs;
use std::path::Path;

use analysis::commands::eval::{self, Counterfactual, Options};
use analysis::commands::{ope, train, Input, Serving};
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
/// Explores more, nine times in ten. The two earn clearly apart online.
const MORE: &str = r#"{ recommender = "contextual", policy = "epsilon", epsilon = 0.9 }"#;
/// The whole catalog, evenly: mostly outside a top-50 logging support.
const OUTSIDE: &str = "random";
/// The same, as an experiments file's arm.
const OUTSIDE_ARM: &str = r#"{ recommender = "random" }"#;

const HOLDOUT: f64 = 0.5;

/// botify's catalog, and the models trained on the day of `random`
/// traffic (`contextual` needs none; the simulated listener needs the
/// embedding and its listen curve).
fn serving(dir: &Path, world: &Path) -> Serving {
    Serving {
        models: dir.join("models"),
        catalog: world.join("tracks.jsonl"),
    }
}

/// Every model trained on a day of `random` traffic into `dir/models`.
fn train_on_random_traffic(dir: &Path, world: &Path) {
    let (log, _) = worlds::simulate_day(
        &SIM,
        dir,
        world,
        &dir.join("no-models"),
        "random",
        OUTSIDE_ARM,
        "3000",
    );
    train::run(&train::Options {
        input: Input::new([log.display()]),
        out: dir.join("models"),
        catalog: world.join("tracks.jsonl"),
        ..train::Options::default()
    })
    .unwrap();
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
    let models = dir.join("models");
    let (log, config) = worlds::simulate_day(&SIM, dir, world, &models, name, spec, "1500");
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
    train_on_random_traffic(dir, &world);
    let models = dir.join("models");
    let (log, config) = worlds::simulate_day(&SIM, dir, &world, &models, "logged", LOGGING, "3000");
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

    // (c) An arm outside the log's support is flagged; its simulated
    // estimate still ranks it, last, as the uniform draw earns least.
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
    assert_eq!(outside.rank, arms.len(), "{rows:#?}");
    let outside_online = online_value(dir, &world, "outside", OUTSIDE_ARM);

    // (b) Two arms whose online values differ clearly come in the order
    // they earn online, whether or not the log supports them.
    let less_online = online_value(dir, &world, "less", LESS);
    let more_online = online_value(dir, &world, "more", MORE);
    let ((better, better_online), (worse, worse_online)) = if less_online > more_online {
        ((row(LESS), less_online), (row(MORE), more_online))
    } else {
        ((row(MORE), more_online), (row(LESS), less_online))
    };
    assert!(
        better_online > 1.1 * worse_online && worse_online > outside_online,
        "the arms' online values differ clearly: {better_online} for {}, {worse_online} for {}, \
         and {outside_online} for {OUTSIDE}",
        better.arm,
        worse.arm
    );
    assert!(
        better.rank < worse.rank,
        "online {} earns {better_online}, {} {worse_online}; ranked {rows:#?}",
        better.arm,
        worse.arm
    );
    // The arm close to the logging arm is supported, and its SNIPS
    // estimate is near its own value online.
    let (close, close_online) = (row(LESS), less_online);
    assert!(close.trusted, "{close:#?}");
    assert!(
        (close.session.estimate - close_online).abs() <= 0.1 * close_online,
        "{} estimated {}, online {close_online}",
        close.arm,
        close.session.estimate
    );
}
