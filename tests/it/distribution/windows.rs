//! Windows packages sent to Linux agents: `task create` refuses unless
//! forced (the pre-flight knows), then warns, the
//! destination fails saying why, and a Windows folder gets nothing written.

use std::fs;

use serde_json::Value;

use super::add_package;
use crate::procs::{Agent, Server, dest, task_id};

#[test]
fn windows_installer_fails_on_linux_with_a_warning_first() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "linux-01");
    let pkg = add_package(&s, &crate::support::fixture("hello.msi"), &[]);
    // The pre-flight knows it cannot run there: refused unless forced.
    let e = s.err(&[
        "task",
        "create",
        "--package",
        &pkg["id"].to_string(),
        "--to",
        "linux-01",
    ]);
    assert!(
        e.contains("nothing would run: 0 will install, 1 do not fit the package"),
        "{e}"
    );
    let o = s.run(&[
        "task",
        "create",
        "--package",
        &pkg["id"].to_string(),
        "--to",
        "linux-01",
        "--force",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let warning = String::from_utf8_lossy(&o.stderr);
    assert!(
        warning.contains("linux-01") && warning.contains("Windows"),
        "{warning}"
    );
    let t: Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = s.wait_task_finished(task_id(&t), &[&a]);
    assert_eq!(t["status"], "failed", "{t:#}");
    let d = dest(&t, "linux-01");
    assert_eq!(d["status"], "failed", "{t:#}");
    let msg = d["message"].as_str().unwrap_or("");
    assert!(msg.contains("Windows") && msg.contains("linux"), "{t:#}");
}

/// A file package whose folder is a Windows path, sent to a Linux agent:
/// `task create` refuses unless forced, then warns, the destination fails
/// saying why, and nothing is
/// written anywhere (a Windows path is relative on Linux, so a careless
/// agent would write under its working directory).
#[test]
fn windows_folder_fails_on_linux_and_writes_nothing() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "linux-01");
    let file = s.input("app.conf");
    fs::write(&file, "x=1\n").unwrap();
    let pkg = add_package(&s, &file, &["--folder", "C:\\ProgramData\\App"]);
    let cwd = std::env::current_dir().unwrap();
    let o = s.run(&[
        "task",
        "create",
        "--package",
        &pkg["id"].to_string(),
        "--to",
        "linux-01",
        "--force",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let warning = String::from_utf8_lossy(&o.stderr);
    assert!(
        warning.contains("linux-01") && warning.contains("C:\\ProgramData\\App"),
        "{warning}"
    );
    let t: Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = s.wait_task_finished(task_id(&t), &[&a]);
    let d = dest(&t, "linux-01");
    assert_eq!(d["status"], "failed", "{t:#}");
    let msg = d["message"].as_str().unwrap_or("");
    assert!(msg.contains("not an absolute path on linux"), "{t:#}");
    assert!(!cwd.join("C:\\ProgramData\\App").exists());
}
