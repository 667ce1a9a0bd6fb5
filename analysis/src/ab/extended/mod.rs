//! The extended A/B analysis (`ab` with `--metrics`, `--pre`, `--start`,
//! `--sequential` or `--correction`): any metrics of the catalogue, ratio
//! metrics by the delta method, CUPED, corrections for many arms and
//! metrics, relative-lift intervals and always-valid daily looks
//! (docs/analysis.md#the-extended-analysis).
//!
//! Days follow the log convention (`logs/days.rs`): `day-<n>` folders, else
//! UTC days. The experiment window runs from `--start` (default: the first
//! day in the logs) to the last day; with `--start`, the days before it are
//! each user's pre-period, with `--pre LOGS` those logs are.
//!
//! [`analyze`] runs the steps in order: the window, the pre-period, the arms,
//! the fixed-horizon rows with CUPED's fits, the correction within each
//! family, then the daily looks. `fixed.rs` is the fixed-horizon part, on
//! per-arm sums alone (shared with `ab --stats`); `rows.rs` holds the
//! options and the result types. The tables and JSON are in `render.rs`.

use std::borrow::Cow;
use std::collections::HashMap;

use anyhow::{bail, Result};

use super::breakdown;
use super::cuped::{self, Coefficients};
use super::estimate::{EffectEstimate, Sample};
use super::exposure::Exposures;
use super::metrics::{self, Metric, UserSums, Window};
use super::sums::Sums;
use crate::logs::{Days, Record, NO_ARM};
use crate::sessions::Session;

mod fixed;
mod rows;

use self::fixed::compare;
pub use self::fixed::{from_aggregates, Aggregates, MetricSums};
pub use self::rows::{CupedRow, Look, MetricRow, MetricsAnalysis, Options};
pub use super::looks::Design;
use super::looks::SequentialLooks;
pub use super::periods::{DayedSessions, PrePeriod};

/// The extended analysis of an experiment's records (carrying their arm),
/// sorted and sessionized by [`super::analyze`]: the records reduced to
/// [`Aggregates`], analysed by [`from_aggregates`], and with
/// `--sequential` a look at every day.
pub fn analyze(
    records: &[Record],
    sessions: &[Session],
    days: &Days,
    pre: Option<&PrePeriod>,
    arms: usize,
    control: u8,
    options: &Options,
) -> Result<MetricsAnalysis> {
    let dayed = DayedSessions::new(sessions, records, days)?;
    let window = experiment_window(&dayed, options.start, days)?;
    let pre = pre_period(&dayed, pre, options);
    let mut users = dayed.user_sums(window, false);
    // --exposure: everyone assigned by the last day, absent or not.
    let exposures = options
        .breakdown
        .exposure
        .then(|| Exposures::of(records, days));
    if let Some(exposures) = &exposures {
        exposures.pad(&mut users, window.last, |_| true);
    }
    let counts = users_per_arm(&users, arms);
    let experiment = Experiment {
        dayed: &dayed,
        metrics: &options.metrics,
        pre_values: options
            .metrics
            .iter()
            .map(|m| pre.as_ref().map(|p| p.values(m)))
            .collect(),
        arms: counts.len(),
        control,
        exposures: exposures.as_ref(),
    };
    let aggregates = Aggregates {
        metrics: experiment.sums(&users, window),
        users: counts,
        pre_period: pre.is_some(),
        window: (days.label(window.first), days.label(window.last)),
    };
    let mut result = from_aggregates(&aggregates, control, options)?;
    if let Some(design) = options.sequential {
        result.looks = experiment.daily_looks(window, design, options.alpha, days);
        attach_last_looks(&mut result.rows, &result.looks);
    }
    result.breakdown = breakdown::analyze(
        &breakdown::Inputs {
            records,
            dayed: &dayed,
            days,
            window,
            pre: pre.as_deref(),
            exposures: exposures.as_ref(),
            metrics: &options.metrics,
            arms: aggregates.users.len(),
            control,
            correction: options.correction,
            alpha: options.alpha,
        },
        &options.breakdown,
    )?;
    Ok(result)
}

/// From `--start` (else the first day with a session) to the last day.
fn experiment_window(dayed: &DayedSessions<'_>, start: Option<u32>, days: &Days) -> Result<Window> {
    let Some(span) = dayed.span() else {
        bail!("the logs hold no closed session of the experiment");
    };
    let first = start.unwrap_or(span.first);
    if first > span.last {
        bail!(
            "--start {} is after the last day in the logs ({}); the experiment has no day",
            days.label(first),
            days.label(span.last)
        );
    }
    Ok(Window {
        first,
        last: span.last,
    })
}

