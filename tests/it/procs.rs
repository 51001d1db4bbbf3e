//! Real processes for the distribution tests: one `courier serve` and any
//! number of `courier agent`s on loopback, each in a temp dir of its own.
//!
//! Every process is killed when its handle is dropped, so a failing test
//! leaves nothing running. Nothing here sleeps for a fixed time to let
//! something happen: [`wait_until`] polls for the condition, with a
//! generous deadline, and says what it saw when the deadline passes.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::Courier;

/// Longest wait for anything a process should do "soon" on a loaded
/// two-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

const POLL: Duration = Duration::from_millis(100);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_courier")
}

/// Polls `check` every 100 ms until it gives a value; past `deadline`,
/// panics naming `what` with the story `explain` tells (called only then).
pub fn wait_until<T>(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() >= end {
            panic!(
                "timed out after {} s waiting for {what}\n{}",
                deadline.as_secs(),
                explain()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// The last `max` bytes of a file, for failure messages.
pub fn tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("({} does not exist)", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn signal(child: &Child, sig: Signal) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// Waits for `child` to exit, up to `deadline`; None if it did not.
fn wait_exit(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + deadline;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM (the graceful way), then SIGKILL if it does not go.
fn terminate(child: &mut Child) {
    signal(child, Signal::SIGTERM);
    if wait_exit(child, Duration::from_secs(20)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("stderr file")
}

/// `courier serve` on a loopback port of its own, over a fresh data dir.
/// Derefs to the [`Courier`] of its data dir, so `server.ok(&[…])` runs a
/// CLI command against it (through its admin socket while it runs).
pub struct Server {
    pub c: Courier,
    /// `127.0.0.1:PORT` agents connect to; kept across restarts.
    pub addr: String,
    /// More flags of `courier serve`, given again at every restart.
    flags: Vec<String>,
    /// Environment of `courier serve` (e.g. `COURIER_CLOCK_FILE`, `TZ`),
    /// given again at every restart.
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Deref for Server {
    type Target = Courier;
    fn deref(&self) -> &Courier {
        &self.c
    }
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with more flags of `courier serve`.
    pub fn start_with(flags: &[&str]) -> Server {
        Server::start_with_env(flags, &[])
    }

    /// Starts a server with more flags of `courier serve` and more
    /// environment variables for its process (not for CLI calls).
    pub fn start_with_env(flags: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_in(Courier::new(), flags, env)
    }

    /// Starts a server on a data dir prepared first (a small filesystem
    /// mounted at `c.data()`, say).
    pub fn start_in(c: Courier, flags: &[&str], env: &[(&str, &str)]) -> Server {
        let mut s = Server {
            c,
            addr: "127.0.0.1:0".into(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        s.spawn();
        s
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.c.dir.path().join("serve.stderr")
    }

    /// Starts the process on `self.addr` and waits until it has written
    /// its `server.json`, then takes the address it really listens on.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let info_path = self.data().join("server.json");
        // A killed server leaves its server.json behind; the new one must
        // be told apart.
        let _ = fs::remove_file(&info_path);
        // Binding the same port again right after a kill can, rarely, lose
        // a race with the kernel: a few tries.
        for tries_left in (0..10).rev() {
            let mut child = self
                .c
                .cmd()
                .args(["serve", "--listen", &self.addr])
                .args(&self.flags)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(append(&self.stderr_path()))
                .spawn()
                .expect("spawn courier serve");
            let pid = child.id() as u64;
            let started = wait_until(
                DEADLINE,
                "courier serve to write server.json",
                || {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Some(Err(status));
                    }
                    let text = fs::read_to_string(&info_path).ok()?;
                    let v: Value = serde_json::from_str(&text).ok()?;
                    (v["pid"].as_u64() == Some(pid)).then_some(Ok(v))
                },
                || self.diagnostics(),
            );
            match started {
                Ok(info) => {
                    self.addr = info["listen"].as_str().expect("listen").to_string();
                    self.child = Some(child);
                    return;
                }
                Err(status) => {
                    let err = tail(&self.stderr_path(), 4096);
                    if tries_left > 0 && err.contains("cannot listen") {
                        std::thread::sleep(Duration::from_millis(250));
                        continue;
                    }
                    panic!("courier serve exited ({status}):\n{err}");
                }
            }
        }
    }

    /// SIGKILL: the server dies as in a crash or a power cut.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data dir.
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// A token (id, token string) agents enrol with.
    pub fn token(&self, auto_approve: bool) -> (i64, String) {
        let mut args = vec!["token", "create", "--json"];
        if auto_approve {
            args.push("--auto-approve");
        }
        let t = self.json(&args);
        (
            t["id"].as_i64().expect("token id"),
            t["token"].as_str().expect("token").to_string(),
        )
    }

    /// The server's stderr and the end of its log file.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- server stderr ---\n{}\n--- server log (end) ---\n{}",
            tail(&self.stderr_path(), 4096),
            tail(&self.data().join("logs/server.log"), 8192)
        )
    }

    /// Polls `task show ID --json` until `done` holds for it; on timeout
    /// shows the last JSON seen, the server's and the agents' logs.
    pub fn wait_task(
        &self,
        id: i64,
        agents: &[&Agent],
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let last = std::cell::RefCell::new(Value::Null);
        let id_text = id.to_string();
        wait_until(
            DEADLINE,
            &format!("task {id}: {what}"),
            || {
                let t = self.json(&["task", "show", &id_text, "--json"]);
                let ok = done(&t);
                *last.borrow_mut() = t.clone();
                ok.then_some(t)
            },
            || {
                let mut s = format!(
                    "--- last task show ---\n{:#}\n{}",
                    last.borrow(),
                    self.diagnostics()
                );
                for a in agents {
                    s.push('\n');
                    s.push_str(&a.diagnostics());
                }
                s
            },
        )
    }

    /// Waits until every destination of the task has finished
    /// (succeeded, failed or cancelled) and the task with it.
    pub fn wait_task_finished(&self, id: i64, agents: &[&Agent]) -> Value {
        self.wait_task(id, agents, "every destination finished", |t| {
            let dests = t["destinations"].as_array().expect("destinations");
            !dests.is_empty()
                && dests.iter().all(|d| {
                    matches!(
                        d["status"].as_str(),
                        Some("succeeded" | "failed" | "cancelled")
                    )
                })
                && matches!(t["status"].as_str(), Some("completed" | "failed"))
        })
    }

    /// Waits until destination `name` has `status` in `dest show`.
    pub fn wait_dest(&self, name: &str, status: &str, agents: &[&Agent]) -> Value {
        let last = std::cell::RefCell::new(Value::Null);
        wait_until(
            DEADLINE,
            &format!("destination {name} to be {status}"),
            || {
                let o = self.run(&["dest", "show", name, "--json"]);
                if !o.status.success() {
                    return None;
                }
                let d: Value = serde_json::from_slice(&o.stdout).ok()?;
                let ok = d["status"] == status;
                *last.borrow_mut() = d.clone();
                ok.then_some(d)
            },
            || {
                let mut s = format!(
                    "--- last dest show ---\n{:#}\n{}",
                    last.borrow(),
                    self.diagnostics()
                );
                for a in agents {
                    s.push('\n');
                    s.push_str(&a.diagnostics());
                }
                s
            },
        )
    }

    /// Events of the log, oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.ok(&["log", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).expect("event JSON"))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `courier agent` with a data dir of its own. Its stderr (across
/// restarts) goes to a file beside that data dir.
pub struct Agent {
    pub name: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Set in the agent's environment at every start.
    env: Vec<(String, String)>,
}

impl Agent {
    /// Starts an agent that enrols with `token` as `name`. Returns at once:
    /// see [`Agent::wait_enrolled`] and [`Agent::wait_exit`].
    pub fn enrol(server: &Server, token: &str, name: &str) -> Agent {
        Agent::enrol_at(&server.addr, token, name)
    }

    /// Starts an agent that enrols with (and then talks to) the server
    /// at `addr`, such as a proxy in front of it.
    pub fn enrol_at(addr: &str, token: &str, name: &str) -> Agent {
        Agent::enrol_with_env(addr, token, name, &[])
    }

    /// Starts an agent that enrols with `env` set in its environment
    /// (at this start and every later one).
    pub fn enrol_with_env(addr: &str, token: &str, name: &str, env: &[(&str, String)]) -> Agent {
        let mut a = Agent {
            name: name.to_string(),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        a.spawn(&["--server", addr, "--token", token, "--name", name]);
        a
    }

    /// Starts an agent and waits until it has its certificate.
    pub fn enrolled(server: &Server, token: &str, name: &str) -> Agent {
        let mut a = Agent::enrol(server, token, name);
        a.wait_enrolled();
        a
    }

    /// The running agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the agent runs").id()
    }

    /// The agent's own data dir (identity, cache, work, agent.log).
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("agent.stderr")
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    fn spawn(&mut self, args: &[&str]) {
        assert!(self.child.is_none(), "agent {} already running", self.name);
        let child = Command::new(bin())
            .arg("--data")
            .arg(self.data())
            .arg("agent")
            .args(args)
            .env_remove("COURIER_DATA")
            .env_remove("COURIER_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(append(&self.stderr_path()))
            .spawn()
            .expect("spawn courier agent");
        self.child = Some(child);
    }

    /// Starts the agent again: no token, no server, no name; all of that
    /// comes from its identity.
    pub fn start(&mut self) {
        self.spawn(&[]);
    }

    /// SIGTERM: the agent shuts down as a service manager would stop it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// SIGKILL: the agent dies mid-work.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until enrolment has left its identity in the data dir.
    pub fn wait_enrolled(&mut self) {
        let identity = self.data().join("identity.json");
        let dir = self.dir.path().to_path_buf();
        let child = self.child.as_mut().expect("agent running");
        let exited = wait_until(
            DEADLINE,
            &format!("agent {} to enrol", self.name),
            || {
                if identity.exists() {
                    return Some(None);
                }
                child.try_wait().ok().flatten().map(Some)
            },
            || diagnostics_of(&dir),
        );
        if let Some(status) = exited {
            panic!(
                "agent {} exited ({status}) instead of enrolling\n{}",
                self.name,
                self.diagnostics()
            );
        }
    }

    /// Waits for the agent process to end by itself (a refusal).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("agent running");
        match wait_exit(&mut child, DEADLINE) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "agent {} still running after {} s; it should have given up\n{}",
                    self.name,
                    DEADLINE.as_secs(),
                    self.diagnostics()
                );
            }
        }
    }

    pub fn diagnostics(&self) -> String {
        diagnostics_of(self.dir.path())
    }
}

fn diagnostics_of(dir: &Path) -> String {
    format!(
        "--- agent {} stderr ---\n{}\n--- agent.log (end) ---\n{}",
        dir.display(),
        tail(&dir.join("agent.stderr"), 4096),
        tail(&dir.join("data/agent.log"), 8192)
    )
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `task create --package <pkg id> --to <to> <extra> --json` on `s`.
pub fn create_task(s: &Server, pkg: &Value, to: &str, extra: &[&str]) -> Value {
    let id = pkg["id"].to_string();
    let mut args = vec!["task", "create", "--package", &id, "--to", to];
    args.extend_from_slice(extra);
    args.push("--json");
    s.json(&args)
}

pub fn task_id(t: &Value) -> i64 {
    t["id"].as_i64().expect("task id")
}

/// The destination `name` of a task, as `task show --json` has it.
pub fn dest<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no destination {name} in {t:#}"))
}
