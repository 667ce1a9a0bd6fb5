//! In-process runs: sessions against botify's engine linked into the
//! simulator (embedded state store, no HTTP), or against a simulator-side
//! agent such as the oracle.
//!
//! The engine path is the service's own code — same recommenders, same
//! state handling, same event log — so an offline experiment reads exactly
//! like one run over HTTP, minus the network, at a fraction of the cost.

use std::future::Future;
use std::pin::pin;
use std::time::Instant;

use botify::engine::Engine;
use futures_util::FutureExt;
use std::path::Path;

use analysis::progress::{self, Unit};
use anyhow::Context as _;
use indicatif::ProgressBar;

use super::{Plan, Summary};
use crate::agents::Agent;
use crate::world::World;

/// Who recommends.
pub enum Policy<'a> {
    /// botify's engine, as configured (experiments, models, event log).
    Engine(&'a Engine, &'a tokio::runtime::Runtime),
    /// A simulator-side agent (random, oracle): no botify, no log.
    Agent(&'a mut dyn Agent),
}

/// Polls `future` once and, only if it is not ready, blocks on it. With the
/// embedded store the engine's futures are always ready at once, so the hot
/// loop pays no executor round trip.
fn ready<F: Future>(future: F, runtime: &tokio::runtime::Runtime) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().now_or_never() {
        Some(output) => output,
        None => runtime.block_on(future),
    }
}

/// Plays every session of `plan` on this thread.
pub fn run(
    world: &World,
    plan: Plan,
    policy: &mut Policy<'_>,
    progress: &ProgressBar,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let mut summary = Summary::new(false);
    for offset in 0..plan.episodes {
        let (mut session, mut rng) = plan.start(world, offset);
        let user = session.user().user;
        let mut track = session.first_track();
        let mut time = crate::user_model::FIRST_TRACK_TIME;
        loop {
            let recommendation = match policy {
                Policy::Engine(engine, runtime) => {
                    ready(engine.next(user, track, time, &mut rng), runtime)
                        .map_err(|e| {
                            anyhow::anyhow!("botify refused user {user}'s track {track}: {e}")
                        })?
                        .track
                }
                Policy::Agent(agent) => agent.recommend(&session, &mut rng),
            };
            summary.requests += 1;
            time = session.listen(recommendation);
            track = recommendation;
            if session.is_over() {
                break;
            }
        }
        if let Policy::Engine(engine, runtime) = policy {
            ready(engine.last(user, track, time), runtime)
                .map_err(|e| anyhow::anyhow!("botify refused /last of user {user}: {e}"))?;
            summary.requests += 1;
        }
        summary.record_session(&session);
        if offset % 1024 == 0 {
            progress.set_position(offset);
        }
    }
    progress.set_position(plan.episodes);
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Plays `plan` against `engine` with its events going to a new log in
/// `log_dir`, closed (every line on disk) before returning. The engine's
/// state store carries over between calls, so successive days see the same
/// listeners' long-term state. Returns the summary and the lines written.
pub fn run_logged(
    world: &World,
    engine: &Engine,
    runtime: &tokio::runtime::Runtime,
    plan: Plan,
    log_dir: &Path,
    max_log_bytes: u64,
    label: &str,
) -> anyhow::Result<(Summary, u64)> {
    let log = botify::events::EventLog::open(log_dir, max_log_bytes)
        .with_context(|| format!("cannot open event log folder {}", log_dir.display()))?;
    engine.set_event_log(Some(log.sender()));
    let bar = progress::bar(Unit::Sessions, plan.episodes, label.to_string());
    let result = run(world, plan, &mut Policy::Engine(engine, runtime), &bar);
    bar.finish_and_clear();
    engine.set_event_log(None);
    let written = log.close();
    Ok((result?, written))
}
