//! Which day an event belongs to (docs/analysis.md#days).
//!
//! Multi-day logs come in two shapes. In-process simulations write one folder
//! per simulated day, `day-<n>` (a simulated day takes seconds, so only the
//! folder tells the day); a service's logs are one stream whose timestamps
//! tell the day. So an event's day is the `day-<n>` folder its file sits in
//! when there is one, else its UTC day from the timestamp (days since
//! 1970-01-01). The records themselves stay 56 bytes: files are read in
//! order and `Record::seq` numbers events in reading order, so the file of a
//! record — and with it the folder day — is a binary search over where each
//! file's events start.

use std::path::Path;

use super::Record;

/// Milliseconds in a UTC day.
pub const DAY_MS: u64 = 86_400_000;

/// `n` of a folder named `day-<n>` (strictly: `day-` then decimal digits).
pub fn day_number(name: &str) -> Option<u32> {
    let n = name.strip_prefix("day-")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The day folder of a log file: the nearest enclosing `day-<n>` folder.
pub fn folder_day(path: &Path) -> Option<u32> {
    path.parent()?
        .ancestors()
        .filter_map(|p| p.file_name()?.to_str())
        .find_map(day_number)
}

/// How days were told apart in one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayScheme {
    /// Every file sits in a `day-<n>` folder: the day is `n`.
    Folders,
    /// No file does: the day is the UTC day of the timestamp.
    Timestamps,
    /// Some files do and some do not: days of the two kinds are not comparable.
    Mixed,
}

/// Maps a record to its day, from the files of one read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Days {
    /// Per file in reading order: the `seq` of its first event and its folder day.
    files: Vec<(u32, Option<u32>)>,
}

impl Days {
    /// `files`: each file's first `seq` (in reading order) and its path.
    pub fn new(files: impl IntoIterator<Item = (u32, Option<u32>)>) -> Days {
        Days {
            files: files.into_iter().collect(),
        }
    }

    /// Folder days for every file, timestamps for none, or a mix.
    pub fn scheme(&self) -> DayScheme {
        let folders = self.files.iter().filter(|(_, d)| d.is_some()).count();
        match folders {
            0 => DayScheme::Timestamps,
            n if n == self.files.len() => DayScheme::Folders,
            _ => DayScheme::Mixed,
        }
    }

    /// The record's day: its file's `day-<n>`, else its UTC day.
    pub fn day(&self, record: &Record) -> u32 {
        let file = self
            .files
            .partition_point(|(first, _)| *first <= record.seq);
        match file.checked_sub(1).and_then(|f| self.files[f].1) {
            Some(day) => day,
            None => (record.timestamp / DAY_MS) as u32,
        }
    }

    /// How a day reads in tables: `n` for folder days, the date for UTC days.
    pub fn label(&self, day: u32) -> String {
        match self.scheme() {
            DayScheme::Folders => day.to_string(),
            _ => date(day),
        }
    }
}

/// `YYYY-MM-DD` of a UTC day number (days since 1970-01-01), by the civil
/// calendar algorithm of Howard Hinnant's `civil_from_days`.
pub fn date(day: u32) -> String {
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The UTC day number of a `YYYY-MM-DD` date (the inverse of [`date`]).
pub fn parse_date(text: &str) -> Option<u32> {
    let mut parts = text.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let day = era * 146_097 + doe - 719_468;
    let day = u32::try_from(day).ok()?;
    (date(day) == text).then_some(day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn folder_days_come_from_the_nearest_day_folder() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(folder_day(&p("log/day-3/events-1.jsonl")), Some(3));
        assert_eq!(
            folder_day(&p("log/day-3/replica-a/events-1.jsonl")),
            Some(3)
        );
        assert_eq!(folder_day(&p("runs/day-1/log/day-12/e.jsonl")), Some(12));
        assert_eq!(folder_day(&p("log/replica-a/events-1.jsonl")), None);
        assert_eq!(folder_day(&p("log/day-x/events.jsonl")), None);
        assert_eq!(
            folder_day(&p("day-4.jsonl")),
            None,
            "a file is not a folder"
        );
    }

    #[test]
    fn records_take_their_files_day_or_their_utc_day() {
        let record = |seq: u32, timestamp: u64| {
            let mut r = Record::new(1, timestamp, 1, 1.0, 0.0, None, 0, true);
            r.seq = seq;
            r
        };
        let days = Days::new([(0, Some(1)), (10, None), (20, Some(2))]);
        assert_eq!(days.scheme(), DayScheme::Mixed);
        assert_eq!(days.day(&record(0, 5)), 1);
        assert_eq!(days.day(&record(9, 5)), 1);
        // 2026-01-02T00:00:00.001Z is UTC day 20455.
        assert_eq!(days.day(&record(10, 1_767_312_000_001)), 20_455);
        assert_eq!(days.day(&record(25, 0)), 2);
        assert_eq!(Days::new([(0, Some(1))]).scheme(), DayScheme::Folders);
        assert_eq!(Days::new([(0, None)]).scheme(), DayScheme::Timestamps);
        assert_eq!(Days::new([(0, Some(7))]).label(7), "7");
        assert_eq!(Days::new([(0, None)]).label(20_455), "2026-01-02");
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(20_454), "2026-01-01");
        assert_eq!(parse_date("2026-01-01"), Some(20_454));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        for day in (0..40_000).step_by(97) {
            assert_eq!(parse_date(&date(day)), Some(day));
        }
        for bad in ["2026-13-01", "2026-02-30", "2026-1-1x", "x", "2026-01"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
