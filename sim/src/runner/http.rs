//! HTTP runs: sessions against a running botify over keep-alive connections
//! with TCP_NODELAY, many sessions in flight at once (docs/api.md#client-protocol).
//!
//! Everything runs on one thread: `concurrency` session loops are polled
//! together, each waiting on its own request. One thread keeps the second
//! core for the service on a 2-core machine, and needs no locks.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use indicatif::ProgressBar;

use botify::catalog::Track;

use super::in_process::advance;
use super::{Summary, Work};
use crate::dynamics::Fresh;
use crate::population::{Visit, VisitOutcome};
use crate::user_model::Session;
use crate::world::World;

/// A botify service at `base` (e.g. `http://127.0.0.1:5001`).
pub struct Botify {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Bound on one request: far above botify's 300 ms promise, so only a
    /// hung service trips it.
    timeout: Duration,
}

/// Longest a pooled connection is reused after its last request: below the
/// server's keep-alive, so sim never sends on a connection botify closed.
const IDLE_CONNECTION_LIMIT: Duration = Duration::from_secs(2);

impl Botify {
    pub fn new(base: &str, connections: usize) -> Botify {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            // botify (actix-web) closes a connection idle for 5 s. Between
            // days the runner may sit idle longer (retraining), so a pooled
            // connection that old is dropped on checkout rather than reused
            // after the server closed it.
            .pool_idle_timeout(IDLE_CONNECTION_LIMIT)
            .build(connector);
        Botify {
            base: base.trim_end_matches('/').to_string(),
            client,
            timeout: Duration::from_secs(10),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request; returns the status and body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: String,
        bearer: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send(method, path, body, bearer, None).await
    }

    /// [`request`](Self::request), stamped with a simulated time
    /// (`X-Simulated-Time`, which botify honours under `--simulated-clock`).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: String,
        bearer: Option<&str>,
        at: Option<u64>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let url = format!("{}{path}", self.base);
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("content-type", "application/json");
        if let Some(token) = bearer {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if let Some(at) = at {
            builder = builder.header("x-simulated-time", at);
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .with_context(|| format!("invalid URL {url}; pass --url like http://127.0.0.1:5001"))?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => Err(anyhow!(
                "cannot reach botify at {url}: {err:#}; is the service running (e.g. `botify --port 5001`)? pass --url"
            )),
            Err(_) => Err(anyhow!("botify at {url} did not answer within {:?}", self.timeout)),
        }
    }

    /// Fails with a clear message unless the service answers `/health`.
    pub async fn check_reachable(&self) -> anyhow::Result<()> {
        let (status, body) = self
            .request(Method::GET, "/health", String::new(), None)
            .await?;
        if !status.is_success() {
            bail!(
                "botify at {} answered {status} to GET /health: {}",
                self.base,
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    }

    /// Asks the service to reload its models (admin API).
    pub async fn reload(&self, token: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .request(Method::POST, "/admin/reload", String::new(), Some(token))
            .await?;
        let body = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            bail!(
                "botify at {} refused to reload models ({status}): {body}",
                self.base
            );
        }
        Ok(body)
    }

    /// Tells botify of a released track (admin API); fails unless botify
    /// gives it the id the world did, which keeps both catalogs in step.
    pub async fn add_track(&self, token: &str, track: &Track) -> anyhow::Result<()> {
        let body = serde_json::to_string(track)?;
        let (status, answer) = self
            .request(Method::POST, "/admin/tracks", body, Some(token))
            .await?;
        if status != StatusCode::CREATED {
            bail!(
                "botify at {} refused released track {} ({status}): {}; is it serving the world's catalog, with --admin-token?",
                self.base,
                track.track,
                String::from_utf8_lossy(&answer)
            );
        }
        Ok(())
    }

    /// `POST /next/{user}` or `/last/{user}`; the recommended track for `/next`.
    async fn listen(
        &self,
        route: &str,
        user: u64,
        track: u32,
        time: f64,
        at: Option<u64>,
    ) -> anyhow::Result<Option<u32>> {
        let path = format!("/{route}/{user}");
        let body = format!("{{\"track\": {track}, \"time\": {time}}}");
        let (status, answer) = self
            .send(Method::POST, &path, body.clone(), None, at)
            .await?;
        if status != StatusCode::OK {
            bail!(
                "botify at {} answered {status} to POST {path} {body}: {}",
                self.base,
                String::from_utf8_lossy(&answer)
            );
        }
        if route == "last" {
            return Ok(None);
        }
        let parsed: serde_json::Value = serde_json::from_slice(&answer)
            .with_context(|| format!("botify answered POST {path} with invalid JSON"))?;
        let recommended = parsed["track"]
            .as_u64()
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| anyhow!("botify answered POST {path} without a track: {parsed}"))?;
        Ok(Some(recommended))
    }
}

/// A run that stopped early: how far it got, and why.
#[derive(Debug)]
pub struct Interrupted {
    pub completed: u64,
    pub partial: Summary,
    pub error: anyhow::Error,
}

/// Plays a day over HTTP with `concurrency` sessions in flight. Call from a
/// current-thread Tokio runtime. Visits (the dynamics) play their sessions
/// in order, stamped with the simulated clock; visits of different
/// listeners run side by side. Returns the summary and the visits' outcomes,
/// ordered by listener.
pub async fn run(
    world: &World,
    work: Work,
    botify: &Botify,
    concurrency: usize,
    progress: &ProgressBar,
) -> Result<(Summary, Vec<VisitOutcome>), Box<Interrupted>> {
    let started = Instant::now();
    let completed = Cell::new(0u64);
    let failure: RefCell<Option<anyhow::Error>> = RefCell::new(None);
    let (plan, fresh, visits) = match work {
        Work::Plan(plan) => (Some(plan), Fresh::NONE, Vec::new()),
        Work::Visits { visits, fresh } => (None, fresh, visits),
    };
    let next_offset = Cell::new(0u64);
    let visits = RefCell::new(visits.into_iter());
    let outcomes: RefCell<Vec<VisitOutcome>> = RefCell::new(Vec::new());
    let active_users: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());

