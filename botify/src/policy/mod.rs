//! Serving policies (docs/policies.md): how an arm turns its recommender's
//! candidates into the track served, and the probability it had.
//!
//! The answer is a draw from a mixture, and the logged propensity is the
//! probability of the exact track served under the whole mixture — the
//! branches that could have served it summed — so the logs are unbiased
//! data for the next model and for scoring a new policy offline:
//! - with probability `promote_rate` (filters), a promoted allowed track;
//! - else, with probability `noise` (the arm's, combined with its
//!   recommender's [`explore`](crate::recommenders::Recommender::explore)),
//!   a uniformly random allowed track;
//! - else the arm's [`Rule`] over the ranked candidates, or an even draw over
//!   a uniform candidate set; with no candidate, the engine's fallback:
//!   uniform over the allowed tracks, and when none is left any unblocked
//!   track but the current one, and as the very last resort the current one.
//!
//! A branch that cannot serve (no allowed promoted track, nothing allowed)
//! is skipped, its probability going to the next.

mod rule;
mod seed;

pub use rule::{greedy, Ranking, Rule};
pub use seed::RequestRng;

use rand::{Rng, RngCore};

use crate::catalog::TrackId;
use crate::experiments::ArmSpec;
use crate::recommenders::params::Params;
use crate::recommenders::{Allowed, BuildError, Candidates, Pool};

/// Candidates a ranked recommender is asked for (`top`): the support of
/// `softmax` and `epsilon`. Wide enough to explore beyond the head of the
/// list, short enough to stay cheap on every request.
pub const DEFAULT_TOP: usize = 50;

/// `greedy`'s default `top`: it serves the best candidate only, so a
/// recommender need not rank the others (selecting the best of a few
/// hundred scored candidates, not sorting fifty of them).
pub const GREEDY_TOP: usize = 1;

/// `softmax`'s default temperature, on scores normalised to 0..=1: the
/// candidates within about 0.05 of the best share most of the mass, the
/// bottom of the list is down by e⁻²⁰. It explores among near-equals —
/// what logs need to tell them apart — without serving the tail. Chosen by
/// a rule, not on one world: the largest of 0.2, 0.1, 0.05 whose cost
/// against the greedy twin stays well inside 3% of session length on
/// every world measured (docs/policies.md has the figures: 0.1 cost up to
/// 2.5% on a paired day and 5.3% in a closed loop; 0.05 at most 0.7%).
pub const DEFAULT_TEMPERATURE: f64 = 0.05;

/// `epsilon`'s default ε: one answer in ten spread over the top candidates,
/// Vowpal Wabbit's customary floor.
pub const DEFAULT_EPSILON: f64 = 0.1;

/// An arm's serving policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub rule: Rule,
    /// Candidates asked of the recommender.
    pub top: usize,
    /// Share of answers drawn uniformly over the allowed tracks.
    pub noise: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            rule: Rule::Greedy,
            top: GREEDY_TOP,
            noise: 0.0,
        }
    }
}

/// What a policy served.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub track: TrackId,
    /// The probability that this track was served, in (0, 1].
    pub propensity: f64,
    /// The recommender had no candidate: the fallback's distribution
    /// stood in for its own.
    pub no_candidate: bool,
}

