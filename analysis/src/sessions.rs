//! Sessionization, as the analysts' notebook does it (docs/analysis.md#sessionization).
//!
//! A user's events, in time order, form sessions: a session ends at a `last`
//! event; `tracks` = events in it (the `last` included), `time` = sum of their
//! `time`, `latency` = sum of their latencies in milliseconds. Events are
//! grouped by (user, arm) like the notebook's `groupby(["user", "treatment"])`,
//! so a user whose arm changed mid-log has separate session streams per arm.
//! Events after a user's final `last` form a session still open when the log
//! ends: it is left out and counted.

use std::fmt;

use crate::logs::Record;

/// One closed session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Session {
    pub user: u64,
    pub arm: u8,
    /// Timestamps (epoch ms) of the first and the last event.
    pub start: u64,
    pub end: u64,
    /// Events in the session, the closing `last` included.
    pub tracks: u32,
    /// Sum of listened fractions.
    pub time: f64,
    /// Sum of serving latencies, milliseconds.
    pub latency_ms: f64,
    /// Answers served from a fallback (`fallback: true`).
    pub fallbacks: u32,
    /// Some event's track is not the previous event's recommendation (see
    /// [`SessionReport::broken_chains`]).
    pub broken: bool,
    /// Index of the first event in the sorted records; the session's events are
    /// `records[first..first + tracks]`.
    pub first: usize,
}

impl Session {
    pub fn events<'a>(&self, records: &'a [Record]) -> &'a [Record] {
        &records[self.first..self.first + self.tracks as usize]
    }
}

/// What sessionization left out or found suspicious.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SessionReport {
    pub sessions: u64,
    /// Sessions with no `last` before the log ends (or before the user's arm
    /// changes): left out.
    pub open: u64,
    /// Events in those open sessions.
    pub open_events: u64,
    /// Closed sessions in which some event's track is not the previous event's
    /// recommendation. A client always sends the recommended track, so this
    /// usually means a lost `last` merged two sessions into one (the notebook
    /// cannot tell either; the sessions are kept as the notebook keeps them).
    pub broken_chains: u64,
}

impl fmt::Display for SessionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sessions", self.sessions)?;
        if self.open > 0 {
            write!(
                f,
                "; left out {} sessions with no `last` before the end of the log ({} events)",
                self.open, self.open_events
            )?;
        }
        if self.broken_chains > 0 {
            write!(
                f,
                "; {} sessions contain a track that is not the previous recommendation \
                 (a lost `last` may have merged two sessions)",
                self.broken_chains
            )?;
        }
        Ok(())
    }
}

/// Orders records by (user, arm, timestamp, reading order): each user's
/// stream becomes contiguous and chronological, whichever replica's file its
/// events came from. The order is total, so results never depend on how many
/// threads sorted.
pub fn sort(records: &mut [Record]) {
    let threads = crate::logs::default_threads();
    sort_split(records, threads.ilog2());
}

/// Sorting ten million records takes a second on one core, so the slice is
/// split around a sampled median user — everything left of it sorts before
/// everything right of it — and the halves are sorted on separate threads,
/// `depth` times over.
fn sort_split(records: &mut [Record], depth: u32) {
    if depth == 0 || records.len() < 1 << 16 {
        records.sort_unstable_by_key(|r| (r.user, r.arm, r.timestamp, r.seq));
        return;
    }
    let step = records.len() / 1024;
    let mut sample: Vec<u64> = records.iter().step_by(step).map(|r| r.user).collect();
    let middle = sample.len() / 2;
    let pivot = *sample.select_nth_unstable(middle).1;
    let mid = partition(records, |r| r.user < pivot);
    let (left, right) = records.split_at_mut(mid);
    std::thread::scope(|scope| {
        scope.spawn(|| sort_split(left, depth - 1));
        sort_split(right, depth - 1);
    });
}

/// Moves the records satisfying `before` to the front; returns how many there are.
fn partition(records: &mut [Record], before: impl Fn(&Record) -> bool) -> usize {
    let (mut i, mut j) = (0, records.len());
    loop {
        while i < j && before(&records[i]) {
            i += 1;
        }
        while i < j && !before(&records[j - 1]) {
            j -= 1;
        }
        if i >= j {
            return i;
        }
        records.swap(i, j - 1);
        i += 1;
        j -= 1;
    }
}

/// Cuts records sorted by [`sort`] into closed sessions.
pub fn sessionize(records: &[Record]) -> (Vec<Session>, SessionReport) {
    let mut sessions = Vec::new();
    let mut report = SessionReport::default();
    let mut open: Option<(Session, bool)> = None;
    for (i, r) in records.iter().enumerate() {
        if let Some((s, _)) = &open {
            if s.user != r.user || s.arm != r.arm {
                report.open += 1;
                report.open_events += s.tracks as u64;
                open = None;
            }
        }
        let (session, broken) = open.get_or_insert((
            Session {
                user: r.user,
                arm: r.arm,
                start: r.timestamp,
                end: r.timestamp,
                tracks: 0,
                time: 0.0,
                latency_ms: 0.0,
                fallbacks: 0,
                broken: false,
                first: i,
            },
            false,
        ));
        if session.tracks > 0 {
            let previous = &records[i - 1];
            *broken |= previous.recommendation().is_some_and(|t| t != r.track);
        }
        session.tracks += 1;
        session.time += r.time;
        session.latency_ms += r.latency * 1000.0;
        session.fallbacks += u32::from(r.fallback);
        session.end = r.timestamp;
        if r.last {
            session.broken = *broken;
            report.broken_chains += *broken as u64;
            sessions.push(*session);
            open = None;
        }
    }
    if let Some((s, _)) = open {
        report.open += 1;
        report.open_events += s.tracks as u64;
    }
    report.sessions = sessions.len() as u64;
    (sessions, report)
}

