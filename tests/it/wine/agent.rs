//! The agent under Wine: installers, distributed files, timeouts.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use super::*;
use crate::procs::{DEADLINE, Server, create_task, dest, task_id, wait_until};
use crate::support::fixture;

#[test]
fn installers_install_uninstall_and_fail_as_on_windows() {
    let wine = need_wine!();
    courier_exe();
    let prefix = Prefix::new(wine);
    let s = Server::start();
    let (_, token) = s.token(true);
    let agent = WineAgent::enrolled(&prefix, &s.addr, &token, "win-1", &[]);
    let d = s.wait_dest("win-1", "online", &[]);
    assert_eq!(d["os"], "windows", "{d:#}");

    // Install: the MSI's file lands and its ProductCode is registered.
    let hello = add(&s, &fixture("hello.msi"), &[]);
    let t = create_task(&s, &hello, "win-1", &[]);
    let t = s.wait_task_finished(task_id(&t), &[]);
    let row = dest(&t, "win-1");
    assert_eq!(
        row["status"],
        "succeeded",
        "{t:#}\n{}",
        a_diagnostics(&prefix)
    );
    assert_eq!(row["exit_code"], 0);
    // Known installed by its ProductCode, checked after the install, and
    // the next task to install it skips it without running msiexec.
    assert_eq!(
        hello["detect"],
        serde_json::json!([format!("msi:{HELLO_CODE}")]),
        "{hello:#}"
    );
    assert_eq!(row["detection"], "verified", "{t:#}");
    // Once the agent's own inventory lists it, the pre-flight knows: a
    // task to install it again is refused. (The `courier` entry that the
    // finished task adds at once does not count: only what the agent
    // listed is taken as installed.)
    wait_until(
        DEADLINE,
        "the agent's inventory to list Courier Hello",
        || {
            let d = s.json(&["dest", "show", "win-1", "--json"]);
            d["software"]
                .as_array()?
                .iter()
                .any(|p| p["product_code"] == HELLO_CODE && p["source"] != "courier")
                .then_some(())
        },
        || a_diagnostics(&prefix),
    );
    let hello_id = hello["id"].to_string();
    let e = s.err(&["task", "create", "--package", &hello_id, "--to", "win-1"]);
    assert!(e.contains("1 already installed"), "{e}");
    // With a rule the inventory cannot answer, the agent decides: the
    // ProductCode is registered and the file is there, so msiexec does
    // not run and nothing is downloaded.
    let file_rule = "file:C:\\Program Files (x86)\\Courier Hello\\hello.txt";
    let hello = s.json(&[
        "package",
        "edit",
        &hello_id,
        "--detect",
        &format!("msi:{HELLO_CODE}"),
        "--detect",
        file_rule,
        "--json",
    ]);
    let again = create_task(&s, &hello, "win-1", &[]);
    let again = s.wait_task_finished(task_id(&again), &[]);
    let row = dest(&again, "win-1");
    assert_eq!(row["status"], "succeeded", "{again:#}");
    assert_eq!(row["detection"], "already_done", "{again:#}");
    assert_eq!(row["message"], "already installed", "{again:#}");
    assert_eq!(row["transferred"], 0, "{again:#}");
    let installed = prefix.c_drive("C:\\Program Files (x86)\\Courier Hello\\hello.txt");
    assert!(installed.is_file(), "{} missing", installed.display());
    let key = format!("{UNINSTALL_KEY}\\{HELLO_CODE}");
    assert!(prefix.has_key(&key), "{key} not registered");
    // The software inventory lists it as Windows does, from the 32-bit
    // registry view, with the ProductCode that uninstalls it.
    let out = prefix.courier(&["agent", "inventory", "--json"]);
    assert!(out.status.success(), "inventory: {out:?}");
    let programs: Value = serde_json::from_slice(&out.stdout).expect("inventory JSON");
    let hello_row = programs
        .as_array()
        .expect("a list")
        .iter()
        .find(|p| p["product_code"] == HELLO_CODE)
        .unwrap_or_else(|| panic!("{HELLO_CODE} not in the inventory: {programs:#}"));
    assert_eq!(hello_row["name"], "Courier Hello", "{hello_row:#}");
    assert_eq!(hello_row["version"], "1.2.3", "{hello_row:#}");
    assert_eq!(hello_row["publisher"], "Courier Tests", "{hello_row:#}");
    assert_eq!(hello_row["view"], "32-bit", "{hello_row:#}");
    // The agent kept msiexec's verbose log.
    let log = prefix
        .c_drive(AGENT_DATA)
        .join(format!("msi-logs/task-{}.log", task_id(&t)));
    assert!(log.is_file(), "no MSI log at {}", log.display());

    // Uninstall by ProductCode: both gone.
    let u = create_task(&s, &hello, "win-1", &["--uninstall"]);
    let u = s.wait_task_finished(task_id(&u), &[]);
    assert_eq!(dest(&u, "win-1")["status"], "succeeded", "{u:#}");
    // Verified gone: neither the ProductCode nor the file is there.
    assert_eq!(dest(&u, "win-1")["detection"], "verified", "{u:#}");
    assert!(!installed.exists(), "{} still there", installed.display());
    assert!(!prefix.has_key(&key), "{key} still registered");
    let out = prefix.courier(&["agent", "inventory", "--json"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(HELLO_CODE),
        "still in the inventory after uninstalling"
    );

    // Installed again, then uninstalled from the inventory (no package):
    // the server sees it in the inventory the agent sent, with its
    // ProductCode, and the removal is msiexec /x by that code.
    let t = create_task(&s, &hello, "win-1", &[]);
    s.wait_task_finished(task_id(&t), &[]);
    assert!(prefix.has_key(&key), "{key} not registered again");
    wait_until(
        DEADLINE,
        "the server to hold the inventory listing Courier Hello",
        || {
            let d = s.json(&["dest", "show", "win-1", "--json"]);
            d["software"]
                .as_array()?
                .iter()
                .any(|p| p["product_code"] == HELLO_CODE && p["source"] == "registry")
                .then_some(())
        },
        || a_diagnostics(&prefix),
    );
    let r = s.json(&[
        "task",
        "create",
        "--uninstall",
        "--software",
        "courier hello",
        "--to",
        "win-1",
        "--json",
    ]);
    assert_eq!(
        dest(&r, "win-1")["command"],
        format!("msiexec /x {HELLO_CODE} /qn /norestart")
    );
    let r = s.wait_task_finished(task_id(&r), &[]);
    assert_eq!(
        dest(&r, "win-1")["status"],
        "succeeded",
        "{r:#}\n{}",
        a_diagnostics(&prefix)
    );
    assert!(!installed.exists(), "{} still there", installed.display());
    assert!(!prefix.has_key(&key), "{key} still registered");

    // A refused MSI: 1603 with its meaning, the full code as Windows gives
    // it to the agent (not Wine's 8-bit view of it).
    let refuses = add(&s, &fixture("refuses.msi"), &[]);
    let f = create_task(&s, &refuses, "win-1", &[]);
    let f = s.wait_task_finished(task_id(&f), &[]);
    let row = dest(&f, "win-1");
    assert_eq!(row["status"], "failed", "{f:#}");
    assert_eq!(row["exit_code"], 1603, "{f:#}");
    assert!(
        row["meaning"]
            .as_str()
            .unwrap_or("")
            .contains("fatal error during installation"),
        "{f:#}"
    );
    // Told once in the text view, not as meaning and message both.
    let text = s.ok(&["task", "show", &task_id(&f).to_string()]);
    assert_eq!(
        text.matches("fatal error during installation").count(),
        1,
        "{text}"
    );

    // A custom action that fails after the files are copied: rolled back,
    // nothing left, and the code with its meaning. Windows says 1603 here;
    // Wine says 1627, function failed.
    let fails = add(&s, &fixture("fails.msi"), &[]);
    let f = create_task(&s, &fails, "win-1", &[]);
    let f_id = task_id(&f);
    let f = s.wait_task_finished(f_id, &[]);
    let row = dest(&f, "win-1");
    assert_eq!(row["status"], "failed", "{f:#}");
    assert!(
        row["exit_code"] == 1603 || row["exit_code"] == 1627,
        "{f:#}"
    );
    assert!(
        row["meaning"]
            .as_str()
            .is_some_and(|m| m.contains("fatal error") || m.contains("custom action")),
        "{f:#}"
    );
    // The failing custom action, read from msiexec's own log, is the
    // cause; the log's end is kept on the server.
    assert_eq!(row["has_log"], true, "{f:#}");
    let groups = s.json(&["triage", "--json"]);
    let fails_cause = groups
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| {
            g["destinations"]
                .as_array()
                .is_some_and(|d| d.iter().any(|f| f["task_id"] == f_id))
        })
        .unwrap_or_else(|| panic!("task {f_id} not in triage: {groups:#}"));
    assert!(
        fails_cause["cause"]
            .as_str()
            .is_some_and(|c| c.contains("action FailOnPurpose")),
        "{fails_cause:#}"
    );
    let log = s.ok(&["task", "log", &f_id.to_string(), "win-1"]);
    assert!(log.contains("FailOnPurpose"), "{log}");
    let rolled_back = prefix.c_drive("C:\\Program Files (x86)\\Courier Fails\\hello.txt");
    assert!(
        !rolled_back.exists(),
        "not rolled back: {}",
        rolled_back.display()
    );

    // An EXE with its silent command: the NSIS installer puts its file in
    // the %TEMP% of the account the agent runs as. (A 64-bit one: this
    // Wine has no 32-bit support, and a 32-bit installer ends at once
    // there, with 0 and nothing done.)
    let exe = add(
        &s,
        &fixture("hello-nsis64.exe"),
        &["--install-command", "hello-nsis64.exe /S"],
    );
    let e = create_task(&s, &exe, "win-1", &[]);
    let e = s.wait_task_finished(task_id(&e), &[]);
    let row = dest(&e, "win-1");
    assert_eq!(row["status"], "succeeded", "{e:#}");
    assert_eq!(row["exit_code"], 0, "{e:#}");
    let users = prefix.c_drive("C:\\users");
    let placed = fs::read_dir(&users)
        .expect("C:\\users")
        .filter_map(|u| u.ok())
        .map(|u| u.path().join("Temp/courier-hello-nsis64/hello.txt"))
        .find(|p| p.is_file());
    assert!(placed.is_some(), "the NSIS installer placed nothing");
    drop(agent);
}

