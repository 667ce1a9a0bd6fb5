//! End to end through the `analysis` binary: synth → ab with a report →
//! train (all models, with a holdout) → eval; bad input → an error that
//! says what to do, never a panic; every subcommand's help.

use std::fs;
use std::path::Path;

use analysis::commands::synth;
use testkit::cli::{arg, Program};
use testkit::file_names;

/// This build's `analysis` binary, run as a user runs it.
const ANALYSIS: Program = Program::new(env!("CARGO_BIN_EXE_analysis"));

#[test]
fn synth_ab_train_eval_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("log");
    let models = tmp.path().join("models");
    let reports = tmp.path().join("report");
    ANALYSIS.ok(&[
        "synth",
        "--out",
        arg(&logs),
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
    let glob = format!("{}/**/*.jsonl*", arg(&logs));
    let (stdout, _) = ANALYSIS.ok(&[
        "ab",
        "--logs",
        &glob,
        "--experiment",
        "AB",
        "--report",
        arg(&reports),
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

    // The synthetic logs come without a catalog: asked for every model,
    // train refuses rather than silently skip the embedding.
    let train = |model: &'static str| -> Vec<&str> {
        let rest = [
            "--factors",
            "8",
            "--iterations",
            "4",
            "--neighbours",
            "20",
            "--catalog",
            "/nonexistent/tracks.jsonl",
        ];
        train_args(&logs, &models, model, &rest)
    };
    let stderr = ANALYSIS.fails(&train("all"));
    assert!(
        stderr.contains("--model all includes the embedding") && stderr.contains("--catalog"),
        "{stderr}"
    );
    let (_, stderr) = ANALYSIS.ok(&train("colisten"));
    assert!(stderr.contains("the rest is held out"), "{stderr}");
    ANALYSIS.ok(&train("als"));
    ANALYSIS.ok(&train("session-knn"));
    let names = file_names(&models);
    assert_eq!(
        names,
        [
            "item2item.jsonl",
            "item2item_als.jsonl",
            "sessions.jsonl",
            "top_tracks.json"
        ],
        "no temp files left; no catalog here, so no embedding"
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

    let (stdout, _) = ANALYSIS.ok(&eval_args(
        &logs,
        &models,
        &["--holdout", "0.2", "--k", "5,20", "--format", "json"],
    ));
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
fn eval_scores_botify_recommenders_next_to_the_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("log");
    let models = tmp.path().join("models");
    synth::run(&synth::Options {
        out: logs.clone(),
        events: 20_000,
        users: 300,
        tracks: 1_000,
        replicas: 1,
        experiments: vec!["AB:2".parse().unwrap()],
        ..synth::Options::default()
    })
    .unwrap();
    let catalog = tmp.path().join("tracks.jsonl");
    analysis::synth::write_catalog(&catalog, 1_000).unwrap();
    ANALYSIS.ok(&train_args(&logs, &models, "colisten", &[]));
    let eval = |threads: &str| {
        ANALYSIS.ok(&eval_args(
            &logs,
            &models,
            &[
                "--holdout",
                "0.2",
                "--k",
                "5,20",
                "--catalog",
                arg(&catalog),
                "--recommenders",
                "sticky_artist,memory,random",
                "--max-queries",
                "300",
                "--threads",
                threads,
                "--format",
                "json",
            ],
        ))
    };
    let (stdout, stderr) = eval("2");
    assert!(stderr.contains("scored on the first 300 of"), "{stderr}");
    assert!(!stderr.contains("WARNING"), "{stderr}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let row = |model: &str, k: u64| {
        rows.iter()
            .find(|r| r["model"] == model && r["k"] == k)
            .unwrap_or_else(|| panic!("{model}@{k} in {stdout}"))
    };
    let names: Vec<&str> = rows.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "popularity",
            "popularity",
            "item2item",
            "item2item",
            "sticky_artist",
            "sticky_artist",
            "memory",
            "memory",
            "random",
            "random"
        ]
    );
    // Tables on every query, recommenders on the first 300.
    assert!(
        row("item2item", 5)["queries"].as_u64().unwrap() > 300,
        "{stdout}"
    );
    for model in ["sticky_artist", "memory", "random"] {
        assert_eq!(row(model, 20)["queries"], 300, "{stdout}");
        assert_eq!(row(model, 20)["coverage"], 1.0, "{stdout}");
    }
    // Staying in the session's cluster is what synth's listeners like.
    let ndcg = |model: &str, k: u64| row(model, k)["ndcg"].as_f64().unwrap();
    assert!(
        ndcg("sticky_artist", 20) > 2.0 * ndcg("popularity", 20),
        "{stdout}"
    );
    assert!(ndcg("memory", 20) > ndcg("random", 20), "{stdout}");
    // Seeded per query: the same numbers on one thread.
    assert_eq!(eval("1").0, stdout);

    // Without the catalog: the tables only, and a warning naming the flag.
    let missing = tmp.path().join("no-tracks.jsonl");
    let (stdout, stderr) = ANALYSIS.ok(&eval_args(
        &logs,
        &models,
        &["--catalog", arg(&missing), "--format", "csv"],
    ));
    assert!(
        stderr.contains("WARNING") && stderr.contains("--catalog"),
        "{stderr}"
    );
    let models_seen: Vec<&str> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(models_seen, ["popularity", "item2item"], "{stdout}");
    let err = ANALYSIS.fails(&eval_args(
        &logs,
        &models,
        &["--recommenders", "sticky_artist,magic"],
    ));
    assert!(err.contains("unknown recommender \"magic\""), "{err}");
}

/// `eval --logs LOGS --models MODELS` followed by `rest`.
/// `train --logs LOGS --out MODELS --model MODEL --holdout 0.2 REST…`: the
/// fifth held out is what [`eval_args`] with `--holdout 0.2` scores on.
fn train_args<'a>(
    logs: &'a Path,
    models: &'a Path,
    model: &'a str,
    rest: &[&'a str],
) -> Vec<&'a str> {
    let head = [
        "train",
        "--logs",
        arg(logs),
        "--out",
        arg(models),
        "--model",
        model,
        "--holdout",
        "0.2",
    ];
    head.iter().chain(rest).copied().collect()
}

