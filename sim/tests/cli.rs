//! The `sim` binary end to end: files, determinism, and errors a user sees.

use std::fs;
use std::path::Path;

use testkit::cli::{arg, Program};
use testkit::worlds;

const SIM: Program = Program::new(env!("CARGO_BIN_EXE_sim"));

fn small_world(out: &Path, seed: &str) {
    worlds::write(
        &SIM,
        out,
        &[
            "--seed", seed, "--tracks", "600", "--users", "80", "--dim", "16",
        ],
    );
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
        small_world(out, seed);
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

    let (table, _) = SIM.ok(&["calibrate", "--world", arg(&a), "--sessions", "200"]);
    assert!(
        table.contains("random") && table.contains("sticky_artist"),
        "{table}"
    );
}

#[test]
fn a_missing_world_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let run = SIM.output(&["calibrate", "--world", arg(&missing)]);
    let (_, stderr) = testkit::cli::text(&run);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tracks.jsonl"), "{stderr}");
    assert!(stderr.contains("sim world --out"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_sizes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = SIM.fails(&[
        "world",
        "--out",
        arg(dir.path()),
        "--tracks",
        "10",
        "--artists",
        "20",
    ]);
    assert!(stderr.contains("--artists"), "{stderr}");
}

#[test]
fn truth_models_takes_half_from_a_learned_folder_and_refuses_one_without_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    small_world(&world, "3");
    let truth = dir.path().join("truth");
    SIM.ok(&["truth-models", "--world", arg(&world), "--out", arg(&truth)]);
    let lines = |folder: &Path| -> Vec<serde_json::Value> {
        fs::read_to_string(folder.join("embedding.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // The artist-level truth stands in for a learned folder: its vectors
    // differ from the truth's, so what each option keeps can be told apart.
    let artists = dir.path().join("artists");
    SIM.ok(&[
        "truth-models",
        "--world",
        arg(&world),
        "--out",
        arg(&artists),
        "--artist-level",
        "--neighbours",
        "7",
    ]);
    let kept = dir.path().join("kept");
    let (_, stderr) = SIM.ok(&[
        "truth-models",
        "--world",
        arg(&world),
        "--out",
        arg(&kept),
        "--lists-from",
        arg(&artists),
    ]);
    assert!(stderr.contains("the neighbour lists of"), "{stderr}");
    let (truth_rows, artist_rows, kept_rows) = (lines(&truth), lines(&artists), lines(&kept));
    assert_eq!(kept_rows.len(), truth_rows.len());
    for ((t, a), k) in truth_rows.iter().zip(&artist_rows).zip(&kept_rows) {
        assert_eq!(k["neighbours"], a["neighbours"], "the learned lists");
        assert_eq!(k["neighbours"].as_array().unwrap().len(), 7);
        assert_eq!(k["vector"], t["vector"], "the true vectors");
    }

    let empty = dir.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let stderr = SIM.fails(&[
        "truth-models",
        "--world",
        arg(&world),
        "--out",
        arg(&kept),
        "--vectors-from",
        arg(&empty),
    ]);
    assert!(stderr.contains("holds no embedding.jsonl"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