impl Policy {
    /// The arm's policy from its keys `policy`, `temperature`, `epsilon`,
    /// `top` and `noise`, refusing a value of the wrong type or range, and
    /// a `temperature` or `epsilon` its policy would ignore.
    pub fn from_arm(arm: &ArmSpec) -> Result<Policy, BuildError> {
        let params = Params::of(arm);
        let name = params.string("policy")?.unwrap_or("greedy");
        if !matches!(name, "greedy" | "softmax" | "epsilon") {
            let expected = "a policy: greedy, softmax or epsilon";
            return Err(params.invalid("policy", format!("{name:?}"), expected));
        }
        let owned = [
            (
                "temperature",
                "softmax",
                "no temperature unless policy = \"softmax\"",
            ),
            (
                "epsilon",
                "epsilon",
                "no epsilon unless policy = \"epsilon\"",
            ),
        ];
        for (key, owner, expected) in owned {
            if let (Some(value), false) = (params.number(key)?, name == owner) {
                return Err(params.invalid(key, value, expected));
            }
        }
        let rule = match name {
            "softmax" => {
                let temperature = params.number("temperature")?;
                let temperature = temperature.unwrap_or(DEFAULT_TEMPERATURE);
                if temperature <= 0.0 {
                    return Err(params.invalid("temperature", temperature, "a number above 0"));
                }
                Rule::Softmax { temperature }
            }
            "epsilon" => Rule::Epsilon {
                epsilon: params.fraction("epsilon", DEFAULT_EPSILON)?,
            },
            _ => Rule::Greedy,
        };
        let default_top = match rule {
            Rule::Greedy => GREEDY_TOP,
            Rule::Softmax { .. } | Rule::Epsilon { .. } => DEFAULT_TOP,
        };
        Ok(Policy {
            rule,
            top: params.positive("top", default_top)?,
            noise: params.fraction("noise", 0.0)?,
        })
    }

    /// This policy with a recommender's own exploration share mixed into
    /// its noise: either draw makes the answer uniform, so the uniform share
    /// is 1 − (1 − noise)(1 − explore).
    pub fn exploring(self, explore: f64) -> Policy {
        Policy {
            noise: 1.0 - (1.0 - self.noise) * (1.0 - explore),
            ..self
        }
    }

    /// Draws the answer to a request whose recommender proposed
    /// `candidates`, `current` being the track just heard, and gives its
    /// propensity.
    pub fn serve(
        &self,
        candidates: &Candidates<'_>,
        allowed: &Allowed<'_>,
        current: TrackId,
        rng: &mut dyn RngCore,
    ) -> Choice {
        let distribution = self.distribution(candidates, allowed, current);
        let track = distribution.draw(rng);
        Choice {
            track,
            propensity: distribution.probability(track),
            no_candidate: distribution.no_candidate(),
        }
    }

    /// The distribution this policy serves from. Allocates nothing but a
    /// copy of the heard tracks, and only when a uniform draw over the
    /// catalog needs their number.
    pub fn distribution<'p>(
        &self,
        candidates: &'p Candidates<'p>,
        allowed: &'p Allowed<'p>,
        current: TrackId,
    ) -> Distribution<'p> {
        let promoted = Pool::Tracks(&allowed.filters.promoted_tracks);
        let promoted_count = promoted.count(allowed);
        let promote_rate = if promoted_count > 0 {
            allowed.filters.promote_rate
        } else {
            0.0
        };
        let needs_count = self.noise > 0.0
            || matches!(candidates, Candidates::Uniform(Pool::Catalog))
            || candidates_empty(candidates, allowed);
        let allowed_count = if needs_count { allowed.count() } else { 0 };
        Distribution {
            allowed,
            current,
            promoted,
            promoted_count,
            promote_rate,
            noise: if allowed_count > 0 { self.noise } else { 0.0 },
            allowed_count,
            own: Own::of(self.rule, candidates, allowed, allowed_count),
        }
    }
}

/// The mixture one request is served from (see the module doc).
pub struct Distribution<'p> {
    allowed: &'p Allowed<'p>,
    current: TrackId,
    promoted: Pool<'p>,
    promoted_count: usize,
    /// `promote_rate`, or 0 when no promoted track is allowed.
    promote_rate: f64,
    /// The policy's noise, or 0 when no track is allowed.
    noise: f64,
    allowed_count: usize,
    own: Own<'p>,
}

