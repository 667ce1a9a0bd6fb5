//! The engine: one `/next` or `/last` from start to finish, without HTTP.
//!
//! The HTTP API and the simulator's in-process mode both call [`Engine`], so
//! an offline experiment exercises exactly the code that serves traffic: pick
//! the user's arm, load state, recommend, filter, write state, log the event.
//!
//! State store faults never fail a request. A failed or slow store call opens
//! a short circuit during which requests skip the store and are answered
//! statelessly (the arm's recommender with empty state, flagged `fallback`),
//! so a dead Redis costs one timeout, not one per request; after the cooldown
//! the next request probes the store again and state is used once it answers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use prometheus::{Histogram, IntCounter};
use rand::{Rng, RngCore};

use crate::catalog::{AddTrackError, Catalog, Track, TrackId};
use crate::events::{now_millis, Event, EventSender, Message};
use crate::experiments::{arm_label, Experiments};
use crate::filters::Filters;
use crate::metrics::Metrics;
use crate::models::{Models, ModelsError};
use crate::recommenders::{self, Allowed, Context, Recommender};
use crate::state::{Listen, StateStore, StateUpdate, StoreError, UserState};

/// Why a request was refused. The API maps each to a 4xx.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RequestError {
    #[error("track {0} is not in the catalog")]
    UnknownTrack(TrackId),
    #[error("time must be a finite number in 0..=1, got {0}")]
    InvalidTime(f64),
}

/// An answered `/next`.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub track: TrackId,
    /// The arm's label in the active experiment (`C`, `T1`, …).
    pub arm: usize,
    /// True when state was unavailable or the recommender had no candidate.
    pub fallback: bool,
}

/// Tunables that are not part of an experiment.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Folder `analysis train` writes to; reloaded on demand.
    pub models_dir: PathBuf,
    /// How long requests skip the state store after it failed.
    pub store_cooldown: Duration,
}

struct Arm {
    label: String,
    recommender: Box<dyn Recommender>,
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
    /// Where events go; swappable so a multi-day simulation can give each
    /// day its own log without losing the state store.
    events: arc_swap::ArcSwapOption<EventSender>,
    metrics: Arc<Metrics>,
    settings: EngineSettings,
    /// Epoch ms until which the store is considered down.
    store_down_until: AtomicU64,
}

/// Reasons an answer came from the fallback, as counted in `/metrics`.
const FALLBACK_STATE: &str = "state_unavailable";
const FALLBACK_NO_CANDIDATE: &str = "no_candidate";

