//! The docker-compose topology without Docker: one real `redis-server`, two
//! real `botify` processes and a real `nginx` running `deploy/nginx.conf`
//! (rewritten only where loopback differs from compose: the upstream servers,
//! the listen address, and pid/temp paths in a temp folder), with the
//! simulator's HTTP runner driving traffic through nginx.
//!
//! It checks what the deployment promises: nginx spreads a user's
//! consecutive requests over the replicas, every answer is logged by the
//! replica that served it, and the per-user memory state in the shared Redis
//! stays exact whichever replica serves each step.
//!
//! Needs `redis-server` and `nginx` (Debian packages; `scripts/test` installs
//! them) and the `botify` binary, which `cargo test --workspace` builds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use botify::catalog::Catalog;
use botify::events::{Event, Message};
use hyper::{Method, StatusCode};
use indicatif::ProgressBar;
use redis::Commands;
use sim::runner::http::{run, Botify};
use sim::runner::Plan;
use sim::world::{generate, write_world, World, WorldParams};

/// A user outside the simulated world, walked through one session by hand.
const WALKER: u64 = 900_000;
/// Listen times of the walk: likes, misses past the fail limit, a comeback.
const WALK_TIMES: [f64; 12] = [1.0, 0.9, 0.2, 0.1, 0.05, 0.0, 0.7, 0.3, 0.6, 1.0, 0.4, 0.8];
const WALK_LAST_TIME: f64 = 0.55;
/// The memory recommender's defaults (botify `MemorySettings`).
const LIKED: f64 = 0.5;
const FAIL_LIMIT: u32 = 2;

/// Child processes, stopped in reverse start order on drop (also when the
/// test panics): SIGTERM, a bounded wait, then SIGKILL.
struct Processes {
    dir: PathBuf,
    children: Vec<(String, Child)>,
}

impl Processes {
    /// Starts `command` with stdout/stderr in `<dir>/<name>.log`.
    fn spawn(&mut self, name: &str, command: &mut Command) {
        let log = fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        self.children.push((name.to_string(), child));
    }

    /// What a process printed, for failure messages.
    fn output(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Panics unless every process is still running.
    fn assert_alive(&mut self) {
        let mut dead = Vec::new();
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                dead.push(format!("{name} exited with {status}"));
            }
        }
        if !dead.is_empty() {
            let outputs: Vec<String> = self
                .children
                .iter()
                .map(|(name, _)| format!("--- {name}:\n{}", self.output(name)))
                .collect();
            panic!("{}\n{}", dead.join("; "), outputs.join("\n"));
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        while let Some((_, mut child)) = self.children.pop() {
            if let Ok(None) = child.try_wait() {
                // SIGTERM: nginx's master stops its workers (a SIGKILLed
                // master would leave them running), botify flushes its log.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(5);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn newest_mtime(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let time = if path.is_dir() {
            newest_mtime(&path)
        } else if path.extension().is_some_and(|e| e == "rs") {
            fs::metadata(&path).unwrap().modified().unwrap()
        } else {
            continue;
        };
        newest = newest.max(time);
    }
    newest
}

/// `target/<profile>/botify`, next to this test's `target/<profile>/deps/`.
fn botify_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is in target/<profile>/deps");
    let binary = profile_dir.join(format!("botify{}", std::env::consts::EXE_SUFFIX));
    let built = fs::metadata(&binary)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "no botify binary at {}: run `cargo build -p botify` (or `cargo test --workspace`, which builds it)",
                binary.display()
            )
        });
    let sources = newest_mtime(&repo_root().join("botify/src"));
    assert!(
        built >= sources,
        "the botify binary at {} is older than botify/src: run `cargo build -p botify` (or `cargo test --workspace`)",
        binary.display()
    );
    binary
}

fn nginx_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nginx"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    on_path
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
        .expect("nginx must be installed (Debian package `nginx`; scripts/test installs it)")
}

