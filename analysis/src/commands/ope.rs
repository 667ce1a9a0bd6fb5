//! `analysis ope`: off-policy evaluation of target arms on the logs of the
//! arms that served them (docs/ope.md).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use botify::catalog::Catalog;
use botify::experiments::{arm_label, assign, Experiments};
use botify::models::Models;
use clap::Args;

use super::{read_logs, Input, Notes, Serving};
use crate::logs::{Record, NO_ARM};
pub use crate::ope::OpeRow;
use crate::ope::{
    distrust, replay_session, target_rows, Arm, Profiles, Replayed, RewardModel, Skip, World,
};
use crate::output::percent_of_one;
use crate::report;
use crate::sessions::{self, Session};
use tally::parallel::fan_out;
use tally::progress::{self, Unit};

/// `analysis ope`'s flags.
#[derive(Debug, Clone, Args)]
pub struct Options {
    #[command(flatten)]
    pub input: Input,
    #[command(flatten)]
    pub serving: Serving,
    /// Arms to evaluate, each a recommender name (`memory`) or a TOML inline table as
    /// in an experiments file (`{ recommender = "memory", policy = "softmax", temperature
    /// = 0.3 }`); several allowed.
    #[arg(long, required = true, num_args = 1.., value_name = "ARM SPEC")]
    pub target: Vec<String>,
    /// Importance weights (cumulative ones for `session`) are capped at this value.
    #[arg(long, default_value_t = Options::default().clip, value_name = "W")]
    pub clip: f64,
    /// Logs to fit the doubly robust estimator's reward model on (default: cross-fit,
    /// each half of the users by hash scored with the model of the other half).
    #[arg(long, num_args = 1.., value_name = "PATH|GLOB")]
    pub reward_logs: Vec<String>,
    /// botify's experiments file: with it the logging arm of each session is
    /// replayed too, giving `outside_support` and a check of the replay.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The experiment whose arm labels in the logs name the logging arm (default: the
    /// --config's active one).
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,
    /// botify's --seed: the logging arm's seeded draws are replayed with it to check
    /// that the replay serves what botify served.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write an HTML report with a chart of the estimates into this folder.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

impl Default for Options {
    /// The defaults `analysis ope --help` shows; set `input.logs`, `serving.models`
    /// and `target` before running.
    fn default() -> Options {
        Options {
            input: Input::default(),
            serving: Serving::default(),
            target: Vec::new(),
            clip: 100.0,
            reward_logs: Vec::new(),
            config: None,
            experiment: None,
            seed: 0,
            report: None,
        }
    }
}

/// The estimates, and what to read them with.
#[derive(Debug, Clone, PartialEq)]
pub struct Ope {
    pub rows: Vec<OpeRow>,
    pub notes: Notes,
    /// The HTML report written (`--report`).
    pub report: Option<PathBuf>,
}

/// The reward model q̂ for each session.
enum RewardModels {
    /// Fitted on `--reward-logs`.
    Other(RewardModel),
    /// Cross-fitted: `[0]` on the users of half 1, `[1]` on those of half 0.
    Halves([RewardModel; 2]),
}

/// Which half of the users by hash a user is in, for cross-fitting.
fn half(user: u64) -> usize {
    assign("ope-cross-fit", 2, user)
}

impl RewardModels {
    fn of(&self, user: u64) -> &RewardModel {
        match self {
            RewardModels::Other(model) => model,
            RewardModels::Halves(models) => &models[half(user)],
        }
    }
}

/// Estimates each target's value on `options.input`'s logs.
pub fn run(options: &Options) -> Result<Ope> {
    let targets = checked_targets(options)?;
    let world = load_world(&options.serving)?;
    run_from(options, &targets, &world, None)
}

/// The `--target` arms, refusing a bad `--clip` or target before any work.
pub(crate) fn checked_targets(options: &Options) -> Result<Vec<Arm>> {
    check_clip(options.clip)?;
    options.target.iter().map(|t| Arm::parse(t)).collect()
}

/// Refuses a `--clip` below 1 or not finite (`analysis eval`'s too).
pub(crate) fn check_clip(clip: f64) -> Result<()> {
    if !(clip >= 1.0 && clip.is_finite()) {
        bail!("--clip must be a finite weight of at least 1, e.g. --clip 100; got {clip}");
    }
    Ok(())
}

/// botify's catalog and models as the replay reads them.
pub(crate) fn load_world(serving: &Serving) -> Result<World> {
    let catalog = Catalog::load(&serving.catalog)
        .with_context(|| format!("cannot load --catalog {}", serving.catalog.display()))?;
    let models = Models::load(&serving.models)
        .with_context(|| format!("botify cannot load --models {}", serving.models.display()))?;
    Ok(World::new(Arc::new(catalog), Arc::new(models)))
}

/// No session of the logs could be replayed: each was left out for one of
/// [`Skip`]'s reasons (counted by reason, in [`Skip`]'s order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NothingToEvaluate {
    pub(crate) skipped: [u64; 3],
}

