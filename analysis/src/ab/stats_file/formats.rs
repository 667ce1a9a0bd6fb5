//! The file formats `ab --stats` reads: CSV with a header line, JSON (an
//! array of objects, or one object per line), and Parquet (a file, or a
//! folder of `*.parquet` parts as Spark writes them), each as records of
//! column name → [`Cell`].

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int32Type, Int64Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayAccessor, ArrowPrimitiveType, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// One value of the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Number(f64),
    Text(String),
}

/// Reads the file's records as column name → cell.
pub fn read_records(path: &Path) -> Result<Vec<HashMap<String, Cell>>> {
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

pub fn read_json(text: &str) -> Result<Vec<HashMap<String, Cell>>> {
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
pub fn read_csv(text: &str) -> Result<Vec<HashMap<String, Cell>>> {
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

pub fn split_csv(line: &str) -> Vec<String> {
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
    let text = |s: &str| Cell::Text(s.to_string());
    let out = match column.data_type() {
        DataType::Null => vec![Cell::Null; column.len()],
        DataType::Utf8 => each(column.as_string::<i32>(), text),
        DataType::LargeUtf8 => each(column.as_string::<i64>(), text),
        DataType::Utf8View => each(column.as_string_view(), text),
        DataType::Date32 => each(column.as_primitive::<Date32Type>(), |d| {
            Cell::Text(crate::logs::days::date(d as u32))
        }),
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
    each(column.as_primitive::<T>(), |v| Cell::Number(to_f64(v)))
}

/// Every value of a typed column as a cell, nulls as [`Cell::Null`]: one
/// walk for every layout arrow reads a column into.
fn each<A: ArrayAccessor>(column: A, cell: impl Fn(A::Item) -> Cell) -> Vec<Cell> {
    (0..column.len())
        .map(|i| {
            if column.is_null(i) {
                Cell::Null
            } else {
                cell(column.value(i))
            }
        })
        .collect()
}
