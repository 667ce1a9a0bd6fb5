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

use std::collections::HashMap;

use anyhow::{bail, Result};
use serde::Serialize;

use super::correction::Correction;
use super::cuped::{self, CupedFit};
use super::estimate::{Comparison, Sample};
use super::metrics::{self, Metric, Role, UserSums, Window};
use super::sequential::Sequential;
use super::spending::{Spending, SpendingFunction};
use super::{srm, Srm};
use crate::logs::{DayScheme, Days, Record, NO_ARM};
use crate::output::{self, Table, Tone};
use crate::sessions::{self, Session};

/// What to compute.
#[derive(Debug, Clone)]
pub struct Options {
    pub metrics: Vec<&'static Metric>,
    pub correction: Correction,
    /// Level of every test and interval (0.05: 95% intervals).
    pub alpha: f64,
    /// First day of the experiment; earlier days are the pre-period.
    pub start: Option<u32>,
    /// How daily looks are tested; None: no daily looks.
    pub sequential: Option<Design>,
    /// Adjust with the pre-period when there is one (CUPED); off to measure
    /// what the adjustment buys.
    pub cuped: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            metrics: metrics::CATALOGUE.iter().collect(),
            correction: Correction::Holm,
            alpha: 0.05,
            start: None,
            sequential: None,
            cuped: true,
        }
    }
}

/// How `--sequential` tests the daily looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Design {
    /// Open-ended monitoring: the mixture SPRT (`sequential.rs`), its mixing
    /// standard deviation a fraction of the control mean.
    Mixture { mixing: f64 },
    /// A planned horizon of `horizon` days over which α is spent
    /// (`spending.rs`): exact error at daily looks, narrower intervals.
    Spending {
        horizon: u32,
        function: SpendingFunction,
    },
}

impl Design {
    pub fn describe(&self) -> String {
        match self {
            Design::Mixture { mixing } => format!(
                "daily looks: always-valid mixture SPRT (mixing {}% of the control mean)",
                mixing * 100.0
            ),
            Design::Spending { horizon, function } => format!(
                "daily looks: α spent over a {horizon}-day horizon ({}), repeated 95% intervals",
                function.name()
            ),
        }
    }
}

/// One comparison's sequential test under either design.
enum Test {
    Mixture(Sequential),
    Spending(Spending),
}

impl Test {
    /// The test of one comparison under `design`; `control_mean` at its
    /// first look scales the mixture.
    fn new(design: Design, alpha: f64, control_mean: f64) -> Test {
        match design {
            Design::Mixture { mixing } => {
                Test::Mixture(Sequential::new(mixing * control_mean.abs(), alpha))
            }
            Design::Spending { horizon, function } => {
                Test::Spending(Spending::new(alpha, horizon, function))
            }
        }
    }

    /// The look on day `day` of the experiment (1-based) at `used`, made of
    /// the arms' values `control` and `treated`; returns the mixture's
    /// always-valid p-value or the spending design's nominal level.
    fn look(
        &mut self,
        day: u32,
        used: &Comparison,
        control: &Sample,
        treated: &Sample,
    ) -> (Option<f64>, Option<f64>) {
        match self {
            Test::Mixture(s) => {
                s.look(used.diff, used.variance);
                (Some(s.p_value), None)
            }
            Test::Spending(s) => {
                s.look(day, used.diff, used.variance, control, treated);
                (None, Some(s.nominal_alpha()))
            }
        }
    }

    fn bounds(&self) -> (f64, f64) {
        match self {
            Test::Mixture(t) => (t.lower, t.upper),
            Test::Spending(t) => (t.lower, t.upper),
        }
    }

