//! The days of the extended analysis's sessions and the pre-period read
//! from them: each session's day once per read ([`DayedSessions`]), and
//! each user's sums before the experiment ([`PrePeriod`]) that CUPED
//! adjusts with — from separate logs (`--pre LOGS`) or from the days before
//! `--start`.

use std::collections::HashMap;

use anyhow::{bail, Result};

use super::metrics::{self, Metric, Observation, UserSums, Window};
use crate::logs::{DayScheme, Days, Record};
use crate::sessions::{self, Session};

/// Sessions with the day of each, from one read.
pub struct DayedSessions<'a> {
    pub sessions: &'a [Session],
    pub days: Vec<u32>,
}

impl<'a> DayedSessions<'a> {
    pub fn new(sessions: &'a [Session], records: &[Record], days: &Days) -> Result<Self> {
        if days.scheme() == DayScheme::Mixed {
            bail!(
                "some log files sit in day-<n> folders and some do not, so their days cannot be \
                 compared; pass either day folders (LOGDIR/day-1, …) or logs without them"
            );
        }
        Ok(DayedSessions {
            sessions,
            days: sessions
                .iter()
                .map(|s| metrics::session_day(s, records, days))
                .collect(),
        })
    }

    /// The first and last day with a session; `None` without sessions.
    pub fn span(&self) -> Option<Window> {
        Some(Window {
            first: *self.days.iter().min()?,
            last: *self.days.iter().max()?,
        })
    }

    /// Per (user, arm) sums over the sessions of `window`; with `by_user`, a
    /// user's arms add up (see [`metrics::user_sums`]).
    pub fn user_sums(&self, window: Window, by_user: bool) -> Vec<UserSums> {
        metrics::user_sums(self.sessions, &self.days, window, by_user)
    }
}

/// Each user's pre-period sums (all arms together) and the pre-period's days.
#[derive(Debug, Clone)]
pub struct PrePeriod {
    pub users: Vec<UserSums>,
    pub window: Window,
}

impl PrePeriod {
    /// From separate pre-experiment logs (`--pre LOGS`): every closed session.
    pub fn from_logs(mut records: Vec<Record>, days: &Days) -> Result<PrePeriod> {
        sessions::sort(&mut records);
        let (sessions, _) = sessions::sessionize(&records);
        let dayed = DayedSessions::new(&sessions, &records, days)?;
        let Some(window) = dayed.span() else {
            bail!("the pre-period logs hold no closed session (no `last` event)");
        };
        Ok(PrePeriod::over(&dayed, window))
    }

    /// The days of `dayed` before `start` when there are any (`--start`
    /// without `--pre`).
    pub fn before(dayed: &DayedSessions<'_>, start: u32) -> Option<PrePeriod> {
        let first = dayed.span()?.first;
        (start > first).then(|| {
            PrePeriod::over(
                dayed,
                Window {
                    first,
                    last: start - 1,
                },
            )
        })
    }

    fn over(dayed: &DayedSessions<'_>, window: Window) -> PrePeriod {
        PrePeriod {
            users: dayed.user_sums(window, true),
            window,
        }
    }

    /// Each user's pre-period value of `metric` (ratio metrics: the user's ratio).
    pub fn values(&self, metric: &Metric) -> HashMap<u64, f64> {
        self.users
            .iter()
            .filter_map(|u| {
                let value = match metric.observe(u, self.window)? {
                    Observation::Value(v) => v,
                    Observation::Ratio(n, d) => n / d,
                };
                value.is_finite().then_some((u.user, value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::days::DAY_MS;

    /// A closed two-event session of `user` on UTC day `day`.
    fn session(user: u64, day: u64, time: f64) -> [Record; 2] {
        let ts = day * DAY_MS + user * 1_000;
        [
            Record::new(user, ts, 1, time, 0.001, Some(2), 0, false),
            Record::new(user, ts + 500, 2, time, 0.001, None, 0, true),
        ]
    }

    fn sessions_of(records: &mut [Record]) -> Vec<Session> {
        sessions::sort(records);
        sessions::sessionize(records).0
    }

    #[test]
    fn day_folders_and_plain_files_do_not_mix() {
        let mut records: Vec<Record> = session(1, 10, 0.5).into();
        let sessions = sessions_of(&mut records);
        let mixed = Days::new([(0, Some(1)), (1, None)]);
        let err = DayedSessions::new(&sessions, &records, &mixed)
            .err()
            .expect("mixed days are refused")
            .to_string();
        assert!(err.contains("LOGDIR/day-1"), "{err}");
        let dayed = DayedSessions::new(&sessions, &records, &Days::default()).unwrap();
        assert_eq!(dayed.days, [10]);
        assert_eq!(
            dayed.span(),
            Some(Window {
                first: 10,
                last: 10
            })
        );
    }

    #[test]
    fn the_days_before_start_are_each_users_pre_period() {
        let mut records = Vec::new();
        for (user, day) in [(1, 10), (1, 11), (2, 12), (3, 11)] {
            records.extend(session(user, day, 0.5));
        }
        let sessions = sessions_of(&mut records);
        let dayed = DayedSessions::new(&sessions, &records, &Days::default()).unwrap();
        assert!(
            PrePeriod::before(&dayed, 10).is_none(),
            "no day before the first"
        );
        let pre = PrePeriod::before(&dayed, 12).unwrap();
        assert_eq!(
            pre.window,
            Window {
                first: 10,
                last: 11
            }
        );
        let users: Vec<(u64, f64)> = pre.users.iter().map(|u| (u.user, u.sessions)).collect();
        assert_eq!(users, [(1, 2.0), (3, 1.0)]);

        let time = metrics::find("session_time").unwrap();
        let values = pre.values(time);
        // Ratio metrics: the user's own ratio (two tracks of 0.5 per session).
        assert_eq!(values.get(&1), Some(&1.0));
        // A return rate whose horizon lies past the pre-period has no value.
        let back = pre.values(metrics::find("return_d7").unwrap());
        assert!(back.is_empty(), "{back:?}");
    }

    #[test]
    fn pre_logs_without_a_closed_session_are_an_error() {
        let open = vec![Record::new(1, 5, 1, 0.5, 0.001, Some(2), 0, false)];
        let err = PrePeriod::from_logs(open, &Days::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no closed session"), "{err}");
        let pre = PrePeriod::from_logs(session(4, 3, 0.25).into(), &Days::default()).unwrap();
        assert_eq!(pre.window, Window { first: 3, last: 3 });
        assert_eq!(pre.users.len(), 1);
    }
}
