//! Rollouts in rings with real agents: the canary ring fails, the gate
//! trips and pauses the task before the next ring gets anything; resumed,
//! the next ring runs.

use serde_json::{Value, json};

use super::add_package;
use crate::procs::{Agent, DEADLINE, Server, create_task, dest, task_id, wait_until};

#[test]
fn a_failing_canary_trips_the_gate_and_the_rest_waits_until_resumed() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let agents: Vec<Agent> = ["pc-a", "pc-b", "pc-c"]
        .iter()
        .map(|n| Agent::enrolled(&s, &token, n))
        .collect();
    // The first run fails (and leaves a mark), every later one succeeds:
    // whichever destination is the canary fails.
    let marks = tempfile::tempdir().unwrap();
    let mark = marks.path().join("ran-once");
    let file = s.input("canary.sh");
    std::fs::write(
        &file,
        format!(
            "if [ -e '{m}' ]; then exit 0; fi\ntouch '{m}'\necho 'error: canary broke' >&2\nexit 4\n",
            m = mark.display()
        ),
    )
    .unwrap();
    let pkg = add_package(&s, &file, &["--install-command", "sh canary.sh"]);

    // Refused: a gate without rings, and rings that do not parse.
    let id = pkg["id"].to_string();
    let e = s.err(&[
        "task",
        "create",
        "--package",
        &id,
        "--all",
        "--rings",
        "5",
        "--gate",
        "failures=0",
    ]);
    assert!(e.contains("rings '5': give at least two rings"), "{e}");
    let e = s.err(&[
        "task",
        "create",
        "--package",
        &id,
        "--all",
        "--rings",
        "1,100%",
        "--gate",
        "fails=1",
    ]);
    assert!(e.contains("gate 'fails=1'"), "{e}");

    let t = create_task(
        &s,
        &pkg,
        "pc-a,pc-b,pc-c",
        &["--rings", "1,100%", "--gate", "failures=0"],
    );
    assert_eq!(t["gate"], "failures=0", "{t:#}");
    assert_eq!(t["rings"][0]["size"], 1, "{t:#}");
    assert_eq!(t["rings"][1]["size"], 2, "{t:#}");
    assert_eq!(t["rings"][1]["state"], "waiting", "{t:#}");
    let id = task_id(&t);
    let show = |s: &Server| s.json(&["task", "show", &id.to_string(), "--json"]);
    let refs: Vec<&Agent> = agents.iter().collect();
    let t = wait_until(
        DEADLINE,
        "the gate to pause the task",
        || {
            let t = show(&s);
            (t["status"] == "paused").then_some(t)
        },
        || refs.iter().map(|a| a.diagnostics()).collect::<String>(),
    );
    assert_eq!(
        t["paused_reason"], "gate failures=0 tripped after ring 1: 1 of 1 failed",
        "{t:#}"
    );
    assert_eq!(
        t["rings"],
        json!([
            {"size": 1, "state": "done", "failed": 1},
            {"size": 2, "state": "waiting", "failed": 0}
        ]),
        "{t:#}"
    );
    let states = |t: &Value| {
        let mut v: Vec<String> = t["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["status"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    // Paused in the same write that finished the canary: the others were
    // never handed out.
    assert_eq!(states(&t), ["failed", "waiting", "waiting"], "{t:#}");
    let text = s.ok(&["task", "show", &id.to_string()]);
    assert!(text.contains("paused: gate failures=0 tripped"), "{text}");
    assert!(
        text.contains("rings 1 (1 destinations, done, 1 failed) → 2"),
        "{text}"
    );
    assert!(
        s.events()
            .iter()
            .any(|e| e["kind"] == "task.paused" && e["subject"] == format!("task {id}")),
        "no task.paused event"
    );

    // Resumed: the second ring runs and succeeds.
    let r = s.json(&["task", "resume", &id.to_string(), "--json"]);
    assert_eq!(r["status"], "running", "{r:#}");
    let t = s.wait_task_finished(id, &refs);
    assert_eq!(states(&t), ["failed", "succeeded", "succeeded"], "{t:#}");
    assert_eq!(t["rings"][1]["state"], "done", "{t:#}");
    assert!(
        s.events().iter().any(|e| e["kind"] == "task.ring"),
        "no task.ring event"
    );
    // Nothing left to pause or resume.
    let e = s.err(&["task", "resume", &id.to_string()]);
    assert!(e.contains("is not paused"), "{e}");
    let e = s.err(&["task", "pause", &id.to_string()]);
    assert!(e.contains("has finished"), "{e}");
    let _ = dest(&t, "pc-a");
}

#[test]
fn an_administrator_pauses_and_resumes_a_task() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let mut a = Agent::enrolled(&s, &token, "pc-1");
    s.wait_dest("pc-1", "online", &[&a]);
    a.stop();
    let file = s.input("ok.sh");
    std::fs::write(&file, "exit 0\n").unwrap();
    let pkg = add_package(&s, &file, &["--install-command", "sh ok.sh"]);
    let t = create_task(&s, &pkg, "pc-1", &[]);
    let id = task_id(&t).to_string();
    let p = s.json(&["task", "pause", &id, "--json"]);
    assert_eq!(p["status"], "paused", "{p:#}");
    assert_eq!(p["paused_reason"], "paused by an administrator");
    let e = s.err(&["task", "pause", &id]);
    assert!(e.contains("is paused already"), "{e}");
    // The agent comes back and gets nothing while the task is paused: a
    // witness task created after it finishes first.
    a.start();
    let witness = create_task(&s, &pkg, "pc-1", &[]);
    s.wait_task_finished(task_id(&witness), &[&a]);
    let held = s.json(&["task", "show", &id, "--json"]);
    assert_eq!(dest(&held, "pc-1")["status"], "waiting", "{held:#}");
    s.json(&["task", "resume", &id, "--json"]);
    let t = s.wait_task_finished(task_id(&t), &[&a]);
    assert_eq!(dest(&t, "pc-1")["status"], "succeeded", "{t:#}");
}
