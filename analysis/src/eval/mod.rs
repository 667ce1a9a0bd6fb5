//! Offline next-track evaluation on held-out sessions: of the trained tables
//! botify loads, and of botify's recommenders themselves, run by the very
//! code that serves traffic.
//!
//! Protocol, mirroring how botify serves: at each position of a held-out
//! session the model sees the track just played (`a`) and proposes its list,
//! minus the tracks already heard in the session (botify never repeats one),
//! cut at k:
//! - an item-to-item table: its row for `a`; popularity: its global top;
//! - a recommender ([`Model::Recommender`], built by
//!   `botify::recommenders::build` from its experiment name): its successive
//!   choices. It is given the [`UserState`] botify's state store would hold —
//!   the session's listens (track, listened fraction) up to and including
//!   `a`, the last [`MAX_SESSION_LISTENS`] of them, no long-term profile — and
//!   `recommend` is called up to k times, each pick joining the heard tracks
//!   [`Allowed`] excludes, so rank r is what it would have served had the
//!   first r − 1 picks been turned down; a `None` ends the list. Its random
//!   choices come from a `SmallRng` seeded per query from
//!   [`Options::seed`] and the query's index, so results do not depend on
//!   the number of threads. Tracks missing from the catalog are ones botify
//!   refuses: they never enter the state, and a query after one gets no list.
//!
//! The query counts when the listener then played the next track for at
//! least `liked` of its length; that track is the one relevant item. Per
//! query, with a hit at rank r (1-based): precision@k = 1/k, recall@k = 1,
//! F1@k = 2/(k + 1), NDCG@k = 1/log2(r + 1); all 0 without a hit. Reported
//! numbers are means over queries, plus `coverage`: the share of queries for
//! which the model had any candidate (an i2i table has no row for unseen
//! tracks).
//!
//! Tables are scored on every query. A recommender costs up to k calls per
//! query, so it is scored on the first [`Options::max_queries`] queries in
//! session order only (its rows' `queries` says how many).
//!
//! The logs' next tracks were chosen by the recommender that produced them,
//! so absolute numbers favour models resembling it; compare models on the
//! same logs rather than reading the numbers alone.
//!
//! Layout: `tables.rs` loads the trained tables and gives their lists,
//! `recommenders.rs` builds botify's recommenders and runs them as lists,
//! `model.rs` holds the types both share; this module scores any of them.
//! `counterfactual.rs` is the other score of `analysis eval`: each arm's
//! off-policy value on the held-out logs, from `analysis ope`'s estimates.
//!
//! [`UserState`]: botify::state::UserState
//! [`MAX_SESSION_LISTENS`]: botify::state::MAX_SESSION_LISTENS
//! [`Allowed`]: botify::recommenders::Allowed

pub mod counterfactual;
mod model;
mod recommenders;
mod tables;

#[cfg(test)]
mod fixtures;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::Serialize;

use crate::logs::Record;
use crate::output::{self, Column, Table, Tone};
use crate::sessions::Session;
use tally::parallel::fan_out;
use tally::progress::{self, Unit};

pub use counterfactual::CounterfactualRow;
pub use model::{Model, NamedModel, Served};
pub use recommenders::{
    load_recommenders, recommender, recommender_names, tracks_outside, DEFAULT_RECOMMENDERS,
};
pub use tables::{load_models, load_tables};

/// Next-track queries in `sessions`: positions whose next track was liked.
pub fn count_queries(records: &[Record], sessions: &[Session], liked: f64) -> u64 {
    sessions
        .iter()
        .map(|s| {
            let events = s.events(records);
            events.iter().skip(1).filter(|e| e.time >= liked).count() as u64
        })
        .sum()
}

/// One model at one cut-off.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalRow {
    pub model: String,
    pub k: usize,
    pub queries: u64,
    pub coverage: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub ndcg: f64,
}

/// How [`evaluate`] runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// A next track is relevant when listened at least this fraction.
    pub liked: f64,
    /// Most queries a recommender is scored on: the first ones in session
    /// order (tables are scored on all).
    pub max_queries: u64,
    /// Seed of the recommenders' random choices.
    pub seed: u64,
    /// Worker threads for the recommenders.
    pub threads: usize,
    /// Show a progress bar per recommender (on a terminal).
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            liked: 0.5,
            max_queries: 20_000,
            seed: 42,
            threads: 1,
            progress: false,
        }
    }
}

/// Running sums of one model's metrics.
struct Scores {
    queries: u64,
    covered: u64,
    /// Per k: sums of precision, recall, F1, NDCG.
    sums: Vec<[f64; 4]>,
}