impl NothingToEvaluate {
    /// Sessions left out for lack of a `propensity`.
    pub(crate) fn without_propensity(&self) -> u64 {
        self.skipped[Skip::NoPropensity as usize]
    }
}

impl std::fmt::Display for NothingToEvaluate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no session left to evaluate on: botify logs with `propensity` on every /next are needed")
    }
}

impl std::error::Error for NothingToEvaluate {}

/// Estimates each target's value on the sessions of `options.input`'s logs
/// that start at or after `from` (epoch ms; every session when `None`).
/// Earlier sessions are replayed too, for each arm's long-term profile of
/// their listeners, but not estimated on.
pub(crate) fn run_from(
    options: &Options,
    targets: &[Arm],
    world: &World,
    from: Option<u64>,
) -> Result<Ope> {
    let mut notes = Notes::default();
    let (experiment, logging_arms) = logging_arms(options)?;
    let logs = read_logs(&options.input, experiment.as_deref(), &mut notes)?;
    let (records, sessions) = sessionize(logs.records, &mut notes)?;
    let reward_models = reward_models(options, &records, &sessions, &world.catalog, &mut notes)?;

    let started = Instant::now();
    let replayed = replay_all(
        options,
        world,
        targets,
        &logging_arms,
        &reward_models,
        &records,
        &sessions,
    );
    let mut skipped = [0u64; 3];
    // One result per session, in `sessions`' order.
    let kept: Vec<Replayed> = replayed
        .into_iter()
        .zip(&sessions)
        .filter(|(_, session)| from.is_none_or(|from| session.start >= from))
        .filter_map(|(r, _)| match r {
            Ok(replayed) => Some(replayed),
            Err(skip) => {
                skipped[skip as usize] += 1;
                None
            }
        })
        .filter(|r| !r.steps.first().is_some_and(Vec::is_empty))
        .collect();
    let decisions: usize = kept
        .iter()
        .map(|r| r.steps.first().map_or(0, Vec::len))
        .sum();
    let seconds = started.elapsed().as_secs_f64();
    notes.info(format!(
        "replayed {decisions} requests of {} sessions under {} targets in {seconds:.1} s ({:.0} requests/s per target)",
        kept.len(),
        targets.len(),
        decisions as f64 / seconds.max(1e-9)
    ));
    if let Some(from) = from {
        let earlier = sessions.iter().filter(|s| s.start < from).count();
        notes.info(format!(
            "estimating on the sessions starting at or after {from} (epoch ms); the {earlier} earlier ones were replayed only to build each arm's profile of their listeners"
        ));
    }
    skip_notes(&skipped, &mut notes);
    if kept.is_empty() {
        return Err(NothingToEvaluate { skipped }.into());
    }
    logging_check(&kept, &mut notes);

    let mut rows = Vec::new();
    let first_logged = kept.iter().map(|r| r.steps[0][0].reward).sum::<f64>() / kept.len() as f64;
    let session_logged = kept
        .iter()
        .map(|r| r.first + r.steps[0].iter().map(|s| s.reward).sum::<f64>())
        .sum::<f64>()
        / kept.len() as f64;
    notes.info(format!(
        "logging policy's own value on these {} sessions: first_pick {first_logged:.4}, session {session_logged:.4} (mean time per session)",
        kept.len()
    ));
    for (t, target) in targets.iter().enumerate() {
        for row in target_rows(
            target,
            t,
            &kept,
            options.clip,
            [first_logged, session_logged],
        ) {
            if let Some(warning) = distrust(&row) {
                notes.warn(warning);
            }
            rows.push(row);
        }
    }
    let report = match &options.report {
        Some(dir) => Some(report::ope::write(dir, &rows, &notes)?),
        None => None,
    };
    Ok(Ope {
        rows,
        notes,
        report,
    })
}

/// The experiment naming the logging arm, and its arms built as botify
/// builds them; none without `--config`.
fn logging_arms(options: &Options) -> Result<(Option<String>, Vec<Arm>)> {
    let Some(path) = &options.config else {
        if options.experiment.is_some() {
            bail!(
                "--experiment names an experiment of --config: pass --config experiments.toml too"
            );
        }
        return Ok((None, Vec::new()));
    };
    let experiments = Experiments::load(path)?;
    let name = options
        .experiment
        .clone()
        .unwrap_or_else(|| experiments.active.clone());
    let Some(experiment) = experiments.experiments.iter().find(|e| e.name == name) else {
        bail!("--experiment {name:?} is not in {}", path.display());
    };
    let arms = experiment
        .arms
        .iter()
        .enumerate()
        .map(|(i, spec)| Arm::build(format!("{name} arm {}", arm_label(i)), spec))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("--config {}", path.display()))?;
    Ok((Some(name), arms))
}

fn sessionize(mut records: Vec<Record>, notes: &mut Notes) -> Result<(Vec<Record>, Vec<Session>)> {
    sessions::sort(&mut records);
    let (sessions, report) = sessions::sessionize(&records);
    notes.info(&report);
    if sessions.is_empty() {
        bail!("the logs hold no closed session (no `last` event): no reward is known");
    }
    Ok((records, sessions))
}

