//! `analysis export --format parquet` read back by another engine: DuckDB
//! (the Python package, as an analyst runs it) computes the A/B table's
//! per-user metrics from the Parquet dataset with analysis/sql/user_metrics.sql,
//! the query the README shows, and they must equal what the analysis crate
//! computes from the JSON logs.
//!
//! The logs hold what real ones hold: several replicas and rotated files
//! spanning two UTC days, a `day-<n>` folder of an in-process run, a gzipped
//! file, broken lines, events without the partition experiment, fallbacks,
//! recommenders, and a `last` sharing its millisecond with the next session's
//! first event (only `seq` orders them).
//!
//! The pinned `duckdb` package in `e2e/.venv` is required (scripts/test
//! installs it from `e2e/requirements.txt`):
//! without it this test fails, it does not skip.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use analysis::ab;
use analysis::export::{self, ExportOptions};
use analysis::logs::{self, parse_arm_label, ReadOptions};
use analysis::synth::{self, SynthParams};
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::RecordBatch;
use botify::events::{Event, Message};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use testkit::cli::{arg, Program};
use testkit::file_names;

/// This build's `analysis` binary, run as a user runs it.
const ANALYSIS: Program = Program::new(env!("CARGO_BIN_EXE_analysis"));

/// 10 s before midnight UTC (2023-11-15): synth's events cross into the next day.
const BEFORE_MIDNIGHT: u64 = 1_700_006_390_000;
/// In simulated-day folders the day comes from the folder, not from this.
const SIMULATED_DAY_2: u64 = 1_767_312_000_000; // 2026-01-02T00:00:00Z

