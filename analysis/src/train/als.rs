//! Implicit-feedback ALS (Hu, Koren & Volinsky, "Collaborative Filtering for
//! Implicit Feedback Datasets", 2008) on the user × track matrix of listen time.
//!
//! `r(u, i)` = total listen time of track i by user u over the training
//! sessions. Preference p = 1 where r > 0, confidence c = 1 + alpha · r, and
//! alternating exact least-squares solves (one k × k Cholesky per user and
//! per track) minimise Σ c (p − xᵤ·yᵢ)² + λ (‖x‖² + ‖y‖²). Only observed cells
//! cost work: the all-zero part enters once per half-step through the Gram
//! matrix YᵀY. The item factors then give a second item-to-item table: each
//! track's nearest tracks by cosine similarity.

use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::ProgressBar;
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tally::parallel::fan_out;

use super::{Data, ItemTable, Vocab};

/// Model size and training schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Latent dimensions.
    pub factors: usize,
    /// Alternations (each solves users, then tracks).
    pub iterations: usize,
    /// λ, the L2 penalty.
    pub regularization: f64,
    /// Confidence slope: c = 1 + alpha · listen time.
    pub alpha: f64,
    /// Seed of the random initial factors.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
}

/// Sparse rows: `indices[indptr[r]..indptr[r + 1]]` with their values.
#[derive(Debug, Clone, Default, PartialEq)]
struct Csr {
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f64>,
}

impl Csr {
    fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    fn row(&self, r: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let span = self.indptr[r]..self.indptr[r + 1];
        self.indices[span.clone()]
            .iter()
            .zip(&self.values[span])
            .map(|(&i, &v)| (i as usize, v))
    }

