//! The off-policy estimators (docs/ope.md#estimators), on replayed
//! decisions: for each logged request, the importance weight w = π(a|x) /
//! μ(a|x) of the served track a under the target π and the logging policy
//! μ, the reward r observed, and the reward model's q̂(a) and q̂(x, π).
//!
//! Pure arithmetic, no I/O: each function takes the decisions and the
//! weight cap and returns an [`Estimate`] with its 95% interval (normal
//! approximation on per-unit contributions; the delta method for the
//! self-normalised estimators, whose denominator is random too).

use serde::Serialize;

/// One logged decision, replayed under one target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// π(a|x) / μ(a|x), unclipped.
    pub weight: f64,
    /// The listened fraction of the served track.
    pub reward: f64,
    /// The reward model's q̂(a): the served track's expected reward.
    pub q_logged: f64,
    /// The reward model's q̂(x, π) = Σ_a π(a|x) q̂(a): the target's expected
    /// reward at this state.
    pub q_target: f64,
}

/// One session: the listener's own first track's listened fraction (every
/// session has it, whatever the policy), then botify's decisions in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    pub first: f64,
    pub steps: Vec<Step>,
}

/// One estimate with what tells whether to trust it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub estimate: f64,
    /// 95% interval.
    pub lower: f64,
    pub upper: f64,
    /// Effective sample size (Σw)² / Σw² of the (clipped) weights: how many
    /// on-policy units the estimate is worth.
    pub ess: f64,
    /// The largest weight before clipping.
    pub max_weight: f64,
    /// The mean of the (clipped) weights: 1 in expectation when the
    /// propensities are right and the target stays within the logging
    /// support, so far from 1 flags clipping that removed mass, support
    /// left, or wrong propensities.
    pub mean_weight: f64,
    /// Share of the weights at the cap.
    pub clipped: f64,
    /// Units: decisions for `first_pick`, sessions for `session`.
    pub n: usize,
}

/// 97.5% quantile of the standard normal.
const Z95: f64 = 1.959_963_984_540_054;

/// Weights summarised: ESS, largest raw weight, share clipped.
struct WeightStats {
    sum: f64,
    sum_sq: f64,
    /// Weights counted in `sum` and `sum_sq`: one per unit.
    units: usize,
    max: f64,
    at_cap: usize,
    count: usize,
}

impl WeightStats {
    fn new() -> WeightStats {
        WeightStats {
            sum: 0.0,
            sum_sq: 0.0,
            units: 0,
            max: 0.0,
            at_cap: 0,
            count: 0,
        }
    }

    /// Adds a raw weight and returns it clipped at `clip`.
    fn add(&mut self, raw: f64, clip: f64) -> f64 {
        let clipped = raw.min(clip);
        self.max = self.max.max(raw);
        self.at_cap += usize::from(raw >= clip);
        self.count += 1;
        clipped
    }

    /// Counts a clipped weight in the ESS (the session estimators count
    /// each session's final weight there, every decision's in `add`).
    fn effective(&mut self, clipped: f64) {
        self.sum += clipped;
        self.sum_sq += clipped * clipped;
        self.units += 1;
    }

    fn estimate(&self, estimate: f64, half_width: f64, n: usize) -> Estimate {
        Estimate {
            estimate,
            lower: estimate - half_width,
            upper: estimate + half_width,
            ess: if self.sum_sq > 0.0 {
                self.sum * self.sum / self.sum_sq
            } else {
                0.0
            },
            max_weight: self.max,
            mean_weight: self.sum / self.units.max(1) as f64,
            clipped: self.at_cap as f64 / self.count.max(1) as f64,
            n,
        }
    }
}

/// Mean and the half-width of its 95% normal interval.
fn mean_interval(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, Z95 * (var / n as f64).sqrt())
}

/// Each step's weight clipped at `clip` (recorded in the stats) and turned
/// into its unit's contribution by `contribution(w, step)`.
fn per_step(
    steps: &[Step],
    clip: f64,
    contribution: impl Fn(f64, &Step) -> f64,
) -> (WeightStats, Vec<f64>) {
    let mut stats = WeightStats::new();
    let values = steps
        .iter()
        .map(|s| {
            let w = stats.add(s.weight, clip);
            stats.effective(w);
            contribution(w, s)
        })
        .collect();
    (stats, values)
}

