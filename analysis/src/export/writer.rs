//! The dataset on disk: one Parquet writer per partition, files rolled at a
//! row count, everything written into a temporary folder beside `--out` and
//! renamed over it at the end, so a reader sees the whole export or none of
//! it, and a failed export leaves nothing behind.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{WriterProperties, WriterPropertiesPtr};
use parquet::schema::types::ColumnPath;

use super::columns;
use super::partition::Partition;

/// Encoded row groups held in memory across all partitions before the
/// largest is flushed early: a partition receives rows only as often as its
/// day and arm come up, and each writer holds its row group until it is full.
const MEMORY_BUDGET: usize = 512 << 20;

/// One written file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSummary {
    /// Path below the export root, e.g. `day=2026-01-01/AB=C/part-00000.parquet`.
    pub path: PathBuf,
    pub partition: Partition,
    pub rows: u64,
    pub bytes: u64,
}

/// The open file of one partition.
struct PartFile {
    path: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
    rows: u64,
}

/// An export being written.
pub struct Dataset {
    out: PathBuf,
    /// The folder being written; renamed to `out` by [`Dataset::finish`].
    staging: PathBuf,
    experiment: Option<String>,
    rows_per_file: u64,
    properties: WriterPropertiesPtr,
    open: BTreeMap<Partition, PartFile>,
    /// Files started per partition, for the next part number.
    parts: BTreeMap<Partition, u32>,
    written: Vec<FileSummary>,
    finished: bool,
}

/// How the columns are encoded: dictionaries where values repeat (Parquet's
/// default), delta encoding for the ever-growing `timestamp` and `seq`, plain
/// `latency` (nearly every value is distinct); snappy on top.
fn properties() -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!(
            "botify analysis export {} (parquet-rs)",
            env!("CARGO_PKG_VERSION")
        ));
    for column in ["timestamp", "seq"] {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(column), false)
            .set_column_encoding(ColumnPath::from(column), Encoding::DELTA_BINARY_PACKED);
    }
    builder
        .set_column_dictionary_enabled(ColumnPath::from("latency"), false)
        .build()
}

impl Dataset {
    /// Prepares an export into `out`. An existing `out` must be an empty
    /// folder, or with `overwrite` a folder holding only an earlier export's
    /// `day=…` folders (so a mistyped `--out` never deletes anything else).
    pub fn create(
        out: &Path,
        overwrite: bool,
        experiment: Option<String>,
        rows_per_file: u64,
    ) -> Result<Dataset> {
        check_out(out, overwrite)?;
        let name = out
            .file_name()
            .with_context(|| format!("--out {} must name a folder", out.display()))?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
        let staging = parent.join(format!(
            ".{}.export-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .with_context(|| format!("cannot remove a stale {}", staging.display()))?;
        }
        fs::create_dir(&staging)
            .with_context(|| format!("cannot create folder {}", staging.display()))?;
        Ok(Dataset {
            out: out.to_path_buf(),
            staging,
            experiment,
            rows_per_file: rows_per_file.max(1),
            properties: properties().into(),
            open: BTreeMap::new(),
            parts: BTreeMap::new(),
            written: Vec::new(),
            finished: false,
        })
    }

    /// Appends `batch` to `partition`'s files, starting a new file whenever
    /// the current one holds `rows_per_file` rows.
    pub fn write(&mut self, partition: Partition, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if !self.open.contains_key(&partition) {
                let file = self.start(partition)?;
                self.open.insert(partition, file);
            }
            let file = self.open.get_mut(&partition).expect("opened above");
            let room = (self.rows_per_file - file.rows) as usize;
            let take = room.min(batch.num_rows() - offset);
            file.writer
                .write(&batch.slice(offset, take))
                .with_context(|| format!("cannot write {}", file.path.display()))?;
            file.rows += take as u64;
            offset += take;
            if file.rows >= self.rows_per_file {
                let file = self.open.remove(&partition).expect("open");
                self.close(partition, file)?;
            }
        }
        self.keep_within_budget()
    }

