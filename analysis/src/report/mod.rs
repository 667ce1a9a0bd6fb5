//! `ab --report DIR`: HTML pages with SVG charts, one folder each.
//!
//! [`notebook`] is the `ab` page (the table, effects, session lengths,
//! cumulative listen time), [`per_day`] the `ab --per-day` page (learning
//! curves) and [`extended`] the extended analysis's page (guardrails,
//! CUPED, daily looks; `breakdown.rs` adds segments, the effect over
//! time and quantiles to it); [`ope`] the `ope --report` page. Each prepares its numbers and draws them with the
//! charts of `charts.rs`; `html.rs` holds what the pages' HTML shares.

mod breakdown;
mod charts;
pub mod extended;
mod html;
pub mod notebook;
pub mod ope;
pub mod per_day;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use notebook::{write, CUMULATIVE_TIME, EFFECTS, INDEX, SESSION_LENGTH};

use crate::output;

/// The report's folder, created with its parents.
fn create_folder(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create report folder {}: check permissions",
            dir.display()
        )
    })
}

/// Draws the chart `name` of the folder `dir` with `chart`, naming the file
/// when it fails.
fn draw(dir: &Path, name: &str, chart: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let path = dir.join(name);
    chart(&path).with_context(|| format!("cannot draw {}", path.display()))
}

/// Writes the page `name` into `dir`, atomically; returns its path.
fn write_page(dir: &Path, name: &str, html: &str) -> Result<PathBuf> {
    let page = dir.join(name);
    output::write_atomic(&page, |w| w.write_all(html.as_bytes()))?;
    Ok(page)
}
