//! `analysis synth`: synthetic botify logs for benchmarks and tests.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::synth::{self, SynthExperiment, SynthParams};
use tally::progress::{self, Unit};

/// `analysis synth`'s flags.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Output folder; replicas write into replica-N/ below it.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, default_value_t = Options::default().events)]
    pub events: u64,
    #[arg(long, default_value_t = Options::default().users)]
    pub users: u64,
    #[arg(long, default_value_t = Options::default().tracks)]
    pub tracks: u32,
    #[arg(long, default_value_t = Options::default().replicas)]
    pub replicas: usize,
    /// Events per file before rotating.
    #[arg(long, default_value_t = Options::default().rotate_events)]
    pub rotate_events: u64,
    /// Experiments logged with every event: NAME:ARMS[:UPLIFT], repeatable;
    /// treatment arm Tk recommends in-cluster k × UPLIFT more often.
    #[arg(long = "experiment", default_values = ["AA:2", "AB:2:0.05"])]
    pub experiments: Vec<SynthExperiment>,
    /// Base probability that a recommendation stays in the session's cluster.
    #[arg(long, default_value_t = Options::default().coherence)]
    pub coherence: f64,
    #[arg(long, default_value_t = Options::default().seed)]
    pub seed: u64,
    /// UTC days the events spread over, from 2026-01-01 (one day: from 2023-11-14);
    /// multi-day logs for retention, CUPED (`ab --start`) and `power`.
    #[arg(long, default_value_t = Options::default().days, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: u32,
}

impl Default for Options {
    /// The defaults `analysis synth --help` shows; set `out` before running.
    fn default() -> Options {
        Options {
            out: PathBuf::new(),
            events: 1_000_000,
            users: 10_000,
            tracks: 16_000,
            replicas: 2,
            rotate_events: 1_000_000,
            experiments: SynthParams::default().experiments,
            coherence: 0.5,
            seed: 42,
            days: 1,
        }
    }
}

/// Writes the logs `options` describe; returns the files written.
pub fn run(options: &Options) -> Result<Vec<PathBuf>> {
    let params = SynthParams {
        events: options.events,
        users: options.users,
        tracks: options.tracks,
        replicas: options.replicas,
        rotate_events: options.rotate_events.max(1),
        experiments: options.experiments.clone(),
        coherence: options.coherence,
        seed: options.seed,
        days: options.days,
        // Midnight UTC, so day 1 is a whole day.
        start_ms: if options.days > 1 {
            1_767_225_600_000
        } else {
            SynthParams::default().start_ms
        },
    };
    let bar = progress::bar(Unit::Steps, options.events, "events");
    synth::generate(&options.out, &params, &bar)
}