/// `deploy/nginx.conf` as run on loopback: the upstream's servers become the
/// two replicas, `listen 5001` a loopback port, and nginx's temp files go to
/// `tmp`. Everything else is the deployed file, line for line.
fn loopback_nginx_conf(conf: &str, replicas: &[u16], listen: u16, tmp: &Path) -> String {
    let mut out = Vec::new();
    let (mut in_upstream, mut servers, mut listens, mut http) = (false, 0, 0, 0);
    for line in conf.lines() {
        let trimmed = line.trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        if trimmed.starts_with("upstream botify") {
            in_upstream = true;
        } else if in_upstream && trimmed == "}" {
            in_upstream = false;
        }
        if in_upstream && trimmed.starts_with("server ") {
            if servers == 0 {
                for port in replicas {
                    out.push(format!("{indent}server 127.0.0.1:{port};"));
                }
            }
            servers += 1;
        } else if trimmed == "listen 5001;" {
            out.push(format!("{indent}listen 127.0.0.1:{listen};"));
            listens += 1;
        } else {
            out.push(line.to_string());
            if trimmed == "http {" {
                http += 1;
                for what in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
                    let path = tmp.join(what);
                    out.push(format!("    {what}_temp_path {};", path.display()));
                }
            }
        }
    }
    assert!(
        servers >= 1 && listens == 1 && http == 1,
        "deploy/nginx.conf changed shape: the test expects one `http {{` block, an \
         `upstream botify {{ server ...; }}` and one `listen 5001;` (found {servers} servers, \
         {listens} listens, {http} http blocks)"
    );
    out.join("\n") + "\n"
}

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

/// Every event in a replica's log folder.
fn read_events(dir: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            events.push(serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("not an event log line ({e}): {line}");
            }));
        }
    }
    events
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The memory recommender's per-user state as the walk expects it.
#[derive(Default)]
struct Expected {
    /// The session's listens, oldest first, as Redis should hold them.
    listens: Vec<(u32, f64)>,
    /// Listens in a row that were not liked (derived by botify, not stored).
    misses: u32,
    /// Per artist: (sum of times, listens).
    artists: BTreeMap<u32, (f64, u64)>,
    favourite: Option<(u32, f64)>,
}

impl Expected {
    /// One listen, as DESIGN §8 describes the memory recommender.
    fn listen(&mut self, artist: u32, track: u32, time: f64, end: bool) {
        let (sum, count) = self.artists.entry(artist).or_default();
        *sum += time;
        *count += 1;
        let mean = *sum / *count as f64;
        self.favourite = match self.favourite {
            Some((f, _)) if f == artist => Some((artist, mean)),
            Some((_, best)) if best >= mean => self.favourite,
            _ => Some((artist, mean)),
        };
        if end {
            self.listens.clear();
            return;
        }
        self.listens.push((track, time));
        self.misses = if time >= LIKED { 0 } else { self.misses + 1 };
    }

    fn heard(&self, track: u32) -> bool {
        self.listens.iter().any(|&(t, _)| t == track)
    }
}

/// Compares the user's Redis keys with `expected`.
fn check_state(redis: &mut redis::Connection, user: u64, expected: &Expected, step: &str) {
    let entries: Vec<String> = redis
        .lrange(format!("botify:user:{user}:session"), 0, -1)
        .unwrap();
    let listens: Vec<(u32, f64)> = entries
        .iter()
        .map(|e| {
            let (track, time) = e.split_once(' ').unwrap();
            (track.parse().unwrap(), time.parse().unwrap())
        })
        .collect();
    assert_eq!(listens, expected.listens, "{step}: session {entries:?}");

    let profile: HashMap<String, String> = redis
        .hgetall(format!("botify:user:{user}:profile"))
        .unwrap();
    for (artist, (sum, count)) in &expected.artists {
        let n: u64 = profile[&format!("n:{artist}")].parse().unwrap();
        let s: f64 = profile[&format!("s:{artist}")].parse().unwrap();
        assert_eq!(n, *count, "{step}: listens of artist {artist}: {profile:?}");
        assert!(
            (s - sum).abs() < 1e-9,
            "{step}: time of artist {artist}: {s} != {sum}"
        );
    }
    let counted = profile.keys().filter(|k| k.starts_with("n:")).count();
    assert_eq!(counted, expected.artists.len(), "{step}: {profile:?}");
    let (artist, mean) = expected.favourite.unwrap();
    let fav = profile["fav"].split_once(' ').unwrap();
    assert_eq!(fav.0.parse::<u32>().unwrap(), artist, "{step}: fav {fav:?}");
    assert!(
        (fav.1.parse::<f64>().unwrap() - mean).abs() < 1e-9,
        "{step}: fav {fav:?}, expected mean {mean}"
    );
}

