//! Recent past sessions for `session_knn` (`sessions.jsonl`, written by
//! `analysis train --model session-knn`), indexed by the tracks liked in them.

use std::collections::HashMap;

use serde::Deserialize;

use crate::catalog::TrackId;

/// One line of `sessions.jsonl`: a past session's listens, in order.
#[derive(Deserialize)]
pub(super) struct SessionLine {
    pub tracks: Vec<TrackId>,
    pub times: Vec<f64>,
    /// Each listen's exposure weight (`analysis train`'s inverse-propensity
    /// correction); absent when every listen weighs 1.
    #[serde(default)]
    pub weights: Vec<f32>,
}

/// A past session: its tracks, listen times and exposure weights, in order.
#[derive(Debug, Clone)]
pub struct PastSession {
    pub tracks: Box<[TrackId]>,
    pub times: Box<[f32]>,
    /// How much each listen's vote counts: 1 / how likely the policy that
    /// logged it was to serve it (capped, mean 1), so a session_knn built on
    /// a policy's own logs does not just echo that policy.
    pub weights: Box<[f32]>,
    /// 1 / √(likes in the session): the cosine normalisation of a match, so
    /// long sessions do not match everything.
    pub norm: f32,
}

/// Past sessions, oldest first, and for each track the sessions that liked
/// it, most recent last.
#[derive(Debug, Clone, Default)]
pub struct SessionIndex {
    sessions: Vec<PastSession>,
    by_track: HashMap<TrackId, Vec<u32>>,
}

/// A listen at or above this time is a like: what makes a session a match.
pub const LIKED: f32 = 0.5;

impl SessionIndex {
    pub(super) fn from_lines(lines: Vec<SessionLine>) -> Result<SessionIndex, String> {
        let mut index = SessionIndex::default();
        for (i, line) in lines.into_iter().enumerate() {
            if line.tracks.len() != line.times.len() {
                return Err(format!(
                    "session {} has {} tracks but {} times; expected one time per track",
                    i + 1,
                    line.tracks.len(),
                    line.times.len()
                ));
            }
            let weights: Box<[f32]> = if line.weights.is_empty() {
                vec![1.0; line.tracks.len()].into()
            } else if line.weights.len() == line.tracks.len()
                && line.weights.iter().all(|w| w.is_finite() && *w >= 0.0)
            {
                line.weights.into()
            } else {
                return Err(format!(
                    "session {} has {} tracks but {} weights (or a negative one); expected \
                     one weight ≥ 0 per track, or none",
                    i + 1,
                    line.tracks.len(),
                    line.weights.len()
                ));
            };
            let id = index.sessions.len() as u32;
            let times: Box<[f32]> = line.times.iter().map(|&t| t as f32).collect();
            let likes = times.iter().filter(|&&t| t >= LIKED).count();
            for (&track, &time) in line.tracks.iter().zip(times.iter()) {
                if time >= LIKED {
                    let list = index.by_track.entry(track).or_default();
                    if list.last() != Some(&id) {
                        list.push(id);
                    }
                }
            }
            index.sessions.push(PastSession {
                tracks: line.tracks.into_boxed_slice(),
                times,
                weights,
                norm: 1.0 / (likes.max(1) as f32).sqrt(),
            });
        }
        Ok(index)
    }

    /// An index of past sessions given as their `(track, time)` listens in
    /// order, oldest session first, as `sessions.jsonl` lines would give it
    /// (for tests).
    #[cfg(test)]
    pub(crate) fn from_listens(sessions: &[&[(TrackId, f64)]]) -> SessionIndex {
        let lines = sessions
            .iter()
            .map(|listens| SessionLine {
                tracks: listens.iter().map(|&(t, _)| t).collect(),
                times: listens.iter().map(|&(_, time)| time).collect(),
                weights: Vec::new(),
            })
            .collect();
        SessionIndex::from_lines(lines).expect("one time per track")
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn session(&self, id: u32) -> &PastSession {
        &self.sessions[id as usize]
    }

    /// Up to `sample` sessions that liked `track`, most recent first.
    pub fn liked(&self, track: TrackId, sample: usize) -> impl Iterator<Item = u32> + '_ {
        self.by_track
            .get(&track)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .rev()
            .take(sample)
            .copied()
    }
}
