//! Simulator worlds for tests, written by the `sim` binary itself
//! (`sim world`), so every sim test sets up its world the way a user does.
//! The test passes its [`Program`] (only sim's own tests can name the
//! binary), which keeps testkit free of a dependency on the simulator.

use std::path::{Path, PathBuf};

use crate::cli::{arg, Program};

/// Writes a world into `out` with `sim world --out OUT PARAMS…`; panics with
/// sim's output when that fails. Returns `out`.
pub fn write(sim: &Program, out: &Path, params: &[&str]) -> PathBuf {
    let mut args = vec!["world", "--out", arg(out)];
    args.extend_from_slice(params);
    sim.ok(&args);
    out.to_path_buf()
}

/// The world of the end-to-end experiment tests (3000 tracks, 1000
/// listeners, seed 7): big enough for every arm to get users, small enough
/// for a debug build; written into `dir/world`.
pub fn end_to_end(sim: &Program, dir: &Path) -> PathBuf {
    write(
        sim,
        &dir.join("world"),
        &["--tracks", "3000", "--users", "1000", "--seed", "7"],
    )
}

/// A world of 600 tracks and `users` listeners from `seed`, written into
/// `dir/world`: small enough to simulate a day of in a debug build, as
/// the off-policy tests do, one day per arm.
pub fn small(sim: &Program, dir: &Path, users: &str, seed: &str) -> PathBuf {
    write(
        sim,
        &dir.join("world"),
        &["--tracks", "600", "--users", users, "--seed", seed],
    )
}

/// Writes `dir/<name>.toml`: one active experiment, `ONE`, whose only arm is
/// `spec` (a recommender name in quotes, or an inline table), as a user
/// would write it. Returns its path.
pub fn one_arm_experiments(dir: &Path, name: &str, spec: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let toml = format!("active = \"ONE\"\n[[experiment]]\nname = \"ONE\"\narms = [{spec}]\n");
    std::fs::write(&path, toml).unwrap();
    path
}

/// One simulated day of `episodes` sessions of `world` served in-process
/// by the single arm `spec` with the models in `models` (an empty folder
/// for none; `sim run --in-process --seed 3`), logged into `dir/name`.
/// Returns (log folder, experiments file).
pub fn simulate_day(
    sim: &Program,
    dir: &Path,
    world: &Path,
    models: &Path,
    name: &str,
    spec: &str,
    episodes: &str,
) -> (PathBuf, PathBuf) {
    let experiments = one_arm_experiments(dir, name, spec);
    let log = dir.join(name);
    sim.ok(&[
        "run",
        "--in-process",
        "--world",
        arg(world),
        "--experiments",
        arg(&experiments),
        "--models",
        arg(models),
        "--log-dir",
        arg(&log),
        "--episodes",
        episodes,
        "--seed",
        "3",
    ]);
    (log, experiments)
}
