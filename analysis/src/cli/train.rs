//! `analysis train` on the command line: trains, then prints what was read
//! and which files were written.

use std::time::Instant;

use anyhow::Result;

use super::{done, print_notes};
use crate::commands::train::{self as command, Options, Trained};

pub(super) fn run(options: &Options, started: Instant) -> Result<()> {
    print(&command::run(options)?);
    done(started);
    Ok(())
}

/// Prints a training as `analysis train` does: its notes, one line per
/// file written.
pub fn print(trained: &Trained) {
    print_notes(&trained.notes);
}