/// The pre-period CUPED adjusts with: `--pre`'s logs, else the days before
/// `--start`; none with CUPED off.
fn pre_period<'a>(
    dayed: &DayedSessions<'_>,
    given: Option<&'a PrePeriod>,
    options: &Options,
) -> Option<Cow<'a, PrePeriod>> {
    if !options.cuped {
        return None;
    }
    match (given, options.start) {
        (Some(pre), _) => Some(Cow::Borrowed(pre)),
        (None, Some(start)) => PrePeriod::before(dayed, start).map(Cow::Owned),
        (None, None) => None,
    }
}

/// Users per arm, over the configured `arms` or as many as the logs show.
fn users_per_arm(users: &[UserSums], arms: usize) -> Vec<u64> {
    let arms = arms.max(users.iter().map(|u| u.arm as usize + 1).max().unwrap_or(0));
    let mut counts = vec![0u64; arms];
    for u in users {
        counts[u.arm as usize] += 1;
    }
    counts
}

/// Each row's always-valid bounds at its last look.
fn attach_last_looks(rows: &mut [MetricRow], looks: &[Look]) {
    for row in rows {
        if let Some(last) = looks
            .iter()
            .rev()
            .find(|l| l.treatment == row.treatment && l.metric == row.metric)
        {
            row.sequential_lower = Some(last.estimate.lower);
            row.sequential_upper = Some(last.estimate.upper);
        }
    }
}

/// What the logs' analysis compares: the experiment's sessions with their
/// days, its arms, and each metric's pre-period values (in `metrics` order).
struct Experiment<'a> {
    dayed: &'a DayedSessions<'a>,
    metrics: &'a [&'static Metric],
    pre_values: Vec<Option<HashMap<u64, f64>>>,
    arms: usize,
    control: u8,
    exposures: Option<&'a Exposures>,
}

/// Per-arm samples of `metric` over `users` (arms in index order).
pub(super) fn arm_samples(
    metric: &Metric,
    users: &[UserSums],
    window: Window,
    arms: usize,
) -> Vec<Sample> {
    arm_observations(metric, users, window, arms)
        .iter()
        .map(|o| Sample::new(metric.kind, o))
        .collect()
}

/// Per-arm `(user, observation)` pairs of `metric` over `users` (arms in
/// index order): users for whom the metric is undefined are left out.
pub(super) fn arm_observations(
    metric: &Metric,
    users: &[UserSums],
    window: Window,
    arms: usize,
) -> Vec<Vec<(u64, metrics::Observation)>> {
    let mut observations: Vec<Vec<(u64, metrics::Observation)>> = vec![Vec::new(); arms];
    for u in users.iter().filter(|u| u.arm != NO_ARM) {
        if let Some(o) = metric.observe(u, window) {
            observations[u.arm as usize].push((u.user, o));
        }
    }
    observations
}

