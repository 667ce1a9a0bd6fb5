//! A Redis Cluster master crashes under load and costs only the listeners
//! whose keys it holds: botify keeps one circuit per master, so while one
//! master of three is down at most 40% of requests get the stateless
//! fallback, every request is still answered 200 within 300 ms, and within
//! 2 s of its replica's promotion every listener is served from state again.
//!
//! A real cluster of 3 masters and 3 replicas (`testkit::RedisCluster`,
//! node timeout 1 s); clients keep sending `/next` and `/last` for their
//! listeners while a master is SIGKILLed. Which answers were served from
//! state is read from the event log (`fallback`), when from its timestamps.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use botify::config::Config;
use botify::redis_link::topology;
use botify::state::RedisStore;
use futures_util::future::join_all;
use testkit::{read_events, test_config, RedisCluster, TestApp};

const CLIENTS: u64 = 8;
const USERS_PER_CLIENT: u64 = 30;
/// The bars.
const MAX_FALLBACK_SHARE: f64 = 0.40;
const MAX_LATENCY: Duration = Duration::from_millis(300);
const RECOVERY: Duration = Duration::from_secs(2);
/// Load keeps running this long after the promotion, past [`RECOVERY`].
const AFTER_PROMOTION: Duration = Duration::from_secs(4);

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// What the clients saw: every answer's status and the worst latency.
#[derive(Default)]
struct Seen {
    requests: u64,
    not_ok: Vec<String>,
    worst: Duration,
}

/// One client: sessions of three `/next` and a `/last` for each of its
/// listeners in turn, until `running` ends.
async fn client_loop(id: u64, app: Rc<TestApp>, running: Rc<Cell<bool>>, seen: Rc<RefCell<Seen>>) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish();
    while running.get() {
        for user in users_of(id) {
            let mut track = (user % 200) as u32;
            for (route, time) in [("next", 1.0), ("next", 0.8), ("next", 0.1), ("last", 0.6)] {
                let started = Instant::now();
                let response = client
                    .post(format!("{}/{route}/{user}", app.base))
                    .insert_header(("content-type", "application/json"))
                    .send_body(format!("{{\"track\": {track}, \"time\": {time}}}"))
                    .await;
                let outcome = match response {
                    Ok(mut response) if response.status() == 200 => {
                        let took = started.elapsed();
                        let body: serde_json::Value = response.json().await.unwrap_or_default();
                        if let Some(next) = body["track"].as_u64() {
                            track = next as u32;
                        }
                        Ok(took)
                    }
                    Ok(response) => Err(format!("{route} {user}: {}", response.status())),
                    Err(err) => Err(format!("{route} {user}: {err}")),
                };
                let mut seen = seen.borrow_mut();
                seen.requests += 1;
                match outcome {
                    Ok(took) => seen.worst = seen.worst.max(took),
                    Err(failure) => seen.not_ok.push(failure),
                }
            }
            if !running.get() {
                break;
            }
        }
    }
}

fn users_of(client: u64) -> std::ops::Range<u64> {
    client * USERS_PER_CLIENT..(client + 1) * USERS_PER_CLIENT
}

/// The listeners whose keys the master on `port` holds.
fn listeners_on(port: u16, namespace: &str) -> BTreeSet<u64> {
    let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .and_then(|c| c.get_connection())
        .unwrap();
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut conn).unwrap();
    let master = topology::masters(&nodes)
        .into_iter()
        .find(|m| m.port == port)
        .expect("the master is listed");
    (0..CLIENTS * USERS_PER_CLIENT)
        .filter(|&user| {
            let slot = topology::slot(RedisStore::session_key(namespace, user).as_bytes());
            master
                .slots
                .iter()
                .any(|&(first, last)| (first as usize..=last as usize).contains(&slot))
        })
        .collect()
}

