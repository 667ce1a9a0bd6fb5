//! `ab --per-day`: the A/B analysis of each simulated day on its own, for
//! learning curves.
//!
//! `sim run --in-process --days N` writes each day's event log into its own
//! folder, `LOGDIR/day-1`, `LOGDIR/day-2`, … (an in-process day takes
//! seconds, so timestamps cannot tell days apart: the folder is the day).
//! Each day is read and analysed exactly as `ab` analyses a whole log
//! ([`super::analyze`]: same sessionization, same user-level metrics, same
//! Welch rows); what is kept per day and arm is the arm's users, its mean of
//! the user-level `mean_time_per_session`, and each treatment's [`Row`] for
//! that metric against the day's control. The whole run, read as one log,
//! then gives the [`RETENTION_METRICS`]: whether the arms' listeners came
//! back, which no single day can tell.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{analyze, AbTable, Row, Srm, METRICS};
use crate::logs::days::day_number;
use crate::logs::{self, ReadOptions, ReadReport};
use crate::output::{self, Column, Table, Tone};
use crate::sessions::SessionReport;

/// Index of the learning-curve metric in [`METRICS`].
pub const METRIC: usize = 4;

/// The layout `--per-day` expects, for error messages and help.
pub const LAYOUT: &str = "LOGDIR/day-1, LOGDIR/day-2, … (one folder per day, as \
    `sim run --in-process --days N --log-dir LOGDIR` writes them)";

/// One day's log folders: `day-<n>` under each `--logs` folder that has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayLogs {
    pub day: u32,
    pub folders: Vec<PathBuf>,
}

/// The days under `roots`, in numeric order of `n` (`day-10` after `day-9`).
/// Every root must be a folder with at least one `day-<n>` subfolder; a day
/// present under several roots (e.g. one root per replica) reads them all.
pub fn layout(roots: &[String]) -> Result<Vec<DayLogs>> {
    let mut days: BTreeMap<u32, Vec<PathBuf>> = BTreeMap::new();
    for root in roots {
        let path = Path::new(root);
        if !path.is_dir() {
            bail!(
                "--per-day reads folders of day folders, but --logs {root:?} is not a folder; \
                 expected {LAYOUT}"
            );
        }
        let entries = fs::read_dir(path).with_context(|| {
            format!("cannot list log folder {root}: check it exists and is readable")
        })?;
        let mut found = 0;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list log folder {root}"))?;
            let sub = entry.path();
            let day = entry.file_name().to_str().and_then(day_number);
            if let (Some(day), true) = (day, sub.is_dir()) {
                days.entry(day).or_default().push(sub);
                found += 1;
            }
        }
        if found == 0 {
            bail!(
                "--per-day found no day-<n> subfolders in {root}; expected {LAYOUT}. \
                 Without --per-day, `ab` reads the whole folder as one log"
            );
        }
    }
    Ok(days
        .into_iter()
        .map(|(day, mut folders)| {
            folders.sort();
            DayLogs { day, folders }
        })
        .collect())
}

/// One day's analysis: what `ab` computes, without the records and sessions.
#[derive(Debug, Clone)]
pub struct Day {
    pub day: u32,
    pub folders: Vec<PathBuf>,
    pub read: ReadReport,
    pub table: AbTable,
    pub session_report: SessionReport,
    /// Events that do not carry the experiment (left out).
    pub events_without_arm: u64,
    /// Arms the assignment check used (configured, or inferred that day).
    pub arms: usize,
    pub misassigned_users: u64,
}

/// Reads one day's folders and analyses them as `ab` does. `arms` is the
/// configured number of arms (`None`: the highest label seen that day).
pub fn analyze_day(
    day: &DayLogs,
    options: &ReadOptions,
    experiment: &str,
    arms: Option<usize>,
    control: u8,
) -> Result<Day> {
    let names: Vec<String> = day
        .folders
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let context = || format!("day {} ({})", day.day, names.join(", "));
    let paths = logs::resolve(&names).with_context(context)?;
    let read = logs::read(&paths, options).with_context(context)?;
    let report = read.report;
    let analysis = analyze(read.records, experiment, arms, control).with_context(context)?;
    Ok(Day {
        day: day.day,
        folders: day.folders.clone(),
        read: report,
        table: analysis.table,
        session_report: analysis.session_report,
        events_without_arm: analysis.events_without_arm,
        arms: analysis.arms,
        misassigned_users: analysis.misassigned_users,
    })
}

/// One row of the per-day table (and of its JSON array): an arm on a day.
/// The effect, its 95% Welch interval (percent of the day's control mean)
/// and `significant` are the main table's [`Row`] for
/// `mean_time_per_session`; `null` for the control (and bounds `null` where
/// undefined, e.g. an arm of one user).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayArm {
    pub day: u32,
    pub arm: String,
    pub users: u64,
    pub mean_time_per_session: f64,
    pub effect: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub significant: Option<bool>,
}

