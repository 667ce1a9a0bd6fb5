//! Exposure, not activity, as the denominator (`ab --exposure`,
//! docs/analysis.md#exposure-the-denominator).
//!
//! With listeners who come back, a treatment changes who comes back. The
//! users active on a later day are then not the users randomised: better
//! recommendations bring back lighter listeners, which lowers the arm's
//! per-active-user time although every listener listens longer. Comparing
//! the arms' active users compares different populations.
//!
//! The exposure design compares the randomised populations instead (intent
//! to treat): a user is exposed from their first event carrying the
//! experiment (their first assignment), on any day of the logs read, and
//! stays in their arm's denominator for every later day. Per-user totals
//! (`time`, `sessions`, `active_days`) count an exposed user who did not
//! come back as zero. Metrics that are undefined without a session (per
//! session means, ratios, return rates) keep the users or sessions they
//! are defined on; the table names each metric's denominator. The SRM
//! check then counts exposures, which the treatment cannot change.

use std::collections::HashMap;

use super::metrics::{Kind, Metric, UserSums};
use crate::logs::{Days, Record};

/// Each (user, arm)'s day of first assignment, ordered by (user, arm).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposures {
    pub first: Vec<(u64, u8, u32)>,
}

impl Exposures {
    /// From the experiment's records (each carrying its arm).
    pub fn of(records: &[Record], days: &Days) -> Exposures {
        let mut first: HashMap<(u64, u8), u32> = HashMap::new();
        for r in records {
            let day = days.day(r);
            first
                .entry((r.user, r.arm))
                .and_modify(|d| *d = (*d).min(day))
                .or_insert(day);
        }
        let mut first: Vec<(u64, u8, u32)> =
            first.into_iter().map(|((u, a), d)| (u, a, d)).collect();
        first.sort_unstable();
        Exposures { first }
    }

    /// Adds a zero row to `users` for every (user, arm) exposed by day
    /// `by` (and kept by `keep`) that has no sessions there, so totals
    /// count them. `users` may be in any order.
    pub fn pad(&self, users: &mut Vec<UserSums>, by: u32, keep: impl Fn(u64) -> bool) {
        let mut present: Vec<(u64, u8)> = users.iter().map(|u| (u.user, u.arm)).collect();
        present.sort_unstable();
        for &(user, arm, day) in &self.first {
            if day <= by && keep(user) && present.binary_search(&(user, arm)).is_err() {
                users.push(UserSums::empty(user, arm));
            }
        }
    }
}

/// What a metric's arm mean is taken over, as the table says it.
pub fn denominator(metric: &Metric, exposure: bool) -> &'static str {
    match (metric.kind, metric.name) {
        (Kind::Ratio, "fallback_rate") => "answers",
        (Kind::Ratio, _) => "sessions",
        (Kind::User, _) if exposure && metric.counts_absent_users() => "exposed users",
        (Kind::User, _) => "active users",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab::metrics::{self, Observation, Window};

    #[test]
    fn exposure_starts_at_the_first_event_and_pads_only_the_absent() {
        let records = [
            Record::new(2, 5 * 86_400_000, 1, 0.5, 0.0, None, 1, false),
            Record::new(1, 3 * 86_400_000, 1, 0.5, 0.0, None, 0, false),
            Record::new(1, 4 * 86_400_000, 1, 0.5, 0.0, None, 0, true),
            Record::new(3, 9 * 86_400_000, 1, 0.5, 0.0, None, 0, true),
        ];
        let exposures = Exposures::of(&records, &Days::default());
        assert_eq!(exposures.first, [(1, 0, 3), (2, 1, 5), (3, 0, 9)]);
        let mut users = vec![UserSums {
            user: 2,
            arm: 1,
            time: 1.0,
            sessions: 1.0,
            tracks: 2.0,
            latency_ms: 0.0,
            answers: 1.0,
            fallbacks: 0.0,
            broken: 0.0,
            days: vec![6],
        }];
        exposures.pad(&mut users, 6, |_| true);
        let rows: Vec<(u64, f64)> = users.iter().map(|u| (u.user, u.time)).collect();
        // User 3 is exposed only on day 9: not yet in the denominator.
        assert_eq!(rows, [(2, 1.0), (1, 0.0)]);
        let window = Window { first: 6, last: 6 };
        let time = metrics::find("time").unwrap();
        assert_eq!(
            time.observe(&users[1], window),
            Some(Observation::Value(0.0))
        );
        let per_session = metrics::find("mean_time_per_session").unwrap();
        assert_eq!(per_session.observe(&users[1], window), None);
        assert_eq!(denominator(time, true), "exposed users");
        assert_eq!(denominator(time, false), "active users");
        assert_eq!(denominator(per_session, true), "active users");
        assert_eq!(
            denominator(metrics::find("session_time").unwrap(), true),
            "sessions"
        );
    }
}
