//! Analysts' side of botify: read the service's event logs, compute A/B tables,
//! train the models botify serves, and evaluate them offline (docs/analysis.md).
//!
//! Each command of the binary is a typed function in [`commands`] (options
//! in, tables, rows and files out); [`cli`] parses flags into those options
//! and prints the results. Tests and other crates (the simulator) call the
//! commands, or the modules below them, directly.
//!
//! Pipeline: [`logs`] reads many (rotated, gzipped, per-replica) files in
//! parallel into compact [`logs::Record`]s → [`sessions`] sorts and cuts them
//! into sessions → [`ab`] turns sessions into the notebook's user-level metrics
//! and Welch table, [`train`] into the models botify serves (popularity,
//! co-listening and ALS tables, the learned embedding, recent sessions), and
//! [`eval`] scores those tables and botify's own recommenders on held-out
//! sessions. [`export`] writes the events as a Parquet dataset for big-data
//! tools. [`synth`] writes botify-shaped logs for benchmarks and tests.

pub mod ab;
pub mod cli;
pub mod commands;
pub mod eval;
pub mod export;
pub mod logs;
pub mod ope;
pub mod output;
pub mod report;
pub mod sessions;
pub mod synth;
pub mod train;
