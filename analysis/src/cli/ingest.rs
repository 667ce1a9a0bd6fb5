//! `analysis ingest` on the command line: collects the streams, then prints
//! what was read, written and dropped as a duplicate.

use std::time::Instant;

use anstream::println;
use anyhow::Result;

use super::{done, note};
use crate::commands::ingest::{self as command, Options};

pub(super) fn run(options: &Options, started: Instant) -> Result<()> {
    let ingested = command::run(options)?;
    if ingested.repaired > 0 {
        note(format!(
            "cut {} bytes of a line a crash left unfinished; its entry is read again",
            ingested.repaired
        ));
    }
    println!(
        "read {} lines, wrote {} to {}, dropped {} already there ({} were there before)",
        ingested.read,
        ingested.written,
        options.out.display(),
        ingested.duplicates,
        ingested.known
    );
    done(started);
    Ok(())
}
