//! Learned track vectors with their nearest-neighbour index
//! (`embedding.jsonl`, written by `analysis train --model embedding`).
//!
//! The index is a k-nearest-neighbour graph computed at training time: each
//! track lists its most similar tracks. Serving then never scans the
//! catalog — a request scores only the graph neighbours of a few session
//! tracks against its query vector — which keeps `/next` within a few
//! microseconds of the table-based recommenders.

use serde::Deserialize;

use crate::catalog::TrackId;

/// One line of `embedding.jsonl`.
#[derive(Deserialize)]
pub(super) struct EmbeddingLine {
    pub track: TrackId,
    pub vector: Vec<f32>,
    #[serde(default)]
    pub neighbours: Vec<TrackId>,
}

/// Track vectors (all of one dimension) and each track's nearest tracks.
#[derive(Debug, Clone, Default)]
pub struct EmbeddingIndex {
    dim: usize,
    /// Row `t` is track `t`'s vector; rows of tracks without one are zero.
    vectors: Vec<f32>,
    known: Vec<bool>,
    neighbours: Vec<Box<[TrackId]>>,
}

impl EmbeddingIndex {
    /// Builds the index; `Err` names the first line whose vector's length
    /// differs from the first line's.
    pub(super) fn from_lines(lines: Vec<EmbeddingLine>) -> Result<EmbeddingIndex, String> {
        let dim = lines.first().map_or(0, |l| l.vector.len());
        let rows = lines
            .iter()
            .map(|l| l.track as usize + 1)
            .max()
            .unwrap_or(0);
        let mut index = EmbeddingIndex {
            dim,
            vectors: vec![0.0; rows * dim],
            known: vec![false; rows],
            neighbours: vec![Box::default(); rows],
        };
        for line in lines {
            if line.vector.len() != dim {
                return Err(format!(
                    "track {} has a vector of {} numbers, the first line {dim}; \
                     expected one dimension for every track",
                    line.track,
                    line.vector.len()
                ));
            }
            let t = line.track as usize;
            index.vectors[t * dim..(t + 1) * dim].copy_from_slice(&line.vector);
            index.known[t] = true;
            index.neighbours[t] = line.neighbours.into_boxed_slice();
        }
        Ok(index)
    }

    /// An index of `(track, vector, neighbours)` rows, as `embedding.jsonl`
    /// lines would give it (for tests).
    #[cfg(test)]
    pub(crate) fn from_rows(rows: &[(TrackId, &[f32], &[TrackId])]) -> EmbeddingIndex {
        let lines = rows
            .iter()
            .map(|&(track, vector, neighbours)| EmbeddingLine {
                track,
                vector: vector.to_vec(),
                neighbours: neighbours.to_vec(),
            })
            .collect();
        EmbeddingIndex::from_lines(lines).expect("one dimension for every row")
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Tracks that have a vector.
    pub fn len(&self) -> usize {
        self.known.iter().filter(|&&k| k).count()
    }

    pub fn is_empty(&self) -> bool {
        self.dim == 0
    }

    pub fn vector(&self, track: TrackId) -> Option<&[f32]> {
        let t = track as usize;
        (self.known.get(t) == Some(&true)).then(|| &self.vectors[t * self.dim..(t + 1) * self.dim])
    }

    /// The most similar tracks to `track`, best first.
    pub fn neighbours(&self, track: TrackId) -> &[TrackId] {
        self.neighbours.get(track as usize).map_or(&[], |n| n)
    }
}

/// Inner product of two vectors of one dimension.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
