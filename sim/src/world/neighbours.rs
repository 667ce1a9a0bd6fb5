//! Exact top-k inner-product search that skips most of the catalog.
//!
//! A session's first track is drawn from the nearest neighbours of an interest,
//! and the oracle agent scans the nearest tracks of a session. Brute force costs
//! `tracks × dim` per query: fine once, far too slow per session at 500k listens/s
//! or on a million-track world. Tracks cluster by artist, so each artist gets a
//! bounding ball (centre `c`, radius `r` over its tracks). For a query `q`,
//! `q·x = q·c + q·(x − c) ≤ q·c + |q|·r` for every track `x` of the artist.
//! Artists are visited best bound first and the search stops as soon as the next
//! bound cannot beat the current k-th best score, which on a clustered world
//! touches a tenth of the catalog. The result is exactly the brute-force
//! answer (same scores, same tie-break), whatever the embeddings.
//!
//! Track ids are shuffled across artists, so the index keeps its own copy of
//! the embeddings in artist order: scanning an artist then reads consecutive
//! memory instead of one cache miss per track, which is most of the speed-up.

use std::collections::BinaryHeap;

use super::dot;

/// Added to every bound to cover float32 rounding in the dot products, so a
/// track is never pruned by a bound that rounding made slightly too small.
const BOUND_SLACK: f32 = 1e-4;

/// Per-artist bounding balls of the track embeddings.
pub(super) struct ArtistBounds {
    /// Row-major `[artists, dim]` mean of each artist's track embeddings.
    centres: Vec<f32>,
    /// Largest distance from an artist's centre to one of its tracks.
    radii: Vec<f32>,
    /// Row-major embeddings in artist order: row `i` is track `tracks[i]`.
    grouped: Vec<f32>,
    /// Tracks of artist `a` are `tracks[start[a]..start[a + 1]]`.
    start: Vec<u32>,
    tracks: Vec<u32>,
    dim: usize,
}

