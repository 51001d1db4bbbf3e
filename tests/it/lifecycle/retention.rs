//! Automatic deletion of tasks (retention), by a running server and by a
//! CLI call that opens the store itself.

use serde_json::Value;

use super::{
    ClockFile, DAY, events_of, ids, listed, local, logged_package, now, server_with_clock,
};
use crate::procs::{Agent, DEADLINE, Server, create_task, task_id, wait_until};
use crate::support::Courier;

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