impl Scores {
    fn new(ks: &[usize]) -> Scores {
        Scores {
            queries: 0,
            covered: 0,
            sums: vec![[0.0; 4]; ks.len()],
        }
    }

    /// One query: whether the model had a candidate, and the 0-based rank
    /// of the next track in its list.
    fn add(&mut self, ks: &[usize], covered: bool, rank: Option<usize>) {
        self.queries += 1;
        self.covered += covered as u64;
        let Some(rank) = rank else { return };
        for (sum, &k) in self.sums.iter_mut().zip(ks) {
            if rank < k {
                let precision = 1.0 / k as f64;
                sum[0] += precision;
                sum[1] += 1.0;
                sum[2] += 2.0 * precision / (precision + 1.0);
                sum[3] += 1.0 / ((rank + 2) as f64).log2();
            }
        }
    }

    fn rows(&self, name: &str, ks: &[usize], rows: &mut Vec<EvalRow>) {
        let q = self.queries.max(1) as f64;
        for (sum, &k) in self.sums.iter().zip(ks) {
            rows.push(EvalRow {
                model: name.to_string(),
                k,
                queries: self.queries,
                coverage: self.covered as f64 / q,
                precision: sum[0] / q,
                recall: sum[1] / q,
                f1: sum[2] / q,
                ndcg: sum[3] / q,
            });
        }
    }
}

/// Scores `models` on the next-track queries of `sessions`: rows per model
/// (in the order given), per k.
pub fn evaluate(
    records: &[Record],
    sessions: &[Session],
    models: &[NamedModel],
    ks: &[usize],
    options: &Options,
) -> Vec<EvalRow> {
    let max_k = ks.iter().copied().max().unwrap_or(0);
    let mut rows = Vec::new();
    let mut queries: Option<Vec<Query>> = None;
    for named in models {
        let scores = match &named.model {
            Model::Recommender(served) => {
                let queries = queries.get_or_insert_with(|| {
                    first_queries(records, sessions, options.liked, options.max_queries)
                });
                score_recommender(
                    served,
                    &named.name,
                    records,
                    sessions,
                    queries,
                    ks,
                    max_k,
                    options,
                )
            }
            table => score_table(table, records, sessions, ks, max_k, options.liked),
        };
        scores.rows(&named.name, ks, &mut rows);
    }
    rows
}

fn score_table(
    model: &Model,
    records: &[Record],
    sessions: &[Session],
    ks: &[usize],
    max_k: usize,
    liked: f64,
) -> Scores {
    let mut scores = Scores::new(ks);
    let mut heard = Vec::new();
    let mut list = Vec::new();
    for session in sessions {
        let events = session.events(records);
        heard.clear();
        for pair in events.windows(2) {
            let (now, next) = (&pair[0], &pair[1]);
            heard.push(now.track);
            if next.time < liked {
                continue;
            }
            model.candidates(now.track, &heard, max_k, &mut list);
            let rank = list.iter().position(|&t| t == next.track);
            scores.add(ks, !list.is_empty(), rank);
        }
    }
    scores
}

/// A query: a session (its index) and the position of the track just played.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Query {
    session: u32,
    at: u32,
}

/// The first `max` queries, in session order.
fn first_queries(records: &[Record], sessions: &[Session], liked: f64, max: u64) -> Vec<Query> {
    let mut queries = Vec::new();
    'sessions: for (index, session) in sessions.iter().enumerate() {
        let events = session.events(records);
        for at in 0..events.len().saturating_sub(1) {
            if queries.len() as u64 >= max {
                break 'sessions;
            }
            if events[at + 1].time >= liked {
                queries.push(Query {
                    session: index as u32,
                    at: at as u32,
                });
            }
        }
    }
    queries
}

/// The recommender's (covered, rank) per query, computed in parallel, each
/// query with its own seeded generator, then summed in query order: the
/// result does not depend on `options.threads`.
#[allow(clippy::too_many_arguments)]
fn score_recommender(
    served: &Served,
    name: &str,
    records: &[Record],
    sessions: &[Session],
    queries: &[Query],
    ks: &[usize],
    max_k: usize,
    options: &Options,
) -> Scores {
    let bar = progress::bar_if(
        options.progress,
        Unit::Steps,
        queries.len() as u64,
        name.to_string(),
    );
    let threads = options.threads.max(1);
    let chunk = queries.len().div_ceil(threads).max(1);
    let outcomes: Vec<(bool, Option<usize>)> =
        fan_out(queries.chunks(chunk).enumerate(), |(c, part)| {
            let mut list = Vec::with_capacity(max_k);
            let mut out = Vec::with_capacity(part.len());
            for (i, query) in part.iter().enumerate() {
                let index = (c * chunk + i) as u64;
                let mut rng = SmallRng::seed_from_u64(query_seed(options.seed, index));
                let session = &sessions[query.session as usize];
                let events = session.events(records);
                let at = query.at as usize;
                served.recommend_list(session.user, events, at, max_k, &mut rng, &mut list);
                let next = events[at + 1].track;
                out.push((!list.is_empty(), list.iter().position(|&t| t == next)));
                bar.inc(1);
            }
            out
        })
        .into_iter()
        .flatten()
        .collect();
    bar.finish_and_clear();
    let mut scores = Scores::new(ks);
    for (covered, rank) in outcomes {
        scores.add(ks, covered, rank);
    }
    scores
}

