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
    /// Row `t` is track `t`'s vector in bfloat16; rows of tracks without
    /// one are zero.
    ///
    /// Why bfloat16: a request reads a few hundred random rows, and at 32
    /// dimensions a row of floats spans two or three cache lines, one of
    /// bfloat16s one or two; serving waits on those reads more than it
    /// computes. Three significant digits per coordinate move a cosine by
    /// about 0.001, far below the differences the listen curve acts on.
    vectors: Vec<u16>,
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
            vectors: vec![0; rows * dim],
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
            for (stored, &x) in index.vectors[t * dim..(t + 1) * dim]
                .iter_mut()
                .zip(&line.vector)
            {
                *stored = bf16_bits(x);
            }
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

    pub fn vector(&self, track: TrackId) -> Option<Vector<'_>> {
        self.has_vector(track).then(|| self.row(track))
    }

    pub fn has_vector(&self, track: TrackId) -> bool {
        self.known.get(track as usize) == Some(&true)
    }

    /// The vector of a track that [`has_vector`](Self::has_vector)
    /// (panics on one beyond the index).
    pub fn row(&self, track: TrackId) -> Vector<'_> {
        let t = track as usize;
        Vector(&self.vectors[t * self.dim..(t + 1) * self.dim])
    }

    /// The most similar tracks to `track`, best first.
    pub fn neighbours(&self, track: TrackId) -> &[TrackId] {
        self.neighbours.get(track as usize).map_or(&[], |n| n)
    }
}

/// A track's vector as the index stores it (bfloat16).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vector<'a>(&'a [u16]);

impl Vector<'_> {
    /// The inner product with `query`, of the same dimension.
    #[inline]
    pub fn dot(self, query: &[f32]) -> f32 {
        lane_dot(query, self.0, f32_of_bf16)
    }

    /// Adds `weight` times this vector to `sum`.
    pub fn add_to(self, sum: &mut [f32], weight: f32) {
        for (s, &v) in sum.iter_mut().zip(self.0) {
            *s += weight * f32_of_bf16(v);
        }
    }

    pub fn to_vec(self) -> Vec<f32> {
        self.0.iter().map(|&v| f32_of_bf16(v)).collect()
    }
}

/// `x` rounded to the nearest bfloat16 (ties to even): the upper half of
/// its bits. Vectors are finite, so no NaN case.
fn bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

fn f32_of_bf16(v: u16) -> f32 {
    f32::from_bits(u32::from(v) << 16)
}

/// Inner product of two vectors of one dimension.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    lane_dot(a, b, |y| y)
}

/// `Σ a[i] · widen(b[i])`, summed in eight independent lanes: a single
/// running sum is one long chain of dependent additions, which the compiler
/// may not reorder for floats, while eight lanes map onto SIMD registers.
/// `session_interest` takes a few hundred of these per request.
#[inline]
fn lane_dot<T: Copy>(a: &[f32], b: &[T], widen: impl Fn(T) -> f32) -> f32 {
    const LANES: usize = 8;
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, &y)| x * widen(y))
        .sum();
    let mut lanes = [0.0f32; LANES];
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((lane, x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * widen(y);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_keep_three_significant_digits_and_score_as_floats_would() {
        let query: Vec<f32> = (0..13).map(|i| (i as f32 * 0.37).sin()).collect();
        let exact: Vec<f32> = (0..13).map(|i| (i as f32 * 0.71).cos() / 3.0).collect();
        let stored: Vec<u16> = exact.iter().map(|&x| bf16_bits(x)).collect();
        let vector = Vector(&stored);
        for (kept, x) in vector.to_vec().iter().zip(&exact) {
            assert!((kept - x).abs() <= x.abs() / 256.0, "{kept} against {x}");
        }
        assert!((vector.dot(&query) - dot(&query, &exact)).abs() < 0.01);
        let mut sum = vec![1.0; 13];
        vector.add_to(&mut sum, 2.0);
        assert!((sum[0] - (1.0 + 2.0 / 3.0)).abs() < 0.01);
        // Exactly representable values stay exact; halves round to even.
        assert_eq!(f32_of_bf16(bf16_bits(0.75)), 0.75);
        assert_eq!(bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82);
    }

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
