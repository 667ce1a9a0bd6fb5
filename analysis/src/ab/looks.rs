//! How `--sequential` tests the daily looks of the extended analysis: the
//! [`Design`] chosen on the command line, and each comparison's running test
//! under it ([`SequentialLooks`]), so the analysis itself never matches on
//! the design.

use super::estimate::{Comparison, Sample};
use super::sequential::Sequential;
use super::spending::{Spending, SpendingFunction};

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

/// What one look tells beyond its bounds: the mixture's always-valid
/// p-value, or the level the spending design holds the look's fixed p to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LookLevel {
    pub p_value: Option<f64>,
    pub nominal_alpha: Option<f64>,
}

/// One comparison's sequential test under either design, carried from one
/// daily look to the next.
pub enum SequentialLooks {
    Mixture(Sequential),
    Spending(Spending),
}

impl SequentialLooks {
    /// The test of one comparison under `design`; `control_mean` at its
    /// first look scales the mixture.
    pub fn new(design: Design, alpha: f64, control_mean: f64) -> SequentialLooks {
        match design {
            Design::Mixture { mixing } => {
                SequentialLooks::Mixture(Sequential::new(mixing * control_mean.abs(), alpha))
            }
            Design::Spending { horizon, function } => {
                SequentialLooks::Spending(Spending::new(alpha, horizon, function))
            }
        }
    }

    /// The look on day `day` of the experiment (1-based) at `used`, made of
    /// the arms' values `control` and `treated`.
    pub fn look(
        &mut self,
        day: u32,
        used: &Comparison,
        control: &Sample,
        treated: &Sample,
    ) -> LookLevel {
        match self {
            SequentialLooks::Mixture(s) => {
                s.look(used.diff, used.variance);
                LookLevel {
                    p_value: Some(s.p_value),
                    nominal_alpha: None,
                }
            }
            SequentialLooks::Spending(s) => {
                s.look(day, used.diff, used.variance, control, treated);
                LookLevel {
                    p_value: None,
                    nominal_alpha: Some(s.nominal_alpha()),
                }
            }
        }
    }

    /// The last look's interval of the difference, in the metric's units.
    pub fn bounds(&self) -> (f64, f64) {
        match self {
            SequentialLooks::Mixture(t) => (t.lower, t.upper),
            SequentialLooks::Spending(t) => (t.lower, t.upper),
        }
    }

    /// Some look so far was significant.
    pub fn significant(&self) -> bool {
        match self {
            SequentialLooks::Mixture(t) => t.significant(),
            SequentialLooks::Spending(t) => t.significant(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(shift: f64) -> (Sample, Sample) {
        (
            Sample::of_users(0..200, |u| (u % 5) as f64 + 10.0),
            Sample::of_users(200..400, |u| (u % 5) as f64 + 10.0 + shift),
        )
    }

    fn comparison(control: &Sample, treated: &Sample) -> Comparison {
        Comparison::new(control.moments(), treated.moments())
    }

    #[test]
    fn the_mixture_gives_an_always_valid_p_and_scales_with_the_control_mean() {
        let design = Design::Mixture { mixing: 0.05 };
        let (c, t) = samples(1.0);
        let used = comparison(&c, &t);
        let mut looks = SequentialLooks::new(design, 0.05, used.control_mean);
        let SequentialLooks::Mixture(s) = &looks else {
            panic!("the mixture design runs the mixture SPRT");
        };
        // τ = 5% of the control mean (12).
        assert!((s.tau2 - 0.6f64.powi(2)).abs() < 1e-12, "{}", s.tau2);
        let level = looks.look(1, &used, &c, &t);
        assert!(level.nominal_alpha.is_none());
        let p = level.p_value.expect("the mixture reports its p-value");
        assert!(p < 0.05 && looks.significant(), "p {p}");
        let (lower, upper) = looks.bounds();
        assert!(lower > 0.0 && lower < used.diff && used.diff < upper);
    }

    #[test]
    fn the_spending_design_reports_the_level_of_each_look() {
        let design = Design::Spending {
            horizon: 1,
            function: SpendingFunction::OBrienFleming,
        };
        let (c, t) = samples(0.0);
        let used = comparison(&c, &t);
        let mut looks = SequentialLooks::new(design, 0.05, used.control_mean);
        let level = looks.look(1, &used, &c, &t);
        assert!(level.p_value.is_none());
        // One look at the horizon is the fixed-horizon test: all of α.
        let nominal = level.nominal_alpha.expect("spending reports its level");
        assert!((nominal - 0.05).abs() < 1e-3, "{nominal}");
        assert!(!looks.significant());
        let (lower, upper) = looks.bounds();
        assert!(lower < 0.0 && upper > 0.0);
    }

    #[test]
    fn each_design_says_what_it_gives() {
        assert!(Design::Mixture { mixing: 0.05 }
            .describe()
            .contains("mixture SPRT (mixing 5% of the control mean)"));
        let spending = Design::Spending {
            horizon: 6,
            function: SpendingFunction::Pocock,
        };
        assert!(spending.describe().contains("over a 6-day horizon"));
    }
}