    fn significant(&self) -> bool {
        match self {
            Test::Mixture(t) => t.significant(),
            Test::Spending(t) => t.significant(),
        }
    }
}

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

    fn span(&self) -> Option<Window> {
        Some(Window {
            first: *self.days.iter().min()?,
            last: *self.days.iter().max()?,
        })
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
        Ok(PrePeriod {
            users: metrics::user_sums(&sessions, &dayed.days, window, true),
            window,
        })
    }

    /// Each user's pre-period value of `metric` (ratio metrics: the user's ratio).
    fn values(&self, metric: &Metric) -> HashMap<u64, f64> {
        self.users
            .iter()
            .filter_map(|u| {
                let value = match metric.observe(u, self.window)? {
                    metrics::Observation::Value(v) => v,
                    metrics::Observation::Ratio(n, d) => n / d,
                };
                value.is_finite().then_some((u.user, value))
            })
            .collect()
    }
}

/// One treatment against the control on one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRow {
    pub treatment: String,
    pub metric: String,
    /// `success` or `guardrail`.
    pub role: &'static str,
    pub control_users: u64,
    pub treatment_users: u64,
    /// Raw arm means (ratio metrics: the arm's ratio of sums).
    pub control_mean: f64,
    pub treatment_mean: f64,
    /// Effect and 95% bounds of the difference, percent of the control mean
    /// (CUPED-adjusted when a pre-period is given).
    pub effect: f64,
    pub lower: f64,
    pub upper: f64,
    /// Relative lift interval, percent (delta method on the ratio of means).
    pub lift_lower: f64,
    pub lift_upper: f64,
    pub p_value: f64,
    /// After the correction, within the row's family (success or guardrail).
    pub p_adjusted: f64,
    pub significant: bool,
    /// CUPED's share of variance removed (None without a pre-period).
    pub variance_reduction: Option<f64>,
    /// Always-valid bounds at the last look, percent (with `--sequential`).
    pub sequential_lower: Option<f64>,
    pub sequential_upper: Option<f64>,
}

/// One daily look of the sequential test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Look {
    pub day: String,
    pub treatment: String,
    pub metric: String,
    pub control_mean: f64,
    pub treatment_mean: f64,
    /// Effect and running always-valid bounds, percent of the look's control mean.
    pub effect: f64,
    pub lower: f64,
    pub upper: f64,
    /// Always-valid p-value (the mixture design).
    pub p_value: Option<f64>,
    /// The level this look's fixed p-value is held to (the spending design):
    /// significant once some look's fixed p falls below its level.
    pub nominal_alpha: Option<f64>,
    pub significant: bool,
    /// The fixed-horizon (Welch) p-value of this look alone: what peeking
    /// without a sequential test would read.
    pub fixed_p_value: f64,
}

/// CUPED's fit of one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CupedRow {
    pub metric: String,
    pub theta: f64,
    pub users: u64,
    pub users_with_pre: u64,
    pub variance_reduction: f64,
    /// √(1 − reduction): the interval width relative to no adjustment.
    pub width_ratio: f64,
}

/// Everything the extended analysis found.
#[derive(Debug, Clone, Serialize)]
pub struct Extended {
    pub rows: Vec<MetricRow>,
    pub looks: Vec<Look>,
    pub cuped: Vec<CupedRow>,
    #[serde(skip)]
    pub window: (String, String),
    #[serde(skip)]
    pub correction: Correction,
    #[serde(skip)]
    pub design: Option<Design>,
    #[serde(skip)]
    pub srm: Srm,
    #[serde(skip)]
    pub arm_labels: Vec<String>,
}

/// Per-arm samples of one metric over `users` (arms in index order).
fn samples(metric: &Metric, users: &[UserSums], window: Window, arms: usize) -> Vec<Sample> {
    let mut observations: Vec<Vec<(u64, metrics::Observation)>> = vec![Vec::new(); arms];
    for u in users.iter().filter(|u| u.arm != NO_ARM) {
        if let Some(o) = metric.observe(u, window) {
            observations[u.arm as usize].push((u.user, o));
        }
    }
    observations
        .iter()
        .map(|o| Sample::new(metric.kind, o))
        .collect()
}

