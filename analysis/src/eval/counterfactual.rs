//! The counterfactual score of `analysis eval --counterfactual`: each arm's
//! value on the held-out logs, estimated two ways, so recommenders are
//! ranked by what listeners would have done under them rather than by
//! next-track hits.
//!
//! One row per arm:
//! - the **simulated** mean time per session: the arm served, with
//!   botify's own code, to a listener learned from the trained models and
//!   the held-out logs ([`crate::ope::simulated`]). It can play any arm,
//!   so rows are ranked by it;
//! - its SNIPS estimates of `first_pick` and of `session` (the mean time
//!   per session) from `analysis ope`'s rows, with their intervals, the
//!   effective sample sizes, the share of its probability outside the
//!   logging arm's support, and whether to trust them: neither draws a
//!   warning from [`distrust`] (ESS of at least 100 and 1% of n, at most
//!   5% outside the support, weights averaging 1 ± 0.1, at most 5%
//!   clipped). Importance sampling is unbiased but judges only arms close
//!   to the logging arm; where it is trusted it checks the simulation.
//!
//! Why the ranking follows the simulation: on a day logged by a softmax
//! arm of `session_interest`, the SNIPS session estimate of another
//! recommender rests on an effective sample of 0–2 sessions, while the
//! simulated estimate ranked nine arms (eight recommenders and an
//! exploring twin) as online with Kendall τ 0.94 (README, "The learning
//! loop"; `scripts/offline-vs-online`).

use std::cmp::Ordering;

use serde::Serialize;

use crate::ope::{distrust, interval_cell, Estimate, OpeRow};
use crate::output::{num, percent_of_one, Column, Table, Tone};

/// The estimator the score is read from.
pub const ESTIMATOR: &str = "snips";

/// One arm's counterfactual score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounterfactualRow {
    /// 1 for the arm of the best simulated estimate.
    pub rank: usize,
    /// The arm's spec as given.
    pub arm: String,
    /// SNIPS estimate of the first recommendation's listened fraction.
    pub first_pick: Estimate,
    /// SNIPS estimate of the mean time per session.
    pub session: Estimate,
    /// The logging policy's own `first_pick` and `session` values on the
    /// same sessions.
    pub logged_first_pick: f64,
    pub logged_session: f64,
    /// Mean share of the arm's probability, over every decision, on tracks
    /// the logging arm could not serve; `None` without `--config`.
    pub outside_support: Option<f64>,
    /// The simulated estimate of the mean time per session: the arm served
    /// to a listener learned from the logs ([`crate::ope::simulated`]).
    pub simulated: f64,
    /// Both SNIPS estimates pass `analysis ope`'s checks.
    pub trusted: bool,
    /// Why not, when not trusted.
    pub reasons: Vec<String>,
}

/// One row per arm, from `analysis ope`'s rows (every estimator of both
/// rewards per target, targets in order) and the arms' `simulated`
/// estimates (NaN for an arm not there), ranked. An arm whose SNIPS rows
/// are missing is left out.
pub fn rows(ope: &[OpeRow], simulated: &[(String, f64)]) -> Vec<CounterfactualRow> {
    let mut arms: Vec<&str> = Vec::new();
    for row in ope {
        if !arms.contains(&row.target.as_str()) {
            arms.push(&row.target);
        }
    }
    let mut rows: Vec<CounterfactualRow> = arms
        .into_iter()
        .filter_map(|arm| {
            let find = |reward: &str| {
                ope.iter()
                    .find(|r| r.target == arm && r.estimator == ESTIMATOR && r.reward == reward)
            };
            let (first, session) = (find("first_pick")?, find("session")?);
            let reasons: Vec<String> = [first, session].into_iter().filter_map(distrust).collect();
            Some(CounterfactualRow {
                rank: 0,
                arm: arm.to_string(),
                first_pick: first.value,
                session: session.value,
                logged_first_pick: first.logged_value,
                logged_session: session.logged_value,
                outside_support: session.outside_support,
                simulated: simulated
                    .iter()
                    .find(|(name, _)| name == arm)
                    .map_or(f64::NAN, |&(_, value)| value),
                trusted: reasons.is_empty(),
                reasons,
            })
        })
        .collect();
    rank(&mut rows);
    rows
}