#[test]
fn files_are_distributed_into_a_windows_folder() {
    let wine = need_wine!();
    courier_exe();
    let prefix = Prefix::new(wine);
    let s = Server::start();
    let (_, token) = s.token(true);
    let _agent = WineAgent::enrolled(&prefix, &s.addr, &token, "win-2", &[]);
    let pkg = add(
        &s,
        &fixture("hello.txt"),
        &["--folder", "C:\\courier-dist\\notes"],
    );
    let t = create_task(&s, &pkg, "win-2", &[]);
    let t = s.wait_task_finished(task_id(&t), &[]);
    assert_eq!(
        dest(&t, "win-2")["status"],
        "succeeded",
        "{t:#}\n{}",
        a_diagnostics(&prefix)
    );
    let placed = prefix.c_drive("C:\\courier-dist\\notes\\hello.txt");
    assert_eq!(
        fs::read(&placed).unwrap_or_default(),
        fs::read(fixture("hello.txt")).unwrap()
    );
    let listing = prefix.run(&["dir", "C:\\courier-dist\\notes"]);
    assert!(String::from_utf8_lossy(&listing.stdout).contains("hello.txt"));

    // Replaced: the new file gets the old one's owner, group and DACL.
    // Upstream Wine keeps no ACLs, only Unix modes: it turns a DACL it is
    // given into a mode (0775 for any DACL of a file it owns) and a file it
    // creates gets 0644. So what can be seen here is that the old file's
    // descriptor was applied to the new one, not how faithfully.
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let fresh = mode(&placed);
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("hello.txt");
    fs::write(&newer, "a newer hello\n").unwrap();
    let other = dir.path().join("other.txt");
    fs::write(&other, "another file\n").unwrap();
    for file in [&newer, &other] {
        let pkg = add(&s, file, &["--folder", "C:\\courier-dist\\notes"]);
        let t = create_task(&s, &pkg, "win-2", &[]);
        let t = s.wait_task_finished(task_id(&t), &[]);
        assert_eq!(dest(&t, "win-2")["status"], "succeeded", "{t:#}");
    }
    assert_eq!(fs::read_to_string(&placed).unwrap(), "a newer hello\n");
    assert_ne!(
        mode(&placed),
        fresh,
        "the replaced file did not get the old file's security descriptor"
    );
    // A new file is left to inherit: nothing set on it.
    assert_eq!(mode(&placed.with_file_name("other.txt")), fresh);
    // The agent's data dir was given an access list of its own (SYSTEM,
    // Administrators, the agent's account), where a folder the agent makes
    // for a distribution is left to inherit; again Wine can only show that
    // it differs.
    assert_ne!(
        mode(&prefix.c_drive(AGENT_DATA)),
        mode(&prefix.c_drive("C:\\courier-dist")),
        "the data dir has no access list of its own"
    );
}