/// One metric's comparisons of each treatment against the control.
struct Compared {
    /// (treatment, unadjusted, CUPED-adjusted when pre-period values are
    /// given, else the same twice).
    pairs: Vec<(u8, Comparison, Comparison)>,
    /// Per-arm values the adjusted comparisons were made of.
    adjusted: Vec<Sample>,
    fit: Option<CupedFit>,
}

fn comparisons(
    metric: &Metric,
    users: &[UserSums],
    window: Window,
    arms: usize,
    control: u8,
    pre: Option<&HashMap<u64, f64>>,
) -> Compared {
    let raw = samples(metric, users, window, arms);
    let mut adjusted = raw.clone();
    let fit = pre.map(|pre| cuped::adjust(&mut adjusted, pre));
    let c = control as usize;
    let mut pairs = Vec::new();
    for t in (0..arms).filter(|&t| t != c && !raw[t].values.is_empty()) {
        let plain = Comparison::new(raw[c].moments(), raw[t].moments());
        let used = Comparison::new(adjusted[c].moments(), adjusted[t].moments());
        pairs.push((t as u8, plain, used));
    }
    Compared {
        pairs,
        adjusted,
        fit,
    }
}

/// The extended analysis of an experiment's records (carrying their arm),
/// sorted and sessionized by [`super::analyze`].
pub fn analyze(
    records: &[Record],
    sessions: &[Session],
    days: &Days,
    pre: Option<&PrePeriod>,
    arms: usize,
    control: u8,
    options: &Options,
) -> Result<Extended> {
    let dayed = DayedSessions::new(sessions, records, days)?;
    let Some(span) = dayed.span() else {
        bail!("the logs hold no closed session of the experiment");
    };
    let first = options.start.unwrap_or(span.first);
    if first > span.last {
        bail!(
            "--start {} is after the last day in the logs ({}); the experiment has no day",
            days.label(first),
            days.label(span.last)
        );
    }
    let window = Window {
        first,
        last: span.last,
    };
    let start_pre;
    let pre = match (pre, options.start) {
        _ if !options.cuped => None,
        (Some(pre), _) => Some(pre),
        (None, Some(start)) if start > span.first => {
            let window = Window {
                first: span.first,
                last: start - 1,
            };
            start_pre = PrePeriod {
                users: metrics::user_sums(sessions, &dayed.days, window, true),
                window,
            };
            Some(&start_pre)
        }
        _ => None,
    };
    let users = metrics::user_sums(sessions, &dayed.days, window, false);
    let arms = arms.max(users.iter().map(|u| u.arm as usize + 1).max().unwrap_or(0));
    let mut counts = vec![0u64; arms];
    for u in &users {
        counts[u.arm as usize] += 1;
    }
    let label = botify::experiments::arm_label;
    if counts.get(control as usize).copied().unwrap_or(0) == 0 {
        bail!(
            "control arm {} has no users between days {} and {}; choose it with --control",
            label(control as usize),
            days.label(window.first),
            days.label(window.last)
        );
    }
    let pre_values: Vec<Option<HashMap<u64, f64>>> = options
        .metrics
        .iter()
        .map(|m| pre.map(|p| p.values(m)))
        .collect();

    let mut rows = Vec::new();
    let mut cuped_rows = Vec::new();
    for (metric, pre) in options.metrics.iter().zip(&pre_values) {
        let Compared { pairs, fit, .. } =
            comparisons(metric, &users, window, arms, control, pre.as_ref());
        if let Some(fit) = fit {
            cuped_rows.push(CupedRow {
                metric: metric.name.to_string(),
                theta: fit.theta,
                users: fit.users,
                users_with_pre: fit.with_pre,
                variance_reduction: fit.variance_reduction,
                width_ratio: (1.0 - fit.variance_reduction).sqrt(),
            });
        }
        for (t, plain, used) in pairs {
            let scale = 100.0 / used.control_mean;
            rows.push(MetricRow {
                treatment: label(t as usize),
                metric: metric.name.to_string(),
                role: match metric.role {
                    Role::Success => "success",
                    Role::Guardrail => "guardrail",
                },
                control_users: plain.control_users,
                treatment_users: plain.treatment_users,
                control_mean: plain.control_mean,
                treatment_mean: plain.treatment_mean,
                effect: used.diff * scale,
                lower: (used.diff - used.half) * scale,
                upper: (used.diff + used.half) * scale,
                lift_lower: (used.lift - used.lift_half) * 100.0,
                lift_upper: (used.lift + used.lift_half) * 100.0,
                p_value: used.p_value,
                p_adjusted: f64::NAN,
                significant: false,
                variance_reduction: fit.map(|f| f.variance_reduction),
                sequential_lower: None,
                sequential_upper: None,
            });
        }
    }
    for role in ["success", "guardrail"] {
        let family: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].role == role).collect();
        let p: Vec<f64> = family.iter().map(|&i| rows[i].p_value).collect();
        for (&i, q) in family.iter().zip(options.correction.adjust(&p)) {
            rows[i].p_adjusted = q;
            rows[i].significant = q < options.alpha;
        }
    }

    let mut looks = Vec::new();
    if let Some(design) = options.sequential {
        let mut tests: HashMap<(usize, u8), Test> = HashMap::new();
        for day in window.first..=window.last {
            let so_far = Window {
                first: window.first,
                last: day,
            };
            let users = metrics::user_sums(sessions, &dayed.days, so_far, false);
            if users.is_empty() {
                continue;
            }
            for (m, (metric, pre)) in options.metrics.iter().zip(&pre_values).enumerate() {
                let compared = comparisons(metric, &users, so_far, arms, control, pre.as_ref());
                for (t, plain, used) in compared.pairs {
                    let test = tests
                        .entry((m, t))
                        .or_insert_with(|| Test::new(design, options.alpha, used.control_mean));
                    let (p_value, nominal_alpha) = test.look(
                        day - window.first + 1,
                        &used,
                        &compared.adjusted[control as usize],
                        &compared.adjusted[t as usize],
                    );
                    let (lower, upper) = test.bounds();
                    let scale = 100.0 / used.control_mean;
                    looks.push(Look {
                        day: days.label(day),
                        treatment: label(t as usize),
                        metric: metric.name.to_string(),
                        control_mean: plain.control_mean,
                        treatment_mean: plain.treatment_mean,
                        effect: used.diff * scale,
                        lower: lower * scale,
                        upper: upper * scale,
                        p_value,
                        nominal_alpha,
                        significant: test.significant(),
                        fixed_p_value: used.p_value,
                    });
                }
            }
        }
        for row in &mut rows {
            if let Some(last) = looks
                .iter()
                .rev()
                .find(|l| l.treatment == row.treatment && l.metric == row.metric)
            {
                row.sequential_lower = Some(last.lower);
                row.sequential_upper = Some(last.upper);
            }
        }
    }
    Ok(Extended {
        rows,
        looks,
        cuped: cuped_rows,
        window: (days.label(window.first), days.label(window.last)),
        correction: options.correction,
        design: options.sequential,
        srm: srm(&counts),
        arm_labels: (0..arms).map(label).collect(),
    })
}

