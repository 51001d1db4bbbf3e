//! Task lifecycle, as the seed's "(2) Managing tasks" defines it: edit,
//! copy, re-execute and delete tasks; what deleting or moving a
//! destination does to its tasks; automatic deletion (retention); start
//! times, daily windows, transfer limits and automatic retries.
//!
//! Real `courier serve` and agents on loopback. Time-dependent rules run
//! against the injected clock: `COURIER_CLOCK_FILE` names a file holding
//! seconds added to the system time, which the server re-reads while it
//! runs and a CLI call reads when it opens the store itself.
//!
//! Negative checks ("the agent gets nothing") never sleep: a witness task
//! created later on the same agent must finish first. The agent takes its
//! work oldest task first, so had the held task been handed out, it would
//! have run before the witness.

mod delete;
mod destinations;
mod edit;
mod limits;
mod rerun;
mod retention;
mod schedules;

use std::fs;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::procs::{Agent, Server, create_task, dest, task_id};
use crate::support::{ClockFile, Courier};

const DAY: i64 = 86_400;

// ---- helpers ------------------------------------------------------------

/// A server whose clock is `clock`, in UTC (daily windows are server time).
fn server_with_clock(clock: &ClockFile, flags: &[&str]) -> Server {
    let path = clock.path_str();
    Server::start_with_env(flags, &[("COURIER_CLOCK_FILE", &path), ("TZ", "UTC")])
}

/// A CLI call on a data dir no server runs for: the CLI opens the store
/// itself, with the injected clock, and applies the retention rules.
fn local(c: &Courier, clock: &ClockFile, args: &[&str]) -> Output {
    c.cmd()
        .env("COURIER_CLOCK_FILE", clock.path())
        .args(args)
        .output()
        .expect("run courier")
}

fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t).unwrap().to_string()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Destination names of a task, sorted.
fn names(t: &Value) -> Vec<String> {
    let mut v: Vec<String> = t["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// Ids in a `task list --json`.
fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .expect("task list")
        .iter()
        .map(task_id)
        .collect()
}

fn listed(s: &Courier, id: i64) -> bool {
    ids(&s.json(&["task", "list", "--json"])).contains(&id)
}

fn show(s: &Server, id: i64) -> Value {
    s.json(&["task", "show", &id.to_string(), "--json"])
}

/// Events of `kind` about task `id`.
fn events_of(events: &[Value], kind: &str, id: i64) -> Vec<String> {
    let subject = format!("task {id}");
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["subject"] == subject.as_str())
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Registers `<pkg>.sh`, whose install and uninstall commands append
/// "<working dir> <install|uninstall> <pkg>" to `log` (outside every
/// agent). The working dir lies in the agent's data dir, so the log says
/// which agent ran what; see [`ran`].
fn logged_package(s: &Server, log: &Path, pkg: &str) -> Value {
    let file = s.input(&format!("{pkg}.sh"));
    fs::write(
        &file,
        format!(
            "#!/bin/sh\necho \"$(pwd) $1 {pkg}\" >> '{}'\necho '{pkg}: '\"$1\"' done'\n",
            log.display()
        ),
    )
    .unwrap();
    s.json(&[
        "package",
        "add",
        file.to_str().unwrap(),
        "--name",
        pkg,
        "--install-command",
        &format!("sh {pkg}.sh install"),
        "--uninstall-command",
        &format!("sh {pkg}.sh uninstall"),
        "--json",
    ])
}

/// Registers a one-file package with `script` as its install command.
fn script_package(s: &Server, file: &str, script: &str) -> Value {
    let path = s.input(file);
    fs::write(&path, script).unwrap();
    s.json(&[
        "package",
        "add",
        path.to_str().unwrap(),
        "--install-command",
        &format!("sh {file}"),
        "--json",
    ])
}

/// How many times `agent` ran `action` ("install" or "uninstall") of
/// `pkg`, by the log of [`logged_package`].
fn ran(log: &Path, agent: &Agent, action: &str, pkg: &str) -> usize {
    let prefix = format!("{}/", agent.data().display());
    let suffix = format!(" {action} {pkg}");
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.ends_with(&suffix))
        .count()
}

/// Runs a witness task for `pkg` on `agent` and waits for it to succeed:
/// any work handed to that agent before it has been taken by then.
fn witness(s: &Server, pkg: &Value, agent: &Agent) {
    let w = create_task(s, pkg, &agent.name, &["--name", "witness"]);
    let w = s.wait_task_finished(task_id(&w), &[agent]);
    assert_eq!(dest(&w, &agent.name)["status"], "succeeded", "{w:#}");
}

/// After the clock has moved past the time a task waits for: wakes the
/// agent's long-poll with a witness task, so the agent asks for its work
/// now rather than when its poll times out (the server does not wake
/// long-polls when a start time, window or retry backoff comes due; up
/// to 25 s later the agent would ask anyway). The due task, older, is
/// handed out with the witness and runs first.
fn nudge(s: &Server, pkg: &Value, agent: &Agent) {
    witness(s, pkg, agent);
}
