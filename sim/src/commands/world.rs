//! `sim world`: generate a world and write its three files.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::world::{generate, write_world, WorldParams};

/// Generate a world: tracks.jsonl, embeddings.npy and users.jsonl in --out.
///
/// Artist popularity is Zipf-distributed; embeddings cluster by genre and
/// artist; each user has 1..=max-interests interest tracks biased to
/// popular artists, and listening habits drawn uniformly from the
/// consume-bias and consume-sharpness ranges. The same seed and sizes give
/// byte-identical files.
#[derive(Debug, Args)]
pub struct WorldArgs {
    /// Directory to write the world to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub params: WorldParams,
}

pub fn run(args: WorldArgs) -> Result<()> {
    let WorldArgs { out, params } = args;
    let started = Instant::now();
    let data = generate(&params, true)?;
    write_world(&out, &data, true)?;
    eprintln!(
        "wrote {} tracks by {} artists, {} users (dim {}) to {} in {:.1}s",
        data.tracks.len(),
        params.artist_count(),
        data.users.len(),
        data.dim,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
