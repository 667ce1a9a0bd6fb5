//! The metric catalogue of the extended A/B analysis (docs/analysis.md#metrics)
//! and the per-user sums every metric is computed from.
//!
//! Two kinds of metric, because the unit of randomisation is the user:
//! - **user metrics**: one value per user (e.g. `time`, `return_d1`); arms
//!   are compared on the mean over users (Welch);
//! - **ratio metrics**: a ratio of sums over all of an arm's users (e.g.
//!   `session_time` = Σ time / Σ sessions). Sessions of one user are not
//!   independent, so the ratio's variance comes from the per-user numerators
//!   and denominators by the delta method (`estimate.rs`), not from sessions.
//!
//! Guardrails (latency, fallbacks, errors) are reported apart from success
//! metrics and corrected as their own family.

use std::collections::BTreeSet;

use crate::logs::{Days, Record, NO_ARM};
use crate::sessions::Session;

/// How a metric is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One value per user.
    User,
    /// Σ numerator / Σ denominator over an arm's users.
    Ratio,
}

/// What a metric is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Success,
    Guardrail,
}

/// One metric of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub role: Role,
    /// A rise is good (for colouring and for reading a guardrail).
    pub higher_is_better: bool,
    /// One line for `--help` and the docs.
    pub about: &'static str,
}

const fn metric(
    name: &'static str,
    kind: Kind,
    role: Role,
    higher_is_better: bool,
    about: &'static str,
) -> Metric {
    Metric {
        name,
        kind,
        role,
        higher_is_better,
        about,
    }
}

/// Every metric, success metrics first.
pub const CATALOGUE: [Metric; 14] = [
    metric(
        "time",
        Kind::User,
        Role::Success,
        true,
        "Σ time of the user's sessions",
    ),
    metric(
        "sessions",
        Kind::User,
        Role::Success,
        true,
        "the user's sessions",
    ),
    metric(
        "mean_tracks_per_session",
        Kind::User,
        Role::Success,
        true,
        "Σ tracks / sessions",
    ),
    metric(
        "mean_time_per_session",
        Kind::User,
        Role::Success,
        true,
        "Σ time / sessions",
    ),
    metric(
        "active_days",
        Kind::User,
        Role::Success,
        true,
        "days with a session",
    ),
    metric(
        "sessions_per_active_day",
        Kind::User,
        Role::Success,
        true,
        "sessions / active_days",
    ),
    metric(
        "time_per_day",
        Kind::User,
        Role::Success,
        true,
        "Σ time / active_days",
    ),
    metric(
        "return_d1",
        Kind::User,
        Role::Success,
        true,
        "active the day after the first active day (0/1)",
    ),
    metric(
        "return_d7",
        Kind::User,
        Role::Success,
        true,
        "active within 7 days after the first active day (0/1)",
    ),
    metric(
        "session_time",
        Kind::Ratio,
        Role::Success,
        true,
        "Σ time / Σ sessions over the arm",
    ),
    metric(
        "session_tracks",
        Kind::Ratio,
        Role::Success,
        true,
        "Σ tracks / Σ sessions over the arm",
    ),
    metric(
        "mean_request_latency",
        Kind::User,
        Role::Guardrail,
        false,
        "Σ latency ms / Σ tracks of the user",
    ),
    metric(
        "fallback_rate",
        Kind::Ratio,
        Role::Guardrail,
        false,
        "fallback answers / answers over the arm",
    ),
    metric(
        "error_rate",
        Kind::Ratio,
        Role::Guardrail,
        false,
        "broken sessions / sessions over the arm",
    ),
];

/// The metric named `name`.
pub fn find(name: &str) -> Option<&'static Metric> {
    CATALOGUE.iter().find(|m| m.name == name)
}

/// Parses `--metrics a,b,c` (or `all`): known names, no duplicates, in the
/// order given (the first success metric is the primary one, charted per day).
pub fn parse_list(text: &str) -> Result<Vec<&'static Metric>, String> {
    if text.trim() == "all" {
        return Ok(CATALOGUE.iter().collect());
    }
    let mut chosen: Vec<&'static Metric> = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let metric = find(name).ok_or_else(|| {
            let known: Vec<&str> = CATALOGUE.iter().map(|m| m.name).collect();
            format!("unknown metric {name:?}; known: all, {}", known.join(", "))
        })?;
        if chosen.iter().any(|m| m.name == name) {
            return Err(format!("metric {name:?} is listed twice"));
        }
        chosen.push(metric);
    }
    if chosen.is_empty() {
        return Err("--metrics lists no metric; e.g. --metrics time,return_d1".into());
    }
    Ok(chosen)
}

/// A span of days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub first: u32,
    pub last: u32,
}

impl Window {
    pub fn contains(&self, day: u32) -> bool {
        (self.first..=self.last).contains(&day)
    }
}

/// One user's sums over the sessions of one arm inside a window: what every
/// metric is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSums {
    pub user: u64,
    pub arm: u8,
    pub time: f64,
    pub sessions: f64,
    pub tracks: f64,
    pub latency_ms: f64,
    /// Answers (`next` events): tracks minus the closing `last`s.
    pub answers: f64,
    pub fallbacks: f64,
    pub broken: f64,
    /// Days with a session, ascending.
    pub days: Vec<u32>,
}

