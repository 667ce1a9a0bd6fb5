//! `analysis train`: the models botify serves, written into its models
//! folder.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use botify::catalog::Catalog;
use clap::{Args, ValueEnum};

use super::{check_holdout, load_sessions, Input, Notes};
use crate::sessions;
use crate::train::{
    self, als, colisten, exposure, item2vec, listen_curve, popularity::Popularity, recent_sessions,
    session_factors, Data,
};
use tally::progress::{self, Unit};

/// How the embedding's track vectors are learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Objective {
    /// Sessions × tracks: each session's drifting taste, each listen's time
    /// (`train::session_factors`).
    Sessions,
    /// Skip-gram over pairs of likes (`train::item2vec`).
    Item2vec,
}

/// Which item-to-item model(s) to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    Colisten,
    Als,
    Embedding,
    SessionKnn,
    All,
}

/// `analysis train`'s flags.
#[derive(Debug, Clone, Args)]
pub struct Options {
    #[command(flatten)]
    pub input: Input,
    /// Output folder (botify's --models).
    #[arg(long, default_value_os_t = Options::default().out, value_name = "DIR")]
    pub out: PathBuf,
    /// Item-to-item model(s) to train; popularity is always written.
    #[arg(long, value_enum, default_value_t = Options::default().model)]
    pub model: ModelKind,
    /// Neighbours kept per track in item-to-item tables.
    #[arg(long, default_value_t = Options::default().neighbours)]
    pub neighbours: usize,
    /// Embedding: at most this many of a track's neighbours by one artist
    /// (0: no limit). Botify discounts an artist the session has heard, so
    /// a list filled by one prolific artist leaves a session nowhere to go.
    #[arg(long, default_value_t = Options::default().per_artist, value_name = "N")]
    pub per_artist: usize,
    /// Co-listening: popularity exponent (score = S(a,b) / popularity(b)^alpha).
    #[arg(long, default_value_t = Options::default().alpha)]
    pub alpha: f64,
    /// Co-listening: least net evidence S(a,b) (sum of co-liked listen time, minus
    /// skip_weight per skip) for b to be served after a; below it botify keeps its
    /// catalog fallback.
    #[arg(long, default_value_t = Options::default().min_evidence)]
    pub min_evidence: f64,
    /// Co-listening and embedding (`item2vec`): likes at most this far apart in a
    /// session pair up.
    #[arg(long, default_value_t = Options::default().window)]
    pub window: usize,
    /// Catalog (tracks.jsonl) for the embedding's artist and genre tokens.
    #[arg(long, default_value_os_t = Options::default().catalog, value_name = "FILE")]
    pub catalog: PathBuf,
    /// Embedding: vector dimensions.
    #[arg(long, default_value_t = Options::default().dim)]
    pub dim: usize,
    /// Embedding: how its vectors are learned. `sessions`: each listen's
    /// time a logistic function of taste · track (graded listens and skips
    /// as they are), the taste an interest shared by a listener's sessions
    /// that start at one artist, drifted towards the session's likes
    /// (--drift). `item2vec`: skip-gram over pairs of likes at most
    /// --window apart.
    #[arg(long, value_enum, default_value_t = Options::default().objective)]
    pub objective: Objective,
    /// Embedding: passes over the sessions [default: 20 for `sessions`, 3
    /// for `item2vec`].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Embedding (`sessions`): the share of a session's taste that survives
    /// each like, the rest moving towards the liked track; at most 0.9 (the
    /// liked tracks then weigh up to ten vectors in the taste; more lets
    /// training diverge).
    #[arg(long, default_value_t = Options::default().drift, value_name = "SHARE")]
    pub drift: f32,
    /// Embedding (`item2vec`): whether two likes of one artist form a
    /// positive pair (they share the artist token anyway).
    #[arg(long, default_value_t = Options::default().same_artist_pairs, action = clap::ArgAction::Set)]
    pub same_artist_pairs: bool,
    /// session_knn: most recent sessions kept.
    #[arg(long, default_value_t = Options::default().keep_sessions)]
    pub keep_sessions: usize,
    /// Exposure correction: each recommended listen weighs 1 / its logged
    /// propensity, capped at this value, then divided by the mean weight
    /// (co-listening, session_knn's index, embedding). 1 turns it off; logs
    /// without propensities weigh 1 everywhere.
    #[arg(long, default_value_t = Options::default().ips_cap, value_name = "W")]
    pub ips_cap: f64,
    /// Leave out the latest fraction of sessions (by start time), for `eval --holdout`.
    #[arg(long, default_value_t = Options::default().holdout)]
    pub holdout: f64,
    /// ALS: latent factors.
    #[arg(long, default_value_t = Options::default().factors)]
    pub factors: usize,
    /// ALS: iterations (each solves users, then tracks).
    #[arg(long, default_value_t = Options::default().iterations)]
    pub iterations: usize,
    /// ALS: L2 regularization.
    #[arg(long, default_value_t = Options::default().regularization)]
    pub regularization: f64,
    /// ALS: confidence slope, c = 1 + confidence × listen time.
    #[arg(long, default_value_t = Options::default().confidence)]
    pub confidence: f64,
    /// ALS: seed of the initial factors.
    #[arg(long, default_value_t = Options::default().seed)]
    pub seed: u64,
}

