//! courier.exe in its other roles under Wine: a Windows service, server
//! and admin CLI over the named pipe, and the library's unit tests.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::procs::{DEADLINE, Server, create_task, dest, task_id, wait_until};
use crate::support::fixture;

/// `sc query courier-agent`: its state word (RUNNING, STOPPED…), or None
/// when there is no such service.
fn service_state(prefix: &Prefix) -> Option<String> {
    let out = bounded(
        prefix.command("sc").args(["query", "courier-agent"]),
        Duration::from_secs(120),
    )
    .expect("sc query did not finish in 120 s");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.trim_start().starts_with("STATE"))?;
    line.split_whitespace().last().map(str::to_string)
}

fn wait_service_state(prefix: &Prefix, want: &str) {
    wait_until(
        DEADLINE,
        &format!("the service to be {want}"),
        || (service_state(prefix).as_deref() == Some(want)).then_some(()),
        || format!("{:?}\n{}", service_state(prefix), a_diagnostics(prefix)),
    );
}

#[test]
fn the_agent_runs_as_a_windows_service() {
    let wine = need_wine!();
    courier_exe();
    let prefix = Prefix::new(wine);
    let _diagnose = Diagnose(&prefix);
    let _up = prefix.keep_services_up();
    let s = Server::start();
    let (_, token) = s.token(true);
    let out = prefix.courier(&[
        "--data",
        AGENT_DATA,
        "agent",
        "install-service",
        "--server",
        &s.addr,
        "--token",
        &token,
        "--name",
        "win-svc",
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "install-service: {out:?}\n{}",
        a_diagnostics(&prefix)
    );
    assert!(said.contains("as win-svc"), "{said}");
    wait_service_state(&prefix, "RUNNING");
    s.wait_dest("win-svc", "online", &[]);

    let deliver = |name: &str| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        fs::write(&file, name).unwrap();
        let pkg = add(&s, &file, &["--folder", "C:\\courier-dist\\svc"]);
        let t = create_task(&s, &pkg, "win-svc", &[]);
        let t = s.wait_task_finished(task_id(&t), &[]);
        assert_eq!(
            dest(&t, "win-svc")["status"],
            "succeeded",
            "{t:#}\n{}",
            a_diagnostics(&prefix)
        );
        assert!(prefix.c_drive("C:\\courier-dist\\svc").join(name).is_file());
    };
    deliver("first.txt");

    // Stopped and started by the Service Control Manager, as `sc` does.
    let stop = bounded(
        prefix.command("sc").args(["stop", "courier-agent"]),
        Duration::from_secs(120),
    );
    assert!(stop.is_some_and(|o| o.status.success()), "sc stop failed");
    wait_service_state(&prefix, "STOPPED");
    let start = bounded(
        prefix.command("sc").args(["start", "courier-agent"]),
        Duration::from_secs(120),
    );
    assert!(start.is_some_and(|o| o.status.success()), "sc start failed");
    wait_service_state(&prefix, "RUNNING");
    deliver("second.txt");

    // A second install is refused, saying why, and changes nothing.
    let again = prefix.courier(&[
        "--data",
        AGENT_DATA,
        "agent",
        "install-service",
        "--server",
        &s.addr,
        "--token",
        &token,
    ]);
    assert!(!again.status.success());
    let why = String::from_utf8_lossy(&again.stderr);
    assert!(why.contains("installed already"), "{why}");
    assert_eq!(service_state(&prefix).as_deref(), Some("RUNNING"));

    let out = prefix.courier(&["agent", "uninstall-service"]);
    assert!(out.status.success(), "uninstall-service: {out:?}");
    assert_eq!(service_state(&prefix), None, "still registered");
    let out = prefix.courier(&["agent", "uninstall-service"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not installed"));
}

/// `courier.exe --data DIR ARGS --json` in the prefix, parsed.
fn windows_json(prefix: &Prefix, data: &str, args: &[&str]) -> Value {
    let mut all = vec!["--data", data];
    all.extend_from_slice(args);
    all.push("--json");
    let out = prefix.courier(&all);
    assert!(
        out.status.success(),
        "courier.exe {args:?} ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("courier.exe {args:?}: not JSON ({e})"))
}

#[test]
fn server_commands_and_agent_all_run_on_windows() {
    let wine = need_wine!();
    courier_exe();
    let prefix = Prefix::new(wine);
    let _diagnose = Diagnose(&prefix);
    const SERVER_DATA: &str = "C:\\courier server";
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let stderr = fs::File::create(prefix.dir.path().join("server.stderr")).unwrap();
    let mut server = Keeper(
        prefix
            .command(courier_exe())
            .args(["--data", SERVER_DATA, "serve", "--listen", &addr])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("wine courier.exe serve"),
    );
    let said = prefix.dir.path().join("server.stderr");
    wait_until(
        DEADLINE,
        "the Windows server to announce its admin pipe",
        || {
            let text = fs::read_to_string(&said).unwrap_or_default();
            if let Ok(Some(status)) = server.0.try_wait() {
                panic!("courier.exe serve exited ({status}): {text}");
            }
            text.contains(r"\\.\pipe\courier-").then_some(())
        },
        || fs::read_to_string(&said).unwrap_or_default(),
    );

    // The admin commands, over the pipe, and an agent of the same server.
    let token = windows_json(&prefix, SERVER_DATA, &["token", "create", "--auto-approve"]);
    let token = token["token"].as_str().expect("token").to_string();
    let _agent = WineAgent::enrolled(&prefix, &addr, &token, "win-all", &[]);
    let msi = format!("Z:{}", fixture("hello.msi").display()).replace('/', "\\");
    let pkg = windows_json(&prefix, SERVER_DATA, &["package", "add", &msi]);
    assert_eq!(pkg["format"], "msi", "{pkg:#}");
    let id = pkg["id"].to_string();
    windows_json(
        &prefix,
        SERVER_DATA,
        &["task", "create", "--package", &id, "--to", "win-all"],
    );
    let done = wait_until(
        DEADLINE,
        "the task to finish on the Windows server",
        || {
            let t = windows_json(&prefix, SERVER_DATA, &["task", "show", "1"]);
            (t["status"] != "running" && t["status"] != "waiting").then_some(t)
        },
        || fs::read_to_string(&said).unwrap_or_default(),
    );
    assert_eq!(done["status"], "completed", "{done:#}");
    assert!(
        prefix
            .c_drive("C:\\Program Files (x86)\\Courier Hello\\hello.txt")
            .is_file()
    );
    drop(server);
}

#[test]
fn the_unit_tests_pass_on_windows() {
    let wine = need_wine!();
    let tests = build_windows(&["--lib-tests"]);
    let prefix = Prefix::new(wine);
    let out = bounded(
        prefix.command(&tests).args(["--test-threads", "2"]),
        Duration::from_secs(300),
    )
    .expect("the unit tests did not finish in 300 s under Wine");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "unit tests failed on Windows:\n{}\n{}",
        tail_text(&said, 8000),
        tail_text(&String::from_utf8_lossy(&out.stderr), 4000)
    );
    // The Windows-only ones among them ran.
    assert!(
        said.contains("admin_pipe_is_named_after_the_data_dir ... ok"),
        "{said}"
    );
}

#[test]
fn a_service_install_with_a_wrong_token_registers_nothing() {
    let wine = need_wine!();
    courier_exe();
    let prefix = Prefix::new(wine);
    let _diagnose = Diagnose(&prefix);
    let _up = prefix.keep_services_up();
    let s = Server::start();
    let (_, token) = s.token(true);
    // A token the server does not know: said at once, nothing registered.
    let wrong = format!("{}x", token);
    let out = prefix.courier(&[
        "--data",
        AGENT_DATA,
        "agent",
        "install-service",
        "--server",
        &s.addr,
        "--token",
        &wrong,
    ]);
    assert!(!out.status.success(), "a wrong token was accepted");
    let why = String::from_utf8_lossy(&out.stderr);
    assert_eq!(why.trim().lines().count(), 1, "not one line: {why}");
    assert_eq!(service_state(&prefix), None, "registered anyway");
}
