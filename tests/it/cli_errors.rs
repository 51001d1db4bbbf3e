//! How the command line fails: under `--json` an error is one JSON object
//! on stderr (`{"error", "kind"}`) with the usual exit codes, a past
//! `--at` is refused, a missing `--to` names `--all`, and the console's
//! `--listen` is a flag of its own.

use std::net::TcpListener;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::procs::Server;
use crate::support::Courier;

/// Runs `args`, asserts the exit code, nothing on stdout and exactly one
/// line on stderr; returns that line.
fn fails(c: &Courier, args: &[&str], code: i32) -> String {
    let o = c.run(args);
    one_line(&o, args, code)
}

fn one_line(o: &Output, args: &[&str], code: i32) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(code),
        "courier {args:?}: stdout {} stderr {stderr}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        o.stdout.is_empty(),
        "courier {args:?}: stdout should be empty"
    );
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr:?}");
    stderr.trim_end().to_string()
}

/// The JSON error object of a failing `--json` command: exactly the keys
/// `error` and `kind`.
fn json_error(c: &Courier, args: &[&str], code: i32) -> (String, String) {
    let line = fails(c, args, code);
    let v: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("courier {args:?}: stderr is not JSON ({e}): {line}"));
    let obj = v.as_object().expect("a JSON object");
    assert_eq!(obj.len(), 2, "{line}");
    let error = obj["error"]
        .as_str()
        .expect("error is a string")
        .to_string();
    let kind = obj["kind"].as_str().expect("kind is a string").to_string();
    assert!(!error.starts_with("courier:"), "{line}");
    (error, kind)
}

/// Issue "the console at 2 a.m.": `--json` errors were plain text, which a
/// script cannot tell from output. Now they are an object whose kind is
/// the admin API's, in-process and over a server's admin socket alike.
#[test]
fn json_errors_are_one_object_with_the_api_kind() {
    let c = Courier::new();
    let (error, kind) = json_error(&c, &["package", "show", "7", "--json"], 1);
    assert_eq!(kind, "not_found");
    assert!(error.contains("package 7"), "{error}");

    // A file neither an installer nor given a folder: the rules refuse it.
    let file = c.input("notes.txt");
    std::fs::write(&file, "hello\n").unwrap();
    let (error, kind) = json_error(&c, &["package", "add", file.to_str().unwrap(), "--json"], 1);
    assert_eq!(kind, "refused");
    assert!(error.contains("--folder"), "{error}");

    // Without --json the same failure is the usual line.
    let line = fails(&c, &["package", "show", "7"], 1);
    assert_eq!(line, "courier: package 7: no such package");

    // Through a running server's admin socket.
    let s = Server::start();
    let (error, kind) = json_error(&s, &["token", "revoke", "42", "--json"], 1);
    assert_eq!(kind, "not_found");
    assert!(error.contains("token 42"), "{error}");
}

/// A usage error under `--json` is an object too, of kind `usage`, with
/// exit code 2; a missing `--to` names `--all`.
#[test]
fn usage_errors_under_json_are_objects_and_name_the_alternatives() {
    let c = Courier::new();
    let (error, kind) = json_error(&c, &["task", "create", "--package", "1", "--json"], 2);
    assert_eq!(kind, "usage");
    assert!(error.contains("--to") && error.contains("--all"), "{error}");

    let line = fails(&c, &["task", "create", "--package", "1"], 2);
    assert!(line.contains("--to") && line.contains("--all"), "{line}");
    let line = fails(&c, &["task", "edit", "1"], 2);
    assert!(
        line.contains("--to") && line.contains("--package"),
        "{line}"
    );

    let (error, kind) = json_error(&c, &["package", "show", "--json"], 2);
    assert_eq!(kind, "usage");
    assert!(error.contains("<ID>"), "{error}");
}

/// `--at` in the past was taken silently (the task ran at once); now it is
/// refused naming the time, and `--at now` says "at once".
#[test]
fn at_in_the_past_is_refused_and_now_is_accepted() {
    let c = Courier::new();
    let past = ["task", "create", "--package", "1", "--to", "pc-1"];
    let line = fails(&c, &[&past[..], &["--at", "2020-03-01 09:00"]].concat(), 2);
    assert!(line.contains("in the past"), "{line}");
    assert!(line.contains("2020-03-01"), "{line}");
    assert!(line.contains("--at now"), "{line}");
    let (error, kind) = json_error(
        &c,
        &[&past[..], &["--at", "2020-03-01T09:00:00Z", "--json"]].concat(),
        2,
    );
    assert_eq!(kind, "usage");
    assert!(error.contains("in the past"), "{error}");

    // "now" and a time to come pass the flag: what fails next is the
    // package, which does not exist.
    for at in ["now", "2099-01-01T00:00:00Z"] {
        let (error, kind) = json_error(&c, &[&past[..], &["--at", at, "--json"]].concat(), 1);
        assert_eq!(kind, "not_found", "--at {at}: {error}");
        assert!(error.contains("package 1"), "--at {at}: {error}");
    }
}

/// The console's port error told the admin to use `--listen`, which the
/// console did not accept; now it does, and a taken port is one line
/// naming the address and the way out.
#[test]
fn console_listen_on_a_taken_port_is_one_line_naming_it() {
    let c = Courier::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = c
        .cmd()
        .args(["--listen", &addr])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let line = one_line(&o, &["--listen", &addr], 1);
    assert!(line.contains(&format!("cannot listen on {addr}")), "{line}");
    assert!(line.contains("--listen ADDR"), "{line}");
    assert!(
        !c.data().join("admin.sock").exists(),
        "a console that did not start leaves no admin socket"
    );

    // Before another command it would be ignored: refused instead.
    let line = fails(&c, &["--listen", &addr, "status"], 2);
    assert!(line.contains("courier serve --listen"), "{line}");
}

/// `task wait` without a server would wait forever: nothing moves a task
/// on but `courier serve` and its agents. It says so at once.
#[test]
fn task_wait_without_a_server_says_nothing_would_move() {
    let c = Courier::new();
    let line = c.err(&["task", "wait", "1"]);
    assert!(line.contains("no server is running"), "{line}");
    let line = fails(&c, &["task", "wait", "1", "--timeout", "soon"], 2);
    assert!(line.contains("soon"), "{line}");
}
