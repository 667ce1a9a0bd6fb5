//! Co-listening item-to-item table.
//!
//! Signal: a session follows one taste, so tracks liked in the same session
//! go together, and a track skipped right after a liked one does not. For
//! every track `b` of a session (the listener's own first track counts as
//! liked) and each of the `window` likes `a` before it:
//!
//! ```text
//! b liked   (time ≥ liked):    S(a, b) += w(b) time(b),  S(b, a) += w(b) time(b)
//! b skipped (time ≤ skipped):  S(a, b) −= w(b) skip_weight
//! score(a, b) = S(a, b) / P(b)^alpha        served only if S(a, b) ≥ min_evidence
//! ```
//!
//! where `w(b)` is the listen's exposure weight (1 / the propensity it was
//! served with, capped and normalised: [`super::exposure`]) and `P(b)` is
//! b's total listen time (its popularity). With `alpha = 0`
//! the table favours tracks that are simply popular everywhere; with
//! `alpha = 1` it ranks by the share of b's listening that goes with a — a
//! PMI-like lift that over-rewards rare tracks. The default 0.5 sits between
//! (the cosine-style normalisation).
//!
//! The evidence threshold is what makes training safe on any traffic: a
//! pair seen once by chance in exploration traffic, or liked as often as it
//! was skipped, is not served, so a track without solid evidence keeps
//! botify's catalog fallback (same artist, then same genre) instead of a
//! noisy neighbour. Self-pairs are dropped. Each track keeps its
//! `neighbours` best, ties broken by `S` then by id.

use tally::parallel::fan_out;

use super::popularity::Popularity;
use super::{Data, ItemTable};

/// How the table is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Neighbours kept per track.
    pub neighbours: usize,
    /// Popularity exponent in the normalisation.
    pub alpha: f64,
    /// Likes before a track that pair with it.
    pub window: usize,
    /// A listen at or above this time is a like.
    pub liked: f64,
    /// A listen at or below this time is a skip.
    pub skipped: f64,
    /// What a skip takes off a pair's evidence.
    pub skip_weight: f64,
    /// Least net evidence `S(a, b)` for `b` to be served after `a`.
    pub min_evidence: f64,
    /// Worker threads.
    pub threads: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            neighbours: 50,
            alpha: 0.5,
            window: 4,
            liked: 0.5,
            skipped: 0.2,
            skip_weight: 0.5,
            min_evidence: 1.5,
            threads: 2,
        }
    }
}

/// Builds the table. Work is split by the source track (`a % threads`), so
/// each thread owns whole rows and no merge is needed.
pub fn build(data: Data<'_>, pop: &Popularity, params: Params) -> ItemTable {
    let threads = params.threads.max(1);
    let norm: Vec<f64> = pop
        .listen_time
        .iter()
        .map(|p| p.powf(params.alpha))
        .collect();
    let parts = fan_out(0..threads, |part| {
        rows(data, pop, &norm, params, threads, part)
    });
    let mut rows: Vec<(usize, Vec<u32>)> = parts.into_iter().flatten().collect();
    rows.sort_unstable_by_key(|(a, _)| *a);
    rows.into_iter()
        .map(|(a, neighbours)| (pop.vocab.ids[a], neighbours))
        .collect()
}

