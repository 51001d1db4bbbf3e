//! What deleting a destination, or moving it under another server, does
//! to its tasks.

use serde_json::Value;

use super::{DAY, events_of, ids, listed, logged_package, names, now, ran, rfc3339, show};
use crate::procs::{Agent, DEADLINE, Server, create_task, dest, task_id, wait_until};

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
