//! The agent under hostile conditions: killed mid-install, cancelled
//! mid-extraction, a disk that refuses its reports, secrets in its
//! environment, its certificate renewed (and the renewal lost). A real `courier serve` and a real agent process, whose
//! environment and death the tests control.

mod cancel;
mod crash;
mod env;
mod renewal;
mod reports;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::procs::{DEADLINE, Server, tail, wait_until};

/// An agent process started with an environment of the test's choosing.
pub struct Dest {
    pub name: String,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Dest {
    /// Enrols `name` with `token` on `server` (the token given on the
    /// command line unless `env` carries `COURIER_TOKEN`) and waits until
    /// it has its certificate.
    pub fn enrolled(server: &Server, token: &str, name: &str, env: &[(&str, &str)]) -> Dest {
        let mut d = Dest {
            name: name.to_string(),
            dir: tempfile::tempdir().expect("tempdir"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        let mut args = vec!["--server", &server.addr, "--name", name];
        if !env.iter().any(|(k, _)| *k == "COURIER_TOKEN") {
            args.extend(["--token", token]);
        }
        d.spawn(&args);
        let identity = d.data().join("identity.json");
        wait_until(
            DEADLINE,
            &format!("agent {name} to enrol"),
            || identity.exists().then_some(()),
            || d.diagnostics(),
        );
        d
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self, args: &[&str]) {
        assert!(self.child.is_none(), "agent {} already running", self.name);
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.stderr"))
            .expect("stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_courier"))
            .arg("--data")
            .arg(self.data())
            .arg("agent")
            .args(args)
            .env_remove("COURIER_DATA")
            .env_remove("COURIER_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn courier agent");
        self.child = Some(child);
    }

    /// Starts the agent again, from its identity.
    pub fn restart(&mut self) {
        self.spawn(&[]);
    }

    /// SIGKILL: the agent dies as in a crash, with no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the agent to end by itself; its exit status and stderr.
    pub fn wait_exit(&mut self) -> (std::process::ExitStatus, String) {
        let end = std::time::Instant::now() + DEADLINE;
        let child = self.child.as_mut().expect("agent running");
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status;
            }
            if std::time::Instant::now() >= end {
                let story = self.diagnostics();
                self.kill();
                panic!(
                    "agent {} still runs; it should have stopped\n{story}",
                    self.name
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        self.child = None;
        let stderr = fs::read_to_string(self.dir.path().join("agent.stderr")).unwrap_or_default();
        (status, stderr)
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.data().join("agent.log")).unwrap_or_default()
    }

    pub fn diagnostics(&self) -> String {
        format!(
            "--- agent {} stderr ---\n{}\n--- agent.log (end) ---\n{}",
            self.name,
            tail(&self.dir.path().join("agent.stderr"), 4096),
            tail(&self.data().join("agent.log"), 8192)
        )
    }
}

impl Drop for Dest {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Registers `file` (written with `body`) as an install package whose
/// command is `command`.
fn script_package(s: &Server, file: &str, body: &str, command: &str) -> Value {
    let path = s.input(file);
    fs::write(&path, body).unwrap();
    s.json(&[
        "package",
        "add",
        path.to_str().unwrap(),
        "--install-command",
        command,
        "--json",
    ])
}

/// `task show ID --json` until `done` holds, showing the agent's story
/// when it does not.
fn wait_task(s: &Server, id: i64, d: &Dest, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let id_text = id.to_string();
    let last = std::cell::RefCell::new(Value::Null);
    wait_until(
        DEADLINE,
        &format!("task {id}: {what}"),
        || {
            let t = s.json(&["task", "show", &id_text, "--json"]);
            let ok = done(&t);
            *last.borrow_mut() = t.clone();
            ok.then_some(t)
        },
        || {
            format!(
                "--- last task show ---\n{:#}\n{}\n{}",
                last.borrow(),
                s.diagnostics(),
                d.diagnostics()
            )
        },
    )
}

/// Whether process `pid` runs (a zombie does not).
fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|s| s != "Z" && s != "X")
        })
        .unwrap_or(false)
}

/// Live processes of process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        // After the command name: state, ppid, pgrp, …
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2) == Some(&pgid.to_string().as_str()) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Every name in `dir` and below, relative.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}
