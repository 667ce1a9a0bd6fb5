//! State on a real Redis Cluster of 3 masters and 3 replicas
//! (`--redis-cluster`): a user's keys share one hash slot, the control plane
//! works across replicas, and traffic runs through a resharding, a master
//! failover and a master's crash without a 5xx, fallbacks counted, state
//! resuming afterwards.
//! One cluster for the whole test: starting one takes a few seconds.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use botify::config::Config;
use botify::state::RedisStore;
use redis::Commands;
use testkit::{read_events, test_config, RedisCluster, TestApp};

const TOKEN: &str = "s3cret";

/// Listeners playing sessions on `apps` in turn until `running` is false;
/// every answer must be a 200 (`next`/`last` assert it). Counts requests.
fn traffic(
    apps: Vec<Rc<TestApp>>,
    users: std::ops::Range<u64>,
    running: Rc<Cell<bool>>,
    requests: Rc<Cell<u64>>,
) -> actix_web::rt::task::JoinHandle<()> {
    actix_web::rt::spawn(async move {
        let mut turn = 0;
        while running.get() {
            for user in users.clone() {
                turn += 1;
                let app = &apps[turn % apps.len()];
                let mut track = (user % 200) as u32;
                for time in [1.0, 0.8, 0.1] {
                    track = app.next(user, track, time).await;
                }
                app.last(user, track, 0.6).await;
                requests.set(requests.get() + 4);
            }
        }
    })
}

/// Runs `operation` (blocking: redis-cli) on a thread while `apps` serve
/// traffic; returns the requests answered meanwhile.
async fn under_traffic(
    apps: &[Rc<TestApp>],
    users: std::ops::Range<u64>,
    operation: impl FnOnce() + Send + 'static,
) -> u64 {
    let running = Rc::new(Cell::new(true));
    let requests = Rc::new(Cell::new(0));
    let run = traffic(apps.to_vec(), users, running.clone(), requests.clone());
    let done = tokio::task::spawn_blocking(operation);
    // Let traffic run before, during and after the operation.
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.set(false);
    run.await.unwrap();
    requests.get()
}