#[actix_web::test]
async fn a_dead_master_costs_only_its_listeners_until_its_replica_takes_over() {
    let cluster = std::sync::Arc::new(RedisCluster::start());
    let dir = tempfile::tempdir().unwrap();
    let mut config: Config = test_config(dir.path(), &["memory"]);
    config.redis_url = Some(cluster.url());
    config.redis_cluster = true;
    let namespace = config.redis_namespace.clone();
    let app = Rc::new(TestApp::spawn(&config).await);

    let running = Rc::new(Cell::new(true));
    let seen = Rc::new(RefCell::new(Seen::default()));
    let clients = join_all(
        (0..CLIENTS).map(|id| client_loop(id, app.clone(), running.clone(), seen.clone())),
    );
    let clients = actix_web::rt::spawn(clients);
    // Every listener has state before the crash.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let victim = cluster.masters()[0].clone();
    let replica = cluster.replica_of(&victim.id);
    let on_victim = listeners_on(victim.port, &namespace);
    let killed_at = epoch_ms();
    let (promoted_at, promotion_seen) = {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || {
            cluster.kill(victim.port);
            let seen = cluster.wait_promoted(&replica.id, Duration::from_millis(20));
            (epoch_ms() - seen.elapsed().as_millis() as u64, seen)
        })
        .await
        .unwrap()
    };
    while promotion_seen.elapsed() < AFTER_PROMOTION {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.set(false);
    clients.await.unwrap();
    let unavailable = app
        .metric("botify_fallbacks_total{reason=\"state_unavailable\"}")
        .await;
    let no_candidate = app
        .metric("botify_fallbacks_total{reason=\"no_candidate\"}")
        .await;
    let opened = app.metric("botify_state_circuit_opened_total").await;
    Rc::try_unwrap(app)
        .ok()
        .expect("clients stopped")
        .stop()
        .await;

    let seen = Rc::try_unwrap(seen).ok().unwrap().into_inner();
    assert!(
        seen.not_ok.is_empty(),
        "not all answered 200: {:?}",
        seen.not_ok
    );
    assert!(
        seen.worst <= MAX_LATENCY,
        "the slowest answer took {:?}",
        seen.worst
    );

    let events = read_events(&config.log_dir);
    assert_eq!(events.len() as u64, seen.requests, "every answer is logged");
    assert_eq!(no_candidate, 0.0, "memory always has a candidate here");
    let fallbacks = events.iter().filter(|e| e.fallback).count() as f64;
    assert_eq!(
        fallbacks, unavailable,
        "every fallback is counted in /metrics"
    );
    assert!(opened >= 1.0, "the dead master's circuit opened");

    // While the master was down: only a share of the requests fell back,
    // and only those of its own listeners.
    let outage: Vec<_> = events
        .iter()
        .filter(|e| (killed_at..promoted_at).contains(&e.timestamp))
        .collect();
    let outage_fallbacks: Vec<_> = outage.iter().filter(|e| e.fallback).collect();
    let share = outage_fallbacks.len() as f64 / outage.len() as f64;
    let strays: BTreeSet<u64> = outage_fallbacks
        .iter()
        .map(|e| e.user)
        .filter(|user| !on_victim.contains(user))
        .collect();
    assert!(!outage.is_empty(), "traffic ran during the outage");
    assert!(
        outage_fallbacks.iter().any(|e| on_victim.contains(&e.user)),
        "the dead master's listeners fell back"
    );
    assert!(
        share <= MAX_FALLBACK_SHARE,
        "{share:.3} of requests fell back while the master was down"
    );
    assert!(
        strays.is_empty(),
        "listeners of live masters fell back: {strays:?}"
    );

    // Within RECOVERY of the promotion, everyone is served from state.
    let recovered_by = promoted_at + RECOVERY.as_millis() as u64;
    let mut served_after: BTreeMap<u64, usize> = BTreeMap::new();
    for event in events.iter().filter(|e| e.timestamp >= recovered_by) {
        assert!(
            !event.fallback,
            "user {} fell back {} ms after the promotion",
            event.user,
            event.timestamp - promoted_at
        );
        *served_after.entry(event.user).or_default() += 1;
    }
    assert_eq!(
        served_after.len() as u64,
        CLIENTS * USERS_PER_CLIENT,
        "every listener was served after recovery"
    );
    let recovery = events
        .iter()
        .filter(|e| e.fallback)
        .map(|e| e.timestamp.saturating_sub(promoted_at) as i64)
        .max()
        .unwrap_or(0);
    eprintln!(
        "master kill: {} requests, all 200, worst {:?}; outage {} ms, {} requests, fallback share \
         {share:.3} ({} of {} listeners on the dead master); last fallback {recovery} ms after \
         the promotion",
        seen.requests,
        seen.worst,
        promoted_at - killed_at,
        outage.len(),
        on_victim.len(),
        CLIENTS * USERS_PER_CLIENT,
    );
}
