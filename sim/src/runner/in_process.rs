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

use anyhow::Context as _;
use indicatif::ProgressBar;
use tally::progress::{self, Unit};

use super::{Plan, Summary, Work};
use crate::agents::Agent;
use crate::dynamics::Fresh;
use crate::population::{Visit, VisitOutcome};
use crate::rng::SimRng;
use crate::user_model::Session;
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

/// Plays every session of `plan` on this thread (the static model: wall
/// clock timestamps, nothing carried between sessions).
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
        play(policy, &mut session, &mut rng, &mut None, &mut summary)?;
        summary.record_session(&session);
        if offset % 1024 == 0 {
            progress.set_position(offset);
        }
    }
    progress.set_position(plan.episodes);
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Plays a day's visits on this thread, in order, with the listener
/// dynamics on and events stamped by the simulated clock; returns what each
/// visit did for the population to settle. `progress` counts sessions.
pub fn run_visits(
    world: &World,
    visits: Vec<Visit>,
    fresh: Fresh,
    policy: &mut Policy<'_>,
    progress: &ProgressBar,
) -> anyhow::Result<(Summary, Vec<VisitOutcome>)> {
    let started = Instant::now();
    let mut summary = Summary::new(false);
    let mut outcomes = Vec::with_capacity(visits.len());
    for mut visit in visits {
        while let Some((mut session, start)) = visit.next_session(world, fresh) {
            let mut clock = Some(start);
            play(
                policy,
                &mut session,
                &mut visit.rng,
                &mut clock,
                &mut summary,
            )?;
            summary.record_session(&session);
            visit.finish_session(session, clock.expect("a simulated clock"));
            if summary.sessions().is_multiple_of(1024) {
                progress.set_position(summary.sessions());
            }
        }
        outcomes.push(visit.into_outcome());
    }
    progress.set_position(summary.sessions());
    summary.elapsed = started.elapsed();
    Ok((summary, outcomes))
}

/// One session, the client protocol of docs/api.md#client-protocol: `/next`
/// after every listen, `/last` at the end (botify only). With a simulated
/// `clock`, each request is stamped when its listen ended.
fn play(
    policy: &mut Policy<'_>,
    session: &mut Session<'_>,
    rng: &mut SimRng,
    clock: &mut Option<u64>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let user = session.user().user;
    let mut track = session.first_track();
    let mut time = crate::user_model::FIRST_TRACK_TIME;
    advance(clock, track, time);
    loop {
        let recommendation = match policy {
            Policy::Engine(engine, runtime) => {
                ready(engine.next_at(user, track, time, *clock), runtime)
                    .map_err(|e| {
                        anyhow::anyhow!("botify refused user {user}'s track {track}: {e}")
                    })?
                    .track
            }
            Policy::Agent(agent) => agent.recommend(session, rng),
        };
        summary.requests += 1;
        time = session.listen(recommendation);
        track = recommendation;
        advance(clock, track, time);
        if session.is_over() {
            break;
        }
    }
    if let Policy::Engine(engine, runtime) = policy {
        ready(engine.last_at(user, track, time, *clock), runtime)
            .map_err(|e| anyhow::anyhow!("botify refused /last of user {user}: {e}"))?;
        summary.requests += 1;
    }
    Ok(())
}

/// Moves a simulated clock past a listen.
pub(super) fn advance(clock: &mut Option<u64>, track: u32, time: f64) {
    if let Some(now) = clock {
        *now += crate::clock::listen_ms(track, time);
    }
}

/// Plays a day of either kind on this thread.
pub fn play_day(
    world: &World,
    work: Work,
    policy: &mut Policy<'_>,
    progress: &ProgressBar,
) -> anyhow::Result<(Summary, Vec<VisitOutcome>)> {
    match work {
        Work::Plan(plan) => Ok((run(world, plan, policy, progress)?, Vec::new())),
        Work::Visits { visits, fresh } => run_visits(world, visits, fresh, policy, progress),
    }
}

/// Plays a day against `engine` with its events going to a new log in
/// `log_dir`, closed (every line on disk) before returning. The engine's
/// state store carries over between calls, so successive days see the same
/// listeners' long-term state. Returns the summary, the visits' outcomes
/// and the lines written.
pub fn run_logged(
    world: &World,
    engine: &Engine,
    runtime: &tokio::runtime::Runtime,
    work: Work,
    log_dir: &Path,
    max_log_bytes: u64,
    label: &str,
) -> anyhow::Result<(Summary, Vec<VisitOutcome>, u64)> {
    let log = botify::events::EventLog::open(log_dir, max_log_bytes)
        .with_context(|| format!("cannot open event log folder {}", log_dir.display()))?;
    engine.set_event_log(Some(log.sender()));
    let bar = progress::bar(Unit::Sessions, work.sessions(), label.to_string());
    let result = play_day(world, work, &mut Policy::Engine(engine, runtime), &bar);
    bar.finish_and_clear();
    engine.set_event_log(None);
    let written = log.close();
    let (summary, outcomes) = result?;
    Ok((summary, outcomes, written))
}