impl Extended {
    /// The rows of one role as a table; `success` or `guardrail`.
    pub fn to_table(&self, role: &str) -> Table {
        let cuped = !self.cuped.is_empty();
        let sequential = self.rows.iter().any(|r| r.sequential_lower.is_some());
        let mut headers = vec![
            "treatment",
            "metric",
            "control_mean",
            "treatment_mean",
            "effect",
            "lower",
            "upper",
            "lift_lower",
            "lift_upper",
            "p_value",
            "p_adjusted",
            "significant",
        ];
        if cuped {
            headers.push("variance_reduction");
        }
        if sequential {
            headers.extend(["always_valid_lower", "always_valid_upper"]);
        }
        let mut t = Table::new(&headers);
        for row in self.rows.iter().filter(|r| r.role == role) {
            let good = metrics::find(&row.metric).is_none_or(|m| m.higher_is_better);
            let tone = match (row.significant, (row.effect > 0.0) == good) {
                (false, _) => Tone::Plain,
                (true, true) => Tone::Good,
                (true, false) => Tone::Bad,
            };
            let mut cells = vec![
                row.treatment.clone(),
                row.metric.clone(),
                output::num(row.control_mean, 4),
                output::num(row.treatment_mean, 4),
                output::percent(row.effect),
                output::percent(row.lower),
                output::percent(row.upper),
                output::percent(row.lift_lower),
                output::percent(row.lift_upper),
                p_text(row.p_value),
                p_text(row.p_adjusted),
                row.significant.to_string(),
            ];
            if cuped {
                cells.push(
                    row.variance_reduction
                        .map(output::percent_of_one)
                        .unwrap_or_default(),
                );
            }
            if sequential {
                let pct = |v: Option<f64>| v.map(output::percent).unwrap_or_default();
                cells.push(pct(row.sequential_lower));
                cells.push(pct(row.sequential_upper));
            }
            t.push(cells, tone);
        }
        t
    }

