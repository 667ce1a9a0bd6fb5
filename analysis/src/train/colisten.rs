//! Co-listening item-to-item table.
//!
//! Signal: within a session, each event's track `b` is the recommendation served
//! after the previous event's track `a`, and its `time` says how much of `b`
//! the listener kept. So for every consecutive pair `a → b` in a session,
//!
//! ```text
//! S(a, b)     = Σ time of b over the pairs a → b        (co-listening weight)
//! score(a, b) = S(a, b) / P(b)^alpha                    (popularity-normalised)
//! ```
//!
//! where `P(b)` is b's total listen time (its popularity). With `alpha = 0`
//! the table favours tracks that are simply popular everywhere; with
//! `alpha = 1` it ranks by the share of b's listening that follows a — a
//! PMI-like lift that over-rewards rare tracks. The default 0.5 sits between
//! (the cosine-style normalisation). Pairs with no listen time (skips, or `b`
//! already played) carry no positive evidence and are dropped, as is `a → a`.
//! Each track keeps its `neighbours` best, ties broken by `S` then by id.

use super::popularity::Popularity;
use super::{Data, ItemTable};

/// How the table is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Neighbours kept per track.
    pub neighbours: usize,
    /// Popularity exponent in the normalisation.
    pub alpha: f64,
    /// Worker threads.
    pub threads: usize,
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
    let mut parts: Vec<Vec<(usize, Vec<u32>)>> = Vec::new();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|part| {
                let norm = &norm;
                scope.spawn(move || rows(data, pop, norm, params.neighbours, threads, part))
            })
            .collect();
        parts = workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
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
    neighbours: usize,
    parts: usize,
    part: usize,
) -> Vec<(usize, Vec<u32>)> {
    let vocab = &pop.vocab;
    let index = |track| vocab.index(track).expect("vocabulary holds every track");
    // (a << 32 | b, time of b) for every pair of this part.
    let mut pairs: Vec<(u64, f64)> = Vec::new();
    for session in data.sessions {
        let events = session.events(data.records);
        let mut a = index(events[0].track);
        for e in &events[1..] {
            let b = index(e.track);
            if a % parts == part && a != b && e.time > 0.0 {
                pairs.push(((a as u64) << 32 | b as u64, e.time));
            }
            a = b;
        }
    }
    pairs.sort_unstable_by_key(|&(key, _)| key);
    let mut out = Vec::new();
    let mut candidates: Vec<(f64, f64, u32)> = Vec::new();
    for row in pairs.chunk_by(|x, y| x.0 >> 32 == y.0 >> 32) {
        candidates.clear();
        for same in row.chunk_by(|x, y| x.0 == y.0) {
            let b = (same[0].0 & 0xffff_ffff) as usize;
            let weight: f64 = same.iter().map(|p| p.1).sum();
            candidates.push((weight / norm[b], weight, vocab.ids[b]));
        }
        let best = |x: &(f64, f64, u32), y: &(f64, f64, u32)| {
            y.0.total_cmp(&x.0)
                .then(y.1.total_cmp(&x.1))
                .then(x.2.cmp(&y.2))
        };
        if candidates.len() > neighbours {
            candidates.select_nth_unstable_by(neighbours, best);
            candidates.truncate(neighbours);
        }
        candidates.sort_unstable_by(best);
        let a = (row[0].0 >> 32) as usize;
        out.push((a, candidates.iter().map(|c| c.2).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Record;
    use crate::sessions;

    /// One session per list of (track, time); the first track is the user's pick.
    fn data(sessions_: &[&[(u32, f64)]]) -> (Vec<Record>, Vec<sessions::Session>) {
        let mut records = Vec::new();
        let mut ts = 0;
        for (user, s) in sessions_.iter().enumerate() {
            for (i, &(track, time)) in s.iter().enumerate() {
                ts += 1;
                let last = i + 1 == s.len();
                let next = s.get(i + 1).map(|x| x.0);
                records.push(Record::new(
                    user as u64,
                    ts,
                    track,
                    time,
                    0.001,
                    next,
                    0,
                    last,
                ));
            }
        }
        sessions::sort(&mut records);
        let (sessions, _) = sessions::sessionize(&records);
        (records, sessions)
    }

    #[test]
    fn weights_by_listen_time_and_normalises_by_popularity() {
        // After 1: track 2 is listened 0.9 once; track 3 0.5 twice (S = 1.0) but 3 is
        // popular elsewhere (P = 0.5 + 0.5 + 3 × 1.0 = 4.0), 2 is not (P = 0.9).
        // alpha = 0:   3 (1.0) before 2 (0.9).
        // alpha = 0.5: 2 (0.9/√0.9 = 0.95) before 3 (1.0/√4 = 0.5).
        let (records, sessions) = data(&[
            &[(1, 1.0), (2, 0.9)],
            &[(1, 1.0), (3, 0.5)],
            &[(1, 1.0), (3, 0.5), (4, 0.0)],
            &[(5, 1.0), (3, 1.0), (3, 1.0), (3, 1.0)],
        ]);
        let d = Data {
            records: &records,
            sessions: &sessions,
        };
        let pop = Popularity::from_data(d);
        let table = |alpha| {
            build(
                d,
                &pop,
                Params {
                    neighbours: 10,
                    alpha,
                    threads: 2,
                },
            )
        };
        let plain = table(0.0);
        assert_eq!(plain[0], (1, vec![3, 2]));
        let normalised = table(0.5);
        assert_eq!(normalised[0], (1, vec![2, 3]));
        // 3 → 4 was a skip (time 0) and 3 → 3 a self-pair: 3 has no row; 5 → 3 does.
        assert_eq!(
            normalised.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![1, 5]
        );
    }

    #[test]
    fn keeps_the_best_neighbours_in_order() {
        let sessions_: Vec<Vec<(u32, f64)>> = (0..20u32)
            .map(|b| vec![(100, 1.0), (b, (b + 1) as f64 / 20.0)])
            .collect();
        let refs: Vec<&[(u32, f64)]> = sessions_.iter().map(|s| s.as_slice()).collect();
        let (records, sessions) = data(&refs);
        let d = Data {
            records: &records,
            sessions: &sessions,
        };
        let pop = Popularity::from_data(d);
        let table = build(
            d,
            &pop,
            Params {
                neighbours: 3,
                alpha: 0.0,
                threads: 3,
            },
        );
        assert_eq!(table, vec![(100, vec![19, 18, 17])]);
    }
}
