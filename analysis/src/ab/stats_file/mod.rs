//! `ab --stats FILE`: sufficient statistics a warehouse computed
//! (`analysis/sql/ab_stats.sql` in DuckDB or Spark, `scripts/spark_ab.py`),
//! read back into the engine's input (docs/analysis.md#sufficient-statistics).
//!
//! One row per (experiment, arm, metric) over every user and the whole
//! window (`grouping` empty), which the table reads; with the SQL's
//! `segment_by` or `per_day`, also one per group (`grouping` and `segment`)
//! and per pair of groups that share users (`other` too), which segments and
//! the trend read ([`groups`]). The formats are in [`formats`].

mod formats;
mod groups;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use formats::{read_records, Cell};

use super::extended::{Aggregates, MetricSums};
use super::group_sums::PairSums;
use super::metrics::{self, Kind, Metric};
use super::notebook::METRICS;
use super::sums::{PreSums, Sums};
use crate::logs::parse_arm_label;

/// One row of the file: the keys and the sums.
#[derive(Debug, Clone, PartialEq)]
pub struct StatRow {
    pub experiment: String,
    pub arm: u8,
    pub metric: String,
    /// `listener`, `genre`, `daypart`, `day` or `through`; `None` for the
    /// whole-window rows.
    pub grouping: Option<String>,
    /// The group: a segment, or a day as YYYY-MM-DD.
    pub segment: Option<String>,
    /// Pair rows: the second group, and the sums over the users in both
    /// (`sums` holds the first group's side).
    pub pair: Option<(String, PairSums)>,
    pub first_day: Option<String>,
    pub last_day: Option<String>,
    pub users: u64,
    pub sums: Sums,
}

/// The rows of one file.
#[derive(Debug, Clone)]
pub struct StatsFile {
    pub path: PathBuf,
    pub rows: Vec<StatRow>,
}

impl StatsFile {
    /// Reads `path`: Parquet for a folder or a `.parquet` file (or one that
    /// starts with Parquet's magic bytes), JSON for `.json`/`.jsonl`/`.ndjson`
    /// (or one that starts with `[` or `{`), CSV otherwise.
    pub fn read(path: &Path) -> Result<StatsFile> {
        let context = || format!("--stats {}", path.display());
        let records = read_records(path).with_context(context)?;
        let rows = records
            .iter()
            .enumerate()
            .map(|(i, r)| row(r).with_context(|| format!("row {}", i + 1)))
            .collect::<Result<Vec<_>>>()
            .with_context(context)?;
        if rows.is_empty() {
            bail!("--stats {}: the file holds no row", path.display());
        }
        Ok(StatsFile {
            path: path.to_path_buf(),
            rows,
        })
    }