fn event(user: u64, timestamp: u64, track: u32, time: f64, next: Option<u32>) -> Event {
    Event {
        message: if next.is_some() {
            Message::Next
        } else {
            Message::Last
        },
        timestamp,
        user,
        track,
        time,
        latency: 0.0001 * (track % 7 + 1) as f64,
        recommendation: next,
        propensity: None,
        experiments: [("AA", "C"), ("AB", "T1")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        recommender: Some("memory".to_string()),
        fallback: false,
        model_version: Some("0123456789abcdef".to_string()),
    }
}

fn line(event: &Event) -> String {
    serde_json::to_string(event).unwrap() + "\n"
}

/// Synthetic replicas across midnight, plus an in-process `day-2` folder
/// with every field botify writes and every kind of damage.
fn write_logs(root: &Path) {
    let params = SynthParams {
        events: 30_000,
        users: 500,
        tracks: 2_000,
        replicas: 2,
        rotate_events: 4_000,
        experiments: vec!["AA:2".parse().unwrap(), "AB:3:0.1".parse().unwrap()],
        start_ms: BEFORE_MIDNIGHT,
        ..SynthParams::default()
    };
    synth::generate(
        &root.join("live"),
        &params,
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap();

    let day = root.join("sim").join("day-2");
    fs::create_dir_all(&day).unwrap();
    let t = SIMULATED_DAY_2;
    let mut plain = String::new();
    // User 900 in AB=T1: a session closed by `last`, then a session starting
    // in the same millisecond, served by a fallback, closed too.
    plain += &line(&event(900, t, 10, 1.0, Some(11)));
    plain += &line(&event(900, t + 5, 11, 0.75, Some(12)));
    plain += &line(&event(900, t + 9, 12, 0.25, None));
    let mut fallback = event(900, t + 9, 30, 1.0, Some(31));
    fallback.fallback = true;
    fallback.recommender = None;
    plain += &line(&fallback);
    plain += &line(&event(900, t + 12, 31, 0.5, None));
    // Broken lines, counted and skipped by both readers.
    plain += "not json\n";
    plain += r#"{"message":"next","timestamp":1,"user":1,"track":2,"time":0.5,"latency":0,"experiments":{"AB":"X"}}"#;
    plain += "\n";
    // An event without AB: exported to the null partition, left out by `ab`.
    let mut no_ab = event(901, t + 20, 40, 1.0, None);
    no_ab.experiments.remove("AB");
    plain += &line(&no_ab);
    plain += r#"{"message":"next","timest"#; // cut mid-write
    fs::write(day.join("events-1-1-00000.jsonl"), plain).unwrap();

    // A rotated, gzipped file of the same run: user 902, one session.
    let gz = fs::File::create(day.join("events-1-1-00001.jsonl.1.gz")).unwrap();
    let mut encoder = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
    for (i, next) in [Some(51), Some(52), None].into_iter().enumerate() {
        let mut e = event(902, t + 100 + i as u64, 50 + i as u32, 0.5, next);
        e.experiments.insert("AB".into(), "C".into());
        e.recommender = Some("sticky_artist".into());
        encoder.write_all(line(&e).as_bytes()).unwrap();
    }
    encoder.finish().unwrap();
}

/// The per-user metrics as the analysis crate computes them from the JSON
/// logs: `ab`'s own reading, sessionization and aggregation.
fn expected_users(logs_root: &Path) -> BTreeMap<(u64, u8), [f64; 5]> {
    let paths = logs::resolve(&[arg(logs_root).to_string()]).unwrap();
    let options = ReadOptions {
        experiment: Some("AB".into()),
        ..ReadOptions::default()
    };
    let read = logs::read(&paths, &options).unwrap();
    let analysis = ab::analyze(read.records, "AB", None, 0).unwrap();
    ab::user_metrics(&analysis.sessions)
        .into_iter()
        .map(|u| ((u.user, u.arm), u.values))
        .collect()
}

/// What DuckDB reads from the export (see tests/duckdb_user_metrics.py).
fn duckdb(export: &Path) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/duckdb_user_metrics.py");
    let out = testkit::tools::python()
        .arg(&script)
        .arg(export)
        .arg("AB")
        .output()
        .unwrap_or_else(|e| panic!("cannot run e2e/.venv/bin/python ({e}): run scripts/test"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "DuckDB could not read the export (is duckdb installed in e2e/.venv? \
         scripts/test installs it from e2e/requirements.txt):\n{stderr}"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A temporary folder with the test logs in `log/` (returned); the folder
/// goes when the first value is dropped.
fn logs_folder() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("log");
    write_logs(&root);
    (tmp, root)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn duckdb_reproduces_the_ab_per_user_metrics_from_the_export() {
    let (tmp, root) = logs_folder();
    let out = tmp.path().join("export");
    let run = ANALYSIS.output(&[
        "export",
        "--format",
        "parquet",
        "--out",
        arg(&out),
        "--logs",
        arg(&root),
        "--partition-experiment",
        "AB",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "skipped 3 broken lines (1 not JSON, 1 truncated, 1 with missing or invalid fields)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 events do not carry experiment \"AB\""),
        "{stderr}"
    );

    let read = duckdb(&out);
    let expected = expected_users(&root);
    let got: BTreeMap<(u64, u8), [f64; 5]> = read["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let row = row.as_array().unwrap();
            let arm = parse_arm_label(row[1].as_str().unwrap()).unwrap();
            let values: Vec<f64> = row[2..].iter().map(|v| v.as_f64().unwrap()).collect();
            ((row[0].as_u64().unwrap(), arm), values.try_into().unwrap())
        })
        .collect();
    assert!(expected.len() > 500, "{} users", expected.len());
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the same (user, arm) pairs"
    );
    for (key, want) in &expected {
        let have = got[key];
        for (metric, (h, w)) in ab::METRICS.iter().zip(have.iter().zip(want)) {
            assert!(
                close(*h, *w),
                "user {key:?} {metric}: DuckDB {h} vs analysis {w}"
            );
        }
    }
    // User 900's two sessions share a millisecond at the boundary: only
    // `seq` keeps the `last` before the next session's first event.
    assert_eq!(got[&(900, 1)][1], 2.0);
    assert!(close(got[&(900, 1)][0], 3.5));

    // Every valid event, each once, in partitions by day (UTC, or the
    // simulated day of the folder) and AB arm, the event without AB in the
    // null partition.
    let events = 30_000 + 5 + 1 + 3;
    assert_eq!(read["rows"], events);
    assert_eq!(read["seq"], serde_json::json!([0, events - 1, events]));
    let partitions = read["partitions"].as_array().unwrap();
    let days: std::collections::BTreeSet<&str> =
        partitions.iter().map(|p| p[0].as_str().unwrap()).collect();
    assert_eq!(
        days.into_iter().collect::<Vec<_>>(),
        ["2023-11-14", "2023-11-15", "2026-01-02"]
    );
    assert!(partitions.contains(&serde_json::json!(["2026-01-02", null, 1])));
    assert!(partitions.contains(&serde_json::json!(["2026-01-02", "C", 3])));
    for arm in ["C", "T1", "T2"] {
        assert!(
            partitions
                .iter()
                .any(|p| p[0] == "2023-11-15" && p[1] == arm),
            "{partitions:?}"
        );
    }
    assert_eq!(read["fallbacks"], 1);
    assert_eq!(
        read["recommenders"],
        serde_json::json!([["memory", 5], ["sticky_artist", 3]])
    );
}

/// Every row of an export, file by file in path order.
fn read_export(dir: &Path) -> Vec<(PathBuf, Vec<RecordBatch>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let file = fs::File::open(&path).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            let batches = reader.map(|b| b.unwrap()).collect();
            (path.strip_prefix(dir).unwrap().to_path_buf(), batches)
        })
        .collect()
}