/// The time that splits sessions into train and held-out parts: the start of
/// the first held-out session when the latest `holdout` fraction (0–1) of
/// sessions, by start time, is held out. `None` when nothing is held out.
/// `train --holdout F` and `eval --holdout F` use the same cut, so tables
/// trained on the early part are evaluated on the late part only.
pub fn holdout_cutoff(sessions: &[Session], holdout: f64) -> Option<u64> {
    if holdout <= 0.0 || sessions.is_empty() {
        return None;
    }
    let mut starts: Vec<u64> = sessions.iter().map(|s| s.start).collect();
    starts.sort_unstable();
    let keep = ((1.0 - holdout.min(1.0)) * starts.len() as f64).floor() as usize;
    Some(starts[keep.min(starts.len() - 1)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::NO_ARM;

    fn ev(user: u64, ts: u64, track: u32, time: f64, rec: Option<u32>) -> Record {
        Record::new(user, ts, track, time, 0.002, rec, 0, rec.is_none())
    }

    #[test]
    fn cuts_sessions_at_last_and_sums_like_the_notebook() {
        let mut records = vec![
            ev(1, 30, 7, 0.5, None), // last of user 1's first session
            ev(1, 10, 5, 1.0, Some(6)),
            ev(1, 20, 6, 0.25, Some(7)),
            ev(2, 15, 9, 1.0, Some(3)),
            ev(2, 16, 3, 0.0, None),
            ev(1, 40, 1, 1.0, Some(2)), // user 1's second session never ends
        ];
        for (i, r) in records.iter_mut().enumerate() {
            r.seq = i as u32;
        }
        sort(&mut records);
        let (sessions, report) = sessionize(&records);
        assert_eq!(sessions.len(), 2);
        let s = sessions[0];
        assert_eq!((s.user, s.start, s.end, s.tracks), (1, 10, 30, 3));
        assert_eq!(s.time, 1.75);
        assert!((s.latency_ms - 6.0).abs() < 1e-12);
        let tracks: Vec<u32> = s.events(&records).iter().map(|r| r.track).collect();
        assert_eq!(tracks, vec![5, 6, 7]);
        assert_eq!(
            (sessions[1].user, sessions[1].tracks, sessions[1].time),
            (2, 2, 1.0)
        );
        assert_eq!(
            report,
            SessionReport {
                sessions: 2,
                open: 1,
                open_events: 1,
                broken_chains: 0
            }
        );
        assert!(
            report.to_string().contains("left out 1 sessions"),
            "{report}"
        );
    }

    #[test]
    fn arm_change_splits_streams_and_leaves_the_open_part_out() {
        let mut a = ev(1, 10, 5, 1.0, Some(6));
        a.arm = 0;
        let mut b = ev(1, 20, 6, 1.0, None);
        b.arm = 1;
        let mut records = vec![a, b];
        sort(&mut records);
        let (sessions, report) = sessionize(&records);
        assert_eq!(sessions.len(), 1);
        assert_eq!((sessions[0].arm, sessions[0].tracks), (1, 1));
        assert_eq!((report.open, report.open_events), (1, 1));
    }

    #[test]
    fn flags_sessions_whose_chain_breaks() {
        // Track 9 was never recommended: the `last` of a first session was lost.
        let mut records = vec![
            ev(1, 1, 5, 1.0, Some(6)),
            ev(1, 2, 6, 1.0, Some(7)),
            ev(1, 3, 9, 1.0, Some(4)),
            ev(1, 4, 4, 1.0, None),
        ];
        records.iter_mut().for_each(|r| r.arm = NO_ARM);
        records[1].fallback = true;
        let (sessions, report) = sessionize(&records);
        assert_eq!(sessions.len(), 1);
        assert_eq!(report.broken_chains, 1);
        assert!(sessions[0].broken);
        assert_eq!(sessions[0].fallbacks, 1);
    }

    #[test]
    fn parallel_sort_gives_the_total_order() {
        // Enough records to be split; users repeat so ties on user are common.
        let mut records: Vec<Record> = (0..200_000u64)
            .map(|i| {
                let mut r = ev((i * 7919) % 5_003, (i * 104_729) % 1_000, 1, 0.5, Some(1));
                r.seq = i as u32;
                r
            })
            .collect();
        let mut expected = records.clone();
        expected.sort_unstable_by_key(|r| (r.user, r.arm, r.timestamp, r.seq));
        sort_split(&mut records, 2);
        assert!(records == expected);
    }

    #[test]
    fn holdout_cutoff_takes_the_latest_fraction() {
        let sessions: Vec<Session> = (0..10u64)
            .map(|i| Session {
                user: i,
                arm: 0,
                start: 100 * i,
                end: 100 * i + 5,
                tracks: 1,
                time: 1.0,
                latency_ms: 1.0,
                fallbacks: 0,
                broken: false,
                first: 0,
            })
            .collect();
        assert_eq!(holdout_cutoff(&sessions, 0.0), None);
        assert_eq!(holdout_cutoff(&sessions, 0.2), Some(800));
        let held = sessions.iter().filter(|s| s.start >= 800).count();
        assert_eq!(held, 2);
    }
}
