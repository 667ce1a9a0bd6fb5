//! The full A/B table against values computed independently with the
//! analysts' pandas/scipy notebook.
//!
//! Fixture and expected numbers come from `tests/data/notebook_reference.py`
//! (pandas 3.1.1, scipy 1.17.1, mmh3): it writes the two replica files
//! (events shuffled across them, one line that is not JSON, one with missing
//! fields, one cut mid-write, one event without the experiment, six sessions
//! left open) and runs the notebook's sessionize → groupby → Welch code, with
//! the interval cross-checked against `scipy.stats.ttest_ind(equal_var=False)`.
//! Its printed rows are pasted below; Python is not needed to run this test.

use std::path::PathBuf;

use analysis::ab;
use analysis::logs::{self, ReadOptions};
use testkit::cli::{run_ok, Program};

/// This build's `analysis` binary, run as a user runs it.
const ANALYSIS: Program = Program::new(env!("CARGO_BIN_EXE_analysis"));

/// (treatment, metric, control_mean, treatment_mean, effect, lower, upper, significant)
type Row<'a> = (&'a str, &'a str, f64, f64, f64, f64, f64, bool);

const EXPECTED: [Row<'static>; 10] = [
    (
        "T1",
        "time",
        5.548333333333333,
        6.8372222222222225,
        23.230199259036763,
        -20.595891297978323,
        67.05628981605184,
        false,
    ),
    (
        "T1",
        "sessions",
        2.3333333333333335,
        2.6666666666666665,
        14.28571428571427,
        -25.81248721144332,
        54.38391578287186,
        false,
    ),
    (
        "T1",
        "mean_request_latency",
        4.606797585013026,
        4.534087482814934,
        -1.578322052495519,
        -25.233974351211018,
        22.07733024621998,
        false,
    ),
    (
        "T1",
        "mean_tracks_per_session",
        3.7361111111111107,
        3.7222222222222223,
        -0.3717472118958976,
        -27.388470002990275,
        26.644975579198476,
        false,
    ),
    (
        "T1",
        "mean_time_per_session",
        2.38625,
        2.681712962962963,
        12.38189472867314,
        -14.255107038115003,
        39.018896495461284,
        false,
    ),
    (
        "T2",
        "time",
        5.548333333333333,
        5.433,
        -2.0787023130069042,
        -47.89731183394974,
        43.73990720793593,
        false,
    ),
    (
        "T2",
        "sessions",
        2.3333333333333335,
        3.1,
        32.857142857142854,
        -13.641180698253757,
        79.35546641253947,
        false,
    ),
    (
        "T2",
        "mean_request_latency",
        4.606797585013026,
        4.469326675407926,
        -2.984088340506313,
        -29.26471258145757,
        23.296535900444944,
        false,
    ),
    (
        "T2",
        "mean_tracks_per_session",
        3.7361111111111107,
        2.808333333333333,
        -24.832713754646836,
        -52.317607696796934,
        2.6521801875032547,
        false,
    ),
    (
        "T2",
        "mean_time_per_session",
        2.38625,
        1.731083333333333,
        -27.45591059891742,
        -51.20285797585653,
        -3.7089632219783017,
        true,
    ),
];

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn assert_row(got: Row<'_>, want: Row<'_>) {
    assert_eq!(
        (got.0, got.1, got.7),
        (want.0, want.1, want.7),
        "{got:?} vs {want:?}"
    );
    for (g, w) in [
        (got.2, want.2),
        (got.3, want.3),
        (got.4, want.4),
        (got.5, want.5),
        (got.6, want.6),
    ] {
        assert!(close(g, w), "{got:?} vs {want:?}");
    }
}

