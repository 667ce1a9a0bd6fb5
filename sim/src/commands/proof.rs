//! `sim proof`: the A/B engine's statistics checked against simulated ground
//! truth (see [`crate::proof`]); this file parses the flags and prints.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::proof::{self, BreakdownProof, Proof};

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
    print_breakdown(&p.breakdown);
}

fn print_breakdown(b: &BreakdownProof) {
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    println!(
        "\nsegments ({}; target: false positives 3–7%, coverage 93–97%)",
        b.metric
    );
    for s in &b.segments {
        println!(
            "  by {:<9} {:.1} segments: A/A any segment significant (BH) {}, heterogeneity {}; \
             coverage {}; injected heterogeneity found {}",
            s.by,
            s.segments,
            pct(s.aa_false_positive_any_segment),
            pct(s.aa_false_positive_heterogeneity),
            pct(s.coverage),
            pct(s.injected_heterogeneity_detected)
        );
    }
    if let Some(t) = &b.trend {
        println!(
            "trend test on the daily effects ({}): A/A false positives {}; true slope {:+.3}% \
             per day, covered {}, detected {}",
            b.metric,
            pct(t.aa_false_positive),
            t.true_slope_percent_per_day,
            pct(t.coverage),
            pct(t.detected)
        );
    }
    for q in &b.quantiles {
        println!(
            "{}: A/A false positives {}; true effect {:+.3}%, covered {}, detected {}",
            q.metric,
            pct(q.aa_false_positive),
            q.true_effect_percent,
            pct(q.coverage),
            pct(q.detected)
        );
    }
    let e = &b.exposure;
    println!(
        "exposure ({} on day {}; true effect per exposed listener {:+.3}%):",
        e.metric, e.day, e.true_effect_percent
    );
    println!(
        "  per exposed user: A/A {}, covered {}, mean estimate {:+.3}% (bias {:+.3} ± {:.3})",
        pct(e.exposure_aa_false_positive),
        pct(e.exposure_coverage),
        e.exposure_mean_estimate_percent,
        e.exposure_bias_percent,
        e.exposure_bias_standard_error
    );
    println!(
        "  per active user: A/A {}, covered {}, mean estimate {:+.3}% (bias {:+.3} ± {:.3})",
        pct(e.active_aa_false_positive),
        pct(e.active_coverage),
        e.active_mean_estimate_percent,
        e.active_bias_percent,
        e.active_bias_standard_error
    );
    println!(
        "  injected experiments failing SRM: on exposures {}, on the day's active users {}",
        pct(e.injected_srm_exposures),
        pct(e.injected_srm_active_users)
    );
}
