//! `ab --stats FILE`: sufficient statistics a warehouse computed
//! (`analysis/sql/ab_stats.sql` in DuckDB or Spark, `scripts/spark_ab.py`),
//! read back into the engine's input (docs/analysis.md#sufficient-statistics).
//!
//! One row per (experiment, arm, metric, segment, day): `segment` and `day`
//! empty for the rows over every user and the whole window, which are the
//! ones analysed here; rows with a segment or a day are more rows of the same
//! schema (per-segment and per-day statistics) and are left to the analyses
//! that read them. The file is CSV (a header line), JSON (an array of
//! objects, or one object per line) or Parquet (a file, or a folder of
//! `*.parquet` parts as Spark writes them).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int32Type, Int64Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::extended::{Aggregates, MetricSums};
use super::metrics::{self, Kind, Metric};
use super::notebook::METRICS;
use super::sums::{PreSums, Sums};
use crate::logs::parse_arm_label;

/// One value of the file.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Number(f64),
    Text(String),
}

/// One row of the file: the keys and the sums.
#[derive(Debug, Clone, PartialEq)]
pub struct StatRow {
    pub experiment: String,
    pub arm: u8,
    pub metric: String,
    pub segment: Option<String>,
    pub day: Option<String>,
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
            .filter(|r| r.experiment == experiment && r.segment.is_none() && r.day.is_none())
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

/// Reads the file's records as column name → cell.
fn read_records(path: &Path) -> Result<Vec<HashMap<String, Cell>>> {
    if path.is_dir() {
        let mut parts: Vec<PathBuf> = fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        parts.retain(|p| p.extension().is_some_and(|e| e == "parquet"));
        parts.sort();
        if parts.is_empty() {
            bail!("the folder holds no *.parquet file");
        }
        let mut records = Vec::new();
        for part in parts {
            records.extend(read_parquet(&part)?);
        }
        return Ok(records);
    }
    let bytes = fs::read(path).context("cannot read the file")?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if extension == "parquet" || bytes.starts_with(b"PAR1") {
        read_parquet(path)
    } else if ["json", "jsonl", "ndjson"].contains(&extension.as_str())
        || matches!(first, Some(b'[' | b'{'))
    {
        read_json(&String::from_utf8(bytes).context("JSON that is not UTF-8")?)
    } else {
        read_csv(&String::from_utf8(bytes).context("CSV that is not UTF-8")?)
    }
}

fn read_json(text: &str) -> Result<Vec<HashMap<String, Cell>>> {
    let objects: Vec<serde_json::Map<String, serde_json::Value>> =
        if text.trim_start().starts_with('[') {
            serde_json::from_str(text).context("not a JSON array of objects")?
        } else {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(i, l)| {
                    serde_json::from_str(l)
                        .with_context(|| format!("line {} is not a JSON object", i + 1))
                })
                .collect::<Result<_>>()?
        };
    Ok(objects
        .into_iter()
        .map(|o| {
            o.into_iter()
                .map(|(k, v)| {
                    let cell = match v {
                        serde_json::Value::Null => Cell::Null,
                        serde_json::Value::Number(n) => {
                            Cell::Number(n.as_f64().unwrap_or(f64::NAN))
                        }
                        serde_json::Value::String(s) => Cell::Text(s),
                        other => Cell::Text(other.to_string()),
                    };
                    (k, cell)
                })
                .collect()
        })
        .collect())
}

/// CSV with a header line; an empty field is null. Fields may be quoted
/// ("…", with "" for a quote).
fn read_csv(text: &str) -> Result<Vec<HashMap<String, Cell>>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = split_csv(lines.next().context("the file is empty")?);
    lines
        .enumerate()
        .map(|(i, line)| {
            let fields = split_csv(line);
            if fields.len() != header.len() {
                bail!(
                    "line {} has {} fields, the header {}",
                    i + 2,
                    fields.len(),
                    header.len()
                );
            }
            Ok(header
                .iter()
                .zip(fields)
                .map(|(k, v)| {
                    let cell = if v.is_empty() {
                        Cell::Null
                    } else {
                        Cell::Text(v)
                    };
                    (k.clone(), cell)
                })
                .collect())
        })
        .collect()
}

fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

fn read_parquet(path: &Path) -> Result<Vec<HashMap<String, Cell>>> {
    let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not Parquet", path.display()))?
        .build()?;
    let mut records = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch?;
        let schema = batch.schema();
        let columns: Vec<(String, Vec<Cell>)> = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| Ok((f.name().clone(), cells(c.as_ref())?)))
            .collect::<Result<_>>()?;
        for i in 0..batch.num_rows() {
            records.push(
                columns
                    .iter()
                    .map(|(name, cells)| (name.clone(), cells[i].clone()))
                    .collect(),
            );
        }
    }
    Ok(records)
}

/// A Parquet column's values, whatever integer, float, string or date
/// type the writer chose.
fn cells(column: &dyn Array) -> Result<Vec<Cell>> {
    let n = column.len();
    let get = |i: usize, value: &dyn Fn(usize) -> Cell| {
        if column.is_null(i) {
            Cell::Null
        } else {
            value(i)
        }
    };
    let out = match column.data_type() {
        DataType::Null => vec![Cell::Null; n],
        DataType::Utf8 => {
            let a = column.as_string::<i32>();
            (0..n)
                .map(|i| get(i, &|i| Cell::Text(a.value(i).to_string())))
                .collect()
        }
        DataType::LargeUtf8 => {
            let a = column.as_string::<i64>();
            (0..n)
                .map(|i| get(i, &|i| Cell::Text(a.value(i).to_string())))
                .collect()
        }
        DataType::Utf8View => {
            let a = column.as_string_view();
            (0..n)
                .map(|i| get(i, &|i| Cell::Text(a.value(i).to_string())))
                .collect()
        }
        DataType::Date32 => {
            let a = column.as_primitive::<Date32Type>();
            (0..n)
                .map(|i| {
                    get(i, &|i| {
                        Cell::Text(crate::logs::days::date(a.value(i) as u32))
                    })
                })
                .collect()
        }
        DataType::Float64 => numbers::<Float64Type>(column, |v| v),
        DataType::Float32 => numbers::<Float32Type>(column, f64::from),
        DataType::Int64 => numbers::<Int64Type>(column, |v| v as f64),
        DataType::Int32 => numbers::<Int32Type>(column, f64::from),
        DataType::UInt64 => numbers::<UInt64Type>(column, |v| v as f64),
        DataType::UInt32 => numbers::<UInt32Type>(column, f64::from),
        other => bail!("a column of type {other}, expected numbers, strings or dates"),
    };
    Ok(out)
}

/// A numeric column's values as numbers (nulls as nulls).
fn numbers<T: ArrowPrimitiveType>(
    column: &dyn Array,
    to_f64: impl Fn(T::Native) -> f64,
) -> Vec<Cell> {
    let a = column.as_primitive::<T>();
    (0..a.len())
        .map(|i| {
            if a.is_null(i) {
                Cell::Null
            } else {
                Cell::Number(to_f64(a.value(i)))
            }
        })
        .collect()
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
        segment: text("segment")?,
        day: text("day")?,
        first_day: text("first_day")?,
        last_day: text("last_day")?,
        users: count(required("users")?),
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
