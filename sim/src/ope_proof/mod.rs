//! `sim ope-proof`: `analysis ope` checked against simulated truth.
//!
//! Off-policy evaluation claims to tell, from one arm's logs, what another
//! arm would earn. In the simulator that claim can be checked: play one day
//! of the same listeners under each logging arm and under each target arm
//! (the same world, population and seed, so only the arm differs), estimate
//! every target from every logging arm's log, and compare each estimate with
//! the target's own on-policy value on its own day — the **truth**.
//!
//! The models every arm serves are trained first on a day of `random`
//! traffic from other listeners (a different seed), so no arm learns from
//! the day it is judged on. Everything is kept under `--work` for a look
//! with `analysis ope --report`.

pub mod verdict;

use std::path::{Path, PathBuf};

use analysis::commands::ope::{self, OpeRow};
use analysis::commands::{train, Input, Serving};
use analysis::ope::Arm;
use anyhow::{bail, Context as _, Result};
use clap::Args;
use serde::Serialize;

use crate::dynamics::Dynamics;
use crate::runner::days::Days;
use crate::runner::in_process;
use crate::world::{load_world_data, WorldData, TRACKS_FILE};
use verdict::{Pair, Truth, Verdict};

/// The logging arms of the default proof: each learned recommender with
/// an exploration floor (`epsilon` at its default), as an arm in
/// production would explore around what it serves.
pub const DEFAULT_LOGGING: [&str; 3] = [
    r#"{ recommender = "memory", policy = "epsilon" }"#,
    r#"{ recommender = "session_knn", policy = "epsilon" }"#,
    r#"{ recommender = "embedding", policy = "epsilon" }"#,
];

/// The serving policies a logging arm's family of targets puts on its
/// recommender, by default: greedy, and four that explore more than the
/// logging arm does, so the targets' values spread apart.
pub const FAMILY: [&str; 5] = [
    "",
    r#"policy = "epsilon", epsilon = 0.3"#,
    r#"policy = "epsilon", epsilon = 0.6"#,
    r#"policy = "softmax", temperature = 0.3"#,
    r#"policy = "softmax", temperature = 1.0"#,
];

/// The targets of `recommender`'s family.
pub fn family(recommender: &str) -> Vec<String> {
    FAMILY
        .iter()
        .map(|policy| match *policy {
            "" => recommender.to_string(),
            policy => format!("{{ recommender = {recommender:?}, {policy} }}"),
        })
        .collect()
}

/// What the proof plays and estimates.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// World directory written by `sim world`.
    #[arg(long, default_value = "data/world")]
    pub world: PathBuf,
    /// Folder for the models, the experiments files and every arm's log
    /// (kept, to look at with `analysis ope --report`).
    #[arg(long, default_value = "data/ope-proof")]
    pub work: PathBuf,
    /// Sessions of the judged day, under each arm.
    #[arg(long, default_value_t = 20_000)]
    pub episodes: u64,
    /// Sessions of `random` traffic the models are trained on.
    #[arg(long, default_value_t = 50_000)]
    pub train_episodes: u64,
    /// Trained models to serve instead of training them on `random` traffic.
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// A logging arm (repeatable): a recommender name or an inline TOML
    /// table as in an experiments file [default: memory, session_knn and
    /// embedding, each with policy = "epsilon"].
    #[arg(long = "logging", value_name = "ARM")]
    pub logging: Vec<String>,
    /// A target arm (repeatable), estimated from every logging arm
    /// [default: each logging arm's own family: its recommender greedy,
    /// with epsilon 0.3 and 0.6, and with softmax at temperatures 0.3 and
    /// 1.0].
    #[arg(long = "target", value_name = "ARM")]
    pub targets: Vec<String>,
    /// Seed of the judged day's listeners (the training day's is seed + 1).
    #[arg(long, default_value_t = 31337)]
    pub seed: u64,
    /// The listener model (see `sim run --help`). `none` by default:
    /// under `full` an arm also changes the listener for their later
    /// sessions of the day (boredom, tastes drifting toward what they
    /// liked), which no log shows, so even `first_pick` is no longer a
    /// contextual bandit (docs/ope.md, "Proof on simulated truth").
    #[arg(long, value_enum, default_value_t = Dynamics::None)]
    pub dynamics: Dynamics,
    /// `analysis ope`'s weight cap.
    #[arg(long, default_value_t = ope::Options::default().clip, value_name = "W")]
    pub clip: f64,
}

