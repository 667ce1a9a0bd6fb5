//! The effect over time (`ab --trend`, docs/analysis.md#effect-over-time):
//! each day's effect on the primary metric (that day's users alone), the
//! cumulative effect (every day up to it), and a trend test on the daily
//! effects.
//!
//! A new recommender can win at first because it is new (novelty: the
//! effect fades) or lose at first because listeners must learn it (primacy:
//! the effect grows). The test fits a straight line through the daily
//! differences (ordinary least squares over the day number) and tests its
//! slope. The daily differences share listeners who come back day after
//! day, so the slope's variance is taken from each user's influence on
//! every day they are in ([`clustered`](super::clustered)), not from the
//! days as if independent. A significant slope against the overall effect's
//! sign is novelty, with it primacy.

use serde::Serialize;

use super::clustered::{normal_p, Contrast, Means};
use super::estimate::{Comparison, Sample};
use super::exposure::Exposures;
use super::extended::arm_samples;
use super::metrics::{Metric, Window};
use super::periods::DayedSessions;
use crate::logs::Days;

/// One treatment's effect on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayEffect {
    pub day: String,
    pub treatment: String,
    pub control_users: u64,
    pub treatment_users: u64,
    /// That day's users: effect and 95% bounds, percent of the day's control mean.
    pub effect: f64,
    pub lower: f64,
    pub upper: f64,
    /// Every day up to this one, as the fixed-horizon table computes it then.
    pub cumulative_effect: f64,
    pub cumulative_lower: f64,
    pub cumulative_upper: f64,
}

/// The trend test of one treatment's daily effects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendTest {
    pub treatment: String,
    pub days: usize,
    /// The slope of the daily difference, in the metric's units per day.
    pub slope: f64,
    pub slope_lower: f64,
    pub slope_upper: f64,
    /// The same in percent of the window's control mean, per day.
    pub slope_percent: f64,
    pub slope_percent_lower: f64,
    pub slope_percent_upper: f64,
    pub p_value: f64,
    /// `novelty` (a significant slope toward zero), `primacy` (away from
    /// it) or `steady`.
    pub verdict: &'static str,
}

/// Daily and cumulative effects and the trend tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub metric: String,
    pub days: Vec<DayEffect>,
    pub tests: Vec<TrendTest>,
}

/// What the trend reads.
pub struct Experiment<'a> {
    pub dayed: &'a DayedSessions<'a>,
    pub days: &'a Days,
    pub window: Window,
    pub exposures: Option<&'a Exposures>,
    pub arms: usize,
    pub control: u8,
    pub alpha: f64,
}

impl Experiment<'_> {
    /// Per-arm samples of `metric` over `window`, exposed users padded in.
    fn samples(&self, metric: &Metric, window: Window) -> Vec<Sample> {
        let mut users = self.dayed.user_sums(window, false);
        if let Some(exposures) = self.exposures {
            exposures.pad(&mut users, window.last, |_| true);
        }
        arm_samples(metric, &users, window, self.arms)
    }
}

/// The primary metric's effect per day, cumulative per day, and its trend.
pub fn analyze(e: &Experiment<'_>, metric: &'static Metric) -> Trend {
    let c = e.control as usize;
    let mut daily: Vec<(u32, Vec<Sample>)> = Vec::new();
    let mut effects = Vec::new();
    for day in e.window.first..=e.window.last {
        let alone = e.samples(
            metric,
            Window {
                first: day,
                last: day,
            },
        );
        if alone[c].values.len() < 2 {
            continue;
        }
        let so_far = e.samples(
            metric,
            Window {
                first: e.window.first,
                last: day,
            },
        );
        for t in (0..e.arms).filter(|&t| t != c && alone[t].values.len() >= 2) {
            let today = Comparison::new(alone[c].moments(), alone[t].moments());
            let cumulative = Comparison::new(so_far[c].moments(), so_far[t].moments());
            let (effect, lower, upper) = today.percent();
            let (cumulative_effect, cumulative_lower, cumulative_upper) = cumulative.percent();
            effects.push(DayEffect {
                day: e.days.label(day),
                treatment: botify::experiments::arm_label(t),
                control_users: today.control_users,
                treatment_users: today.treatment_users,
                effect,
                lower,
                upper,
                cumulative_effect,
                cumulative_lower,
                cumulative_upper,
            });
        }
        daily.push((day, alone));
    }
    let whole = e.samples(metric, e.window);
    let tests = (0..e.arms)
        .filter(|&t| t != c)
        .filter_map(|t| test(&daily, &whole, c, t, e.alpha))
        .collect();
    Trend {
        metric: metric.name.to_string(),
        days: effects,
        tests,
    }
}

/// The slope test of treatment `t` over the days where both arms have users.
fn test(
    daily: &[(u32, Vec<Sample>)],
    whole: &[Sample],
    c: usize,
    t: usize,
    alpha: f64,
) -> Option<TrendTest> {
    let days: Vec<&(u32, Vec<Sample>)> = daily
        .iter()
        .filter(|(_, s)| s[t].values.len() >= 2)
        .collect();
    if days.len() < 3 {
        return None;
    }
    let x: Vec<f64> = days.iter().map(|(d, _)| f64::from(*d)).collect();
    let mean_x = x.iter().sum::<f64>() / x.len() as f64;
    let sxx: f64 = x.iter().map(|v| (v - mean_x).powi(2)).sum();
    let weights: Vec<f64> = x.iter().map(|v| (v - mean_x) / sxx).collect();
    let control: Vec<Sample> = days.iter().map(|(_, s)| s[c].clone()).collect();
    let treated: Vec<Sample> = days.iter().map(|(_, s)| s[t].clone()).collect();
    let contrast = Contrast::new(&Means::of(&control), &Means::of(&treated));
    let (slope, variance) = contrast.combination(&weights);
    let half = 1.959963984540054 * variance.sqrt();
    let p_value = normal_p(slope, variance);
    let overall = Comparison::new(whole[c].moments(), whole[t].moments());
    let verdict = match (p_value < alpha, slope * overall.diff < 0.0) {
        (false, _) => "steady",
        (true, true) => "novelty",
        (true, false) => "primacy",
    };
    let scale = 100.0 / overall.control_mean;
    Some(TrendTest {
        treatment: botify::experiments::arm_label(t),
        days: days.len(),
        slope,
        slope_lower: slope - half,
        slope_upper: slope + half,
        slope_percent: slope * scale,
        slope_percent_lower: (slope - half) * scale,
        slope_percent_upper: (slope + half) * scale,
        p_value,
        verdict,
    })
}