    let worker = || async {
        let mut summary = Summary::new(true);
        while failure.borrow().is_none() {
            let result = if let Some(plan) = plan {
                let offset = next_offset.get();
                if offset >= plan.episodes {
                    break;
                }
                next_offset.set(offset + 1);
                let (mut session, _rng) = plan.start(world, offset);
                let user = session.user().user;
                // A user has at most one session at a time (docs/api.md#client-protocol).
                while !active_users.borrow_mut().insert(user) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let result = play(botify, &mut session, user, &mut None, &mut summary).await;
                active_users.borrow_mut().remove(&user);
                result.map(|()| {
                    summary.record_session(&session);
                    1
                })
            } else {
                let Some(visit) = visits.borrow_mut().next() else {
                    break;
                };
                play_visit(world, botify, visit, fresh, &mut summary)
                    .await
                    .map(|outcome| {
                        let sessions = outcome.rewards.len() as u64;
                        outcomes.borrow_mut().push(outcome);
                        sessions
                    })
            };
            match result {
                Ok(sessions) => {
                    completed.set(completed.get() + sessions);
                    progress.inc(sessions);
                }
                Err(err) => {
                    failure.borrow_mut().get_or_insert(err);
                    break;
                }
            }
        }
        summary
    };
    let summaries = futures_util::future::join_all((0..concurrency.max(1)).map(|_| worker())).await;
    let mut total = Summary::new(true);
    for s in &summaries {
        total.merge(s);
    }
    total.elapsed = started.elapsed();
    match failure.into_inner() {
        None => {
            let mut outcomes = outcomes.into_inner();
            outcomes.sort_unstable_by_key(|o| o.user_index);
            Ok((total, outcomes))
        }
        Some(error) => Err(Box::new(Interrupted {
            completed: completed.get(),
            partial: total,
            error,
        })),
    }
}

/// One listener's sessions of a day, in order, on the simulated clock.
async fn play_visit(
    world: &World,
    botify: &Botify,
    mut visit: Visit,
    fresh: Fresh,
    summary: &mut Summary,
) -> anyhow::Result<VisitOutcome> {
    while let Some((mut session, start)) = visit.next_session(world, fresh) {
        let user = session.user().user;
        let mut clock = Some(start);
        play(botify, &mut session, user, &mut clock, summary).await?;
        summary.record_session(&session);
        visit.finish_session(session, clock.expect("a simulated clock"));
    }
    Ok(visit.into_outcome())
}

/// One session: the client protocol of docs/api.md#client-protocol.
async fn play(
    botify: &Botify,
    session: &mut Session<'_>,
    user: u64,
    clock: &mut Option<u64>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let mut track = session.first_track();
    let mut time = crate::user_model::FIRST_TRACK_TIME;
    advance(clock, track, time);
    loop {
        let sent = Instant::now();
        let recommended = botify
            .listen("next", user, track, time, *clock)
            .await?
            .expect("/next answers a track");
        record_latency(summary, sent);
        if recommended as usize >= session.world().num_tracks() {
            bail!(
                "botify at {} recommended track {recommended}, which is not in the world ({} tracks); \
                 is it serving the same catalog (--catalog <world>/tracks.jsonl)?",
                botify.base(),
                session.world().num_tracks()
            );
        }
        time = session.listen(recommended);
        track = recommended;
        advance(clock, track, time);
        if session.is_over() {
            break;
        }
    }
    let sent = Instant::now();
    botify.listen("last", user, track, time, *clock).await?;
    record_latency(summary, sent);
    Ok(())
}

fn record_latency(summary: &mut Summary, sent: Instant) {
    summary.requests += 1;
    if let Some(h) = &mut summary.latency {
        h.saturating_record(sent.elapsed().as_micros() as u64);
    }
}
