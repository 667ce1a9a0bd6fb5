//! The results as the terminal, CSV and Markdown tables (`output::Table`)
//! and as JSON: the notebook's [`AbTable`] and the extended analysis's
//! [`MetricsAnalysis`]. Both colour a row by whether a significant effect
//! goes the metric's good way.

use super::estimate::EffectEstimate;
use super::extended::{CupedRow, Design, MetricsAnalysis};
use super::metrics;
use super::notebook::{AbTable, HIGHER_IS_BETTER, METRICS};
use crate::output::{self, Column, Table, Tone};

/// Green for a significant move the good way, red the bad way.
fn tone(significant: bool, effect: f64, higher_is_better: bool) -> Tone {
    match (significant, (effect > 0.0) == higher_is_better) {
        (false, _) => Tone::Plain,
        (true, true) => Tone::Good,
        (true, false) => Tone::Bad,
    }
}

/// A p-value in four decimals, small ones in scientific notation.
pub(super) fn p_text(p: f64) -> String {
    if p.is_nan() {
        "n/a".into()
    } else if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// The columns every comparison table starts with (a look's table puts its
/// day first and names its bounds for the design).
const EFFECT_COLUMNS: [&str; 7] = [
    "treatment",
    "metric",
    "control_mean",
    "treatment_mean",
    "effect",
    "lower",
    "upper",
];

/// The cells of [`EFFECT_COLUMNS`]: the arm means raw, the effect and its
/// bounds in percent of the control mean.
fn effect_cells(treatment: &str, metric: &str, e: &EffectEstimate) -> Vec<String> {
    vec![
        treatment.to_string(),
        metric.to_string(),
        output::num(e.control_mean, 4),
        output::num(e.treatment_mean, 4),
        output::percent(e.effect),
        output::percent(e.lower),
        output::percent(e.upper),
    ]
}

impl AbTable {
    /// Rows for the terminal, CSV and Markdown: percent columns formatted,
    /// significant gains (by the metric's good direction) green, losses red.
    pub fn to_table(&self) -> Table {
        let mut headers = EFFECT_COLUMNS.to_vec();
        headers.push("significant");
        let mut t = Table::new(&headers);
        for row in &self.rows {
            let good = METRICS
                .iter()
                .position(|m| *m == row.metric)
                .is_none_or(|m| HIGHER_IS_BETTER[m]);
            let tone = tone(row.significant, row.estimate.effect, good);
            let mut cells = effect_cells(&row.treatment, &row.metric, &row.estimate);
            cells.push(row.significant.to_string());
            t.push(cells, tone);
        }
        t
    }

    /// The notebook's JSON: an array of rows (non-finite numbers become null).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.rows).expect("rows serialize")
    }

    /// Users per arm and the SRM verdict, one paragraph.
    pub fn srm_summary(&self) -> String {
        self.srm.summary()
    }
}

impl MetricsAnalysis {
    /// The rows of one role as a table; `success` or `guardrail`.
    pub fn to_table(&self, role: &str) -> Table {
        let cuped = !self.cuped.is_empty();
        let sequential = self.rows.iter().any(|r| r.sequential_lower.is_some());
        let mut headers = EFFECT_COLUMNS.to_vec();
        headers.extend([
            "lift_lower",
            "lift_upper",
            "p_value",
            "p_adjusted",
            "significant",
        ]);
        if cuped {
            headers.push("variance_reduction");
        }
        if sequential {
            headers.extend(["always_valid_lower", "always_valid_upper"]);
        }
        headers.push("denominator");
        let mut t = Table::new(&headers);
        for row in self.rows.iter().filter(|r| r.role == role) {
            let good = metrics::find(&row.metric).is_none_or(|m| m.higher_is_better);
            let tone = tone(row.significant, row.estimate.effect, good);
            let mut cells = effect_cells(&row.treatment, &row.metric, &row.estimate);
            cells.extend([
                output::percent(row.lift_lower),
                output::percent(row.lift_upper),
                p_text(row.p_value),
                p_text(row.p_adjusted),
                row.significant.to_string(),
            ]);
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
            cells.push(
                self.breakdown
                    .denominators
                    .get(&row.metric)
                    .copied()
                    .unwrap_or_default()
                    .to_string(),
            );
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
            let mut cells = vec![l.day.clone()];
            cells.extend(effect_cells(&l.treatment, &l.metric, &l.estimate));
            cells.extend([p_text(first), p_text(second), l.significant.to_string()]);
            t.push(cells, tone);
        }
        t
    }

