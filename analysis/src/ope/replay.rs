//! Replaying logged requests under other arms: the state botify's store
//! would have held at each `/next` had that arm served the listener, the
//! arm's candidates and serving distribution there, and the logging arm's
//! too when the experiments file says which it was.
//!
//! The state is the session's listens up to and including the request's
//! (the last [`MAX_SESSION_LISTENS`], tracks outside the catalog dropped,
//! as `analysis eval` rebuilds it), and the long-term [`Profile`] built by
//! each arm's own rules over every earlier listen of the listener in the
//! logs: the artists' stats where the arm's recommender asks for them, and
//! the favourite artist it decided on. Sessions of a listener are replayed
//! in order for that (see [`Profiles`]). What is not rebuilt: history from
//! before the logs begin, time to live, and filters (botify's defaults).
//! The replay of the logging arm measures how much this matters: its
//! probability of the served track is compared with the logged propensity,
//! and its seeded draw with the served track.

use std::sync::Arc;

use anyhow::{anyhow, Result};
use botify::catalog::{Catalog, TrackId};
use botify::experiments::ArmSpec;
use botify::filters::Filters;
use botify::models::Models;
use botify::policy::{Distribution, Policy, RequestRng};
use botify::recommenders::{self, Allowed, Candidates, Context, Pool, Recommender};
use botify::state::{Listen, Profile, StateUpdate, UserState, MAX_SESSION_LISTENS};
use serde::Deserialize;

use super::estimators::Step;
use super::reward_model::RewardModel;
use crate::logs::Record;

/// An arm built as botify builds it: its recommender and its policy with
/// the recommender's own exploration mixed in.
pub struct Arm {
    /// The spec as given (`memory`, `{ recommender = "memory", … }`).
    pub name: String,
    recommender: Box<dyn Recommender>,
    policy: Policy,
}

impl Arm {
    /// Builds `spec`, refusing what botify would refuse at start-up.
    pub fn build(name: String, spec: &ArmSpec) -> Result<Arm> {
        let recommender = recommenders::build(spec).map_err(|err| anyhow!("{name}: {err}"))?;
        let policy = Policy::from_arm(spec)
            .map_err(|err| anyhow!("{name}: {err}"))?
            .exploring(recommender.explore());
        Ok(Arm {
            name,
            recommender,
            policy,
        })
    }

    /// The recommender's name (`memory`), whatever its parameters.
    pub fn recommender(&self) -> &'static str {
        self.recommender.name()
    }

    /// The track the arm serves after `listen`, the latest of `user`'s
    /// session so far (`state`, `profile`), which it first records as
    /// botify's store does. `rng` seeds the draw of a stochastic policy.
    pub fn serve(
        &self,
        world: &World,
        state: &mut UserState,
        profile: &mut Profile,
        user: u64,
        listen: Listen,
        rng: &mut RequestRng,
    ) -> TrackId {
        let catalog = &*world.catalog;
        record(state, profile, self, catalog, listen);
        let heard = state.heard();
        let allowed = Allowed::new(catalog, &world.filters, &heard);
        let ctx = Context {
            user,
            track: listen.track,
            time: listen.time,
            catalog,
            models: &world.models,
            state: &*state,
            allowed,
            top: self.policy.top,
        };
        let mut update = StateUpdate::default();
        let candidates = self.recommender.candidates(&ctx, &mut update);
        profile.apply(&update);
        self.policy
            .distribution(&candidates, &allowed, listen.track)
            .draw(rng)
    }

    /// An arm from a `--target`: a recommender name, or a TOML inline
    /// table as an experiments file's arm.
    pub fn parse(text: &str) -> Result<Arm> {
        let text = text.trim();
        let spec = if text.starts_with('{') {
            #[derive(Deserialize)]
            struct Line {
                arm: ArmSpec,
            }
            toml::from_str::<Line>(&format!("arm = {text}"))
                .map_err(|err| {
                    anyhow!(
                        "--target {text:?} is not an arm: expected a recommender name or a TOML \
                         inline table such as {{ recommender = \"memory\", policy = \"softmax\", \
                         temperature = 0.3 }} ({})",
                        err.message()
                    )
                })?
                .arm
        } else {
            ArmSpec::Name(text.to_string())
        };
        Arm::build(text.to_string(), &spec).map_err(|err| anyhow!("--target {err}"))
    }
}

/// What every replay reads: botify's catalog and models, default filters.
pub struct World {
    pub catalog: Arc<Catalog>,
    pub models: Arc<Models>,
    filters: Filters,
}

impl World {
    pub fn new(catalog: Arc<Catalog>, models: Arc<Models>) -> World {
        World {
            catalog,
            models,
            filters: Filters::default(),
        }
    }
}

/// Why a session is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A `/next` without a propensity (logs written before botify logged it).
    NoPropensity,
    /// A listen of a track outside `--catalog`: botify refuses those, so the
    /// logs came from another catalog.
    OutsideCatalog,
    /// Some event's track is not the previous event's recommendation: the
    /// reward of a decision is unknown.
    BrokenChain,
}