impl Default for Options {
    /// Every model, with the defaults `analysis train --help` shows; set
    /// `input.logs` before running.
    fn default() -> Options {
        let colisten = colisten::Params::default();
        let item2vec = item2vec::Params::default();
        Options {
            input: Input::default(),
            out: PathBuf::from("data/models"),
            model: ModelKind::All,
            neighbours: item2vec.neighbours.count,
            per_artist: item2vec.neighbours.per_artist,
            alpha: 0.5,
            min_evidence: colisten.min_evidence,
            window: colisten.window,
            catalog: PathBuf::from("data/world/tracks.jsonl"),
            dim: item2vec.dim,
            objective: Objective::Sessions,
            epochs: None,
            drift: session_factors::Params::default().drift,
            same_artist_pairs: item2vec.same_artist_pairs,
            keep_sessions: 50_000,
            ips_cap: exposure::DEFAULT_CAP,
            holdout: 0.0,
            factors: 32,
            iterations: 10,
            regularization: 0.1,
            confidence: 10.0,
            seed: 42,
        }
    }
}

/// What a training wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    /// Every file written into `out`, in the order written.
    pub files: Vec<PathBuf>,
    pub notes: Notes,
}

impl Trained {
    /// Records that `path` was written, holding `contents`.
    fn wrote(&mut self, path: PathBuf, contents: impl std::fmt::Display) {
        self.notes
            .info(format!("wrote {} ({contents})", path.display()));
        self.files.push(path);
    }
}

