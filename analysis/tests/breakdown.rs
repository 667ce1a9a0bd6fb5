//! Segments, the effect over time, quantiles and exposure end to end
//! through the `analysis` binary, on logs `analysis synth` generates over
//! six UTC days (a treatment with a real uplift): what each prints, that
//! every segment carries its Benjamini–Hochberg correction and its own SRM,
//! that the exposure design counts every assigned user, and the errors.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use serde_json::Value;
use testkit::cli::{arg, column, Program};

const ANALYSIS: Program = Program::new(env!("CARGO_BIN_EXE_analysis"));

const TRACKS: u32 = 2_000;

/// Six days of synthetic logs, experiment `AB` with a 30% uplift, and a
/// catalog giving each 50-track cluster one of four genres.
fn generate(dir: &Path) -> (String, String) {
    let logs = dir.join("logs");
    ANALYSIS.ok(&[
        "synth",
        "--out",
        arg(&logs),
        "--events",
        "120000",
        "--users",
        "2500",
        "--tracks",
        &TRACKS.to_string(),
        "--days",
        "6",
        "--experiment",
        "AB:2:0.3",
        "--seed",
        "11",
    ]);
    let catalog = dir.join("tracks.jsonl");
    let lines: String = (0..TRACKS)
        .map(|t| {
            serde_json::json!({
                "track": t, "artist": format!("a{}", t / 10), "title": format!("t{t}"),
                "genre": format!("g{}", (t / 50) % 4),
            })
            .to_string()
                + "\n"
        })
        .collect();
    fs::write(&catalog, lines).unwrap();
    (logs.display().to_string(), catalog.display().to_string())
}

/// `ab --logs LOGS --experiment AB` followed by `rest`.
fn ab<'a>(logs: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["ab", "--logs", logs, "--experiment", "AB"];
    args.extend(rest);
    args
}

fn ab_json(logs: &str, rest: &[&str]) -> Value {
    let mut args = ab(logs, &["--format", "json"]);
    args.extend(rest);
    let (stdout, _) = ANALYSIS.ok(&args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Benjamini–Hochberg by hand: p × m / rank, then the running minimum from
/// the largest p down.
fn bh(p: &[f64]) -> Vec<f64> {
    let m = p.len() as f64;
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; p.len()];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m / (rank as f64 + 1.0)).min(1.0);
        out[i] = running;
    }
    out
}

