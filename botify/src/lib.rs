//! botify: a music recommender service.
//!
//! The library holds everything but the `main` function, so the simulator can
//! run the same recommenders in-process and tests can start the real server on
//! a free port. Start at [`engine`] (one request, end to end) and [`api`]
//! (the HTTP surface); see ARCHITECTURE.md for the map.

pub mod api;
pub mod app;
pub mod catalog;
pub mod config;
pub mod control;
pub mod engine;
pub mod events;
pub mod experiments;
pub mod filters;
pub mod json_integers;
pub mod jsonl;
pub mod metrics;
pub mod models;
pub mod policy;
pub mod readiness;
pub mod recommenders;
pub mod redis_link;
pub mod state;

// Lets test code shared with integration tests (`state/contract.rs`) name
// this crate `botify` from inside it too.
#[cfg(test)]
extern crate self as botify;
