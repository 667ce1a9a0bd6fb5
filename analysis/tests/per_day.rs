//! `analysis ab --per-day` through the binary: one row per (day, arm) over
//! `day-<n>` folders, the learning curve of each arm, and a clear error
//! naming the layout it expects when the folders are not there.

use std::fs;
use std::path::Path;

use testkit::cli::{arg, Program};

/// This build's `analysis` binary, run as a user runs it.
const ANALYSIS: Program = Program::new(env!("CARGO_BIN_EXE_analysis"));

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
    write_day_of(dir, users, base, |_, _| true)
}

/// [`write_day`] with only the users `visits(user, arm)` keeps.
fn write_day_of(
    dir: &Path,
    users: u64,
    base: [f64; 2],
    visits: impl Fn(u64, usize) -> bool,
) -> [(u64, f64); 2] {
    fs::create_dir_all(dir).unwrap();
    let mut lines = String::new();
    let mut sums = [(0u64, 0.0f64); 2];
    let mut ts = 1_000;
    for user in 0..users {
        let arm = botify::experiments::assign("AB", 2, user);
        if !visits(user, arm) {
            continue;
        }
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
    sums.map(|(n, total)| (n, total / n.max(1) as f64))
}

#[test]
fn ab_per_day_shows_over_the_whole_run_whether_listeners_came_back() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("log");
    // Every listener visits on day 1; on days 2 and 3 every T1 listener
    // comes back, and one C listener in four.
    write_day(&logs.join("day-1"), 80, [0.5, 0.5]);
    for day in [2, 3] {
        let back = |user: u64, arm: usize| arm == 1 || user.is_multiple_of(4);
        write_day_of(&logs.join(format!("day-{day}")), 80, [0.5, 0.5], back);
    }
    // What else `sim run` leaves beside the day folders is not a log.
    fs::write(logs.join("catalog.jsonl"), "{\"track\": 0}\n").unwrap();
    let reports = tmp.path().join("report");
    let (stdout, _) = ANALYSIS.ok(&per_day_args(
        &logs,
        &["--format", "markdown", "--report", arg(&reports)],
    ));
    let (_, whole_run) = stdout
        .split_once("Over the whole run")
        .unwrap_or_else(|| panic!("no whole-run section: {stdout}"));
    let row = |metric: &str| {
        whole_run
            .lines()
            .find(|l| l.contains(metric) && l.contains("T1"))
            .unwrap_or_else(|| panic!("no {metric} row: {whole_run}"))
            .to_string()
    };
    // (control mean, treatment mean, effect %) of a metric's T1 row.
    let numbers = |metric: &str| {
        let line = row(metric);
        let cells: Vec<String> = line
            .split('|')
            .map(|c| c.trim().trim_matches('*').to_string())
            .collect();
        let number = |i: usize| {
            let cell = cells[i].trim_end_matches('%');
            cell.parse::<f64>()
                .unwrap_or_else(|_| panic!("cell {i} of {line}"))
        };
        (number(3), number(4), number(5))
    };
    // Every T1 listener came back the next day and on all three days; about
    // one C listener in four did (users are assigned by hash).
    let (c, t, effect) = numbers("return_d1");
    assert!(t == 1.0 && (0.15..0.35).contains(&c), "{whole_run}");
    // The means are printed to 4 decimals.
    assert!((effect - (t / c - 1.0) * 100.0).abs() < 0.1, "{whole_run}");
    let (c_days, t_days, effect) = numbers("active_days");
    assert!(
        t_days == 3.0 && (c_days - (1.0 + 2.0 * c)).abs() < 1e-3,
        "{whole_run}"
    );
    assert!(effect > 50.0, "{whole_run}");
    // The same listening per active day in both arms.
    assert!(numbers("time_per_day").2.abs() < 1.0, "{whole_run}");
    let html = fs::read_to_string(reports.join("index.html")).unwrap();
    assert!(html.contains("Over the whole run"), "{html}");
    assert!(html.contains("active_days"), "{html}");
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
