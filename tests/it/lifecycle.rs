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

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::procs::{Agent, DEADLINE, Server, create_task, dest, task_id, wait_until};
use crate::support::{Courier, make_zip};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

// ---- helpers ------------------------------------------------------------

/// The file of `COURIER_CLOCK_FILE`: seconds added to the system time.
struct ClockFile {
    dir: tempfile::TempDir,
}

impl ClockFile {
    fn new() -> ClockFile {
        let c = ClockFile {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        c.set(0);
        c
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("offset")
    }

    fn path_str(&self) -> String {
        self.path().to_str().expect("utf-8 path").to_string()
    }

    /// Moves the clock to `offset` seconds from the system time. Written
    /// beside and renamed, so a reader never sees half a number. Returns
    /// once a running server has surely seen it: a process re-reads the
    /// file when its last reading is 100 ms old, so after 300 ms any
    /// reading from before the change has expired, however loaded the
    /// machine is (this waits for a cache, it measures nothing).
    fn set(&self, offset: i64) {
        let tmp = self.dir.path().join("offset.tmp");
        fs::write(&tmp, offset.to_string()).unwrap();
        fs::rename(&tmp, self.path()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Now, as a process reading this file sees it.
    fn now(&self) -> i64 {
        let offset: i64 = fs::read_to_string(self.path())
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        jiff::Timestamp::now().as_second() + offset
    }
}

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

fn local_json(c: &Courier, clock: &ClockFile, args: &[&str]) -> Value {
    let o = local(c, clock, args);
    assert!(
        o.status.success(),
        "courier {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e})"))
}

fn local_events(c: &Courier, clock: &ClockFile) -> Vec<Value> {
    let o = local(c, clock, &["log", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("event JSON"))
        .collect()
}

fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t).unwrap().to_string()
}

/// "HH:MM" of `t` in UTC.
fn hh_mm(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%H:%M")
        .to_string()
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

/// Runs a command that must end by itself (a refusal), killing it if it
/// does not within the deadline.
fn run_bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn courier");
    let end = Instant::now() + DEADLINE;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "still running after {} s; it should have refused to start\n{}",
                DEADLINE.as_secs(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether process `pid` is alive (a zombie is not).
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

// ---- edit -------------------------------------------------------------------

/// Seed: "When you edit a task, you can change only the distribution
/// destination without changing the distribution package and its
/// schedule." Finished destinations keep their history, new ones start
/// waiting, removed unfinished ones are cancelled.
#[test]
fn edit_destinations_keeps_package_schedule_and_finished_history() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "ed-a");
    let mut b = Agent::enrolled(&s, &token, "ed-b");
    let c = Agent::enrolled(&s, &token, "ed-c");
    s.wait_dest("ed-b", "online", &[&b]);
    // B is switched off: its part of the task stays waiting.
    b.stop();

    let marks = tempfile::tempdir().unwrap();
    let log = marks.path().join("runs.log");
    let pkg = logged_package(&s, &log, "edpkg");
    let at = rfc3339(now() - 60);
    let t = create_task(&s, &pkg, "ed-a,ed-b", &["--at", &at]);
    let id = task_id(&t);
    assert_eq!(t["start_at"], at.as_str(), "{t:#}");
    let agents = [&a, &b, &c];
    let before = s.wait_task(id, &agents, "ed-a to succeed", |t| {
        dest(t, "ed-a")["status"] == "succeeded"
    });
    assert_eq!(dest(&before, "ed-b")["status"], "waiting", "{before:#}");
    assert_eq!(before["status"], "running", "{before:#}");

    let edited = s.json(&[
        "task",
        "edit",
        &id.to_string(),
        "--to",
        "ed-a,ed-c",
        "--json",
    ]);
    for k in [
        "id",
        "package",
        "package_name",
        "start_at",
        "window",
        "type",
        "class",
        "name",
        "created_at",
    ] {
        assert_eq!(edited[k], before[k], "{k} changed by the edit: {edited:#}");
    }
    assert_eq!(names(&edited), ["ed-a", "ed-b", "ed-c"], "{edited:#}");
    // A finished: its history is kept as it was.
    assert_eq!(dest(&edited, "ed-a"), dest(&before, "ed-a"), "{edited:#}");
    // B was not finished: cancelled.
    let db = dest(&edited, "ed-b");
    assert_eq!(db["status"], "cancelled", "{edited:#}");
    // C is new: it starts waiting, first attempt.
    let dc = dest(&edited, "ed-c");
    assert_eq!(dc["status"], "waiting", "{edited:#}");
    assert_eq!(dc["attempt"], 1, "{edited:#}");

    let done = s.wait_task_finished(id, &agents);
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(dest(&done, "ed-a"), dest(&before, "ed-a"), "{done:#}");
    assert_eq!(dest(&done, "ed-c")["status"], "succeeded", "{done:#}");
    assert_eq!(dest(&done, "ed-c")["attempt"], 1, "{done:#}");
    assert_eq!(dest(&done, "ed-b")["status"], "cancelled", "{done:#}");
    assert_eq!(done["package"], before["package"]);
    assert_eq!(done["start_at"], before["start_at"]);
    assert_eq!(ran(&log, &a, "install", "edpkg"), 1);
    assert_eq!(ran(&log, &c, "install", "edpkg"), 1);
    assert_eq!(ran(&log, &b, "install", "edpkg"), 0);

    let edits = events_of(&s.events(), "task.edited", id);
    assert!(
        edits
            .iter()
            .any(|m| m.contains("added ed-c") && m.contains("cancelled ed-b")),
        "{edits:?}"
    );
}

/// Seed: "... or change the specified package without changing the
/// distribution destination." Unfinished destinations get the new
/// package. An edit that cannot apply (an uninstallation task given a
/// file package) is refused with one line and changes nothing.
#[test]
fn edit_package_keeps_destinations_and_refuses_what_cannot_apply() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let mut x = Agent::enrolled(&s, &token, "pk-x");
    s.wait_dest("pk-x", "online", &[&x]);
    x.stop();

