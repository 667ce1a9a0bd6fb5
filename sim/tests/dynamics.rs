//! The listener dynamics through the real `sim` binary: `--dynamics none`
//! is the static model exactly, and the default population lives for days.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use testkit::events::read_events;

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .env_remove("BOTIFY_ADMIN_TOKEN")
        .output()
        .expect("run sim")
}

fn succeeded(run: &Output) {
    assert!(
        run.status.success(),
        "sim failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
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
/// sessions a day for two days against `sticky_artist` and `random`.
const STATIC_MODEL_DIGEST: u64 = 0x3a05_be1e_3243_bbd8;

#[test]
fn dynamics_none_reproduces_the_static_model() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    let generated = sim(&[
        "world",
        "--tracks",
        "500",
        "--users",
        "200",
        "--seed",
        "7",
        "--out",
        path(&world),
        // That commit's generator defaults.
        "--session-budget",
        "5",
        "--artist-discount-gamma",
        "0.8",
        "--consume-bias-min",
        "0.1",
        "--consume-bias-max",
        "0.3",
    ]);
    succeeded(&generated);
    let experiments = testkit::config::write_experiments(dir.path(), &["sticky_artist", "random"]);
    let log = dir.path().join("log");
    let run = sim(&[
        "run",
        "--world",
        path(&world),
        "--in-process",
        "--days",
        "2",
        "--episodes",
        "300",
        "--seed",
        "11",
        "--dynamics",
        "none",
        "--experiments",
        path(&experiments),
        "--models",
        path(&dir.path().join("no-models")),
        "--log-dir",
        path(&log),
    ]);
    succeeded(&run);
    let digest =
        behaviour_digest(&log.join("day-1")) ^ behaviour_digest(&log.join("day-2")).rotate_left(1);
    assert_eq!(digest, STATIC_MODEL_DIGEST, "{digest:#x}");
}
