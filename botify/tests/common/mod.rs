//! Test harness: a real `redis-server` on a free port and the real botify
//! server on a free loopback port. No mocks.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use botify::app::Application;
use botify::config::Config;
use serde_json::Value;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` child process; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> RedisServer {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH (scripts/test installs it)");
        let server = RedisServer {
            child: Some(child),
            port,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let client = redis::Client::open(self.url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut conn) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not come up", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to clients, like a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes a catalog of `n` tracks: artist `i % artists`, genre `i % 5`.
pub fn write_catalog(dir: &Path, n: u32, artists: u32) -> PathBuf {
    let path = dir.join("tracks.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..n {
        let line = serde_json::json!({
            "track": i, "artist": format!("artist{}", i % artists), "title": format!("t{i}"),
            "genre": format!("g{}", i % 5), "popularity": 1.0 / (1.0 + i as f64),
        });
        writeln!(file, "{line}").unwrap();
    }
    path
}

pub fn write_experiments(dir: &Path, arms: &[&str]) -> PathBuf {
    let path = dir.join("experiments.toml");
    let arms: Vec<String> = arms.iter().map(|a| format!("{a:?}")).collect();
    std::fs::write(
        &path,
        format!(
            "active = \"TEST\"\n[[experiment]]\nname = \"TEST\"\narms = [{}]\n",
            arms.join(", ")
        ),
    )
    .unwrap();
    path
}

/// A test configuration in a fresh temp folder: 200 tracks by 20 artists.
pub fn test_config(dir: &Path, arms: &[&str]) -> Config {
    let mut config = Config::for_catalog(write_catalog(dir, 200, 20));
    config.port = 0;
    config.host = "127.0.0.1".into();
    config.experiments = write_experiments(dir, arms);
    config.models = dir.join("models");
    config.log_dir = dir.join("log");
    config.redis_url = None;
    config.admin_token = None;
    config.workers = Some(2);
    config
}

/// The real server, in this process, on a free port.
pub struct TestApp {
    pub base: String,
    pub handle: ServerHandle,
    pub engine: std::sync::Arc<botify::engine::Engine>,
    done: Option<tokio::task::JoinHandle<anyhow::Result<u64>>>,
}

impl TestApp {
    pub async fn spawn(config: &Config) -> TestApp {
        let app = Application::build(config).expect("server builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let engine = app.engine();
        let done = tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            handle,
            engine,
            done: Some(done),
        }
    }

    /// Stops gracefully; returns the number of event lines written.
    pub async fn stop(mut self) -> u64 {
        self.handle.stop(true).await;
        self.done.take().unwrap().await.unwrap().unwrap()
    }

    pub fn client(&self) -> awc::Client {
        awc::Client::builder()
            .timeout(Duration::from_secs(5))
            .finish()
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let mut response = self
            .client()
            .post(format!("{}{path}", self.base))
            .insert_header(("content-type", "application/json"))
            .send_body(body.to_string())
            .await
            .unwrap();
        let bytes = response.body().await.unwrap();
        (
            response.status().as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let mut response = self
            .client()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let bytes = response.body().limit(1 << 24).await.unwrap();
        (
            response.status().as_u16(),
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        )
    }

    /// `POST /next/{user}`: the recommended track.
    pub async fn next(&self, user: u64, track: u32, time: f64) -> u32 {
        let (status, body) = self
            .post(
                &format!("/next/{user}"),
                &format!("{{\"track\": {track}, \"time\": {time}}}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["track"].as_u64().unwrap() as u32
    }

    pub async fn last(&self, user: u64, track: u32, time: f64) {
        let (status, body) = self
            .post(
                &format!("/last/{user}"),
                &format!("{{\"track\": {track}, \"time\": {time}}}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    pub async fn metric(&self, name_and_labels: &str) -> f64 {
        let (_, body) = self.get("/metrics").await;
        body.as_str()
            .unwrap()
            .lines()
            .find(|l| l.starts_with(name_and_labels))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// Every line of every event log file in `dir`.
pub fn read_events(dir: &Path) -> Vec<botify::events::Event> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            out.push(serde_json::from_str(line).expect("every line is a valid event"));
        }
    }
    out
}