    let marks = tempfile::tempdir().unwrap();
    let log = marks.path().join("runs.log");
    let p1 = logged_package(&s, &log, "pkone");
    let p2 = logged_package(&s, &log, "pktwo");
    let at = rfc3339(now() - 60);
    let t = create_task(&s, &p1, "pk-x", &["--at", &at]);
    let id = task_id(&t);
    let before = show(&s, id);
    assert_eq!(dest(&before, "pk-x")["status"], "waiting", "{before:#}");

    let edited = s.json(&[
        "task",
        "edit",
        &id.to_string(),
        "--package",
        &p2["id"].to_string(),
        "--json",
    ]);
    assert_eq!(edited["package"], p2["id"], "{edited:#}");
    assert_eq!(edited["package_name"], "pktwo", "{edited:#}");
    for k in [
        "id",
        "start_at",
        "window",
        "type",
        "class",
        "name",
        "created_at",
    ] {
        assert_eq!(edited[k], before[k], "{k} changed by the edit: {edited:#}");
    }
    assert_eq!(names(&edited), names(&before), "{edited:#}");
    assert_eq!(dest(&edited, "pk-x")["status"], "waiting", "{edited:#}");

    // Refused: an uninstallation task cannot take a file package.
    let folder = marks.path().join("files");
    let file = s.input("readme.txt");
    fs::write(&file, "hello").unwrap();
    let fpkg = s.json(&[
        "package",
        "add",
        file.to_str().unwrap(),
        "--folder",
        folder.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(fpkg["kind"], "file");
    let u = create_task(&s, &p1, "pk-x", &["--uninstall"]);
    let uid = task_id(&u);
    let u_before = show(&s, uid);
    let err = s.err(&[
        "task",
        "edit",
        &uid.to_string(),
        "--package",
        &fpkg["id"].to_string(),
    ]);
    assert!(err.contains(&format!("task {uid}")), "{err}");
    assert!(
        err.contains("uninstall") && err.contains("files"),
        "the line should name the problem: {err}"
    );
    assert_eq!(show(&s, uid), u_before, "a refused edit changed the task");
    s.ok(&["task", "rm", &uid.to_string()]);

    // The agent comes back and runs the new package, not the old one.
    x.start();
    let done = s.wait_task_finished(id, &[&x]);
    assert_eq!(done["status"], "completed", "{done:#}");
    let d = dest(&done, "pk-x");
    assert_eq!(d["status"], "succeeded", "{done:#}");
    assert!(
        d["output"].as_str().unwrap_or("").contains("pktwo"),
        "{done:#}"
    );
    assert_eq!(ran(&log, &x, "install", "pktwo"), 1);
    assert_eq!(ran(&log, &x, "install", "pkone"), 0);
    assert_eq!(ran(&log, &x, "uninstall", "pkone"), 0);
}

// ---- copy -------------------------------------------------------------------

/// Seed: "It is convenient to copy a task when you want to distribute
/// multiple packages to the same destination or when you want to
/// uninstall multiple software programs from the same computer." A copy
/// has the same package, destinations and start time (or other
/// destinations with --to). Also the seed's two task types: package
/// distribution and uninstallation.
#[test]
fn copy_keeps_package_destinations_and_schedule() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let mut x = Agent::enrolled(&s, &token, "cp-x");
    let y = Agent::enrolled(&s, &token, "cp-y");
    let marks = tempfile::tempdir().unwrap();
    let log = marks.path().join("runs.log");
    let p1 = logged_package(&s, &log, "cpone");
    let p2 = logged_package(&s, &log, "cptwo");

    let at = rfc3339(now() - 60);
    let t1 = create_task(&s, &p1, "cp-x", &["--at", &at, "--name", "Install one"]);
    let t1 = s.wait_task_finished(task_id(&t1), &[&x]);
    assert_eq!(t1["type"], "install");
    assert_eq!(t1["status"], "completed", "{t1:#}");

    // A plain copy: a new task, same package, destinations, start time.
    let c = s.json(&["task", "copy", &t1["id"].to_string(), "--json"]);
    assert_ne!(c["id"], t1["id"]);
    for k in [
        "package",
        "package_name",
        "start_at",
        "window",
        "type",
        "class",
    ] {
        assert_eq!(c[k], t1[k], "{k} differs in the copy: {c:#}");
    }
    assert_eq!(names(&c), ["cp-x"], "{c:#}");
    assert_eq!(dest(&c, "cp-x")["attempt"], 1, "{c:#}");
    let c = s.wait_task_finished(task_id(&c), &[&x]);
    assert_eq!(c["status"], "completed", "{c:#}");

    // A copy to other destinations.
    let d = s.json(&[
        "task",
        "copy",
        &t1["id"].to_string(),
        "--to",
        "cp-y",
        "--json",
    ]);
    assert_eq!(names(&d), ["cp-y"], "{d:#}");
    for k in ["package", "start_at", "type"] {
        assert_eq!(d[k], t1[k], "{k} differs in the copy: {d:#}");
    }
    let d = s.wait_task_finished(task_id(&d), &[&y]);
    assert_eq!(d["status"], "completed", "{d:#}");
    assert_eq!(ran(&log, &x, "install", "cpone"), 2);
    assert_eq!(ran(&log, &y, "install", "cpone"), 1);

    // Several packages to the same destination: copy, then change the
    // copy's package. (X is off meanwhile, so nothing runs half-edited.)
    s.wait_dest("cp-x", "online", &[&x]);
    x.stop();
    let t2 = s.json(&[
        "task",
        "copy",
        &t1["id"].to_string(),
        "--name",
        "Install two",
        "--json",
    ]);
    let t2_id = task_id(&t2);
    let t2 = s.json(&[
        "task",
        "edit",
        &t2_id.to_string(),
        "--package",
        &p2["id"].to_string(),
        "--json",
    ]);
    assert_eq!(names(&t2), ["cp-x"], "{t2:#}");
    assert_eq!(t2["start_at"], t1["start_at"], "{t2:#}");

    // Several programs uninstalled from the same computer: an
    // uninstallation task and its copy, the copy given the other package.
    let u1 = create_task(&s, &p1, "cp-x", &["--uninstall", "--name", "Uninstall one"]);
    assert_eq!(u1["type"], "uninstall");
    let u2 = s.json(&[
        "task",
        "copy",
        &u1["id"].to_string(),
        "--name",
        "Uninstall two",
        "--json",
    ]);
    assert_eq!(u2["type"], "uninstall", "{u2:#}");
    assert_eq!(u2["package"], p1["id"], "{u2:#}");
    assert_eq!(names(&u2), ["cp-x"], "{u2:#}");
    let u2 = s.json(&[
        "task",
        "edit",
        &u2["id"].to_string(),
        "--package",
        &p2["id"].to_string(),
        "--json",
    ]);
    assert_eq!(u2["type"], "uninstall", "{u2:#}");

    x.start();
    for id in [t2_id, task_id(&u1), task_id(&u2)] {
        let t = s.wait_task_finished(id, &[&x]);
        assert_eq!(t["status"], "completed", "{t:#}");
        assert_eq!(dest(&t, "cp-x")["status"], "succeeded", "{t:#}");
    }
    assert_eq!(ran(&log, &x, "install", "cptwo"), 1);
    assert_eq!(ran(&log, &x, "uninstall", "cpone"), 1);
    assert_eq!(ran(&log, &x, "uninstall", "cptwo"), 1);
    assert_eq!(ran(&log, &y, "uninstall", "cpone"), 0);
}

// ---- re-execute ---------------------------------------------------------------

/// Seed: "For a task that failed distribution, investigate and correct
/// the cause and then re-execute the task." Only the failed destinations
/// run again (new attempt, the others untouched); with --all, every one.
#[test]
fn rerun_reexecutes_only_the_failed_destinations() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "rr-a");
    let b = Agent::enrolled(&s, &token, "rr-b");
    let agents = [&a, &b];

    // The install fails on B until the cause is fixed (the file exists).
    let marks = tempfile::tempdir().unwrap();
    let runs = marks.path().join("runs.log");
    let fixed = marks.path().join("fixed");
    let script = format!(
        "#!/bin/sh\necho \"$(pwd) install rr\" >> '{runs}'\ncase \"$(pwd)\" in\n'{bdata}'/*)\n  if [ ! -e '{fixed}' ]; then echo 'error: prerequisite missing' >&2; exit 5; fi;;\nesac\necho installed\n",
        runs = runs.display(),
        bdata = b.data().display(),
        fixed = fixed.display()
    );
    let pkg = script_package(&s, "rr.sh", &script);
    let t = create_task(&s, &pkg, "rr-a,rr-b", &[]);
    let id = task_id(&t);
    let failed = s.wait_task_finished(id, &agents);
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let a1 = dest(&failed, "rr-a").clone();
    assert_eq!(a1["status"], "succeeded", "{failed:#}");
    assert_eq!(a1["attempt"], 1);
    let b1 = dest(&failed, "rr-b");
    assert_eq!(b1["status"], "failed", "{failed:#}");
    assert_eq!(b1["attempt"], 1);
    assert_eq!(b1["exit_code"], 5);

    // The cause is fixed; re-execute.
    fs::write(&fixed, "").unwrap();
    let r = s.json(&["task", "rerun", &id.to_string(), "--json"]);
    assert_eq!(dest(&r, "rr-b")["status"], "waiting", "{r:#}");
    assert_eq!(dest(&r, "rr-b")["attempt"], 2, "{r:#}");
    assert_eq!(
        dest(&r, "rr-a"),
        &a1,
        "the succeeded one was touched: {r:#}"
    );
    let done = s.wait_task_finished(id, &agents);
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(dest(&done, "rr-b")["status"], "succeeded", "{done:#}");
    assert_eq!(dest(&done, "rr-b")["attempt"], 2, "{done:#}");
    assert_eq!(dest(&done, "rr-a"), &a1, "{done:#}");
    assert_eq!(ran(&runs, &a, "install", "rr"), 1);
    assert_eq!(ran(&runs, &b, "install", "rr"), 2);
    assert!(!events_of(&s.events(), "task.rerun", id).is_empty());

    // Nothing failed any more: refused, with a hint.
    let err = s.err(&["task", "rerun", &id.to_string()]);
    assert!(err.contains("no failed destinations"), "{err}");
    assert!(err.contains("--all"), "{err}");
    assert_eq!(show(&s, id)["status"], "completed");

    // --all: every destination again.
    let r = s.json(&["task", "rerun", &id.to_string(), "--all", "--json"]);
    assert_eq!(dest(&r, "rr-a")["attempt"], 2, "{r:#}");
    assert_eq!(dest(&r, "rr-b")["attempt"], 3, "{r:#}");
    let done = s.wait_task_finished(id, &agents);
    assert_eq!(done["status"], "completed", "{done:#}");
    for (n, attempt) in [("rr-a", 2), ("rr-b", 3)] {
        assert_eq!(dest(&done, n)["status"], "succeeded", "{done:#}");
        assert_eq!(dest(&done, n)["attempt"], attempt, "{done:#}");
    }
    assert_eq!(ran(&runs, &a, "install", "rr"), 2);
    assert_eq!(ran(&runs, &b, "install", "rr"), 3);
}

