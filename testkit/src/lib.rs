//! The test harness every crate of the workspace shares: real servers on
//! free loopback ports, no mocks.
//!
//! - [`ports`]: a free port on 127.0.0.1.
//! - [`processes`]: child processes logging to a temp folder, stopped
//!   SIGTERM-then-SIGKILL on drop (also when a test panics).
//! - [`redis`]: a real `redis-server`, standalone ([`RedisServer`]) or
//!   among other [`Processes`].
//! - [`cluster`]: a real Redis Cluster, 3 masters and 3 replicas
//!   ([`RedisCluster`]), resharded and failed over on demand.
//! - [`nginx`]: a real nginx running `deploy/nginx.conf` on loopback.
//! - [`config`]: botify configurations and the files they point to.
//! - [`app`]: the real botify server in this process ([`TestApp`]).
//! - [`binary`]: the botify binary as a child process.
//! - [`events`]: reading the event logs a server wrote.
//! - [`files`]: the names of what a command left in a folder.
//! - [`tools`]: the test tools `scripts/test` installs (Chromium, node with
//!   playwright-core, schemathesis, duckdb, kubernetes-validate), found
//!   where it puts them.
//! - [`cli`]: the workspace's programs (`analysis`, `sim`) run as a user
//!   runs them, for end-to-end tests of a command line.
//! - [`worlds`]: simulator worlds written by the `sim` binary a test passes.
//!
//! Dev-dependency only (`publish = false`).

pub mod app;
pub mod binary;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod events;
pub mod files;
pub mod nginx;
pub mod ports;
pub mod processes;
pub mod redis;
pub mod tools;
pub mod worlds;

pub use self::app::TestApp;
pub use self::cli::Program;
pub use self::cluster::RedisCluster;
pub use self::config::{redis_config, test_config};
pub use self::events::read_events;
pub use self::files::file_names;
pub use self::ports::free_port;
pub use self::processes::{Process, Processes};
pub use self::redis::RedisServer;
