//! `analysis eval`: offline next-track scores of the trained tables and of
//! botify's recommenders on held-out sessions, and with `--counterfactual`
//! each arm's off-policy value on them (`analysis ope`'s SNIPS estimates,
//! ranked).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use botify::catalog::Catalog;
use clap::Args;

use super::ope::{self, NothingToEvaluate};
use super::{check_holdout, load_sessions, Input, Notes, Serving};
use crate::eval::{self, counterfactual, CounterfactualRow, EvalRow};
use crate::ope::{simulated, Arm};
use crate::sessions;

/// `analysis eval`'s flags.
#[derive(Debug, Clone, Args)]
pub struct Options {
    #[command(flatten)]
    pub input: Input,
    #[command(flatten)]
    pub serving: Serving,
    /// botify recommenders to evaluate, comma-separated experiment names (default
    /// parameters), or `none` for the tables only; without the --catalog file only
    /// the tables are evaluated.
    #[arg(long, value_delimiter = ',', default_value = eval::DEFAULT_RECOMMENDERS, value_name = "LIST")]
    pub recommenders: Vec<String>,
    /// Recommenders are scored on at most this many queries, the first ones in session
    /// order (each costs up to k calls); tables on all.
    #[arg(long, default_value_t = Options::default().max_queries, value_name = "N")]
    pub max_queries: u64,
    /// Seed of the recommenders' random choices.
    #[arg(long, default_value_t = Options::default().seed)]
    pub seed: u64,
    /// Cut-offs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10")]
    pub k: Vec<usize>,
    /// Latest fraction of sessions (by start time) to evaluate on.
    #[arg(long, default_value_t = Options::default().holdout)]
    pub holdout: f64,
    /// A next track counts as relevant when listened at least this fraction.
    #[arg(long, default_value_t = Options::default().liked)]
    pub liked: f64,
    #[command(flatten)]
    pub counterfactual: Counterfactual,
}

/// The counterfactual score (`--counterfactual`) and the flags of `analysis
/// ope` it reads the logs with.
#[derive(Debug, Clone, Args)]
pub struct Counterfactual {
    /// Also score these arms by their counterfactual value: what each would have earned
    /// on the held-out sessions. Two estimates: `simulated`, the mean time per session of
    /// the arm served (by botify's own code) to a listener learned from the models and
    /// the held-out logs (it hears a track for the listen curve's expected time, by its
    /// cosine with the session's first track, and stays as often as the logs show after
    /// a listen that long), on which arms are ranked; and, as `analysis ope` estimates
    /// off-policy from the logged propensities (SNIPS), first_pick (the first
    /// recommendation's listened fraction) and session (mean time per session), with 95%
    /// intervals, effective sample sizes (ess) and, with --config, the share of the arm's
    /// probability outside the logging arm's support. An arm's SNIPS estimates are
    /// trusted when both pass `analysis ope`'s checks (ess ≥ 100 and ≥ 1% of n, ≤ 5%
    /// outside the support, weights averaging 1 ± 0.1, ≤ 5% clipped): only arms close to
    /// the logging arm are, since another recommender's picks usually fall outside a
    /// logging arm's top candidates. Each arm is a recommender name (`memory`) or a TOML
    /// inline table as in an experiments file (`{ recommender = "session_interest",
    /// policy = "softmax" }`). Needs logs of a stochastic serving policy (softmax, epsilon
    /// or noise), the --catalog file and --models with the embedding and listen curve.
    #[arg(long = "counterfactual", num_args = 1.., value_name = "ARM SPEC")]
    pub arms: Vec<String>,
    /// As `analysis ope --clip`: importance weights (cumulative ones for session) are
    /// capped at this value.
    #[arg(long, default_value_t = ope::Options::default().clip, value_name = "W")]
    pub clip: f64,
    /// As `analysis ope --config`: botify's experiments file, with which the logging arm
    /// of each session is replayed too, giving the share outside its support.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// As `analysis ope --experiment`: the experiment whose arm labels in the logs name
    /// the logging arm (default: the --config's active one).
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,
    /// Sessions the simulated estimate plays per arm: the first tracks of at most this
    /// many held-out sessions, evenly strided.
    #[arg(long, default_value_t = Counterfactual::default().simulated_sessions, value_name = "N")]
    pub simulated_sessions: usize,
    /// As `analysis ope --seed`: botify's --seed, with which the logging arm's seeded
    /// draws are replayed to check the replay (eval's own --seed seeds its
    /// recommenders' lists).
    #[arg(long, default_value_t = ope::Options::default().seed, value_name = "SEED")]
    pub botify_seed: u64,
}

