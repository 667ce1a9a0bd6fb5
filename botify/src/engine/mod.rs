//! The engine: one `/next` or `/last` from start to finish, without HTTP.
//!
//! The HTTP API and the simulator's in-process mode both call [`Engine`], so
//! an offline experiment exercises exactly the code that serves traffic: pick
//! the user's arm, record the listen and read the state back, ask the arm's
//! recommender for candidates, draw the answer and its propensity with the
//! arm's serving policy (`crate::policy`: promotion, noise and the fallback
//! included), write state, log the event. Both requests go through one path,
//! `Engine::serve`, and differ only in the store call and in what the arm's
//! recommender is asked.
//!
//! State store faults never fail a request: a failed or slow store call opens
//! a short circuit (`breaker.rs`) during which requests skip the store and are
//! answered statelessly (the arm's recommender with the request's own listen
//! as state, flagged `fallback`). The circuit is per fault domain (a Redis
//! Cluster master), so a dead master costs only the listeners it holds.
//!
//! Catalog, models and filters sit behind `ArcSwap`, so the admin hot swaps
//! (`admin.rs`) never block or fail a request. Cold-start lists for the API
//! (`/top`, `/similar`) are in `cold_start.rs`.

mod admin;
mod breaker;
mod cold_start;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use prometheus::{Histogram, IntCounter};

use self::breaker::Breaker;
use crate::catalog::{Catalog, TrackId};
use crate::events::{now_millis, Event, EventSender, Message};
use crate::experiments::{arm_label, Experiments};
use crate::filters::Filters;
use crate::metrics::Metrics;
use crate::models::Models;
use crate::policy::{Choice, Policy, RequestRng};
use crate::recommenders::{self, Allowed, BuildError, Context, Recommender};
use crate::state::{Listen, StateStore, StateUpdate, UserState};

/// Why a request was refused. The API maps each to a 4xx.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RequestError {
    #[error("track {0} is not in the catalog")]
    UnknownTrack(TrackId),
    #[error("time must be a finite number in 0..=1, got {0}")]
    InvalidTime(f64),
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// An arm of the active experiment cannot be built. The recommender's
    /// error is part of the message rather than a `source`, because start-up
    /// prints this error's message alone.
    #[error("experiment {experiment:?}, arm {arm}: {error}")]
    Arm {
        experiment: String,
        arm: usize,
        error: BuildError,
    },
}

/// An answered `/next`.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub track: TrackId,
    /// The arm's label in the active experiment (`C`, `T1`, …).
    pub arm: usize,
    /// True when state was unavailable or the recommender had no candidate.
    pub fallback: bool,
    /// The probability that the arm's policy served this track, in (0, 1].
    pub propensity: f64,
}

/// Tunables that are not part of an experiment.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Folder `analysis train` writes to; reloaded on demand.
    pub models_dir: PathBuf,
    /// How long requests skip the state store after it failed.
    pub store_cooldown: Duration,
    /// The run's seed: with the user, the session position and the track
    /// just heard, it seeds every draw of a request, so a run is repeatable
    /// and a replay of the log recomputes its draws.
    pub seed: u64,
}

/// Everything an [`Engine`] is built from.
pub struct EngineParts {
    pub catalog: Catalog,
    pub models: Models,
    pub filters: Filters,
    pub experiments: Experiments,
    pub store: Arc<dyn StateStore>,
    /// Where events go; `None` logs nothing.
    pub events: Option<EventSender>,
    pub metrics: Arc<Metrics>,
    pub settings: EngineSettings,
}

/// One arm of the active experiment, with its metric handles resolved once
/// so serving a request does no label lookup.
struct Arm {
    label: String,
    recommender: Box<dyn Recommender>,
    policy: Policy,
    served: IntCounter,
    latency: Histogram,
}

pub struct Engine {
    catalog: ArcSwap<Catalog>,
    models: ArcSwap<Models>,
    filters: ArcSwap<Filters>,
    experiments: Experiments,
    arms: Vec<Arm>,
    store: Arc<dyn StateStore>,
    breaker: Breaker,
    /// Where events go; swappable so a multi-day simulation can give each
    /// day its own log without losing the state store.
    events: ArcSwapOption<EventSender>,
    metrics: Arc<Metrics>,
    models_dir: PathBuf,
    seed: u64,
}

/// What `Engine::serve` did, for `next` to answer with.
struct Served {
    arm: usize,
    /// The track to play next and its propensity; `None` on `/last`.
    recommendation: Option<(TrackId, f64)>,
    fallback: bool,
}