/// The metrics that say whether long sessions bring listeners back,
/// compared over the whole run (every day's logs together) after the daily
/// rows: a listener's return the next day, days with a session, and
/// listening per active day.
pub const RETENTION_METRICS: &str = "return_d1,active_days,time_per_day";

/// What a day's sample-ratio check says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaySplit {
    /// Users per arm as configured.
    AsConfigured,
    /// Not as configured, and nothing explains it: lost logs, a config
    /// change or an assignment bug.
    Broken,
    /// Not as configured on a later day of a run whose listeners are split
    /// as configured: a day's users are those who came back, and the arms
    /// change who comes back. The effect measured, not a fault.
    Returns,
}

impl DaySplit {
    /// `day`'s check, `later` when it is not the run's first day, `run` the
    /// whole run's check.
    pub fn of(day: &Srm, later: bool, run: Option<&Srm>) -> DaySplit {
        if !day.mismatch() {
            DaySplit::AsConfigured
        } else if later && run.is_some_and(|r| !r.mismatch()) {
            DaySplit::Returns
        } else {
            DaySplit::Broken
        }
    }
}

/// Every day of one experiment, in day order, and the whole run's
/// [`RETENTION_METRICS`].
#[derive(Debug, Clone)]
pub struct PerDay {
    pub experiment: String,
    pub control: u8,
    pub days: Vec<Day>,
    /// `None` where the run was not analysed as a whole (tests).
    pub retention: Option<Box<super::extended::MetricsAnalysis>>,
}

impl Day {
    /// The day's Welch row of `mean_time_per_session` for a treatment label.
    pub fn effect(&self, label: &str) -> Option<&Row> {
        self.table
            .rows
            .iter()
            .find(|r| r.treatment == label && r.metric == METRICS[METRIC])
    }
}

impl PerDay {
    /// One row per (day, arm with users), arms in label order.
    pub fn rows(&self) -> Vec<DayArm> {
        let mut rows = Vec::new();
        for day in &self.days {
            for arm in &day.table.arms {
                let row = day.effect(&arm.label);
                rows.push(DayArm {
                    day: day.day,
                    arm: arm.label.clone(),
                    users: arm.metrics[METRIC].count(),
                    mean_time_per_session: arm.metrics[METRIC].mean(),
                    effect: row.map(|r| r.estimate.effect),
                    lower: row.map(|r| r.estimate.lower),
                    upper: row.map(|r| r.estimate.upper),
                    significant: row.map(|r| r.significant),
                });
            }
        }
        rows
    }

    /// The table for the terminal, CSV and Markdown: control rows have empty
    /// effect cells; a significant rise (longer sessions) is green, a fall red.
    pub fn to_table(&self) -> Table {
        fn pct(v: Option<f64>) -> String {
            v.map(output::percent).unwrap_or_default()
        }
        let columns: [Column<DayArm>; 8] = [
            ("day", |r| r.day.to_string()),
            ("arm", |r| r.arm.clone()),
            ("users", |r| r.users.to_string()),
            ("mean_time_per_session", |r| {
                output::num(r.mean_time_per_session, 4)
            }),
            ("effect", |r| pct(r.effect)),
            ("lower", |r| pct(r.lower)),
            ("upper", |r| pct(r.upper)),
            ("significant", |r| {
                r.significant.map(|s| s.to_string()).unwrap_or_default()
            }),
        ];
        Table::of(&columns, &self.rows(), |r| {
            match (r.significant, r.effect) {
                (Some(true), Some(e)) if e > 0.0 => Tone::Good,
                (Some(true), Some(_)) => Tone::Bad,
                _ => Tone::Plain,
            }
        })
    }

