//! The extended A/B analysis end to end through the `analysis` binary: day
//! folders with known retention, fallbacks and session times → `ab
//! --metrics … --start … --sequential` and `power`, checked against values
//! computed by hand; and bad flags → errors that say what is expected.

use std::fs;
use std::path::Path;

use serde_json::Value;
use testkit::cli::Program;

/// This build's `analysis` binary, run as a user runs it.
const ANALYSIS: Program = Program::new(env!("CARGO_BIN_EXE_analysis"));

/// `ab --logs logs --experiment EXT --format json` followed by `rest`.
fn ab_json<'a>(logs: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let head = [
        "ab",
        "--logs",
        logs,
        "--experiment",
        "EXT",
        "--format",
        "json",
    ];
    head.iter().chain(rest).copied().collect()
}

const USERS: u64 = 400;

fn arm(user: u64) -> usize {
    botify::experiments::assign("EXT", 2, user)
}

/// Whether `user` has a session on `day` (1-based): everyone on day 1;
/// control users with an even id and treatment users with an id divisible
/// by 4 come back on day 2; everyone on day 3.
fn active(user: u64, day: u32) -> bool {
    match day {
        2 => user.is_multiple_of(if arm(user) == 0 { 2 } else { 4 }),
        _ => true,
    }
}

/// Writes `root/day-<d>/events.jsonl` for days 1–3: one session a day when
/// active, of 1 + `user % 3` `next` events (one more on day 2 for every
/// fifth user) and a `last`, every event listened 0.5; in the treatment,
/// each session's first answer is a fallback.
fn write_days(root: &Path) {
    let mut ts = 1_000;
    for day in 1..=3 {
        let dir = root.join(format!("day-{day}"));
        fs::create_dir_all(&dir).unwrap();
        let mut lines = String::new();
        for user in (0..USERS).filter(|&u| active(u, day)) {
            let label = botify::experiments::arm_label(arm(user));
            // One more on day 2 for every fifth user: the pre-period (day 1)
            // predicts later days well but not exactly, as real ones do.
            let nexts = 1 + user % 3 + u64::from(day == 2 && user.is_multiple_of(5));
            for i in 0..=nexts {
                ts += 1;
                let last = i == nexts;
                let mut event = serde_json::json!({
                    "message": if last { "last" } else { "next" },
                    "timestamp": ts, "user": user, "track": 10 + i, "time": 0.5,
                    "latency": 0.002, "experiments": {"EXT": label},
                });
                if !last {
                    event["recommendation"] = (11 + i).into();
                }
                if i == 0 && arm(user) == 1 {
                    event["fallback"] = true.into();
                }
                lines.push_str(&event.to_string());
                lines.push('\n');
            }
        }
        fs::write(dir.join("events.jsonl"), lines).unwrap();
    }
}

fn row<'a>(rows: &'a [Value], metric: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["metric"] == metric)
        .unwrap_or_else(|| panic!("no row for {metric}"))
}

