//! Quantiles of session time (`ab --quantiles`,
//! docs/analysis.md#quantile-metrics): did the median session move, or the
//! longest tenth (the 90th percentile)?
//!
//! A quantile over an arm's sessions is not a mean over users, and the
//! sessions of one listener are not independent, so neither Welch nor a
//! session-level interval applies. Each arm's interval is the delta-method
//! one of Deng, Knoblich & Lu (2018), "Applying the delta method in metric
//! analytics" (KDD): the share of sessions at or below the estimated
//! quantile, F̂(q̂) = Σ_u a_u / Σ_u n_u (a_u of the user's n_u sessions), is a
//! ratio metric over users, whose standard error σ the delta method gives
//! with the user as the unit; the quantile's 95% interval is then the
//! sessions ranked at p − 1.96σ and p + 1.96σ. It costs one sort per arm,
//! where a user-level bootstrap would cost hundreds.
//!
//! That interval is not symmetric where the density of session times is
//! not: a quantile at the edge of a dense region (session lengths that pile
//! up below some value, then thin out) can move little one way and far the
//! other. Folding it into one standard error would widen both sides to the
//! mean of the two and make the test conservative. The difference of two
//! arms therefore keeps both sides, by the MOVER construction of Zou &
//! Donner (2008), "Construction of confidence limits about effect measures:
//! a general approach" (Statistics in Medicine): the lower limit of
//! `q_T − q_C` combines the treatment's lower side with the control's upper
//! one, `L = d − √((q_T − l_T)² + (u_C − q_C)²)`, and the upper limit the
//! other two sides. The p-value is the normal one of the side that faces
//! zero, so a row is significant exactly when its interval excludes zero.

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

/// The mid-distribution `p` quantile of ascending `sorted` (not empty), of
/// Ma, Genton & Parzen (2011), "Asymptotic properties of sample quantiles of
/// discrete distributions" (AISM): each distinct value `v` stands at
/// `F_mid(v) = (#below + #equal / 2) / n`, and the quantile interpolates
/// linearly between those points (the first or last value beyond them).
/// Session times repeat, and a nearest-rank quantile would stick to a
/// repeated value and move in jumps; this one moves smoothly with the data.
pub fn mid_quantile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len() as f64;
    let mut previous: Option<(f64, f64)> = None;
    let mut start = 0;
    while start < sorted.len() {
        let value = sorted[start];
        let end = start + sorted[start..].partition_point(|&t| t <= value);
        let at = (start as f64 + (end - start) as f64 / 2.0) / n;
        if p <= at {
            return match previous {
                Some((before, below)) => below + (value - below) * (p - before) / (at - before),
                None => value,
            };
        }
        previous = Some((at, value));
        start = end;
    }
    sorted[sorted.len() - 1]
}

/// One arm's `p` quantile and its 95% interval, users as clusters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
    pub sessions: u64,
}

impl Estimate {
    pub fn of(users: &[Vec<f64>], p: f64) -> Option<Estimate> {
        let mut sorted: Vec<f64> = users.iter().flatten().copied().collect();
        if users.len() < 2 || sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let value = mid_quantile(&sorted, p);
        // Each user's sessions below the quantile, a session equal to it
        // counting half, as in the mid-distribution.
        let below = |t: f64| match t.total_cmp(&value) {
            std::cmp::Ordering::Less => 1.0,
            std::cmp::Ordering::Equal => 0.5,
            std::cmp::Ordering::Greater => 0.0,
        };
        let parts: Vec<(f64, f64)> = users
            .iter()
            .map(|u| (u.iter().map(|&t| below(t)).sum(), u.len() as f64))
            .collect();
        let share = Moments::of(&linearise(&parts));
        let sigma = (share.var() / share.count() as f64).sqrt();
        Some(Estimate {
            value,
            lower: mid_quantile(&sorted, p - Z * sigma),
            upper: mid_quantile(&sorted, p + Z * sigma),
            sessions: sorted.len() as u64,
        })
    }
}