impl UserSums {
    /// A user with nothing yet: sums are added to it, or it stands for an
    /// exposed user without a session (`ab --exposure`).
    pub fn empty(user: u64, arm: u8) -> UserSums {
        UserSums {
            user,
            arm,
            time: 0.0,
            sessions: 0.0,
            tracks: 0.0,
            latency_ms: 0.0,
            answers: 0.0,
            fallbacks: 0.0,
            broken: 0.0,
            days: Vec::new(),
        }
    }
}

/// A session's day: the day of its first event.
pub fn session_day(session: &Session, records: &[Record], days: &Days) -> u32 {
    days.day(&records[session.first])
}

/// Per (user, arm) sums over the sessions whose day is in `window`.
/// `sessions` must be grouped by (user, arm), as sessionization returns
/// them; `session_days[i]` is the day of `sessions[i]`. With `by_user`, a
/// user's sessions in every arm add up under [`NO_ARM`] (the pre-period,
/// where the experiment may not have existed yet).
pub fn user_sums(
    sessions: &[Session],
    session_days: &[u32],
    window: Window,
    by_user: bool,
) -> Vec<UserSums> {
    let mut out: Vec<UserSums> = Vec::new();
    let mut days = BTreeSet::new();
    for (s, &day) in sessions.iter().zip(session_days) {
        if !window.contains(day) {
            continue;
        }
        let arm = if by_user { NO_ARM } else { s.arm };
        let same = out.last().is_some_and(|u| u.user == s.user && u.arm == arm);
        if !same {
            if let Some(u) = out.last_mut() {
                u.days = std::mem::take(&mut days).into_iter().collect();
            }
            out.push(UserSums::empty(s.user, arm));
        }
        let u = out.last_mut().expect("pushed above");
        u.time += s.time;
        u.sessions += 1.0;
        u.tracks += f64::from(s.tracks);
        u.latency_ms += s.latency_ms;
        u.answers += f64::from(s.tracks - 1);
        u.fallbacks += f64::from(s.fallbacks);
        u.broken += f64::from(u8::from(s.broken));
        days.insert(day);
    }
    if let Some(u) = out.last_mut() {
        u.days = days.into_iter().collect();
    }
    if by_user {
        // A user's arms were separate streams; add them up.
        out.sort_by_key(|u| u.user);
        out.dedup_by(|later, earlier| {
            if later.user != earlier.user {
                return false;
            }
            earlier.time += later.time;
            earlier.sessions += later.sessions;
            earlier.tracks += later.tracks;
            earlier.latency_ms += later.latency_ms;
            earlier.answers += later.answers;
            earlier.fallbacks += later.fallbacks;
            earlier.broken += later.broken;
            earlier.days.extend(&later.days);
            earlier.days.sort_unstable();
            earlier.days.dedup();
            true
        });
    }
    out
}

/// What a metric needs from one user: a value (user metrics) or a
/// numerator and denominator (ratio metrics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    Value(f64),
    Ratio(f64, f64),
}

impl Metric {
    /// A per-user total, which is zero for an exposed user who did not come
    /// back (the exposure design counts them); other metrics are undefined
    /// without a session.
    pub fn counts_absent_users(&self) -> bool {
        matches!(self.name, "time" | "sessions" | "active_days")
    }

