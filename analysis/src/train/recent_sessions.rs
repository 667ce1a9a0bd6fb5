//! The memory of `session_knn`: the most recent closed sessions, as their
//! listens in order.
//!
//! Session-kNN (V-SKNN, Ludewig & Jannach 2018) needs no fitting: it matches
//! the live session against past sessions at request time. Training only
//! chooses which sessions botify keeps: the latest ones (by end time), since
//! tastes and the catalog drift and recent sessions say most about the next
//! one, and only sessions with at least one like after the listener's own
//! first track, since the others say nothing about what goes together.

use super::Data;

/// One past session as botify loads it: its tracks, their listen times,
/// and their exposure weights ([`super::exposure`]; left out when all are 1,
/// as in logs without propensities), which scale each listen's vote.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PastSession {
    pub tracks: Vec<u32>,
    pub times: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<f32>,
}

/// The latest `keep` sessions of `data` (by end time, oldest first) that
/// have a listen at or above `liked` besides their first track.
pub fn select(data: Data<'_>, keep: usize, liked: f64) -> Vec<PastSession> {
    let mut order: Vec<usize> = (0..data.sessions.len()).collect();
    order.sort_by_key(|&i| (data.sessions[i].end, i));
    let mut kept: Vec<PastSession> = order
        .into_iter()
        .rev()
        .filter_map(|i| {
            let session = &data.sessions[i];
            let events = session.events(data.records);
            if !events.iter().skip(1).any(|e| e.time >= liked) {
                return None;
            }
            let mut weights: Vec<f32> = (0..events.len())
                .map(|k| data.weight(session, k) as f32)
                .collect();
            if weights.iter().all(|&w| w == 1.0) {
                weights.clear();
            }
            Some(PastSession {
                tracks: events.iter().map(|e| e.track).collect(),
                times: events.iter().map(|e| e.time).collect(),
                weights,
            })
        })
        .take(keep)
        .collect();
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::super::testing::data_at;
    use super::*;

    fn past(listens: &[(u32, f64)]) -> PastSession {
        PastSession {
            tracks: listens.iter().map(|&(t, _)| t).collect(),
            times: listens.iter().map(|&(_, time)| time).collect(),
            weights: Vec::new(),
        }
    }

    fn select_from(sessions: &[(u64, &[(u32, f64)])], keep: usize) -> Vec<PastSession> {
        let (records, sessions) = data_at(sessions);
        let data = Data::new(&records, &sessions);
        select(data, keep, 0.5)
    }

    #[test]
    fn keeps_the_latest_sessions_by_end_time_oldest_first() {
        // User order, start order and end order all differ: the long
        // session 1 starts before session 2 but ends after it.
        let s0: &[(u32, f64)] = &[(1, 1.0), (2, 0.9)]; // ends at 301
        let s1: &[(u32, f64)] = &[(3, 1.0), (4, 0.8), (5, 0.1), (6, 0.6), (7, 0.3)]; // 104
        let s2: &[(u32, f64)] = &[(8, 1.0), (9, 0.7)]; // 103
        let s3: &[(u32, f64)] = &[(10, 0.2), (11, 0.5)]; // 51
        let sessions = [(300, s0), (100, s1), (102, s2), (50, s3)];
        assert_eq!(select_from(&sessions, 2), vec![past(s1), past(s0)]);
        assert_eq!(select_from(&sessions, 1), vec![past(s0)]);
        assert_eq!(
            select_from(&sessions, 10),
            vec![past(s3), past(s2), past(s1), past(s0)],
            "all of them, oldest end first"
        );
    }

    #[test]
    fn drops_sessions_without_a_like_after_the_first_track() {
        // The listener's own first track does not count; the threshold does.
        let only_first: &[(u32, f64)] = &[(1, 1.0), (2, 0.4), (3, 0.1)];
        let at_threshold: &[(u32, f64)] = &[(4, 0.2), (5, 0.5)];
        let sessions = [(100, at_threshold), (200, only_first)];
        assert_eq!(select_from(&sessions, 1), vec![past(at_threshold)]);
        assert_eq!(select_from(&sessions, 5), vec![past(at_threshold)]);
    }
}
