//! Offline next-track evaluation of trained tables on held-out sessions.
//!
//! Protocol, mirroring how botify serves: at each position of a held-out
//! session the model sees the track just played (`a`) and proposes its list —
//! an item-to-item table its row for `a`, popularity its global top — minus
//! the tracks already heard in the session (botify never repeats one), cut at
//! k. The query counts when the listener then played the next track for at
//! least `liked` of its length; that track is the one relevant item. Per query,
//! with a hit at rank r (1-based): precision@k = 1/k, recall@k = 1,
//! F1@k = 2/(k + 1), NDCG@k = 1/log2(r + 1); all 0 without a hit. Reported
//! numbers are means over queries, plus `coverage`: the share of queries for
//! which the model had any candidate (an i2i table has no row for unseen tracks).
//!
//! The logs' next tracks were chosen by the recommender that produced them,
//! so absolute numbers favour models resembling it; compare models on the
//! same logs rather than reading the numbers alone.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::logs::Record;
use crate::output::{self, Table, Tone};
use crate::sessions::Session;
use crate::train::{self, ITEM2ITEM, ITEM2ITEM_ALS, TOP_TRACKS};

/// A model as botify would serve it.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Global ranking, most popular first.
    Popularity(Vec<u32>),
    /// Per-track neighbours, best first.
    ItemToItem(HashMap<u32, Vec<u32>>),
}

impl Model {
    /// Up to `k` candidates after `track`, skipping `heard`.
    fn candidates(&self, track: u32, heard: &[u32], k: usize, out: &mut Vec<u32>) {
        out.clear();
        let list = match self {
            Model::Popularity(top) => top.as_slice(),
            Model::ItemToItem(table) => table.get(&track).map_or(&[][..], |v| v.as_slice()),
        };
        out.extend(list.iter().filter(|t| !heard.contains(t)).take(k));
    }
}

/// A model file found in the models folder.
#[derive(Debug, Clone)]
pub struct NamedModel {
    /// `popularity` for `top_tracks.json`; the file stem for item-to-item
    /// tables (`item2item`, `item2item_als`, …), the name botify knows them by.
    pub name: String,
    pub model: Model,
}

/// Loads the model files in `dir` the way botify does: `top_tracks.json` and
/// every `item2item*.jsonl` table (by name order).
pub fn load_models(dir: &Path) -> Result<Vec<NamedModel>> {
    let mut models = Vec::new();
    let top = dir.join(TOP_TRACKS);
    if top.is_file() {
        models.push(NamedModel {
            name: "popularity".to_string(),
            model: Model::Popularity(train::read_top_tracks(&top)?),
        });
    }
    let entries = fs::read_dir(dir).with_context(|| {
        format!(
            "cannot list models folder {}: check the --models path",
            dir.display()
        )
    })?;
    let mut tables: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list models folder {}", dir.display()))?
            .path();
        let stem = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"));
        if let Some(stem) = stem.filter(|s| s.starts_with("item2item")) {
            tables.push((stem.to_string(), path));
        }
    }
    tables.sort();
    for (name, path) in tables {
        models.push(NamedModel {
            name,
            model: Model::ItemToItem(train::read_item_table(&path)?),
        });
    }
    if models.is_empty() {
        bail!(
            "no model files in {}: expected {TOP_TRACKS}, {ITEM2ITEM} or {ITEM2ITEM_ALS}; \
             create them with `analysis train --out {}`",
            dir.display(),
            dir.display()
        );
    }
    Ok(models)
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

/// Scores `models` on the next-track queries of `sessions`.
pub fn evaluate(
    records: &[Record],
    sessions: &[Session],
    models: &[NamedModel],
    ks: &[usize],
    liked: f64,
) -> Vec<EvalRow> {
    let max_k = ks.iter().copied().max().unwrap_or(0);
    let mut rows = Vec::new();
    let mut heard = Vec::new();
    let mut list = Vec::new();
    for named in models {
        let mut queries = 0u64;
        let mut covered = 0u64;
        // Per k: sums of precision, recall, F1, NDCG.
        let mut sums = vec![[0.0f64; 4]; ks.len()];
        for session in sessions {
            let events = session.events(records);
            heard.clear();
            for pair in events.windows(2) {
                let (now, next) = (&pair[0], &pair[1]);
                heard.push(now.track);
                if next.time < liked {
                    continue;
                }
                queries += 1;
                named.model.candidates(now.track, &heard, max_k, &mut list);
                covered += !list.is_empty() as u64;
                let Some(rank) = list.iter().position(|&t| t == next.track) else {
                    continue;
                };
                for (sum, &k) in sums.iter_mut().zip(ks) {
                    if rank < k {
                        let precision = 1.0 / k as f64;
                        sum[0] += precision;
                        sum[1] += 1.0;
                        sum[2] += 2.0 * precision / (precision + 1.0);
                        sum[3] += 1.0 / ((rank + 2) as f64).log2();
                    }
                }
            }
        }
        let q = queries.max(1) as f64;
        for (sum, &k) in sums.iter().zip(ks) {
            rows.push(EvalRow {
                model: named.name.clone(),
                k,
                queries,
                coverage: covered as f64 / q,
                precision: sum[0] / q,
                recall: sum[1] / q,
                f1: sum[2] / q,
                ndcg: sum[3] / q,
            });
        }
    }
    rows
}