/// `treated − control` with its 95% interval (MOVER, each side from the two
/// arms' facing sides) and the p-value of the side that faces zero.
fn difference(control: &Estimate, treated: &Estimate) -> (f64, f64, f64, f64) {
    let diff = treated.value - control.value;
    let below = (treated.value - treated.lower).hypot(control.upper - control.value);
    let above = (treated.upper - treated.value).hypot(control.value - control.lower);
    let (mut lower, mut upper) = (diff - below, diff + above);
    // Session times repeat (sums of a few listen lengths), so the bound that
    // faces zero often falls exactly on it, and floating point puts it a
    // rounding error to either side. Such an interval touches zero; its
    // exact p-value is 0.05, not below it.
    let rounding = 1e-9 * control.value.abs().max(treated.value.abs());
    let (facing_zero, side) = if diff > 0.0 {
        (&mut lower, below)
    } else {
        (&mut upper, above)
    };
    let p_value = if diff == 0.0 {
        // Equal quantiles: no evidence of a difference, even when both
        // intervals have shrunk to a point.
        1.0
    } else if facing_zero.abs() <= rounding {
        *facing_zero = 0.0;
        0.05
    } else {
        normal_p(diff, (side / Z).powi(2))
    };
    (diff, lower, upper, p_value)
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
            let (diff, lower, upper, p_value) = difference(&base, &treated);
            let scale = 100.0 / base.value;
            rows.push(QuantileRow {
                treatment: botify::experiments::arm_label(t),
                metric,
                control_sessions: base.sessions,
                treatment_sessions: treated.sessions,
                control_value: base.value,
                treatment_value: treated.value,
                effect: diff * scale,
                lower: lower * scale,
                upper: upper * scale,
                p_value,
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
    fn the_mid_quantile_interpolates_between_mid_ranks() {
        // Knots at 1/8, 3/8, 5/8, 7/8.
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(mid_quantile(&sorted, 0.5), 2.5);
        assert_eq!(mid_quantile(&sorted, 0.9), 4.0);
        assert_eq!(mid_quantile(&sorted, 0.0), 1.0);
        assert_eq!(mid_quantile(&sorted, 0.25), 1.5);
        // A repeated value stands at the middle of its run: 1 at 3/8, 2 at 7/8.
        let tied = [1.0, 1.0, 1.0, 2.0];
        assert_eq!(mid_quantile(&tied, 0.375), 1.0);
        assert_eq!(mid_quantile(&tied, 0.5), 1.25);
        assert_eq!(mid_quantile(&[5.0], 0.9), 5.0);
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
        assert_eq!((a.value, a.sessions), (99.5, 1000));
        let width = |e: Estimate| e.upper - e.lower;
        let same = width(a) / width(b);
        assert!((0.9..1.1).contains(&same), "{same}");
        // Counting the sessions as independent would be √5 times too narrow.
        let wider = width(a) / width(c);
        assert!((2.0..2.5).contains(&wider), "{wider}");
        assert!(Estimate::of(&clustered[..1], 0.5).is_none());
    }

    /// Sessions that pile up to 3.0 and thin out above it: 90 users with
    /// times 2.00–2.99, 10 with times spread over 3.0–12.0.
    fn piled_up(shift: f64) -> Vec<Vec<f64>> {
        let dense = (0..90).map(|u| vec![2.0 + f64::from(u) / 90.0 + shift]);
        let sparse = (0..10).map(|u| vec![3.0 + f64::from(u) + shift]);
        dense.chain(sparse).collect()
    }

    #[test]
    fn a_quantile_at_the_edge_of_a_dense_region_keeps_its_two_sides() {
        let e = Estimate::of(&piled_up(0.0), 0.85).unwrap();
        // Moving down costs little, moving up reaches into the sparse tail.
        assert!(e.upper - e.value > 3.0 * (e.value - e.lower), "{e:?}");
        let (diff, lower, upper, p) = difference(&e, &e);
        assert_eq!((diff, p), (0.0, 1.0));
        // Either arm may sit far above the other: both sides of the
        // difference reach into the tail.
        assert!(-lower > 2.0 * (e.value - e.lower) && upper > 2.0 * (e.value - e.lower));
    }

    #[test]
    fn an_interval_that_touches_zero_is_not_significant() {
        // The treatment's quantile sits one step above the control's, on the
        // control's upper bound, with nothing below it: the lower bound of
        // the difference is zero up to rounding.
        let control = Estimate {
            value: 3.46,
            lower: 3.45,
            upper: 3.47,
            sessions: 2000,
        };
        let treated = Estimate {
            value: 3.47,
            lower: 3.47,
            upper: 3.52,
            sessions: 2000,
        };
        let (diff, lower, upper, p) = difference(&control, &treated);
        assert!(diff > 0.0 && upper > diff);
        assert_eq!((lower, p), (0.0, 0.05));
    }

    #[test]
    fn the_p_value_agrees_with_the_interval() {
        let control = Estimate::of(&piled_up(0.0), 0.5).unwrap();
        for shift in [0.01, 0.05, 0.1, 0.2, 0.4, -0.05, -0.1, -0.4] {
            let treated = Estimate::of(&piled_up(shift), 0.5).unwrap();
            let (diff, lower, upper, p) = difference(&control, &treated);
            assert!((shift - diff).abs() < 0.02, "{shift} {diff}");
            let excludes_zero = lower > 0.0 || upper < 0.0;
            assert_eq!(excludes_zero, p < 0.05, "{shift}: [{lower}, {upper}] p {p}");
        }
    }
}
