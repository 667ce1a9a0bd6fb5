//! `sim proof`: the A/B engine's statistics checked against simulated ground
//! truth, in-process (docs/analysis.md#proof-on-simulated-ground-truth).
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
//! experiments.
//!
//! Experiment `i` plays sessions from seed `--seed + i` and splits users by
//! the experiment name `PROOF-<kind>-<i>`, so experiments are independent and
//! the whole proof reproducible. Days play `--episodes` fresh sessions each
//! (`Plan::day`), whatever the simulator's population model is.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use analysis::ab::correction::Correction;
use analysis::ab::extended::{self, MetricRow, MetricsAnalysis};
use analysis::ab::metrics::{self, Metric};
use analysis::ab::sequential::DEFAULT_MIXING;
use analysis::ab::spending::SpendingFunction;
use analysis::logs::{self, ReadOptions};
use analysis::progress::{self, Unit};
use anyhow::{bail, Context as _, Result};
use clap::Args;
use indicatif::ProgressBar;
use serde::Serialize;

use super::run::load_world_data;
use crate::dynamics::Dynamics;
use crate::runner::days::Days;
use crate::runner::in_process::{self, Policy};
use crate::runner::Plan;
use crate::world::{World, WorldData};

/// Prove the A/B analysis on simulated ground truth: false-positive rates of
/// A/A experiments (fixed horizon and daily sequential looks), coverage of a
/// known injected effect by the 95% interval, and CUPED's narrowing of the
/// intervals, all from experiments played in-process through botify.
#[derive(Debug, Args)]
pub struct ProofArgs {
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
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// The world, indexed for the static model, and as records for
/// populations (each experiment's [`Days`] builds its own).
struct Worlds {
    world: World,
    data: WorldData,
}

/// What one experiment's analysis said about the tested metric.
#[derive(Debug, Clone)]
struct Outcome {
    /// With CUPED when there is a pre-period.
    row: MetricRow,
    /// Without CUPED.
    plain: MetricRow,
    /// Some daily look's own Welch test was significant.
    peeked: bool,
    /// The sequential test over the planned horizon rejected by the last day.
    sequential: bool,
    /// Its repeated-interval bounds at the last look.
    sequential_bounds: (f64, f64),
    /// The open-ended mixture SPRT rejected by the last day.
    open_ended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Design {
    Aa,
    Injected,
}

impl Design {
    fn name(self) -> &'static str {
        match self {
            Design::Aa => "AA",
            Design::Injected => "NOISE",
        }
    }
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

pub fn run(args: ProofArgs) -> Result<()> {
    let tested =
        metrics::parse_list(&args.metrics).map_err(|e| anyhow::anyhow!("--metrics: {e}"))?;
    if args.pre_days >= args.days {
        bail!(
            "--pre-days {} leaves no experiment day of --days {}",
            args.pre_days,
            args.days
        );
    }
    if !(0.0..=1.0).contains(&args.noise) {
        bail!("--noise must be a share in 0..=1, got {}", args.noise);
    }
    if args.experiments == 0 || args.episodes == 0 {
        bail!("--experiments and --episodes must be at least 1");
    }
    let data = load_world_data(&args.world)?;
    let world = World::new(data.clone())?;
    let world = Worlds { world, data };
    let scratch = args
        .scratch
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("sim-proof-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create scratch folder {}", scratch.display()))?;
    let result = prove(&args, &tested, &world, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let proof = result?;
    print(&proof);
    if let Some(path) = &args.out {
        let json = serde_json::to_string_pretty(&proof)? + "\n";
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn prove(
    args: &ProofArgs,
    tested: &[&'static Metric],
    world: &Worlds,
    scratch: &Path,
) -> Result<Proof> {
    let n = args.experiments;
    let batch =
        |design, indices, label| run_batch(args, tested, world, scratch, design, indices, label);
    let truth = batch(Design::Injected, n..n + args.truth_runs, "truth")?;
    let aa = batch(Design::Aa, 0..n, "A/A")?;
    let injected = batch(Design::Injected, 0..n, "injected")?;
    let metrics = tested
        .iter()
        .enumerate()
        .map(|(m, metric)| {
            let of = |batch: &[Vec<Outcome>]| -> Vec<Outcome> {
                batch.iter().map(|o| o[m].clone()).collect()
            };
            summarise(metric.name, &of(&truth), &of(&aa), &of(&injected))
        })
        .collect();
    let users: Vec<f64> = aa
        .iter()
        .chain(&injected)
        .map(|o| (o[0].row.control_users + o[0].row.treatment_users) as f64)
        .collect();
    Ok(Proof {
        experiments: n,
        days: args.days,
        pre_days: args.pre_days,
        episodes_per_day: args.episodes,
        dynamics: format!("{:?}", args.dynamics).to_lowercase(),
        noise: args.noise,
        users_per_experiment: users.iter().sum::<f64>() / users.len() as f64,
        metrics,
    })
}

/// One metric's rates: the true effect pooled over `truth`, false positives
/// over `aa`, coverage and power over `injected`.
fn summarise(metric: &str, truth: &[Outcome], aa: &[Outcome], injected: &[Outcome]) -> MetricProof {
    let (mut sum_c, mut sum_t, mut users_c, mut users_t) = (0.0, 0.0, 0.0, 0.0);
    for o in truth {
        let (c, t) = (o.plain.control_users as f64, o.plain.treatment_users as f64);
        sum_c += o.plain.control_mean * c;
        sum_t += o.plain.treatment_mean * t;
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
        coverage_fixed: share(injected, &|o| covers(o.row.lower, o.row.upper)),
        coverage_fixed_without_cuped: share(injected, &|o| covers(o.plain.lower, o.plain.upper)),
        coverage_sequential: share(injected, &|o| {
            covers(o.sequential_bounds.0, o.sequential_bounds.1)
        }),
        power_fixed: share(injected, &|o| o.row.significant),
        power_sequential: share(injected, &|o| o.sequential),
        cuped_width_ratio: mean(&|o| (o.row.upper - o.row.lower) / (o.plain.upper - o.plain.lower)),
        cuped_variance_reduction: mean(&|o| o.row.variance_reduction.unwrap_or(0.0)),
    }
}

/// Plays and analyses experiments `indices` of one design on `--threads`
/// threads: per experiment, one outcome per tested metric.
fn run_batch(
    args: &ProofArgs,
    tested: &[&'static Metric],
    world: &Worlds,
    scratch: &Path,
    design: Design,
    indices: std::ops::Range<usize>,
    label: &str,
) -> Result<Vec<Vec<Outcome>>> {
    let bar = progress::bar(
        Unit::Sessions,
        indices.len() as u64,
        format!("{label} experiments"),
    );
    let next = AtomicUsize::new(indices.start);
    let outcomes = Mutex::new(Vec::with_capacity(indices.len()));
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..args.threads.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= indices.end {
                            return Ok(());
                        }
                        let outcome = experiment(args, tested, world, scratch, design, i)
                            .with_context(|| format!("{} experiment {i}", design.name()))?;
                        outcomes
                            .lock()
                            .expect("no panics while held")
                            .push((i, outcome));
                        bar.inc(1);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let mut outcomes = outcomes.into_inner().expect("workers joined");
    outcomes.sort_by_key(|(i, _)| *i);
    Ok(outcomes.into_iter().map(|(_, o)| o).collect())
}

/// One experiment: play its days through botify into a scratch log, analyse.
fn experiment(
    args: &ProofArgs,
    tested: &[&'static Metric],
    world: &Worlds,
    scratch: &Path,
    design: Design,
    index: usize,
) -> Result<Vec<Outcome>> {
    let name = format!("PROOF-{}-{index}", design.name());
    let dir = scratch.join(&name);
    std::fs::create_dir_all(&dir)?;
    let control = format!("{:?}", args.recommender);
    let treatment = match design {
        Design::Aa => control.clone(),
        Design::Injected => format!(
            "{{ recommender = {:?}, noise = {} }}",
            args.recommender, args.noise
        ),
    };
    let mut config = botify::config::Config::for_catalog(args.world.join("tracks.jsonl"));
    config.models = dir.join("no-models");
    config.redis_url = None;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The experiment splits users from day one, but its treatment starts
    // after the pre-period: before it both arms serve the control, so a
    // user's pre-period says nothing about their arm (as CUPED assumes) and
    // adjusting cannot remove part of the effect.
    let engine_serving = |arms: &str, file: &str| -> Result<botify::engine::Engine> {
        let experiments = dir.join(file);
        let toml = format!(
            "active = {name:?}\n[[experiment]]\nname = {name:?}\narms = [{control}, {arms}]\n"
        );
        std::fs::write(&experiments, toml)?;
        let config = botify::config::Config {
            experiments,
            ..config.clone()
        };
        runtime.block_on(async { botify::app::build_engine(&config, None) })
    };
    let pre_period = engine_serving(&control, "pre-period.toml")?;
    // A/A serves the control throughout: one engine for all days.
    let treated;
    let experiment = if treatment == control {
        &pre_period
    } else {
        treated = engine_serving(&treatment, "experiment.toml")?;
        &treated
    };
    let seed = args.seed + index as u64;
    let mut population = match args.dynamics {
        Dynamics::None => None,
        Dynamics::Full => Some(Days::new(
            world.data.clone(),
            Dynamics::Full,
            seed,
            args.episodes,
            Some(0),
        )?),
    };
    for day in 0..args.days {
        let engine = if day < args.pre_days {
            &pre_period
        } else {
            experiment
        };
        let log_dir = dir.join(format!("day-{}", day + 1));
        let log = botify::events::EventLog::open(&log_dir, config.log_max_bytes)
            .with_context(|| format!("cannot open event log folder {}", log_dir.display()))?;
        engine.set_event_log(Some(log.sender()));
        let played = match &mut population {
            None => in_process::run(
                &world.world,
                Plan::day(seed, day, args.episodes),
                &mut Policy::Engine(engine, &runtime),
                &ProgressBar::hidden(),
            )
            .map(|_| ()),
            Some(days) => {
                let (work, _) = days.plan(day, days.static_plan(day));
                in_process::play_day(
                    days.world(),
                    work,
                    &mut Policy::Engine(engine, &runtime),
                    &ProgressBar::hidden(),
                )
                .map(|(_, outcomes)| days.settle(day, outcomes))
            }
        };
        engine.set_event_log(None);
        log.close();
        played?;
    }
    let outcome = analyse(args, tested, &dir, &name);
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// Each tested metric's outcome of one experiment's logs.
fn analyse(
    args: &ProofArgs,
    tested: &[&'static Metric],
    dir: &Path,
    name: &str,
) -> Result<Vec<Outcome>> {
    let paths = logs::resolve(&[dir.display().to_string()])?;
    let options = ReadOptions {
        experiment: Some(name.to_string()),
        threads: 1,
        ..ReadOptions::default()
    };
    let read = logs::read(&paths, &options)?;
    let days = read.days;
    let analysis = analysis::ab::analyze(read.records, name, Some(2), 0)?;
    // The analyst plans the experiment's days and looks at each of them.
    let options = extended::Options {
        metrics: tested.to_vec(),
        correction: Correction::None,
        start: Some(args.pre_days as u32 + 1),
        sequential: Some(extended::Design::Spending {
            horizon: (args.days - args.pre_days) as u32,
            function: SpendingFunction::OBrienFleming,
        }),
        ..extended::Options::default()
    };
    let run = |options: &extended::Options| -> Result<MetricsAnalysis> {
        extended::analyze(
            &analysis.records,
            &analysis.sessions,
            &days,
            None,
            2,
            0,
            options,
        )
    };
    let with = run(&options)?;
    let plain = run(&extended::Options {
        cuped: false,
        sequential: None,
        ..options.clone()
    })?;
    let open_ended = run(&extended::Options {
        sequential: Some(extended::Design::Mixture {
            mixing: DEFAULT_MIXING,
        }),
        ..options.clone()
    })?;
    tested
        .iter()
        .map(|metric| {
            let of = |e: &MetricsAnalysis| e.rows.iter().find(|r| r.metric == metric.name).cloned();
            let last = |e: &MetricsAnalysis| {
                e.looks
                    .iter()
                    .rev()
                    .find(|l| l.metric == metric.name)
                    .cloned()
            };
            let (Some(row), Some(plain)) = (of(&with), of(&plain)) else {
                bail!("an arm has no users on {}: raise --episodes", metric.name);
            };
            let looks = || with.looks.iter().filter(|l| l.metric == metric.name);
            let sequential = last(&with).context("no daily look")?;
            Ok(Outcome {
                row,
                plain,
                peeked: looks().any(|l| l.fixed_p_value < 0.05),
                sequential: sequential.significant,
                sequential_bounds: (sequential.lower, sequential.upper),
                open_ended: last(&open_ended).is_some_and(|l| l.significant),
            })
        })
        .collect()
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