#[test]
fn a_timeout_stops_the_installer_and_its_child() {
    let wine = need_wine!();
    courier_exe();
    let prefix = Prefix::new(wine);
    let s = Server::start();
    let (_, token) = s.token(true);
    let mut agent = WineAgent::enrolled(
        &prefix,
        &s.addr,
        &token,
        "win-3",
        &["--command-timeout", "8"],
    );
    // The installer starts a child that ticks into a file every second or
    // so, then waits far past the timeout itself. Both are in a folder
    // whose name has a space, which the command quotes as an admin would.
    let zip = s.input("slow.zip");
    zip_of(
        &zip,
        &[
            (
                "slow setup/install.cmd",
                "@echo off\r\necho installing\r\nstart \"\" /b cmd /c \"%~dp0child.cmd\"\r\nping -n 120 127.0.0.1 >nul\r\n",
            ),
            (
                "slow setup/child.cmd",
                "@echo off\r\nif not exist C:\\courier-ticks mkdir C:\\courier-ticks\r\n:loop\r\necho tick>>C:\\courier-ticks\\ticks.txt\r\nping -n 2 127.0.0.1 >nul\r\ngoto loop\r\n",
            ),
        ],
    );
    let pkg = add(
        &s,
        &zip,
        &["--install-command", "\"slow setup\\install.cmd\""],
    );
    let t = create_task(&s, &pkg, "win-3", &[]);
    let t = s.wait_task_finished(task_id(&t), &[]);
    let row = dest(&t, "win-3");
    assert_eq!(row["status"], "failed", "{t:#}\n{}", a_diagnostics(&prefix));
    let message = row["message"].as_str().unwrap_or("");
    assert!(message.contains("8 s"), "{t:#}");
    let ticks = prefix.c_drive("C:\\courier-ticks\\ticks.txt");
    assert!(
        size_of_file(&ticks) > 0,
        "the child never ran: {t:#}\n{}",
        a_diagnostics(&prefix)
    );
    // Killed with the installer: the file stops growing.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let after_kill = size_of_file(&ticks);
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(
        size_of_file(&ticks),
        after_kill,
        "the installer's child outlived the timeout"
    );

    // The agent itself dies half-way through the same install: the Job
    // Object goes with its last handle, and everything in it with it.
    fs::remove_file(&ticks).unwrap();
    let again = create_task(&s, &pkg, "win-3", &[]);
    wait_until(
        DEADLINE,
        "the installer's child to tick again",
        || (size_of_file(&ticks) > 0).then_some(()),
        || {
            let id = task_id(&again).to_string();
            format!(
                "{:#}\n{}",
                s.json(&["task", "show", &id, "--json"]),
                a_diagnostics(&prefix)
            )
        },
    );
    if let Some(mut c) = agent.child.take() {
        c.kill().expect("kill the agent");
        c.wait().expect("reap the agent");
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let after_death = size_of_file(&ticks);
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(
        size_of_file(&ticks),
        after_death,
        "the installer's child outlived the agent"
    );
}
