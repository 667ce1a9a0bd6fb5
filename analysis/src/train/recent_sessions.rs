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

/// One past session as botify loads it: its tracks and their listen times.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PastSession {
    pub tracks: Vec<u32>,
    pub times: Vec<f64>,
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
            let events = data.sessions[i].events(data.records);
            if !events.iter().skip(1).any(|e| e.time >= liked) {
                return None;
            }
            Some(PastSession {
                tracks: events.iter().map(|e| e.track).collect(),
                times: events.iter().map(|e| e.time).collect(),
            })
        })
        .take(keep)
        .collect();
    kept.reverse();
    kept
}