// ---- delete -------------------------------------------------------------------

/// Seed: "You can also delete completed and unnecessary tasks." A task
/// deleted while it installs: the agent kills the command first, the
/// task leaves the list, the log keeps the record. A completed task is
/// deleted the same way.
#[test]
fn deleting_a_running_task_kills_the_command_on_the_agent() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "rm-a");
    let marks = tempfile::tempdir().unwrap();
    let m = marks.path();
    let script = format!(
        "echo $$ > '{m}/sh.pid'\nsleep 30 &\necho $! > '{m}/sleep.pid'\ntouch '{m}/started'\nwait\ntouch '{m}/done'\n",
        m = m.display()
    );
    let pkg = script_package(&s, "slow.sh", &script);
    let t = create_task(&s, &pkg, "rm-a", &[]);
    let id = task_id(&t);
    wait_until(
        DEADLINE,
        "the install command to start",
        || m.join("started").exists().then_some(()),
        || a.diagnostics(),
    );
    let pid = |f: &str| -> i32 {
        fs::read_to_string(m.join(f))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (sh, sleep) = (pid("sh.pid"), pid("sleep.pid"));
    let t = s.wait_task(id, &[&a], "rm-a to be installing", |t| {
        dest(t, "rm-a")["status"] == "installing"
    });
    assert_eq!(t["status"], "running");

    let removed = s.json(&["task", "rm", &id.to_string(), "--json"]);
    assert_eq!(removed["id"], id);
    assert!(!listed(&s, id), "task {id} still listed");
    let err = s.err(&["task", "show", &id.to_string()]);
    assert!(err.contains("no such task"), "{err}");

    // The agent stops the command and everything it started.
    wait_until(
        DEADLINE,
        "the agent to kill the deleted task's command",
        || (!alive(sh) && !alive(sleep)).then_some(()),
        || a.diagnostics(),
    );
    assert!(
        !m.join("done").exists(),
        "the command ran to its end after the task was deleted"
    );
    let rm = events_of(&s.events(), "task.removed", id);
    assert!(
        rm.iter()
            .any(|m| m.contains("slow") && m.contains("1 cancelled")),
        "{rm:?}"
    );

    // The agent is free for other work; a completed task is deleted too.
    let quick = script_package(&s, "quick.sh", "echo quick\n");
    let q = create_task(&s, &quick, "rm-a", &[]);
    let q = s.wait_task_finished(task_id(&q), &[&a]);
    assert_eq!(q["status"], "completed", "{q:#}");
    s.ok(&["task", "rm", &q["id"].to_string()]);
    assert!(!listed(&s, task_id(&q)));
    let rm = events_of(&s.events(), "task.removed", task_id(&q));
    assert!(
        rm.iter()
            .any(|m| m.contains("quick") && m.contains("1 succeeded")),
        "{rm:?}"
    );
}

