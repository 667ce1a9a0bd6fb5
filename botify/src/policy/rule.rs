//! How a policy picks among ranked candidates: the distribution each rule
//! puts on a list, and a draw from it. Both read the same arithmetic, so
//! the probability logged is the probability the draw had.

use rand::{Rng, RngCore};

use crate::catalog::TrackId;
use crate::recommenders::Scored;

/// A rule over ranked candidates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// The best candidate, always.
    Greedy,
    /// Boltzmann exploration (as in YouTube's REINFORCE recommender, Chen
    /// et al. 2019): candidate i with probability ∝ exp(sᵢ / temperature),
    /// sᵢ its score min–max normalised over the list to 0..=1 — every
    /// recommender scores on its own scale, so only normalised scores let
    /// one temperature mean the same on every arm.
    Softmax { temperature: f64 },
    /// A probability floor, as in Vowpal Wabbit's `cb_explore_adf`: the
    /// best candidate with probability 1 − ε, plus ε spread evenly over
    /// the whole list (the support: at most `top` candidates).
    Epsilon { epsilon: f64 },
}

/// The index of the best candidate (highest score, ties: lower id), or
/// `None` for an empty list. Found by a scan, so it does not depend on the
/// recommender's ordering.
pub fn greedy(list: &[Scored]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &(track, score)) in list.iter().enumerate() {
        let better = best.is_none_or(|b| {
            let (best_track, best_score) = list[b];
            score > best_score || (score == best_score && track < best_track)
        });
        if better {
            best = Some(i);
        }
    }
    best
}

impl Rule {
    /// The index of the candidate served from a non-empty `list`.
    pub fn draw(&self, list: &[Scored], rng: &mut dyn RngCore) -> usize {
        let best = greedy(list).unwrap_or(0);
        match *self {
            Rule::Greedy => best,
            Rule::Epsilon { epsilon } => {
                if rng.gen_bool(epsilon) {
                    rng.gen_range(0..list.len())
                } else {
                    best
                }
            }
            Rule::Softmax { temperature } => {
                let boltzmann = Boltzmann::of(list, temperature);
                let mut left = rng.gen::<f64>() * boltzmann.total;
                for (i, &(_, score)) in list.iter().enumerate() {
                    left -= boltzmann.weight(score);
                    if left < 0.0 {
                        return i;
                    }
                }
                // Rounding left a sliver past the last weight: the best
                // candidate, whose weight is 1, never one weighing 0.
                best
            }
        }
    }

    /// The probability that the rule serves `track` from `list` (summed
    /// over its entries, should it be listed twice); 0 when not listed.
    pub fn probability(&self, list: &[Scored], track: TrackId) -> f64 {
        let entries = || list.iter().filter(move |&&(t, _)| t == track);
        let is_best = || greedy(list).is_some_and(|b| list[b].0 == track);
        match *self {
            Rule::Greedy => f64::from(u8::from(is_best())),
            Rule::Epsilon { epsilon } => {
                let floor = epsilon * entries().count() as f64 / list.len().max(1) as f64;
                (1.0 - epsilon) * f64::from(u8::from(is_best())) + floor
            }
            Rule::Softmax { temperature } => {
                let boltzmann = Boltzmann::of(list, temperature);
                let weight: f64 = entries().map(|&(_, s)| boltzmann.weight(s)).sum();
                weight / boltzmann.total
            }
        }
    }
}

/// The softmax weights of one list: its score range and their sum.
struct Boltzmann {
    min: f64,
    span: f64,
    temperature: f64,
    total: f64,
}

impl Boltzmann {
    fn of(list: &[Scored], temperature: f64) -> Boltzmann {
        let (min, max) = list.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &(_, s)| {
            (lo.min(f64::from(s)), hi.max(f64::from(s)))
        });
        let mut boltzmann = Boltzmann {
            min,
            span: max - min,
            temperature,
            total: 0.0,
        };
        boltzmann.total = list.iter().map(|&(_, s)| boltzmann.weight(s)).sum();
        boltzmann
    }

    /// exp((normalised score − 1) / temperature): the best candidate weighs
    /// 1, so no weight overflows whatever the temperature. Equal scores
    /// (span 0) weigh alike.
    fn weight(&self, score: f32) -> f64 {
        let normalised = if self.span > 0.0 {
            (f64::from(score) - self.min) / self.span
        } else {
            1.0
        };
        ((normalised - 1.0) / self.temperature).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    const LIST: [Scored; 4] = [(7, 3.0), (2, 1.0), (9, 2.5), (4, 3.0)];
    const RULES: [Rule; 3] = [
        Rule::Greedy,
        Rule::Softmax { temperature: 0.3 },
        Rule::Epsilon { epsilon: 0.2 },
    ];

    #[test]
    fn greedy_is_the_best_score_and_ties_go_to_the_lower_id() {
        assert_eq!(greedy(&LIST), Some(3), "4 and 7 tie at 3.0: 4");
        assert_eq!(greedy(&[]), None);
    }

    #[test]
    fn every_rule_puts_probabilities_summing_to_one_on_the_list() {
        for rule in RULES {
            let total: f64 = LIST.iter().map(|&(t, _)| rule.probability(&LIST, t)).sum();
            assert!((total - 1.0).abs() < 1e-9, "{rule:?}: {total}");
            assert_eq!(rule.probability(&LIST, 99), 0.0, "{rule:?}: unlisted");
        }
        let epsilon = Rule::Epsilon { epsilon: 0.2 };
        assert!((epsilon.probability(&LIST, 4) - (0.8 + 0.05)).abs() < 1e-12);
        assert!((epsilon.probability(&LIST, 2) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn softmax_normalises_scores_so_their_scale_does_not_matter() {
        let softmax = Rule::Softmax { temperature: 0.2 };
        let scaled: Vec<Scored> = LIST.iter().map(|&(t, s)| (t, 1000.0 * s - 7.0)).collect();
        for &(track, _) in &LIST {
            let a = softmax.probability(&LIST, track);
            let b = softmax.probability(&scaled, track);
            assert!((a - b).abs() < 1e-9, "{track}: {a} vs {b}");
        }
        // Lowest score: exp(−1 / 0.2) relative to the best.
        let ratio = softmax.probability(&LIST, 2) / softmax.probability(&LIST, 7);
        assert!((ratio - (-5.0f64).exp()).abs() < 1e-9, "{ratio}");
        let flat = [(1, 0.5), (2, 0.5)];
        assert!((softmax.probability(&flat, 1) - 0.5).abs() < 1e-12);
        let tiny = Rule::Softmax { temperature: 1e-6 };
        assert_eq!(tiny.probability(&LIST, 2), 0.0, "no overflow, no NaN");
    }

    #[test]
    fn draws_follow_the_probabilities() {
        let mut rng = SmallRng::seed_from_u64(3);
        let draws = 40_000;
        for rule in RULES {
            let mut counts = [0usize; LIST.len()];
            for _ in 0..draws {
                counts[rule.draw(&LIST, &mut rng)] += 1;
            }
            for (i, &(track, _)) in LIST.iter().enumerate() {
                let expected = rule.probability(&LIST, track);
                let seen = counts[i] as f64 / draws as f64;
                assert!(
                    (seen - expected).abs() < 0.01,
                    "{rule:?} {track}: {seen} vs {expected}"
                );
            }
        }
    }
}
