//! The control plane: what operators change at runtime and every replica
//! must serve alike — the filters, the tracks added at runtime, and the
//! version of the trained models being served.
//!
//! It is one small versioned document ([`Versioned`]) in a [`ControlStore`]:
//! Redis when replicas share one (any replica can take an admin change,
//! every replica follows), else an atomically written file in `--data-dir`
//! (embedded mode), else memory. A change is a compare-and-set on the
//! version, so concurrent changes through two replicas never overwrite each
//! other; the replica that made it applies it at once.
//!
//! The others converge within a second, through two paths so that neither
//! has to be perfect: a pub/sub message on every change wakes them at once,
//! and each polls the version every [`POLL_EVERY`], so a missed message (a
//! dropped subscription, a replica that was restarting) heals itself. A
//! replica started later loads the current control plane the same way. A
//! Redis fault never fails a request: the replica keeps serving the last
//! control plane it knows and counts the failure
//! (`botify_control_plane_errors_total`). If Redis comes back empty (it lost
//! its data), the replica writes back what it serves.
//!
//! Applying a control plane to the engine: added tracks are appended to the
//! catalog (tracks are never removed, so applying is idempotent), the
//! filters are swapped in, and when the fleet's models version differs from
//! the replica's, the replica reloads its models folder.

mod store;

pub use store::{ControlStore, FileControl, RedisControl, CONTROL_FILE};

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify};

use crate::catalog::Track;
use crate::engine::Engine;
use crate::filters::Filters;

/// How often a replica checks the control plane's version.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// Bound on one control plane operation against the store.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Compare-and-set attempts of one change before giving up as contended.
const ATTEMPTS: u32 = 5;

/// The control plane's content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlDoc {
    #[serde(default)]
    pub filters: Filters,
    /// Tracks added at runtime, in id order, each the next id after the
    /// catalog file's tracks and the ones before it.
    #[serde(default)]
    pub tracks: Vec<Track>,
    /// The version (`Models::version`) of the models the fleet serves,
    /// set by `POST /admin/reload`; `None` until the first reload.
    #[serde(default)]
    pub models_version: Option<String>,
}

/// The control plane with its version: 0 before the first change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    pub version: u64,
    pub doc: ControlDoc,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("the control plane store did not answer within {0:?}")]
    Timeout(Duration),
    #[error("corrupt control plane in {0}")]
    Corrupt(String),
    #[error("control plane file {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the control plane changed {0} times while this change was being made; try again")]
    Contended(u32),
}

/// Why a change was not made.
#[derive(Debug)]
pub enum ChangeError<E> {
    /// The edit refused it (bad input); nothing was stored.
    Rejected(E),
    /// The store could not take it; nothing changed anywhere.
    Unavailable(ControlError),
}

/// One replica's side of the control plane.
pub struct Control {
    store: ControlStore,
    engine: Arc<Engine>,
    /// What this replica serves. Held across a refresh or a change, so
    /// the two never interleave and a replica never steps back a version.
    served: Mutex<Versioned>,
    /// `served`'s version, readable without waiting (for `/health`).
    version: AtomicU64,
    /// Woken by a pub/sub message: refresh now rather than at the next poll.
    wake: Notify,
}

impl Control {
    /// Starts from what the engine serves now (its `--filters` file, its
    /// models); the first refresh replaces that with the stored control
    /// plane, if there is one.
    pub fn new(store: ControlStore, engine: Arc<Engine>) -> Arc<Control> {
        let served = Versioned {
            version: 0,
            doc: ControlDoc {
                filters: (*engine.filters()).clone(),
                tracks: Vec::new(),
                models_version: engine.models().version.clone(),
            },
        };
        Arc::new(Control {
            store,
            engine,
            served: Mutex::new(served),
            version: AtomicU64::new(0),
            wake: Notify::new(),
        })
    }