/// Issue: "the event log keeps the record" of a deleted task. A new task
/// must not take the id of a deleted one, or that record, and any script
/// still holding the id (a retried `courier task rm 1`), point at another
/// task.
#[test]
fn deleted_task_ids_are_not_reused() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let _x = Agent::enrolled(&s, &token, "id-x");
    let marks = tempfile::tempdir().unwrap();
    let pkg = logged_package(&s, &marks.path().join("runs.log"), "idpkg");
    let tomorrow = rfc3339(now() + DAY);
    let first = task_id(&create_task(&s, &pkg, "id-x", &["--at", &tomorrow]));
    s.ok(&["task", "rm", &first.to_string()]);
    let second = task_id(&create_task(&s, &pkg, "id-x", &["--at", &tomorrow]));
    assert_ne!(
        second, first,
        "task {first} was deleted, and a new task took its id"
    );
}

// ---- destinations deleted or moved ---------------------------------------

/// Seed: "If the destination of a task is one computer and that computer
/// is deleted, the task status becomes completed. If the destination of a
/// task is multiple computers and one of those computers is deleted, only
/// that computer is deleted from the destination." And: administrator
/// tasks are deleted "when the number of devices subject to the task
/// becomes 0" (here with no server running: the CLI applies the rule as
/// it opens the store).
#[test]
fn deleted_destination_completes_single_and_shrinks_multi_destination_tasks() {
    let mut s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "dd-a");
    let mut b = Agent::enrolled(&s, &token, "dd-b");
    s.wait_dest("dd-b", "online", &[&b]);
    b.stop();
    let marks = tempfile::tempdir().unwrap();
    let log = marks.path().join("runs.log");
    let pkg = logged_package(&s, &log, "ddpkg");
    let single = task_id(&create_task(&s, &pkg, "dd-b", &[]));
    let multi = task_id(&create_task(&s, &pkg, "dd-a,dd-b", &[]));
    s.wait_task(multi, &[&a, &b], "dd-a to succeed", |t| {
        dest(t, "dd-a")["status"] == "succeeded"
    });

    s.ok(&["dest", "rm", "dd-b"]);
    let dests = s.json(&["dest", "list", "--json"]);
    assert!(
        !dests
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "dd-b"),
        "{dests:#}"
    );
    // The one-destination task became completed (a running server may
    // already have deleted it as a task with no destinations left).
    let events = s.events();
    let finished = events_of(&events, "task.finished", single);
    assert!(
        finished
            .iter()
            .any(|m| m.contains("completed") && m.contains("dd-b")),
        "{finished:?}"
    );
    let o = s.run(&["task", "show", &single.to_string(), "--json"]);
    if o.status.success() {
        let t: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(t["status"], "completed", "{t:#}");
        assert!(names(&t).is_empty(), "{t:#}");
    } else {
        assert!(!events_of(&events, "task.expired", single).is_empty());
    }
    // The other task keeps only its other destination, which had finished.
    let t = show(&s, multi);
    assert_eq!(names(&t), ["dd-a"], "{t:#}");
    assert_eq!(dest(&t, "dd-a")["status"], "succeeded", "{t:#}");
    assert_eq!(t["status"], "completed", "{t:#}");

    // With no server, the CLI applies retention as it opens the store.
    s.kill();
    let list = s.json(&["task", "list", "--json"]);
    assert!(!ids(&list).contains(&single), "{list:#}");
    assert!(ids(&list).contains(&multi), "{list:#}");
    let expired = events_of(&s.events(), "task.expired", single);
    assert!(
        expired.iter().any(|m| m.contains("no destinations")),
        "{expired:?}"
    );
}

