//! The docker-compose topology without Docker: one real `redis-server` (or,
//! as the compose `cluster` profile, a real Redis Cluster of 3 masters and 3
//! replicas), two real `botify` processes and a real `nginx` running
//! `deploy/nginx.conf` (rewritten only where loopback differs from compose:
//! the upstream servers, the listen address, and pid/temp paths in a temp
//! folder), with the simulator's HTTP runner driving traffic through nginx.
//!
//! It checks what the deployment promises: nginx spreads a user's
//! consecutive requests over the replicas, every answer is logged by the
//! replica that served it, and the per-user memory state in the shared Redis
//! stays exact whichever replica serves each step.
//!
//! Needs `redis-server` and `nginx` (Debian packages; `scripts/test` installs
//! them) and the `botify` binary, which `cargo test --workspace` builds. The
//! processes, the loopback nginx.conf and the key layout come from testkit,
//! botify's Redis store and its memory recommender: nothing is copied here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use botify::catalog::{ArtistId, Catalog};
use botify::events::{Event, Message};
use botify::recommenders::{Memory, MemorySettings};
use botify::state::RedisStore;
use hyper::{Method, StatusCode};
use indicatif::ProgressBar;
use sim::runner::http::{run, Botify};
use sim::runner::{Plan, Work};
use sim::world::{generate, write_world, World, WorldParams};
use testkit::app::metric;
use testkit::binary::{botify_binary, botify_command};
use testkit::config::config_with_catalog;
use testkit::{free_port, nginx, read_events, Processes};

/// A user outside the simulated world, walked through one session by hand.
const WALKER: u64 = 900_000;
/// Listen times of the walk: likes, misses past the fail limit, a comeback.
const WALK_TIMES: [f64; 12] = [1.0, 0.9, 0.2, 0.1, 0.05, 0.0, 0.7, 0.3, 0.6, 1.0, 0.4, 0.8];
const WALK_LAST_TIME: f64 = 0.55;

/// Retries GET `path` until the answer contains `expect`; bounded.
async fn wait_until_serving(client: &Botify, path: &str, expect: &str, processes: &mut Processes) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok((StatusCode::OK, body)) =
            client.request(Method::GET, path, String::new(), None).await
        {
            if String::from_utf8_lossy(&body).contains(expect) {
                return;
            }
        }
        processes.assert_alive();
        assert!(
            Instant::now() < deadline,
            "{} never answered GET {path} with {expect}",
            client.base()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `POST /{route}/{user}` through nginx; the recommended track for `/next`.
async fn post(client: &Botify, route: &str, user: u64, track: u32, time: f64) -> Option<u32> {
    let body = format!("{{\"track\": {track}, \"time\": {time}}}");
    let (status, answer) = client
        .request(Method::POST, &format!("/{route}/{user}"), body, None)
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, StatusCode::OK, "POST /{route}/{user}: {answer}");
    answer["track"].as_u64().map(|t| t as u32)
}

/// The memory recommender's per-user state as the walk expects it.
struct Expected {
    /// The recommender's settings: the replicas serve `memory` with botify's
    /// defaults.
    settings: MemorySettings,
    /// The session's listens, oldest first, as Redis should hold them.
    listens: Vec<(u32, f64)>,
    /// Listens in a row that were not liked (derived by botify, not stored).
    misses: u32,
    /// Per artist: (sum of times, listens).
    artists: BTreeMap<ArtistId, (f64, u64)>,
    favourite: Option<(ArtistId, f64)>,
}

impl Expected {
    fn new(settings: MemorySettings) -> Expected {
        Expected {
            settings,
            listens: Vec::new(),
            misses: 0,
            artists: BTreeMap::new(),
            favourite: None,
        }
    }

    /// One listen, as docs/recommenders.md#favourite-artist describes the memory
    /// recommender's profile; the favourite follows the recommender's own rule.
    fn listen(&mut self, artist: ArtistId, track: u32, time: f64, end: bool) {
        let (sum, count) = self.artists.entry(artist).or_default();
        *sum += time;
        *count += 1;
        let mean = *sum / *count as f64;
        self.favourite = Some(Memory::favourite_after(self.favourite, artist, mean));
        if end {
            self.listens.clear();
            return;
        }
        self.listens.push((track, time));
        self.misses = if time >= self.settings.liked_threshold {
            0
        } else {
            self.misses + 1
        };
    }

    fn heard(&self, track: u32) -> bool {
        self.listens.iter().any(|&(t, _)| t == track)
    }
}

/// Where the replicas keep state.
enum Backend {
    Redis(u16),
    Cluster(testkit::RedisCluster),
}

impl Backend {
    fn url(&self) -> String {
        match self {
            Backend::Redis(port) => testkit::redis::url(*port),
            Backend::Cluster(cluster) => cluster.url(),
        }
    }

    fn connection(&self) -> Box<dyn redis::ConnectionLike> {
        match self {
            Backend::Redis(port) => Box::new(testkit::redis::connection(*port)),
            Backend::Cluster(cluster) => Box::new(cluster.connection()),
        }
    }
}