    fn transpose(&self, columns: usize) -> Csr {
        let mut counts = vec![0usize; columns + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for c in 0..columns {
            counts[c + 1] += counts[c];
        }
        let mut next = counts.clone();
        let mut indices = vec![0u32; self.indices.len()];
        let mut values = vec![0.0; self.values.len()];
        for r in 0..self.rows() {
            for (c, v) in self.row(r) {
                indices[next[c]] = r as u32;
                values[next[c]] = v;
                next[c] += 1;
            }
        }
        Csr {
            indptr: counts,
            indices,
            values,
        }
    }
}

/// Trained factors; rows of `item_factors` follow the vocabulary.
#[derive(Debug, Clone)]
pub struct Model {
    pub users: Vec<u64>,
    pub user_factors: Array2<f64>,
    pub item_factors: Array2<f64>,
}

/// User × track listen-time matrix. Sessions come grouped by user, so each
/// user's row is built from one contiguous run of events.
fn matrix(data: Data<'_>, vocab: &Vocab) -> (Vec<u64>, Csr) {
    let mut users = Vec::new();
    let mut csr = Csr {
        indptr: vec![0],
        ..Csr::default()
    };
    let mut row: Vec<(u32, f64)> = Vec::new();
    let flush = |row: &mut Vec<(u32, f64)>, csr: &mut Csr| {
        row.sort_unstable_by_key(|x| x.0);
        for same in row.chunk_by(|x, y| x.0 == y.0) {
            let total: f64 = same.iter().map(|x| x.1).sum();
            if total > 0.0 {
                csr.indices.push(same[0].0);
                csr.values.push(total);
            }
        }
        csr.indptr.push(csr.indices.len());
        row.clear();
    };
    for group in data.sessions.chunk_by(|a, b| a.user == b.user) {
        for session in group {
            for e in session.events(data.records) {
                let item = vocab.index(e.track).expect("vocabulary holds every track");
                row.push((item as u32, e.time));
            }
        }
        users.push(group[0].user);
        flush(&mut row, &mut csr);
    }
    (users, csr)
}

/// Fits the model; `bar` advances once per half-step.
pub fn fit(data: Data<'_>, vocab: &Vocab, params: Params, bar: &ProgressBar) -> Model {
    let (users, by_user) = matrix(data, vocab);
    let by_item = by_user.transpose(vocab.len());
    let k = params.factors.max(1);
    let mut rng = SmallRng::seed_from_u64(params.seed);
    let mut init = |rows: usize| {
        Array2::from_shape_simple_fn((rows, k), || {
            (rng.gen::<f64>() - 0.5) * 0.1 / (k as f64).sqrt()
        })
    };
    let mut user_factors = init(users.len());
    let mut item_factors = init(vocab.len());
    for _ in 0..params.iterations {
        solve(&by_user, &item_factors, &mut user_factors, params);
        bar.inc(1);
        solve(&by_item, &user_factors, &mut item_factors, params);
        bar.inc(1);
    }
    Model {
        users,
        user_factors,
        item_factors,
    }
}

/// One half-step: every row of `out` solved with `fixed` held.
/// xᵤ = (YᵀY + Yᵀ(Cᵤ − I)Y + λI)⁻¹ YᵀCᵤpᵤ. The observed part Yᵀ(Cᵤ − I)Y is
/// one matrix product GᵀG over the gathered rows gᵢ = √(cᵢ − 1)·yᵢ, which
/// the blocked SIMD kernel computes several times faster than rank-one updates.
fn solve(rows: &Csr, fixed: &Array2<f64>, out: &mut Array2<f64>, params: Params) {
    let k = fixed.ncols();
    let gram = fixed.t().dot(fixed);
    let gram = gram.as_standard_layout();
    let gram = gram.as_slice().expect("standard layout");
    let chunk = out.nrows().div_ceil(params.threads.max(1)).max(1);
    fan_out(
        out.axis_chunks_iter_mut(Axis(0), chunk).enumerate(),
        |(c, mut block)| {
            let mut a = vec![0.0; k * k];
            let mut b = vec![0.0; k];
            let mut gathered: Vec<f64> = Vec::new();
            for (r, mut x) in block.rows_mut().into_iter().enumerate() {
                a.copy_from_slice(gram);
                for d in 0..k {
                    a[d * k + d] += params.regularization;
                }
                b.fill(0.0);
                gathered.clear();
                for (item, value) in rows.row(c * chunk + r) {
                    let y = fixed.row(item);
                    let y = y.as_slice().expect("standard layout");
                    let confidence = 1.0 + params.alpha * value;
                    let weight = (confidence - 1.0).sqrt();
                    gathered.extend(y.iter().map(|v| v * weight));
                    for (bi, yi) in b.iter_mut().zip(y) {
                        *bi += confidence * yi;
                    }
                }
                let g =
                    ArrayView2::from_shape((gathered.len() / k, k), &gathered).expect("k columns");
                let mut a_view = ArrayViewMut2::from_shape((k, k), &mut a).expect("k × k");
                general_mat_mul(1.0, &g.t(), &g, 1.0, &mut a_view);
                if !cholesky_solve(&mut a, &mut b, k) {
                    b.fill(0.0);
                }
                for (xi, bi) in x.iter_mut().zip(&b) {
                    *xi = *bi;
                }
            }
        },
    );
}

/// Solves `A x = b` for symmetric positive-definite `A` (row-major k × k, only
/// the lower triangle read); `b` becomes `x`. False if `A` is not positive
/// definite (cannot happen with λ > 0, but never trust floating point).
fn cholesky_solve(a: &mut [f64], b: &mut [f64], k: usize) -> bool {
    for j in 0..k {
        let mut d = a[j * k + j];
        for p in 0..j {
            d -= a[j * k + p] * a[j * k + p];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut sum = a[i * k + j];
            for p in 0..j {
                sum -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = sum / d;
        }
    }
    for i in 0..k {
        let mut sum = b[i];
        for p in 0..i {
            sum -= a[i * k + p] * b[p];
        }
        b[i] = sum / a[i * k + i];
    }
    for i in (0..k).rev() {
        let mut sum = b[i];
        for p in i + 1..k {
            sum -= a[p * k + i] * b[p];
        }
        b[i] = sum / a[i * k + i];
    }
    true
}

/// Each track's `neighbours` most similar tracks by cosine of item factors.
/// Similarities are computed block by block (a block of rows times all
/// factors, one matrix product) so memory stays at block × tracks.
pub fn item_table(
    item_factors: &Array2<f64>,
    vocab: &Vocab,
    neighbours: usize,
    threads: usize,
    bar: &ProgressBar,
) -> ItemTable {
    const BLOCK: usize = 256;
    let mut unit = item_factors.clone();
    for mut row in unit.rows_mut() {
        let norm = row.dot(&row).sqrt();
        if norm > 0.0 {
            row /= norm;
        }
    }
    let n = unit.nrows();
    let blocks = n.div_ceil(BLOCK);
    let next = AtomicUsize::new(0);
    let mut rows: Vec<(usize, Vec<u32>)> = fan_out(0..threads.max(1), |_| {
        let mut out = Vec::new();
        let mut candidates: Vec<(f64, usize)> = Vec::with_capacity(n);
        loop {
            let block = next.fetch_add(1, Ordering::Relaxed);
            if block >= blocks {
                return out;
            }
            let start = block * BLOCK;
            let end = (start + BLOCK).min(n);
            let sims = unit.slice(s![start..end, ..]).dot(&unit.t());
            for (r, sim) in sims.rows().into_iter().enumerate() {
                let i = start + r;
                candidates.clear();
                candidates.extend(
                    sim.iter()
                        .enumerate()
                        .filter(|&(j, &v)| j != i && v > 0.0)
                        .map(|(j, &v)| (v, j)),
                );
                let best =
                    |x: &(f64, usize), y: &(f64, usize)| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1));
                if candidates.len() > neighbours {
                    candidates.select_nth_unstable_by(neighbours, best);
                    candidates.truncate(neighbours);
                }
                candidates.sort_unstable_by(best);
                if !candidates.is_empty() {
                    out.push((i, candidates.iter().map(|c| vocab.ids[c.1]).collect()));
                }
            }
            bar.inc((end - start) as u64);
        }
    })
    .into_iter()
    .flatten()
    .collect();
    rows.sort_unstable_by_key(|r| r.0);
    rows.into_iter()
        .map(|(i, row)| (vocab.ids[i], row))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Record;
    use crate::sessions;

