//! `analysis synth`: synthetic botify logs for benchmarks and tests.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use super::note;
use crate::synth::{self, SynthExperiment, SynthParams};
use tally::progress::{self, Unit};

#[derive(Args)]
pub(super) struct SynthArgs {
    /// Output folder; replicas write into replica-N/ below it.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    #[arg(long, default_value_t = 16_000)]
    tracks: u32,
    #[arg(long, default_value_t = 2)]
    replicas: usize,
    /// Events per file before rotating.
    #[arg(long, default_value_t = 1_000_000)]
    rotate_events: u64,
    /// Experiments logged with every event: NAME:ARMS[:UPLIFT], repeatable;
    /// treatment arm Tk recommends in-cluster k × UPLIFT more often.
    #[arg(long = "experiment", default_values = ["AA:2", "AB:2:0.05"])]
    experiments: Vec<SynthExperiment>,
    /// Base probability that a recommendation stays in the session's cluster.
    #[arg(long, default_value_t = 0.5)]
    coherence: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// UTC days the events spread over, from 2026-01-01 (one day: from 2023-11-14);
    /// multi-day logs for retention, CUPED (`ab --start`) and `power`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=365))]
    days: u32,
}

pub(super) fn run_synth(args: SynthArgs) -> Result<()> {
    let started = Instant::now();
    let params = SynthParams {
        events: args.events,
        users: args.users,
        tracks: args.tracks,
        replicas: args.replicas,
        rotate_events: args.rotate_events.max(1),
        experiments: args.experiments,
        coherence: args.coherence,
        seed: args.seed,
        days: args.days,
        // Midnight UTC, so day 1 is a whole day.
        start_ms: if args.days > 1 {
            1_767_225_600_000
        } else {
            SynthParams::default().start_ms
        },
    };
    let bar = progress::bar(Unit::Steps, args.events, "events");
    let files = synth::generate(&args.out, &params, &bar)?;
    note(format!(
        "wrote {} events in {} files under {} in {:.2}s",
        args.events,
        files.len(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