/// One session replayed under every target.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    /// The listened fraction of the listener's own first track.
    pub first: f64,
    /// Per target, per decision.
    pub steps: Vec<Vec<Step>>,
    /// Per target, per decision, the probability it put on tracks the
    /// logging arm could not serve; `None` without a logging arm.
    pub outside: Option<Vec<Vec<f64>>>,
    /// Decisions whose logging-arm replay gave the logged propensity, and
    /// whose seeded draw gave the served track; `None` without a logging arm.
    pub logging_check: Option<(u32, u32)>,
}

/// Relative tolerance between a replayed and a logged propensity: the
/// record keeps it as an f32.
const PROPENSITY_TOLERANCE: f64 = 1e-5;

/// One listener's profile under each arm (the targets, then the logging
/// arm), carried from one of their sessions to the next.
pub struct Profiles {
    user: Option<u64>,
    arms: Vec<Profile>,
}

impl Profiles {
    /// Profiles for `targets` targets and a logging arm.
    pub fn new(targets: usize) -> Profiles {
        Profiles {
            user: None,
            arms: vec![Profile::default(); targets + 1],
        }
    }

    /// The profiles of `user`: fresh when the previous session replayed
    /// was another listener's.
    fn of(&mut self, user: u64) -> &mut [Profile] {
        if self.user != Some(user) {
            self.user = Some(user);
            self.arms.iter_mut().for_each(Profile::clear);
        }
        &mut self.arms
    }
}

/// Replays one session (its events, the closing `last` included) of `user`
/// under each target, `logging` being the arm that served it if known.
/// Sessions of one listener must come in time order through the same
/// `profiles`.
pub fn replay_session(
    world: &World,
    targets: &[Arm],
    logging: Option<&Arm>,
    reward_model: &RewardModel,
    seed: u64,
    events: &[Record],
    profiles: &mut Profiles,
) -> Result<Replayed, Skip> {
    let catalog = &*world.catalog;
    let decisions = events.len().saturating_sub(1);
    let user = events.first().map_or(0, |e| e.user);
    let profiles = profiles.of(user);
    let logging_slot = targets.len();
    // Each arm's state: the same listens, its own profile.
    let arms: Vec<(usize, &Arm)> = targets
        .iter()
        .enumerate()
        .chain(logging.map(|arm| (logging_slot, arm)))
        .collect();
    let mut states = vec![UserState::default(); targets.len() + 1];
    let mut steps = vec![Vec::with_capacity(decisions); targets.len()];
    let mut outside = logging.map(|_| vec![Vec::with_capacity(decisions); targets.len()]);
    let mut check = (0, 0);
    for pair in events.windows(2) {
        let (now, next) = (&pair[0], &pair[1]);
        let (Some(served), Some(logged)) = (now.recommendation(), now.propensity()) else {
            return Err(Skip::NoPropensity);
        };
        if next.track != served {
            return Err(Skip::BrokenChain);
        }
        if !catalog.contains(now.track) {
            return Err(Skip::OutsideCatalog);
        }
        let listen = Listen {
            track: now.track,
            time: now.time,
        };
        for &(slot, arm) in &arms {
            record(&mut states[slot], &mut profiles[slot], arm, catalog, listen);
        }
        let heard = states[arms.first().map_or(0, |&(slot, _)| slot)].heard();
        let allowed = Allowed::new(catalog, &world.filters, &heard);
        // Each arm ranks as deep as its own policy draws (`top`), and
        // keeps what its recommender decided to store.
        let mut candidates_of = |slot: usize, arm: &Arm| {
            let ctx = Context {
                user: now.user,
                track: now.track,
                time: now.time,
                catalog,
                models: &world.models,
                state: &states[slot],
                allowed,
                top: arm.policy.top,
            };
            let mut update = StateUpdate::default();
            let candidates = arm.recommender.candidates(&ctx, &mut update);
            profiles[slot].apply(&update);
            candidates
        };
        let logging_view = logging.map(|arm| (arm, candidates_of(logging_slot, arm)));
        let logging_distribution = logging_view.as_ref().map(|(arm, candidates)| {
            let distribution = arm.policy.distribution(candidates, &allowed, now.track);
            let covers = covers_catalog(arm, candidates, &distribution);
            (covers, distribution)
        });
        if let Some((_, distribution)) = &logging_distribution {
            let replayed = distribution.probability(served);
            check.0 += u32::from((replayed - logged).abs() <= PROPENSITY_TOLERANCE * logged);
            let position = states[logging_slot].listens.len() as u64;
            let mut rng = RequestRng::new(seed, now.user, position, now.track);
            check.1 += u32::from(distribution.draw(&mut rng) == served);
        }
        for (t, arm) in targets.iter().enumerate() {
            let candidates = candidates_of(t, arm);
            let distribution = arm.policy.distribution(&candidates, &allowed, now.track);
            let support = Support::of(&candidates, &distribution, &allowed);
            steps[t].push(Step {
                weight: distribution.probability(served) / logged,
                reward: next.time,
                q_logged: reward_model.predict(catalog, served),
                q_target: support.expected(catalog, reward_model),
            });
            if let (Some(outside), Some((covers, logging))) =
                (outside.as_mut(), logging_distribution.as_ref())
            {
                outside[t].push(support.outside(logging, *covers));
            }
        }
    }
    if let Some(last) = events.last().filter(|_| decisions > 0) {
        for &(slot, arm) in &arms {
            end_session(world, &mut profiles[slot], arm, last);
        }
    }
    Ok(Replayed {
        first: events.first().map_or(0.0, |e| e.time),
        steps,
        outside,
        logging_check: logging.map(|_| check),
    })
}