    #[test]
    fn cholesky_solves_a_known_system() {
        // A = [[4, 2], [2, 3]], b = [2, 1] → x = [0.5, 0].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        assert!(cholesky_solve(&mut a, &mut b, 2));
        assert!((b[0] - 0.5).abs() < 1e-12 && b[1].abs() < 1e-12, "{b:?}");
        let mut singular = vec![0.0; 4];
        assert!(!cholesky_solve(&mut singular, &mut [1.0, 1.0], 2));
    }

    #[test]
    fn solve_matches_the_normal_equations() {
        // One user who listened to item 0 (r = 0.5) and item 2 (r = 1.0), three
        // items with k = 2 fixed factors. Dense form, α = 2, λ = 0.1:
        // c = [2, 1, 3], p = [1, 0, 1];
        // A = Yᵀ diag(c) Y + λI, b = Yᵀ diag(c) p.
        let rows = Csr {
            indptr: vec![0, 2],
            indices: vec![0, 2],
            values: vec![0.5, 1.0],
        };
        let y = ndarray::arr2(&[[1.0, 0.0], [0.5, 0.5], [0.0, 2.0]]);
        let params = Params {
            factors: 2,
            iterations: 1,
            regularization: 0.1,
            alpha: 2.0,
            seed: 0,
            threads: 1,
        };
        let mut x = Array2::zeros((1, 2));
        solve(&rows, &y, &mut x, params);
        // A = [[2·1 + 1·0.25 + 0.1, 1·0.25], [0.25, 1·0.25 + 3·4 + 0.1]] = [[2.35, 0.25], [0.25, 12.35]]
        // b = [2·1 + 3·0, 2·0 + 3·2] = [2, 6]
        let det = 2.35 * 12.35 - 0.25 * 0.25;
        let expected = [
            (12.35 * 2.0 - 0.25 * 6.0) / det,
            (2.35 * 6.0 - 0.25 * 2.0) / det,
        ];
        assert!(
            (x[[0, 0]] - expected[0]).abs() < 1e-12 && (x[[0, 1]] - expected[1]).abs() < 1e-12,
            "{x}"
        );
    }

    #[test]
    fn transpose_swaps_rows_and_columns() {
        let csr = Csr {
            indptr: vec![0, 2, 3],
            indices: vec![0, 2, 2],
            values: vec![1.0, 2.0, 3.0],
        };
        let t = csr.transpose(3);
        assert_eq!(t.indptr, vec![0, 1, 1, 3]);
        assert_eq!(t.indices, vec![0, 0, 1]);
        assert_eq!(t.values, vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn learns_two_taste_groups() {
        // Users 0..40 listen to three of tracks 0..5, users 40..80 to three of
        // tracks 5..10: with two factors, the groups are all ALS can represent,
        // so each track's four neighbours are the rest of its group.
        let mut records = Vec::new();
        let mut ts = 0;
        for user in 0..80u64 {
            let group = if user < 40 { 0 } else { 5 };
            let tracks: Vec<u32> = [0, 1, 3]
                .iter()
                .map(|j| group + ((user as u32 * 7 + j) % 5))
                .collect();
            for (i, &track) in tracks.iter().enumerate() {
                ts += 1;
                let last = i + 1 == tracks.len();
                records.push(Record::new(
                    user,
                    ts,
                    track,
                    0.8,
                    0.001,
                    tracks.get(i + 1).copied(),
                    0,
                    last,
                ));
            }
        }
        sessions::sort(&mut records);
        let (sessions, _) = sessions::sessionize(&records);
        let data = Data::new(&records, &sessions);
        let vocab = Vocab::new(records.iter().map(|r| r.track).collect());
        let params = Params {
            factors: 2,
            iterations: 8,
            regularization: 0.1,
            alpha: 10.0,
            seed: 1,
            threads: 2,
        };
        let model = fit(data, &vocab, params, &ProgressBar::hidden());
        assert_eq!(model.users.len(), 80);
        let table = item_table(&model.item_factors, &vocab, 4, 2, &ProgressBar::hidden());
        assert_eq!(table.len(), 10);
        for (track, neighbours) in &table {
            assert_eq!(neighbours.len(), 4, "track {track}: {neighbours:?}");
            assert!(
                neighbours.iter().all(|n| (n < &5) == (track < &5)),
                "track {track}: {neighbours:?}"
            );
        }
    }
}
