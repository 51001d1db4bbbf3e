//! `courier log`: every registration, edit and removal is an event.

use serde_json::Value;

use crate::support::{Courier, fixture};

#[test]
fn package_changes_are_logged_in_order() {
    let c = Courier::new();
    let msi = fixture("hello.msi");
    c.ok(&["package", "add", msi.to_str().unwrap()]);
    c.ok(&["package", "edit", "1", "--name", "Renamed"]);
    // An edit that changes nothing is not an event.
    c.ok(&["package", "edit", "1", "--name", "Renamed"]);
    c.ok(&["package", "rm", "1"]);
    let out = c.ok(&["log", "--json"]);
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["package.added", "package.edited", "package.removed"]
    );
    assert!(events.iter().all(|e| e["subject"] == "package 1"));
    assert!(
        events[1]["message"]
            .as_str()
            .unwrap()
            .contains("'Courier Hello' → 'Renamed'")
    );
    assert!(events[0]["at"].as_str().unwrap().ends_with('Z'));

    let text = c.ok(&["log", "-n", "1"]);
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains("package.removed"), "{text}");
}

#[test]
fn refused_registration_logs_nothing() {
    let c = Courier::new();
    c.err(&[
        "package",
        "add",
        fixture("hello-nsis.exe").to_str().unwrap(),
    ]);
    assert_eq!(c.ok(&["log"]), "");
}

#[test]
fn status_says_when_no_server_runs() {
    let c = Courier::new();
    let out = c.ok(&["status"]);
    assert!(out.contains("not running"), "{out}");
    let s = c.json(&["status", "--json"]);
    assert_eq!(s["listen"], Value::Null);
    assert_eq!(s["total"], 0);
}
