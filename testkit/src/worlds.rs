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
