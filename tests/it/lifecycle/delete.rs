//! Deleting tasks: a running one is stopped on its agent first, and the
//! ids of deleted tasks are never given again.

use std::fs;

use super::{DAY, events_of, listed, logged_package, now, rfc3339, script_package};
use crate::procs::{Agent, DEADLINE, Server, create_task, dest, task_id, wait_until};

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
