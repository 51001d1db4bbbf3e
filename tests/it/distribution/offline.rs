//! Agents and servers that go away: work waits for an agent that is
//! offline, outcomes wait for a server that is down.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::{add_package, marker_script, markers};
use crate::procs::{Agent, DEADLINE, Server, create_task, dest, task_id, wait_until};
use crate::support::make_zip;

#[test]
fn offline_agent_gets_its_work_when_it_comes_back() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let mut a = Agent::enrolled(&s, &token, "late-01");
    s.wait_dest("late-01", "online", &[&a]);
    a.stop();

    let marks = tempfile::tempdir().unwrap();
    let zip = s.input("late.zip");
    make_zip(
        &zip,
        &[
            ("setup/install.sh", marker_script(marks.path()).as_bytes()),
            ("setup/payload.txt", b"payload"),
        ],
    );
    let pkg = add_package(&s, &zip, &["--install-command", "sh setup/install.sh late"]);
    let t = create_task(&s, &pkg, "late-01", &[]);
    let id = task_id(&t);
    assert_eq!(dest(&t, "late-01")["status"], "waiting", "{t:#}");
    // Nobody is there to take it: it keeps waiting. (A negative check
    // needs some time; this only gives the server a chance to get it
    // wrong, it measures nothing.)
    std::thread::sleep(Duration::from_secs(2));
    let t = s.json(&["task", "show", &id.to_string(), "--json"]);
    assert_eq!(dest(&t, "late-01")["status"], "waiting", "{t:#}");
    assert_eq!(t["status"], "running", "{t:#}");
    assert!(markers(marks.path()).is_empty());

    // Started again with neither token nor server: its identity has both.
    a.start();
    let t = s.wait_task_finished(id, &[&a]);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(dest(&t, "late-01")["status"], "succeeded", "{t:#}");
    assert_eq!(markers(marks.path()).len(), 1);
    s.wait_dest("late-01", "online", &[&a]);
    assert_eq!(
        a.stderr().matches("enrolled as").count(),
        1,
        "enrolled again: {}",
        a.stderr()
    );
}

#[test]
fn outcome_reached_while_the_server_is_down_is_delivered_after() {
    let mut s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "outbox-01");

    // The install waits for the test's go-ahead, so the server can be
    // killed while it runs and the outcome found with no one to take it.
    let marks = tempfile::tempdir().unwrap();
    let started = marks.path().join("started");
    let go = marks.path().join("go");
    let script = format!(
        "touch '{}'\ni=0\nwhile [ ! -e '{}' ]; do sleep 0.05; i=$((i+1)); [ $i -lt 1200 ] || exit 9; done\necho finished\n",
        started.display(),
        go.display()
    );
    let zip = s.input("slow.zip");
    make_zip(&zip, &[("slow.sh", script.as_bytes())]);
    let pkg = add_package(&s, &zip, &["--install-command", "sh slow.sh"]);
    let t = create_task(&s, &pkg, "outbox-01", &[]);
    let id = task_id(&t);
    wait_until(
        DEADLINE,
        "the install command to start",
        || started.exists().then_some(()),
        || a.diagnostics(),
    );

    s.kill();
    fs::write(&go, "").unwrap();
    // The outcome waits on the agent's disk for the server.
    let reports = a.data().join("reports");
    let pending = |dir: &Path| -> usize {
        fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    };
    wait_until(
        DEADLINE,
        "the agent to keep its report on disk",
        || (pending(&reports) == 1).then_some(()),
        || a.diagnostics(),
    );

    s.restart();
    let t = s.wait_task_finished(id, &[&a]);
    assert_eq!(t["status"], "completed", "{t:#}");
    let d = dest(&t, "outbox-01");
    assert_eq!(d["status"], "succeeded", "{t:#}");
    assert!(
        d["output"].as_str().unwrap_or("").contains("finished"),
        "{t:#}"
    );
    wait_until(
        DEADLINE,
        "the delivered report to leave the agent's outbox",
        || (pending(&reports) == 0).then_some(()),
        || a.diagnostics(),
    );
}
