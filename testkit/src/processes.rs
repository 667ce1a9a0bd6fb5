//! Child processes of a test. Each one's stdout and stderr go to a log file,
//! shown when it dies unexpectedly, and each is stopped when its owner drops,
//! also when the test panics: SIGTERM (nginx's master then stops its
//! workers, which a SIGKILLed master would leave running; botify flushes its
//! event log), a bounded wait, then SIGKILL.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::ports::LOOPBACK;

/// How long a process may take to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// One child process, logging to one file; stopped on drop.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with stdin closed and stdout/stderr in `log`.
    pub fn try_spawn(name: &str, command: &mut Command, log: &Path) -> std::io::Result<Process> {
        let file = fs::File::create(log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        Ok(Process {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// [`Process::try_spawn`], panicking when the program cannot start.
    pub fn spawn(name: &str, command: &mut Command, log: &Path) -> Process {
        Self::try_spawn(name, command, log)
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// What the process printed so far, for failure messages.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `None` while the process runs.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Panics, with what the process printed, unless it is still running.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.exit_status() {
            panic!("{} exited with {status}:\n{}", self.name, self.output());
        }
    }

    /// Waits until something accepts TCP connections on 127.0.0.1:`port`;
    /// panics if this process exits first, or after `timeout`.
    pub fn wait_listening(&mut self, port: u16, timeout: Duration) {
        self.wait_until(&format!("listening on port {port}"), timeout, || {
            TcpStream::connect((LOOPBACK, port)).is_ok()
        });
    }

    /// Asks `ready` every 20 ms until it holds; panics with what this
    /// process printed if it exits first, or if after `timeout` it is still
    /// not `what` (the panic's words for ready).
    pub fn wait_until(&mut self, what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !ready() {
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "{} is not {what} after {timeout:?}:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` unless the process has exited (and so may have been
    /// reaped, its pid free for reuse).
    fn signal(&mut self, signal: libc::c_int) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on a pid that is our unreaped child.
            unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        }
    }

    /// SIGTERM without waiting, for a test watching what a process does
    /// while it stops (a drain).
    pub fn terminate(&mut self) {
        self.signal(libc::SIGTERM);
    }

    /// SIGTERM, up to [`STOP_GRACE`] to exit, then SIGKILL; the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_within(STOP_GRACE)
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL; the exit status.
    pub fn stop_within(&mut self, grace: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill()
    }

    /// SIGKILL now (like a crash: no goodbye to clients); the exit status.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("wait for a child process")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A group of child processes, logging to `<dir>/<name>.log` in a temp
/// folder of their own; stopped in reverse start order on drop.
pub struct Processes {
    children: Vec<Process>,
    dir: tempfile::TempDir,
}

impl Processes {
    pub fn new() -> Processes {
        Processes {
            children: Vec::new(),
            dir: tempfile::Builder::new()
                .prefix("testkit-processes")
                .tempdir()
                .expect("create a temp folder"),
        }
    }

    /// The temp folder of the logs, also a place for the processes' own
    /// files (configurations, pid files); removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `command` as `name`, its output in `<dir>/<name>.log`.
    pub fn spawn(&mut self, name: &str, command: &mut Command) -> &mut Process {
        let log = self.dir().join(format!("{name}.log"));
        self.push(Process::spawn(name, command, &log))
    }

    /// Adds a process started elsewhere ([`Process::try_spawn`]).
    pub fn push(&mut self, process: Process) -> &mut Process {
        assert!(
            self.get(process.name()).is_none(),
            "two processes named {}",
            process.name()
        );
        self.children.push(process);
        self.children.last_mut().expect("just pushed")
    }

    pub fn get(&self, name: &str) -> Option<&Process> {
        self.children.iter().find(|p| p.name() == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Process> {
        self.children.iter_mut().find(|p| p.name() == name)
    }

    /// What `name` printed, for failure messages.
    pub fn output(&self, name: &str) -> String {
        self.get(name).map(Process::output).unwrap_or_default()
    }

    /// Panics, with every process's output, unless all are still running.
    pub fn assert_alive(&mut self) {
        let mut dead = Vec::new();
        for process in &mut self.children {
            if let Some(status) = process.exit_status() {
                dead.push(format!("{} exited with {status}", process.name));
            }
        }
        if !dead.is_empty() {
            let outputs: Vec<String> = self
                .children
                .iter()
                .map(|p| format!("--- {}:\n{}", p.name, p.output()))
                .collect();
            panic!("{}\n{}", dead.join("; "), outputs.join("\n"));
        }
    }
}

impl Default for Processes {
    fn default() -> Self {
        Processes::new()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        // Later processes may depend on earlier ones (nginx on botify on
        // Redis): the last started stops first.
        while let Some(mut process) = self.children.pop() {
            process.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_logged_and_processes_stop_on_drop() {
        let mut processes = Processes::new();
        let pid = processes
            .spawn(
                "sleeper",
                Command::new("sh").args(["-c", "echo hello; exec sleep 60"]),
            )
            .id();
        processes.assert_alive();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !processes.output("sleeper").contains("hello") {
            assert!(Instant::now() < deadline, "no output logged");
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = Instant::now();
        drop(processes);
        assert!(started.elapsed() < STOP_GRACE, "SIGTERM was enough");
        // SAFETY: signal 0 only checks that the pid exists.
        let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
        assert!(!exists, "pid {pid} still exists");
    }

    #[test]
    fn a_process_ignoring_sigterm_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let mut process = Process::spawn(
            "stubborn",
            Command::new("sh").args(["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"]),
            &dir.path().join("stubborn.log"),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while !process.output().contains("ready") {
            assert!(Instant::now() < deadline, "the trap was never set");
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = Instant::now();
        let status = process.stop_within(Duration::from_millis(200));
        assert!(!status.success(), "{status}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    #[should_panic(expected = "quitter exited with")]
    fn assert_alive_reports_a_dead_process() {
        let mut processes = Processes::new();
        processes.spawn(
            "quitter",
            Command::new("sh").args(["-c", "echo bye; exit 3"]),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while processes
            .get_mut("quitter")
            .unwrap()
            .exit_status()
            .is_none()
        {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        processes.assert_alive();
    }
}