/// The rows as a table; the best NDCG at each k is highlighted.
pub fn to_table(rows: &[EvalRow]) -> Table {
    let mut t = Table::new(&[
        "model",
        "k",
        "queries",
        "coverage",
        "precision",
        "recall",
        "f1",
        "ndcg",
    ]);
    for row in rows {
        let mut same_k = rows.iter().filter(|r| r.k == row.k);
        let best =
            row.ndcg > 0.0 && same_k.clone().count() > 1 && same_k.all(|r| r.ndcg <= row.ndcg);
        let tone = if best { Tone::Good } else { Tone::Plain };
        t.push(
            vec![
                row.model.clone(),
                row.k.to_string(),
                row.queries.to_string(),
                output::num(row.coverage, 4),
                output::num(row.precision, 4),
                output::num(row.recall, 4),
                output::num(row.f1, 4),
                output::num(row.ndcg, 4),
            ],
            tone,
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions;

    #[test]
    fn scores_hits_by_rank_and_skips_heard_tracks() {
        // One session 1 → 2 (liked) → 3 (skipped, not a query) → 4 (liked).
        let tracks = [(1, 1.0), (2, 0.9), (3, 0.1), (4, 0.6)];
        let mut records: Vec<Record> = tracks
            .iter()
            .enumerate()
            .map(|(i, &(t, time))| {
                let next = tracks.get(i + 1).map(|x| x.0);
                Record::new(7, i as u64, t, time, 0.001, next, 0, next.is_none())
            })
            .collect();
        sessions::sort(&mut records);
        let (sessions, _) = sessions::sessionize(&records);
        let table = HashMap::from([
            (1, vec![9, 2]),    // query 1 → 2: hit at rank 2
            (3, vec![1, 2, 4]), // query 3 → 4: 1 and 2 were heard, so 4 is rank 1
        ]);
        let models = [NamedModel {
            name: "item2item".to_string(),
            model: Model::ItemToItem(table),
        }];
        let rows = evaluate(&records, &sessions, &models, &[1, 2], 0.5);
        let (at1, at2) = (&rows[0], &rows[1]);
        assert_eq!((at1.queries, at1.coverage), (2, 1.0));
        // k = 1: only the second query hits.
        assert_eq!((at1.precision, at1.recall, at1.ndcg), (0.5, 0.5, 0.5));
        assert!((at1.f1 - 0.5).abs() < 1e-12);
        // k = 2: both hit; precision 1/2 each; NDCG (1/log2(3) + 1) / 2.
        assert_eq!((at2.precision, at2.recall), (0.5, 1.0));
        assert!((at2.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((at2.ndcg - (1.0 / 3f64.log2() + 1.0) / 2.0).abs() < 1e-12);
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

    #[test]
    fn load_models_names_the_expected_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_models(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(TOP_TRACKS) && err.contains("analysis train"),
            "{err}"
        );
        train::write_top_tracks(&dir.path().join(TOP_TRACKS), &[3, 1]).unwrap();
        train::write_item_table(&dir.path().join("item2item_x.jsonl"), &vec![(1, vec![2])])
            .unwrap();
        train::write_item_table(&dir.path().join(ITEM2ITEM), &vec![(1, vec![3])]).unwrap();
        fs::write(dir.path().join("notes.jsonl"), "not a table").unwrap();
        let models = load_models(dir.path()).unwrap();
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["popularity", "item2item", "item2item_x"]);
        assert_eq!(models[0].model, Model::Popularity(vec![3, 1]));
    }
}