fn reward_models(
    options: &Options,
    records: &[Record],
    sessions: &[Session],
    catalog: &Catalog,
    notes: &mut Notes,
) -> Result<RewardModels> {
    if options.reward_logs.is_empty() {
        notes.info("dr's reward model is cross-fitted: each half of the users (by hash) is scored with the model fitted on the other half");
        let fit = |h: usize| RewardModel::fit(records, sessions, catalog, |s| half(s.user) != h);
        return Ok(RewardModels::Halves([fit(0), fit(1)]));
    }
    let input = Input {
        logs: options.reward_logs.clone(),
        threads: options.input.threads,
    };
    let mut reward_notes = Notes::default();
    let logs = read_logs(&input, None, &mut reward_notes)?;
    let (records, sessions) = sessionize(logs.records, &mut reward_notes)?;
    notes.info(format!(
        "dr's reward model is fitted on --reward-logs ({} sessions)",
        sessions.len()
    ));
    Ok(RewardModels::Other(RewardModel::fit(
        &records,
        &sessions,
        catalog,
        |_| true,
    )))
}

/// Every session replayed, on `options.input.threads` threads, in order.
/// A listener's sessions stay on one thread, in time order, so each arm's
/// profile is carried from one to the next.
fn replay_all(
    options: &Options,
    world: &World,
    targets: &[Arm],
    logging_arms: &[Arm],
    reward_models: &RewardModels,
    records: &[Record],
    sessions: &[Session],
) -> Vec<Result<Replayed, Skip>> {
    let bar = progress::bar_if(true, Unit::Steps, sessions.len() as u64, "replaying");
    let replayed = fan_out(
        by_listener(sessions, options.input.threads.max(1)),
        |part| {
            let mut profiles = Profiles::new(targets.len());
            part.iter()
                .map(|session| {
                    let logging = (session.arm != NO_ARM)
                        .then(|| logging_arms.get(usize::from(session.arm)))
                        .flatten();
                    let replayed = replay_session(
                        world,
                        targets,
                        logging,
                        reward_models.of(session.user),
                        options.seed,
                        session.events(records),
                        &mut profiles,
                    );
                    bar.inc(1);
                    replayed
                })
                .collect::<Vec<_>>()
        },
    )
    .into_iter()
    .flatten()
    .collect();
    bar.finish_and_clear();
    replayed
}

/// `sessions` (sorted by listener) in about `parts` runs of equal length,
/// each cut where the listener changes.
fn by_listener(sessions: &[Session], parts: usize) -> Vec<&[Session]> {
    let target = sessions.len().div_ceil(parts).max(1);
    let mut runs = Vec::with_capacity(parts);
    let mut rest = sessions;
    while !rest.is_empty() {
        let mut cut = target.min(rest.len());
        while cut < rest.len() && rest[cut].user == rest[cut - 1].user {
            cut += 1;
        }
        let (run, tail) = rest.split_at(cut);
        runs.push(run);
        rest = tail;
    }
    runs
}

fn skip_notes(skipped: &[u64; 3], notes: &mut Notes) {
    let reasons = [
        (
            Skip::NoPropensity,
            "have a /next without `propensity` (logs written before botify logged it)",
        ),
        (
            Skip::OutsideCatalog,
            "play a track outside --catalog (logs of another catalog?)",
        ),
        (
            Skip::BrokenChain,
            "have an event whose track is not the previous recommendation (no known reward)",
        ),
    ];
    for (skip, why) in reasons {
        let count = skipped[skip as usize];
        if count > 0 {
            notes.warn(format!("{count} sessions left out: they {why}"));
        }
    }
}

/// How faithfully the logging arm's replay reproduces what botify served.
fn logging_check(kept: &[Replayed], notes: &mut Notes) {
    let (mut same_propensity, mut same_draw, mut decisions) = (0u64, 0u64, 0u64);
    for r in kept {
        if let Some((propensity, draw)) = r.logging_check {
            same_propensity += u64::from(propensity);
            same_draw += u64::from(draw);
            decisions += r.steps[0].len() as u64;
        }
    }
    if decisions == 0 {
        notes.info("the logging arm was not replayed (pass --config experiments.toml, and --experiment if not the active one): outside_support is unknown");
        return;
    }
    let propensity = same_propensity as f64 / decisions as f64;
    let draw = same_draw as f64 / decisions as f64;
    let text = format!(
        "the logging arm's replay gives the logged propensity on {} and serves the logged track with the same seed on {} of {decisions} requests",
        percent_of_one(propensity),
        percent_of_one(draw)
    );
    if propensity < 0.99 {
        notes.warn(format!(
            "{text}: the rebuilt state differs from botify's (no long-term profile, default filters, other models or --seed?), so the targets' probabilities may be off too"
        ));
    } else {
        notes.info(text);
    }
}
