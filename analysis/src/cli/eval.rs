//! `analysis eval`: offline next-track scores of the trained tables and of
//! botify's recommenders on held-out sessions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anstream::{print, println};
use anyhow::{bail, Result};
use botify::catalog::Catalog;
use clap::Args;

use super::{check_holdout, load_sessions, note, warn, Input};
use crate::eval;
use crate::output::Format;
use crate::sessions;

#[derive(Args)]
pub(super) struct EvalArgs {
    #[command(flatten)]
    input: Input,
    /// Folder with top_tracks.json / item2item*.jsonl, and whatever else botify loads
    /// from its --models (embedding.jsonl, sessions.jsonl, …) for the recommenders.
    #[arg(long, value_name = "DIR")]
    models: PathBuf,
    /// botify recommenders to evaluate, comma-separated experiment names (default
    /// parameters), or `none` for the tables only.
    #[arg(long, value_delimiter = ',', default_value = eval::DEFAULT_RECOMMENDERS, value_name = "LIST")]
    recommenders: Vec<String>,
    /// botify's catalog (tracks.jsonl), which the recommenders read; when the file is
    /// missing only the tables are evaluated.
    #[arg(long, default_value = "data/world/tracks.jsonl", value_name = "FILE")]
    catalog: PathBuf,
    /// Recommenders are scored on at most this many queries, the first ones in session
    /// order (each costs up to k calls); tables on all.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    max_queries: u64,
    /// Seed of the recommenders' random choices.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Cut-offs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10")]
    k: Vec<usize>,
    /// Latest fraction of sessions (by start time) to evaluate on.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// A next track counts as relevant when listened at least this fraction.
    #[arg(long, default_value_t = 0.5)]
    liked: f64,
    /// Output format of the table.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub(super) fn run_eval(args: EvalArgs) -> Result<()> {
    let started = Instant::now();
    check_holdout(args.holdout)?;
    if args.k.is_empty() || args.k.contains(&0) {
        bail!("--k takes positive cut-offs, e.g. --k 10 or --k 5,10,50");
    }
    if args.max_queries == 0 {
        bail!("--max-queries must be at least 1; use --recommenders none to skip the recommenders");
    }
    let mut names = eval::recommender_names(&args.recommenders)?;
    let catalog = if names.is_empty() {
        None
    } else if args.catalog.exists() {
        Some(Arc::new(Catalog::load(&args.catalog)?))
    } else {
        warn(format!(
            "no catalog at {}: evaluating the trained tables only; pass --catalog FILE \
             (botify's tracks.jsonl) to evaluate the recommenders too",
            args.catalog.display()
        ));
        names.clear();
        None
    };
    let mut models = match &catalog {
        Some(_) => eval::load_tables(&args.models)?,
        None => eval::load_models(&args.models)?,
    };
    if let Some(catalog) = &catalog {
        models.extend(eval::load_recommenders(
            &names,
            Arc::clone(catalog),
            &args.models,
        )?);
    }
    let (records, mut sessions, _) = load_sessions(&args.input)?;
    match sessions::holdout_cutoff(&sessions, args.holdout) {
        Some(cutoff) => {
            sessions.retain(|s| s.start >= cutoff);
            note(format!(
                "evaluating on {} held-out sessions starting at or after {cutoff} (epoch ms); \
                 the tables should be trained with the same --holdout",
                sessions.len()
            ));
        }
        None => warn("--holdout 0: evaluating on every session, including those the tables may have been trained on"),
    }
    if let Some(catalog) = &catalog {
        let (outside, events) = eval::tracks_outside(&records, &sessions, catalog);
        if outside > 0 {
            warn(format!(
                "{outside} of {events} held-out events play tracks not in {}: botify refuses \
                 them, so the recommenders get no list there; is --catalog the world these \
                 logs came from?",
                args.catalog.display()
            ));
        }
        let queries = eval::count_queries(&records, &sessions, args.liked);
        let names = names.join(", ");
        if queries > args.max_queries {
            note(format!(
                "recommenders ({names}) are scored on the first {} of {queries} queries in \
                 session order (--max-queries); the tables on all {queries}",
                args.max_queries
            ));
        } else {
            note(format!(
                "recommenders ({names}) and tables are scored on all {queries} queries \
                 (at most --max-queries {} for recommenders)",
                args.max_queries
            ));
        }
    }
    let options = eval::Options {
        liked: args.liked,
        max_queries: args.max_queries,
        seed: args.seed,
        threads: args.input.threads.max(1),
        progress: true,
    };
    let rows = eval::evaluate(&records, &sessions, &models, &args.k, &options);
    let table = eval::to_table(&rows);
    match args.format {
        Format::Table => print!("{}", table.to_terminal()),
        Format::Markdown => print!("{}", table.to_markdown()),
        Format::Csv => print!("{}", table.to_csv()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
    }
    note(format!("done in {:.2}s", started.elapsed().as_secs_f64()));
    Ok(())
}