/// Seed: administrator tasks are deleted "when the number of devices
/// subject to the task becomes 0", by a running server too (its scheduler
/// applies retention periodically).
#[test]
fn running_server_deletes_a_task_left_without_destinations() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "zd-a");
    let marks = tempfile::tempdir().unwrap();
    let pkg = logged_package(&s, &marks.path().join("runs.log"), "zdpkg");
    // Starts tomorrow: it stays waiting.
    let tomorrow = rfc3339(now() + DAY);
    let id = task_id(&create_task(&s, &pkg, "zd-a", &["--at", &tomorrow]));
    s.ok(&["dest", "rm", "zd-a"]);
    wait_until(
        DEADLINE,
        &format!("the server to delete task {id}, left without destinations"),
        || (!listed(&s, id)).then_some(()),
        || format!("{}\n{}", s.diagnostics(), a.diagnostics()),
    );
    let expired = events_of(&s.events(), "task.expired", id);
    assert!(
        expired.iter().any(|m| m.contains("no destinations")),
        "{expired:?}"
    );
}

/// Seed: "The same operation occurs when a target computer is moved to be
/// under another management server in a multi-server configuration."
/// (Takes about 25 s: the first server answers the agent's long-poll with
/// the move order only when the poll times out, not when it is given.)
#[test]
fn moved_destination_leaves_its_tasks_and_works_for_the_new_server() {
    let s1 = Server::start();
    let s2 = Server::start();
    let (_, t1) = s1.token(true);
    let (_, t2) = s2.token(true);
    let m = Agent::enrolled(&s1, &t1, "mv-m");
    let k = Agent::enrolled(&s1, &t1, "mv-k");
    s1.wait_dest("mv-m", "online", &[&m]);

    let marks = tempfile::tempdir().unwrap();
    let log = marks.path().join("runs.log");
    let pkg1 = logged_package(&s1, &log, "mvone");
    let tomorrow = rfc3339(now() + DAY);
    let single = task_id(&create_task(&s1, &pkg1, "mv-m", &["--at", &tomorrow]));
    let multi = task_id(&create_task(&s1, &pkg1, "mv-m,mv-k", &["--at", &tomorrow]));

    let d = s1.json(&[
        "dest", "move", "mv-m", "--server", &s2.addr, "--token", &t2, "--json",
    ]);
    assert_eq!(d["moving_to"], s2.addr.as_str(), "{d:#}");

    let agents = [&m, &k];
    let in_list = |s: &Server, name: &str| {
        s.json(&["dest", "list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == name)
    };
    wait_until(
        DEADLINE,
        "mv-m to leave the first server",
        || (!in_list(&s1, "mv-m")).then_some(()),
        || format!("{}\n{}", s1.diagnostics(), m.diagnostics()),
    );
    s2.wait_dest("mv-m", "online", &agents);
    assert!(in_list(&s1, "mv-k"));
    assert!(!in_list(&s2, "mv-k"));
    let err = s1.err(&["dest", "show", "mv-m"]);
    assert!(err.contains("mv-m"), "{err}");

    // Its tasks on the first server: as for a deleted destination.
    let events = s1.events();
    assert!(
        events_of(&events, "task.finished", single)
            .iter()
            .any(|m| m.contains("completed")),
        "{events:#?}"
    );
    let o = s1.run(&["task", "show", &single.to_string(), "--json"]);
    if o.status.success() {
        let t: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(t["status"], "completed", "{t:#}");
        assert!(names(&t).is_empty(), "{t:#}");
    }
    let t = show(&s1, multi);
    assert_eq!(names(&t), ["mv-k"], "{t:#}");
    assert_eq!(t["status"], "scheduled", "{t:#}");
    assert!(
        events.iter().any(|e| e["kind"] == "agent.removed"
            && e["message"].as_str().unwrap_or("").contains("moved")),
        "{events:#?}"
    );

    // The new server's work reaches it.
    let pkg2 = logged_package(&s2, &log, "mvtwo");
    let t = create_task(&s2, &pkg2, "mv-m", &[]);
    let t = s2.wait_task_finished(task_id(&t), &agents);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(dest(&t, "mv-m")["status"], "succeeded", "{t:#}");
    assert_eq!(ran(&log, &m, "install", "mvtwo"), 1);
    assert_eq!(ran(&log, &m, "install", "mvone"), 0);
}

// ---- retention ----------------------------------------------------------------

/// Seed: administrator tasks are deleted "when 30 days have passed after
/// the completion of distribution", by a running server. Task A completes
/// now, task B two days later; at +31 days A is gone and B (29 days after
/// its completion) is still listed; at +33 days B is gone too.
#[test]
fn running_server_deletes_admin_tasks_30_days_after_completion() {
    let clock = ClockFile::new();
    let s = server_with_clock(&clock, &[]);
    let (_, token) = s.token(true);
    let x = Agent::enrolled(&s, &token, "rt-x");
    let marks = tempfile::tempdir().unwrap();
    let pkg = logged_package(&s, &marks.path().join("runs.log"), "rtpkg");

    let a = task_id(&create_task(&s, &pkg, "rt-x", &["--name", "A"]));
    assert_eq!(s.wait_task_finished(a, &[&x])["status"], "completed");
    clock.set(2 * DAY);
    let b = task_id(&create_task(&s, &pkg, "rt-x", &["--name", "B"]));
    assert_eq!(s.wait_task_finished(b, &[&x])["status"], "completed");

    clock.set(31 * DAY);
    wait_until(
        DEADLINE,
        &format!("the server to delete task {a}, completed 31 days ago"),
        || (!listed(&s, a)).then_some(()),
        || s.diagnostics(),
    );
    assert!(
        listed(&s, b),
        "task {b}, completed 29 days ago, was deleted"
    );
    let expired = events_of(&s.events(), "task.expired", a);
    assert!(expired.iter().any(|m| m.contains("30 days")), "{expired:?}");

    clock.set(33 * DAY);
    wait_until(
        DEADLINE,
        &format!("the server to delete task {b}, completed 31 days ago"),
        || (!listed(&s, b)).then_some(()),
        || s.diagnostics(),
    );
}

/// Seed, the two classes of tasks and their retention: administrator
/// tasks go 30 days after completion; tasks of automatic countermeasures
/// go 7 days after completion or when they have no devices left. No
/// server runs: each CLI call opens the store and applies the rules with
/// the injected clock. Countermeasure tasks have no command yet (they come
/// with security policies), so they are written into the database.
#[test]
fn retention_30_days_for_admin_7_days_for_countermeasure_tasks() {
    let clock = ClockFile::new();
    let mut s = Server::start();
    let (_, token) = s.token(true);
    let mut x = Agent::enrolled(&s, &token, "cm-x");
    let mut y = Agent::enrolled(&s, &token, "cm-y");
    s.wait_dest("cm-y", "online", &[&y]);
    let marks = tempfile::tempdir().unwrap();
    let pkg = logged_package(&s, &marks.path().join("runs.log"), "cmpkg");
    let admin = task_id(&create_task(&s, &pkg, "cm-x", &["--name", "admin"]));
    let t = s.wait_task_finished(admin, &[&x]);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(t["class"], "admin");
    s.kill();
    x.kill();
    y.kill();

    let db = rusqlite::Connection::open(s.data().join("courier.db")).unwrap();
    db.pragma_update(None, "foreign_keys", "ON").unwrap();
    let dest_id = |name: &str| -> i64 {
        db.query_row("SELECT id FROM destinations WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let (dx, dy) = (dest_id("cm-x"), dest_id("cm-y"));
    let t0 = now();
    let insert = |name: &str, dest: i64, completed: Option<i64>| -> i64 {
        db.execute(
            "INSERT INTO tasks (name, type, class, package_id, package_name, created_at, completed_at)
             VALUES (?1, 'install', 'countermeasure', ?2, 'cmpkg', ?3, ?4)",
            rusqlite::params![name, pkg["id"].as_i64().unwrap(), t0, completed],
        )
        .unwrap();
        let id = db.last_insert_rowid();
        let status = if completed.is_some() {
            "succeeded"
        } else {
            "waiting"
        };
        db.execute(
            "INSERT INTO task_destinations (task_id, destination_id, status, attempt, updated_at)
             VALUES (?1, ?2, ?3, 1, ?4)",
            rusqlite::params![id, dest, status, t0],
        )
        .unwrap();
        id
    };
    let cm_now = insert("countermeasure done now", dx, Some(t0));
    let cm_later = insert("countermeasure done in 2 days", dx, Some(t0 + 2 * DAY));
    let cm_open = insert("countermeasure on cm-y", dy, None);
    drop(db);

    let list = local_json(&s, &clock, &["task", "list", "--json"]);
    assert_eq!(ids(&list), [admin, cm_now, cm_later, cm_open], "{list:#}");
    for t in list.as_array().unwrap() {
        let class = if task_id(t) == admin {
            "admin"
        } else {
            "countermeasure"
        };
        assert_eq!(t["class"], class, "{t:#}");
    }

    // No devices left: a countermeasure task goes too.
    let o = local(&s, &clock, &["dest", "rm", "cm-y"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let list = local_json(&s, &clock, &["task", "list", "--json"]);
    assert_eq!(ids(&list), [admin, cm_now, cm_later], "{list:#}");
    let expired = events_of(&local_events(&s, &clock), "task.expired", cm_open);
    assert!(
        expired.iter().any(|m| m.contains("no destinations")),
        "{expired:?}"
    );

    clock.set(6 * DAY);
    let list = local_json(&s, &clock, &["task", "list", "--json"]);
    assert_eq!(ids(&list), [admin, cm_now, cm_later], "{list:#}");

    clock.set(8 * DAY);
    let list = local_json(&s, &clock, &["task", "list", "--json"]);
    assert_eq!(ids(&list), [admin, cm_later], "{list:#}");
    let expired = events_of(&local_events(&s, &clock), "task.expired", cm_now);
    assert!(expired.iter().any(|m| m.contains("7 days")), "{expired:?}");

    clock.set(29 * DAY);
    let list = local_json(&s, &clock, &["task", "list", "--json"]);
    assert_eq!(ids(&list), [admin], "{list:#}");

    clock.set(31 * DAY);
    let list = local_json(&s, &clock, &["task", "list", "--json"]);
    assert!(ids(&list).is_empty(), "{list:#}");
    let expired = events_of(&local_events(&s, &clock), "task.expired", admin);
    assert!(expired.iter().any(|m| m.contains("30 days")), "{expired:?}");
}

// ---- schedules ----------------------------------------------------------------

/// Issue: `--at TIME` (RFC 3339 or local "YYYY-MM-DD HH:MM"); the task is
/// `scheduled` and its agents get nothing until then.
#[test]
fn scheduled_task_waits_for_its_start_time() {
    let clock = ClockFile::new();
    let s = server_with_clock(&clock, &[]);
    let (_, token) = s.token(true);
    let x = Agent::enrolled(&s, &token, "at-x");
    let marks = tempfile::tempdir().unwrap();
    let log = marks.path().join("runs.log");
    let pkg = logged_package(&s, &log, "atpkg");
    let other = logged_package(&s, &log, "atwitness");

    let at = rfc3339(clock.now() + 2 * HOUR);
    let t = create_task(&s, &pkg, "at-x", &["--at", &at]);
    let id = task_id(&t);
    assert_eq!(t["status"], "scheduled", "{t:#}");
    assert_eq!(t["start_at"], at.as_str(), "{t:#}");
    witness(&s, &other, &x);
    let t = show(&s, id);
    assert_eq!(t["status"], "scheduled", "{t:#}");
    assert_eq!(dest(&t, "at-x")["status"], "waiting", "{t:#}");
    assert_eq!(ran(&log, &x, "install", "atpkg"), 0);
    let list = s.json(&["task", "list", "--json"]);
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| task_id(t) == id)
        .unwrap();
    assert_eq!(listed["status"], "scheduled", "{list:#}");

    // Local time, as admins type it: read in the CLI's time zone (the
    // second one a POSIX TZ string, nine hours east of UTC, so no tzdata
    // is needed).
    for (tz, expect) in [
        ("UTC", "2030-01-02T03:04:00Z"),
        ("<+09>-9", "2030-01-01T18:04:00Z"),
    ] {
        let o = s
            .cmd()
            .env("TZ", tz)
            .args([
                "task",
                "create",
                "--package",
                &pkg["id"].to_string(),
                "--to",
                "at-x",
                "--at",
                "2030-01-02 03:04",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let l: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(l["start_at"], expect, "TZ={tz}: {l:#}");
        assert_eq!(l["status"], "scheduled", "{l:#}");
        s.ok(&["task", "rm", &l["id"].to_string()]);
    }

    // Three hours later it runs.
    clock.set(3 * HOUR);
    nudge(&s, &other, &x);
    let t = s.wait_task_finished(id, &[&x]);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(dest(&t, "at-x")["status"], "succeeded", "{t:#}");
    assert_eq!(ran(&log, &x, "install", "atpkg"), 1);
}

/// Issue: a daily window (`--window HH:MM-HH:MM`, server time) outside
/// which no new installation starts.
#[test]
fn window_holds_installs_until_it_opens() {
    let clock = ClockFile::new();
    let s = server_with_clock(&clock, &[]);
    let (_, token) = s.token(true);
    let x = Agent::enrolled(&s, &token, "wn-x");
    let marks = tempfile::tempdir().unwrap();
    let log = marks.path().join("runs.log");
    let pkg = logged_package(&s, &log, "wnpkg");
    let other = logged_package(&s, &log, "wnwitness");

    // Opens in two hours, closes in three (UTC: the server runs with TZ=UTC).
    let t0 = clock.now();
    let window = format!("{}-{}", hh_mm(t0 + 2 * HOUR), hh_mm(t0 + 3 * HOUR));
    let t = create_task(&s, &pkg, "wn-x", &["--window", &window]);
    let id = task_id(&t);
    assert_eq!(t["window"], window.as_str(), "{t:#}");
    witness(&s, &other, &x);
    let t = show(&s, id);
    assert_eq!(t["status"], "running", "{t:#}");
    assert_eq!(dest(&t, "wn-x")["status"], "waiting", "{t:#}");
    assert_eq!(ran(&log, &x, "install", "wnpkg"), 0);

    // Inside the window: it runs.
    clock.set(2 * HOUR + HOUR / 2);
    nudge(&s, &other, &x);
    let t = s.wait_task_finished(id, &[&x]);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(dest(&t, "wn-x")["status"], "succeeded", "{t:#}");
    assert_eq!(ran(&log, &x, "install", "wnpkg"), 1);
}

/// DESIGN: "Errors: one clear line on stderr, exit code 1 (2 for usage
/// errors), nothing half-done". A window that is not HH:MM-HH:MM would
/// otherwise hold nothing, silently.
#[test]
fn malformed_window_is_refused() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let _x = Agent::enrolled(&s, &token, "bw-x");
    let marks = tempfile::tempdir().unwrap();
    let pkg = logged_package(&s, &marks.path().join("runs.log"), "bwpkg");
    for bad in ["nonsense", "22:00-25:00", "06:00-06:00"] {
        let o = s.run(&[
            "task",
            "create",
            "--package",
            &pkg["id"].to_string(),
            "--to",
            "bw-x",
            "--window",
            bad,
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(1 | 2)),
            "--window {bad} accepted: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(err.contains(bad), "the error should name {bad}: {err}");
    }
    assert!(ids(&s.json(&["task", "list", "--json"])).is_empty());
}

// ---- limits -------------------------------------------------------------------

/// Issue: per-server limits on concurrent transfers and bandwidth. With
/// one transfer at a time, two agents still both get the package.
#[test]
fn one_transfer_at_a_time_still_serves_every_agent() {
    let s = Server::start_with(&["--max-transfers", "1", "--bandwidth", "16MiB/s"]);
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "lim-a");
    let b = Agent::enrolled(&s, &token, "lim-b");

    // 6 MiB nothing compresses: each transfer takes a while at 16 MiB/s,
    // so the two compete for the one slot.
    const LEN: usize = 6 << 20;
    let mut payload = vec![0u8; LEN];
    blake3::Hasher::new()
        .update(b"courier lifecycle limits")
        .finalize_xof()
        .fill(&mut payload);
    let zip = s.input("big.zip");
    make_zip(
        &zip,
        &[
            (
                "check.sh",
                format!("test \"$(wc -c < payload.bin)\" -eq {LEN} && echo complete\n").as_bytes(),
            ),
            ("payload.bin", &payload),
        ],
    );
    let pkg = s.json(&[
        "package",
        "add",
        zip.to_str().unwrap(),
        "--install-command",
        "sh check.sh",
        "--json",
    ]);
    let t = create_task(&s, &pkg, "lim-a,lim-b", &[]);
    let t = s.wait_task_finished(task_id(&t), &[&a, &b]);
    assert_eq!(t["status"], "completed", "{t:#}");
    for n in ["lim-a", "lim-b"] {
        let d = dest(&t, n);
        assert_eq!(d["status"], "succeeded", "{t:#}");
        assert_eq!(d["transferred"], pkg["size"], "{t:#}");
    }
}

/// DESIGN: usage errors exit 2 with one clear line. A rate that is not a
/// rate is one, like any other bad flag value (`--at tomorrow`).
#[test]
fn bad_bandwidth_is_a_usage_error() {
    let c = Courier::new();
    let mut cmd = c.cmd();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--bandwidth", "fast"]);
    let o = run_bounded(cmd);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("For more information"))
        .collect();
    assert_eq!(lines.len(), 1, "one line expected: {err:?}");
    assert!(lines[0].contains("fast"), "{err}");
}

/// Issue: limits come from flags or the config file; a config file with a
/// key courier does not know is refused, naming the file and the key.
#[test]
fn config_file_with_an_unknown_key_is_refused() {
    let c = Courier::new();
    fs::create_dir_all(c.data()).unwrap();
    fs::write(
        c.data().join("courier.toml"),
        "[server]\nmax_transfer = 4\n",
    )
    .unwrap();
    let mut cmd = c.cmd();
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    let o = run_bounded(cmd);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.contains("courier.toml"), "{err}");
    assert!(err.contains("max_transfer"), "{err}");
    assert!(!c.data().join("server.json").exists());
}

// ---- automatic retries ----------------------------------------------------

/// Issue: "Automatic retries for transient failures ... with backoff and
/// a cap, visible as attempt counts". Exit code 1618 cannot be produced on
/// Linux (exit codes are 8 bits), so the transient failure here is the
/// agent being unable to make its work dir for the attempt (a file stands
/// at `<agent data>/work/<task>-<attempt>`, put there before the first
/// attempt). The retry waits out its backoff (30 s, jumped over with the
/// clock) and succeeds.
#[test]
fn transient_failure_is_retried_after_its_backoff() {
    let clock = ClockFile::new();
    let s = server_with_clock(&clock, &[]);
    let (_, token) = s.token(true);
    let mut x = Agent::enrolled(&s, &token, "re-x");
    s.wait_dest("re-x", "online", &[&x]);
    x.stop();
    let marks = tempfile::tempdir().unwrap();
    let log = marks.path().join("runs.log");
    let pkg = logged_package(&s, &log, "repkg");
    let other = logged_package(&s, &log, "rewitness");
    let id = task_id(&create_task(&s, &pkg, "re-x", &[]));
    fs::create_dir_all(x.data().join("work")).unwrap();
    fs::write(x.data().join("work").join(format!("{id}-1")), "in the way").unwrap();
    x.start();

    let t = s.wait_task(id, &[&x], "an automatic retry to be scheduled", |t| {
        dest(t, "re-x")["retries"] == 1
    });
    let d = dest(&t, "re-x");
    assert_eq!(d["status"], "waiting", "{t:#}");
    assert_eq!(d["attempt"], 2, "{t:#}");
    let msg = d["message"].as_str().unwrap_or("");
    assert!(msg.contains("automatic retry 1/"), "{t:#}");
    assert!(msg.contains("work dir"), "{t:#}");
    assert_eq!(t["status"], "running", "{t:#}");
    assert_eq!(events_of(&s.events(), "task.retry", id).len(), 1);

    // Not before its backoff.
    witness(&s, &other, &x);
    let t = show(&s, id);
    assert_eq!(dest(&t, "re-x")["status"], "waiting", "{t:#}");
    assert_eq!(dest(&t, "re-x")["attempt"], 2, "{t:#}");
    assert_eq!(ran(&log, &x, "install", "repkg"), 0);

    clock.set(60);
    nudge(&s, &other, &x);
    let t = s.wait_task_finished(id, &[&x]);
    assert_eq!(t["status"], "completed", "{t:#}");
    let d = dest(&t, "re-x");
    assert_eq!(d["status"], "succeeded", "{t:#}");
    assert_eq!(d["attempt"], 2, "{t:#}");
    assert_eq!(d["retries"], 1, "{t:#}");
    assert_eq!(ran(&log, &x, "install", "repkg"), 1);
}

/// Issue: "installation failures are never retried silently". The script
/// says `exit 1603` (fatal error during installation); Linux keeps the
/// low 8 bits, 67. Either way: failed at once, attempt 1, no retry.
#[test]
fn installation_failure_is_not_retried() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let x = Agent::enrolled(&s, &token, "nr-x");
    let pkg = script_package(&s, "fatal.sh", "echo 'fatal error' >&2\nexit 1603\n");
    let t = create_task(&s, &pkg, "nr-x", &[]);
    let id = task_id(&t);
    let t = s.wait_task_finished(id, &[&x]);
    assert_eq!(t["status"], "failed", "{t:#}");
    let d = dest(&t, "nr-x");
    assert_eq!(d["status"], "failed", "{t:#}");
    assert_eq!(d["exit_code"], 1603 & 0xff, "{t:#}");
    assert_eq!(d["attempt"], 1, "{t:#}");
    assert_eq!(d["retries"], 0, "{t:#}");
    let events = s.events();
    assert!(events_of(&events, "task.retry", id).is_empty());
    assert_eq!(events_of(&events, "task.failed", id).len(), 1);
}