    /// A JSON array of [`DayArm`]s (non-finite numbers become null).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.rows()).expect("rows serialize")
    }

    /// The split of every listener of the run, each counted once in the arm
    /// they were assigned (the whole-run analysis's check); `None` where
    /// the run was not analysed as a whole.
    pub fn run_split(&self) -> Option<&Srm> {
        self.retention.as_deref().map(|r| &r.srm)
    }

    /// How to read `day`'s sample-ratio check.
    pub fn split_of(&self, day: &Day) -> DaySplit {
        let first = self.days.first().map_or(day.day, |d| d.day);
        DaySplit::of(&day.table.srm, day.day > first, self.run_split())
    }

    /// One line per day: `day N: ` and the day's SRM summary, then the
    /// whole run's.
    pub fn srm_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .days
            .iter()
            .map(|d| match self.split_of(d) {
                DaySplit::Returns => format!(
                    "day {}: {}: the day's active users differ by arm while the run's \
                     listeners are split as configured: the arms bring their listeners back \
                     differently (return_d1, active_days), so this day compares those who \
                     came back",
                    d.day,
                    d.table.srm.counts()
                ),
                DaySplit::AsConfigured | DaySplit::Broken => {
                    format!("day {}: {}", d.day, d.table.srm_summary())
                }
            })
            .collect();
        if let Some(run) = self.run_split() {
            lines.push(format!("whole run: {}", run.summary()));
        }
        lines
    }

    /// Arms (index, label) with users on any day, in index order.
    pub fn arms(&self) -> Vec<(u8, String)> {
        let mut arms: BTreeMap<u8, String> = BTreeMap::new();
        for day in &self.days {
            for arm in &day.table.arms {
                arms.insert(arm.arm, arm.label.clone());
            }
        }
        arms.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab::{table, UserMetrics};

    #[test]
    fn metric_index_is_mean_time_per_session() {
        assert_eq!(METRICS[METRIC], "mean_time_per_session");
    }

    #[test]
    fn day_names_parse_strictly() {
        assert_eq!(day_number("day-1"), Some(1));
        assert_eq!(day_number("day-10"), Some(10));
        for name in ["day-", "day-x", "day-1b", "Day-1", "day--1", "days-1"] {
            assert_eq!(day_number(name), None, "{name}");
        }
    }

    #[test]
    fn layout_orders_days_numerically_and_merges_roots() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for d in ["day-10", "day-2", "day-1", "notes"] {
            fs::create_dir_all(a.join(d)).unwrap();
        }
        fs::create_dir_all(b.join("day-2")).unwrap();
        fs::write(a.join("day-3"), "a file, not a day").unwrap();
        let roots = [a.display().to_string(), b.display().to_string()];
        let days = layout(&roots).unwrap();
        let numbers: Vec<u32> = days.iter().map(|d| d.day).collect();
        assert_eq!(numbers, [1, 2, 10]);
        assert_eq!(days[1].folders, [a.join("day-2"), b.join("day-2")]);

        let flat = tmp.path().join("a/notes");
        let err = layout(&[flat.display().to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no day-<n> subfolders") && err.contains("LOGDIR/day-1"));
        let err = layout(&[a.join("day-3").display().to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a folder"), "{err}");
    }

    #[test]
    fn rows_take_the_main_tables_welch_row() {
        let mut users: Vec<UserMetrics> = (0..30)
            .map(|i| UserMetrics::with_time(i, 0, 1.0 + (i % 3) as f64))
            .collect();
        users.extend((30..60).map(|i| UserMetrics::with_time(i, 1, 3.0 + (i % 3) as f64)));
        let t = table("AB", &users, 2, 0).unwrap();
        let day = Day {
            day: 7,
            folders: Vec::new(),
            read: ReadReport::default(),
            table: t.clone(),
            session_report: SessionReport::default(),
            events_without_arm: 0,
            arms: 2,
            misassigned_users: 0,
        };
        let per_day = PerDay {
            experiment: "AB".into(),
            control: 0,
            days: vec![day],
            retention: None,
        };
        let rows = per_day.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].day, rows[0].arm.as_str(), rows[0].users),
            (7, "C", 30)
        );
        assert_eq!(rows[0].mean_time_per_session, 2.0);
        assert_eq!(rows[0].effect, None);
        let main = &t.rows[METRIC];
        assert_eq!(main.metric, "mean_time_per_session");
        assert_eq!(rows[1].effect, Some(main.estimate.effect));
        assert_eq!(
            (rows[1].lower, rows[1].upper),
            (Some(main.estimate.lower), Some(main.estimate.upper))
        );
        assert_eq!(rows[1].significant, Some(true));
        let table = per_day.to_table();
        assert_eq!(table.rows[0].0[4], "");
        assert_eq!(table.rows[1].0[4], "+100.00%");
        assert_eq!(table.rows[1].1, Tone::Good);
        let json: serde_json::Value = serde_json::from_str(&per_day.to_json()).unwrap();
        assert!(json[0]["effect"].is_null() && json[0]["significant"].is_null());
        assert_eq!(json[1]["arm"], "T1");
        assert_eq!(
            per_day.arms(),
            [(0, "C".to_string()), (1, "T1".to_string())]
        );
        assert!(per_day.srm_lines()[0].starts_with("day 7: users per arm: C 30, T1 30"));
    }

    #[test]
    fn a_later_days_mismatch_is_the_arms_effect_only_when_the_run_is_split_as_configured() {
        let srm = |p_value: f64| Srm {
            users: vec![100, 100],
            chi2: 0.0,
            p_value,
        };
        let (fine, off) = (srm(0.5), srm(1e-6));
        assert_eq!(
            DaySplit::of(&fine, true, Some(&off)),
            DaySplit::AsConfigured
        );
        assert_eq!(DaySplit::of(&off, true, Some(&fine)), DaySplit::Returns);
        // The first day's users are new: a mismatch there is a broken split.
        assert_eq!(DaySplit::of(&off, false, Some(&fine)), DaySplit::Broken);
        // So is one the whole run shares, or one no whole-run check explains.
        assert_eq!(DaySplit::of(&off, true, Some(&off)), DaySplit::Broken);
        assert_eq!(DaySplit::of(&off, true, None), DaySplit::Broken);
    }
}