/// What botify's store does on a `/next` for `arm`: the listen joins the
/// session (the last [`MAX_SESSION_LISTENS`]) and, when the recommender
/// asks, its artist's long-term stats.
fn record(
    state: &mut UserState,
    profile: &mut Profile,
    arm: &Arm,
    catalog: &Catalog,
    listen: Listen,
) {
    if state.listens.len() == MAX_SESSION_LISTENS {
        state.listens.remove(0);
    }
    state.listens.push(listen);
    let query = arm.recommender.state_query(catalog, listen.track);
    let long = profile.add(query, listen).unwrap_or_default();
    state.favourite = long.favourite;
    state.artist = long.artist;
}

/// What botify does on the closing `last` for `arm`: the listen joins the
/// profile, and the recommender's end-of-session decision is kept.
fn end_session(world: &World, profile: &mut Profile, arm: &Arm, last: &Record) {
    let catalog = &*world.catalog;
    if !catalog.contains(last.track) {
        return;
    }
    let listen = Listen {
        track: last.track,
        time: last.time,
    };
    let query = arm.recommender.state_query(catalog, listen.track);
    let state = profile.add(query, listen).unwrap_or_default();
    let heard = Vec::new();
    let ctx = Context {
        user: last.user,
        track: last.track,
        time: last.time,
        catalog,
        models: &world.models,
        state: &state,
        allowed: Allowed::new(catalog, &world.filters, &heard),
        top: arm.policy.top,
    };
    let mut update = StateUpdate::default();
    arm.recommender.end_session(&ctx, &mut update);
    profile.apply(&update);
}

/// True when the logging distribution gives every allowed track some
/// probability (noise, a uniform draw over the catalog, the fallback): no
/// target can then leave its support.
fn covers_catalog(arm: &Arm, candidates: &Candidates<'_>, distribution: &Distribution<'_>) -> bool {
    arm.policy.noise > 0.0
        || distribution.no_candidate()
        || matches!(candidates, Candidates::Uniform(Pool::Catalog))
}

/// A target's distribution at one state, split into the tracks it names
/// (a ranked list, a uniform set) with their probabilities, and the rest of
/// its mass, spread uniformly over the allowed catalog (noise, a draw over
/// the catalog, the fallback).
struct Support {
    named: Vec<(u32, f64)>,
    rest: f64,
}

impl Support {
    fn of(
        candidates: &Candidates<'_>,
        distribution: &Distribution<'_>,
        allowed: &Allowed<'_>,
    ) -> Support {
        let mut tracks: Vec<u32> = match candidates {
            Candidates::Ranked(list) => list.iter().map(|&(track, _)| track).collect(),
            Candidates::Uniform(Pool::Tracks(list)) => list
                .iter()
                .copied()
                .filter(|&t| allowed.accepts(t))
                .collect(),
            Candidates::Uniform(Pool::Catalog) => Vec::new(),
        };
        tracks.sort_unstable();
        tracks.dedup();
        let named: Vec<(u32, f64)> = tracks
            .into_iter()
            .map(|t| (t, distribution.probability(t)))
            .collect();
        // What the named tracks leave; a sum of probabilities that is 1
        // up to rounding leaves nothing.
        let rest = 1.0 - named.iter().map(|(_, p)| p).sum::<f64>();
        let rest = if rest > 1e-9 { rest } else { 0.0 };
        Support { named, rest }
    }

    /// q̂(x, π): the named tracks at their own q̂, the rest at the mean.
    fn expected(&self, catalog: &Catalog, model: &RewardModel) -> f64 {
        let named: f64 = self
            .named
            .iter()
            .map(|&(t, p)| p * model.predict(catalog, t))
            .sum();
        named + self.rest * model.mean()
    }

    /// The mass on tracks `logging` gives probability 0; the uniform rest
    /// counts unless the logging distribution `covers` the catalog.
    fn outside(&self, logging: &Distribution<'_>, covers: bool) -> f64 {
        if covers {
            return 0.0;
        }
        let named: f64 = self
            .named
            .iter()
            .filter(|&&(t, _)| logging.probability(t) == 0.0)
            .map(|(_, p)| p)
            .sum();
        named + self.rest
    }
}
