//! `analysis eval`: offline next-track scores of the trained tables and of
//! botify's recommenders on held-out sessions.

use std::sync::Arc;

use anyhow::{bail, Result};
use botify::catalog::Catalog;
use clap::Args;

use super::{check_holdout, load_sessions, Input, Notes, Serving};
use crate::eval::{self, EvalRow};
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
        }
    }
}

/// Scores of every model at every cut-off.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub rows: Vec<EvalRow>,
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
    let mut models = match &catalog {
        Some(_) => eval::load_tables(&options.serving.models)?,
        None => eval::load_models(&options.serving.models)?,
    };
    if let Some(catalog) = &catalog {
        models.extend(eval::load_recommenders(
            &names,
            Arc::clone(catalog),
            &options.serving.models,
        )?);
    }
    let (records, mut sessions) = load_sessions(&options.input, &mut notes)?;
    match sessions::holdout_cutoff(&sessions, options.holdout) {
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
    Ok(Evaluation { rows, notes })
}