impl Distribution<'_> {
    pub fn draw(&self, rng: &mut dyn RngCore) -> TrackId {
        let allowed = self.allowed;
        let drawn = if self.promote_rate > 0.0 && rng.gen_bool(self.promote_rate) {
            self.promoted.draw(allowed, self.promoted_count, rng)
        } else if self.noise > 0.0 && rng.gen_bool(self.noise) {
            allowed.draw(self.allowed_count, rng)
        } else {
            match &self.own {
                Own::Ranked(ranking) => Some(ranking.list()[ranking.draw(rng)].0),
                Own::Uniform(pool, count) => pool.draw(allowed, *count, rng),
                Own::Fallback => allowed.draw(self.allowed_count, rng),
                Own::LastResort => {
                    let others = self.last_resort();
                    others.draw(others.count(), rng)
                }
            }
        };
        drawn.unwrap_or(self.current)
    }

    /// The probability that [`draw`](Self::draw) gives `track`: every
    /// branch that can serve it, summed.
    pub fn probability(&self, track: TrackId) -> f64 {
        let allowed = self.allowed;
        let uniform = |holds: usize, count: usize| holds as f64 / count.max(1) as f64;
        let own = match &self.own {
            Own::Ranked(ranking) => ranking.probability(track),
            Own::Uniform(pool, count) => uniform(pool.holds(allowed, track), *count),
            Own::Fallback => uniform(Pool::Catalog.holds(allowed, track), self.allowed_count),
            Own::LastResort => {
                let others = self.last_resort();
                match others.count() {
                    0 => f64::from(u8::from(track == self.current)),
                    n => uniform(Pool::Catalog.holds(&others, track), n),
                }
            }
        };
        let promoted = uniform(self.promoted.holds(allowed, track), self.promoted_count);
        let noise = uniform(Pool::Catalog.holds(allowed, track), self.allowed_count);
        self.promote_rate * promoted
            + (1.0 - self.promote_rate) * (self.noise * noise + (1.0 - self.noise) * own)
    }

    /// The recommender had no candidate: the fallback stands in.
    pub fn no_candidate(&self) -> bool {
        matches!(self.own, Own::Fallback | Own::LastResort)
    }

    /// Every unblocked track but the current one: what the last resort
    /// draws from when nothing is allowed.
    fn last_resort(&self) -> Allowed<'_> {
        Allowed {
            heard: std::slice::from_ref(&self.current),
            ..*self.allowed
        }
    }
}

/// True when `candidates` offer nothing: an empty list, or a set none of
/// whose tracks is allowed.
fn candidates_empty(candidates: &Candidates<'_>, allowed: &Allowed<'_>) -> bool {
    match candidates {
        Candidates::Ranked(list) => list.is_empty(),
        Candidates::Uniform(Pool::Catalog) => false,
        Candidates::Uniform(pool @ Pool::Tracks(_)) => pool.count(allowed) == 0,
    }
}

/// The arm's own distribution, the recommender's or the fallback's.
enum Own<'p> {
    /// The rule over the recommender's ranked candidates.
    Ranked(Ranking<'p>),
    /// An even draw over the allowed tracks of a pool (how many: the count).
    Uniform(Pool<'p>, usize),
    /// No candidate: uniform over the allowed catalog tracks.
    Fallback,
    /// Nothing allowed at all: any unblocked track but the current one
    /// (repeating one beats answering nothing), else the current one.
    LastResort,
}

impl<'p> Own<'p> {
    fn of(
        rule: Rule,
        candidates: &'p Candidates<'p>,
        allowed: &Allowed<'_>,
        allowed_count: usize,
    ) -> Self {
        let own = match candidates {
            Candidates::Ranked(list) if !list.is_empty() => Some(Own::Ranked(rule.rank(list))),
            Candidates::Ranked(_) => None,
            Candidates::Uniform(Pool::Catalog) => {
                (allowed_count > 0).then_some(Own::Uniform(Pool::Catalog, allowed_count))
            }
            Candidates::Uniform(pool) => {
                let count = pool.count(allowed);
                (count > 0).then_some(Own::Uniform(*pool, count))
            }
        };
        own.unwrap_or(if allowed_count > 0 {
            Own::Fallback
        } else {
            Own::LastResort
        })
    }
}

#[cfg(test)]
mod tests;