#[test]
fn export_is_the_same_whatever_the_threads_and_rolls_files_at_the_row_limit() {
    let (tmp, root) = logs_folder();
    let paths = logs::resolve(&[arg(&root).to_string()]).unwrap();
    let export = |name: &str, threads: usize, chunk_bytes: u64| {
        let options = ExportOptions {
            threads,
            chunk_bytes,
            rows_per_file: 2_000,
            ..ExportOptions::new(tmp.path().join(name), Some("AB".into()))
        };
        let report = export::export(&paths, &options).unwrap();
        (report, read_export(&tmp.path().join(name)))
    };
    let (one_report, one) = export("one", 1, 1 << 30);
    let (many_report, many) = export("many", 3, 10_000);
    assert_eq!(one, many);
    assert_eq!(one_report.files, many_report.files);
    assert_eq!(one_report.read.events, 30_009);
    assert_eq!(one_report.rows(), 30_009);

    // Files roll at 2,000 rows: part-00000 … in each partition, all full but the last.
    let mut per_partition: BTreeMap<_, Vec<u64>> = BTreeMap::new();
    for file in &one_report.files {
        per_partition
            .entry(file.partition)
            .or_default()
            .push(file.rows);
        let name = file.path.file_name().unwrap().to_str().unwrap();
        let part = per_partition[&file.partition].len() - 1;
        assert_eq!(name, format!("part-{part:05}.parquet"));
    }
    assert!(per_partition.values().any(|rows| rows.len() > 2));
    for rows in per_partition.values() {
        let (last, full) = rows.split_last().unwrap();
        assert!(
            full.iter().all(|&r| r == 2_000) && (1..=2_000).contains(last),
            "{rows:?}"
        );
    }
    // Within a partition, rows keep reading order.
    for (_, batches) in &one {
        let seq: Vec<u64> = batches
            .iter()
            .flat_map(|b| {
                b.column_by_name("seq")
                    .unwrap()
                    .as_primitive::<UInt64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert!(seq.windows(2).all(|w| w[0] < w[1]));
    }
}

#[test]
fn export_replaces_only_an_earlier_export_and_explains_itself() {
    let (tmp, root) = logs_folder();
    let out = tmp.path().join("export");
    let args = |extra: &[&str]| {
        let mut args = vec!["export", "--out", arg(&out), "--logs", arg(&root)];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ANALYSIS.output(&refs)
    };
    // Default partition experiment: the first of the first event's (AA).
    let first = run(args(&[]));
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(
        stderr.contains("partitioning by experiment \"AA\""),
        "{stderr}"
    );
    assert!(out
        .join("day=2023-11-15/AA=T1/part-00000.parquet")
        .is_file());

    // A second export refuses to overwrite without --overwrite …
    let again = run(args(&["--partition-experiment", "AB"]));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(stderr.contains("pass --overwrite"), "{stderr}");
    // … replaces the earlier export with it …
    let replaced = run(args(&["--partition-experiment", "AB", "--overwrite"]));
    assert!(replaced.status.success());
    assert!(out.join("day=2023-11-15/AB=T2").is_dir());
    assert!(!out.join("day=2023-11-15/AA=T1").exists());
    // … but never a folder holding anything else.
    fs::write(out.join("notes.txt"), "mine").unwrap();
    let refused = run(args(&["--overwrite"]));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("refusing to replace") && stderr.contains("notes.txt"),
        "{stderr}"
    );
    assert!(out.join("notes.txt").is_file());

    // An experiment name that cannot be a column is refused up front, and a
    // failed export leaves no temporary folder beside --out.
    let other = tmp.path().join("other");
    let bad = ANALYSIS.output(&[
        "export",
        "--out",
        arg(&other),
        "--logs",
        arg(&root),
        "--partition-experiment",
        "user",
    ]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && !stderr.contains("panicked"));
    assert!(
        stderr.contains("clash with the column \"user\""),
        "{stderr}"
    );
    let leftovers: Vec<_> = file_names(tmp.path())
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!other.exists());

    ANALYSIS.assert_help_names(
        "export",
        &[
            "day=2026-01-01/MEMORY=T2",
            "__HIVE_DEFAULT_PARTITION__",
            "--partition-experiment",
            "seq",
        ],
    );
}