#[test]
fn retention_fallbacks_and_ratios_match_hand_computation() {
    let tmp = tempfile::tempdir().unwrap();
    write_days(tmp.path());
    let logs = tmp.path().to_str().unwrap();
    let out = ANALYSIS
        .ok(&ab_json(
            logs,
            &[
                "--metrics",
                "return_d1,active_days,session_tracks,fallback_rate,mean_request_latency",
            ],
        ))
        .0;
    let json: Value = serde_json::from_str(&out).unwrap();
    let rows = json["rows"].as_array().unwrap();
    let users = |a: usize| (0..USERS).filter(move |&u| arm(u) == a);
    let share = |a: usize, f: &dyn Fn(u64) -> bool| {
        users(a).filter(|&u| f(u)).count() as f64 / users(a).count() as f64
    };
    // Every user's first day is day 1; day 2 is inside the window.
    let d1 = row(rows, "return_d1");
    assert!(
        (d1["control_mean"].as_f64().unwrap() - share(0, &|u| u.is_multiple_of(2))).abs() < 1e-12
    );
    assert!(
        (d1["treatment_mean"].as_f64().unwrap() - share(1, &|u| u.is_multiple_of(4))).abs() < 1e-12
    );
    assert_eq!(d1["role"], "success");
    assert_eq!(d1["significant"], true, "{d1}");
    let days = row(rows, "active_days");
    assert!(
        (days["control_mean"].as_f64().unwrap() - (2.0 + share(0, &|u| u.is_multiple_of(2)))).abs()
            < 1e-12
    );
    // session_tracks = Σ tracks / Σ sessions over the arm: 2 + user % 3 per
    // session, one more on day 2 for every fifth user.
    let tracks = |a: usize| {
        let (mut t, mut s) = (0.0, 0.0);
        for u in users(a) {
            for day in 1..=3 {
                if active(u, day) {
                    t += (2 + u % 3 + u64::from(day == 2 && u.is_multiple_of(5))) as f64;
                    s += 1.0;
                }
            }
        }
        t / s
    };
    let st = row(rows, "session_tracks");
    assert!((st["control_mean"].as_f64().unwrap() - tracks(0)).abs() < 1e-12);
    assert!((st["treatment_mean"].as_f64().unwrap() - tracks(1)).abs() < 1e-12);
    // One fallback per treatment session over its 1 + user % 3 answers.
    let fallback = row(rows, "fallback_rate");
    assert_eq!(fallback["role"], "guardrail");
    assert_eq!(fallback["control_mean"].as_f64().unwrap(), 0.0);
    let answers: f64 = tracks(1) - 1.0;
    assert!((fallback["treatment_mean"].as_f64().unwrap() - 1.0 / answers).abs() < 1e-12);
    // The notebook's latency: latency sum / track sum = 2 ms.
    let latency = row(rows, "mean_request_latency");
    assert!((latency["control_mean"].as_f64().unwrap() - 2.0).abs() < 1e-9);
    // Holm within each family: adjusted p ≥ p.
    for r in rows {
        if let (Some(p), Some(q)) = (r["p_value"].as_f64(), r["p_adjusted"].as_f64()) {
            assert!(q >= p - 1e-15, "{r}");
        }
    }

    // The terminal table shows guardrails apart from success metrics.
    let table = ANALYSIS
        .ok(&[
            "ab",
            "--logs",
            logs,
            "--experiment",
            "EXT",
            "--metrics",
            "return_d1,fallback_rate",
        ])
        .0;
    let success = table.find("Success metrics").unwrap();
    let guardrails = table.find("Guardrails").unwrap();
    assert!(success < table.find("return_d1").unwrap());
    assert!(guardrails < table.find("fallback_rate").unwrap());
    assert!(table.contains("Holm"), "{table}");
}

#[test]
fn start_gives_cuped_and_sequential_gives_daily_looks() {
    let tmp = tempfile::tempdir().unwrap();
    write_days(tmp.path());
    let logs = tmp.path().to_str().unwrap();
    let report = tmp.path().join("report");
    let out = ANALYSIS
        .ok(&ab_json(
            logs,
            &[
                "--metrics",
                "time,session_time",
                "--start",
                "2",
                "--sequential",
                "--correction",
                "bh",
                "--report",
                report.to_str().unwrap(),
            ],
        ))
        .0;
    let json: Value = serde_json::from_str(&out).unwrap();
    let cuped = json["cuped"].as_array().unwrap();
    assert_eq!(cuped.len(), 2);
    for c in cuped {
        // Everyone was active on day 1, the pre-period.
        assert_eq!(c["users"], c["users_with_pre"], "{c}");
        let reduction = c["variance_reduction"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&reduction), "{c}");
        let width = c["width_ratio"].as_f64().unwrap();
        assert!((width - (1.0 - reduction).sqrt()).abs() < 1e-12);
    }
    // `time` over days 2–3 grows with user % 3, which day 1 already shows.
    assert!(
        cuped[0]["variance_reduction"].as_f64().unwrap() > 0.2,
        "{}",
        cuped[0]
    );
    let looks = json["looks"].as_array().unwrap();
    let days: Vec<&str> = looks.iter().map(|l| l["day"].as_str().unwrap()).collect();
    assert_eq!(
        days,
        ["2", "2", "3", "3"],
        "one look per day and metric from --start"
    );
    for l in looks {
        assert_eq!(
            l["significant"].as_bool().unwrap(),
            l["p_value"].as_f64().unwrap() < 0.05,
            "{l}"
        );
    }
    let rows = json["rows"].as_array().unwrap();
    let time = row(rows, "time");
    assert_eq!(time["sequential_lower"], looks[2]["lower"]);
    assert!(time["variance_reduction"].as_f64().is_some());
    let page = fs::read_to_string(report.join("index.html")).unwrap();
    assert!(
        page.contains("CUPED") && page.contains("Daily looks"),
        "{page}"
    );
    assert!(report.join("sequential_time.svg").exists());
}

