//! One design's experiments, played through botify's engine into scratch
//! logs and analysed by `analysis`'s library as an analyst would.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use analysis::ab::correction::Correction;
use analysis::ab::extended::{self, MetricRow, MetricsAnalysis};
use analysis::ab::metrics::Metric;
use analysis::ab::segments::Segmentation;
use analysis::ab::sequential::DEFAULT_MIXING;
use analysis::ab::spending::SpendingFunction;
use analysis::logs::{self, ReadOptions};
use anyhow::{bail, Context as _, Result};
use indicatif::ProgressBar;
use tally::parallel::fan_out;
use tally::progress::{self, Unit};

use super::breakdown::{self, Extra};
use super::{Options, ScratchFolder};
use crate::dynamics::Dynamics;
use crate::runner::days::Days;
use crate::runner::in_process::{self, Policy};
use crate::runner::Plan;
use crate::world::{World, WorldData};

/// The world, indexed for the static model, and as records for
/// populations (each experiment's [`Days`] builds its own).
pub(super) struct Worlds {
    pub(super) world: World,
    pub(super) data: WorldData,
    /// The segmentations the breakdown proof analyses (genres from the world).
    pub(super) segmentations: Vec<Segmentation>,
}

/// What one experiment's analysis said about the tested metric.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    /// With CUPED when there is a pre-period.
    pub(super) row: MetricRow,
    /// Without CUPED.
    pub(super) plain: MetricRow,
    /// Some daily look's own Welch test was significant.
    pub(super) peeked: bool,
    /// The sequential test over the planned horizon rejected by the last day.
    pub(super) sequential: bool,
    /// Its repeated-interval bounds at the last look.
    pub(super) sequential_bounds: (f64, f64),
    /// The open-ended mixture SPRT rejected by the last day.
    pub(super) open_ended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Design {
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

/// Plays and analyses experiments `indices` of one design on `--threads`
/// threads: per experiment, one outcome per tested metric and the
/// breakdowns' (with each arm's session times for `truth` runs).
pub(super) fn run_batch(
    options: &Options,
    tested: &[&'static Metric],
    world: &Worlds,
    scratch: &Path,
    design: Design,
    indices: std::ops::Range<usize>,
    label: &str,
) -> Result<Vec<(Vec<Outcome>, Extra)>> {
    let bar = progress::bar(
        Unit::Sessions,
        indices.len() as u64,
        format!("{label} experiments"),
    );
    let next = AtomicUsize::new(indices.start);
    let outcomes = Mutex::new(Vec::with_capacity(indices.len()));
    fan_out(0..options.threads.max(1), |_| -> Result<()> {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= indices.end {
                return Ok(());
            }
            let truth = label == "truth";
            let outcome = experiment(options, tested, world, scratch, design, i, truth)
                .with_context(|| format!("{} experiment {i}", design.name()))?;
            outcomes
                .lock()
                .expect("no panics while held")
                .push((i, outcome));
            bar.inc(1);
        }
    })
    .into_iter()
    .collect::<Result<()>>()?;
    bar.finish_and_clear();
    let mut outcomes = outcomes.into_inner().expect("workers joined");
    outcomes.sort_by_key(|(i, _)| *i);
    Ok(outcomes.into_iter().map(|(_, o)| o).collect())
}

/// One experiment: play its days through botify into a scratch log, analyse.
fn experiment(
    options: &Options,
    tested: &[&'static Metric],
    world: &Worlds,
    scratch: &Path,
    design: Design,
    index: usize,
    truth: bool,
) -> Result<(Vec<Outcome>, Extra)> {
    let name = format!("PROOF-{}-{index}", design.name());
    let dir = ScratchFolder::create(scratch.join(&name))?;
    let control = format!("{:?}", options.recommender);
    let treatment = match design {
        Design::Aa => control.clone(),
        Design::Injected => format!(
            "{{ recommender = {:?}, noise = {} }}",
            options.recommender, options.noise
        ),
    };
    let mut config = botify::config::Config::for_catalog(options.world.join("tracks.jsonl"));
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
    let seed = options.seed + index as u64;
    let mut population = match options.dynamics {
        Dynamics::None => None,
        Dynamics::Full => Some(Days::new(
            world.data.clone(),
            Dynamics::Full,
            seed,
            options.episodes,
            Some(0),
        )?),
    };
    for day in 0..options.days {
        let engine = if day < options.pre_days {
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
                Plan::day(seed, day, options.episodes),
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
    analyse(options, tested, world, &dir, &name, truth)
}

/// Each tested metric's outcome of one experiment's logs.
fn analyse(
    proof: &Options,
    tested: &[&'static Metric],
    world: &Worlds,
    dir: &Path,
    name: &str,
    truth: bool,
) -> Result<(Vec<Outcome>, Extra)> {
    let paths = logs::resolve(&[dir.display().to_string()])?;
    let reading = ReadOptions {
        experiment: Some(name.to_string()),
        threads: 1,
        ..ReadOptions::default()
    };
    let read = logs::read(&paths, &reading)?;
    let days = read.days;
    let analysis = analysis::ab::analyze(read.records, name, Some(2), 0)?;
    // The analyst plans the experiment's days and looks at each of them.
    let options = extended::Options {
        metrics: tested.to_vec(),
        correction: Correction::None,
        start: Some(proof.pre_days as u32 + 1),
        sequential: Some(extended::Design::Spending {
            horizon: (proof.days - proof.pre_days) as u32,
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
    let extra = breakdown::observe(
        proof,
        tested[0],
        &world.segmentations,
        &analysis,
        &days,
        truth,
    )?;
    let outcomes = tested
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
                sequential_bounds: (sequential.estimate.lower, sequential.estimate.upper),
                open_ended: last(&open_ended).is_some_and(|l| l.significant),
            })
        })
        .collect::<Result<Vec<Outcome>>>()?;
    Ok((outcomes, extra))
}
