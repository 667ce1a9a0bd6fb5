//! The workspace's programs (`analysis`, `sim`) run as a user runs them,
//! for end-to-end tests of a command line. A test passes its own crate's
//! binary (`env!("CARGO_BIN_EXE_sim")`), which only that crate's tests can
//! name, so the path comes in and the rest is shared here.
//!
//! Colour is off (`NO_COLOR`) so messages compare as plain text, and an
//! admin token from the developer's environment never leaks into a run.

use std::path::Path;
use std::process::{Command, Output};

/// One program of the workspace, ready to run with arguments.
#[derive(Clone, Copy, Debug)]
pub struct Program {
    exe: &'static str,
}

impl Program {
    /// `exe` is the binary's path, as `env!("CARGO_BIN_EXE_<name>")` gives it.
    pub const fn new(exe: &'static str) -> Program {
        Program { exe }
    }

    /// The command, with arguments and a clean environment, not yet run:
    /// for tests that spawn it or add environment variables.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(self.exe);
        command
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("BOTIFY_ADMIN_TOKEN");
        command
    }

    /// Runs to the end and returns what it printed and its status.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.exe))
    }

    /// Runs and asserts success; returns (stdout, stderr).
    pub fn ok(&self, args: &[&str]) -> (String, String) {
        run_ok(&mut self.command(args))
    }

    /// Runs and asserts a clean failure: a non-zero status and no panic.
    /// Returns stderr, for the test to check what it says.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }

    /// Asserts that `<command> --help` names every one of `needles`: the
    /// help is where a user learns what a flag means and when to trust a
    /// figure, so a help test checks that it still says so.
    pub fn assert_help_names(&self, command: &str, needles: &[&str]) {
        let (help, _) = self.ok(&[command, "--help"]);
        for needle in needles {
            assert!(help.contains(needle), "{needle}: {help}");
        }
    }
}

/// Runs `command` (one [`Program::command`] made and a test added to, say)
/// to the end and asserts success; returns (stdout, stderr).
pub fn run_ok(command: &mut Command) -> (String, String) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{command:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// stdout and stderr as text (lossy: a test wants to read them, not fail on them).
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `field` of each object of the JSON array `rows`, as text: one
/// column of a program's JSON output, for a test to compare whole.
pub fn column<'a>(rows: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
    let rows = rows
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {rows}"));
    rows.iter()
        .map(|row| {
            row[field]
                .as_str()
                .unwrap_or_else(|| panic!("no text {field} in {row}"))
        })
        .collect()
}

/// A path as the `&str` an argument list wants (test paths are UTF-8).
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}