/// Trains the models `options` ask for and writes them into `options.out`.
pub fn run(options: &Options) -> Result<Trained> {
    check_holdout(options.holdout)?;
    if options.neighbours == 0 {
        bail!("--neighbours must be at least 1 (botify serves from these lists)");
    }
    for (flag, value) in [
        ("--alpha", options.alpha),
        ("--confidence", options.confidence),
        ("--regularization", options.regularization),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            bail!("{flag} must be a non-negative number, got {value}");
        }
    }
    if !(options.drift > 0.0 && options.drift <= session_factors::MAX_DRIFT) {
        bail!(
            "--drift {}: expected a share in (0, {}] of the taste that survives a like",
            options.drift,
            session_factors::MAX_DRIFT
        );
    }
    let mut trained = Trained {
        files: Vec::new(),
        notes: Notes::default(),
    };
    let (records, mut sessions) = load_sessions(&options.input, &mut trained.notes)?;
    if let Some(cutoff) = sessions::holdout_cutoff(&sessions, options.holdout) {
        sessions.retain(|s| s.start < cutoff);
        trained.notes.info(format!(
            "training on {} sessions that start before {cutoff} (epoch ms); the rest is held out",
            sessions.len()
        ));
    }
    if options.ips_cap.is_nan() || options.ips_cap < 1.0 {
        bail!(
            "--ips-cap {}: expected a number ≥ 1 (1 turns the exposure correction off)",
            options.ips_cap
        );
    }
    let data = Data::new(&records, &sessions);
    let exposure = exposure::weights(&data, options.ips_cap);
    let data = data.with_exposure(&exposure);
    let threads = options.input.threads.max(1);
    let pop = Popularity::from_data(data);
    let ranking = pop.ranking();
    let top = options.out.join(train::TOP_TRACKS);
    train::write_top_tracks(&top, &ranking)?;
    trained.wrote(top, format!("{} tracks", ranking.len()));
    let mut write_table = |path: PathBuf, table: &train::ItemTable| -> Result<()> {
        train::write_item_table(&path, table)?;
        let mean =
            table.iter().map(|r| r.1.len()).sum::<usize>() as f64 / table.len().max(1) as f64;
        let contents = format!("{} tracks, {mean:.1} neighbours on average", table.len());
        trained.wrote(path, contents);
        Ok(())
    };
    if matches!(options.model, ModelKind::Colisten | ModelKind::All) {
        let spinner = progress::spinner("co-listening");
        let params = colisten::Params {
            neighbours: options.neighbours,
            alpha: options.alpha,
            min_evidence: options.min_evidence,
            window: options.window.max(1),
            threads,
            ..colisten::Params::default()
        };
        let table = colisten::build(data, &pop, params);
        spinner.finish_and_clear();
        write_table(options.out.join(train::ITEM2ITEM), &table)?;
    }
    if matches!(options.model, ModelKind::Als | ModelKind::All) {
        let params = als::Params {
            factors: options.factors,
            iterations: options.iterations,
            regularization: options.regularization,
            alpha: options.confidence,
            seed: options.seed,
            threads,
        };
        let bar = progress::bar(Unit::Steps, 2 * options.iterations as u64, "ALS half-steps");
        let model = als::fit(data, &pop.vocab, params, &bar);
        bar.finish_and_clear();
        let bar = progress::bar(Unit::Steps, pop.vocab.len() as u64, "ALS neighbours");
        let table = als::item_table(
            &model.item_factors,
            &pop.vocab,
            options.neighbours,
            threads,
            &bar,
        );
        bar.finish_and_clear();
        write_table(options.out.join(train::ITEM2ITEM_ALS), &table)?;
    }
    if let Some(catalog) = embedding_catalog(options)? {
        let bar = progress::bar(Unit::Steps, 1, "embedding epochs");
        let neighbours = item2vec::NeighbourLists {
            count: options.neighbours,
            per_artist: options.per_artist,
        };
        let embedding = match options.objective {
            Objective::Sessions => {
                let defaults = session_factors::Params::default();
                let params = session_factors::Params {
                    dim: options.dim.max(1),
                    epochs: options.epochs.unwrap_or(defaults.epochs).max(1),
                    drift: options.drift,
                    neighbours,
                    seed: options.seed,
                    threads,
                    ..defaults
                };
                session_factors::fit(data, &catalog, params, &bar)
            }
            Objective::Item2vec => {
                let defaults = item2vec::Params::default();
                let params = item2vec::Params {
                    dim: options.dim.max(1),
                    epochs: options.epochs.unwrap_or(defaults.epochs).max(1),
                    window: options.window.max(1),
                    same_artist_pairs: options.same_artist_pairs,
                    neighbours,
                    seed: options.seed,
                    threads,
                    ..defaults
                };
                item2vec::fit(data, &catalog, params, &bar)
            }
        };
        bar.finish_and_clear();
        if !embedding.is_finite() {
            bail!(
                "the embedding's training diverged (vectors that are not finite numbers); \
                 nothing of it was written: train again with a lower --drift or fewer --epochs"
            );
        }
        let path = options.out.join(train::EMBEDDING);
        train::write_embedding(&path, &embedding)?;
        let contents = format!(
            "{} tracks, {} dimensions",
            embedding.tracks(),
            embedding.dim
        );
        trained.wrote(path, contents);
        let path = options.out.join(train::LISTEN_CURVE);
        match listen_curve::fit(data, &catalog, &embedding) {
            Some(curve) => {
                train::write_listen_curve(&path, &curve)?;
                let contents = format!(
                    "half-way at cosine {:.2}, sharpness {}, artist discount {:.2}",
                    curve.bias, curve.sharpness, curve.discount
                );
                trained.wrote(path, contents);
            }
            None => {
                // A curve fitted to the vectors just replaced would be stale.
                if path.is_file() {
                    std::fs::remove_file(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))?;
                }
                trained.notes.warn(format!(
                    "too few recommended listens to fit {}; session_interest keeps its prior",
                    train::LISTEN_CURVE
                ));
            }
        }
    }
    if matches!(options.model, ModelKind::SessionKnn | ModelKind::All) {
        let kept =
            recent_sessions::select(data, options.keep_sessions, botify::models::LIKED.into());
        let path = options.out.join(train::SESSIONS);
        train::write_sessions(&path, &kept)?;
        trained.wrote(path, format!("{} sessions", kept.len()));
    }
    Ok(trained)
}

/// The catalog the embedding needs, whenever the embedding is asked for
/// (alone or under `--model all`): a script that asked for every model must
/// not silently serve without one.
fn embedding_catalog(options: &Options) -> Result<Option<Catalog>> {
    if !matches!(options.model, ModelKind::Embedding | ModelKind::All) {
        return Ok(None);
    }
    let catalog = Catalog::load(&options.catalog).with_context(|| {
        format!(
            "--model {} includes the embedding, which needs the catalog for its artist and \
             genre tokens; pass --catalog FILE (botify's tracks.jsonl), or choose the models \
             to train with --model",
            options
                .model
                .to_possible_value()
                .map_or_else(String::new, |v| v.get_name().to_string())
        )
    })?;
    Ok(Some(catalog))
}