/// Reasons an answer came from the fallback, as counted in `/metrics`.
const FALLBACK_STATE: &str = "state_unavailable";
const FALLBACK_NO_CANDIDATE: &str = "no_candidate";

impl Engine {
    /// Builds the engine; fails if an arm cannot be built (an unknown
    /// recommender or an invalid parameter).
    pub fn new(parts: EngineParts) -> Result<Engine, EngineError> {
        let EngineParts {
            catalog,
            models,
            filters,
            experiments,
            store,
            events,
            metrics,
            settings,
        } = parts;
        let active = experiments.active();
        let arms = active
            .arms
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let arm_error = |error| EngineError::Arm {
                    experiment: active.name.clone(),
                    arm: i,
                    error,
                };
                let recommender = recommenders::build(spec).map_err(arm_error)?;
                let policy = Policy::from_arm(spec)
                    .map_err(arm_error)?
                    .exploring(recommender.explore());
                let label = arm_label(i);
                Ok(Arm {
                    served: metrics
                        .recommendations
                        .with_label_values(&[label.as_str(), recommender.name()]),
                    latency: metrics
                        .recommend_duration
                        .with_label_values(&[label.as_str()]),
                    label,
                    recommender,
                    policy,
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        Ok(Engine {
            catalog: ArcSwap::from_pointee(catalog),
            models: ArcSwap::from_pointee(models),
            filters: ArcSwap::from_pointee(filters),
            experiments,
            arms,
            breaker: Breaker::new(settings.store_cooldown, store.fault_domains(), &metrics),
            store,
            events: ArcSwapOption::from(events.map(Arc::new)),
            metrics,
            models_dir: settings.models_dir,
            seed: settings.seed,
        })
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    pub fn models(&self) -> Arc<Models> {
        self.models.load_full()
    }

    pub fn filters(&self) -> Arc<Filters> {
        self.filters.load_full()
    }

    pub fn experiments(&self) -> &Experiments {
        &self.experiments
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// The recommender name serving each arm of the active experiment.
    pub fn arm_names(&self) -> Vec<(String, &'static str)> {
        self.arms
            .iter()
            .map(|a| (a.label.clone(), a.recommender.name()))
            .collect()
    }

    /// Checks the state store answers, bounded by its own timeout. It asks
    /// even while the circuit is open (health checks probe), and a failure
    /// opens the whole store's circuit (domain 0) like any other.
    pub async fn store_reachable(&self) -> bool {
        match self.store.ping().await {
            Ok(()) => true,
            Err(err) => {
                self.breaker.failed(0, "ping", &err);
                false
            }
        }
    }

    /// Answers `/next`: the user listened to `track` for `time`; which track next?
    pub async fn next(&self, user: u64, track: TrackId, time: f64) -> Result<Answer, RequestError> {
        self.next_at(user, track, time, None).await
    }

    /// [`next`](Self::next) at a given moment: `at` (epoch milliseconds) is
    /// the event's timestamp instead of the wall clock. A simulator playing
    /// days in minutes stamps its events with its own clock this way, so the
    /// log reads like the days it simulated.
    pub async fn next_at(
        &self,
        user: u64,
        track: TrackId,
        time: f64,
        at: Option<u64>,
    ) -> Result<Answer, RequestError> {
        let served = self
            .serve(Message::Next, user, Listen { track, time }, at)
            .await?;
        let (track, propensity) = served
            .recommendation
            .expect("serve recommends on every /next");
        Ok(Answer {
            track,
            arm: served.arm,
            fallback: served.fallback,
            propensity,
        })
    }

    /// Answers `/last`: the session ended after `track` listened for `time`.
    pub async fn last(&self, user: u64, track: TrackId, time: f64) -> Result<(), RequestError> {
        self.last_at(user, track, time, None).await
    }

    /// [`last`](Self::last) stamped `at` (epoch milliseconds), as [`next_at`](Self::next_at).
    pub async fn last_at(
        &self,
        user: u64,
        track: TrackId,
        time: f64,
        at: Option<u64>,
    ) -> Result<(), RequestError> {
        self.serve(Message::Last, user, Listen { track, time }, at)
            .await?;
        Ok(())
    }

    /// One request end to end; `message` says which. Everything is loaded
    /// once, and a store failure makes the request stateless rather than
    /// failing it: `/next` then recommends from the request's own listen,
    /// `/last` has no session to end.
    async fn serve(
        &self,
        message: Message,
        user: u64,
        listen: Listen,
        at: Option<u64>,
    ) -> Result<Served, RequestError> {
        let started = Instant::now();
        let catalog = self.catalog.load();
        validate(&catalog, listen)?;
        let models = self.models.load();
        let filters = self.filters.load();
        let arm_index = self.experiments.active().arm_of(user);
        let arm = &self.arms[arm_index];
        let query = arm.recommender.state_query(&catalog, listen.track);
        let domain = self.store.fault_domain(user);
        let stored = match message {
            Message::Next => {
                let call = self.store.record(user, listen, query);
                self.breaker.call(domain, "record", call).await
            }
            Message::Last => {
                let call = self.store.end_session(user, listen, query);
                self.breaker.call(domain, "end_session", call).await
            }
        };
        let stateful = stored.is_some();
        if !stateful {
            self.count_fallback(FALLBACK_STATE);
        }
        let state = match (message, stored) {
            (_, Some(state)) => Some(state),
            (Message::Next, None) => Some(UserState::stateless(listen, query)),
            (Message::Last, None) => None,
        };

        let mut update = StateUpdate::default();
        let mut fallback = !stateful;
        let mut recommendation = None;
        if let Some(state) = &state {
            // After `end_session` the state holds no listens: nothing is heard.
            let heard = state.heard();
            let ctx = Context {
                user,
                track: listen.track,
                time: listen.time,
                catalog: &catalog,
                models: &models,
                state,
                allowed: Allowed::new(&catalog, &filters, &heard),
                top: arm.policy.top,
            };
            match message {
                Message::Next => {
                    let choice = self.recommend(arm, &ctx, &mut update);
                    recommendation = Some((choice.track, choice.propensity));
                    fallback |= choice.no_candidate;
                }
                Message::Last => arm.recommender.end_session(&ctx, &mut update),
            }
        }
        if stateful {
            self.apply_state(user, domain, &update).await;
        }

        let latency = started.elapsed();
        if recommendation.is_some() {
            arm.served.inc();
            arm.latency.observe(latency.as_secs_f64());
        }
        self.log(|| Event {
            message,
            timestamp: at.unwrap_or_else(now_millis),
            user,
            track: listen.track,
            time: listen.time,
            latency: latency.as_secs_f64(),
            recommendation: recommendation.map(|(track, _)| track),
            propensity: recommendation.map(|(_, propensity)| propensity),
            experiments: self.experiments.labels(user),
            recommender: Some(arm.recommender.name().to_string()),
            fallback,
            model_version: models.version.clone(),
        });
        Ok(Served {
            arm: arm_index,
            recommendation,
            fallback,
        })
    }

    /// The arm's answer: its recommender's candidates, drawn from by its
    /// policy with the request's own random stream (seeded from the run
    /// seed, the user, the session position — the session's listens, this
    /// one included — and the track just heard).
    fn recommend(&self, arm: &Arm, ctx: &Context<'_>, update: &mut StateUpdate) -> Choice {
        let position = ctx.state.listens.len() as u64;
        let mut rng = RequestRng::new(self.seed, ctx.user, position, ctx.track);
        let candidates = arm.recommender.candidates(ctx, update);
        let choice = arm
            .policy
            .serve(&candidates, &ctx.allowed, ctx.track, &mut rng);
        if choice.no_candidate {
            self.count_fallback(FALLBACK_NO_CANDIDATE);
        }
        choice
    }

    fn count_fallback(&self, reason: &str) {
        self.metrics.fallbacks.with_label_values(&[reason]).inc();
    }

    /// Writes what a recommender decided, if anything.
    async fn apply_state(&self, user: u64, domain: usize, update: &StateUpdate) {
        if !update.is_empty() {
            self.metrics.state_updates.inc();
            self.breaker
                .call(domain, "apply", self.store.apply(user, update))
                .await;
        }
    }

    /// Sends the event `build` makes, if events are logged at all; it is
    /// built only then, so an engine without a log skips its allocations.
    fn log(&self, build: impl FnOnce() -> Event) {
        if let Some(events) = self.events.load().as_deref() {
            events.send(build());
        }
    }
}

fn validate(catalog: &Catalog, listen: Listen) -> Result<(), RequestError> {
    if !listen.time.is_finite() || !(0.0..=1.0).contains(&listen.time) {
        return Err(RequestError::InvalidTime(listen.time));
    }
    if !catalog.contains(listen.track) {
        return Err(RequestError::UnknownTrack(listen.track));
    }
    Ok(())
}