impl Experiment<'_> {
    /// Every metric's per-arm sums over `users`: the logs reduced to what
    /// a warehouse's SQL computes.
    fn sums(&self, users: &[UserSums], window: Window) -> Vec<MetricSums> {
        self.metrics
            .iter()
            .zip(&self.pre_values)
            .map(|(metric, pre)| {
                let mut arms = vec![Sums::new(pre.is_some()); self.arms];
                for u in users.iter().filter(|u| u.arm != NO_ARM) {
                    if let Some(o) = metric.observe(u, window) {
                        let x = pre.as_ref().and_then(|p| p.get(&u.user).copied());
                        arms[u.arm as usize].add(metric.kind, o, x);
                    }
                }
                MetricSums { metric, arms }
            })
            .collect()
    }

    /// Per-arm samples of the `m`-th metric over `users` (arms in index
    /// order), CUPED-adjusted with `coefficients`: what the spending design
    /// correlates from look to look.
    fn samples(
        &self,
        m: usize,
        users: &[UserSums],
        window: Window,
        coefficients: Option<&Coefficients>,
    ) -> Vec<Sample> {
        let mut samples = arm_samples(self.metrics[m], users, window, self.arms);
        if let (Some(c), Some(pre)) = (coefficients, &self.pre_values[m]) {
            cuped::apply(&mut samples, pre, c);
        }
        samples
    }

    /// One look per day of the window at the data up to it, for every
    /// metric and treatment, each comparison carrying its sequential test
    /// from day to day.
    fn daily_looks(&self, window: Window, design: Design, alpha: f64, days: &Days) -> Vec<Look> {
        let mut looks = Vec::new();
        let mut tests: HashMap<(usize, u8), SequentialLooks> = HashMap::new();
        for day in window.first..=window.last {
            let so_far = Window {
                first: window.first,
                last: day,
            };
            let mut users = self.dayed.user_sums(so_far, false);
            if let Some(exposures) = self.exposures {
                exposures.pad(&mut users, day, |_| true);
            }
            if users.is_empty() {
                continue;
            }
            for (m, sums) in self.sums(&users, so_far).iter().enumerate() {
                let metric = sums.metric;
                let compared = compare(metric, &sums.arms, self.control);
                let samples = match design {
                    Design::Spending { .. } => {
                        self.samples(m, &users, so_far, compared.coefficients.as_ref())
                    }
                    Design::Mixture { .. } => vec![Sample::default(); self.arms],
                };
                for (t, plain, used) in compared.pairs {
                    let test = tests
                        .entry((m, t))
                        .or_insert_with(|| SequentialLooks::new(design, alpha, used.control_mean));
                    let level = test.look(
                        day - window.first + 1,
                        &used,
                        &samples[self.control as usize],
                        &samples[t as usize],
                    );
                    let (lower, upper) = test.bounds();
                    let scale = 100.0 / used.control_mean;
                    looks.push(Look {
                        day: days.label(day),
                        treatment: botify::experiments::arm_label(t as usize),
                        metric: metric.name.to_string(),
                        estimate: EffectEstimate {
                            control_mean: plain.control_mean,
                            treatment_mean: plain.treatment_mean,
                            effect: used.diff * scale,
                            lower: lower * scale,
                            upper: upper * scale,
                        },
                        p_value: level.p_value,
                        nominal_alpha: level.nominal_alpha,
                        significant: test.significant(),
                        fixed_p_value: used.p_value,
                    });
                }
            }
        }
        looks
    }
}

#[cfg(test)]
mod tests {
    use super::fixed::correct;
    use super::*;
    use crate::ab::correction::Correction;
    use crate::ab::spending::SpendingFunction;
    use crate::logs::days::DAY_MS;
    use crate::sessions;

    /// 40 users a day over UTC days 10 to 13, half in each arm; treated users
    /// listen longer. Sessions per user per day: one.
    fn experiment(treated_time: f64) -> (Vec<Record>, Vec<Session>) {
        let mut records = Vec::new();
        for day in 10..14u64 {
            for user in 0..40u64 {
                let arm = (user % 2) as u8;
                let time = if arm == 1 && day >= 12 {
                    treated_time
                } else {
                    0.3 + 0.1 * (user % 4) as f64
                };
                let ts = day * DAY_MS + user * 1_000;
                records.push(Record::new(user, ts, 1, time, 0.001, Some(2), arm, false));
                records.push(Record::new(user, ts + 500, 2, time, 0.001, None, arm, true));
            }
        }
        sessions::sort(&mut records);
        let (sessions, _) = sessions::sessionize(&records);
        (records, sessions)
    }

    fn run(options: &Options) -> Result<MetricsAnalysis> {
        let (records, sessions) = experiment(0.9);
        analyze(&records, &sessions, &Days::default(), None, 2, 0, options)
    }