/// The rows of the source tracks `a` with `a % parts == part`.
fn rows(
    data: Data<'_>,
    pop: &Popularity,
    norm: &[f64],
    params: Params,
    parts: usize,
    part: usize,
) -> Vec<(usize, Vec<u32>)> {
    let vocab = &pop.vocab;
    let index = |track| vocab.index(track).expect("vocabulary holds every track");
    // (a << 32 | b, evidence) for every pair of this part.
    let mut pairs: Vec<(u64, f64)> = Vec::new();
    let mut push = |a: usize, b: usize, evidence: f64| {
        if a % parts == part && a != b {
            pairs.push(((a as u64) << 32 | b as u64, evidence));
        }
    };
    let mut likes: Vec<usize> = Vec::new();
    for session in data.sessions {
        let events = session.events(data.records);
        likes.clear();
        likes.push(index(events[0].track));
        for (k, e) in events.iter().enumerate().skip(1) {
            let b = index(e.track);
            let weight = data.weight(session, k);
            let recent = &likes[likes.len().saturating_sub(params.window)..];
            if e.time >= params.liked {
                for &a in recent {
                    push(a, b, weight * e.time);
                    push(b, a, weight * e.time);
                }
                likes.push(b);
            } else if e.time <= params.skipped {
                for &a in recent {
                    push(a, b, -weight * params.skip_weight);
                }
            }
        }
    }
    pairs.sort_unstable_by_key(|&(key, _)| key);
    let mut out = Vec::new();
    let mut candidates: Vec<(f64, f64, u32)> = Vec::new();
    for row in pairs.chunk_by(|x, y| x.0 >> 32 == y.0 >> 32) {
        candidates.clear();
        for same in row.chunk_by(|x, y| x.0 == y.0) {
            let b = (same[0].0 & 0xffff_ffff) as usize;
            let evidence: f64 = same.iter().map(|p| p.1).sum();
            if evidence >= params.min_evidence && evidence > 0.0 {
                candidates.push((evidence / norm[b], evidence, vocab.ids[b]));
            }
        }
        if candidates.is_empty() {
            continue;
        }
        let best = |x: &(f64, f64, u32), y: &(f64, f64, u32)| {
            y.0.total_cmp(&x.0)
                .then(y.1.total_cmp(&x.1))
                .then(x.2.cmp(&y.2))
        };
        if candidates.len() > params.neighbours {
            candidates.select_nth_unstable_by(params.neighbours, best);
            candidates.truncate(params.neighbours);
        }
        candidates.sort_unstable_by(best);
        let a = (row[0].0 >> 32) as usize;
        out.push((a, candidates.iter().map(|c| c.2).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::data;
    use super::*;

    fn table(sessions_: &[&[(u32, f64)]], params: Params) -> ItemTable {
        let (records, sessions) = data(sessions_);
        let d = Data::new(&records, &sessions);
        build(d, &Popularity::from_data(d), params)
    }

    #[test]
    fn serves_only_pairs_with_enough_net_evidence() {
        // 1 and 2 are liked together twice: S = 1.8 ≥ 1.5 both ways.
        // 1 then 3 once: S = 0.6, not enough.
        // 1 then 4: liked twice (1.8) but skipped twice (−1.0): S(1,4) = 0.8,
        // while S(4,1) = 1.8 — a skip is evidence against serving 4 after 1 only.
        let table = table(
            &[
                &[(1, 1.0), (2, 0.9)],
                &[(1, 1.0), (2, 0.9)],
                &[(1, 1.0), (3, 0.6)],
                &[(1, 1.0), (4, 0.9)],
                &[(1, 1.0), (4, 0.9)],
                &[(1, 1.0), (4, 0.1)],
                &[(1, 1.0), (4, 0.1)],
            ],
            Params::default(),
        );
        assert_eq!(table, vec![(1, vec![2]), (2, vec![1]), (4, vec![1])]);
    }

    #[test]
    fn the_whole_session_is_evidence_not_only_consecutive_pairs() {
        // 3 follows 2, not 1, yet 1 and 3 were liked in the same sessions;
        // 5 was skipped after 1.
        let session: &[(u32, f64)] = &[(1, 1.0), (5, 0.0), (2, 0.9), (3, 0.8)];
        let table = table(
            &[session, session],
            Params {
                alpha: 0.0,
                ..Params::default()
            },
        );
        assert_eq!(
            table,
            vec![(1, vec![2, 3]), (2, vec![1, 3]), (3, vec![1, 2])],
            "S(1,2) = 1.8 beats S(1,3) = 1.6; S(3,1) = S(3,2) = 1.6, lower id first"
        );
    }

    #[test]
    fn keeps_the_best_neighbours_in_order() {
        let sessions_: Vec<Vec<(u32, f64)>> = (0..20u32)
            .map(|b| vec![(100, 1.0), (b, (b + 1) as f64 / 20.0)])
            .collect();
        let refs: Vec<&[(u32, f64)]> = sessions_.iter().map(|s| s.as_slice()).collect();
        let table = table(
            &refs,
            Params {
                neighbours: 3,
                alpha: 0.0,
                min_evidence: 0.0,
                threads: 3,
                ..Params::default()
            },
        );
        let row = table.iter().find(|(t, _)| *t == 100).unwrap();
        assert_eq!(row.1, vec![19, 18, 17], "the three longest listens");
    }
}
