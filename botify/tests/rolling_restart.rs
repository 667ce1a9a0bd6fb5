//! A rolling restart loses no listener and no listen: two botify replicas
//! behind the deployed `deploy/nginx.conf`, sharing one real Redis, are
//! restarted in turn (SIGTERM, drain, exit, start again, `/ready`) while
//! clients keep sending `/next` through nginx. Every request must answer
//! 200, and every answer must be in exactly one replica's event log.
//!
//! Needs `redis-server` and `nginx` (Debian packages; `scripts/test`
//! installs them).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use botify::config::Config;
use futures_util::future::join_all;
use testkit::app::metric;
use testkit::binary::botify_command;
use testkit::{free_port, nginx, read_events, test_config, Process, Processes};

/// Seconds a stopping replica serves while not ready: nginx does not read
/// `/ready`, so here the drain only has to outlast nothing; it is kept short
/// but non-zero so traffic does reach draining replicas.
const DRAIN_SECS: u64 = 2;
/// Clients sending `/next` through nginx at once, each for its own users.
const CLIENTS: u64 = 8;
const USERS_PER_CLIENT: u64 = 25;

/// One answered listen, as the client saw it and the event log must hold
/// it: (user, track listened, track recommended).
type Listen = (u64, u32, u32);

/// What the clients saw: answered listens, and every other outcome.
#[derive(Default)]
struct Seen {
    answered: BTreeMap<Listen, usize>,
    failures: Vec<String>,
}

fn botify_exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_botify"))
}

