//! botify configurations for tests, and the files they point to, all in a
//! test's own temp folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use botify::config::Config;

use crate::ports::LOOPBACK;
use crate::redis::RedisServer;

/// Writes `<dir>/tracks.jsonl`, a catalog of `n` tracks: track `i` is by
/// artist `i % artists`, of genre `i % 5`, with popularity `1 / (1 + i)`.
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
    file.flush().unwrap();
    path
}

/// Writes `<dir>/experiments.toml`: one active experiment, `TEST`, whose
/// arms are the recommenders `arms`.
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

/// A configuration serving `catalog` with the experiment of
/// [`write_experiments`]: bound to 127.0.0.1 on port 0 (a free port, picked
/// when the server binds), models in `<dir>/models`, event logs in
/// `<dir>/log`, state in memory (no Redis), no admin token, 2 workers, and
/// no drain delay on SIGTERM (a test stopping its processes has no load
/// balancer to wait for; the rolling-restart tests set one).
pub fn config_with_catalog(dir: &Path, catalog: PathBuf, arms: &[&str]) -> Config {
    let mut config = Config::for_catalog(catalog);
    config.port = 0;
    config.host = LOOPBACK.to_string();
    config.experiments = write_experiments(dir, arms);
    config.models = dir.join("models");
    config.log_dir = dir.join("log");
    config.redis_url = None;
    config.admin_token = None;
    config.workers = Some(2);
    config.drain_secs = 0;
    config
}

/// [`config_with_catalog`] with a catalog of 200 tracks by 20 artists
/// ([`write_catalog`]), in `dir`, a fresh temp folder.
pub fn test_config(dir: &Path, arms: &[&str]) -> Config {
    config_with_catalog(dir, write_catalog(dir, 200, 20), arms)
}

/// [`test_config`] keeping its state (and control plane) in `redis`.
pub fn redis_config(dir: &Path, redis: &RedisServer, arms: &[&str]) -> Config {
    let mut config = test_config(dir, arms);
    config.redis_url = Some(redis.url());
    config
}