/// A fresh user's session, step by step: the state store must hold every
/// listen (no fallback) — state resumed.
async fn state_is_used(app: &TestApp, cluster: &RedisCluster, namespace: &str, user: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut track = 0;
        for _ in 0..3 {
            track = app.next(user, track, 0.9).await;
        }
        let listens: Vec<String> = cluster
            .connection()
            .lrange(RedisStore::session_key(namespace, user), 0, -1)
            .unwrap();
        app.last(user, track, 0.5).await;
        if listens.len() == 3 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "state never resumed: user {user} has {listens:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `botify_fallbacks_total{reason}` summed over `apps`.
async fn fallbacks(apps: &[Rc<TestApp>], reason: &str) -> f64 {
    let mut total = 0.0;
    for app in apps {
        total += app
            .metric(&format!("botify_fallbacks_total{{reason=\"{reason}\"}}"))
            .await;
    }
    total
}

#[actix_web::test]
async fn botify_keeps_serving_a_redis_cluster_through_resharding_and_failover() {
    let cluster = Arc::new(RedisCluster::start());
    let dir = tempfile::tempdir().unwrap();
    let mut config: Config = test_config(dir.path(), &["memory"]);
    config.redis_url = Some(cluster.url());
    config.redis_cluster = true;
    config.admin_token = Some(TOKEN.into());
    let namespace = config.redis_namespace.clone();
    let replica = |name: &str| {
        let mut replica = config.clone();
        replica.log_dir = config.log_dir.join(name);
        replica
    };
    let apps = vec![
        Rc::new(TestApp::spawn(&replica("one")).await),
        Rc::new(TestApp::spawn(&replica("two")).await),
    ];
    let (_, health) = apps[0].get("/health").await;
    assert_eq!(health["state_store"]["reachable"], true, "{health}");

    // One user's keys sit in one slot: a request is one pipeline to one node.
    state_is_used(&apps[0], &cluster, &namespace, 1_000_000).await;
    apps[0].next(1_000_001, 0, 1.0).await;
    let mut conn = cluster.connection();
    let slot = |key: String, conn: &mut redis::cluster::ClusterConnection| -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(conn)
            .unwrap()
    };
    for user in [1_000_000u64, 1_000_001, 42] {
        assert_eq!(
            slot(RedisStore::session_key(&namespace, user), &mut conn),
            slot(RedisStore::profile_key(&namespace, user), &mut conn),
            "user {user}"
        );
    }

    // The control plane lives in the cluster too.
    let (status, _) = apps[0]
        .put_filters(TOKEN, r#"{"blocked_artists": ["artist3"]}"#)
        .await;
    assert_eq!(status, 200);
    let started = Instant::now();
    while apps[1].get("/health").await.1["control_plane"]["version"] != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "two never followed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Resharding: a third of the slots move while listeners listen.
    let masters = cluster.masters();
    let (from, to) = (masters[0].id.clone(), masters[1].id.clone());
    let resharding = cluster.clone();
    let during_reshard =
        under_traffic(&apps, 0..60, move || resharding.reshard(&from, &to, 2_000)).await;
    assert!(during_reshard > 0, "traffic ran during the resharding");
    let after_reshard = cluster.masters();
    assert!(
        after_reshard.iter().any(|m| m.slots >= 5_461 + 2_000),
        "the slots moved: {after_reshard:?}"
    );
    state_is_used(&apps[1], &cluster, &namespace, 1_000_002).await;

    // Failover: a master's replica takes over while listeners listen.
    let master = cluster.masters()[0].clone();
    let failing = cluster.clone();
    let during_failover = under_traffic(&apps, 100..160, move || {
        failing.failover(&master.id);
    })
    .await;
    assert!(during_failover > 0, "traffic ran during the failover");
    state_is_used(&apps[0], &cluster, &namespace, 1_000_003).await;
    state_is_used(&apps[1], &cluster, &namespace, 1_000_004).await;

    // A master crashes: its slots are unavailable until its replica is
    // elected; meanwhile requests are answered statelessly and counted.
    let before_crash = fallbacks(&apps, "state_unavailable").await;
    let crashed = cluster.masters()[1].port;
    let crashing = cluster.clone();
    let during_crash = under_traffic(&apps, 200..260, move || {
        crashing.kill(crashed);
        crashing.wait_ok();
    })
    .await;
    let after_crash = fallbacks(&apps, "state_unavailable").await;
    assert!(
        after_crash > before_crash,
        "requests to the crashed master's slots fell back and were counted"
    );
    state_is_used(&apps[0], &cluster, &namespace, 1_000_005).await;
    state_is_used(&apps[1], &cluster, &namespace, 1_000_006).await;

    // Every fallback answer was counted: a logged fallback is a state
    // fallback, a recommender without candidate, or both.
    let unavailable = fallbacks(&apps, "state_unavailable").await;
    let no_candidate = fallbacks(&apps, "no_candidate").await;
    let apps: Vec<TestApp> = apps
        .into_iter()
        .map(|app| Rc::try_unwrap(app).ok().expect("traffic stopped"))
        .collect();
    for app in apps {
        app.stop().await;
    }
    let mut events = read_events(&config.log_dir.join("one"));
    events.extend(read_events(&config.log_dir.join("two")));
    let logged = events.iter().filter(|e| e.fallback).count() as f64;
    assert!(
        unavailable <= logged && logged <= unavailable + no_candidate,
        "{logged} fallback answers logged; counted {unavailable} without state, {no_candidate} without candidate"
    );
    assert!(
        events
            .iter()
            .all(|e| e.recommender.as_deref() == Some("memory")),
        "every answer came from the memory arm"
    );
    eprintln!(
        "cluster: {during_reshard} requests during the resharding, {during_failover} during the \
         failover, {during_crash} during a master's crash, all 200; {unavailable} served \
         without state, {logged} fallbacks logged"
    );
}