/// Compares the user's Redis keys, under `namespace`, with `expected`.
fn check_state(
    redis: &mut dyn redis::ConnectionLike,
    namespace: &str,
    user: u64,
    expected: &Expected,
    step: &str,
) {
    let listens = testkit::redis::session_listens(redis, namespace, user);
    assert_eq!(listens, expected.listens, "{step}: session");

    let profile = testkit::redis::profile(redis, namespace, user);
    for (&artist, (sum, count)) in &expected.artists {
        let n: u64 = profile[&RedisStore::count_field(artist)].parse().unwrap();
        let s: f64 = profile[&RedisStore::sum_field(artist)].parse().unwrap();
        assert_eq!(n, *count, "{step}: listens of artist {artist}: {profile:?}");
        assert!(
            (s - sum).abs() < 1e-9,
            "{step}: time of artist {artist}: {s} != {sum}"
        );
    }
    let counted = profile
        .keys()
        .filter(|k| k.starts_with(RedisStore::COUNT_FIELD_PREFIX))
        .count();
    assert_eq!(counted, expected.artists.len(), "{step}: {profile:?}");
    let (artist, mean) = expected.favourite.unwrap();
    let fav = RedisStore::decode_favourite(&profile[RedisStore::FAVOURITE_FIELD]).unwrap();
    assert_eq!(fav.0, artist, "{step}: fav {fav:?}");
    assert!(
        (fav.1 - mean).abs() < 1e-9,
        "{step}: fav {fav:?}, expected mean {mean}"
    );
}

#[test]
fn nginx_spreads_users_over_replicas_sharing_one_redis() {
    topology("one Redis", |processes| {
        Backend::Redis(testkit::redis::start_in(processes))
    });
}

#[test]
fn nginx_spreads_users_over_replicas_sharing_a_redis_cluster() {
    topology("a Redis Cluster", |_| {
        Backend::Cluster(testkit::RedisCluster::start())
    });
}

