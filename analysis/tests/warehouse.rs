//! The warehouse path: `analysis export`'s Parquet, the sufficient
//! statistics of analysis/sql/ab_stats.sql computed by DuckDB and by Spark
//! (scripts/spark_ab.py in a local SparkSession, `local[2]`), and
//! `analysis ab --stats` on them must print what `analysis ab` prints from
//! the JSON logs: every row of the notebook's table, and of the extended
//! analysis with CUPED and the delta-method ratio metrics, to 1e-9.
//!
//! Each engine writes CSV, JSON and Parquet (tests/warehouse_stats.py), so
//! every format `--stats` reads is checked. The pinned `duckdb` and `pyspark`
//! packages in `e2e/.venv` and a Java runtime are required (scripts/test
//! installs them): without them these tests fail, they do not skip.

use std::path::{Path, PathBuf};

use analysis::synth::{self, SynthParams};
use serde_json::Value;
use testkit::cli::{arg, Program};

/// This build's `analysis` binary, run as a user runs it.
const ANALYSIS: Program = Program::new(env!("CARGO_BIN_EXE_analysis"));

/// The experiment's first day: days 1–2 are CUPED's pre-period.
const START: &str = "2026-01-03";

/// Six UTC days of synthetic logs from 2026-01-01, three arms, rotated
/// files of two replicas; exported to Parquet partitioned by AB's arm.
/// Returns the logs and the export.
fn logs_and_export(root: &Path) -> (PathBuf, PathBuf) {
    let logs = root.join("log");
    let params = SynthParams {
        events: 30_000,
        users: 1_500,
        tracks: 2_000,
        replicas: 2,
        rotate_events: 6_000,
        days: 6,
        // 2026-01-01T05:59:29Z. The synthetic clock runs on from day to day
        // (about 12 s of events a day), so the experiment's first day, the
        // third, straddles 06:00: its sessions fall on both sides of the
        // night/morning boundary.
        start_ms: 1_767_247_169_000,
        experiments: vec!["AB:3:0.05".parse().unwrap()],
        ..SynthParams::default()
    };
    synth::generate(&logs, &params, &indicatif::ProgressBar::hidden()).unwrap();
    let export = root.join("export");
    ANALYSIS.ok(&[
        "export",
        "--format",
        "parquet",
        "--out",
        arg(&export),
        "--logs",
        arg(&logs),
        "--partition-experiment",
        "AB",
    ]);
    (logs, export)
}