/// The mean of per-unit contributions, with its normal interval.
fn mean_estimate(stats: &WeightStats, values: &[f64]) -> Estimate {
    let (mean, half) = mean_interval(values);
    stats.estimate(mean, half, values.len())
}

/// Inverse propensity scoring: the mean of min(w, clip)·r. Unbiased (before
/// clipping) when every track π serves had μ > 0.
pub fn ips(steps: &[Step], clip: f64) -> Estimate {
    let (stats, values) = per_step(steps, clip, |w, s| w * s.reward);
    mean_estimate(&stats, &values)
}

/// Self-normalised IPS: Σ w·r / Σ w. Biased by O(1/n) but bounded by the
/// rewards, and far less variable than IPS when weights are uneven; its
/// interval by the delta method (influence w·(r − V̂) / mean(w)).
pub fn snips(steps: &[Step], clip: f64) -> Estimate {
    let (stats, weights) = per_step(steps, clip, |w, _| w);
    let n = steps.len();
    let sum_w: f64 = weights.iter().sum();
    if sum_w <= 0.0 {
        return stats.estimate(f64::NAN, f64::NAN, n);
    }
    let weighted = weights.iter().zip(steps);
    let value = weighted.clone().map(|(w, s)| w * s.reward).sum::<f64>() / sum_w;
    let mean_w = sum_w / n as f64;
    let influence: Vec<f64> = weighted
        .map(|(w, s)| w * (s.reward - value) / mean_w)
        .collect();
    let (_, half) = mean_interval(&influence);
    stats.estimate(value, half, n)
}

/// Doubly robust: the mean of q̂(x, π) + min(w, clip)·(r − q̂(a)). Unbiased
/// when either the propensities or the reward model are right; its variance
/// shrinks as q̂ explains r.
pub fn dr(steps: &[Step], clip: f64) -> Estimate {
    let (stats, values) = per_step(steps, clip, |w, s| s.q_target + w * (s.reward - s.q_logged));
    mean_estimate(&stats, &values)
}

/// The cumulative weights W_t = min(Π_{k≤t} w_k, clip) of a trajectory,
/// recorded in `stats`.
fn cumulative(trajectory: &Trajectory, clip: f64, stats: &mut WeightStats) -> Vec<f64> {
    let mut product = 1.0;
    let weights: Vec<f64> = trajectory
        .steps
        .iter()
        .map(|s| {
            product *= s.weight;
            stats.add(product, clip)
        })
        .collect();
    stats.effective(weights.last().copied().unwrap_or(1.0));
    weights
}

/// The mean over sessions of `contribution(session, its cumulative
/// weights)`, with its normal interval.
fn per_session(
    trajectories: &[Trajectory],
    clip: f64,
    contribution: impl Fn(&Trajectory, &[f64]) -> f64,
) -> Estimate {
    let mut stats = WeightStats::new();
    let values: Vec<f64> = trajectories
        .iter()
        .map(|t| contribution(t, &cumulative(t, clip, &mut stats)))
        .collect();
    mean_estimate(&stats, &values)
}

/// Per-decision IPS of the time per session: the mean over sessions of
/// first + Σ_t W_t·r_t. A reward at step t depends only on the decisions up
/// to t, so it is weighed by theirs alone (Precup et al. 2000).
pub fn session_ips(trajectories: &[Trajectory], clip: f64) -> Estimate {
    per_session(trajectories, clip, |t, weights| {
        let rewards = weights.iter().zip(&t.steps).map(|(w, s)| w * s.reward);
        t.first + rewards.sum::<f64>()
    })
}

