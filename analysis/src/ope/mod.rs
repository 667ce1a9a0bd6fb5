//! Off-policy evaluation (docs/ope.md): what a target arm would have
//! earned on the traffic another arm served, from the logged propensities.
//!
//! - `replay.rs` — the logged requests replayed: the session state, the
//!   target's and the logging arm's distributions there, each decision's
//!   importance weight;
//! - `reward_model.rs` — the direct model q̂ the doubly robust estimator
//!   uses;
//! - `estimators.rs` — IPS, SNIPS and DR, per request and per-decision over
//!   sessions, with their intervals and diagnostics.

pub mod estimators;
pub mod replay;
pub mod reward_model;
pub mod rows;
pub mod simulated;

pub use estimators::{Estimate, Step, Trajectory};
pub use replay::{replay_session, Arm, Profiles, Replayed, Skip, World};
pub use reward_model::RewardModel;
pub use rows::{distrust, interval_cell, target_rows, to_table, OpeRow};