    /// The user's observation of this metric over `window`; `None` when the
    /// user does not count for it (a return rate whose horizon lies past the
    /// window, a ratio with nothing in its denominator).
    pub fn observe(&self, u: &UserSums, window: Window) -> Option<Observation> {
        let active = u.days.len() as f64;
        let Some(&first) = u.days.first() else {
            // An exposed user without a session (`ab --exposure`).
            return self
                .counts_absent_users()
                .then_some(Observation::Value(0.0));
        };
        let returned = |horizon: u32| -> Option<f64> {
            if first + horizon > window.last {
                return None;
            }
            let back = u.days.iter().any(|&d| d > first && d <= first + horizon);
            let exact = u.days.contains(&(first + 1));
            Some(f64::from(u8::from(if horizon == 1 { exact } else { back })))
        };
        let value = |v: f64| Some(Observation::Value(v));
        let ratio = |n: f64, d: f64| (d > 0.0).then_some(Observation::Ratio(n, d));
        match self.name {
            "time" => value(u.time),
            "sessions" => value(u.sessions),
            "mean_tracks_per_session" => value(u.tracks / u.sessions),
            "mean_time_per_session" => value(u.time / u.sessions),
            "active_days" => value(active),
            "sessions_per_active_day" => value(u.sessions / active),
            "time_per_day" => value(u.time / active),
            "return_d1" => returned(1).map(Observation::Value),
            "return_d7" => returned(7).map(Observation::Value),
            "session_time" => ratio(u.time, u.sessions),
            "session_tracks" => ratio(u.tracks, u.sessions),
            "mean_request_latency" => value(u.latency_ms / u.tracks),
            "fallback_rate" => ratio(u.fallbacks, u.answers),
            "error_rate" => ratio(u.broken, u.sessions),
            other => unreachable!("metric {other} is in the catalogue but not computed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(user: u64, arm: u8, tracks: u32, time: f64) -> Session {
        Session {
            user,
            arm,
            start: 0,
            end: 0,
            tracks,
            time,
            latency_ms: 2.0 * f64::from(tracks),
            fallbacks: 1,
            broken: tracks == 4,
            first: 0,
        }
    }

    #[test]
    fn every_catalogued_metric_is_computed_and_names_are_unique() {
        let u = UserSums {
            user: 1,
            arm: 0,
            time: 6.0,
            sessions: 3.0,
            tracks: 9.0,
            latency_ms: 18.0,
            answers: 6.0,
            fallbacks: 3.0,
            broken: 1.0,
            days: vec![1, 2, 5],
        };
        let window = Window { first: 1, last: 8 };
        for m in &CATALOGUE {
            assert!(m.observe(&u, window).is_some(), "{}", m.name);
            assert_eq!(CATALOGUE.iter().filter(|o| o.name == m.name).count(), 1);
        }
        let get = |name: &str| find(name).unwrap().observe(&u, window).unwrap();
        assert_eq!(get("mean_request_latency"), Observation::Value(2.0));
        assert_eq!(get("active_days"), Observation::Value(3.0));
        assert_eq!(get("sessions_per_active_day"), Observation::Value(1.0));
        assert_eq!(get("time_per_day"), Observation::Value(2.0));
        assert_eq!(get("return_d1"), Observation::Value(1.0));
        assert_eq!(get("return_d7"), Observation::Value(1.0));
        assert_eq!(get("session_time"), Observation::Ratio(6.0, 3.0));
        assert_eq!(get("fallback_rate"), Observation::Ratio(3.0, 6.0));
        assert_eq!(get("error_rate"), Observation::Ratio(1.0, 3.0));
    }

    #[test]
    fn return_rates_count_only_users_whose_horizon_is_observed() {
        let user = |days: Vec<u32>| UserSums {
            user: 1,
            arm: 0,
            time: 1.0,
            sessions: 1.0,
            tracks: 1.0,
            latency_ms: 0.0,
            answers: 0.0,
            fallbacks: 0.0,
            broken: 0.0,
            days,
        };
        let d1 = find("return_d1").unwrap();
        let d7 = find("return_d7").unwrap();
        let window = Window { first: 1, last: 8 };
        // Back on day 3 only: not a day-1 return, a 7-day return.
        assert_eq!(
            d1.observe(&user(vec![2, 3 + 1]), window),
            Some(Observation::Value(0.0))
        );
        assert_eq!(
            d7.observe(&user(vec![1, 3]), window),
            Some(Observation::Value(1.0))
        );
        assert_eq!(
            d7.observe(&user(vec![1]), window),
            Some(Observation::Value(0.0))
        );
        // First seen on day 2: day 9 is past the window, so no 7-day verdict.
        assert_eq!(d7.observe(&user(vec![2, 3]), window), None);
        assert_eq!(d1.observe(&user(vec![8]), window), None);
        assert_eq!(
            d1.observe(&user(vec![7, 8]), window),
            Some(Observation::Value(1.0))
        );
    }

    #[test]
    fn sums_follow_the_window_and_merge_arms_for_the_pre_period() {
        let sessions = [
            session(1, 0, 3, 2.0),
            session(1, 0, 4, 1.0),
            session(1, 1, 2, 1.0),
            session(2, 1, 2, 0.5),
        ];
        let days = [1, 3, 2, 3];
        let sums = user_sums(&sessions, &days, Window { first: 1, last: 3 }, false);
        assert_eq!(sums.len(), 3);
        assert_eq!((sums[0].user, sums[0].arm, sums[0].sessions), (1, 0, 2.0));
        assert_eq!(sums[0].days, vec![1, 3]);
        assert_eq!(
            (sums[0].tracks, sums[0].answers, sums[0].broken),
            (7.0, 5.0, 1.0)
        );
        let early = user_sums(&sessions, &days, Window { first: 1, last: 2 }, false);
        assert_eq!(early.len(), 2);
        let pre = user_sums(&sessions, &days, Window { first: 1, last: 3 }, true);
        assert_eq!(pre.len(), 2);
        assert_eq!(
            (pre[0].arm, pre[0].sessions, pre[0].time),
            (NO_ARM, 3.0, 4.0)
        );
        assert_eq!(pre[0].days, vec![1, 2, 3]);
    }

    #[test]
    fn metric_lists_parse_strictly() {
        let names = |l: Vec<&Metric>| l.iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(
            names(parse_list("time, return_d1").unwrap()),
            ["time", "return_d1"]
        );
        assert_eq!(parse_list("all").unwrap().len(), CATALOGUE.len());
        assert!(parse_list("time,nope")
            .unwrap_err()
            .contains("unknown metric \"nope\""));
        assert!(parse_list("time,time").unwrap_err().contains("twice"));
        assert!(parse_list(" , ").is_err());
    }
}