    /// The daily looks as a table.
    pub fn looks_table(&self) -> Table {
        // The mixture design's always-valid p, or the spending design's
        // level that a look's fixed p is held to.
        let spending = matches!(self.design, Some(Design::Spending { .. }));
        let mut t = Table::new(&[
            "day",
            "treatment",
            "metric",
            "control_mean",
            "treatment_mean",
            "effect",
            "always_valid_lower",
            "always_valid_upper",
            if spending { "fixed_p_value" } else { "p_value" },
            if spending {
                "nominal_alpha"
            } else {
                "fixed_p_value"
            },
            "significant",
        ]);
        for l in &self.looks {
            let (first, second) = if spending {
                (l.fixed_p_value, l.nominal_alpha.unwrap_or(f64::NAN))
            } else {
                (l.p_value.unwrap_or(f64::NAN), l.fixed_p_value)
            };
            let tone = if l.significant {
                Tone::Good
            } else {
                Tone::Plain
            };
            t.push(
                vec![
                    l.day.clone(),
                    l.treatment.clone(),
                    l.metric.clone(),
                    output::num(l.control_mean, 4),
                    output::num(l.treatment_mean, 4),
                    output::percent(l.effect),
                    output::percent(l.lower),
                    output::percent(l.upper),
                    p_text(first),
                    p_text(second),
                    l.significant.to_string(),
                ],
                tone,
            );
        }
        t
    }

    /// CUPED's fits as a table.
    pub fn cuped_table(&self) -> Table {
        let mut t = Table::new(&[
            "metric",
            "theta",
            "users",
            "users_with_pre",
            "variance_reduction",
            "interval_width",
        ]);
        for c in &self.cuped {
            t.push(
                vec![
                    c.metric.clone(),
                    output::num(c.theta, 4),
                    c.users.to_string(),
                    c.users_with_pre.to_string(),
                    output::percent_of_one(c.variance_reduction),
                    output::percent_of_one(c.width_ratio),
                ],
                Tone::Plain,
            );
        }
        t
    }

    /// `{"rows": [...], "looks": [...], "cuped": [...]}` (non-finite numbers null).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("rows serialize")
    }

    /// The experiment's days and what the correction was.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "days {} to {}; correction: {} within success metrics and within guardrails \
             (significant: adjusted p < α); intervals 95%",
            self.window.0,
            self.window.1,
            self.correction.name()
        );
        if let Some(design) = &self.design {
            text.push_str("; ");
            text.push_str(&design.describe());
        }
        text
    }
}

fn p_text(p: f64) -> String {
    if p.is_nan() {
        "n/a".into()
    } else if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}
