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
///
/// Summed in eight independent lanes: a single running sum is one long
/// chain of dependent additions, which the compiler may not reorder for
/// floats, while eight lanes map onto SIMD registers. `session_interest`
/// takes a few hundred of these per request.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut lanes = [0.0f32; LANES];
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::dot;

    #[test]
    fn dot_is_the_inner_product_at_every_length() {
        for n in [0, 1, 3, 8, 13, 32, 64] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 / (i as f32 + 1.0)).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "length {n}");
        }
    }
}
