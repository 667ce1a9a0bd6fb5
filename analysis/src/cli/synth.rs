//! Printing `analysis synth`: how many events went where.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use super::note;
use crate::commands::synth::Options;

pub(super) fn print(options: &Options, files: &[PathBuf], started: Instant) -> Result<()> {
    note(format!(
        "wrote {} events in {} files under {} in {:.2}s",
        options.events,
        files.len(),
        options.out.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
