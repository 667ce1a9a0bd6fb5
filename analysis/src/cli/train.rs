//! `analysis train`: the models botify serves, written into its models
//! folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use botify::catalog::Catalog;
use clap::{Args, ValueEnum};

use super::{check_holdout, load_sessions, note, warn, Input};
use crate::sessions;
use crate::train::{self, als, colisten, item2vec, popularity::Popularity, recent_sessions, Data};
use tally::progress::{self, Unit};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModelKind {
    Colisten,
    Als,
    Embedding,
    SessionKnn,
    All,
}

#[derive(Args)]
pub(super) struct TrainArgs {
    #[command(flatten)]
    input: Input,
    /// Output folder (botify's --models).
    #[arg(long, default_value = "data/models", value_name = "DIR")]
    out: PathBuf,
    /// Item-to-item model(s) to train; popularity is always written.
    #[arg(long, value_enum, default_value_t = ModelKind::All)]
    model: ModelKind,
    /// Neighbours kept per track in item-to-item tables.
    #[arg(long, default_value_t = 50)]
    neighbours: usize,
    /// Co-listening: popularity exponent (score = S(a,b) / popularity(b)^alpha).
    #[arg(long, default_value_t = 0.5)]
    alpha: f64,
    /// Co-listening: least net evidence S(a,b) (sum of co-liked listen time, minus
    /// skip_weight per skip) for b to be served after a; below it botify keeps its
    /// catalog fallback.
    #[arg(long, default_value_t = colisten::Params::default().min_evidence)]
    min_evidence: f64,
    /// Co-listening and embedding: likes at most this far apart in a session pair up.
    #[arg(long, default_value_t = colisten::Params::default().window)]
    window: usize,
    /// Catalog (tracks.jsonl) for the embedding's artist and genre tokens.
    #[arg(long, default_value = "data/world/tracks.jsonl", value_name = "FILE")]
    catalog: PathBuf,
    /// Embedding: vector dimensions.
    #[arg(long, default_value_t = item2vec::Params::default().dim)]
    dim: usize,
    /// Embedding: passes over the sessions.
    #[arg(long, default_value_t = item2vec::Params::default().epochs)]
    epochs: usize,
    /// Embedding: whether two likes of one artist form a positive pair (they
    /// share the artist token anyway).
    #[arg(long, default_value_t = item2vec::Params::default().same_artist_pairs, action = clap::ArgAction::Set)]
    same_artist_pairs: bool,
    /// session_knn: most recent sessions kept.
    #[arg(long, default_value_t = 50_000)]
    keep_sessions: usize,
    /// Leave out the latest fraction of sessions (by start time), for `eval --holdout`.
    #[arg(long, default_value_t = 0.0)]
    holdout: f64,
    /// ALS: latent factors.
    #[arg(long, default_value_t = 32)]
    factors: usize,
    /// ALS: iterations (each solves users, then tracks).
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// ALS: L2 regularization.
    #[arg(long, default_value_t = 0.1)]
    regularization: f64,
    /// ALS: confidence slope, c = 1 + confidence × listen time.
    #[arg(long, default_value_t = 10.0)]
    confidence: f64,
    /// ALS: seed of the initial factors.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

pub(super) fn run_train(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    check_holdout(args.holdout)?;
    if args.neighbours == 0 {
        bail!("--neighbours must be at least 1 (botify serves from these lists)");
    }
    for (flag, value) in [
        ("--alpha", args.alpha),
        ("--confidence", args.confidence),
        ("--regularization", args.regularization),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            bail!("{flag} must be a non-negative number, got {value}");
        }
    }
    let (records, mut sessions, _) = load_sessions(&args.input)?;
    if let Some(cutoff) = sessions::holdout_cutoff(&sessions, args.holdout) {
        sessions.retain(|s| s.start < cutoff);
        note(format!(
            "training on {} sessions that start before {cutoff} (epoch ms); the rest is held out",
            sessions.len()
        ));
    }
    let data = Data {
        records: &records,
        sessions: &sessions,
    };
    let threads = args.input.threads.max(1);
    let pop = Popularity::from_data(data);
    let ranking = pop.ranking();
    let top = args.out.join(train::TOP_TRACKS);
    train::write_top_tracks(&top, &ranking)?;
    note(format!(
        "wrote {} ({} tracks)",
        top.display(),
        ranking.len()
    ));
    if matches!(args.model, ModelKind::Colisten | ModelKind::All) {
        let spinner = progress::spinner("co-listening");
        let params = colisten::Params {
            neighbours: args.neighbours,
            alpha: args.alpha,
            min_evidence: args.min_evidence,
            window: args.window.max(1),
            threads,
            ..colisten::Params::default()
        };
        let table = colisten::build(data, &pop, params);
        spinner.finish_and_clear();
        write_table(&args.out.join(train::ITEM2ITEM), &table)?;
    }
    if matches!(args.model, ModelKind::Als | ModelKind::All) {
        let params = als::Params {
            factors: args.factors,
            iterations: args.iterations,
            regularization: args.regularization,
            alpha: args.confidence,
            seed: args.seed,
            threads,
        };
        let bar = progress::bar(Unit::Steps, 2 * args.iterations as u64, "ALS half-steps");
        let model = als::fit(data, &pop.vocab, params, &bar);
        bar.finish_and_clear();
        let bar = progress::bar(Unit::Steps, pop.vocab.len() as u64, "ALS neighbours");
        let table = als::item_table(
            &model.item_factors,
            &pop.vocab,
            args.neighbours,
            threads,
            &bar,
        );
        bar.finish_and_clear();
        write_table(&args.out.join(train::ITEM2ITEM_ALS), &table)?;
    }
    let embedding_catalog = match args.model {
        ModelKind::Embedding => Some(Catalog::load(&args.catalog).with_context(|| {
            "the embedding needs the catalog for its artist and genre tokens; \
             pass --catalog FILE (botify's tracks.jsonl)"
        })?),
        ModelKind::All => match Catalog::load(&args.catalog) {
            Ok(catalog) => Some(catalog),
            Err(err) => {
                warn(format!(
                    "skipping the embedding: {err}; pass --catalog FILE (botify's tracks.jsonl) \
                     to train it"
                ));
                None
            }
        },
        _ => None,
    };
    if let Some(catalog) = embedding_catalog {
        let params = item2vec::Params {
            dim: args.dim.max(1),
            epochs: args.epochs.max(1),
            window: args.window.max(1),
            same_artist_pairs: args.same_artist_pairs,
            neighbours: args.neighbours,
            seed: args.seed,
            threads,
            ..item2vec::Params::default()
        };
        let bar = progress::bar(Unit::Steps, params.epochs as u64 + 1, "embedding epochs");
        let embedding = item2vec::fit(data, &catalog, params, &bar);
        bar.finish_and_clear();
        let path = args.out.join(train::EMBEDDING);
        train::write_embedding(&path, &embedding)?;
        note(format!(
            "wrote {} ({} tracks, {} dimensions)",
            path.display(),
            embedding.tracks(),
            embedding.dim
        ));
    }
    if matches!(args.model, ModelKind::SessionKnn | ModelKind::All) {
        let kept = recent_sessions::select(data, args.keep_sessions, botify::models::LIKED.into());
        let path = args.out.join(train::SESSIONS);
        train::write_sessions(&path, &kept)?;
        note(format!(
            "wrote {} ({} sessions)",
            path.display(),
            kept.len()
        ));
    }
    note(format!("done in {:.2}s", started.elapsed().as_secs_f64()));
    Ok(())
}

fn write_table(path: &Path, table: &train::ItemTable) -> Result<()> {
    train::write_item_table(path, table)?;
    let mean = table.iter().map(|r| r.1.len()).sum::<usize>() as f64 / table.len().max(1) as f64;
    note(format!(
        "wrote {} ({} tracks, {mean:.1} neighbours on average)",
        path.display(),
        table.len()
    ));
    Ok(())
}
