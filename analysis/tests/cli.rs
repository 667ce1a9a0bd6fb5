//! End to end through the `analysis` binary: synth → ab with a report →
//! train (all models, with a holdout) → eval; and bad input → an error that
//! says what to do, never a panic.

use std::fs;
use std::path::Path;

use testkit::cli::{arg, Program};

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

    let (_, stderr) = ANALYSIS.ok(&[
        "train",
        "--logs",
        arg(&logs),
        "--out",
        arg(&models),
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
    ANALYSIS.ok(&[
        "synth",
        "--out",
        arg(&logs),
        "--events",
        "20000",
        "--users",
        "300",
        "--tracks",
        "1000",
        "--replicas",
        "1",
        "--experiment",
        "AB:2",
    ]);
    // synth's sessions stick to clusters of 50 consecutive ids: one artist each.
    let catalog = tmp.path().join("tracks.jsonl");
    let lines: String = (0..1000)
        .map(|t| {
            format!(
                "{{\"track\": {t}, \"artist\": \"artist-{}\", \"title\": \"t{t}\", \"genre\": \"g{}\"}}\n",
                t / 50,
                t / 250
            )
        })
        .collect();
    fs::write(&catalog, lines).unwrap();
    ANALYSIS.ok(&[
        "train",
        "--logs",
        arg(&logs),
        "--out",
        arg(&models),
        "--model",
        "colisten",
        "--holdout",
        "0.2",
    ]);
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

/// Writes `dir/events.jsonl`: each user of `users` has two closed sessions of
/// three events in experiment AB (arm by botify's mmh3 assignment), every
/// track listened `base(arm) + 0.01 × (user % 5)`. Returns each arm's users
/// and expected mean of the user-level `mean_time_per_session`.
/// `ab --logs LOGS --experiment AB --per-day` followed by `rest`.
fn per_day_args<'a>(logs: &'a Path, rest: &[&'a str]) -> Vec<&'a str> {
    let head = ["ab", "--logs", arg(logs), "--experiment", "AB", "--per-day"];
    head.iter().chain(rest).copied().collect()
}

fn write_day(dir: &Path, users: u64, base: [f64; 2]) -> [(u64, f64); 2] {
    fs::create_dir_all(dir).unwrap();
    let mut lines = String::new();
    let mut sums = [(0u64, 0.0f64); 2];
    let mut ts = 1_000;
    for user in 0..users {
        let arm = botify::experiments::assign("AB", 2, user);
        let label = botify::experiments::arm_label(arm);
        let time = base[arm] + 0.01 * (user % 5) as f64;
        for session in 0..2u32 {
            for i in 0..3u32 {
                ts += 1;
                let track = 100 * session + i;
                let last = i == 2;
                let mut event = serde_json::json!({
                    "message": if last { "last" } else { "next" },
                    "timestamp": ts,
                    "user": user,
                    "track": track,
                    "time": time,
                    "latency": 0.001,
                    "experiments": {"AB": label},
                });
                if !last {
                    event["recommendation"] = (track + 1).into();
                }
                lines.push_str(&event.to_string());
                lines.push('\n');
            }
        }
        // Three events of `time` per session: the user's mean is 3 × time.
        sums[arm].0 += 1;
        sums[arm].1 += 3.0 * time;
    }
    fs::write(dir.join("events.jsonl"), lines).unwrap();
    sums.map(|(n, total)| (n, total / n as f64))
}

#[test]
fn ab_per_day_gives_each_arms_learning_curve() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("log");
    // T1 starts worse than C, catches up, then wins; day-10 sorts after day-2.
    let days = [(1, [0.5, 0.3]), (2, [0.5, 0.5]), (10, [0.5, 0.7])];
    let expected: Vec<(u32, [(u64, f64); 2])> = days
        .iter()
        .map(|&(day, base)| (day, write_day(&logs.join(format!("day-{day}")), 80, base)))
        .collect();
    let reports = tmp.path().join("report");
    let (stdout, stderr) = ANALYSIS.ok(&per_day_args(
        &logs,
        &["--format", "json", "--report", arg(&reports)],
    ));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let keys: Vec<(u64, &str)> = rows
        .iter()
        .map(|r| (r["day"].as_u64().unwrap(), r["arm"].as_str().unwrap()))
        .collect();
    assert_eq!(
        keys,
        [
            (1, "C"),
            (1, "T1"),
            (2, "C"),
            (2, "T1"),
            (10, "C"),
            (10, "T1")
        ],
        "{stdout}"
    );
    for (row, (day, arm)) in rows.iter().zip(
        expected
            .iter()
            .flat_map(|(d, arms)| arms.iter().map(move |a| (d, a))),
    ) {
        let (users, mean) = *arm;
        assert_eq!(row["users"].as_u64().unwrap(), users, "day {day}: {row}");
        let got = row["mean_time_per_session"].as_f64().unwrap();
        assert!((got - mean).abs() < 1e-9, "day {day}: {got} vs {mean}");
    }
    let effect = |i: usize| rows[i]["effect"].as_f64().unwrap();
    let significant = |i: usize| rows[i]["significant"].as_bool().unwrap();
    for control in [0, 2, 4] {
        for field in ["effect", "lower", "upper", "significant"] {
            assert!(rows[control][field].is_null(), "{}", rows[control]);
        }
    }
    for (treated, control) in [(1, 0), (3, 2), (5, 4)] {
        let c = rows[control]["mean_time_per_session"].as_f64().unwrap();
        let t = rows[treated]["mean_time_per_session"].as_f64().unwrap();
        assert!((effect(treated) - (t - c) / c * 100.0).abs() < 1e-9);
        let (lower, upper) = (
            rows[treated]["lower"].as_f64().unwrap(),
            rows[treated]["upper"].as_f64().unwrap(),
        );
        assert!(lower < effect(treated) && effect(treated) < upper);
    }
    // The learning curve: T1 below C on day 1, level on day 2, above on day 10.
    assert!(effect(1) < -30.0 && significant(1), "{stdout}");
    assert!(effect(3).abs() < 5.0, "{stdout}");
    assert!(effect(5) > 30.0 && significant(5), "{stdout}");
    for day in [1, 2, 10] {
        assert!(
            stderr.contains(&format!("day {day}: users per arm: C ")),
            "{stderr}"
        );
    }
    for file in ["index.html", "learning_curve.svg", "daily_effects.svg"] {
        assert!(reports.join(file).is_file(), "{file}");
    }
    let html = fs::read_to_string(reports.join("index.html")).unwrap();
    assert!(html.contains("Learning curves: experiment AB"), "{html}");

    // The terminal table: one line per (day, arm), then one SRM line per day.
    let (stdout, _) = ANALYSIS.ok(&per_day_args(&logs, &[]));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("day") && lines[0].contains("mean_time_per_session"),
        "{stdout}"
    );
    assert!(
        lines[2].split_whitespace().take(2).eq(["1", "C"]),
        "{stdout}"
    );
    assert!(
        lines[7].split_whitespace().take(2).eq(["10", "T1"]),
        "{stdout}"
    );
    assert!(lines[7].ends_with("true"), "{stdout}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("day ") && l.contains("SRM"))
            .count(),
        3,
        "{stdout}"
    );
}

#[test]
fn ab_per_day_names_the_layout_it_expects() {
    let tmp = tempfile::tempdir().unwrap();
    let flat = tmp.path().join("flat");
    write_day(&flat, 10, [0.5, 0.5]);
    let err = ANALYSIS.fails(&per_day_args(&flat, &[]));
    assert!(
        err.contains("no day-<n> subfolders") && err.contains("LOGDIR/day-1, LOGDIR/day-2"),
        "{err}"
    );
    let file = flat.join("events.jsonl");
    let err = ANALYSIS.fails(&per_day_args(&file, &[]));
    assert!(
        err.contains("is not a folder") && err.contains("LOGDIR/day-1"),
        "{err}"
    );
    // Without --per-day the same folder is one log.
    ANALYSIS.ok(&["ab", "--logs", arg(&flat), "--experiment", "AB"]);

    // A day without the experiment is named in the error.
    let logs = tmp.path().join("log");
    write_day(&logs.join("day-1"), 10, [0.5, 0.5]);
    fs::create_dir_all(logs.join("day-2")).unwrap();
    fs::write(
        logs.join("day-2/events.jsonl"),
        "{\"message\":\"last\",\"timestamp\":1,\"user\":1,\"track\":2,\"time\":1.0,\"latency\":0.001,\"experiments\":{\"AA\":\"C\"}}\n",
    )
    .unwrap();
    let err = ANALYSIS.fails(&per_day_args(&logs, &[]));
    assert!(
        err.contains("day 2") && err.contains("no event carries experiment \"AB\""),
        "{err}"
    );
}