    /// The version this replica serves.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// `redis`, `file` or `memory`.
    pub fn kind(&self) -> &'static str {
        self.store.kind()
    }

    /// Loads and applies the stored control plane if its version differs
    /// from the served one; on any failure the served one stays.
    pub async fn refresh(&self) -> Result<(), ControlError> {
        let mut served = self.served.lock().await;
        let version = bounded(self.store.version()).await?;
        if version == served.version {
            return Ok(());
        }
        match bounded(self.store.load()).await? {
            Some(stored) => self.apply(&mut served, stored).await,
            None if served.version > 0 => {
                tracing::warn!(
                    version = served.version,
                    "the control plane store is empty; writing back the served control plane"
                );
                if let Some(version) = bounded(self.store.replace(0, &served.doc)).await? {
                    self.set_served(&mut served, version);
                }
            }
            None => {}
        }
        Ok(())
    }

    /// Makes a change: `edit` gets the current control plane (already
    /// applied to the engine, so the catalog is current) and changes it or
    /// refuses. The change is stored only if nobody changed the control
    /// plane meanwhile (else it is redone on the newer one), then applied.
    pub async fn change<T, E>(
        &self,
        edit: impl Fn(&mut ControlDoc, &Engine) -> Result<T, E>,
    ) -> Result<T, ChangeError<E>> {
        let mut served = self.served.lock().await;
        let unavailable = |e: ControlError| {
            self.count_error("change");
            ChangeError::Unavailable(e)
        };
        for _ in 0..ATTEMPTS {
            let current = bounded(self.store.load()).await.map_err(unavailable)?;
            // Nothing stored yet: start from what this replica serves.
            let current = current.unwrap_or_else(|| Versioned {
                version: 0,
                doc: served.doc.clone(),
            });
            if current.version != served.version {
                self.apply(&mut served, current.clone()).await;
            }
            let mut doc = current.doc.clone();
            let answer = edit(&mut doc, &self.engine).map_err(ChangeError::Rejected)?;
            let stored = bounded(self.store.replace(current.version, &doc))
                .await
                .map_err(unavailable)?;
            if let Some(version) = stored {
                self.apply(&mut served, Versioned { version, doc }).await;
                return Ok(answer);
            }
        }
        Err(unavailable(ControlError::Contended(ATTEMPTS)))
    }

    /// Serves `new`: tracks first (filters may name them), then filters,
    /// then models if the fleet's version differs from the loaded one.
    async fn apply(&self, served: &mut Versioned, new: Versioned) {
        for track in &new.doc.tracks {
            if self.engine.catalog().contains(track.track) {
                continue;
            }
            if let Err(err) = self.engine.add_track(track.clone()) {
                // Replicas were started with different catalog files.
                self.count_error("apply");
                tracing::error!(%err, track = track.track, "cannot add a control plane track");
            }
        }
        self.engine.set_filters(new.doc.filters.clone());
        let fleet = &new.doc.models_version;
        if fleet.is_some() && *fleet != self.engine.models().version {
            let engine = self.engine.clone();
            let reloaded = tokio::task::spawn_blocking(move || engine.reload_models()).await;
            let loaded = self.engine.models().version.clone();
            if !matches!(reloaded, Ok(Ok(_))) || loaded != *fleet {
                self.count_error("models");
                tracing::warn!(
                    fleet = ?fleet,
                    loaded = ?loaded,
                    "this replica's models folder does not hold the models the fleet serves"
                );
            }
        }
        let version = new.version;
        *served = new;
        self.set_served(served, version);
        tracing::info!(version, "control plane applied");
    }

    fn set_served(&self, served: &mut Versioned, version: u64) {
        served.version = version;
        self.version.store(version, Ordering::Relaxed);
        self.engine
            .metrics()
            .control_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
    }

    fn count_error(&self, op: &str) {
        self.engine
            .metrics()
            .control_errors
            .with_label_values(&[op])
            .inc();
    }

    /// Follows the store until the returned tasks are aborted: the poll,
    /// and for Redis the subscription to `seeds` (any node of a cluster
    /// sees every publication). Must run inside a Tokio runtime.
    pub fn follow(self: &Arc<Self>, seeds: &[String]) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(self.clone().poll())];
        if let ControlStore::Redis(redis) = &self.store {
            let clients: Vec<redis::Client> = seeds
                .iter()
                .filter_map(|url| redis::Client::open(url.as_str()).ok())
                .collect();
            if !clients.is_empty() {
                let channel = redis.channel().to_string();
                tasks.push(tokio::spawn(self.clone().subscribe(clients, channel)));
            }
        }
        tasks
    }

    async fn poll(self: Arc<Self>) {
        loop {
            if let Err(err) = self.refresh().await {
                self.count_error("poll");
                tracing::debug!(%err, "control plane poll failed; serving the last known one");
            }
            tokio::select! {
                () = tokio::time::sleep(POLL_EVERY) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// Listens for change messages, moving to the next seed node whenever
    /// the subscription cannot be made or drops.
    async fn subscribe(self: Arc<Self>, clients: Vec<redis::Client>, channel: String) {
        for client in clients.iter().cycle() {
            let subscribed = tokio::time::timeout(TIMEOUT, async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            })
            .await;
            match subscribed {
                Ok(Ok(pubsub)) => {
                    let mut messages = pubsub.into_on_message();
                    while messages.next().await.is_some() {
                        self.wake.notify_one();
                    }
                }
                _ => self.count_error("subscribe"),
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

async fn bounded<T>(
    work: impl std::future::Future<Output = Result<T, ControlError>>,
) -> Result<T, ControlError> {
    tokio::time::timeout(TIMEOUT, work)
        .await
        .unwrap_or(Err(ControlError::Timeout(TIMEOUT)))
}
