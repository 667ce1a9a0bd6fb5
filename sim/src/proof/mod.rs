//! The A/B engine's statistics checked against simulated ground truth,
//! in-process, as `sim proof` runs them (docs/analysis.md#proof-on-simulated-ground-truth).
//!
//! Many small experiments are played through botify's own engine and event
//! log and analysed by `analysis`'s library, as an analyst would:
//! - **A/A**: both arms serve the same recommender, so every significant
//!   result is a false positive. The rate must be near α at the fixed horizon
//!   and at most α with daily looks under the sequential test; the rate of
//!   naive daily peeking (a Welch test every day) is shown beside it.
//! - **Injected effect**: the treatment replaces its answer with a random
//!   track with probability `--noise` (botify's `noise` arm parameter). The
//!   true effect is measured on `--truth-runs` more experiments of the same
//!   design pooled together; the share of 95% intervals covering it must be
//!   near 95%.
//! - **CUPED**: with `--pre-days`, the experiment starts after them (both
//!   arms serve the control until then, as before a real launch) and each
//!   analysis is done with and without the pre-period adjustment; the ratio
//!   of interval widths is CUPED's gain on these logs. It needs listeners who
//!   come back: the default `--dynamics full` plays a population that lives
//!   for days, and a world of about as many listeners as `--episodes`
//!   × 2.5 (`sim world --users 2000` for the default 800) makes most of
//!   them come back within the week.
//!
//! Every rate is reported per metric of `--metrics`, all read off the same
//! experiments; `breakdown.rs` proves segments, the trend test, quantiles
//! and the exposure design on them too.
//!
//! Experiment `i` plays sessions from seed `--seed + i` and splits users by
//! the experiment name `PROOF-<kind>-<i>`, so experiments are independent and
//! the whole proof reproducible. Days play `--episodes` fresh sessions each
//! (`Plan::day`), whatever the simulator's population model is.

mod breakdown;
mod experiment;

use std::path::{Path, PathBuf};

use analysis::ab::metrics::{self, Metric};
use anyhow::{bail, Context as _, Result};
use clap::Args;
use serde::Serialize;

use crate::dynamics::Dynamics;
use crate::world::{load_world_data, World};
pub use breakdown::BreakdownProof;
use experiment::{run_batch, Design, Outcome, Worlds};

/// What a proof plays: its experiments' design, size and seeds.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// World directory written by `sim world`.
    #[arg(long, default_value = "data/world")]
    pub world: PathBuf,
    /// A/A experiments, and as many injected-effect experiments.
    #[arg(long, default_value_t = 1000)]
    pub experiments: usize,
    /// Days per experiment (pre-period included).
    #[arg(long, default_value_t = 8)]
    pub days: u64,
    /// Leading days that form the pre-period (CUPED); the experiment is the rest.
    #[arg(long, default_value_t = 2)]
    pub pre_days: u64,
    /// Sessions per day per experiment (with `--dynamics full`, the first
    /// day's: the population's own visits decide the rest).
    #[arg(long, default_value_t = 800)]
    pub episodes: u64,
    /// The recommender both arms serve.
    #[arg(long, default_value = "sticky_artist")]
    pub recommender: String,
    /// Share of the treatment's answers replaced by a random track.
    #[arg(long, default_value_t = 0.1)]
    pub noise: f64,
    /// Experiments of the injected design, pooled to measure the true effect.
    #[arg(long, default_value_t = 200)]
    pub truth_runs: usize,
    /// The metrics tested, comma-separated (see `analysis ab --help`): each
    /// gets its own rates from the same experiments.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "mean_time_per_session,time,active_days"
    )]
    pub metrics: String,
    /// First session seed; experiment i uses seed + i.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Experiments played at once.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Folder for the experiments' temporary logs (each deleted once analysed).
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// The listener model: `full` (the population that lives for days: the
    /// same listeners come back, which is what gives CUPED a pre-period to
    /// learn from; no releases, so every experiment serves the same catalog)
    /// or `none` (each day fresh, independent sessions).
    #[arg(long, value_enum, default_value_t = Dynamics::Full)]
    pub dynamics: Dynamics,
}

/// The summary (also the `--out` JSON).
#[derive(Debug, Serialize)]
pub struct Proof {
    pub experiments: usize,
    pub days: u64,
    pub pre_days: u64,
    pub episodes_per_day: u64,
    pub dynamics: String,
    pub noise: f64,
    pub users_per_experiment: f64,
    pub metrics: Vec<MetricProof>,
    /// Segments, trend, quantiles and exposure, on the first tested metric.
    pub breakdown: BreakdownProof,
}

/// What the experiments showed on one metric.
#[derive(Debug, Serialize)]
pub struct MetricProof {
    pub metric: String,
    pub aa_false_positive_fixed: f64,
    pub aa_false_positive_fixed_without_cuped: f64,
    pub aa_false_positive_naive_daily_peeking: f64,
    pub aa_false_positive_sequential: f64,
    pub aa_false_positive_open_ended: f64,
    pub true_effect_percent: f64,
    pub coverage_fixed: f64,
    pub coverage_fixed_without_cuped: f64,
    pub coverage_sequential: f64,
    pub power_fixed: f64,
    pub power_sequential: f64,
    pub cuped_width_ratio: f64,
    pub cuped_variance_reduction: f64,
}

