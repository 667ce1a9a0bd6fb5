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
    /// The rule applied to `list`: its best candidate and, for softmax, its
    /// weights, worked out once so that a request's draw and the
    /// probability it logs share them.
    pub fn rank(self, list: &[Scored]) -> Ranking<'_> {
        Ranking {
            rule: self,
            list,
            best: greedy(list),
            boltzmann: match self {
                Rule::Softmax { temperature } => Some(Boltzmann::of(list, temperature)),
                Rule::Greedy | Rule::Epsilon { .. } => None,
            },
        }
    }
}

/// A [`Rule`] over one list of candidates.
pub struct Ranking<'l> {
    rule: Rule,
    list: &'l [Scored],
    best: Option<usize>,
    /// The softmax weights (softmax only).
    boltzmann: Option<Boltzmann>,
}

impl Ranking<'_> {
    /// The candidates ranked.
    pub fn list(&self) -> &[Scored] {
        self.list
    }

    /// The index of the candidate served from a non-empty list.
    pub fn draw(&self, rng: &mut dyn RngCore) -> usize {
        let best = self.best.unwrap_or(0);
        match (self.rule, &self.boltzmann) {
            (Rule::Epsilon { epsilon }, _) => {
                if rng.gen_bool(epsilon) {
                    rng.gen_range(0..self.list.len())
                } else {
                    best
                }
            }
            (Rule::Softmax { .. }, Some(boltzmann)) => {
                let mut left = rng.gen::<f64>() * boltzmann.total;
                for (i, &(_, score)) in self.list.iter().enumerate() {
                    left -= boltzmann.weight(score);
                    if left < 0.0 {
                        return i;
                    }
                }
                // Rounding left a sliver past the last weight: the best
                // candidate, whose weight is 1, never one weighing 0.
                best
            }
            _ => best,
        }
    }

    /// The probability that the rule serves `track` from the list (summed
    /// over its entries, should it be listed twice); 0 when not listed.
    pub fn probability(&self, track: TrackId) -> f64 {
        let list = self.list;
        let entries = || list.iter().filter(move |&&(t, _)| t == track);
        let is_best = f64::from(u8::from(self.best.is_some_and(|b| list[b].0 == track)));
        match (self.rule, &self.boltzmann) {
            (Rule::Epsilon { epsilon }, _) => {
                let floor = epsilon * entries().count() as f64 / list.len().max(1) as f64;
                (1.0 - epsilon) * is_best + floor
            }
            (Rule::Softmax { .. }, Some(boltzmann)) => {
                let weight: f64 = entries().map(|&(_, s)| boltzmann.weight(s)).sum();
                weight / boltzmann.total
            }
            _ => is_best,
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
            let total: f64 = LIST
                .iter()
                .map(|&(t, _)| rule.rank(&LIST).probability(t))
                .sum();
            assert!((total - 1.0).abs() < 1e-9, "{rule:?}: {total}");
            assert_eq!(rule.rank(&LIST).probability(99), 0.0, "{rule:?}: unlisted");
        }
        let epsilon = Rule::Epsilon { epsilon: 0.2 };
        assert!((epsilon.rank(&LIST).probability(4) - (0.8 + 0.05)).abs() < 1e-12);
        assert!((epsilon.rank(&LIST).probability(2) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn softmax_normalises_scores_so_their_scale_does_not_matter() {
        let softmax = Rule::Softmax { temperature: 0.2 };
        let scaled: Vec<Scored> = LIST.iter().map(|&(t, s)| (t, 1000.0 * s - 7.0)).collect();
        for &(track, _) in &LIST {
            let a = softmax.rank(&LIST).probability(track);
            let b = softmax.rank(&scaled).probability(track);
            assert!((a - b).abs() < 1e-9, "{track}: {a} vs {b}");
        }
        // Lowest score: exp(−1 / 0.2) relative to the best.
        let ratio = softmax.rank(&LIST).probability(2) / softmax.rank(&LIST).probability(7);
        assert!((ratio - (-5.0f64).exp()).abs() < 1e-9, "{ratio}");
        let flat = [(1, 0.5), (2, 0.5)];
        assert!((softmax.rank(&flat).probability(1) - 0.5).abs() < 1e-12);
        let tiny = Rule::Softmax { temperature: 1e-6 };
        assert_eq!(tiny.rank(&LIST).probability(2), 0.0, "no overflow, no NaN");
    }

    #[test]
    fn draws_follow_the_probabilities() {
        let mut rng = SmallRng::seed_from_u64(3);
        let draws = 40_000;
        for rule in RULES {
            let ranking = rule.rank(&LIST);
            let mut counts = [0usize; LIST.len()];
            for _ in 0..draws {
                counts[ranking.draw(&mut rng)] += 1;
            }
            for (i, &(track, _)) in LIST.iter().enumerate() {
                let expected = ranking.probability(track);
                let seen = counts[i] as f64 / draws as f64;
                assert!(
                    (seen - expected).abs() < 0.01,
                    "{rule:?} {track}: {seen} vs {expected}"
                );
            }
        }
    }
}