impl Default for Counterfactual {
    /// No arm: no counterfactual score.
    fn default() -> Counterfactual {
        let ope = ope::Options::default();
        Counterfactual {
            arms: Vec::new(),
            clip: ope.clip,
            config: ope.config,
            experiment: ope.experiment,
            simulated_sessions: 5_000,
            botify_seed: ope.seed,
        }
    }
}

impl Counterfactual {
    /// Refuses a mistyped arm, a bad clip, a lone --config or --experiment,
    /// or a missing catalog before any work is done.
    fn check(&self, serving: &Serving) -> Result<()> {
        if self.arms.is_empty() {
            if self.experiment.is_some() || self.config.is_some() {
                bail!("--config and --experiment name the logging arm for --counterfactual: pass --counterfactual ARM too");
            }
            return Ok(());
        }
        ope::check_clip(self.clip)?;
        if self.simulated_sessions == 0 {
            bail!(
                "--simulated-sessions must be at least 1, e.g. --simulated-sessions 5000: the \
                 simulated estimate plays that many sessions per arm"
            );
        }
        for arm in &self.arms {
            Arm::parse(arm).map_err(|err| anyhow!("--counterfactual: {err:#}"))?;
        }
        if !serving.catalog.is_file() {
            bail!(
                "--counterfactual replays the arms on botify's catalog, and there is no --catalog \
                 file at {}: pass --catalog FILE (the tracks.jsonl the logs were served from)",
                serving.catalog.display()
            );
        }
        Ok(())
    }

    /// `analysis ope`'s options for these arms on `input` with `serving`.
    fn ope_options(&self, input: &Input, serving: &Serving) -> ope::Options {
        ope::Options {
            input: input.clone(),
            serving: serving.clone(),
            target: self.arms.clone(),
            clip: self.clip,
            config: self.config.clone(),
            experiment: self.experiment.clone(),
            seed: self.botify_seed,
            ..ope::Options::default()
        }
    }
}

impl Default for Options {
    /// The defaults `analysis eval --help` shows; set `input.logs` and
    /// `serving.models` before running.
    fn default() -> Options {
        Options {
            input: Input::default(),
            serving: Serving::default(),
            recommenders: eval::DEFAULT_RECOMMENDERS
                .split(',')
                .map(str::to_string)
                .collect(),
            max_queries: 20_000,
            seed: 42,
            k: vec![10],
            holdout: 0.2,
            liked: 0.5,
            counterfactual: Counterfactual::default(),
        }
    }
}

/// Scores of every model at every cut-off.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub rows: Vec<EvalRow>,
    /// Each `--counterfactual` arm's score, ranked; empty without the flag.
    pub counterfactual: Vec<CounterfactualRow>,
    pub notes: Notes,
}

/// Scores the tables in `options.serving.models` and botify's recommenders on the
/// held-out sessions of `options.input`.
pub fn run(options: &Options) -> Result<Evaluation> {
    check_holdout(options.holdout)?;
    if options.k.is_empty() || options.k.contains(&0) {
        bail!("--k takes positive cut-offs, e.g. --k 10 or --k 5,10,50");
    }
    if options.max_queries == 0 {
        bail!("--max-queries must be at least 1; use --recommenders none to skip the recommenders");
    }
    options.counterfactual.check(&options.serving)?;
    let mut notes = Notes::default();
    let mut names = eval::recommender_names(&options.recommenders)?;
    let catalog = if names.is_empty() {
        None
    } else if options.serving.catalog.exists() {
        Some(Arc::new(Catalog::load(&options.serving.catalog)?))
    } else {
        notes.warn(format!(
            "no catalog at {}: evaluating the trained tables only; pass --catalog FILE \
             (botify's tracks.jsonl) to evaluate the recommenders too",
            options.serving.catalog.display()
        ));
        names.clear();
        None
    };
    // Recommenders, and the counterfactual score, need no table.
    let mut models = if catalog.is_some() || !options.counterfactual.arms.is_empty() {
        eval::load_tables(&options.serving.models)?
    } else {
        eval::load_models(&options.serving.models)?
    };
    if let Some(catalog) = &catalog {
        models.extend(eval::load_recommenders(
            &names,
            Arc::clone(catalog),
            &options.serving.models,
        )?);
    }
    let (records, mut sessions) = load_sessions(&options.input, &mut notes)?;
    let cutoff = sessions::holdout_cutoff(&sessions, options.holdout);
    match cutoff {
        Some(cutoff) => {
            sessions.retain(|s| s.start >= cutoff);
            notes.info(format!(
                "evaluating on {} held-out sessions starting at or after {cutoff} (epoch ms); \
                 the tables should be trained with the same --holdout",
                sessions.len()
            ));
        }
        None => notes.warn("--holdout 0: evaluating on every session, including those the tables may have been trained on"),
    }
    if let Some(catalog) = &catalog {
        let (outside, events) = eval::tracks_outside(&records, &sessions, catalog);
        if outside > 0 {
            notes.warn(format!(
                "{outside} of {events} held-out events play tracks not in {}: botify refuses \
                 them, so the recommenders get no list there; is --catalog the world these \
                 logs came from?",
                options.serving.catalog.display()
            ));
        }
        let queries = eval::count_queries(&records, &sessions, options.liked);
        let names = names.join(", ");
        if queries > options.max_queries {
            notes.info(format!(
                "recommenders ({names}) are scored on the first {} of {queries} queries in \
                 session order (--max-queries); the tables on all {queries}",
                options.max_queries
            ));
        } else {
            notes.info(format!(
                "recommenders ({names}) and tables are scored on all {queries} queries \
                 (at most --max-queries {} for recommenders)",
                options.max_queries
            ));
        }
    }
    let scoring = eval::Options {
        liked: options.liked,
        max_queries: options.max_queries,
        seed: options.seed,
        threads: options.input.threads.max(1),
        progress: true,
    };
    let rows = eval::evaluate(&records, &sessions, &models, &options.k, &scoring);
    let listener = if options.counterfactual.arms.is_empty() {
        None
    } else {
        Some((
            simulated::Stay::fit(&records, &sessions),
            simulated::starts(
                &records,
                &sessions,
                options.counterfactual.simulated_sessions,
            ),
        ))
    };
    drop((records, sessions));
    let counterfactual = match listener {
        None => Vec::new(),
        Some(listener) => score_counterfactual(options, cutoff, listener, &mut notes)?,
    };
    Ok(Evaluation {
        rows,
        counterfactual,
        notes,
    })
}