impl Default for Options {
    /// The defaults `sim ope-proof --help` shows.
    fn default() -> Options {
        Options {
            world: PathBuf::from("data/world"),
            work: PathBuf::from("data/ope-proof"),
            episodes: 20_000,
            train_episodes: 50_000,
            models: None,
            logging: Vec::new(),
            targets: Vec::new(),
            seed: 31337,
            dynamics: Dynamics::None,
            clip: ope::Options::default().clip,
        }
    }
}

impl Options {
    fn logging_arms(&self) -> Vec<String> {
        if self.logging.is_empty() {
            DEFAULT_LOGGING.iter().map(|s| s.to_string()).collect()
        } else {
            self.logging.clone()
        }
    }

    /// The targets estimated from `logging`.
    fn targets_of(&self, logging: &Arm) -> Vec<String> {
        if self.targets.is_empty() {
            family(logging.recommender())
        } else {
            self.targets.clone()
        }
    }
}

/// The proof's result (also `--out`'s JSON).
#[derive(Debug, Serialize)]
pub struct OpeProof {
    pub episodes: u64,
    pub seed: u64,
    /// Each target's on-policy value on its own day.
    pub truths: Vec<Truth>,
    /// Every (logging, target, reward, estimator) estimate with its truth.
    pub pairs: Vec<Pair>,
    /// The bars, each with its measured value.
    pub verdict: Verdict,
}

/// Plays every arm's day, estimates every target from every logging arm's
/// log, and compares.
pub fn run(options: &Options) -> Result<OpeProof> {
    if options.episodes == 0 || options.train_episodes == 0 {
        bail!("--episodes and --train-episodes must be at least 1");
    }
    let logging = options.logging_arms();
    // Refuse a mistyped arm before a day is played.
    let mut plan: Vec<(String, Vec<String>)> = Vec::with_capacity(logging.len());
    for arm in &logging {
        let targets = options.targets_of(&Arm::parse(arm)?);
        for target in &targets {
            Arm::parse(target)?;
        }
        plan.push((arm.clone(), targets));
    }
    let data = load_world_data(&options.world)?;
    let catalog = options.world.join(TRACKS_FILE);
    std::fs::create_dir_all(&options.work)
        .with_context(|| format!("cannot create --work {}", options.work.display()))?;
    let models = match &options.models {
        Some(models) => models.clone(),
        None => train_on_random(options, &data, &catalog)?,
    };
    let serving = Serving {
        models,
        catalog: catalog.clone(),
    };

    // Each distinct arm plays the judged day once.
    let mut arms: Vec<&String> = Vec::new();
    for (logged, targets) in &plan {
        for arm in std::iter::once(logged).chain(targets) {
            if !arms.contains(&arm) {
                arms.push(arm);
            }
        }
    }
    let mut days = Vec::with_capacity(arms.len());
    for (i, arm) in arms.iter().enumerate() {
        let dir = options.work.join(format!("arm-{i}"));
        let day = ServedDay::play(options, &data, &catalog, &serving.models, arm, &dir)?;
        days.push(day);
    }
    let day_of = |arm: &String| &days[arms.iter().position(|a| *a == arm).unwrap_or(0)];

    let mut truths: Vec<Truth> = Vec::new();
    for target in plan.iter().flat_map(|(_, targets)| targets) {
        if truths.iter().all(|t| &t.target != target) {
            let own = estimate(
                options,
                &serving,
                day_of(target),
                std::slice::from_ref(target),
            )?;
            truths.push(Truth::of(target, &own));
        }
    }
    let mut pairs = Vec::new();
    for (logged, targets) in &plan {
        eprintln!(
            "estimating {} targets from the log of {logged}",
            targets.len()
        );
        let rows = estimate(options, &serving, day_of(logged), targets)?;
        pairs.extend(verdict::pairs(logged, &rows, &truths));
    }
    let verdict = Verdict::of(&pairs, &logging);
    Ok(OpeProof {
        episodes: options.episodes,
        seed: options.seed,
        truths,
        pairs,
        verdict,
    })
}

