//! Where an exported event goes: Hive-style folders by day and by the arm of
//! one experiment, `day=2026-01-01/MEMORY=T2/` (docs/event-log.md#parquet-export).
//!
//! The day follows the repository's day convention: an event read from a
//! file under a `day-<n>` folder (as `sim run --days` writes them) belongs
//! to simulated day `n`, which the simulated clock starts on 2026-01-01 plus
//! `n − 1` days; any other event belongs to the UTC day of its timestamp.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};
use chrono::{Days, NaiveDate};

use crate::logs::days::day_number;
use crate::logs::NO_ARM;

const MS_PER_DAY: u64 = 86_400_000;

/// The folder value of events that do not carry the partition experiment:
/// Hive's name for a null partition, read back as NULL by Spark and DuckDB.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The date of simulated day 1 (folder `day-1`).
fn first_simulated_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("a valid date")
}

/// One partition: a day and an arm of the partition experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub day: NaiveDate,
    /// Arm index (`C` = 0, `Tk` = k), or [`NO_ARM`] when the event does not
    /// carry the experiment.
    pub arm: u8,
}

impl Partition {
    /// The partition's folder below the export root; without an experiment
    /// (none was seen in the logs), the day alone.
    pub fn dir(&self, experiment: Option<&str>) -> PathBuf {
        let mut dir = PathBuf::from(format!("day={}", self.day.format("%Y-%m-%d")));
        if let Some(experiment) = experiment {
            let arm = if self.arm == NO_ARM {
                NULL_PARTITION.to_string()
            } else {
                botify::experiments::arm_label(self.arm as usize)
            };
            dir.push(format!("{experiment}={arm}"));
        }
        dir
    }
}

/// Caches the day of the last timestamp: consecutive events mostly share
/// one, and a division is cheaper than a calendar computation.
#[derive(Debug, Default)]
pub struct DayOf {
    /// (first millisecond of the day, its date)
    last: Option<(u64, NaiveDate)>,
}

impl DayOf {
    /// The UTC date of `timestamp` (epoch ms, at most year 9999).
    pub fn timestamp(&mut self, timestamp: u64) -> NaiveDate {
        let start = timestamp - timestamp % MS_PER_DAY;
        match self.last {
            Some((cached, day)) if cached == start => day,
            _ => {
                let day = chrono::DateTime::from_timestamp_millis(start as i64)
                    .map(|t| t.date_naive())
                    .expect("timestamps are checked to fall before year 10000");
                self.last = Some((start, day));
                day
            }
        }
    }
}

/// The simulated day of a log file: its nearest ancestor folder named
/// `day-<n>`, if any.
pub fn day_of_folder(file: &Path) -> Option<NaiveDate> {
    let folders = file.parent()?.components().rev();
    folders
        .filter_map(|c| match c {
            Component::Normal(name) => name.to_str().and_then(day_number),
            _ => None,
        })
        .next()
        .and_then(|n| {
            let first = first_simulated_day();
            match n.checked_sub(1) {
                Some(after) => first.checked_add_days(Days::new(u64::from(after))),
                None => first.checked_sub_days(Days::new(1)),
            }
        })
}

/// Names the export writes as columns: a partition column must differ from
/// them, whatever the case (Spark compares names case-insensitively).
const TAKEN: [&str; 14] = [
    "message",
    "timestamp",
    "user",
    "track",
    "time",
    "latency",
    "recommendation",
    "propensity",
    "experiments",
    "recommender",
    "fallback",
    "model_version",
    "seq",
    "day",
];

/// The experiment's name becomes a folder name and a column name: it must be
/// a plain identifier that no other column has.
pub fn check_experiment(name: &str) -> Result<()> {
    let identifier = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !identifier {
        bail!(
            "experiment {name:?} cannot name a partition column: it must be letters, digits \
             and _, starting with a letter or _; pick another with --partition-experiment"
        );
    }
    if TAKEN.iter().any(|t| t.eq_ignore_ascii_case(name)) {
        bail!(
            "experiment {name:?} would clash with the column {:?} of the export; pick another \
             with --partition-experiment",
            name.to_ascii_lowercase()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn day_of_a_timestamp_is_its_utc_date() {
        let mut day_of = DayOf::default();
        // 2023-11-14T22:13:20Z, the last millisecond of that day, then midnight.
        assert_eq!(day_of.timestamp(1_700_000_000_000), date("2023-11-14"));
        assert_eq!(day_of.timestamp(1_700_006_399_999), date("2023-11-14"));
        assert_eq!(day_of.timestamp(1_700_006_400_000), date("2023-11-15"));
        assert_eq!(day_of.timestamp(0), date("1970-01-01"));
        assert_eq!(
            day_of.timestamp(crate::logs::MAX_TIMESTAMP),
            date("9999-12-31")
        );
    }

    #[test]
    fn day_folders_count_from_the_simulated_clocks_first_day() {
        let cases = [
            ("log/day-1/events.jsonl", Some("2026-01-01")),
            ("log/day-32/replica-a/events.jsonl.gz", Some("2026-02-01")),
            ("/abs/day-2/day-3/x.jsonl", Some("2026-01-03")),
            ("log/day-0/x.jsonl", Some("2025-12-31")),
            ("log/day-x/x.jsonl", None),
            ("log/today-1/x.jsonl", None),
            ("day-4.jsonl", None),
        ];
        for (path, expected) in cases {
            assert_eq!(day_of_folder(Path::new(path)), expected.map(date), "{path}");
        }
    }

    #[test]
    fn folders_are_hive_style() {
        let day = date("2026-01-02");
        assert_eq!(
            Partition { day, arm: 2 }.dir(Some("MEMORY")),
            PathBuf::from("day=2026-01-02/MEMORY=T2")
        );
        assert_eq!(
            Partition { day, arm: NO_ARM }.dir(Some("MEMORY")),
            PathBuf::from("day=2026-01-02/MEMORY=__HIVE_DEFAULT_PARTITION__")
        );
        assert_eq!(
            Partition { day, arm: 0 }.dir(None),
            PathBuf::from("day=2026-01-02")
        );
    }

    #[test]
    fn experiment_names_must_make_safe_columns() {
        for good in ["MEMORY", "AB", "exp_2", "_x"] {
            check_experiment(good).unwrap();
        }
        for bad in ["", "2AB", "a/b", "a=b", "..", "A B", "é"] {
            let err = check_experiment(bad).unwrap_err().to_string();
            assert!(err.contains("letters, digits"), "{bad}: {err}");
        }
        let err = check_experiment("USER").unwrap_err().to_string();
        assert!(err.contains("clash with the column \"user\""), "{err}");
    }
}
