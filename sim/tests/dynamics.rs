//! The listener dynamics through the real `sim` binary: `--dynamics none`
//! is the static model exactly, and the default population lives for days.

use std::fs;
use std::path::Path;
use testkit::cli::{arg, Program};
use testkit::events::read_events;
use testkit::worlds;

const SIM: Program = Program::new(env!("CARGO_BIN_EXE_sim"));

/// `sim run --in-process` against `arms`, without models, logging into
/// `log`; `more` adds the world, days and the rest. Returns (stdout, stderr).
fn run_in_process(dir: &Path, arms: &[&str], log: &Path, more: &[&str]) -> (String, String) {
    let experiments = testkit::config::write_experiments(dir, arms);
    let no_models = dir.join("no-models");
    let mut args = vec![
        "run",
        "--in-process",
        "--experiments",
        arg(&experiments),
        "--models",
        arg(&no_models),
        "--log-dir",
        arg(log),
    ];
    args.extend_from_slice(more);
    SIM.ok(&args)
}

/// FNV-1a over what a listener did and what botify answered, line by line
/// in log order: user, track, time, recommendation. Timestamps and
/// latencies are left out: they come from the wall clock.
fn behaviour_digest(log: &Path) -> u64 {
    let mut files: Vec<_> = fs::read_dir(log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for file in files {
        for event in read_events_of(&file) {
            let line = format!(
                "{},{},{},{:?}\n",
                event.user, event.track, event.time, event.recommendation
            );
            for byte in line.bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    hash
}

fn read_events_of(file: &Path) -> Vec<botify::events::Event> {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(file, dir.path().join("events.jsonl")).unwrap();
    read_events(dir.path())
}

/// The static model as it was before days and dynamics existed (commit
/// 7adcdf6), on a world generated with that commit's defaults: 300
/// sessions a day for two days against `sticky_artist` and `random`, with
/// botify's draws seeded from each request (`--seed` 0, docs/policies.md).
const STATIC_MODEL_DIGEST: u64 = 0xe5cf_480e_9cd8_3153;

#[test]
fn dynamics_none_reproduces_the_static_model() {
    let dir = tempfile::tempdir().unwrap();
    let world = worlds::write(
        &SIM,
        &dir.path().join("world"),
        &[
            "--tracks",
            "500",
            "--users",
            "200",
            "--seed",
            "7",
            // That commit's generator defaults.
            "--session-budget",
            "5",
            "--artist-discount-gamma",
            "0.8",
            "--consume-bias-min",
            "0.1",
            "--consume-bias-max",
            "0.3",
        ],
    );
    let log = dir.path().join("log");
    run_in_process(
        dir.path(),
        &["sticky_artist", "random"],
        &log,
        &[
            "--world",
            arg(&world),
            "--days",
            "2",
            "--episodes",
            "300",
            "--seed",
            "11",
            "--dynamics",
            "none",
        ],
    );
    let digest =
        behaviour_digest(&log.join("day-1")) ^ behaviour_digest(&log.join("day-2")).rotate_left(1);
    assert_eq!(digest, STATIC_MODEL_DIGEST, "{digest:#x}");
}

/// A small world of the current generator, with few genres so that
/// `contextual`'s metadata neighbours never run out (its fallback is a
/// random track, which would make botify's answers depend on chance).
fn small_world(dir: &Path) -> std::path::PathBuf {
    let params = [
        "--tracks", "600", "--users", "300", "--seed", "5", "--genres", "4",
    ];
    worlds::write(&SIM, &dir.join("world"), &params)
}

fn events_of(dir: &Path) -> Vec<botify::events::Event> {
    read_events(dir)
}

#[test]
fn days_run_on_the_simulated_clock_and_listeners_return() {
    let dir = tempfile::tempdir().unwrap();
    let world = small_world(dir.path());
    let log = dir.path().join("log");
    let (_, stderr) = run_in_process(
        dir.path(),
        &["contextual"],
        &log,
        &[
            "--world",
            arg(&world),
            "--days",
            "3",
            "--episodes",
            "400",
            "--releases-per-day",
            "5",
        ],
    );
    assert!(stderr.contains("listeners visit"), "{stderr}");
    let mut users_by_day = Vec::new();
    for day in 0..3u64 {
        let events = events_of(&log.join(format!("day-{}", day + 1)));
        assert!(!events.is_empty());
        let start = sim::clock::day_start(day);
        for e in &events {
            assert!(
                (start..start + sim::clock::DAY_MS + 6 * 3_600_000).contains(&e.timestamp),
                "day {day}: event at {} outside the day",
                e.timestamp
            );
        }
        // Several sessions of one listener in a day never overlap: each
        // listener's events are in time order, `last` closing each session.
        let mut by_user: std::collections::BTreeMap<u64, Vec<&botify::events::Event>> =
            Default::default();
        for e in &events {
            by_user.entry(e.user).or_default().push(e);
        }
        let mut several = 0;
        for (user, mut list) in by_user.clone() {
            list.sort_by_key(|e| e.timestamp);
            let lasts = list
                .iter()
                .filter(|e| e.message == botify::events::Message::Last)
                .count();
            assert_eq!(
                list.last().unwrap().message,
                botify::events::Message::Last,
                "user {user}'s day ends with a closed session"
            );
            several += usize::from(lasts > 1);
        }
        assert!(
            several > 10,
            "day {day}: {several} listeners with several sessions"
        );
        if day > 0 {
            let released = events.iter().any(|e| e.track >= 600);
            assert!(released, "day {day}: no session heard a new release");
        }
        users_by_day.push(
            by_user
                .keys()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
        );
    }
    let returning = users_by_day[0].intersection(&users_by_day[1]).count();
    assert!(
        returning > 20,
        "{returning} listeners of day 1 came back on day 2"
    );
    assert!(log.join("day-3").exists());
}

/// Sorted events of a botify log, without the wall-clock latency.
fn behaviour(dir: &Path) -> Vec<(u64, u64, u32, String, Option<u32>)> {
    let mut events: Vec<_> = events_of(dir)
        .into_iter()
        .map(|e| {
            (
                e.user,
                e.timestamp,
                e.track,
                format!("{}", e.time),
                e.recommendation,
            )
        })
        .collect();
    events.sort();
    events
}

/// Over HTTP with `--simulated-clock`, a multi-day run with releases writes
/// the same events (simulated timestamps included) at any concurrency, and
/// the same as in-process.
#[test]
fn days_are_reproducible_at_any_concurrency_and_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let world = small_world(dir.path());
    let common = [
        "--days",
        "2",
        "--episodes",
        "300",
        "--releases-per-day",
        "4",
        "--seed",
        "9",
        "--world",
        arg(&world),
    ];
    let over_http = |concurrency: &str, name: &str| {
        let catalog = world.join("tracks.jsonl");
        let folder = dir.path().join(name);
        std::fs::create_dir_all(&folder).unwrap();
        let mut config = testkit::config::config_with_catalog(&folder, catalog, &["contextual"]);
        config.simulated_clock = true;
        config.admin_token = Some("token".into());
        // A loaded test machine must not turn a slow answer into a
        // stateless fallback: that would change what is played.
        config.state_timeout_ms = 10_000;
        let server = botify::app::Background::start(config.clone()).unwrap();
        let url = format!("http://127.0.0.1:{}", server.port);
        let unused = dir.path().join("unused");
        let mut argv = vec![
            "run",
            "--url",
            &url,
            "--concurrency",
            concurrency,
            "--admin-token",
            "token",
            "--log-dir",
            arg(&unused),
        ];
        argv.extend(common);
        SIM.ok(&argv);
        server.stop().unwrap();
        let fallbacks = events_of(&config.log_dir)
            .iter()
            .filter(|e| e.fallback)
            .count();
        assert_eq!(fallbacks, 0, "fallback answers depend on timing");
        behaviour(&config.log_dir)
    };
    let one = over_http("1", "one");
    let many = over_http("16", "many");
    assert!(one.len() > 1000, "{} events", one.len());
    if let Some(i) = (0..one.len().min(many.len())).find(|&i| one[i] != many[i]) {
        panic!(
            "concurrency changed what was played: {} vs {} events; first difference {:?} vs {:?}",
            one.len(),
            many.len(),
            &one[i.saturating_sub(2)..i + 3],
            &many[i.saturating_sub(2)..i + 3]
        );
    }
    assert_eq!(one, many, "concurrency changed what was played");
    assert!(one.iter().any(|e| e.2 >= 600), "a release was played");

    let log = dir.path().join("in-process");
    run_in_process(dir.path(), &["contextual"], &log, &common);
    let mut in_process = behaviour(&log.join("day-1"));
    in_process.extend(behaviour(&log.join("day-2")));
    in_process.sort();
    assert_eq!(one, in_process, "in-process and HTTP runs differ");
}