/// Plays every experiment `options` asks for on its world and
/// summarises them per tested metric; logs go to a scratch folder that is
/// removed afterwards.
pub fn run(options: &Options) -> Result<Proof> {
    let tested =
        metrics::parse_list(&options.metrics).map_err(|e| anyhow::anyhow!("--metrics: {e}"))?;
    if options.pre_days >= options.days {
        bail!(
            "--pre-days {} leaves no experiment day of --days {}",
            options.pre_days,
            options.days
        );
    }
    if !(0.0..=1.0).contains(&options.noise) {
        bail!("--noise must be a share in 0..=1, got {}", options.noise);
    }
    if options.experiments == 0 || options.episodes == 0 {
        bail!("--experiments and --episodes must be at least 1");
    }
    let data = load_world_data(&options.world)?;
    let world = World::new(data.clone())?;
    let world = Worlds {
        world,
        data,
        segmentations: breakdown::segmentations(options)?,
    };
    let scratch = ScratchFolder::create(
        options
            .scratch
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("sim-proof-{}", std::process::id())),
    )?;
    prove(options, &tested, &world, &scratch)
}

/// A folder of logs that are only read back within the proof: removed, with
/// everything in it, when dropped, however the work in it ended.
struct ScratchFolder(PathBuf);

impl ScratchFolder {
    fn create(path: PathBuf) -> Result<ScratchFolder> {
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create scratch folder {}", path.display()))?;
        Ok(ScratchFolder(path))
    }
}

impl std::ops::Deref for ScratchFolder {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn prove(
    options: &Options,
    tested: &[&'static Metric],
    world: &Worlds,
    scratch: &Path,
) -> Result<Proof> {
    let n = options.experiments;
    let batch =
        |design, indices, label| run_batch(options, tested, world, scratch, design, indices, label);
    let truth = batch(Design::Injected, n..n + options.truth_runs, "truth")?;
    let aa = batch(Design::Aa, 0..n, "A/A")?;
    let injected = batch(Design::Injected, 0..n, "injected")?;
    let metrics = tested
        .iter()
        .enumerate()
        .map(|(m, metric)| {
            let of = |batch: &[(Vec<Outcome>, breakdown::Extra)]| -> Vec<Outcome> {
                batch.iter().map(|(o, _)| o[m].clone()).collect()
            };
            summarise(metric.name, &of(&truth), &of(&aa), &of(&injected))
        })
        .collect();
    let extras = |batch: &[(Vec<Outcome>, breakdown::Extra)]| -> Vec<breakdown::Extra> {
        batch.iter().map(|(_, e)| e.clone()).collect()
    };
    let breakdown = breakdown::summarise(
        options,
        tested[0].name,
        &extras(&truth),
        &extras(&aa),
        &extras(&injected),
    );
    let users: Vec<f64> = aa
        .iter()
        .chain(&injected)
        .map(|(o, _)| (o[0].row.control_users + o[0].row.treatment_users) as f64)
        .collect();
    Ok(Proof {
        experiments: n,
        days: options.days,
        pre_days: options.pre_days,
        episodes_per_day: options.episodes,
        dynamics: format!("{:?}", options.dynamics).to_lowercase(),
        noise: options.noise,
        users_per_experiment: users.iter().sum::<f64>() / users.len() as f64,
        metrics,
        breakdown,
    })
}

/// One metric's rates: the true effect pooled over `truth`, false positives
/// over `aa`, coverage and power over `injected`.
fn summarise(metric: &str, truth: &[Outcome], aa: &[Outcome], injected: &[Outcome]) -> MetricProof {
    let (mut sum_c, mut sum_t, mut users_c, mut users_t) = (0.0, 0.0, 0.0, 0.0);
    for o in truth {
        let (c, t) = (o.plain.control_users as f64, o.plain.treatment_users as f64);
        sum_c += o.plain.estimate.control_mean * c;
        sum_t += o.plain.estimate.treatment_mean * t;
        users_c += c;
        users_t += t;
    }
    let true_effect = ((sum_t / users_t) / (sum_c / users_c) - 1.0) * 100.0;
    let share = |outcomes: &[Outcome], f: &dyn Fn(&Outcome) -> bool| {
        outcomes.iter().filter(|o| f(o)).count() as f64 / outcomes.len() as f64
    };
    let covers = |lo: f64, hi: f64| lo <= true_effect && true_effect <= hi;
    let mean = |f: &dyn Fn(&Outcome) -> f64| {
        let values: Vec<f64> = aa
            .iter()
            .chain(injected)
            .map(f)
            .filter(|v| v.is_finite())
            .collect();
        values.iter().sum::<f64>() / values.len() as f64
    };
    MetricProof {
        metric: metric.to_string(),
        aa_false_positive_fixed: share(aa, &|o| o.row.significant),
        aa_false_positive_fixed_without_cuped: share(aa, &|o| o.plain.significant),
        aa_false_positive_naive_daily_peeking: share(aa, &|o| o.peeked),
        aa_false_positive_sequential: share(aa, &|o| o.sequential),
        aa_false_positive_open_ended: share(aa, &|o| o.open_ended),
        true_effect_percent: true_effect,
        coverage_fixed: share(injected, &|o| {
            covers(o.row.estimate.lower, o.row.estimate.upper)
        }),
        coverage_fixed_without_cuped: share(injected, &|o| {
            covers(o.plain.estimate.lower, o.plain.estimate.upper)
        }),
        coverage_sequential: share(injected, &|o| {
            covers(o.sequential_bounds.0, o.sequential_bounds.1)
        }),
        power_fixed: share(injected, &|o| o.row.significant),
        power_sequential: share(injected, &|o| o.sequential),
        cuped_width_ratio: mean(&|o| {
            (o.row.estimate.upper - o.row.estimate.lower)
                / (o.plain.estimate.upper - o.plain.estimate.lower)
        }),
        cuped_variance_reduction: mean(&|o| o.row.variance_reduction.unwrap_or(0.0)),
    }
}
