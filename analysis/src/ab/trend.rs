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
use super::estimate::Comparison;
use super::exposure::Exposures;
use super::extended::arm_observations;
use super::group_sums::GroupSums;
use super::metrics::{Metric, Observation, Window};
use super::periods::DayedSessions;
use super::sums::Sums;
use crate::logs::Days;
use tally::Moments;

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
    /// Per-arm observations of `metric` over `window`, exposed users padded in.
    fn observations(&self, metric: &Metric, window: Window) -> Vec<Vec<(u64, Observation)>> {
        let mut users = self.dayed.user_sums(window, false);
        if let Some(exposures) = self.exposures {
            exposures.pad(&mut users, window.last, |_| true);
        }
        arm_observations(metric, &users, window, self.arms)
    }

    /// Every day's statistics of `metric`: that day alone, and the window
    /// up to it.
    fn sums(&self, metric: &Metric) -> DaySums {
        let mut days = Vec::new();
        let mut alone: Vec<Vec<Vec<(u64, Observation)>>> = vec![Vec::new(); self.arms];
        let mut through = Vec::new();
        for day in self.window.first..=self.window.last {
            let today = Window {
                first: day,
                last: day,
            };
            for (arm, o) in self.observations(metric, today).into_iter().enumerate() {
                alone[arm].push(o);
            }
            let so_far = Window {
                first: self.window.first,
                last: day,
            };
            let sums = self
                .observations(metric, so_far)
                .iter()
                .map(|o| Sums::of(metric.kind, o))
                .collect();
            through.push(sums);
            days.push((day, self.days.label(day)));
        }
        DaySums {
            days,
            alone: alone
                .iter()
                .map(|o| GroupSums::of(metric.kind, o))
                .collect(),
            through,
        }
    }
}

/// Every day's statistics of one metric: what the logs, or a warehouse's
/// per-day rows, reduce to.
#[derive(Debug, Clone, PartialEq)]
pub struct DaySums {
    /// The window's days, in order: the day number (any origin: only the
    /// spacing enters the slope) and its label.
    pub days: Vec<(u32, String)>,
    /// Per arm, each day's sums (in `days` order) and each pair of days'.
    pub alone: Vec<GroupSums>,
    /// `[day][arm]`: the sums over every day of the window up to this one.
    pub through: Vec<Vec<Sums>>,
}

/// The primary metric's effect per day, cumulative per day, and its trend.
pub fn analyze(e: &Experiment<'_>, metric: &'static Metric) -> Trend {
    compare(metric, &e.sums(metric), e.control, e.alpha)
}

/// Daily and cumulative effects and the trend tests, from the days' sums.
pub fn compare(metric: &Metric, sums: &DaySums, control: u8, alpha: f64) -> Trend {
    let c = control as usize;
    let arms = sums.alone.len();
    let alone = |arm: usize, g: usize| sums.alone[arm].groups[g].linear(metric.kind).moments();
    let through = |arm: usize, g: usize| sums.through[g][arm].linear(metric.kind).moments();
    let mut daily = Vec::new();
    let mut effects = Vec::new();
    for (g, (_, label)) in sums.days.iter().enumerate() {
        if alone(c, g).count() < 2 {
            continue;
        }
        for t in (0..arms).filter(|&t| t != c && alone(t, g).count() >= 2) {
            let today = Comparison::new(alone(c, g), alone(t, g));
            let cumulative = Comparison::new(through(c, g), through(t, g));
            let (effect, lower, upper) = today.percent();
            let (cumulative_effect, cumulative_lower, cumulative_upper) = cumulative.percent();
            effects.push(DayEffect {
                day: label.clone(),
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
        daily.push(g);
    }
    let tests = match sums.through.len().checked_sub(1) {
        Some(last) => {
            let whole: Vec<Moments> = (0..arms).map(|a| through(a, last)).collect();
            (0..arms)
                .filter(|&t| t != c)
                .filter_map(|t| test(metric, sums, &daily, &whole, c, t, alpha))
                .collect()
        }
        None => Vec::new(),
    };
    Trend {
        metric: metric.name.to_string(),
        days: effects,
        tests,
    }
}

/// The slope test of treatment `t` over the `daily` days where both arms
/// have users.
fn test(
    metric: &Metric,
    sums: &DaySums,
    daily: &[usize],
    whole: &[Moments],
    c: usize,
    t: usize,
    alpha: f64,
) -> Option<TrendTest> {
    let days: Vec<usize> = daily
        .iter()
        .copied()
        .filter(|&g| sums.alone[t].groups[g].n >= 2)
        .collect();
    if days.len() < 3 {
        return None;
    }
    let x: Vec<f64> = days.iter().map(|&g| f64::from(sums.days[g].0)).collect();
    let mean_x = x.iter().sum::<f64>() / x.len() as f64;
    let sxx: f64 = x.iter().map(|v| (v - mean_x).powi(2)).sum();
    let weights: Vec<f64> = x.iter().map(|v| (v - mean_x) / sxx).collect();
    let means = |arm: usize| Means::of(metric.kind, &sums.alone[arm]).restrict(&days);
    let contrast = Contrast::new(&means(c), &means(t));
    let (slope, variance) = contrast.combination(&weights);
    let half = 1.959963984540054 * variance.sqrt();
    let p_value = normal_p(slope, variance);
    let overall = Comparison::new(whole[c], whole[t]);
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