fn check_segments(json: &Value, by: &str, expected: &[&str]) {
    let segments = &json["segments"];
    assert_eq!(segments["by"], by);
    assert_eq!(segments["metric"], "mean_time_per_session");
    let rows = segments["rows"].as_array().unwrap();
    let labels = column(&segments["rows"], "segment");
    let untested: Vec<&str> = segments["too_small"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let mut all: Vec<&str> = labels.iter().chain(&untested).copied().collect();
    all.sort_unstable();
    assert_eq!(all, expected, "{segments}");
    assert!(labels.len() >= 2, "{segments}");
    let p: Vec<f64> = rows.iter().map(|r| f(&r["p_value"])).collect();
    for (row, q) in rows.iter().zip(bh(&p)) {
        assert!((f(&row["p_adjusted"]) - q).abs() < 1e-12, "{row}");
        assert_eq!(row["significant"], q < 0.05, "{row}");
        assert!(f(&row["lower"]) <= f(&row["effect"]) && f(&row["effect"]) <= f(&row["upper"]));
        assert!((0.0..=1.0).contains(&f(&row["srm_p_value"])), "{row}");
        assert!(row["control_users"].as_u64().unwrap() >= 30);
    }
    let h = &segments["heterogeneity"][0];
    assert_eq!(h["treatment"], "T1");
    assert_eq!(h["dof"].as_u64().unwrap() as usize, labels.len() - 1);
    assert!(
        f(&h["q"]) >= 0.0 && (0.0..=1.0).contains(&f(&h["p_value"])),
        "{h}"
    );
}

#[test]
fn segments_trend_quantiles_and_exposure_on_generated_logs() {
    let work = tempfile::tempdir().unwrap();
    let (logs, catalog) = generate(work.path());
    let common = [
        "--metrics",
        "mean_time_per_session,time",
        "--start",
        "2026-01-03",
    ];

    // New vs returning, with the trend and the quantiles.
    let mut rest = common.to_vec();
    rest.extend(["--segment-by", "listener", "--trend", "--quantiles"]);
    let json = ab_json(&logs, &rest);
    check_segments(&json, "listener", &["new", "returning"]);

    let trend = &json["trend"];
    assert_eq!(trend["metric"], "mean_time_per_session");
    let days = column(&trend["days"], "day");
    assert_eq!(
        days,
        ["2026-01-03", "2026-01-04", "2026-01-05", "2026-01-06"]
    );
    // The last cumulative effect is the main table's raw difference (the
    // table's own effect is CUPED-adjusted with days 1–2).
    let main = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "mean_time_per_session")
        .unwrap();
    let raw = (f(&main["treatment_mean"]) / f(&main["control_mean"]) - 1.0) * 100.0;
    let last = &trend["days"][3];
    assert!(
        (f(&last["cumulative_effect"]) - raw).abs() < 1e-9,
        "{last} vs {raw}"
    );
    let test = &trend["tests"][0];
    assert_eq!(test["days"], 4);
    assert!(
        f(&test["slope_lower"]) <= f(&test["slope"])
            && f(&test["slope"]) <= f(&test["slope_upper"])
    );
    let verdict = test["verdict"].as_str().unwrap();
    assert_eq!(verdict == "steady", f(&test["p_value"]) >= 0.05, "{test}");

    let quantiles = json["quantiles"].as_array().unwrap();
    let names = column(&json["quantiles"], "metric");
    assert_eq!(names, ["session_time_p50", "session_time_p90"]);
    for q in quantiles {
        assert!(f(&q["lower"]) < f(&q["upper"]), "{q}");
        assert!(f(&q["control_value"]) > 0.0);
    }
    assert!(f(&quantiles[1]["control_value"]) >= f(&quantiles[0]["control_value"]));

    // The terminal shows the sections with their corrections.
    let args = ab(&logs, &rest);
    let (table, _) = ANALYSIS.ok(&args);
    for text in [
        "Segments by listener",
        "p_bh",
        "srm_p",
        "Effect over time",
        "trend on",
        "Quantiles of session time",
        "denominator",
    ] {
        assert!(table.contains(text), "{text} missing:\n{table}");
    }

    // Genres of the first track, from the catalog; dayparts of the start.
    let mut rest = common.to_vec();
    rest.extend(["--segment-by", "genre", "--catalog", &catalog]);
    check_segments(&ab_json(&logs, &rest), "genre", &["g0", "g1", "g2", "g3"]);
    let mut rest = common.to_vec();
    rest.extend(["--segment-by", "daypart"]);
    let daypart = ab_json(&logs, &rest);
    let mut parts = column(&daypart["segments"]["rows"], "segment");
    parts.dedup();
    // Every daypart reported is one some event of the logs falls in (UTC).
    let seen = dayparts(Path::new(&logs));
    assert!(
        !parts.is_empty() && parts.iter().all(|p| seen.contains(*p)),
        "{parts:?} vs {seen:?}"
    );
    let tests = daypart["segments"]["heterogeneity"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(tests, usize::from(parts.len() >= 2));

    // Exposure: every user assigned on any day read is in `time`'s denominator.
    let mut rest = common.to_vec();
    rest.push("--exposure");
    let exposed = ab_json(&logs, &rest);
    let active = ab_json(&logs, &common);
    let assigned = assigned_users(Path::new(&logs));
    let row = |json: &Value, metric: &str| -> Value {
        json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["metric"] == metric)
            .unwrap()
            .clone()
    };
    let time = row(&exposed, "time");
    assert_eq!(time["control_users"].as_u64().unwrap(), assigned[0]);
    assert_eq!(time["treatment_users"].as_u64().unwrap(), assigned[1]);
    let active_time = row(&active, "time");
    assert!(active_time["control_users"].as_u64().unwrap() < assigned[0]);
    // Same total time, more users: the exposed mean is the active one scaled.
    let scale = active_time["control_users"].as_f64().unwrap() / assigned[0] as f64;
    assert!((f(&time["control_mean"]) - f(&active_time["control_mean"]) * scale).abs() < 1e-9);
    // Per-session means keep their active users.
    assert_eq!(
        row(&exposed, "mean_time_per_session")["control_users"],
        row(&active, "mean_time_per_session")["control_users"]
    );
    assert_eq!(exposed["exposure"], true);
    assert_eq!(exposed["denominators"]["time"], "exposed users");
    assert_eq!(
        exposed["denominators"]["mean_time_per_session"],
        "active users"
    );
    assert_eq!(active["denominators"]["time"], "active users");
    let args = ab(&logs, &rest);
    let (_, stderr) = ANALYSIS.ok(&args);
    let (stdout, _) = ANALYSIS.ok(&args);
    assert!(
        stdout.contains(&format!("C {}, T1 {}", assigned[0], assigned[1])),
        "SRM counts exposures:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("exposure design"), "{stdout}");

    // The report charts the daily and cumulative effects.
    let report = work.path().join("report");
    ANALYSIS.ok(&ab(
        &logs,
        &["--report", arg(&report), "--metrics", "time", "--trend"],
    ));
    let page = fs::read_to_string(report.join("index.html")).unwrap();
    assert!(
        page.contains("Effect over time") && page.contains("trend.svg"),
        "{page}"
    );
    assert!(fs::read_to_string(report.join("trend.svg"))
        .unwrap()
        .contains("<svg"));

    // What is wrong, and what is expected.
    let err = ANALYSIS.fails(&ab(&logs, &["--segment-by", "listener"]));
    assert!(
        err.contains("--start DAY") && err.contains("--pre LOGS"),
        "{err}"
    );
    let missing = work.path().join("nope.jsonl");
    let err = ANALYSIS.fails(&ab(
        &logs,
        &["--segment-by", "genre", "--catalog", arg(&missing)],
    ));
    assert!(
        err.contains("--segment-by genre reads track genres"),
        "{err}"
    );
    let err = ANALYSIS.fails(&ab(&logs, &["--segment-by", "mood"]));
    assert!(err.contains("listener") && err.contains("daypart"), "{err}");
}

/// Every event of the logs under `root` carrying experiment `AB`.
fn events(root: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            for line in fs::read_to_string(&path).unwrap().lines() {
                let event: Value = serde_json::from_str(line).unwrap();
                if event["experiments"]["AB"].is_string() {
                    out.push(event);
                }
            }
        }
    }
    out
}

/// Users per arm over every event carrying experiment `AB`.
fn assigned_users(root: &Path) -> [u64; 2] {
    let mut users: HashMap<String, HashSet<u64>> = HashMap::new();
    for event in events(root) {
        let arm = event["experiments"]["AB"].as_str().unwrap().to_string();
        users
            .entry(arm)
            .or_default()
            .insert(event["user"].as_u64().unwrap());
    }
    [users["C"].len() as u64, users["T1"].len() as u64]
}

/// The dayparts (UTC) the events' timestamps fall in.
fn dayparts(root: &Path) -> HashSet<&'static str> {
    events(root)
        .iter()
        .map(|e| {
            let hour = e["timestamp"].as_u64().unwrap() / 3_600_000 % 24;
            ["night", "morning", "afternoon", "evening"][(hour / 6) as usize]
        })
        .collect()
}
