//! Editing and copying tasks: what an edit or a copy keeps (package,
//! destinations, schedule) and what it changes.

use std::fs;

use super::{events_of, logged_package, names, now, ran, rfc3339, show};
use crate::procs::{Agent, Server, create_task, dest, task_id};

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