impl ArtistBounds {
    pub(super) fn build(
        embeddings: &[f32],
        dim: usize,
        artist_start: &[u32],
        artist_tracks: &[u32],
    ) -> ArtistBounds {
        let n_artists = artist_start.len() - 1;
        let mut centres = vec![0.0f32; n_artists * dim];
        let mut radii = Vec::with_capacity(n_artists);
        let mut sum = vec![0.0f64; dim];
        for (a, centre) in centres.chunks_exact_mut(dim).enumerate() {
            let tracks = &artist_tracks[artist_start[a] as usize..artist_start[a + 1] as usize];
            sum.fill(0.0);
            for &t in tracks {
                let row = &embeddings[t as usize * dim..(t as usize + 1) * dim];
                for (s, &x) in sum.iter_mut().zip(row) {
                    *s += f64::from(x);
                }
            }
            for (c, s) in centre.iter_mut().zip(&sum) {
                *c = (s / tracks.len() as f64) as f32;
            }
            let radius = tracks
                .iter()
                .map(|&t| {
                    let row = &embeddings[t as usize * dim..(t as usize + 1) * dim];
                    row.iter()
                        .zip(centre.iter())
                        .map(|(&x, &c)| (f64::from(x) - f64::from(c)).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(0.0f64, f64::max);
            radii.push(radius as f32);
        }
        let grouped = artist_tracks
            .iter()
            .flat_map(|&t| &embeddings[t as usize * dim..(t as usize + 1) * dim])
            .copied()
            .collect();
        ArtistBounds {
            centres,
            radii,
            grouped,
            start: artist_start.to_vec(),
            tracks: artist_tracks.to_vec(),
            dim,
        }
    }

    /// The `k` tracks of `world` with the largest inner product with `query`,
    /// best first, ties broken by lower track id.
    pub(super) fn nearest(&self, query: &[f32], k: usize) -> Vec<u32> {
        if k == 0 {
            return Vec::new();
        }
        let q_norm = dot(query, query).sqrt();
        let mut artists: BinaryHeap<u64> = self
            .centres
            .chunks_exact(self.dim)
            .zip(&self.radii)
            .enumerate()
            .map(|(a, (centre, &radius))| {
                heap_key(dot(query, centre) + q_norm * radius + BOUND_SLACK, a as u32)
            })
            .collect();
        let mut top = TopK::new(k);
        while let Some(key) = artists.pop() {
            let (bound, artist) = from_heap_key(key);
            if top.is_full() && bound < top.worst_score() {
                break;
            }
            let range =
                self.start[artist as usize] as usize..self.start[artist as usize + 1] as usize;
            let rows =
                self.grouped[range.start * self.dim..range.end * self.dim].chunks_exact(self.dim);
            for (&t, row) in self.tracks[range].iter().zip(rows) {
                top.offer(dot(query, row), t);
            }
        }
        top.into_tracks()
    }
}

/// Packs an artist's bound and id into one integer whose order is "higher
/// bound first, then lower artist id", so the max-heap compares plain `u64`s.
/// The f32 bits are mapped to an unsigned integer of the same order.
fn heap_key(bound: f32, artist: u32) -> u64 {
    let bits = bound.to_bits();
    let ordered = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    (u64::from(ordered) << 32) | u64::from(!artist)
}

fn from_heap_key(key: u64) -> (f32, u32) {
    let ordered = (key >> 32) as u32;
    let bits = if ordered >> 31 == 1 {
        ordered & 0x7fff_ffff
    } else {
        !ordered
    };
    (f32::from_bits(bits), !(key as u32))
}

/// The best `k` (score, track) pairs seen so far, kept sorted best first.
/// `k` is small (tens to hundreds), so a sorted Vec beats a heap here.
struct TopK {
    k: usize,
    items: Vec<(f32, u32)>,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK {
            k,
            items: Vec::with_capacity(k + 1),
        }
    }

    fn is_full(&self) -> bool {
        self.items.len() == self.k
    }

    fn worst_score(&self) -> f32 {
        self.items.last().map_or(f32::NEG_INFINITY, |&(s, _)| s)
    }

    fn offer(&mut self, score: f32, track: u32) {
        // `better(a)`: `a` ranks above the offered item.
        let better = |a: &(f32, u32)| a.0 > score || (a.0 == score && a.1 < track);
        if self.is_full() && better(&self.items[self.k - 1]) {
            return;
        }
        let pos = self.items.partition_point(better);
        self.items.insert(pos, (score, track));
        self.items.truncate(self.k);
    }

    fn into_tracks(self) -> Vec<u32> {
        self.items.into_iter().map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::derived_rng;
    use crate::world::{generate, World, WorldParams};
    use rand::Rng;
    use rand_distr::StandardNormal;

    fn brute_force(world: &World, query: &[f32], k: usize) -> Vec<u32> {
        let mut all: Vec<(f32, u32)> = (0..world.num_tracks() as u32)
            .map(|t| (dot(query, world.embedding(t)), t))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        all.into_iter().take(k).map(|(_, t)| t).collect()
    }

    fn small_world(seed: u64) -> World {
        let params = WorldParams {
            seed,
            tracks: 3000,
            artists: Some(300),
            users: 10,
            ..WorldParams::default()
        };
        World::new(generate(&params, false).unwrap()).unwrap()
    }

    #[test]
    fn pruned_search_equals_brute_force_for_tracks_and_random_queries() {
        let world = small_world(7);
        let mut rng = derived_rng(1, 2, 3);
        for i in 0..200u32 {
            let query: Vec<f32> = if i % 2 == 0 {
                world
                    .embedding(rng.gen_range(0..world.num_tracks() as u32))
                    .to_vec()
            } else {
                (0..world.dim())
                    .map(|_| rng.sample(StandardNormal))
                    .collect()
            };
            for k in [1, 10, 77] {
                assert_eq!(
                    world.nearest(&query, k),
                    brute_force(&world, &query, k),
                    "query {i}, k {k}"
                );
            }
        }
    }

    #[test]
    fn heap_keys_order_by_bound_then_lower_artist() {
        let bounds = [-2.5f32, -0.0, 0.0, 1e-30, 0.7, 1.3, f32::INFINITY];
        for w in bounds.windows(2) {
            assert!(heap_key(w[0], 0) <= heap_key(w[1], 0), "{w:?}");
        }
        assert!(heap_key(0.5, 1) > heap_key(0.5, 2));
        for &b in &bounds {
            assert_eq!(from_heap_key(heap_key(b, 77)), (b, 77));
        }
    }

    #[test]
    fn ties_are_broken_by_lower_track_id() {
        use crate::world::tests::{tiny_world, user};
        let w = tiny_world(
            &[[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]],
            &["A", "B", "C", "B"],
            vec![user(vec![0], 0.0, 1.0)],
        );
        assert_eq!(w.nearest(&[1.0, 0.0], 2), vec![1, 2]);
        assert_eq!(w.nearest(&[1.0, 0.0], 10), vec![1, 2, 3, 0]);
        assert!(w.nearest(&[1.0, 0.0], 0).is_empty());
    }

    #[test]
    fn interest_neighbours_start_with_the_interest_itself() {
        let world = small_world(3);
        for t in [0u32, 5, 999, 2999] {
            let nb = world.interest_neighbours(t, 10);
            assert_eq!(nb.len(), 10);
            assert_eq!(nb[0], t);
            assert_eq!(nb, &brute_force(&world, world.embedding(t), 10)[..]);
        }
    }
}