#[test]
fn table_matches_the_notebook() {
    let paths = logs::resolve(&[format!("{}/notebook-*.jsonl", data_dir().display())]).unwrap();
    assert_eq!(paths.len(), 2);
    let options = ReadOptions {
        experiment: Some("EXP".into()),
        ..ReadOptions::default()
    };
    let read = logs::read(&paths, &options).unwrap();
    let r = &read.report;
    assert_eq!(
        (r.events, r.not_json, r.bad_fields, r.truncated),
        (394, 1, 1, 1),
        "{r}"
    );

    let analysis = ab::analyze(read.records, "EXP", Some(3), 0).unwrap();
    assert_eq!(analysis.events_without_arm, 1);
    assert_eq!(
        analysis.misassigned_users, 0,
        "fixture arms are the mmh3 assignment"
    );
    assert_eq!(
        (
            analysis.session_report.sessions,
            analysis.session_report.open
        ),
        (107, 6)
    );

    // scipy.stats.chisquare([12, 18, 10]) = (2.6, 0.2725317930340126)
    let srm = &analysis.table.srm;
    assert_eq!(srm.users, vec![12, 18, 10]);
    assert!(
        close(srm.chi2, 2.6) && close(srm.p_value, 0.2725317930340126),
        "{srm:?}"
    );
    assert!(!srm.mismatch());

    assert_eq!(analysis.table.rows.len(), EXPECTED.len());
    for (row, want) in analysis.table.rows.iter().zip(EXPECTED) {
        let got = (
            row.treatment.as_str(),
            row.metric.as_str(),
            row.estimate.control_mean,
            row.estimate.treatment_mean,
            row.estimate.effect,
            row.estimate.lower,
            row.estimate.upper,
            row.significant,
        );
        assert_row(got, want);
    }
}

#[test]
fn cli_json_matches_the_notebook() {
    let (stdout, stderr) = run_ok(
        ANALYSIS
            .command(&["ab", "--experiment", "EXP", "--format", "json", "--logs"])
            .arg(data_dir().join("notebook-replica-a.jsonl"))
            .arg(data_dir().join("notebook-replica-b.jsonl")),
    );
    assert!(stderr.contains("skipped 3 broken lines"), "{stderr}");
    assert!(
        stderr.contains("left out 6 sessions with no `last`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("users per arm: C 12, T1 18, T2 10"),
        "{stderr}"
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows.len(), EXPECTED.len());
    for (row, want) in rows.iter().zip(EXPECTED) {
        let f = |k: &str| row[k].as_f64().unwrap();
        let got = (
            row["treatment"].as_str().unwrap(),
            row["metric"].as_str().unwrap(),
            f("control_mean"),
            f("treatment_mean"),
            f("effect"),
            f("lower"),
            f("upper"),
            row["significant"].as_bool().unwrap(),
        );
        assert_row(got, want);
    }
}

#[test]
fn cli_csv_and_markdown_carry_the_same_rows() {
    let run = |format: &str| {
        let mut command = ANALYSIS.command(&[
            "ab",
            "--experiment",
            "EXP",
            "--arms",
            "3",
            "--format",
            format,
            "--logs",
        ]);
        run_ok(command.arg(data_dir())).0
    };
    let csv = run("csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("treatment,metric,control_mean,treatment_mean,effect,lower,upper,significant")
    );
    assert_eq!(
        lines.next(),
        Some("T1,time,5.5483,6.8372,+23.23%,-20.60%,+67.06%,false")
    );
    assert_eq!(csv.lines().count(), 11);
    let markdown = run("markdown");
    // The one significant row (a loss) is bold; the others are plain.
    assert!(
        markdown.contains("| **T2** | **mean_time_per_session** | **2.3862** | **1.7311** | **-27.46%** | **-51.20%** | **-3.71%** | **true** |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| T2 | time | 5.5483 | 5.4330 | -2.08% | -47.90% | +43.74% | false |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("users per arm: C 12, T1 18, T2 10"),
        "{markdown}"
    );
    let table = run("table");
    assert!(!table.contains('\u{1b}'), "NO_COLOR and a pipe: no escapes");
    assert!(table.contains("+23.23%"), "{table}");
}