    fn only(names: &[&str]) -> Vec<&'static Metric> {
        names.iter().map(|n| metrics::find(n).unwrap()).collect()
    }

    #[test]
    fn the_window_starts_at_start_and_ends_at_the_last_day() {
        let (records, sessions) = experiment(0.9);
        let dayed = DayedSessions::new(&sessions, &records, &Days::default()).unwrap();
        let days = Days::default();
        let all = experiment_window(&dayed, None, &days).unwrap();
        assert_eq!(
            all,
            Window {
                first: 10,
                last: 13
            }
        );
        let late = experiment_window(&dayed, Some(12), &days).unwrap();
        assert_eq!(
            late,
            Window {
                first: 12,
                last: 13
            }
        );
        let err = experiment_window(&dayed, Some(14), &days)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is after the last day"), "{err}");
    }

    #[test]
    fn the_pre_period_is_the_given_one_else_the_days_before_start_and_none_without_cuped() {
        let (records, sessions) = experiment(0.9);
        let dayed = DayedSessions::new(&sessions, &records, &Days::default()).unwrap();
        let from_start = Options {
            start: Some(12),
            ..Options::default()
        };
        let pre = pre_period(&dayed, None, &from_start).unwrap();
        assert_eq!(
            pre.window,
            Window {
                first: 10,
                last: 11
            }
        );
        let given = PrePeriod {
            users: Vec::new(),
            window: Window { first: 1, last: 2 },
        };
        let pre = pre_period(&dayed, Some(&given), &from_start).unwrap();
        assert!(matches!(pre, Cow::Borrowed(p) if p.window.first == 1));
        let off = Options {
            cuped: false,
            ..from_start.clone()
        };
        assert!(pre_period(&dayed, Some(&given), &off).is_none());
        assert!(pre_period(&dayed, None, &Options::default()).is_none());
    }

    fn row(metric: &str, role: &'static str, p_value: f64) -> MetricRow {
        MetricRow {
            p_value,
            p_adjusted: f64::NAN,
            significant: false,
            ..MetricRow::example(metric, role, 0.0)
        }
    }

    #[test]
    fn each_family_is_corrected_on_its_own() {
        let mut rows = vec![
            row("time", "success", 0.02),
            row("fallback_rate", "guardrail", 0.02),
            row("sessions", "success", 0.04),
        ];
        correct(&mut rows, Correction::Holm, 0.05);
        // Holm over two success rows: 0.02 × 2, then max(0.04, 0.04 × 1).
        assert_eq!(rows[0].p_adjusted, 0.04);
        assert_eq!(rows[2].p_adjusted, 0.04);
        // The guardrail is alone in its family.
        assert_eq!(rows[1].p_adjusted, 0.02);
        assert!(rows.iter().all(|r| r.significant));
        correct(&mut rows, Correction::Holm, 0.03);
        assert!(!rows[0].significant && rows[1].significant);
    }

    #[test]
    fn rows_take_the_bounds_of_their_last_look() {
        let mut rows = vec![row("time", "success", 0.5), row("sessions", "success", 0.5)];
        let look = |day: &str, lower: f64| Look {
            day: day.into(),
            treatment: "T1".into(),
            metric: "time".into(),
            estimate: EffectEstimate {
                control_mean: 1.0,
                treatment_mean: 1.0,
                effect: 0.0,
                lower,
                upper: -lower,
            },
            p_value: None,
            nominal_alpha: None,
            significant: false,
            fixed_p_value: 0.5,
        };
        attach_last_looks(&mut rows, &[look("1", -9.0), look("2", -4.0)]);
        assert_eq!(
            (rows[0].sequential_lower, rows[0].sequential_upper),
            (Some(-4.0), Some(4.0))
        );
        assert_eq!(rows[1].sequential_lower, None);
    }

    #[test]
    fn arms_beyond_the_configured_ones_are_counted() {
        let (records, sessions) = experiment(0.9);
        let dayed = DayedSessions::new(&sessions, &records, &Days::default()).unwrap();
        let users = dayed.user_sums(
            Window {
                first: 10,
                last: 13,
            },
            false,
        );
        assert_eq!(users_per_arm(&users, 2), [20, 20]);
        assert_eq!(users_per_arm(&users, 3), [20, 20, 0]);
        assert_eq!(users_per_arm(&users, 1), [20, 20]);
    }

    #[test]
    fn finds_the_effect_with_cuped_and_looks_every_day() {
        let options = Options {
            metrics: only(&["time", "fallback_rate"]),
            start: Some(12),
            sequential: Some(Design::Spending {
                horizon: 2,
                function: SpendingFunction::OBrienFleming,
            }),
            ..Options::default()
        };
        let result = run(&options).unwrap();
        assert_eq!(result.window, ("1970-01-13".into(), "1970-01-14".into()));
        assert_eq!(result.arm_labels, ["C", "T1"]);
        assert!(!result.srm.mismatch());
        let time = &result.rows[0];
        assert_eq!((time.metric.as_str(), time.role), ("time", "success"));
        assert!(time.significant && time.estimate.effect > 0.0, "{time:?}");
        assert!(time.variance_reduction.is_some() && time.sequential_lower.is_some());
        assert_eq!(result.cuped.len(), 2);
        // Two days, two metrics, one treatment.
        assert_eq!(result.looks.len(), 4);
        assert_eq!(result.looks[0].day, "1970-01-13");
        assert!(result.looks.iter().all(|l| l.nominal_alpha.is_some()));
    }

    #[test]
    fn a_control_without_users_is_named() {
        let (records, sessions) = experiment(0.9);
        let err = analyze(
            &records,
            &sessions,
            &Days::default(),
            None,
            3,
            2,
            &Options::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("control arm T2 has no users between days"),
            "{err}"
        );
    }
}
