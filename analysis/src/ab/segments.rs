//! Per-segment effects (`ab --segment-by`, docs/analysis.md#segments): did
//! the effect differ for new and returning listeners, by the genre of the
//! session's first track, or by the time of day?
//!
//! Each segment is analysed as its own experiment on the primary metric
//! (users with a session in the segment, their sessions there), with its
//! own sample-ratio check. Many segments mean many tests, so every segment's
//! p-value is adjusted across the segments by Benjamini–Hochberg and a row
//! is significant only by its adjusted p: a row never appears without it.
//! Whether the effect differs between segments at all is one test, the
//! generalised Cochran's Q of [`clustered`](super::clustered): a listener
//! whose sessions start in two genres is in both segments, so the segments'
//! effects covary and the test uses their joint covariance.
//!
//! Segments must not depend on the treatment: a listener is *returning*
//! when they had a session before the experiment's window (the days before
//! `--start`, or `--pre`'s logs), decided before any treatment; the first
//! track of a session is the listener's own choice, and the daypart is the
//! hour (UTC) the session started.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::{bail, Result};
use clap::ValueEnum;
use serde::Serialize;

use super::clustered::{Contrast, Means};
use super::correction::Correction;
use super::estimate::{Comparison, EffectEstimate};
use super::exposure::Exposures;
use super::extended::arm_observations;
use super::group_sums::GroupSums;
use super::metrics::{self, Metric, Observation, Window};
use super::periods::{DayedSessions, PrePeriod};
use super::{srm, SRM_ALPHA};
use crate::logs::Record;
use crate::sessions::Session;

/// Fewer users than this in an arm of a segment: the segment is listed,
/// not tested (its interval would rest on a handful of listeners).
pub const MIN_USERS: usize = 30;

/// What `--segment-by` splits by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SegmentBy {
    /// New or returning listener: a session before the experiment's window or not.
    Listener,
    /// The genre of the session's first track (needs --catalog).
    Genre,
    /// When the session started: night 0–6, morning 6–12, afternoon 12–18,
    /// evening 18–24 (UTC).
    Daypart,
}

/// A segmentation ready to label sessions.
#[derive(Debug, Clone)]
pub enum Segmentation {
    Listener,
    /// Each track's genre, from the catalog.
    Genre(Arc<HashMap<u32, String>>),
    Daypart,
}

impl SegmentBy {
    pub fn name(self) -> &'static str {
        match self {
            SegmentBy::Listener => "listener",
            SegmentBy::Genre => "genre",
            SegmentBy::Daypart => "daypart",
        }
    }
}

impl Segmentation {
    pub fn name(&self) -> &'static str {
        match self {
            Segmentation::Listener => SegmentBy::Listener.name(),
            Segmentation::Genre(_) => SegmentBy::Genre.name(),
            Segmentation::Daypart => SegmentBy::Daypart.name(),
        }
    }

    /// Whether a user belongs to one segment for good (listener) rather than
    /// each session to its own.
    fn per_user(&self) -> bool {
        matches!(self, Segmentation::Listener)
    }

    fn label(&self, session: &Session, records: &[Record], returning: &HashSet<u64>) -> String {
        match self {
            Segmentation::Listener => if returning.contains(&session.user) {
                "returning"
            } else {
                "new"
            }
            .to_string(),
            Segmentation::Genre(genres) => genres
                .get(&records[session.first].track)
                .cloned()
                .unwrap_or_else(|| "unknown".to_string()),
            Segmentation::Daypart => {
                let hour = (session.start / 3_600_000) % 24;
                ["night", "morning", "afternoon", "evening"][(hour / 6) as usize].to_string()
            }
        }
    }
}

/// One treatment against the control within one segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentRow {
    pub segment: String,
    pub treatment: String,
    pub control_users: u64,
    pub treatment_users: u64,
    /// The arm means; effect and 95% bounds, percent of the segment's
    /// control mean.
    #[serde(flatten)]
    pub estimate: EffectEstimate,
    pub p_value: f64,
    /// Benjamini–Hochberg across the segments of this treatment.
    pub p_adjusted: f64,
    pub significant: bool,
    /// The segment's own sample-ratio check (users per arm).
    pub srm_p_value: f64,
    pub srm_mismatch: bool,
}

/// Whether a treatment's effect differs between segments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heterogeneity {
    pub treatment: String,
    pub segments: usize,
    /// Cochran's Q (generalised to overlapping segments) and its χ² degrees of freedom.
    pub q: f64,
    pub dof: usize,
    pub p_value: f64,
    pub differs: bool,
}

/// Every segment's effect on the primary metric, and the heterogeneity tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segments {
    pub by: &'static str,
    pub metric: String,
    pub rows: Vec<SegmentRow>,
    pub heterogeneity: Vec<Heterogeneity>,
    /// Segments with fewer than [`MIN_USERS`] users in an arm: not tested.
    pub too_small: Vec<String>,
}

/// What the segment analysis reads.
pub struct Experiment<'a> {
    pub records: &'a [Record],
    pub dayed: &'a DayedSessions<'a>,
    pub window: Window,
    /// `--pre`'s logs, when given (they also tell returning listeners).
    pub pre: Option<&'a PrePeriod>,
    pub exposures: Option<&'a Exposures>,
    pub arms: usize,
    pub control: u8,
    pub alpha: f64,
}

/// Users with a session before the window, or in the given pre-period.
fn returning(e: &Experiment<'_>) -> HashSet<u64> {
    let mut users: HashSet<u64> = e
        .dayed
        .sessions
        .iter()
        .zip(&e.dayed.days)
        .filter(|(_, &d)| d < e.window.first)
        .map(|(s, _)| s.user)
        .collect();
    if let Some(pre) = e.pre {
        users.extend(pre.users.iter().map(|u| u.user));
    }
    users
}