impl Engine {
    /// Builds the engine; fails if an arm names an unknown recommender.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        catalog: Catalog,
        models: Models,
        filters: Filters,
        experiments: Experiments,
        store: Arc<dyn StateStore>,
        events: Option<EventSender>,
        metrics: Arc<Metrics>,
        settings: EngineSettings,
    ) -> Result<Engine, String> {
        let active = experiments.active();
        let arms = active
            .arms
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let recommender = recommenders::build(spec)
                    .map_err(|e| format!("experiment {:?}, arm {i}: {e}", active.name))?;
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
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Engine {
            catalog: ArcSwap::from_pointee(catalog),
            models: ArcSwap::from_pointee(models),
            filters: ArcSwap::from_pointee(filters),
            experiments,
            arms,
            store,
            events: arc_swap::ArcSwapOption::from(events.map(Arc::new)),
            metrics,
            settings,
            store_down_until: AtomicU64::new(0),
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

    fn validate(catalog: &Catalog, track: TrackId, time: f64) -> Result<(), RequestError> {
        if !time.is_finite() || !(0.0..=1.0).contains(&time) {
            return Err(RequestError::InvalidTime(time));
        }
        if !catalog.contains(track) {
            return Err(RequestError::UnknownTrack(track));
        }
        Ok(())
    }

    fn store_is_down(&self) -> bool {
        // 0 means healthy: the common case costs no clock read.
        let until = self.store_down_until.load(Ordering::Relaxed);
        until != 0 && now_millis() < until
    }

    fn store_failed(&self, op: &str, err: &dyn std::fmt::Display) {
        self.metrics.state_errors.with_label_values(&[op]).inc();
        let until = now_millis() + self.settings.store_cooldown.as_millis() as u64;
        let previous = self.store_down_until.swap(until, Ordering::Relaxed);
        if previous < now_millis() {
            tracing::warn!(%err, op, "state store failed; serving stateless fallback");
        }
    }

    fn count_fallback(&self, reason: &str) {
        self.metrics.fallbacks.with_label_values(&[reason]).inc();
    }

    /// Runs a store call unless the store is down; `None` means serve
    /// statelessly. A failure opens the circuit, an answer closes it.
    async fn with_store<T>(
        &self,
        op: &str,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Option<T> {
        if self.store_is_down() {
            return None;
        }
        match call.await {
            Ok(value) => {
                if self.store_down_until.load(Ordering::Relaxed) != 0 {
                    self.store_down_until.store(0, Ordering::Relaxed);
                    tracing::info!("state store answers again");
                }
                Some(value)
            }
            Err(StoreError::Corrupt(what)) => {
                // One user's bad data says nothing about the store's health:
                // serve this request statelessly, keep the circuit closed.
                self.metrics.state_errors.with_label_values(&[op]).inc();
                tracing::warn!(what, op, "corrupt state; serving stateless fallback");
                None
            }
            Err(err) => {
                self.store_failed(op, &err);
                None
            }
        }
    }

    /// Writes what a recommender decided, if anything.
    async fn apply_state(&self, user: u64, update: &StateUpdate) {
        if !update.is_empty() {
            self.metrics.state_updates.inc();
            self.with_store("apply", self.store.apply(user, update))
                .await;
        }
    }

    /// Answers `/next`: the user listened to `track` for `time`; which track next?
    pub async fn next(
        &self,
        user: u64,
        track: TrackId,
        time: f64,
        rng: &mut dyn RngCore,
    ) -> Result<Answer, RequestError> {
        let started = Instant::now();
        let catalog = self.catalog.load();
        Self::validate(&catalog, track, time)?;
        let models = self.models.load();
        let filters = self.filters.load();
        let arm_index = self.experiments.active().arm_of(user);
        let arm = &self.arms[arm_index];

        let query = arm.recommender.state_query(&catalog, track);
        let listen = Listen { track, time };
        let recorded = self
            .with_store("record", self.store.record(user, listen, query))
            .await;
        let stateful = recorded.is_some();
        let state = recorded.unwrap_or_else(|| UserState::stateless(listen, query));
        let heard = state.heard();
        let allowed = Allowed {
            catalog: &catalog,
            filters: &filters,
            heard: &heard,
        };
        let mut update = StateUpdate::default();
        let mut ctx = Context {
            user,
            track,
            time,
            catalog: &catalog,
            models: &models,
            state: &state,
            allowed,
            rng,
        };
        let proposed = arm.recommender.recommend(&mut ctx, &mut update);
        let mut fallback = !stateful;
        if !stateful {
            self.count_fallback(FALLBACK_STATE);
        }
        let recommendation = match proposed {
            Some(t) => t,
            None => {
                fallback = true;
                self.count_fallback(FALLBACK_NO_CANDIDATE);
                fallback_track(&ctx.allowed, &catalog, &filters, track, ctx.rng)
            }
        };
        let recommendation = promote(&ctx.allowed, &filters, ctx.rng).unwrap_or(recommendation);
        if stateful {
            self.apply_state(user, &update).await;
        }

        let latency = started.elapsed();
        arm.served.inc();
        arm.latency.observe(latency.as_secs_f64());
        self.log(
            Message::Next,
            user,
            track,
            time,
            latency,
            Some(recommendation),
            arm,
            fallback,
        );
        Ok(Answer {
            track: recommendation,
            arm: arm_index,
            fallback,
        })
    }

    /// Answers `/last`: the session ended after `track` listened for `time`.
    pub async fn last(&self, user: u64, track: TrackId, time: f64) -> Result<(), RequestError> {
        let started = Instant::now();
        let catalog = self.catalog.load();
        Self::validate(&catalog, track, time)?;
        let arm = &self.arms[self.experiments.active().arm_of(user)];
        let query = arm.recommender.state_query(&catalog, track);
        let listen = Listen { track, time };
        let ended = self
            .with_store("end_session", self.store.end_session(user, listen, query))
            .await;
        let fallback = ended.is_none();
        if let Some(state) = ended {
            let models = self.models.load();
            let filters = self.filters.load();
            let mut rng = rand::thread_rng();
            let ctx = Context {
                user,
                track,
                time,
                catalog: &catalog,
                models: &models,
                state: &state,
                allowed: Allowed {
                    catalog: &catalog,
                    filters: &filters,
                    heard: &[],
                },
                rng: &mut rng,
            };
            let mut update = StateUpdate::default();
            arm.recommender.end_session(&ctx, &mut update);
            self.apply_state(user, &update).await;
        } else {
            self.count_fallback(FALLBACK_STATE);
        }
        self.log(
            Message::Last,
            user,
            track,
            time,
            started.elapsed(),
            None,
            arm,
            fallback,
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn log(
        &self,
        message: Message,
        user: u64,
        track: TrackId,
        time: f64,
        latency: Duration,
        recommendation: Option<TrackId>,
        arm: &Arm,
        fallback: bool,
    ) {
        if let Some(events) = self.events.load().as_deref() {
            events.send(Event {
                message,
                timestamp: now_millis(),
                user,
                track,
                time,
                latency: latency.as_secs_f64(),
                recommendation,
                experiments: self.experiments.labels(user),
                recommender: Some(arm.recommender.name().to_string()),
                fallback,
            });
        }
    }

    /// Sends events to `events` from now on (`None`: log nothing).
    pub fn set_event_log(&self, events: Option<EventSender>) {
        self.events.store(events.map(Arc::new));
    }

    /// Checks the state store answers, bounded by its own timeout.
    pub async fn store_reachable(&self) -> bool {
        match self.store.ping().await {
            Ok(()) => true,
            Err(err) => {
                self.store_failed("ping", &err);
                false
            }
        }
    }

    /// Reloads the trained tables from the models folder. On failure the
    /// current models keep serving.
    pub fn reload_models(&self) -> Result<Arc<Models>, ModelsError> {
        match Models::load(&self.settings.models_dir) {
            Ok(models) => {
                let models = Arc::new(models);
                self.models.store(models.clone());
                tracing::info!(dir = %self.settings.models_dir.display(), tables = models.tables.len(), "models reloaded");
                Ok(models)
            }
            Err(err) => {
                self.metrics.reload_failures.inc();
                tracing::error!(%err, "model reload failed; keeping the previous models");
                Err(err)
            }
        }
    }

    pub fn models_dir(&self) -> &Path {
        &self.settings.models_dir
    }

    /// Adds a track to the catalog; it is servable at once.
    pub fn add_track(&self, track: Track) -> Result<TrackId, AddTrackError> {
        // Serialise adders so two concurrent additions cannot both take the
        // same id and one silently vanish.
        static ADD_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = ADD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let id = track.track;
        let updated = self.catalog.load().with_track(track)?;
        self.catalog.store(Arc::new(updated));
        Ok(id)
    }

    pub fn set_filters(&self, filters: Filters) {
        self.filters.store(Arc::new(filters));
    }

    /// The most popular servable tracks, in `genre` when given (cold start).
    pub fn top(&self, genre: Option<&str>, k: usize) -> Vec<TrackId> {
        let guard = self.catalog.load();
        let catalog: &Catalog = &guard;
        let models = self.models.load();
        let filters = self.filters.load();
        let ranked: Box<dyn Iterator<Item = TrackId>> = match (genre, &models.top_tracks) {
            (Some(genre), Some(top)) => Box::new(
                top.iter()
                    .copied()
                    .filter(move |&t| {
                        catalog.get(t).and_then(|r| r.genre.as_deref()) == Some(genre)
                    })
                    .chain(catalog.tracks_of_genre(genre).iter().copied()),
            ),
            (Some(genre), None) => Box::new(catalog.tracks_of_genre(genre).iter().copied()),
            (None, Some(top)) => Box::new(
                top.iter()
                    .copied()
                    .chain(catalog.by_popularity().iter().copied()),
            ),
            (None, None) => Box::new(catalog.by_popularity().iter().copied()),
        };
        distinct_servable(ranked, catalog, &filters, None, k)
    }

    /// Tracks similar to `track`: the trained table, then catalog metadata.
    pub fn similar(&self, track: TrackId, k: usize) -> Result<Vec<TrackId>, RequestError> {
        let catalog = self.catalog.load();
        if !catalog.contains(track) {
            return Err(RequestError::UnknownTrack(track));
        }
        let models = self.models.load();
        let filters = self.filters.load();
        let table = crate::models::DEFAULT_TABLE;
        let ranked = recommenders::neighbours(&catalog, &models, table, track);
        Ok(distinct_servable(
            ranked,
            &catalog,
            &filters,
            Some(track),
            k,
        ))
    }
}

/// The first `k` distinct tracks of `ranked` that exist, are not blocked and
/// are not `exclude`.
fn distinct_servable(
    ranked: impl Iterator<Item = TrackId>,
    catalog: &Catalog,
    filters: &Filters,
    exclude: Option<TrackId>,
    k: usize,
) -> Vec<TrackId> {
    let mut out = Vec::with_capacity(k);
    for t in ranked {
        if out.len() >= k {
            break;
        }
        if catalog.contains(t)
            && Some(t) != exclude
            && !filters.is_blocked(catalog, t)
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    out
}

/// A track for when the recommender has none: random allowed, then any
/// unblocked track (repeating a heard one beats answering nothing), then the
/// current track.
fn fallback_track(
    allowed: &Allowed<'_>,
    catalog: &Catalog,
    filters: &Filters,
    current: TrackId,
    rng: &mut dyn RngCore,
) -> TrackId {
    let everything = catalog.by_popularity();
    allowed
        .pick_random(everything, rng)
        .or_else(|| {
            let start = rng.gen_range(0..everything.len());
            everything[start..]
                .iter()
                .chain(&everything[..start])
                .copied()
                .find(|&t| t != current && !filters.is_blocked(catalog, t))
        })
        .unwrap_or(current)
}

/// With probability `promote_rate`, a random allowed promoted track.
fn promote(allowed: &Allowed<'_>, filters: &Filters, rng: &mut dyn RngCore) -> Option<TrackId> {
    if filters.promoted_tracks.is_empty() || filters.promote_rate <= 0.0 {
        return None;
    }
    if !rng.gen_bool(filters.promote_rate) {
        return None;
    }
    allowed.pick_random(&filters.promoted_tracks, rng)
}