/// Per-decision self-normalised IPS: first + Σ_t (Σ_i W_it·r_it) / (Σ_i
/// W̃_it), where a session that ended before step t carries its last weight
/// (W̃) and no reward: it still counts in the normaliser, as its listener
/// would have left under any policy. Interval by the delta method.
pub fn session_snips(trajectories: &[Trajectory], clip: f64) -> Estimate {
    let n = trajectories.len();
    let mut stats = WeightStats::new();
    let weights: Vec<Vec<f64>> = trajectories
        .iter()
        .map(|t| cumulative(t, clip, &mut stats))
        .collect();
    let horizon = trajectories
        .iter()
        .map(|t| t.steps.len())
        .max()
        .unwrap_or(0);
    // Weight carried by session i at step t.
    let carried = |i: usize, t: usize| -> f64 {
        let w = &weights[i];
        match w.len() {
            0 => 1.0,
            len => w[t.min(len - 1)],
        }
    };
    let mut numerators = vec![0.0; horizon];
    let mut denominators = vec![0.0; horizon];
    for (i, trajectory) in trajectories.iter().enumerate() {
        for (t, (numerator, denominator)) in
            numerators.iter_mut().zip(&mut denominators).enumerate()
        {
            *denominator += carried(i, t);
            if let Some(step) = trajectory.steps.get(t) {
                *numerator += weights[i][t] * step.reward;
            }
        }
    }
    let first_mean = trajectories.iter().map(|t| t.first).sum::<f64>() / n.max(1) as f64;
    let ratios: Vec<f64> = numerators
        .iter()
        .zip(&denominators)
        .map(|(a, b)| if *b > 0.0 { a / b } else { 0.0 })
        .collect();
    let value = first_mean + ratios.iter().sum::<f64>();
    let influence: Vec<f64> = trajectories
        .iter()
        .enumerate()
        .map(|(i, trajectory)| {
            let mut v = trajectory.first;
            for (t, ratio) in ratios.iter().enumerate() {
                let mean_w = denominators[t] / n as f64;
                let reward = trajectory
                    .steps
                    .get(t)
                    .map_or(0.0, |s| weights[i][t] * s.reward);
                v += (reward - ratio * carried(i, t)) / mean_w;
            }
            v
        })
        .collect();
    let (_, half) = mean_interval(&influence);
    stats.estimate(value, half, n)
}