/// `analysis ope` of `targets` on one arm's log.
fn estimate(
    options: &Options,
    serving: &Serving,
    day: &ServedDay,
    targets: &[String],
) -> Result<Vec<OpeRow>> {
    let result = ope::run(&ope::Options {
        input: Input::new([day.log.display()]),
        serving: serving.clone(),
        target: targets.to_vec(),
        config: Some(day.experiments.clone()),
        clip: options.clip,
        ..ope::Options::default()
    })
    .with_context(|| format!("analysis ope on {}", day.log.display()))?;
    Ok(result.rows)
}

/// The models every arm serves: trained on a day of `random` traffic from
/// listeners of another seed.
fn train_on_random(options: &Options, data: &WorldData, catalog: &Path) -> Result<PathBuf> {
    let dir = options.work.join("training");
    let empty = options.work.join("no-models");
    std::fs::create_dir_all(&empty)?;
    let day = ServedDay::play(
        &Options {
            episodes: options.train_episodes,
            seed: options.seed + 1,
            ..options.clone()
        },
        data,
        catalog,
        &empty,
        "random",
        &dir,
    )?;
    let out = options.work.join("models");
    let trained = train::run(&train::Options {
        input: Input::new([day.log.display()]),
        out: out.clone(),
        catalog: catalog.to_path_buf(),
        ..train::Options::default()
    })
    .context("training the models on the random day")?;
    analysis::cli::train::print(&trained);
    Ok(out)
}

/// One arm's day: its experiments file and its log.
struct ServedDay {
    experiments: PathBuf,
    log: PathBuf,
}

impl ServedDay {
    /// Plays `options.episodes` sessions of `options.seed`'s listeners
    /// against botify serving `arm` alone, in-process.
    fn play(
        options: &Options,
        data: &WorldData,
        catalog: &Path,
        models: &Path,
        arm: &str,
        dir: &Path,
    ) -> Result<ServedDay> {
        std::fs::create_dir_all(dir)?;
        let experiments = dir.join("experiments.toml");
        // A recommender's name is a TOML string; an inline table is as given.
        let entry = if arm.trim_start().starts_with('{') {
            arm.to_string()
        } else {
            format!("{:?}", arm.trim())
        };
        std::fs::write(
            &experiments,
            format!("active = \"OPE\"\n[[experiment]]\nname = \"OPE\"\narms = [{entry}]\n"),
        )?;
        let log = dir.join("log");
        if log.exists() {
            std::fs::remove_dir_all(&log)
                .with_context(|| format!("cannot clear {}", log.display()))?;
        }
        let mut config = botify::config::Config::for_catalog(catalog.to_path_buf());
        config.experiments = experiments.clone();
        config.models = models.to_path_buf();
        config.redis_url = None;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let engine = runtime
            .block_on(async { botify::app::build_engine(&config, None) })
            .with_context(|| format!("botify cannot serve {arm}"))?;
        let mut days = Days::new(
            data.clone(),
            options.dynamics,
            options.seed,
            options.episodes,
            Some(0),
        )?;
        let (work, _) = days.plan(0, days.static_plan(0));
        let (summary, _, _) = in_process::run_logged(
            days.world(),
            &engine,
            &runtime,
            work,
            &log,
            config.log_max_bytes,
            arm,
        )?;
        eprintln!("{}", summary.report(arm));
        Ok(ServedDay { experiments, log })
    }
}