/// Starts replica `name` (the `generation`-th process serving it) and
/// returns once its `/ready` answers 200.
async fn start_replica(
    processes: &mut Processes,
    config: &Config,
    generation: u32,
    client: &awc::Client,
) -> String {
    let name = format!("botify-{}-{generation}", config.port);
    processes.spawn(
        &name,
        botify_command(botify_exe(), config).env("RUST_LOG", "warn"),
    );
    let ready = format!("http://127.0.0.1:{}/ready", config.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = client.get(&ready).send().await {
            if response.status() == 200 {
                return name;
            }
        }
        processes.get_mut(&name).unwrap().assert_alive();
        assert!(Instant::now() < deadline, "{name} never became ready");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// SIGTERM, then waits (without blocking the clients on this thread) for
/// a clean exit; the drain must have lasted its delay.
async fn stop_replica(process: &mut Process) {
    process.terminate();
    let signalled = Instant::now();
    let exit = loop {
        if let Some(exit) = process.exit_status() {
            break exit;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(DRAIN_SECS + 15),
            "{} did not stop",
            process.name()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{} exited with {exit}", process.name());
    assert!(signalled.elapsed() >= Duration::from_secs(DRAIN_SECS));
}

/// `/next` answers 200 that `port` served (from its `/metrics`).
async fn served_next(client: &awc::Client, port: u16) -> f64 {
    let Ok(mut response) = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
    else {
        return 0.0;
    };
    let body = response.body().await.unwrap_or_default();
    metric(
        &String::from_utf8_lossy(&body),
        "botify_http_requests_total{route=\"/next/{user}\",status=\"200\"}",
    )
}

/// One client: sequential `/next` requests for its users, round robin,
/// each sending the track it was last recommended, until `running` ends.
async fn client_loop(id: u64, base: String, running: Rc<Cell<bool>>, seen: Rc<RefCell<Seen>>) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let mut tracks: BTreeMap<u64, u32> = BTreeMap::new();
    let mut i = 0;
    while running.get() {
        let user = id * 1_000 + i % USERS_PER_CLIENT;
        i += 1;
        let track = *tracks.entry(user).or_insert((user % 200) as u32);
        let sent = client
            .post(format!("{base}/next/{user}"))
            .send_body(format!("{{\"track\": {track}, \"time\": 0.5}}"))
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(err) => {
                seen.borrow_mut()
                    .failures
                    .push(format!("/next/{user}: {err}"));
                continue;
            }
        };
        let body = response.body().await.unwrap_or_default();
        let answer: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let recommended = answer.as_ref().and_then(|a| a["track"].as_u64());
        match (response.status().as_u16(), recommended) {
            (200, Some(next)) => {
                *seen
                    .borrow_mut()
                    .answered
                    .entry((user, track, next as u32))
                    .or_default() += 1;
                tracks.insert(user, next as u32);
            }
            (status, _) => seen.borrow_mut().failures.push(format!(
                "/next/{user}: {status} {}",
                String::from_utf8_lossy(&body)
            )),
        }
    }
}

#[actix_web::test]
async fn restarting_each_replica_in_turn_loses_no_request_and_no_event() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let mut processes = Processes::new();
    let redis_port = testkit::redis::start_in(&mut processes);

    let mut config = test_config(tmp.path(), &["random", "sticky_artist"]);
    config.redis_url = Some(testkit::redis::url(redis_port));
    config.drain_secs = DRAIN_SECS;
    let replicas: Vec<Config> = ["a", "b"]
        .iter()
        .map(|name| {
            let mut replica = config.clone();
            replica.port = free_port();
            replica.log_dir = tmp.path().join("log").join(name);
            replica
        })
        .collect();
    let probe = awc::Client::default();
    let mut names = Vec::new();
    for replica in &replicas {
        names.push(start_replica(&mut processes, replica, 0, &probe).await);
    }
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let nginx_port = nginx::start_in(&mut processes, &nginx::deployed_conf(), &ports);
    let base = format!("http://127.0.0.1:{nginx_port}");

    let running = Rc::new(Cell::new(true));
    let seen = Rc::new(RefCell::new(Seen::default()));
    let clients = join_all(
        (0..CLIENTS).map(|id| client_loop(id, base.clone(), running.clone(), seen.clone())),
    );
    let restarts = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut timeline = Vec::new();
        for (replica, name) in replicas.iter().zip(&mut names) {
            let before = seen.borrow().answered.values().sum::<usize>();
            stop_replica(processes.get_mut(name).unwrap()).await;
            *name = start_replica(&mut processes, replica, 1, &probe).await;
            // Back in nginx's rotation (after fail_timeout) before the next
            // replica leaves, as a rolling update waits for readiness.
            let deadline = Instant::now() + Duration::from_secs(10);
            while served_next(&probe, replica.port).await < 10.0 {
                assert!(Instant::now() < deadline, "{name} never got traffic again");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let during = seen.borrow().answered.values().sum::<usize>() - before;
            timeline.push(format!("{name}: {during} answers while it restarted"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        running.set(false);
        timeline
    };
    let (_, timeline) = tokio::join!(clients, restarts);

    // Every replica stops cleanly, flushing its log, before the logs are read.
    for name in &names {
        stop_replica(processes.get_mut(name).unwrap()).await;
    }
    let seen = seen.take();
    let answered: usize = seen.answered.values().sum();
    let mut logged: BTreeMap<Listen, usize> = BTreeMap::new();
    let log_dirs: Vec<PathBuf> = replicas.iter().map(|r| r.log_dir.clone()).collect();
    for dir in &log_dirs {
        for event in read_events(dir) {
            let recommended = event.recommendation.expect("/next events recommend");
            *logged
                .entry((event.user, event.track, recommended))
                .or_default() += 1;
        }
    }
    // Lost: answers without their line. Extra: lines of no 200 answer (a
    // request served but whose answer never reached the client).
    let lost: usize = seen
        .answered
        .iter()
        .map(|(listen, &n)| n.saturating_sub(logged.get(listen).copied().unwrap_or(0)))
        .sum();
    let extra = logged.values().sum::<usize>() + lost - answered;
    eprintln!(
        "rolling restart of 2 replicas behind nginx: {answered} /next answered, {} non-200, \
         {lost} events lost, {extra} extra ({}) in {:.1}s",
        seen.failures.len(),
        timeline.join("; "),
        started.elapsed().as_secs_f64()
    );
    assert!(
        seen.failures.is_empty(),
        "{} of {} requests failed during the rolling restart, first: {:?}",
        seen.failures.len(),
        answered + seen.failures.len(),
        &seen.failures[..seen.failures.len().min(5)]
    );
    assert_eq!((lost, extra), (0, 0), "answers not logged exactly once");
    assert!(
        answered > 1_000,
        "only {answered} answers: the load was too light"
    );
}