/// Per-decision doubly robust (Jiang & Li 2016): the mean over sessions of
/// first + Σ_t [W_{t−1}·q̂(x_t, π) + W_t·(r_t − q̂(a_t))], W_{−1} = 1.
pub fn session_dr(trajectories: &[Trajectory], clip: f64) -> Estimate {
    per_session(trajectories, clip, |t, weights| {
        let before = std::iter::once(&1.0).chain(weights);
        let terms = before.zip(weights).zip(&t.steps);
        let corrected =
            terms.map(|((before, w), s)| before * s.q_target + w * (s.reward - s.q_logged));
        t.first + corrected.sum::<f64>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(weight: f64, reward: f64) -> Step {
        Step {
            weight,
            reward,
            q_logged: 0.5,
            q_target: 0.5,
        }
    }

    /// A session whose first listen took its whole track, then `steps`.
    fn session(steps: Vec<Step>) -> Trajectory {
        Trajectory { first: 1.0, steps }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn the_logging_policy_itself_gets_its_on_policy_mean() {
        let rewards = [1.0, 0.2, 0.5, 0.0, 0.8];
        let steps: Vec<Step> = rewards.iter().map(|&r| step(1.0, r)).collect();
        let mean = rewards.iter().sum::<f64>() / 5.0;
        for e in [ips(&steps, 100.0), snips(&steps, 100.0)] {
            assert!(close(e.estimate, mean), "{e:?}");
            assert!(e.lower < mean && mean < e.upper, "{e:?}");
            assert!(close(e.ess, 5.0) && e.max_weight == 1.0 && e.clipped == 0.0);
        }
    }

    #[test]
    fn snips_divides_by_the_sum_of_the_weights() {
        let steps = [step(2.0, 1.0), step(0.5, 0.0), step(0.5, 0.4)];
        // Σwr / Σw = (2 + 0 + 0.2) / 3.
        assert!(close(snips(&steps, 100.0).estimate, 2.2 / 3.0));
        // IPS divides by n instead: the same here as Σw = n.
        assert!(close(ips(&steps, 100.0).estimate, 2.2 / 3.0));
        // Scaling every weight changes IPS, not SNIPS.
        let doubled: Vec<Step> = steps
            .iter()
            .map(|s| step(2.0 * s.weight, s.reward))
            .collect();
        assert!(close(snips(&doubled, 100.0).estimate, 2.2 / 3.0));
        assert!(close(ips(&doubled, 100.0).estimate, 4.4 / 3.0));
        // (Σw)²/Σw² = 9 / 4.5.
        assert!(close(snips(&steps, 100.0).ess, 2.0));
        assert!(close(snips(&steps, 100.0).mean_weight, 1.0));
        assert!(close(snips(&doubled, 100.0).mean_weight, 2.0));
    }

    #[test]
    fn dr_with_a_perfect_reward_model_is_the_direct_value() {
        let steps: Vec<Step> = [(3.0, 0.9, 0.7), (0.2, 0.1, 0.3), (1.5, 0.6, 0.2)]
            .iter()
            .map(|&(weight, reward, q_target)| Step {
                weight,
                reward,
                q_logged: reward,
                q_target,
            })
            .collect();
        let e = dr(&steps, 100.0);
        assert!(close(e.estimate, (0.7 + 0.3 + 0.2) / 3.0), "{e:?}");
        // A useless reward model (q̂ = 0) leaves IPS.
        let blind: Vec<Step> = steps
            .iter()
            .map(|s| Step {
                q_logged: 0.0,
                q_target: 0.0,
                ..*s
            })
            .collect();
        assert!(close(
            dr(&blind, 100.0).estimate,
            ips(&steps, 100.0).estimate
        ));
    }

    #[test]
    fn clipping_caps_the_weights_and_says_how_many() {
        let steps = [step(50.0, 1.0), step(1.0, 0.5)];
        let e = ips(&steps, 10.0);
        assert!(close(e.estimate, (10.0 + 0.5) / 2.0), "{e:?}");
        assert_eq!((e.max_weight, e.clipped, e.n), (50.0, 0.5, 2));
        assert_eq!(ips(&steps, 100.0).clipped, 0.0);
    }

    #[test]
    fn session_estimators_weigh_each_reward_by_the_decisions_before_it() {
        // On-policy: every estimator gives the mean time per session.
        let on_policy = [
            session(vec![step(1.0, 0.5), step(1.0, 0.25)]),
            session(vec![step(1.0, 1.0)]),
        ];
        let mean = (1.75 + 2.0) / 2.0;
        for e in [
            session_ips(&on_policy, 100.0),
            session_snips(&on_policy, 100.0),
            session_dr(&on_policy, 100.0),
        ] {
            assert!(close(e.estimate, mean), "{e:?}");
        }
        // Weights 2 then 3: the second reward is weighed 6, the first 2.
        let off = [
            session(vec![step(2.0, 0.5), step(3.0, 0.25)]),
            session(vec![step(0.5, 1.0)]),
        ];
        let e = session_ips(&off, 100.0);
        assert!(close(e.estimate, ((1.0 + 1.0 + 1.5) + (1.0 + 0.5)) / 2.0));
        assert!(close(e.max_weight, 6.0));
        // Capped at 4: the product 6 counts 4.
        let e = session_ips(&off, 4.0);
        assert!(close(e.estimate, ((1.0 + 1.0 + 1.0) + (1.0 + 0.5)) / 2.0));
        assert!(close(e.clipped, 1.0 / 3.0));
        // Per-decision SNIPS: step 0: (2·0.5 + 0.5·1) / 2.5; step 1: the
        // ended session carries 0.5: (6·0.25) / 6.5.
        let e = session_snips(&off, 100.0);
        assert!(close(e.estimate, 1.0 + 1.5 / 2.5 + 1.5 / 6.5), "{e:?}");
        // ESS on the final weights 6 and 0.5.
        assert!(close(e.ess, 6.5 * 6.5 / 36.25));
    }
}
