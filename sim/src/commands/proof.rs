//! `sim proof`: the A/B engine's statistics checked against simulated ground
//! truth (see [`crate::proof`]); this file parses the flags and prints.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::proof::{self, Proof};

/// Prove the A/B analysis on simulated ground truth: false-positive rates of
/// A/A experiments (fixed horizon and daily sequential looks), coverage of a
/// known injected effect by the 95% interval, and CUPED's narrowing of the
/// intervals, all from experiments played in-process through botify.
#[derive(Debug, Args)]
pub struct ProofArgs {
    #[command(flatten)]
    pub options: proof::Options,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: ProofArgs) -> Result<()> {
    let proof = proof::run(&args.options)?;
    print(&proof);
    super::write_out(args.out.as_deref(), &proof)
}

fn print(p: &Proof) {
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    println!(
        "{} A/A and {} injected experiments (noise {}); {} days ({} pre-period), {} sessions \
         on the first day, dynamics {}; ~{:.0} users per experiment",
        p.experiments,
        p.experiments,
        p.noise,
        p.days,
        p.pre_days,
        p.episodes_per_day,
        p.dynamics,
        p.users_per_experiment
    );
    let horizon = p.days - p.pre_days;
    for m in &p.metrics {
        println!("\n{}", m.metric);
        println!("  A/A false positives (target 3–7%):");
        println!(
            "    fixed horizon, CUPED            {}",
            pct(m.aa_false_positive_fixed)
        );
        println!(
            "    fixed horizon, no CUPED         {}",
            pct(m.aa_false_positive_fixed_without_cuped)
        );
        println!(
            "    naive daily peeking (Welch)     {}",
            pct(m.aa_false_positive_naive_daily_peeking)
        );
        println!(
            "    daily looks, --horizon {horizon}       {}",
            pct(m.aa_false_positive_sequential)
        );
        println!(
            "    daily looks, open-ended mSPRT   {} (at most 5% by construction)",
            pct(m.aa_false_positive_open_ended)
        );
        println!(
            "  injected effect: true {:+.3}% (pooled over the truth runs)",
            m.true_effect_percent
        );
        println!(
            "    95% interval covers it          {} (target 93–97%)",
            pct(m.coverage_fixed)
        );
        println!(
            "    same without CUPED              {}",
            pct(m.coverage_fixed_without_cuped)
        );
        println!(
            "    repeated interval covers it     {}",
            pct(m.coverage_sequential)
        );
        println!(
            "    detected: fixed {}, sequential {}",
            pct(m.power_fixed),
            pct(m.power_sequential)
        );
        println!(
            "  CUPED: interval width {:.3} of the unadjusted (variance reduction {})",
            m.cuped_width_ratio,
            pct(m.cuped_variance_reduction)
        );
    }
}