#[test]
fn nginx_spreads_users_over_replicas_sharing_one_redis() {
    let started = Instant::now();
    let botify_bin = botify_binary();
    let nginx_bin = nginx_binary();
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
    let experiments = tmp.join("experiments.toml");
    fs::write(
        &experiments,
        "active = \"NGINX\"\n[[experiment]]\nname = \"NGINX\"\narms = [\"memory\"]\n",
    )
    .unwrap();

    let mut processes = Processes {
        dir: tmp.to_path_buf(),
        children: Vec::new(),
    };
    let redis_port = free_port();
    processes.spawn(
        "redis",
        Command::new("redis-server")
            .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"]),
    );
    let redis_url = format!("redis://127.0.0.1:{redis_port}/");

    let replicas = [("a", free_port()), ("b", free_port())];
    for (name, port) in replicas {
        processes.spawn(
            &format!("botify-{name}"),
            Command::new(&botify_bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .arg("--catalog")
                .arg(world_dir.join("tracks.jsonl"))
                .arg("--experiments")
                .arg(&experiments)
                .arg("--models")
                .arg(tmp.join("models"))
                .arg("--log-dir")
                .arg(tmp.join("log").join(name))
                .args(["--redis-url", &redis_url, "--workers", "1"])
                .env("RUST_LOG", "warn"),
        );
    }

    let nginx_port = free_port();
    let deployed = fs::read_to_string(repo_root().join("deploy/nginx.conf")).unwrap();
    let ports: Vec<u16> = replicas.iter().map(|(_, p)| *p).collect();
    let conf = tmp.join("nginx.conf");
    fs::write(
        &conf,
        loopback_nginx_conf(&deployed, &ports, nginx_port, tmp),
    )
    .unwrap();
    processes.spawn(
        "nginx",
        Command::new(&nginx_bin)
            .arg("-p")
            .arg(tmp)
            .arg("-c")
            .arg(&conf)
            .args(["-e", "stderr", "-g"])
            .arg(format!(
                "daemon off; pid {};",
                tmp.join("nginx.pid").display()
            )),
    );

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
        let summary = run(&world, plan, &through_nginx, 8, &ProgressBar::hidden())
            .await
            .unwrap_or_else(|stopped| {
                panic!(
                    "run through nginx stopped after {} sessions: {:#}",
                    stopped.completed, stopped.error
                )
            });
        assert_eq!(summary.sessions(), 300);

        // One more listener, walked by hand, checking Redis after each step.
        let mut redis = redis::Client::open(redis_url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let mut expected = Expected::default();
        let (mut track, mut max_fails) = (0, 0);
        for (step, &time) in WALK_TIMES.iter().enumerate() {
            let next = post(&through_nginx, "next", WALKER, track, time)
                .await
                .expect("/next answers a track");
            expected.listen(catalog.artist_of(track), track, time, false);
            check_state(&mut redis, WALKER, &expected, &format!("step {step}"));
            assert!(!expected.heard(next), "step {step}: repeated {next}");
            track = next;
            max_fails = max_fails.max(expected.misses);
        }
        assert!(max_fails > FAIL_LIMIT, "the walk goes past the fail limit");
        post(&through_nginx, "last", WALKER, track, WALK_LAST_TIME).await;
        expected.listen(catalog.artist_of(track), track, WALK_LAST_TIME, true);
        check_state(&mut redis, WALKER, &expected, "after /last");
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
    let mut redis = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let sessions: Vec<String> = redis.keys("botify:user:*:session").unwrap();
    assert!(sessions.is_empty(), "sessions left open: {sessions:?}");
    for (user, events) in &by_user {
        let mut artists: BTreeMap<u32, (f64, u64)> = BTreeMap::new();
        for (_, _, event) in events {
            let (sum, count) = artists.entry(catalog.artist_of(event.track)).or_default();
            *sum += event.time;
            *count += 1;
        }
        let profile: HashMap<String, String> = redis
            .hgetall(format!("botify:user:{user}:profile"))
            .unwrap();
        for (artist, (sum, count)) in &artists {
            let n: u64 = profile[&format!("n:{artist}")].parse().unwrap();
            let s: f64 = profile[&format!("s:{artist}")].parse().unwrap();
            assert_eq!(n, *count, "user {user}, artist {artist}: {profile:?}");
            assert!((s - sum).abs() < 1e-6, "user {user}, artist {artist}");
        }
        let (fav, mean) = profile["fav"].split_once(' ').unwrap();
        let (sum, count) = artists[&fav.parse().unwrap()];
        assert!(
            (mean.parse::<f64>().unwrap() - sum / count as f64).abs() < 1e-6,
            "user {user}: favourite {fav} has mean {mean}, its listens say {}",
            sum / count as f64
        );
        let messages = events.iter().filter(|e| e.2.message == Message::Last);
        assert!(messages.count() >= 1, "user {user} never ended a session");
    }

    processes.assert_alive();
    drop(processes);
    eprintln!(
        "nginx topology: {} sessions, {total} requests over 2 replicas in {:.1}s",
        summary.sessions(),
        started.elapsed().as_secs_f64()
    );
}
