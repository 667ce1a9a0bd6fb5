//! `analysis synth` on the command line: writes the logs, then says how many
//! events went where.

use std::time::Instant;

use anyhow::Result;

use super::note;
use crate::commands::synth::{self as command, Options};

pub(super) fn run(options: &Options, started: Instant) -> Result<()> {
    let files = command::run(options)?;
    note(format!(
        "wrote {} events in {} files under {} in {:.2}s",
        options.events,
        files.len(),
        options.out.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