/// Sorts `rows` by their simulated estimate, best first (an estimate that
/// is not a number last; ties by the SNIPS session estimate), and numbers
/// them from 1.
pub fn rank(rows: &mut [CounterfactualRow]) {
    rows.sort_by(|a, b| {
        by_estimate(a.simulated, b.simulated)
            .then_with(|| by_estimate(a.session.estimate, b.session.estimate))
    });
    for (i, row) in rows.iter_mut().enumerate() {
        row.rank = i + 1;
    }
}

/// Higher first; NaN after every number.
fn by_estimate(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => b.total_cmp(&a),
        (a_nan, b_nan) => a_nan.cmp(&b_nan),
    }
}

/// The ranked rows as a table: trusted rows better than the logging
/// policy's own session value in green, worse in red.
pub fn to_table(rows: &[CounterfactualRow]) -> Table {
    let columns: [Column<CounterfactualRow>; 12] = [
        ("rank", |r| r.rank.to_string()),
        ("arm", |r| r.arm.clone()),
        ("simulated", |r| num(r.simulated, 4)),
        ("first_pick", |r| num(r.first_pick.estimate, 4)),
        ("95% interval", |r| interval_cell(&r.first_pick)),
        ("session", |r| num(r.session.estimate, 4)),
        ("95% interval", |r| interval_cell(&r.session)),
        ("logged session", |r| num(r.logged_session, 4)),
        ("ess first_pick", |r| num(r.first_pick.ess, 0)),
        ("ess session", |r| num(r.session.ess, 0)),
        ("outside", |r| {
            r.outside_support.map_or("n/a".to_string(), percent_of_one)
        }),
        ("trusted", |r| r.trusted.to_string()),
    ];
    Table::of(&columns, rows, |r| {
        if !r.trusted {
            Tone::Plain
        } else if r.session.lower > r.logged_session {
            Tone::Good
        } else if r.session.upper < r.logged_session {
            Tone::Bad
        } else {
            Tone::Plain
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(value: f64, ess: f64, n: usize) -> Estimate {
        Estimate {
            estimate: value,
            lower: value - 0.1,
            upper: value + 0.1,
            ess,
            max_weight: 1.0,
            mean_weight: 1.0,
            clipped: 0.0,
            n,
        }
    }

    fn ope_row(
        target: &str,
        estimator: &'static str,
        reward: &'static str,
        value: Estimate,
    ) -> OpeRow {
        OpeRow {
            target: target.to_string(),
            estimator,
            reward,
            value,
            clip: 100.0,
            outside_support: Some(0.0),
            logged_value: 3.0,
        }
    }

    /// `analysis ope`'s six rows of one target, SNIPS at `session` and
    /// `first`, the other estimators far off so picking them would show.
    fn target(name: &str, first: Estimate, session: Estimate) -> Vec<OpeRow> {
        let off = estimate(-100.0, 10_000.0, 10_000);
        vec![
            ope_row(name, "ips", "first_pick", off),
            ope_row(name, "snips", "first_pick", first),
            ope_row(name, "dr", "first_pick", off),
            ope_row(name, "ips", "session", off),
            ope_row(name, "snips", "session", session),
            ope_row(name, "dr", "session", off),
        ]
    }

    fn order(rows: &[CounterfactualRow]) -> Vec<(&str, usize)> {
        rows.iter().map(|r| (r.arm.as_str(), r.rank)).collect()
    }

    /// `simulated` estimates for some arms.
    fn simulated(values: &[(&str, f64)]) -> Vec<(String, f64)> {
        values.iter().map(|&(a, v)| (a.to_string(), v)).collect()
    }

    #[test]
    fn arms_rank_by_their_simulated_estimate_best_first() {
        let fine = |v| estimate(v, 5_000.0, 10_000);
        // The SNIPS order is the reverse: the simulation decides.
        let ope: Vec<OpeRow> = [("low", 4.0), ("high", 2.0), ("middle", 3.0)]
            .into_iter()
            .flat_map(|(name, value)| target(name, fine(0.5), fine(value)))
            .collect();
        let values = simulated(&[("low", 1.0), ("high", 9.0), ("middle", 5.0)]);
        let rows = rows(&ope, &values);
        assert_eq!(order(&rows), [("high", 1), ("middle", 2), ("low", 3)]);
        assert!(rows.iter().all(|r| r.trusted && r.reasons.is_empty()));
        assert_eq!(rows[0].simulated, 9.0);
        assert_eq!(rows[0].session.estimate, 2.0, "the SNIPS row is read");
        assert_eq!(rows[0].first_pick.estimate, 0.5);
        assert_eq!(rows[0].logged_session, 3.0);
    }

    #[test]
    fn an_arm_the_log_does_not_support_is_flagged_but_ranked_by_its_simulation() {
        let fine = |v| estimate(v, 5_000.0, 10_000);
        let mut ope = target("good", fine(0.5), fine(3.0));
        // The best SNIPS estimate, on a few sessions' weight: untrusted.
        ope.extend(target("few", fine(0.5), estimate(9.0, 40.0, 10_000)));
        // An estimate whose first pick leaves the support: untrusted.
        let mut outside = target("outside", fine(0.5), fine(8.0));
        outside
            .iter_mut()
            .for_each(|r| r.outside_support = Some(0.3));
        ope.extend(outside);
        let values = simulated(&[("good", 2.0), ("few", 1.0), ("outside", 3.0)]);
        let rows = rows(&ope, &values);
        assert_eq!(order(&rows), [("outside", 1), ("good", 2), ("few", 3)]);
        assert!(!rows[0].trusted && rows[1].trusted && !rows[2].trusted);
        assert!(
            rows[2]
                .reasons
                .iter()
                .any(|r| r.contains("effective sample size")),
            "{:?}",
            rows[2]
        );
        assert!(
            rows[0].reasons.iter().any(|r| r.contains("never serves")),
            "{:?}",
            rows[0]
        );
        assert_eq!(rows[0].outside_support, Some(0.3));
    }

    #[test]
    fn the_ess_bar_is_one_percent_of_n_as_well_as_100() {
        // 150 sessions' worth of 100,000: above 100, below 1%.
        let mut ope = target(
            "thin",
            estimate(0.5, 150.0, 100_000),
            estimate(5.0, 150.0, 100_000),
        );
        ope.extend(target(
            "thick",
            estimate(0.5, 2_000.0, 100_000),
            estimate(1.0, 2_000.0, 100_000),
        ));
        let rows = rows(&ope, &simulated(&[("thin", 1.0), ("thick", 2.0)]));
        assert_eq!(order(&rows), [("thick", 1), ("thin", 2)]);
        assert!(rows[0].trusted && !rows[1].trusted);
    }

    #[test]
    fn an_estimate_that_is_not_a_number_ranks_last_and_ties_go_to_snips() {
        let fine = |v| estimate(v, 5_000.0, 10_000);
        let mut ope = target("nan", fine(0.5), fine(9.0));
        ope.extend(target("one", fine(0.5), fine(1.0)));
        ope.extend(target("two", fine(0.5), fine(2.0)));
        let values = simulated(&[("nan", f64::NAN), ("one", 3.0), ("two", 3.0)]);
        assert_eq!(
            order(&rows(&ope, &values)),
            [("two", 1), ("one", 2), ("nan", 3)]
        );
    }

    #[test]
    fn the_table_has_a_row_per_arm_with_its_rank_and_trust() {
        let fine = |v| estimate(v, 5_000.0, 10_000);
        let mut ope = target("a", fine(0.5), fine(3.5));
        ope.extend(target("b", fine(0.5), estimate(4.0, 10.0, 10_000)));
        let table = to_table(&rows(&ope, &simulated(&[("a", 2.0), ("b", 1.0)])));
        let csv = table.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(
            lines[0].starts_with("rank,arm,simulated,first_pick"),
            "{csv}"
        );
        assert!(
            lines[1].starts_with("1,a,2.0000,") && lines[1].ends_with("true"),
            "{csv}"
        );
        assert!(
            lines[2].starts_with("2,b,") && lines[2].ends_with("false"),
            "{csv}"
        );
    }
}