    /// Flushes the largest row groups in progress while they hold more than
    /// [`MEMORY_BUDGET`] together (smaller row groups, bounded memory).
    fn keep_within_budget(&mut self) -> Result<()> {
        loop {
            let held: usize = self.open.values().map(|f| f.writer.memory_size()).sum();
            if held <= MEMORY_BUDGET {
                return Ok(());
            }
            let largest = self
                .open
                .values_mut()
                .max_by_key(|f| f.writer.memory_size())
                .expect("memory is held by some writer");
            largest
                .writer
                .flush()
                .with_context(|| format!("cannot write {}", largest.path.display()))?;
        }
    }

    fn start(&mut self, partition: Partition) -> Result<PartFile> {
        let dir = partition.dir(self.experiment.as_deref());
        let part = self.parts.entry(partition).or_insert(0);
        let path = dir.join(format!("part-{:05}.parquet", *part));
        *part += 1;
        let full = self.staging.join(&dir);
        fs::create_dir_all(&full)
            .with_context(|| format!("cannot create folder {}", full.display()))?;
        let full = self.staging.join(&path);
        let file =
            File::create(&full).with_context(|| format!("cannot create {}", full.display()))?;
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            columns::schema(),
            Some((*self.properties).clone()),
        )
        .with_context(|| format!("cannot start Parquet file {}", full.display()))?;
        Ok(PartFile {
            path,
            writer,
            rows: 0,
        })
    }

    /// Writes the footer and syncs the file to disk.
    fn close(&mut self, partition: Partition, file: PartFile) -> Result<()> {
        let full = self.staging.join(&file.path);
        let context = || format!("cannot finish {}", full.display());
        let buffered = file.writer.into_inner().with_context(context)?;
        let handle = buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(context)?;
        handle.sync_all().with_context(context)?;
        let bytes = handle.metadata().with_context(context)?.len();
        self.written.push(FileSummary {
            path: file.path,
            partition,
            rows: file.rows,
            bytes,
        });
        Ok(())
    }

    /// Closes every file and moves the export into place; returns the files
    /// written, sorted by path.
    pub fn finish(mut self) -> Result<Vec<FileSummary>> {
        for (partition, file) in std::mem::take(&mut self.open) {
            self.close(partition, file)?;
        }
        if self.out.exists() {
            let old = self.staging.with_extension("old");
            fs::rename(&self.out, &old).with_context(|| {
                format!(
                    "cannot move the earlier export {} aside",
                    self.out.display()
                )
            })?;
            if let Err(err) = fs::rename(&self.staging, &self.out) {
                // Put the earlier export back rather than leave nothing.
                let _ = fs::rename(&old, &self.out);
                return Err(err).with_context(|| {
                    format!("cannot move the export into {}", self.out.display())
                });
            }
            fs::remove_dir_all(&old).with_context(|| {
                format!("cannot remove the earlier export, now at {}", old.display())
            })?;
        } else {
            fs::rename(&self.staging, &self.out)
                .with_context(|| format!("cannot move the export into {}", self.out.display()))?;
        }
        self.finished = true;
        let mut written = std::mem::take(&mut self.written);
        written.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(written)
    }
}

impl Drop for Dataset {
    /// A failed or abandoned export leaves no half-written folder behind.
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// An export may go into a new or empty folder, or with `overwrite` replace
/// an earlier export.
fn check_out(out: &Path, overwrite: bool) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        bail!(
            "--out {} exists and is not a folder; choose a folder for the export",
            out.display()
        );
    }
    let entries: Vec<String> = fs::read_dir(out)
        .with_context(|| format!("cannot list {}", out.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", out.display()))?;
    if entries.is_empty() {
        return Ok(());
    }
    if !overwrite {
        bail!(
            "--out {} already holds files; pass --overwrite to replace an earlier export, \
             or choose another folder",
            out.display()
        );
    }
    if let Some(other) = entries.iter().find(|e| !e.starts_with("day=")) {
        bail!(
            "refusing to replace {}: it holds {other:?}, which an export does not write \
             (an export holds only day=… folders)",
            out.display()
        );
    }
    Ok(())
}
