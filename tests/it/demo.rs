//! `courier demo` on a data dir the admin gives: kept afterwards, and
//! reopened as it was by the next demo on it.

use std::process::Command;

use serde_json::Value;

use crate::support::Courier;

fn headless_demo(c: &Courier, via_env: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_courier"));
    if via_env {
        cmd.env("COURIER_DATA", c.data());
    } else {
        cmd.env_remove("COURIER_DATA").arg("--data").arg(c.data());
    }
    let o = cmd
        .args(["demo", "--headless", "--agents", "1"])
        .env("TMPDIR", c.dir.path())
        .output()
        .expect("run courier demo");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "courier demo failed: {stderr}");
    assert!(
        stderr.contains(&format!("stays in {}", c.data().display())),
        "the demo should say where its data stays: {stderr}"
    );
    String::from_utf8(o.stdout).unwrap()
}

fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// Issue "the console at 2 a.m.": the demo ignored `--data` and
/// `COURIER_DATA` (though `demo --help` lists `--data`) and deleted
/// everything at the end.
#[test]
fn demo_honours_data_and_keeps_it() {
    let c = Courier::new();
    let first = headless_demo(&c, true);
    assert!(first.contains("Roll out hello-tool 2.1"), "{first}");

    // Kept: what the demo made is there for the CLI afterwards, and no
    // throwaway dir was left in TMPDIR.
    let tasks = c.json(&["task", "list", "--json"]);
    assert_eq!(tasks.as_array().unwrap().len(), 4, "{tasks:#}");
    let packages = c.json(&["package", "list", "--json"]);
    assert_eq!(packages.as_array().unwrap().len(), 4, "{packages:#}");
    let dests = c.json(&["dest", "list", "--json"]);
    assert_eq!(names(&dests), ["demo-pc-01"], "{dests:#}");
    let scratch: Vec<_> = std::fs::read_dir(c.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("courier-demo-"))
        .collect();
    assert!(scratch.is_empty(), "{scratch:?}");

    // The next demo on it reopens it: same tasks, nothing registered twice,
    // its agent back with the identity it enrolled with.
    let second = headless_demo(&c, false);
    assert_eq!(second, first);
    let again = c.json(&["task", "list", "--json"]);
    assert_eq!(names(&again), names(&tasks), "{again:#}");
    let packages = c.json(&["package", "list", "--json"]);
    assert_eq!(packages.as_array().unwrap().len(), 4, "{packages:#}");
    let dests = c.json(&["dest", "list", "--json"]);
    assert_eq!(names(&dests), ["demo-pc-01"], "{dests:#}");
}
