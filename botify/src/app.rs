//! Start-up wiring: from a [`Config`] to a bound, running server.
//!
//! Tests use [`Application::build`] with port 0 to get the real server on a
//! free loopback port; the binary does the same with the configured port.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;

use crate::api::{self, AppState};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::control::{Control, ControlStore, FileControl, RedisControl};
use crate::engine::{Engine, EngineParts, EngineSettings};
use crate::events::stream::StreamTarget;
use crate::events::{EventLog, LogSink};
use crate::experiments::Experiments;
use crate::filters::Filters;
use crate::metrics::Metrics;
use crate::models::Models;
use crate::readiness::{self, Readiness};
use crate::redis_link::{RedisLink, RedisTarget};
use crate::state::{InProcessStore, RedisSettings, RedisStore, StateStore};

/// How long a stopping server waits for in-flight requests before dropping
/// them; an orchestrator's grace period must exceed the drain plus this.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 30;

pub struct Application {
    server: Server,
    port: u16,
    engine: Arc<Engine>,
    control: Arc<Control>,
    /// The control plane's poll and subscription, stopped with the server.
    control_tasks: Vec<tokio::task::JoinHandle<()>>,
    event_log: EventLog,
    readiness: Arc<Readiness>,
    /// How long a signalled replica keeps serving while not ready.
    drain: Duration,
}

/// Builds the engine and what it needs from configuration files; shared by
/// the service and the simulator's in-process mode.
pub fn build_engine(config: &Config, event_log: Option<&EventLog>) -> anyhow::Result<Engine> {
    let catalog = Catalog::load(&config.catalog)?;
    let experiments = Experiments::load(&config.experiments).context(
        "pass --experiments with a TOML experiments file (the repo ships experiments.toml)",
    )?;
    let models = Models::load(&config.models).with_context(|| {
        format!(
            "cannot load models from {}; retrain with `analysis train` or remove the bad file",
            config.models.display()
        )
    })?;
    let filters = match &config.filters {
        Some(path) => Filters::load(path)?,
        None => Filters::default(),
    };
    let store: Arc<dyn StateStore> = match &config.redis_url {
        Some(url) => Arc::new(
            RedisStore::new(redis_settings(config, url)).with_context(|| {
                format!("invalid --redis-url {url:?}; expected redis://host:port (with --redis-cluster: a comma-separated list)")
            })?,
        ),
        None => Arc::new(InProcessStore::new(config.ttls())),
    };
    let engine = Engine::new(EngineParts {
        catalog,
        models,
        filters,
        experiments,
        store,
        events: event_log.map(EventLog::sender),
        metrics: Arc::new(Metrics::new()),
        settings: EngineSettings {
            models_dir: config.models.clone(),
            store_cooldown: Duration::from_millis(config.state_cooldown_ms),
            seed: config.seed,
        },
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", config.experiments.display()))?;
    Ok(engine)
}

/// The state store's settings for `url` (`--redis-url`).
fn redis_settings(config: &Config, url: &str) -> RedisSettings {
    RedisSettings {
        url: url.to_string(),
        cluster: config.redis_cluster,
        namespace: config.redis_namespace.clone(),
        timeout: Duration::from_millis(config.state_timeout_ms),
        ttls: config.ttls(),
    }
}

/// `botify migrate`: moves the keys of the old Redis layout and says how
/// many users, profiles and sessions it moved.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let url = config.redis_url.as_ref().context(
        "botify migrate moves Redis keys: pass --redis-url (before `migrate`) or set REDIS_URL",
    )?;
    // A maintenance command waits on Redis rather than falling back: a
    // round trip gets the longer of --state-timeout-ms and this.
    const MIGRATE_TIMEOUT: Duration = Duration::from_secs(5);
    let mut settings = redis_settings(config, url);
    settings.timeout = settings.timeout.max(MIGRATE_TIMEOUT);
    let store =
        RedisStore::new(settings).with_context(|| format!("invalid --redis-url {url:?}"))?;
    let moved = store
        .migrate_legacy()
        .await
        .context("migration stopped; what moved stays moved, run it again to finish")?;
    println!(
        "moved the old-layout keys of {} users ({} profiles, {} sessions) under {:?}",
        moved.users, moved.profiles, moved.sessions, config.redis_namespace
    );
    Ok(())
}

/// The event log of `--log-sink`: files in `--log-dir`, or streams on
/// `--redis-url` spilling there.
fn open_event_log(config: &Config) -> anyhow::Result<EventLog> {
    let opened = match (config.log_sink, &config.redis_url) {
        (LogSink::File, _) => EventLog::open(&config.log_dir, config.log_max_bytes),
        (LogSink::RedisStream, None) => {
            anyhow::bail!("--log-sink redis-stream needs --redis-url (or REDIS_URL)")
        }
        (LogSink::RedisStream, Some(url)) => {
            let redis =
                RedisTarget::parse(url, config.redis_cluster).map_err(anyhow::Error::msg)?;
            let target = StreamTarget {
                redis,
                namespace: config.redis_namespace.clone(),
            };
            EventLog::open_stream(&config.log_dir, config.log_max_bytes, target)
        }
    };
    opened.with_context(|| format!("cannot open event log folder {}", config.log_dir.display()))
}

