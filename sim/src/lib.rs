//! The botify simulator: a generated world of tracks and listeners, and the
//! listener model that turns recommendations into listen times.
//!
//! - [`world`]: generation, the world files and the indexed [`world::World`].
//! - [`user_model`]: [`user_model::Session`], docs/user-model.md rule by rule.
//! - [`agents`]: simulator-side policies (random, sticky-artist, oracle).
//! - [`calibration`]: agents simulated directly against the user model.
//! - [`dynamics`]: boredom, drift, fresh releases (`--dynamics none`: off).
//! - [`population`]: listeners who live for days: visits, rhythm, returns.
//! - [`proof`]: the A/B statistics checked against simulated ground truth.
//! - [`ope_proof`]: off-policy evaluation checked against simulated truth.
//! - [`clock`]: the simulated clock multi-day logs are stamped with.
//! - [`rng`]: reproducible per-session random streams.
//! - [`runner`]: many sessions against botify (HTTP or in-process) or an agent.
//! - [`commands`]: the `sim` subcommands, one file each.

pub mod agents;
pub mod calibration;
pub mod clock;
pub mod commands;
pub mod dynamics;
pub mod ope_proof;
pub mod population;
pub mod proof;
pub mod rng;
pub mod runner;
pub mod user_model;
pub mod world;
