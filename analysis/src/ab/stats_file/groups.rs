//! Segments' and days' statistics from a file's group and pair rows: what
//! `ab --stats FILE --segment-by BY` and `--trend` read instead of the logs.
//!
//! The SQL writes them only when asked (`segment_by`, `per_day`), so a file
//! without them says which option of the job adds them. Labels are sorted
//! as the logs' analysis sorts them, and a pair row written in the other
//! order is turned around.

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;

use super::{StatRow, StatsFile};
use crate::ab::group_sums::{GroupSums, PairSums};
use crate::ab::metrics::Metric;
use crate::ab::segments::SegmentSums;
use crate::ab::sums::Sums;
use crate::ab::trend::DaySums;

impl StatsFile {
    /// The rows of `experiment` under `grouping`.
    fn grouped<'a>(&'a self, experiment: &'a str, grouping: &'a str) -> Vec<&'a StatRow> {
        self.rows
            .iter()
            .filter(|r| r.experiment == experiment && r.grouping.as_deref() == Some(grouping))
            .collect()
    }

    /// Every segment's statistics of `metric` under `by` (`listener`,
    /// `genre` or `daypart`).
    pub fn segment_sums(
        &self,
        experiment: &str,
        by: &str,
        metric: &Metric,
        arms: usize,
    ) -> Result<SegmentSums> {
        let rows = self.grouped(experiment, by);
        if rows.is_empty() {
            bail!(
                "{} has no per-segment rows by {by}: compute them with the SQL's segment_by \
                 '{by}' (scripts/spark_ab.py --segment-by {by})",
                self.path.display()
            );
        }
        let labels = labels(&rows);
        if by == "listener" && !labels.iter().any(|l| l == "returning") {
            bail!(
                "--segment-by listener tells returning listeners by a session before the \
                 experiment, but {} has none: run the SQL with a start day",
                self.path.display()
            );
        }
        let users = labels
            .iter()
            .map(|label| {
                let mut counts = vec![0u64; arms];
                for r in rows.iter().filter(|r| r.pair.is_none()) {
                    if r.segment.as_deref() == Some(label) && (r.arm as usize) < arms {
                        counts[r.arm as usize] = counts[r.arm as usize].max(r.users);
                    }
                }
                counts
            })
            .collect();
        Ok(SegmentSums {
            arms: group_sums(&rows, &labels, metric, arms),
            labels,
            users,
        })
    }

    /// Every day's statistics of `metric`: each day alone, and the window
    /// up to it.
    pub fn day_sums(&self, experiment: &str, metric: &Metric, arms: usize) -> Result<DaySums> {
        let rows = self.grouped(experiment, "day");
        if rows.is_empty() {
            bail!(
                "{} has no per-day rows: compute them with the SQL's per_day \
                 (scripts/spark_ab.py --trend)",
                self.path.display()
            );
        }
        let labels = labels(&rows);
        let through = self.grouped(experiment, "through");
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
        let days = labels
            .iter()
            .map(|label| {
                let date = NaiveDate::parse_from_str(label, "%Y-%m-%d")
                    .with_context(|| format!("day {label:?} is not a YYYY-MM-DD date"))?;
                let number = u32::try_from(date.signed_duration_since(epoch).num_days())
                    .with_context(|| format!("day {label} is before 1970"))?;
                Ok((number, label.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        let through = labels
            .iter()
            .map(|label| {
                let mut sums = vec![Sums::new(false); arms];
                for r in through.iter().filter(|r| {
                    r.metric == metric.name && r.segment.as_deref() == Some(label.as_str())
                }) {
                    if (r.arm as usize) < arms {
                        sums[r.arm as usize] = r.sums;
                    }
                }
                sums
            })
            .collect();
        Ok(DaySums {
            alone: group_sums(&rows, &labels, metric, arms),
            days,
            through,
        })
    }
}

/// The groups named in `rows` (any metric's), sorted.
fn labels(rows: &[&StatRow]) -> Vec<String> {
    let set: BTreeSet<&String> = rows.iter().filter_map(|r| r.segment.as_ref()).collect();
    set.into_iter().cloned().collect()
}

/// Per arm, `metric`'s sums of each group in `labels` order and of each
/// pair of groups.
fn group_sums(
    rows: &[&StatRow],
    labels: &[String],
    metric: &Metric,
    arms: usize,
) -> Vec<GroupSums> {
    let index = |label: &str| labels.binary_search_by(|l| l.as_str().cmp(label)).ok();
    let mut out = vec![
        GroupSums {
            groups: vec![Sums::new(false); labels.len()],
            ..GroupSums::default()
        };
        arms
    ];
    for r in rows.iter().filter(|r| r.metric == metric.name) {
        let (Some(arm), Some(a)) = (
            out.get_mut(r.arm as usize),
            r.segment.as_deref().and_then(index),
        ) else {
            continue;
        };
        match &r.pair {
            None => arm.groups[a] = r.sums,
            Some((other, sums)) => {
                let Some(b) = index(other) else { continue };
                if a < b {
                    arm.pairs.insert((a, b), *sums);
                } else {
                    arm.pairs.insert((b, a), turned(sums));
                }
            }
        }
    }
    out
}

/// A pair's sums with its two sides swapped.
fn turned(p: &PairSums) -> PairSums {
    PairSums {
        n: p.n,
        yy: p.yy,
        yd: p.dy,
        dy: p.yd,
        dd: p.dd,
        y_a: p.y_b,
        d_a: p.d_b,
        y_b: p.y_a,
        d_b: p.d_a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab::metrics::{self, Kind, Observation};

    #[test]
    fn a_pair_written_in_the_other_order_is_turned_around() {
        let ratio = |range: std::ops::Range<u64>| -> Vec<(u64, Observation)> {
            range
                .map(|u| (u, Observation::Ratio(u as f64 + 2.0, (u % 3 + 1) as f64)))
                .collect()
        };
        let sums = GroupSums::of(Kind::Ratio, &[ratio(0..30), ratio(10..50)]);
        let pair = sums.pairs[&(0, 1)];
        let metric = metrics::find("session_time").unwrap();
        let row = |segment: &str, pair: Option<(String, PairSums)>, sums: Sums| StatRow {
            experiment: "AB".to_string(),
            arm: 0,
            metric: metric.name.to_string(),
            grouping: Some("genre".to_string()),
            segment: Some(segment.to_string()),
            pair,
            first_day: None,
            last_day: None,
            users: 0,
            sums,
        };
        let labels = ["jazz".to_string(), "rock".to_string()];
        let groups = [
            row("jazz", None, sums.groups[0]),
            row("rock", None, sums.groups[1]),
        ];
        let forward = row("jazz", Some(("rock".to_string(), pair)), Sums::default());
        let backward = row(
            "rock",
            Some(("jazz".to_string(), turned(&pair))),
            Sums::default(),
        );
        let read = |pair: &StatRow| {
            let rows: Vec<&StatRow> = groups.iter().chain([pair]).collect();
            group_sums(&rows, &labels, metric, 1).remove(0)
        };
        assert_eq!(read(&forward), sums);
        assert_eq!(read(&backward), sums);
    }
}
