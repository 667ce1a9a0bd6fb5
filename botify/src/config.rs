//! Service configuration: command-line flags, each with an environment
//! variable equivalent (flags win), so the same binary runs from a shell, a
//! container or a test harness.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::events::LogSink;
use crate::state::Ttls;

/// botify: a music recommender that keeps listeners listening.
///
/// Serves `POST /next/{user}` with the next track for a listener, splitting
/// users across the recommenders of the active experiment, and logs every
/// answer for A/B analysis and training.
#[derive(Debug, Clone, Parser)]
#[command(name = "botify", version)]
pub struct Config {
    /// Port to listen on (0 picks a free one and logs it).
    #[arg(long, env = "BOTIFY_PORT", default_value_t = 5001)]
    pub port: u16,

    /// Address to bind; use 0.0.0.0 in a container.
    #[arg(long, env = "BOTIFY_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Catalog file (`tracks.jsonl`, one track per line; `sim world` writes one).
    #[arg(
        long,
        env = "BOTIFY_CATALOG",
        default_value = "data/world/tracks.jsonl"
    )]
    pub catalog: PathBuf,

    /// Experiments file (TOML): the A/B splits and which one is active.
    #[arg(long, env = "BOTIFY_EXPERIMENTS", default_value = "experiments.toml")]
    pub experiments: PathBuf,

    /// Folder of trained tables written by `analysis train` (may be empty or missing).
    #[arg(long, env = "BOTIFY_MODELS", default_value = "data/models")]
    pub models: PathBuf,

    /// Folder for this replica's event log files.
    #[arg(long, env = "BOTIFY_LOG_DIR", default_value = "log")]
    pub log_dir: PathBuf,

    /// Rotate an event log file once it reaches this many bytes.
    #[arg(long, env = "BOTIFY_LOG_MAX_BYTES", default_value_t = 64 << 20)]
    pub log_max_bytes: u64,

    /// Where the event log goes: files in --log-dir, or Redis Streams on --redis-url (lines spill to --log-dir while Redis is unreachable and are sent later; `analysis ingest` collects them).
    #[arg(long, env = "BOTIFY_LOG_SINK", value_enum, default_value_t = LogSink::File)]
    pub log_sink: LogSink,

    /// Redis URL for per-user state and the control plane shared by replicas; without it both are kept in this process.
    /// With --redis-cluster: one or more comma-separated seed nodes of the cluster.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// --redis-url points at a Redis Cluster (redis://a:7000,redis://b:7001,...); a user's keys share one hash slot.
    #[arg(long, env = "BOTIFY_REDIS_CLUSTER")]
    pub redis_cluster: bool,

    /// Prefix of every Redis key, so deployments can share a Redis.
    #[arg(long, env = "BOTIFY_REDIS_NAMESPACE", default_value = "botify")]
    pub redis_namespace: String,

    /// Bound on one state store round trip, in milliseconds; past it the request is served statelessly.
    #[arg(long, env = "BOTIFY_STATE_TIMEOUT_MS", default_value_t = 100)]
    pub state_timeout_ms: u64,

    /// After a state store failure, serve statelessly for this many milliseconds before retrying.
    #[arg(long, env = "BOTIFY_STATE_COOLDOWN_MS", default_value_t = 500)]
    pub state_cooldown_ms: u64,

    /// Seconds session state (tracks heard, session memory) lives untouched.
    #[arg(long, env = "BOTIFY_SESSION_TTL", default_value_t = 3600)]
    pub session_ttl_secs: u64,

    /// Seconds long-term state (artist means, favourite artist) lives untouched.
    #[arg(long, env = "BOTIFY_PROFILE_TTL", default_value_t = 30 * 24 * 3600)]
    pub profile_ttl_secs: u64,

    /// Without Redis: folder for the control plane (filters, added tracks, served models version), kept in
    /// `control.json` and written atomically, so admin changes survive a restart. Without it they last until exit.
    #[arg(long, env = "BOTIFY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Filters file (JSON: blocked_tracks, blocked_artists, promoted_tracks, promote_rate): served until the
    /// control plane holds filters (the first admin change), which then win.
    #[arg(long, env = "BOTIFY_FILTERS")]
    pub filters: Option<PathBuf>,

    /// Bearer token for /admin routes; without one they answer 404.
    #[arg(long, env = "BOTIFY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Test mode for simulations over HTTP: stamp events with the time a
    /// client sends in the `X-Simulated-Time` header (epoch milliseconds)
    /// instead of the wall clock, so a simulator playing days in minutes
    /// writes logs that read like those days. Never enable in production:
    /// clients could then write any time into the log.
    #[arg(long, env = "BOTIFY_SIMULATED_CLOCK")]
    pub simulated_clock: bool,

    /// Seed of every draw a serving policy makes: a request's draws are
    /// seeded from (this seed, the user, the session position, the track
    /// just heard), so a run with the same seed and requests answers the
    /// same, and a replay of the log recomputes each draw.
    #[arg(long, env = "BOTIFY_SEED", default_value_t = 0)]
    pub seed: u64,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "BOTIFY_WORKERS")]
    pub workers: Option<usize>,

    /// Seconds a replica keeps serving after SIGTERM while `/ready` answers 503, so load balancers stop
    /// sending it traffic before it stops accepting connections.
    #[arg(long, env = "BOTIFY_DRAIN_SECS", default_value_t = 5)]
    pub drain_secs: u64,

    /// Without a command, botify serves.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Maintenance commands, run instead of serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Move every Redis key of the layout before hash tags (`{ns}:user:<id>:…`) to today's, then exit. Safe while
    /// replicas serve and safe to repeat: counts are added to a user's current keys, nothing is overwritten.
    /// Takes the Redis flags before the command: `botify --redis-url URL migrate`.
    Migrate,
}

impl Config {
    pub fn ttls(&self) -> Ttls {
        Ttls {
            session: Duration::from_secs(self.session_ttl_secs),
            profile: Duration::from_secs(self.profile_ttl_secs),
        }
    }

    /// Defaults for everything, with the given catalog: what tests start from.
    pub fn for_catalog(catalog: PathBuf) -> Config {
        let mut config = Config::parse_from(["botify"]);
        config.catalog = catalog;
        config
    }
}
