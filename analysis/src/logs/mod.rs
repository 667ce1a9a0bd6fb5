//! Reading botify event logs (docs/analysis.md#reading-logs): many files, rotated and gzipped
//! files, globs, several replicas' folders — robust to broken lines.
//!
//! Speed is the point here: `ab` must get through ten million events in a few
//! seconds on two cores. So a line is parsed by a hand-written serde visitor
//! straight into a fixed-size [`Record`] holding only what the analyses need
//! (no `BTreeMap` of experiments, no `String`s: the experiment's arm label is
//! matched and decoded while parsing), files are split into byte ranges read
//! by parallel workers, and a bad line is counted, never fatal.
//!
//! A line flows one way through the submodules, each using only those after
//! it:
//!
//! 1. `files.rs` — which files: `--logs` files, folders and globs, sorted;
//! 2. `read.rs` — files cut into byte ranges (gzip whole) read by parallel
//!    workers, broken lines counted in the [`ReadReport`];
//! 3. `parse.rs` — one line to one record; serde_json is the reference
//!    parser and words the errors;
//! 4. `fast.rs` — the byte scanner tried first on every line: every field
//!    of a line borrowed from it, a [`Record`]'s for `ab`, all of them for
//!    the export;
//! 5. `record.rs` — the compact [`Record`] and the range checks both parsers
//!    share.
//!
//! `event.rs` is the export's parser: every field of a line, on the same
//! scan and the same checks; the export (`crate::export`) drives it through
//! `read.rs`'s chunks and line counts.
//!
//! `days.rs` tells which day a record belongs to (its `day-<n>` folder, else
//! its UTC day), from where each file's records start.

pub mod days;
mod event;
mod fast;
mod files;
mod parse;
mod read;
mod record;

pub use days::{DayScheme, Days};
pub use event::{parse_event, Event, Experiments, MAX_TIMESTAMP};
pub use files::resolve;
pub use parse::parse_line;
pub use read::{default_threads, read, Logs, ReadOptions, ReadReport};
pub(crate) use read::{plan, scan_chunk, total_bytes, Chunk, LineCounts, ReportBuilder};
pub use record::{parse_arm_label, Record, NO_ARM};
