//! `sim ope-proof`: off-policy evaluation checked against simulated truth
//! (see [`crate::ope_proof`]); this file parses the flags and prints.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::ope_proof::verdict::{MAX_OUTSIDE_SUPPORT, SESSION_MIN_ESS};
use crate::ope_proof::{self, OpeProof};

/// Prove `analysis ope` on simulated truth: play one day of the same
/// listeners under each logging arm and each target arm, estimate every
/// target from every logging arm's log, and compare each estimate with the
/// target's own on-policy value. Prints every pair, then the bars: on
/// first_pick, SNIPS or DR within ±10% on ≥ 80% of the pairs with its 95%
/// interval covering the truth on ≥ 85%, and Kendall τ ≥ 0.8 between the
/// estimated and the true ranking of the targets from every logging arm; on
/// session, the error wherever ESS ≥ 1,000.
#[derive(Debug, Args)]
pub struct OpeProofArgs {
    #[command(flatten)]
    pub options: ope_proof::Options,
    /// Also write every pair and the verdict as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: OpeProofArgs) -> Result<()> {
    let proof = ope_proof::run(&args.options)?;
    print(&proof);
    super::write_out(args.out.as_deref(), &proof)
}

fn print(p: &OpeProof) {
    let pct = |v: f64| format!("{:+.1}%", v * 100.0);
    println!(
        "{} sessions per arm (listener seed {}); truth = each target served online on the same day",
        p.episodes, p.seed
    );
    println!("\ntruth (on-policy):");
    for t in &p.truths {
        println!(
            "  {:<72} first_pick {:.4}  session {:.4}",
            t.target, t.first_pick, t.session
        );
    }
    for reward in ["first_pick", "session"] {
        println!("\n{reward}:");
        println!(
            "  {:<40} {:<40} {:<6} {:>8} {:>8} {:>19} {:>8} {:>9} {:>7}",
            "logging",
            "target",
            "est.",
            "truth",
            "estimate",
            "95% interval",
            "error",
            "ess",
            "covers"
        );
        for q in p.pairs.iter().filter(|q| q.reward == reward) {
            println!(
                "  {:<40} {:<40} {:<6} {:>8.4} {:>8.4} [{:>8.4}, {:>8.4}] {:>8} {:>9.0} {:>7} {:>8}",
                short(&q.logging),
                short(&q.target),
                q.estimator,
                q.truth,
                q.estimate,
                q.lower,
                q.upper,
                pct(q.error),
                q.ess,
                if q.covered { "yes" } else { "no" },
                q.outside_support
                    .map_or("?".to_string(), |share| format!("{:.1}%", share * 100.0))
            );
        }
    }
    println!(
        "\nbars (first_pick: within ±10% on ≥ 80%, coverage ≥ 85%, Kendall τ ≥ 0.8 from each logging arm), \
         over the pairs within the logging arm's support; {} rows left out (more than {:.0}% of the target outside it):",
        p.verdict.unsupported,
        MAX_OUTSIDE_SUPPORT * 100.0
    );
    for r in &p.verdict.records {
        let taus: Vec<String> = r
            .kendall
            .iter()
            .map(|(l, t)| format!("{} {t:.2}", short(l)))
            .collect();
        println!(
            "  {:<6} within ±10% {:>5.1}%  coverage {:>5.1}%  τ: {}",
            r.estimator,
            r.within_10 * 100.0,
            r.coverage * 100.0,
            taus.join(", ")
        );
        println!(
            "         session (ESS ≥ {SESSION_MIN_ESS:.0}): {} pairs, mean |error| {:.1}%, within ±25% {:.1}%",
            r.session_pairs,
            r.session_mean_abs_error * 100.0,
            r.session_within_25 * 100.0
        );
    }
    match p.verdict.passes {
        Some(estimator) => println!("\nPASS: {estimator} meets every first_pick bar"),
        None => println!("\nFAIL: no estimator meets every first_pick bar"),
    }
}

/// An arm spec on one line of a table: inline tables lose their braces
/// and quotes.
fn short(spec: &str) -> String {
    spec.trim_matches(|c| c == '{' || c == '}' || c == ' ')
        .replace("recommender = ", "")
        .replace('"', "")
}