fn eval_args<'a>(logs: &'a Path, models: &'a Path, rest: &[&'a str]) -> Vec<&'a str> {
    let head = ["eval", "--logs", arg(logs), "--models", arg(models)];
    head.iter().chain(rest).copied().collect()
}

#[test]
fn bad_input_gets_an_error_that_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = format!("{}/nothing/*.jsonl", arg(tmp.path()));
    let err = ANALYSIS.fails(&["ab", "--logs", &missing, "--experiment", "AB"]);
    assert!(
        err.contains("no log files match") && err.contains("'log/**/*.jsonl*'"),
        "{err}"
    );

    let garbage = tmp.path().join("garbage.jsonl");
    fs::write(&garbage, "not a log\n\u{0}\u{1}binary\n{\"message\": 3}\n").unwrap();
    let err = ANALYSIS.fails(&["train", "--logs", arg(&garbage), "--out", arg(tmp.path())]);
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
    let err = ANALYSIS.fails(&["ab", "--logs", arg(&log), "--experiment", "AB"]);
    assert!(err.contains("no event carries experiment \"AB\""), "{err}");
    let err = ANALYSIS.fails(&["ab", "--logs", arg(&log), "--experiment", "AA"]);
    assert!(
        err.contains("control arm C has no users") && err.contains("--control"),
        "{err}"
    );
    let err = ANALYSIS.fails(&[
        "ab",
        "--logs",
        arg(&log),
        "--experiment",
        "AA",
        "--control",
        "B",
    ]);
    assert!(err.contains("--control \"B\" is not an arm label"), "{err}");

    let empty = tmp.path().join("empty-models");
    fs::create_dir_all(&empty).unwrap();
    let err = ANALYSIS.fails(&["eval", "--logs", arg(&log), "--models", arg(&empty)]);
    assert!(
        err.contains("no model files in") && err.contains("analysis train"),
        "{err}"
    );
    let err = ANALYSIS.fails(&["train", "--logs", arg(&log), "--holdout", "1.5"]);
    assert!(err.contains("--holdout must be in"), "{err}");
    let err = ANALYSIS.fails(&["train", "--logs", arg(&log), "--alpha=-1"]);
    assert!(
        err.contains("--alpha must be a non-negative number"),
        "{err}"
    );
    for drift in ["0", "0.95", "NaN"] {
        let err = ANALYSIS.fails(&["train", "--logs", arg(&log), "--drift", drift]);
        assert!(
            err.contains("expected a share in (0, 0.9]"),
            "{drift}: {err}"
        );
    }
}

/// `analysis ARGS --help` names every one of `words`.
fn help_names(args: &[&str], words: &[&str]) {
    let mut args = args.to_vec();
    args.push("--help");
    let (stdout, _) = ANALYSIS.ok(&args);
    for word in words {
        assert!(stdout.contains(word), "{word} in {stdout}");
    }
}

#[test]
fn help_documents_every_subcommand() {
    let (stdout, _) = ANALYSIS.ok(&["--help"]);
    for sub in ["ab", "train", "eval", "synth"] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(sub)),
            "{sub} in {stdout}"
        );
    }
    help_names(
        &["ab"],
        &[
            "--logs",
            "--experiment",
            "--control",
            "--format",
            "--report",
            "--arms",
            "--config",
        ],
    );
    help_names(
        &["eval"],
        &[
            "--models",
            "--recommenders",
            "--catalog",
            "--max-queries",
            "--seed",
            "session_knn",
        ],
    );
    help_names(
        &["train"],
        &[
            "--model",
            "--neighbours",
            "--alpha",
            "--holdout",
            "top_tracks.json",
            "item2item_als.jsonl",
        ],
    );
}
