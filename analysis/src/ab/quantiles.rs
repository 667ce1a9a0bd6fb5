//! Quantiles of session time (`ab --quantiles`,
//! docs/analysis.md#quantile-metrics): did the median session move, or the
//! longest tenth (the 90th percentile)?
//!
//! A quantile over an arm's sessions is not a mean over users, and the
//! sessions of one listener are not independent, so neither Welch nor a
//! session-level interval applies. The interval is the delta-method one of
//! Deng, Knoblich & Lu (2018), "Applying the delta method in metric
//! analytics" (KDD): the share of sessions at or below the estimated
//! quantile, F̂(q̂) = Σ_u a_u / Σ_u n_u (a_u of the user's n_u sessions), is a
//! ratio metric over users, whose variance σ² the delta method gives with
//! the user as the unit. The quantile's 95% interval is then the sessions
//! ranked at p ± 1.96σ, and its standard error that interval's width over
//! 2 × 1.96. Two arms' quantiles are independent: the difference's variance
//! is the sum. It costs one sort per arm, where a user-level bootstrap
//! would cost hundreds.

use serde::Serialize;

use super::clustered::normal_p;
use super::correction::Correction;
use super::estimate::linearise;
use super::metrics::Window;
use super::periods::DayedSessions;
use tally::Moments;

/// The quantiles reported, with the name of their row.
pub const QUANTILES: [(&str, f64); 2] = [("session_time_p50", 0.5), ("session_time_p90", 0.9)];

const Z: f64 = 1.959963984540054;

/// One treatment against the control on one quantile of session time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantileRow {
    pub treatment: String,
    pub metric: &'static str,
    pub control_sessions: u64,
    pub treatment_sessions: u64,
    pub control_value: f64,
    pub treatment_value: f64,
    /// Effect and 95% bounds, percent of the control's quantile.
    pub effect: f64,
    pub lower: f64,
    pub upper: f64,
    pub p_value: f64,
    /// After the correction, across the quantile rows.
    pub p_adjusted: f64,
    pub significant: bool,
}

/// Each arm's session times in `window`, grouped by user: `[arm][user][session]`.
pub fn arm_sessions(dayed: &DayedSessions<'_>, window: Window, arms: usize) -> Vec<Vec<Vec<f64>>> {
    let mut out: Vec<Vec<Vec<f64>>> = vec![Vec::new(); arms];
    let mut last: Option<(u64, u8)> = None;
    for (s, &day) in dayed.sessions.iter().zip(&dayed.days) {
        if !window.contains(day) || s.arm as usize >= arms {
            continue;
        }
        let arm = &mut out[s.arm as usize];
        if last != Some((s.user, s.arm)) {
            arm.push(Vec::new());
            last = Some((s.user, s.arm));
        }
        arm.last_mut().expect("pushed above").push(s.time);
    }
    out
}

/// The nearest-rank `p` quantile of ascending `sorted` (not empty).
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One arm's `p` quantile and its standard error, users as clusters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub standard_error: f64,
    pub sessions: u64,
}

impl Estimate {
    pub fn of(users: &[Vec<f64>], p: f64) -> Option<Estimate> {
        let mut sorted: Vec<f64> = users.iter().flatten().copied().collect();
        if users.len() < 2 || sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let value = nearest_rank(&sorted, p);
        let parts: Vec<(f64, f64)> = users
            .iter()
            .map(|u| {
                (
                    u.iter().filter(|&&t| t <= value).count() as f64,
                    u.len() as f64,
                )
            })
            .collect();
        let share = Moments::of(&linearise(&parts));
        let sigma = (share.var() / share.count() as f64).sqrt();
        let lower = nearest_rank(&sorted, (p - Z * sigma).max(0.0));
        let upper = nearest_rank(&sorted, (p + Z * sigma).min(1.0));
        Some(Estimate {
            value,
            standard_error: (upper - lower) / (2.0 * Z),
            sessions: sorted.len() as u64,
        })
    }
}

/// Median and 90th percentile of session time, each treatment against the
/// control; `correction` across the rows.
pub fn analyze(
    dayed: &DayedSessions<'_>,
    window: Window,
    arms: usize,
    control: u8,
    correction: Correction,
    alpha: f64,
) -> Vec<QuantileRow> {
    let sessions = arm_sessions(dayed, window, arms);
    let c = control as usize;
    let mut rows = Vec::new();
    for (metric, p) in QUANTILES {
        let Some(base) = Estimate::of(&sessions[c], p) else {
            continue;
        };
        for t in (0..arms).filter(|&t| t != c) {
            let Some(treated) = Estimate::of(&sessions[t], p) else {
                continue;
            };
            let diff = treated.value - base.value;
            let variance = base.standard_error.powi(2) + treated.standard_error.powi(2);
            let half = Z * variance.sqrt();
            let scale = 100.0 / base.value;
            rows.push(QuantileRow {
                treatment: botify::experiments::arm_label(t),
                metric,
                control_sessions: base.sessions,
                treatment_sessions: treated.sessions,
                control_value: base.value,
                treatment_value: treated.value,
                effect: diff * scale,
                lower: (diff - half) * scale,
                upper: (diff + half) * scale,
                p_value: normal_p(diff, variance),
                p_adjusted: f64::NAN,
                significant: false,
            });
        }
    }
    let p: Vec<f64> = rows.iter().map(|r| r.p_value).collect();
    for (row, q) in rows.iter_mut().zip(correction.adjust(&p)) {
        row.p_adjusted = q;
        row.significant = q < alpha;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_takes_the_ceiling_rank() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(nearest_rank(&sorted, 0.5), 2.0);
        assert_eq!(nearest_rank(&sorted, 0.9), 4.0);
        assert_eq!(nearest_rank(&sorted, 0.0), 1.0);
        assert_eq!(nearest_rank(&sorted, 1.0), 4.0);
    }

    #[test]
    fn clustered_sessions_widen_the_interval() {
        // 200 users, each with 5 sessions of one value: 1000 sessions that
        // carry no more than 200 users' information.
        let clustered: Vec<Vec<f64>> = (0..200).map(|u| vec![f64::from(u); 5]).collect();
        let one_each: Vec<Vec<f64>> = (0..200).map(|u| vec![f64::from(u)]).collect();
        let as_independent: Vec<Vec<f64>> = (0..1000).map(|i| vec![f64::from(i / 5)]).collect();
        let a = Estimate::of(&clustered, 0.5).unwrap();
        let b = Estimate::of(&one_each, 0.5).unwrap();
        let c = Estimate::of(&as_independent, 0.5).unwrap();
        assert_eq!((a.value, a.sessions), (99.0, 1000));
        let same = a.standard_error / b.standard_error;
        assert!((0.9..1.1).contains(&same), "{same}");
        // Counting the sessions as independent would be √5 times too narrow.
        let wider = a.standard_error / c.standard_error;
        assert!((2.0..2.5).contains(&wider), "{wider}");
        assert!(Estimate::of(&clustered[..1], 0.5).is_none());
    }
}