    /// CUPED's fits as a table.
    pub fn cuped_table(&self) -> Table {
        let columns: [Column<CupedRow>; 6] = [
            ("metric", |c| c.metric.clone()),
            ("theta", |c| output::num(c.theta, 4)),
            ("users", |c| c.users.to_string()),
            ("users_with_pre", |c| c.users_with_pre.to_string()),
            ("variance_reduction", |c| {
                output::percent_of_one(c.variance_reduction)
            }),
            ("interval_width", |c| output::percent_of_one(c.width_ratio)),
        ];
        Table::plain(&columns, &self.cuped)
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
        if self.breakdown.exposure {
            text.push_str(
                "; exposure design: every user from their first assignment, absent users \
                 count as zeros in per-user totals, SRM on exposures",
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab::breakdown::Breakdown;
    use crate::ab::correction::Correction;
    use crate::ab::extended::{CupedRow, Look, MetricRow};
    use crate::ab::spending::SpendingFunction;
    use crate::ab::srm;

    #[test]
    fn p_values_read_at_a_glance() {
        assert_eq!(p_text(f64::NAN), "n/a");
        assert_eq!(p_text(0.5), "0.5000");
        assert_eq!(p_text(0.00012), "0.0001");
        assert_eq!(p_text(0.00001234), "1.2e-5");
    }

    #[test]
    fn a_significant_move_is_coloured_by_the_metrics_good_way() {
        assert_eq!(tone(true, 3.0, true), Tone::Good);
        assert_eq!(tone(true, 3.0, false), Tone::Bad);
        assert_eq!(tone(true, -3.0, false), Tone::Good);
        assert_eq!(tone(false, -3.0, true), Tone::Plain);
    }

    fn analysis(design: Option<Design>) -> MetricsAnalysis {
        let row = |metric: &str, role: &'static str, effect: f64| MetricRow {
            sequential_lower: design.map(|_| effect - 2.0),
            sequential_upper: design.map(|_| effect + 2.0),
            ..MetricRow::example(metric, role, effect)
        };
        let look = Look {
            day: "3".into(),
            treatment: "T1".into(),
            metric: "time".into(),
            estimate: EffectEstimate {
                control_mean: 2.0,
                treatment_mean: 2.5,
                effect: 25.0,
                lower: 3.0,
                upper: 47.0,
            },
            p_value: matches!(design, Some(Design::Mixture { .. })).then_some(0.01),
            nominal_alpha: matches!(design, Some(Design::Spending { .. })).then_some(0.02),
            significant: true,
            fixed_p_value: 0.003,
        };
        MetricsAnalysis {
            rows: vec![
                row("time", "success", 25.0),
                row("mean_request_latency", "guardrail", 10.0),
            ],
            looks: design.map(|_| look).into_iter().collect(),
            cuped: vec![CupedRow {
                metric: "time".into(),
                theta: 0.5,
                users: 20,
                users_with_pre: 15,
                variance_reduction: 0.36,
                width_ratio: 0.8,
            }],
            window: ("1".into(), "3".into()),
            breakdown: Breakdown {
                denominators: [("time".to_string(), "active users")].into(),
                ..Breakdown::default()
            },
            correction: Correction::Holm,
            design,
            srm: srm(&[10, 10]),
            arm_labels: vec!["C".into(), "T1".into()],
        }
    }

    #[test]
    fn the_metrics_table_shows_cuped_and_sequential_columns_only_when_there_are_any() {
        let plain = analysis(None);
        let success = plain.to_table("success");
        let n = success.headers.len();
        assert_eq!(
            &success.headers[n - 2..],
            ["variance_reduction", "denominator"]
        );
        assert_eq!(success.rows[0].0[n - 1], "active users");
        assert_eq!(success.rows.len(), 1);
        assert_eq!(success.rows[0].0[9], "0.0010");
        assert_eq!(success.rows[0].1, Tone::Good);
        // Latency up is a loss.
        assert_eq!(plain.to_table("guardrail").rows[0].1, Tone::Bad);

        let mixture = analysis(Some(Design::Mixture { mixing: 0.05 }));
        let headers = mixture.to_table("success").headers;
        assert_eq!(
            &headers[headers.len() - 3..headers.len() - 1],
            ["always_valid_lower", "always_valid_upper"]
        );
        assert!(mixture
            .summary()
            .ends_with("(mixing 5% of the control mean)"));
        assert!(
            plain.summary().starts_with("days 1 to 3; correction: Holm"),
            "{}",
            plain.summary()
        );
    }

    #[test]
    fn the_looks_table_leads_with_what_the_design_tests() {
        let mixture = analysis(Some(Design::Mixture { mixing: 0.05 })).looks_table();
        assert_eq!(&mixture.headers[8..10], ["p_value", "fixed_p_value"]);
        assert_eq!(&mixture.rows[0].0[8..10], ["0.0100", "0.0030"]);
        let spending = analysis(Some(Design::Spending {
            horizon: 3,
            function: SpendingFunction::Pocock,
        }))
        .looks_table();
        assert_eq!(&spending.headers[8..10], ["fixed_p_value", "nominal_alpha"]);
        assert_eq!(&spending.rows[0].0[8..10], ["0.0030", "0.0200"]);
    }

    #[test]
    fn the_json_holds_rows_looks_cuped_and_denominators_only() {
        let json: serde_json::Value = serde_json::from_str(&analysis(None).to_json()).unwrap();
        let mut keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["cuped", "denominators", "exposure", "looks", "rows"]);
        let cuped = analysis(None).cuped_table();
        assert_eq!(
            cuped.rows[0].0,
            ["time", "0.5000", "20", "15", "36.00%", "80.00%"]
        );
    }
}
