//! What every handler can reach, as actix app data.

use std::sync::Arc;

use crate::control::Control;
use crate::engine::Engine;
use crate::events::LogCounters;
use crate::readiness::Readiness;

/// What every handler can reach.
pub struct AppState {
    pub engine: Arc<Engine>,
    /// The control plane admin changes go through.
    pub control: Arc<Control>,
    /// Bearer token for `/admin`; `None` disables the admin routes.
    pub admin_token: Option<String>,
    /// Event log counters, exported on `/metrics`.
    pub log_counters: Option<Arc<LogCounters>>,
    /// Whether events take their time from the `X-Simulated-Time` header
    /// (`--simulated-clock`, a test mode for simulations).
    pub simulated_clock: bool,
    /// Starting, ready or draining: what `/ready` answers.
    pub readiness: Arc<Readiness>,
}