/// The control plane's store: Redis (the state store's, so every replica
/// shares it), else `--data-dir`'s file, else memory.
fn control_store(config: &Config) -> anyhow::Result<ControlStore> {
    if let Some(url) = &config.redis_url {
        let target = RedisTarget::parse(url, config.redis_cluster).map_err(anyhow::Error::msg)?;
        let link = RedisLink::new(&target, Duration::from_millis(config.state_timeout_ms))
            .with_context(|| format!("invalid --redis-url {url:?}"))?;
        return Ok(ControlStore::Redis(RedisControl::new(
            Arc::new(link),
            &config.redis_namespace,
        )));
    }
    match &config.data_dir {
        Some(dir) => Ok(ControlStore::File(FileControl::open(dir)?)),
        None => Ok(ControlStore::Memory(Default::default())),
    }
}

impl Application {
    /// Loads everything and binds the port; the server runs once awaited.
    /// With Redis the control plane is loaded by the first poll, at once
    /// and in the background (Redis may be down); from a file it is loaded
    /// before serving, and a corrupt file stops the start.
    pub fn build(config: &Config) -> anyhow::Result<Application> {
        let event_log = open_event_log(config)?;
        let engine = Arc::new(build_engine(config, Some(&event_log))?);
        let control = Control::new(control_store(config)?, engine.clone());
        let control_tasks = match &config.redis_url {
            Some(url) => {
                let target =
                    RedisTarget::parse(url, config.redis_cluster).map_err(anyhow::Error::msg)?;
                control.follow(&target.urls)
            }
            None => {
                // A file or memory answers without waiting on the runtime.
                futures_executor::block_on(control.refresh()).with_context(|| {
                    "cannot load the control plane; fix or remove the file in --data-dir"
                })?;
                Vec::new()
            }
        };
        let address = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&address).with_context(|| {
            format!("cannot listen on {address}; is the port taken? pass --port")
        })?;
        let port = listener.local_addr()?.port();
        let readiness = Arc::new(Readiness::default());
        let state = web::Data::new(AppState {
            readiness: readiness.clone(),
            engine: engine.clone(),
            control: control.clone(),
            admin_token: config.admin_token.clone().filter(|t| !t.is_empty()),
            log_counters: Some(event_log.counters()),
            simulated_clock: config.simulated_clock,
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PathConfig::default().error_handler(|err, _| {
                    api::ApiError::bad_request("invalid_path", err.to_string()).into()
                }))
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    api::ApiError::bad_request("invalid_query", err.to_string()).into()
                }))
                .wrap(from_fn(api::record_request))
                .wrap(from_fn(readiness::close_connections_while_draining))
                .configure(api::configure)
                .default_service(web::to(api::not_found))
        })
        .listen(listener)?
        // Signals are ours (`run_until_stopped`): actix would stop accepting
        // at once, before load balancers notice the replica is going.
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
        if let Some(workers) = config.workers {
            server = server.workers(workers.max(1));
        }
        tracing::info!(
            port,
            tracks = engine.catalog().len(),
            experiment = %engine.experiments().active,
            store = engine.store_kind(),
            control_plane = control.kind(),
            log_dir = %config.log_dir.display(),
            "botify listening"
        );
        Ok(Application {
            server: server.run(),
            port,
            engine,
            control,
            control_tasks,
            event_log,
            readiness,
            drain: Duration::from_secs(config.drain_secs),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    pub fn control(&self) -> Arc<Control> {
        self.control.clone()
    }

    /// A handle to stop the server gracefully from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped: [`ServerHandle::stop`], or SIGTERM/SIGINT after
    /// the drain (`--drain-secs` not ready but serving, see [`readiness`]).
    /// In-flight requests finish first, then every queued event reaches the
    /// log. Returns the number of event lines written.
    pub async fn run_until_stopped(self) -> anyhow::Result<u64> {
        let handle = self.server.handle();
        let drain = tokio::spawn(readiness::drain_on_signal(
            self.readiness.clone(),
            self.drain,
            move || async move { handle.stop(true).await },
        ));
        self.readiness.serving();
        let served = self.server.await;
        drain.abort();
        for task in &self.control_tasks {
            task.abort();
        }
        served?;
        let written = self.event_log.close();
        tracing::info!(written, "botify stopped; event log flushed");
        Ok(written)
    }
}

/// A server running on its own thread (with its own actix system), for
/// callers that are not actix applications: the simulator's end-to-end
/// experiment and tests that drive it from plain threads.
pub struct Background {
    pub port: u16,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<anyhow::Result<u64>>>,
}

impl Background {
    /// Builds and starts the server; returns once it is listening.
    pub fn start(config: Config) -> anyhow::Result<Background> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("botify".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let app = match Application::build(&config) {
                        Ok(app) => app,
                        Err(err) => {
                            let message = format!("{err:#}");
                            let _ = ready_tx.send(Err(err));
                            anyhow::bail!(message);
                        }
                    };
                    let _ = ready_tx.send(Ok((app.port(), app.handle())));
                    app.run_until_stopped().await
                })
            })?;
        match ready_rx.recv() {
            Ok(Ok((port, handle))) => Ok(Background {
                port,
                handle,
                thread: Some(thread),
            }),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(anyhow::anyhow!(
                "botify's server thread died while starting"
            )),
        }
    }

    /// Stops gracefully (in-flight requests finish, the log is flushed);
    /// returns the number of event lines written.
    pub fn stop(mut self) -> anyhow::Result<u64> {
        let handle = self.handle.clone();
        std::thread::spawn(move || futures_executor::block_on(handle.stop(true)))
            .join()
            .map_err(|_| anyhow::anyhow!("stopping botify panicked"))?;
        self.thread
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| anyhow::anyhow!("botify's server thread panicked"))?
    }
}