/// The seed of query `index`'s generator.
fn query_seed(seed: u64, index: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index
}
/// The rows as a table; the best NDCG at each k is highlighted.
pub fn to_table(rows: &[EvalRow]) -> Table {
    let columns: [Column<EvalRow>; 8] = [
        ("model", |r| r.model.clone()),
        ("k", |r| r.k.to_string()),
        ("queries", |r| r.queries.to_string()),
        ("coverage", |r| output::num(r.coverage, 4)),
        ("precision", |r| output::num(r.precision, 4)),
        ("recall", |r| output::num(r.recall, 4)),
        ("f1", |r| output::num(r.f1, 4)),
        ("ndcg", |r| output::num(r.ndcg, 4)),
    ];
    Table::of(&columns, rows, |row| {
        let mut same_k = rows.iter().filter(|r| r.k == row.k);
        let best =
            row.ndcg > 0.0 && same_k.clone().count() > 1 && same_k.all(|r| r.ndcg <= row.ndcg);
        if best {
            Tone::Good
        } else {
            Tone::Plain
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::fixtures::{list, logs, served};
    use super::*;

    #[test]
    fn scores_hits_by_rank_and_skips_heard_tracks() {
        // One session 1 → 2 (liked) → 3 (skipped, not a query) → 4 (liked).
        let (records, sessions) = logs(&[vec![(1, 1.0), (2, 0.9), (3, 0.1), (4, 0.6)]]);
        let table = HashMap::from([
            (1, vec![9, 2]),    // query 1 → 2: hit at rank 2
            (3, vec![1, 2, 4]), // query 3 → 4: 1 and 2 were heard, so 4 is rank 1
        ]);
        let models = [NamedModel {
            name: "item2item".to_string(),
            model: Model::ItemToItem(table),
        }];
        let rows = evaluate(&records, &sessions, &models, &[1, 2], &Options::default());
        let (at1, at2) = (&rows[0], &rows[1]);
        assert_eq!((at1.queries, at1.coverage), (2, 1.0));
        assert_eq!(count_queries(&records, &sessions, 0.5), 2);
        // k = 1: only the second query hits.
        assert_eq!((at1.precision, at1.recall, at1.ndcg), (0.5, 0.5, 0.5));
        assert!((at1.f1 - 0.5).abs() < 1e-12);
        // k = 2: both hit; precision 1/2 each; NDCG (1/log2(3) + 1) / 2.
        assert_eq!((at2.precision, at2.recall), (0.5, 1.0));
        assert!((at2.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((at2.ndcg - (1.0 / 3f64.log2() + 1.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn sticky_artist_hits_the_same_artist_at_rank_one_and_stops_when_exhausted() {
        // 0 (A) → 1 (A) → 2 (B) → 5 (C): three queries, every next track liked.
        let (records, sessions) = logs(&[vec![(0, 1.0), (1, 0.9), (2, 0.8), (5, 0.7)]]);
        let sticky = served("sticky_artist");
        // After 0 the only unheard A track is 1: 0 itself is in the state.
        assert_eq!(list(&sticky, &records, &sessions, 0), [1]);
        // After 0, 1 artist A is exhausted: the first `None` ends the list.
        assert!(list(&sticky, &records, &sessions, 1).is_empty());
        // After 2: the rest of B, each once, never a heard track.
        let mut rest = list(&sticky, &records, &sessions, 2);
        rest.sort_unstable();
        assert_eq!(rest, [3, 4]);

        let popularity = NamedModel {
            name: "popularity".into(),
            model: Model::Popularity(vec![4, 5]),
        };
        let models = [popularity, sticky];
        let rows = evaluate(&records, &sessions, &models, &[1, 3], &Options::default());
        let names: Vec<(&str, usize)> = rows.iter().map(|r| (r.model.as_str(), r.k)).collect();
        assert_eq!(
            names,
            [
                ("popularity", 1),
                ("popularity", 3),
                ("sticky_artist", 1),
                ("sticky_artist", 3)
            ]
        );
        let at1 = &rows[2];
        assert_eq!(at1.queries, 3);
        assert!((at1.coverage - 2.0 / 3.0).abs() < 1e-12, "{at1:?}");
        assert!((at1.ndcg - 1.0 / 3.0).abs() < 1e-12, "{at1:?}");
        assert!((at1.recall - 1.0 / 3.0).abs() < 1e-12, "{at1:?}");
        // Popularity hits only 5, at rank 2: sticky_artist is best at both k.
        assert_eq!(rows[0].ndcg, 0.0);
        assert!((rows[1].ndcg - 1.0 / 3.0 / 3f64.log2()).abs() < 1e-12);
        let tones: Vec<Tone> = to_table(&rows).rows.iter().map(|r| r.1).collect();
        assert_eq!(tones, [Tone::Plain, Tone::Plain, Tone::Good, Tone::Good]);
    }

    #[test]
    fn recommenders_see_the_whole_session_so_far() {
        // 0 liked, then 3 skipped: `embedding` (no trained index) anchors on
        // the latest like, 0, and proposes its artist's 1 first; `contextual`
        // only looks at 3, and ranks 1 third.
        let (records, sessions) = logs(&[vec![(0, 1.0), (3, 0.1), (1, 0.9), (5, 1.0)]]);
        let embedding = served("embedding");
        assert_eq!(list(&embedding, &records, &sessions, 1).first(), Some(&1));
        let contextual = served("contextual");
        assert_eq!(list(&contextual, &records, &sessions, 1), [2, 4, 1]);
        let rows = evaluate(
            &records,
            &sessions,
            &[embedding, contextual],
            &[1],
            &Options::default(),
        );
        // Queries: 3 → 1 and 1 → 5 (0 → 3 was skipped).
        assert_eq!((rows[0].queries, rows[1].queries), (2, 2));
        assert!(
            rows[0].ndcg >= 0.5 && rows[1].ndcg < rows[0].ndcg,
            "{rows:?}"
        );
    }

    #[test]
    fn recommenders_get_the_first_max_queries_reproducibly_on_any_threads() {
        // 40 sessions of 6 listens over the catalog, all liked: 5 queries each.
        let sessions: Vec<Vec<(u32, f64)>> = (0..40u32)
            .map(|u| (0..6).map(|i| ((u + i * 5) % 6, 1.0)).collect())
            .collect();
        let (records, sessions) = logs(&sessions);
        let models = [
            NamedModel {
                name: "popularity".into(),
                model: Model::Popularity(vec![3, 1, 5, 2, 4, 0]),
            },
            served("random"),
            served("sticky_artist"),
        ];
        let options = Options {
            max_queries: 37,
            ..Options::default()
        };
        let rows = evaluate(&records, &sessions, &models, &[2, 5], &options);
        let queries: Vec<u64> = rows.iter().map(|r| r.queries).collect();
        assert_eq!(queries, [200, 200, 37, 37, 37, 37]);
        // The first 37 in session order: 7 whole sessions, then 2 queries.
        let first = first_queries(&records, &sessions, 0.5, 37);
        assert_eq!(first.len(), 37);
        assert_eq!(first[36], Query { session: 7, at: 1 });
        for threads in [2, 3, 8] {
            let again = evaluate(
                &records,
                &sessions,
                &models,
                &[2, 5],
                &Options { threads, ..options },
            );
            assert_eq!(again, rows, "{threads} threads");
        }
        // Tables ignore --max-queries: same rows as without recommenders.
        let tables = evaluate(&records, &sessions, &models[..1], &[2, 5], &options);
        assert_eq!(tables[..], rows[..2]);
        // `random` over 6 tracks after 1–5 heard (16 draws, then `None`).
        assert!(rows[2].coverage > 0.8 && rows[3].recall > 0.0, "{rows:?}");
    }

    #[test]
    fn table_highlights_the_best_ndcg_at_each_k() {
        let row = |model: &str, k, ndcg| EvalRow {
            model: model.into(),
            k,
            queries: 10,
            coverage: 1.0,
            precision: 0.0,
            recall: 0.0,
            f1: 0.0,
            ndcg,
        };
        let rows = [
            row("popularity", 10, 0.1),
            row("colisten", 10, 0.3),
            row("popularity", 50, 0.0),
            row("colisten", 50, 0.0),
        ];
        let tones: Vec<Tone> = to_table(&rows).rows.iter().map(|r| r.1).collect();
        assert_eq!(tones, [Tone::Plain, Tone::Good, Tone::Plain, Tone::Plain]);
    }
}
