//! The `sim` binary end to end: files, determinism, and errors a user sees.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("run sim")
}

fn small_world(out: &Path, seed: &str) -> Output {
    sim(&[
        "world",
        "--out",
        out.to_str().unwrap(),
        "--seed",
        seed,
        "--tracks",
        "600",
        "--users",
        "80",
        "--dim",
        "16",
    ])
}

#[test]
fn world_is_reproducible_and_calibrate_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    for (out, seed) in [(&a, "7"), (&b, "7"), (&c, "8")] {
        let run = small_world(out, seed);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    for name in ["tracks.jsonl", "embeddings.npy", "users.jsonl"] {
        let bytes = |d: &Path| fs::read(d.join(name)).unwrap();
        assert!(bytes(&a) == bytes(&b), "{name} differs for the same seed");
        assert!(
            bytes(&a) != bytes(&c),
            "{name} is the same for another seed"
        );
    }
    let first: serde_json::Value = serde_json::from_str(
        fs::read_to_string(a.join("tracks.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    for field in ["track", "artist", "title", "genre", "year", "popularity"] {
        assert!(
            first.get(field).is_some(),
            "tracks.jsonl lacks {field}: {first}"
        );
    }

    let run = sim(&[
        "calibrate",
        "--world",
        a.to_str().unwrap(),
        "--sessions",
        "200",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let table = String::from_utf8(run.stdout).unwrap();
    assert!(
        table.contains("random") && table.contains("sticky_artist"),
        "{table}"
    );
}

#[test]
fn a_missing_world_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let run = sim(&["calibrate", "--world", missing.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tracks.jsonl"), "{stderr}");
    assert!(stderr.contains("sim world --out"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_sizes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let run = sim(&[
        "world",
        "--out",
        dir.path().to_str().unwrap(),
        "--tracks",
        "10",
        "--artists",
        "20",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("--artists"), "{stderr}");
}