/// The primary metric's effect in every segment of `by`.
pub fn analyze(e: &Experiment<'_>, by: &Segmentation, metric: &'static Metric) -> Result<Segments> {
    let returning = returning(e);
    if matches!(by, Segmentation::Listener) && returning.is_empty() {
        bail!(
            "--segment-by listener tells returning listeners by a session before the \
             experiment, but these logs have none: pass --start DAY (earlier days are the \
             pre-period) or --pre LOGS"
        );
    }
    // Sessions of the window by segment, in the (user, arm) order of the read.
    let mut labels: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut parts: Vec<(Vec<Session>, Vec<u32>)> = Vec::new();
    for (s, &day) in e.dayed.sessions.iter().zip(&e.dayed.days) {
        if !e.window.contains(day) {
            continue;
        }
        let label = by.label(s, e.records, &returning);
        let i = *index.entry(label.clone()).or_insert_with(|| {
            labels.push(label);
            parts.push((Vec::new(), Vec::new()));
            labels.len() - 1
        });
        parts[i].0.push(*s);
        parts[i].1.push(day);
    }
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| labels[a].cmp(&labels[b]));
    // Per arm, each segment's observations, in label order.
    let mut observations: Vec<Vec<Vec<(u64, Observation)>>> = vec![Vec::new(); e.arms];
    let mut users_per_arm = Vec::new();
    for &i in &order {
        let (sessions, days) = &parts[i];
        let mut users = metrics::user_sums(sessions, days, e.window, false);
        if let Some(exposures) = e.exposures {
            let label = &labels[i];
            let keep =
                |user: u64| !by.per_user() || (returning.contains(&user) == (label == "returning"));
            exposures.pad(&mut users, e.window.last, keep);
        }
        for (arm, o) in arm_observations(metric, &users, e.window, e.arms)
            .into_iter()
            .enumerate()
        {
            observations[arm].push(o);
        }
        let mut counts = vec![0u64; e.arms];
        for u in &users {
            counts[u.arm as usize] += 1;
        }
        users_per_arm.push(counts);
    }
    let sums = SegmentSums {
        labels: order.iter().map(|&i| labels[i].clone()).collect(),
        arms: observations
            .iter()
            .map(|o| GroupSums::of(metric.kind, o))
            .collect(),
        users: users_per_arm,
    };
    Ok(compare(by.name(), metric, &sums, e.control, e.alpha))
}

/// Every segment's statistics of one metric: what the logs, or a
/// warehouse's per-segment rows, reduce to.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSums {
    /// The segments, in label order.
    pub labels: Vec<String>,
    /// Per arm, the sums of each segment (in `labels` order) and of each
    /// pair of segments that share users.
    pub arms: Vec<GroupSums>,
    /// `[segment][arm]`: the users with a session in the segment (SRM).
    pub users: Vec<Vec<u64>>,
}

/// Each segment's effect, corrected across the segments, and the
/// heterogeneity tests, from the segments' sums.
pub fn compare(
    by: &'static str,
    metric: &Metric,
    sums: &SegmentSums,
    control: u8,
    alpha: f64,
) -> Segments {
    let arms = sums.arms.len();
    let moments = |arm: usize, g: usize| sums.arms[arm].groups[g].linear(metric.kind).moments();
    let (tested, too_small): (Vec<usize>, Vec<usize>) = (0..sums.labels.len())
        .partition(|&g| (0..arms).all(|a| moments(a, g).count() as usize >= MIN_USERS));
    let c = control as usize;
    let mut rows = Vec::new();
    let mut heterogeneity = Vec::new();
    for t in (0..arms).filter(|&t| t != c) {
        let treatment = botify::experiments::arm_label(t);
        let first = rows.len();
        for &g in &tested {
            let cmp = Comparison::new(moments(c, g), moments(t, g));
            let (effect, lower, upper) = cmp.percent();
            let check = srm(&sums.users[g]);
            rows.push(SegmentRow {
                segment: sums.labels[g].clone(),
                treatment: treatment.clone(),
                control_users: cmp.control_users,
                treatment_users: cmp.treatment_users,
                estimate: EffectEstimate {
                    control_mean: cmp.control_mean,
                    treatment_mean: cmp.treatment_mean,
                    effect,
                    lower,
                    upper,
                },
                p_value: cmp.p_value,
                p_adjusted: f64::NAN,
                significant: false,
                srm_p_value: check.p_value,
                srm_mismatch: check.p_value < SRM_ALPHA,
            });
        }
        let p: Vec<f64> = rows[first..].iter().map(|r| r.p_value).collect();
        for (row, q) in rows[first..].iter_mut().zip(Correction::Bh.adjust(&p)) {
            row.p_adjusted = q;
            row.significant = q < alpha;
        }
        let means = |arm: usize| Means::of(metric.kind, &sums.arms[arm]).restrict(&tested);
        let contrast = Contrast::new(&means(c), &means(t));
        if let Some((q, dof)) = contrast.equality() {
            let p_value = chi2_sf(q, dof);
            heterogeneity.push(Heterogeneity {
                treatment,
                segments: tested.len(),
                q,
                dof,
                p_value,
                differs: p_value < alpha,
            });
        }
    }
    Segments {
        by,
        metric: metric.name.to_string(),
        rows,
        heterogeneity,
        too_small: too_small.iter().map(|&g| sums.labels[g].clone()).collect(),
    }
}

/// The χ² survival function (NaN when undefined).
fn chi2_sf(x: f64, dof: usize) -> f64 {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    match ChiSquared::new(dof as f64) {
        Ok(d) if x.is_finite() => d.sf(x),
        _ => f64::NAN,
    }
}