    /// The rows of `experiment` over every user and the whole window.
    fn overall(&self, experiment: &str) -> Result<Vec<&StatRow>> {
        let rows: Vec<&StatRow> = self
            .rows
            .iter()
            .filter(|r| r.experiment == experiment && r.grouping.is_none())
            .collect();
        if rows.is_empty() {
            let mut names: Vec<&str> = self.rows.iter().map(|r| r.experiment.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            bail!(
                "{} has no rows of experiment {experiment:?} over the whole window; it has {}",
                self.path.display(),
                names.join(", ")
            );
        }
        Ok(rows)
    }

    /// Whether the sums of `experiment` carry a pre-period (the SQL ran
    /// with a start day that leaves days before it).
    pub fn has_pre_period(&self, experiment: &str) -> Result<bool> {
        Ok(self
            .overall(experiment)?
            .iter()
            .any(|r| r.sums.pre.is_some()))
    }

    /// Users per arm (index order), over the configured `arms` at least.
    fn users(rows: &[&StatRow], arms: Option<usize>) -> Vec<u64> {
        let seen = rows.iter().map(|r| r.arm as usize + 1).max().unwrap_or(0);
        let mut users = vec![0; arms.unwrap_or(seen).max(seen)];
        for r in rows {
            users[r.arm as usize] = users[r.arm as usize].max(r.users);
        }
        users
    }

    /// Each arm's sums of `metric` (arms without a row: none).
    fn arm_sums(rows: &[&StatRow], metric: &str, arms: usize, pre: bool) -> Vec<Sums> {
        let mut sums = vec![Sums::new(pre); arms];
        for r in rows.iter().filter(|r| r.metric == metric) {
            sums[r.arm as usize] = r.sums;
        }
        sums
    }

    /// The notebook table's input: each arm's sums of [`METRICS`].
    pub fn notebook(&self, experiment: &str, arms: Option<usize>) -> Result<Vec<[Sums; 5]>> {
        let rows = self.overall(experiment)?;
        let k = Self::users(&rows, arms).len();
        let per_metric: Vec<Vec<Sums>> = METRICS
            .iter()
            .map(|m| Self::arm_sums(&rows, m, k, false))
            .collect();
        Ok((0..k)
            .map(|a| std::array::from_fn(|m| per_metric[m][a]))
            .collect())
    }

    /// The extended analysis's input for `metrics`.
    pub fn aggregates(
        &self,
        experiment: &str,
        metrics: &[&'static Metric],
        arms: Option<usize>,
    ) -> Result<Aggregates> {
        let rows = self.overall(experiment)?;
        let pre = rows.iter().any(|r| r.sums.pre.is_some());
        let users = Self::users(&rows, arms);
        let mut chosen = Vec::new();
        for &metric in metrics {
            // No row: no user counts for the metric (a 7-day return over a
            // shorter window), as from the logs.
            if let Some(r) = rows
                .iter()
                .find(|r| r.metric == metric.name && pre != r.sums.pre.is_some())
            {
                bail!(
                    "{}: the rows disagree on the pre-period (arm {}, metric {} has {} n_x)",
                    self.path.display(),
                    botify::experiments::arm_label(r.arm as usize),
                    r.metric,
                    if pre { "no" } else { "an" }
                );
            }
            chosen.push(MetricSums {
                metric,
                arms: Self::arm_sums(&rows, metric.name, users.len(), pre),
            });
        }
        let day = |f: fn(&StatRow) -> &Option<String>| {
            rows.iter()
                .find_map(|r| f(r).clone())
                .unwrap_or_else(|| "?".to_string())
        };
        Ok(Aggregates {
            window: (day(|r| &r.first_day), day(|r| &r.last_day)),
            users,
            metrics: chosen,
            pre_period: pre,
        })
    }
}

/// One record as a [`StatRow`]: the keys, and the sums the metric's kind needs.
fn row(record: &HashMap<String, Cell>) -> Result<StatRow> {
    let text = |name: &str| -> Result<Option<String>> {
        match record.get(name) {
            None | Some(Cell::Null) => Ok(None),
            Some(Cell::Text(t)) => Ok(Some(t.clone())),
            Some(Cell::Number(v)) => Ok(Some(v.to_string())),
        }
    };
    let number = |name: &str| -> Result<Option<f64>> {
        match record.get(name) {
            None | Some(Cell::Null) => Ok(None),
            Some(Cell::Number(v)) => Ok(Some(*v)),
            Some(Cell::Text(t)) => t
                .trim()
                .parse()
                .map(Some)
                .with_context(|| format!("column {name}: {t:?} is not a number")),
        }
    };
    let required_text = |name: &str| {
        text(name)?.with_context(|| format!("no value in column {name:?} (columns: experiment, arm, metric, users, n, sum_y, sum_y2, …)"))
    };
    let required =
        |name: &str| number(name)?.with_context(|| format!("no value in column {name:?}"));
    let count = |v: f64| v as u64;
    let arm_label = required_text("arm")?;
    let arm = parse_arm_label(&arm_label)
        .with_context(|| format!("arm {arm_label:?} is not an arm label (C, T1, T2, …)"))?;
    let metric_name = required_text("metric")?;
    let kind = metrics::find(&metric_name).map(|m| m.kind);
    let n = count(required("n")?);
    let y = required("sum_y")?;
    let (d, dd, yd) = match kind {
        Some(Kind::Ratio) => (required("sum_d")?, required("sum_d2")?, required("sum_yd")?),
        // A user metric's denominator is 1 per user.
        _ => (n as f64, n as f64, y),
    };
    let pair = match text("other")? {
        None => None,
        Some(other) => {
            let cross = |name: &str, user_value: f64| -> Result<f64> {
                match kind {
                    Some(Kind::Ratio) => required(name),
                    _ => Ok(user_value),
                }
            };
            let y_b = required("sum_y_other")?;
            Some((
                other,
                PairSums {
                    n,
                    yy: required("sum_y_y_other")?,
                    yd: cross("sum_y_d_other", y)?,
                    dy: cross("sum_d_y_other", y_b)?,
                    dd: cross("sum_d_d_other", n as f64)?,
                    y_a: y,
                    d_a: d,
                    y_b,
                    d_b: cross("sum_d_other", n as f64)?,
                },
            ))
        }
    };
    // Pair rows count no users of their own.
    let users = match pair {
        Some(_) => 0,
        None => count(required("users")?),
    };
    let pre = match number("n_x")? {
        None => None,
        Some(n_x) => {
            let zero = |name: &str| -> Result<f64> { Ok(number(name)?.unwrap_or(0.0)) };
            let x = zero("sum_x")?;
            Some(PreSums {
                n: count(n_x),
                x,
                xx: zero("sum_x2")?,
                xy: zero("sum_xy")?,
                xd: match kind {
                    Some(Kind::Ratio) => zero("sum_xd")?,
                    _ => x,
                },
                y: zero("sum_y_x")?,
                d: match kind {
                    Some(Kind::Ratio) => zero("sum_d_x")?,
                    _ => n_x,
                },
            })
        }
    };
    Ok(StatRow {
        experiment: required_text("experiment")?,
        arm,
        metric: metric_name,
        grouping: text("grouping")?,
        segment: text("segment")?,
        pair,
        first_day: text("first_day")?,
        last_day: text("last_day")?,
        users,
        sums: Sums {
            n,
            y,
            yy: required("sum_y2")?,
            d,
            dd,
            yd,
            pre,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::formats::{read_csv, read_json, split_csv};
    use super::*;

    #[test]
    fn csv_fields_may_be_quoted_and_empty_ones_are_null() {
        assert_eq!(split_csv(r#"a,"b,c",,"d""e""#), ["a", "b,c", "", "d\"e"]);
        let records =
            read_csv("experiment,arm,metric,segment,users,n,sum_y,sum_y2\nAB,T1,time,,3,3,6,14\n")
                .unwrap();
        let r = row(&records[0]).unwrap();
        assert_eq!((r.arm, r.segment.as_deref(), r.users), (1, None, 3));
        assert_eq!(
            (r.sums.n, r.sums.y, r.sums.yy, r.sums.d),
            (3, 6.0, 14.0, 3.0)
        );
        assert!(r.sums.pre.is_none());
    }

    #[test]
    fn bad_rows_say_what_is_wrong() {
        let records = read_json(r#"[{"experiment":"AB","arm":"X","metric":"time","users":1,"n":1,"sum_y":1,"sum_y2":1}]"#).unwrap();
        let err = format!("{:#}", row(&records[0]).unwrap_err());
        assert!(err.contains("not an arm label"), "{err}");
        let records = read_json(r#"{"experiment":"AB","arm":"C","metric":"session_time","users":1,"n":1,"sum_y":1,"sum_y2":1}"#).unwrap();
        let err = format!("{:#}", row(&records[0]).unwrap_err());
        assert!(err.contains("sum_d"), "{err}");
    }
}
