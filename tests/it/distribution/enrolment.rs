//! Agent enrolment: bad tokens are refused, an unapproved agent gets
//! nothing.

use std::time::Duration;

use serde_json::Value;

use super::{add_package, marker_script, markers};
use crate::procs::{Agent, Server, dest, task_id};
use crate::support::make_zip;

/// Runs an agent that must be refused at enrolment: it exits 1 with one
/// line on stderr, which is returned. It leaves no identity behind.
fn refused(s: &Server, token: &str, name: &str) -> String {
    let mut a = Agent::enrol(s, token, name);
    let status = a.wait_exit();
    let err = a.stderr();
    assert_eq!(
        status.code(),
        Some(1),
        "{name}: {status}\n{}",
        a.diagnostics()
    );
    assert_eq!(err.lines().count(), 1, "{name}: one line expected: {err:?}");
    assert!(
        !a.data().join("identity.json").exists(),
        "{name}: identity written"
    );
    err.trim_end().to_string()
}

/// The agent.refused events of the log, as (subject, message).
fn refusals(s: &Server) -> Vec<(String, String)> {
    s.events()
        .into_iter()
        .filter(|e| e["kind"] == "agent.refused")
        .map(|e| {
            (
                e["subject"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn bad_tokens_are_refused_with_a_clear_line_and_an_event() {
    let s = Server::start();
    let (_, good) = s.token(true);
    let fingerprint = good.rsplit('.').next().unwrap().to_string();

    // The right server (its CA fingerprint), a secret it never issued.
    let wrong = format!("ct1.{}.{fingerprint}", "0123456789abcdef".repeat(2));
    let err = refused(&s, &wrong, "wrong-secret");
    assert!(err.starts_with("courier: "), "{err}");
    assert!(err.contains("token"), "{err}");
    let events = refusals(&s);
    assert!(
        events
            .iter()
            .any(|(subj, msg)| subj.contains("wrong-secret") && msg.contains("token")),
        "{events:?}"
    );

    // A real token, but of another courier server: the agent will not
    // even talk to this one.
    let other = crate::support::Courier::new();
    let foreign = other.json(&["token", "create", "--json"]);
    let foreign = foreign["token"].as_str().unwrap();
    assert_ne!(foreign.rsplit('.').next().unwrap(), fingerprint);
    let err = refused(&s, foreign, "foreign");
    assert!(err.contains("token"), "{err}");
    assert!(err.contains("fingerprint"), "{err}");

    // A token that worked once, then was revoked.
    let (id, once) = s.token(true);
    let first = Agent::enrolled(&s, &once, "before-revoke");
    s.ok(&["token", "revoke", &id.to_string()]);
    let err = refused(&s, &once, "after-revoke");
    assert!(err.contains("revoked"), "{err}");
    assert!(
        refusals(&s)
            .iter()
            .any(|(subj, msg)| subj.contains("after-revoke") && msg.contains("revoked")),
        "{:?}",
        refusals(&s)
    );

    // A token past its lifetime (the shortest there is: one second).
    let t = s.json(&["token", "create", "--ttl", "1s", "--auto-approve", "--json"]);
    let expires: jiff::Timestamp = t["expires_at"].as_str().unwrap().parse().unwrap();
    while jiff::Timestamp::now() <= expires + jiff::SignedDuration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let err = refused(&s, t["token"].as_str().unwrap(), "too-late");
    assert!(err.contains("expired"), "{err}");
    assert!(
        refusals(&s)
            .iter()
            .any(|(subj, msg)| subj.contains("too-late") && msg.contains("expired")),
        "{:?}",
        refusals(&s)
    );

    // Only the agent with a good token became a destination.
    let list = s.json(&["dest", "list", "--json"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["before-revoke"]);
    drop(first);
}

#[test]
fn unapproved_agent_gets_nothing_until_approved() {
    let s = Server::start();
    let (_, manual) = s.token(false);
    let (_, auto) = s.token(true);
    let waiting = Agent::enrolled(&s, &manual, "pc-wait");
    let approved = Agent::enrolled(&s, &auto, "pc-ok");
    assert!(
        waiting.stderr().contains("waiting for approval"),
        "{}",
        waiting.stderr()
    );
    assert_eq!(
        s.json(&["dest", "show", "pc-wait", "--json"])["status"],
        "pending"
    );
    assert_eq!(
        s.json(&["dest", "show", "pc-ok", "--json"])["status"],
        "online"
    );

    let marks = tempfile::tempdir().unwrap();
    let zip = s.input("app.zip");
    make_zip(
        &zip,
        &[
            ("setup/install.sh", marker_script(marks.path()).as_bytes()),
            ("setup/payload.txt", b"payload"),
        ],
    );
    let pkg = add_package(&s, &zip, &["--install-command", "sh setup/install.sh x"]);
    // The admin is told at once that one destination waits for approval.
    let o = s.run(&[
        "task",
        "create",
        "--package",
        &pkg["id"].to_string(),
        "--to",
        "pc-wait,pc-ok",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let warning = String::from_utf8_lossy(&o.stderr);
    assert!(
        warning.contains("pc-wait") && warning.contains("approv"),
        "{warning}"
    );
    let t: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = task_id(&t);

    let agents = [&waiting, &approved];
    let t = s.wait_task(id, &agents, "pc-ok to finish", |t| {
        dest(t, "pc-ok")["status"] == "succeeded"
    });
    assert_eq!(dest(&t, "pc-wait")["status"], "waiting", "{t:#}");
    assert_eq!(t["status"], "running", "{t:#}");
    assert_eq!(markers(marks.path()).len(), 1);
    // The pending agent may not fetch the content either way.
    let hash = pkg["hash"].as_str().unwrap();
    assert!(!waiting.data().join("cache").join(hash).exists());

    let d = s.json(&["dest", "approve", "pc-wait", "--json"]);
    assert_ne!(d["status"], "pending", "{d}");
    let t = s.wait_task_finished(id, &agents);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(dest(&t, "pc-wait")["status"], "succeeded", "{t:#}");
    assert_eq!(markers(marks.path()).len(), 2);
    s.wait_dest("pc-wait", "online", &agents);
}