/// The `--counterfactual` arms' rows: `analysis ope` on the sessions starting
/// at or after `cutoff` (every session without one), its notes added to
/// `notes`.
fn score_counterfactual(
    options: &Options,
    cutoff: Option<u64>,
    (stay, starts): (simulated::Stay, Vec<u32>),
    notes: &mut Notes,
) -> Result<Vec<CounterfactualRow>> {
    let ope_options = options
        .counterfactual
        .ope_options(&options.input, &options.serving);
    let targets = ope::checked_targets(&ope_options)?;
    let world = ope::load_world(&options.serving)?;
    let estimated = ope::run_from(&ope_options, &targets, &world, cutoff).map_err(|err| {
        let logs = options.input.logs.join(" ");
        match err.downcast_ref::<NothingToEvaluate>() {
            Some(nothing) if nothing.without_propensity() > 0 => anyhow!(
                "--counterfactual needs logged propensities, and {} sessions to score of \
                 --logs {logs} have a /next without `propensity` (none is left to estimate on): \
                 botify logs it with every answer of its serving policy, so these are logs of an \
                 older botify or of another program; log with a stochastic arm (policy = \
                 \"softmax\" or \"epsilon\", or noise; docs/policies.md) and score those logs",
                nothing.without_propensity()
            ),
            _ => err.context(format!("--counterfactual on --logs {logs}")),
        }
    })?;
    notes.0.extend(estimated.notes.0);
    let listener = simulated::Listener {
        world: &world,
        stay,
        starts,
    };
    let simulated = simulate(&listener, &targets, options, notes);
    let rows = counterfactual::rows(&estimated.rows, &simulated);
    let untrusted = rows.iter().filter(|r| !r.trusted).count();
    if untrusted > 0 {
        notes.warn(format!(
            "the SNIPS estimates of {untrusted} of {} --counterfactual arms are not trusted (see \
             the warnings above): the log does not support those arms well enough to check their \
             simulated estimates",
            rows.len()
        ));
    }
    Ok(rows)
}

/// Each `--counterfactual` arm's simulated estimate, by arm name.
fn simulate(
    listener: &simulated::Listener<'_>,
    arms: &[Arm],
    options: &Options,
    notes: &mut Notes,
) -> Vec<(String, f64)> {
    if listener.world.models.embedding.is_empty() {
        notes.warn(format!(
            "--models {} has no embedding: the simulated listener hears every recommended track \
             as an unrelated one, so the simulated estimates cannot tell arms apart; train the \
             embedding (analysis train --model embedding) into that folder",
            options.serving.models.display()
        ));
    }
    let started = Instant::now();
    let values = listener.mean_session_time(
        arms,
        options.counterfactual.botify_seed,
        options.input.threads,
    );
    notes.info(format!(
        "simulated {} sessions per arm, started on the held-out sessions' first tracks, in {:.1} s",
        listener.starts.len(),
        started.elapsed().as_secs_f64()
    ));
    arms.iter()
        .map(|arm| arm.name.clone())
        .zip(values)
        .collect()
}