/// A catalog of the synthetic logs' tracks with five genres (and one track
/// without a genre, which segments as "unknown").
fn catalog(root: &Path) -> PathBuf {
    let path = root.join("tracks.jsonl");
    let lines: Vec<String> = (0..2_000)
        .map(|t| {
            let genre = match t {
                7 => String::new(),
                t => format!(r#","genre":"genre-{}""#, t % 5),
            };
            format!(
                r#"{{"track":{t},"artist":"a{}","title":"t{t}"{genre}}}"#,
                t % 40
            )
        })
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

/// Runs tests/warehouse_stats.py with `engine` into `out`.
fn statistics(engine: &str, export: &Path, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/warehouse_stats.py");
    let run = testkit::tools::python()
        .arg(&script)
        .args([engine, arg(export), "AB", START, arg(out)])
        .arg(catalog(out))
        .output()
        .unwrap_or_else(|e| panic!("cannot run e2e/.venv/bin/python ({e}): run scripts/test"));
    assert!(
        run.status.success(),
        "{engine} could not compute the statistics (are duckdb, pyspark and a Java runtime \
         installed? scripts/test installs them):\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// `analysis ab … --format json` with `args`, parsed.
fn ab_json(args: &[&str]) -> Value {
    let mut all = vec!["ab", "--experiment", "AB", "--format", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ANALYSIS.ok(&all).0).unwrap()
}

/// `got` equals `want`: the same keys, strings, booleans and nulls, numbers
/// within 1e-9 (relative, absolute below 1).
fn assert_same(got: &Value, want: &Value, path: &str) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            assert_eq!(
                g.keys().collect::<Vec<_>>(),
                w.keys().collect::<Vec<_>>(),
                "{path}"
            );
            for (k, v) in w {
                assert_same(&g[k], v, &format!("{path}.{k}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{path}: rows");
            for (i, (g, w)) in g.iter().zip(w).enumerate() {
                assert_same(g, w, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(g), Value::Number(w)) => {
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{path}: {g} from the aggregates, {w} from the logs"
            );
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

/// Every statistics file of `engine` in `out` against the logs' tables.
fn check_engine(engine: &str, files: &[&str], grouped: &[(&str, &str, usize)]) {
    let tmp = tempfile::tempdir().unwrap();
    let (logs, export) = logs_and_export(tmp.path());
    let out = tmp.path().join(engine);
    statistics(engine, &export, &out);

    let notebook = ab_json(&["--logs", arg(&logs)]);
    let extended = ab_json(&["--logs", arg(&logs), "--metrics", "all", "--start", START]);
    // The extended analysis's every kind of row is there to compare.
    assert_eq!(notebook.as_array().unwrap().len(), 2 * 5);
    let rows = extended["rows"].as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["metric"] == "session_time"),
        "delta-method rows"
    );
    assert!(rows.iter().all(|r| r["variance_reduction"].is_f64()));
    assert_eq!(extended["cuped"].as_array().unwrap().len(), 14);
    assert!(
        extended["cuped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["theta"].as_f64().unwrap() != 0.0),
        "CUPED adjusted something"
    );

    for file in files {
        let path = out.join(file);
        let got = ab_json(&["--stats", arg(&path)]);
        // Files of the run with a start day carry a pre-period: `--stats`
        // runs the extended analysis with CUPED, as `--start` does.
        let want = if file.starts_with("start") {
            &extended
        } else {
            &notebook
        };
        assert_same(&got, want, &format!("{engine} {file}"));
    }
    // The extended analysis of the run without a start day, picked by --metrics.
    let all = ab_json(&[
        "--stats",
        arg(&out.join(files[0])),
        "--metrics",
        "time,session_time,fallback_rate",
    ]);
    let want = ab_json(&[
        "--logs",
        arg(&logs),
        "--metrics",
        "time,session_time,fallback_rate",
    ]);
    assert_same(&all, &want, &format!("{engine} --metrics"));

    // Segments and the trend from the per-group and per-pair rows.
    let catalog = out.join("tracks.jsonl");
    for &(file, by, segments) in grouped {
        let mut from_logs = vec!["--logs", arg(&logs), "--start", START];
        from_logs.extend(["--segment-by", by, "--trend", "--catalog", arg(&catalog)]);
        let want = ab_json(&from_logs);
        // Every segment tested for both treatments, and the heterogeneity
        // and trend tests there to compare.
        let rows = want["segments"]["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2 * segments, "{by}: {rows:?}");
        let heterogeneity = want["segments"]["heterogeneity"].as_array().unwrap();
        assert_eq!(heterogeneity.len(), if segments > 1 { 2 } else { 0 });
        assert_eq!(want["trend"]["tests"].as_array().unwrap().len(), 2);
        let got = ab_json(&[
            "--stats",
            arg(&out.join(file)),
            "--segment-by",
            by,
            "--trend",
        ]);
        assert_same(&got, &want, &format!("{engine} {file}"));
    }

    // The report from aggregates: the table and the effects, no per-session charts.
    let report = tmp.path().join("report");
    ANALYSIS.ok(&[
        "ab",
        "--stats",
        arg(&out.join(files[0])),
        "--experiment",
        "AB",
        "--report",
        arg(&report),
    ]);
    let page = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(
        page.contains("Computed from sufficient statistics"),
        "{page}"
    );
    assert!(page.contains("mean_time_per_session"), "{page}");
    assert!(report.join("effects.svg").exists());
    assert!(!report.join("session_length.svg").exists());
}

#[test]
fn duckdb_aggregates_print_the_same_tables_as_the_logs() {
    check_engine(
        "duckdb",
        &["all.csv", "all.json", "start.csv", "start.parquet"],
        &[
            ("grouped-listener.json", "listener", 2),
            // Night and morning (see logs_and_export).
            ("grouped-daypart.csv", "daypart", 2),
        ],
    );
}

#[test]
fn spark_aggregates_print_the_same_tables_as_the_logs() {
    check_engine(
        "spark",
        &["all.csv", "start.json", "start.parquet"],
        // Five genres tested; the one track without a genre ("unknown") has
        // too few listeners to test.
        &[("grouped-genre.json", "genre", 5)],
    );
}

#[test]
fn stats_flags_and_files_that_cannot_be_read_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("stats.csv");
    std::fs::write(
        &file,
        "experiment,arm,metric,users,n,sum_y,sum_y2\nAB,C,time,2,2,3,5\n",
    )
    .unwrap();
    let path = arg(&file);
    let refused = |flags: &[&str], says: &[&str]| {
        let mut args = vec!["ab", "--stats", path];
        args.extend_from_slice(flags);
        let stderr = ANALYSIS.fails(&args);
        assert!(
            says.iter().all(|s| stderr.contains(s)),
            "{flags:?}: {stderr}"
        );
    };
    refused(
        &["--experiment", "XY"],
        &["no rows of experiment \"XY\"", "it has AB"],
    );
    // A start day is the SQL's.
    refused(
        &["--experiment", "AB", "--start", "3"],
        &["cannot be used with"],
    );
    // Per-day and per-segment rows come only when the SQL was asked for
    // them; quantiles need every session.
    refused(&["--experiment", "AB", "--trend"], &["no per-day rows"]);
    refused(
        &["--experiment", "AB", "--segment-by", "daypart"],
        &["no per-segment rows by daypart"],
    );
    refused(
        &["--experiment", "AB", "--quantiles"],
        &["cannot be used with"],
    );
    std::fs::write(
        &file,
        "experiment,arm,metric,users,n,sum_y,sum_y2\nAB,C,time,2,x,3,5\n",
    )
    .unwrap();
    refused(&["--experiment", "AB"], &["row 1", "\"x\" is not a number"]);
    let stderr = ANALYSIS.fails(&["ab", "--experiment", "AB"]);
    assert!(stderr.contains("--logs"), "{stderr}");
}