fn topology(name: &str, start_backend: impl FnOnce(&mut Processes) -> Backend) {
    let started = Instant::now();
    let botify_bin = botify_binary();
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();

    // A small world, as `sim world` would write it.
    let params = WorldParams {
        tracks: 2_000,
        users: 500,
        dim: 16,
        ..WorldParams::default()
    };
    let data = generate(&params, false).unwrap();
    let world_dir = tmp.join("world");
    write_world(&world_dir, &data, false).unwrap();
    let world = World::new(data).unwrap();
    let catalog = Catalog::load(&world_dir.join("tracks.jsonl")).unwrap();

    let mut processes = Processes::new();
    let backend = start_backend(&mut processes);

    // Every replica: the memory arm, state in the one Redis, its own log.
    let mut config = config_with_catalog(tmp, world_dir.join("tracks.jsonl"), &["memory"]);
    config.redis_url = Some(backend.url());
    config.redis_cluster = matches!(backend, Backend::Cluster(_));
    config.workers = Some(1);
    let namespace = config.redis_namespace.clone();
    let replicas = [("a", free_port()), ("b", free_port())];
    for (name, port) in replicas {
        let mut replica = config.clone();
        replica.port = port;
        replica.log_dir = tmp.join("log").join(name);
        processes.spawn(
            &format!("botify-{name}"),
            botify_command(&botify_bin, &replica).env("RUST_LOG", "warn"),
        );
    }

    let ports: Vec<u16> = replicas.iter().map(|(_, p)| *p).collect();
    let nginx_port = nginx::start_in(&mut processes, &nginx::deployed_conf(), &ports);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let through_nginx = Botify::new(&format!("http://127.0.0.1:{nginx_port}"), 8);
    let direct: Vec<Botify> = ports
        .iter()
        .map(|p| Botify::new(&format!("http://127.0.0.1:{p}"), 1))
        .collect();

    let (summary, walk_requests) = runtime.block_on(async {
        for replica in &direct {
            wait_until_serving(replica, "/health", "\"ok\"", &mut processes).await;
        }
        wait_until_serving(&through_nginx, "/health", "\"ok\"", &mut processes).await;

        // Simulated listeners through nginx.
        let plan = Plan {
            seed: 7,
            first: 0,
            episodes: 300,
        };
        let (summary, _) = run(
            &world,
            Work::Plan(plan),
            &through_nginx,
            8,
            &ProgressBar::hidden(),
        )
        .await
        .unwrap_or_else(|stopped| {
            panic!(
                "run through nginx stopped after {} sessions: {:#}",
                stopped.completed, stopped.error
            )
        });
        assert_eq!(summary.sessions(), 300);

        // One more listener, walked by hand, checking Redis after each step.
        let mut redis = backend.connection();
        let settings = MemorySettings::default();
        let fail_limit = settings.fail_limit;
        let mut expected = Expected::new(settings);
        let (mut track, mut max_fails) = (0, 0);
        for (step, &time) in WALK_TIMES.iter().enumerate() {
            let next = post(&through_nginx, "next", WALKER, track, time)
                .await
                .expect("/next answers a track");
            expected.listen(catalog.artist_of(track), track, time, false);
            let step = format!("step {step}");
            check_state(&mut *redis, &namespace, WALKER, &expected, &step);
            assert!(!expected.heard(next), "step {step}: repeated {next}");
            track = next;
            max_fails = max_fails.max(expected.misses);
        }
        assert!(max_fails > fail_limit, "the walk goes past the fail limit");
        post(&through_nginx, "last", WALKER, track, WALK_LAST_TIME).await;
        expected.listen(catalog.artist_of(track), track, WALK_LAST_TIME, true);
        check_state(&mut *redis, &namespace, WALKER, &expected, "after /last");
        (summary, WALK_TIMES.len() as u64 + 1)
    });

    // Each replica logs what it served; together, every answer (the writer
    // flushes within milliseconds once idle).
    let log_dir = |name: &str| tmp.join("log").join(name);
    let total = summary.requests + walk_requests;
    let deadline = Instant::now() + Duration::from_secs(5);
    let logs = loop {
        let logs: Vec<Vec<Event>> = replicas
            .iter()
            .map(|(name, _)| read_events(&log_dir(name)))
            .collect();
        let logged: usize = logs.iter().map(Vec::len).sum();
        if logged as u64 >= total || Instant::now() > deadline {
            assert_eq!(logged as u64, total, "events logged vs requests answered");
            break logs;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for ((name, _), events) in replicas.iter().zip(&logs) {
        assert!(
            events.len() as u64 > total / 5,
            "replica {name} served only {} of {total} requests",
            events.len()
        );
        assert!(
            events
                .iter()
                .all(|e| e.recommender.as_deref() == Some("memory")),
            "every event is served by memory"
        );
    }
    runtime.block_on(async {
        for (replica, (name, _)) in direct.iter().zip(&replicas) {
            let (_, body) = replica
                .request(Method::GET, "/metrics", String::new(), None)
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&body);
            let fallbacks = metric(
                &text,
                "botify_fallbacks_total{reason=\"state_unavailable\"}",
            );
            assert_eq!(fallbacks, 0.0, "replica {name} served without Redis");
        }
    });

    // A user's consecutive requests land on different replicas.
    let mut by_user: HashMap<u64, Vec<(u64, usize, &Event)>> = HashMap::new();
    for (replica, events) in logs.iter().enumerate() {
        for event in events {
            by_user
                .entry(event.user)
                .or_default()
                .push((event.timestamp, replica, event));
        }
    }
    let (mut pairs, mut switches) = (0, 0);
    for events in by_user.values_mut() {
        events.sort_by_key(|&(timestamp, _, _)| timestamp);
        for pair in events.windows(2) {
            pairs += 1;
            switches += usize::from(pair[0].1 != pair[1].1);
        }
    }
    assert!(
        pairs > 1_000 && switches * 5 > pairs,
        "only {switches} of {pairs} consecutive requests of a user changed replica"
    );
    let walker_replicas: BTreeSet<usize> = by_user[&WALKER].iter().map(|e| e.1).collect();
    assert_eq!(walker_replicas.len(), 2, "the walk used both replicas");

    // The shared state adds up: every session ended, and each user's
    // per-artist listen counts and times are exactly what both replicas
    // served them, whichever replica served each request.
    let mut redis = backend.connection();
    let sessions: Vec<String> = redis::cmd("KEYS")
        .arg(RedisStore::session_key(&namespace, "*"))
        .query(&mut *redis)
        .unwrap();
    assert!(sessions.is_empty(), "sessions left open: {sessions:?}");
    for (user, events) in &by_user {
        let mut artists: BTreeMap<ArtistId, (f64, u64)> = BTreeMap::new();
        for (_, _, event) in events {
            let (sum, count) = artists.entry(catalog.artist_of(event.track)).or_default();
            *sum += event.time;
            *count += 1;
        }
        let profile: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(RedisStore::profile_key(&namespace, user))
            .query(&mut *redis)
            .unwrap();
        for (&artist, (sum, count)) in &artists {
            let n: u64 = profile[&RedisStore::count_field(artist)].parse().unwrap();
            let s: f64 = profile[&RedisStore::sum_field(artist)].parse().unwrap();
            assert_eq!(n, *count, "user {user}, artist {artist}: {profile:?}");
            assert!((s - sum).abs() < 1e-6, "user {user}, artist {artist}");
        }
        let (fav, mean) =
            RedisStore::decode_favourite(&profile[RedisStore::FAVOURITE_FIELD]).unwrap();
        let (sum, count) = artists[&fav];
        assert!(
            (mean - sum / count as f64).abs() < 1e-6,
            "user {user}: favourite {fav} has mean {mean}, its listens say {}",
            sum / count as f64
        );
        let messages = events.iter().filter(|e| e.2.message == Message::Last);
        assert!(messages.count() >= 1, "user {user} never ended a session");
    }

    processes.assert_alive();
    drop(processes);
    eprintln!(
        "nginx topology on {name}: {} sessions, {total} requests over 2 replicas in {:.1}s",
        summary.sessions(),
        started.elapsed().as_secs_f64()
    );
}
