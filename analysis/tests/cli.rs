//! End to end through the `analysis` binary: synth → ab with a report →
//! train (all models, with a holdout) → eval; and bad input → an error that
//! says what to do, never a panic.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn analysis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analysis"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> (String, String) {
    let out = analysis(args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{args:?} failed:\n{stderr}");
    (stdout, stderr)
}

fn fails(args: &[&str]) -> String {
    let out = analysis(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn synth_ab_train_eval_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("log");
    let models = tmp.path().join("models");
    let reports = tmp.path().join("report");
    ok(&[
        "synth",
        "--out",
        s(&logs),
        "--events",
        "80000",
        "--users",
        "1000",
        "--tracks",
        "2000",
        "--replicas",
        "3",
        "--rotate-events",
        "10000",
        "--experiment",
        "AB:2:0.3",
    ]);
    assert_eq!(
        fs::read_dir(&logs).unwrap().count(),
        3,
        "one folder per replica"
    );

    // A strong synthetic uplift: T1's `time` gain is significant and reported.
    let glob = format!("{}/**/*.jsonl*", s(&logs));
    let (stdout, _) = ok(&[
        "ab",
        "--logs",
        &glob,
        "--experiment",
        "AB",
        "--report",
        s(&reports),
    ]);
    let time_row = stdout
        .lines()
        .find(|l| l.starts_with("T1") && l.contains(" time "))
        .unwrap();
    assert!(time_row.ends_with("true"), "{stdout}");
    assert!(stdout.contains("users per arm: C"), "{stdout}");
    for file in [
        "index.html",
        "effects.svg",
        "session_length.svg",
        "cumulative_time.svg",
    ] {
        assert!(reports.join(file).is_file(), "{file}");
    }

    let (_, stderr) = ok(&[
        "train",
        "--logs",
        s(&logs),
        "--out",
        s(&models),
        "--model",
        "all",
        "--holdout",
        "0.2",
        "--factors",
        "8",
        "--iterations",
        "4",
        "--neighbours",
        "20",
    ]);
    assert!(stderr.contains("the rest is held out"), "{stderr}");
    let mut names: Vec<String> = fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["item2item.jsonl", "item2item_als.jsonl", "top_tracks.json"],
        "no temp files left"
    );
    let top: Vec<u32> =
        serde_json::from_str(&fs::read_to_string(models.join("top_tracks.json")).unwrap()).unwrap();
    assert!(top.len() > 1_000 && top.iter().all(|&t| t < 2_000));
    for file in ["item2item.jsonl", "item2item_als.jsonl"] {
        let text = fs::read_to_string(models.join(file)).unwrap();
        assert!(text.lines().count() > 1_000, "{file}");
        for line in text.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let track = row["track"].as_u64().unwrap();
            let recs = row["recommendations"].as_array().unwrap();
            assert!(!recs.is_empty() && recs.len() <= 20, "{file}: {line}");
            assert!(
                recs.iter().all(|r| r.as_u64().unwrap() != track),
                "{file}: {line}"
            );
        }
    }

    let (stdout, _) = ok(&[
        "eval",
        "--logs",
        s(&logs),
        "--models",
        s(&models),
        "--holdout",
        "0.2",
        "--k",
        "5,20",
        "--format",
        "json",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let ndcg = |model: &str, k: u64| {
        rows.iter()
            .find(|r| r["model"] == model && r["k"] == k)
            .unwrap_or_else(|| panic!("{model}@{k} in {stdout}"))["ndcg"]
            .as_f64()
            .unwrap()
    };
    // Synthetic sessions stick to a cluster: co-listening must beat popularity.
    assert!(ndcg("item2item", 20) > ndcg("popularity", 20), "{stdout}");
    assert!(ndcg("item2item_als", 20) > 0.0, "{stdout}");
    assert!(ndcg("item2item", 20) >= ndcg("item2item", 5), "{stdout}");
}

#[test]
fn bad_input_gets_an_error_that_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = format!("{}/nothing/*.jsonl", s(tmp.path()));
    let err = fails(&["ab", "--logs", &missing, "--experiment", "AB"]);
    assert!(
        err.contains("no log files match") && err.contains("'log/**/*.jsonl*'"),
        "{err}"
    );

    let garbage = tmp.path().join("garbage.jsonl");
    fs::write(&garbage, "not a log\n\u{0}\u{1}binary\n{\"message\": 3}\n").unwrap();
    let err = fails(&["train", "--logs", s(&garbage), "--out", s(tmp.path())]);
    assert!(
        err.contains("no valid events in 1 files (3 broken lines)"),
        "{err}"
    );

    let log = tmp.path().join("one.jsonl");
    fs::write(
        &log,
        "{\"message\":\"last\",\"timestamp\":1,\"user\":1,\"track\":2,\"time\":1.0,\"latency\":0.001,\"experiments\":{\"AA\":\"T1\"}}\n",
    )
    .unwrap();
    let err = fails(&["ab", "--logs", s(&log), "--experiment", "AB"]);
    assert!(err.contains("no event carries experiment \"AB\""), "{err}");
    let err = fails(&["ab", "--logs", s(&log), "--experiment", "AA"]);
    assert!(
        err.contains("control arm C has no users") && err.contains("--control"),
        "{err}"
    );
    let err = fails(&[
        "ab",
        "--logs",
        s(&log),
        "--experiment",
        "AA",
        "--control",
        "B",
    ]);
    assert!(err.contains("--control \"B\" is not an arm label"), "{err}");

    let empty = tmp.path().join("empty-models");
    fs::create_dir_all(&empty).unwrap();
    let err = fails(&["eval", "--logs", s(&log), "--models", s(&empty)]);
    assert!(
        err.contains("no model files in") && err.contains("analysis train"),
        "{err}"
    );
    let err = fails(&["train", "--logs", s(&log), "--holdout", "1.5"]);
    assert!(err.contains("--holdout must be in"), "{err}");
    let err = fails(&["train", "--logs", s(&log), "--alpha=-1"]);
    assert!(
        err.contains("--alpha must be a non-negative number"),
        "{err}"
    );
}

#[test]
fn help_documents_every_subcommand() {
    let (stdout, _) = ok(&["--help"]);
    for sub in ["ab", "train", "eval", "synth"] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(sub)),
            "{sub} in {stdout}"
        );
    }
    let (stdout, _) = ok(&["ab", "--help"]);
    for flag in [
        "--logs",
        "--experiment",
        "--control",
        "--format",
        "--report",
        "--arms",
        "--config",
    ] {
        assert!(stdout.contains(flag), "{flag} in {stdout}");
    }
    let (stdout, _) = ok(&["train", "--help"]);
    for flag in [
        "--model",
        "--neighbours",
        "--alpha",
        "--holdout",
        "top_tracks.json",
        "item2item_als.jsonl",
    ] {
        assert!(stdout.contains(flag), "{flag} in {stdout}");
    }
}