#[test]
fn a_horizon_spends_alpha_over_the_planned_days() {
    let tmp = tempfile::tempdir().unwrap();
    write_days(tmp.path());
    let logs = tmp.path().to_str().unwrap();
    let args = ab_json(
        logs,
        &[
            "--metrics",
            "time",
            "--start",
            "2",
            "--sequential",
            "--horizon",
            "2",
        ],
    );
    let out = ANALYSIS.output(&args);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("2-day horizon"), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let looks = json["looks"].as_array().unwrap();
    assert_eq!(looks.len(), 2);
    let nominal: Vec<f64> = looks
        .iter()
        .map(|l| l["nominal_alpha"].as_f64().unwrap())
        .collect();
    // O'Brien–Fleming type: α(½) = 2 − 2Φ(1.96 √2) = 0.0056 at the first
    // look, nearly the whole 5% at the horizon.
    assert!((nominal[0] - 0.0056).abs() < 0.001, "{nominal:?}");
    assert!(nominal[1] > 0.03 && nominal[1] < 0.05, "{nominal:?}");
    for l in looks {
        assert!(l["p_value"].is_null(), "no mixture p-value: {l}");
        let (effect, lower, upper) = (
            l["effect"].as_f64().unwrap(),
            l["lower"].as_f64().unwrap(),
            l["upper"].as_f64().unwrap(),
        );
        assert!(((upper - effect) - (effect - lower)).abs() < 1e-9, "{l}");
    }
    // By day 3 the treatment's missed day 2 shows: less time per user.
    assert!(looks[1]["upper"].as_f64().unwrap() < 0.0, "{}", looks[1]);
    assert!(looks[1]["significant"].as_bool().unwrap());

    let pocock = ANALYSIS
        .ok(&[&args[..], &["--spending", "pocock"]].concat())
        .0;
    let pocock: Value = serde_json::from_str(&pocock).unwrap();
    let first = pocock["looks"][0]["nominal_alpha"].as_f64().unwrap();
    assert!(first > 0.02, "Pocock spends early: {first}");
}

/// `power` of `time` over 3 days for `users` users a day, as JSON.
fn power_of_time(logs: &str, users: &str) -> Value {
    let (out, _) = ANALYSIS.ok(&[
        "power",
        "--logs",
        logs,
        "--users",
        users,
        "--days",
        "3",
        "--metrics",
        "time",
        "--format",
        "json",
    ]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn power_reports_the_minimum_detectable_effect() {
    let tmp = tempfile::tempdir().unwrap();
    write_days(tmp.path());
    let logs = tmp.path().to_str().unwrap();
    let json = power_of_time(logs, "10000");
    let time = &json[0];
    let sd = time["sd"].as_f64().unwrap();
    // (1.959964 + 0.841621) × sd × √(2 / 5000)
    let expected = 2.801585 * sd * (2.0f64 / 5000.0).sqrt();
    assert!(
        (time["mde"].as_f64().unwrap() - expected).abs() < 1e-5,
        "{time}"
    );
    assert_eq!(time["users_measured"], USERS);
    let four = power_of_time(logs, "40000");
    let ratio = four[0]["mde"].as_f64().unwrap() / time["mde"].as_f64().unwrap();
    assert!(
        (ratio - 0.5).abs() < 1e-9,
        "four times the users halve the MDE"
    );
}

#[test]
fn bad_extended_flags_say_what_is_expected() {
    let tmp = tempfile::tempdir().unwrap();
    write_days(tmp.path());
    let logs = tmp.path().to_str().unwrap();
    let base = ["ab", "--logs", logs, "--experiment", "EXT"];
    let cases: [(&[&str], &str); 8] = [
        (&["--metrics", "time,nope"], "unknown metric \"nope\""),
        (&["--start", "2026-01-02"], "day number"),
        (&["--start", "9"], "after the last day"),
        (&["--sequential", "--per-day"], "cannot be used with"),
        (&["--sequential", "--mixing", "0"], "--mixing must be"),
        (&["--horizon", "6"], "--sequential"),
        (
            &["--sequential", "--horizon", "6", "--mixing", "0.1"],
            "cannot be used with",
        ),
        (&["--sequential", "--horizon", "0"], "--horizon"),
    ];
    for (extra, expected) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let err = ANALYSIS.fails(&args);
        assert!(err.contains(expected), "{extra:?}: {err}");
    }
    let err = ANALYSIS.fails(&[
        "power", "--logs", logs, "--users", "100", "--days", "2", "--power", "1.5",
    ]);
    assert!(
        err.contains("--power must be strictly between 0 and 1"),
        "{err}"
    );
}
