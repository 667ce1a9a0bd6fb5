//! The botify binary as a child process (with [`crate::Processes`]), for
//! tests of what only a real process shows: signals, several replicas.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use botify::config::Config;

use crate::Processes;

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

/// `target/<profile>/botify`, next to the running test's
/// `target/<profile>/deps/`, for tests outside the botify crate (whose
/// own tests have `env!("CARGO_BIN_EXE_botify")`). Panics, saying how to
/// build it, when it is missing or older than `botify/src`.
pub fn botify_binary() -> PathBuf {
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

/// The command line running `binary` with `config`, flag for flag, so the
/// child serves exactly what an in-process [`crate::TestApp`] would. Give
/// `config` a port of its own ([`crate::free_port`]): port 0 would leave the
/// test guessing.
pub fn botify_command(binary: &Path, config: &Config) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["--host", &config.host, "--port", &config.port.to_string()])
        .arg("--catalog")
        .arg(&config.catalog)
        .arg("--experiments")
        .arg(&config.experiments)
        .arg("--models")
        .arg(&config.models)
        .arg("--log-dir")
        .arg(&config.log_dir)
        .args(["--log-max-bytes", &config.log_max_bytes.to_string()])
        .args(["--log-sink", &config.log_sink.name()])
        .args(["--redis-namespace", &config.redis_namespace])
        .args(["--state-timeout-ms", &config.state_timeout_ms.to_string()])
        .args(["--state-cooldown-ms", &config.state_cooldown_ms.to_string()])
        .args(["--session-ttl-secs", &config.session_ttl_secs.to_string()])
        .args(["--profile-ttl-secs", &config.profile_ttl_secs.to_string()])
        .args(["--seed", &config.seed.to_string()])
        .args(["--drain-secs", &config.drain_secs.to_string()]);
    if let Some(url) = &config.redis_url {
        command.args(["--redis-url", url]);
    }
    if config.redis_cluster {
        command.arg("--redis-cluster");
    }
    if let Some(dir) = &config.data_dir {
        command.arg("--data-dir").arg(dir);
    }
    if let Some(filters) = &config.filters {
        command.arg("--filters").arg(filters);
    }
    if let Some(token) = &config.admin_token {
        command.args(["--admin-token", token]);
    }
    if config.simulated_clock {
        command.arg("--simulated-clock");
    }
    if let Some(workers) = config.workers {
        command.args(["--workers", &workers.to_string()]);
    }
    command
}

/// `binary` serving `config` as the process `botify` of new
/// [`Processes`], once it listens on `config.port`.
pub fn start_botify(binary: &Path, config: &Config) -> Processes {
    let mut processes = Processes::new();
    processes
        .spawn("botify", &mut botify_command(binary, config))
        .wait_listening(config.port, Duration::from_secs(20));
    processes
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_command_line_parses_back_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::test_config(dir.path(), &["random"]);
        config.port = 4321;
        config.redis_url = Some("redis://127.0.0.1:1/,redis://127.0.0.1:2/".into());
        config.redis_cluster = true;
        config.data_dir = Some(dir.path().join("data"));
        config.admin_token = Some("t".into());
        config.filters = Some(dir.path().join("filters.json"));
        config.drain_secs = 3;
        let command = botify_command(Path::new("botify"), &config);
        let args = std::iter::once(command.get_program()).chain(command.get_args());
        let parsed = Config::try_parse_from(args).unwrap();
        assert_eq!(format!("{parsed:?}"), format!("{config:?}"));
    }
}
