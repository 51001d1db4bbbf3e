//! Software inventories: a real agent on this (Debian) machine lists
//! dpkg's packages, the server keeps them per destination, shows them in
//! `dest show` and across the fleet in `software list`; an unchanged
//! inventory is not sent again, and a pending agent's is not taken until
//! it is approved.

use serde_json::Value;

use crate::procs::{Agent, DEADLINE, Server, create_task, dest, task_id, wait_until};

/// Waits until `dest show NAME --json` lists software; returns it.
fn wait_software(s: &Server, name: &str, a: &Agent) -> Vec<Value> {
    wait_until(
        DEADLINE,
        &format!("{name}'s inventory"),
        || {
            let d = s.json(&["dest", "show", name, "--json"]);
            d["software"].as_array().filter(|l| !l.is_empty()).cloned()
        },
        || format!("{}\n{}", a.diagnostics(), s.diagnostics()),
    )
}

fn dpkg_here() -> bool {
    std::path::Path::new("/var/lib/dpkg/status").exists()
}

#[test]
fn an_agent_sends_its_inventory_and_the_fleet_lists_it() {
    if !dpkg_here() {
        eprintln!("skipped: no dpkg on this machine");
        return;
    }
    let s = Server::start();
    let (_, token) = s.token(true);
    let mut a = Agent::enrolled(&s, &token, "inv-01");
    let software = wait_software(&s, "inv-01", &a);
    let dpkg = software
        .iter()
        .find(|p| p["name"] == "dpkg")
        .unwrap_or_else(|| panic!("dpkg not in the inventory: {software:?}"));
    assert_eq!(dpkg["source"], "dpkg");
    assert!(dpkg["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(
        dpkg["uninstall"],
        "DEBIAN_FRONTEND=noninteractive apt-get remove -y dpkg"
    );
    // As many as dpkg says are installed.
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Abbrev}\n"])
        .output()
        .unwrap();
    let installed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("ii"))
        .count();
    assert_eq!(software.len(), installed);

    // Across the fleet, by a piece of the name in any case.
    let titles = s.json(&["software", "list", "--name", "DPK", "--json"]);
    let titles = titles.as_array().unwrap();
    let t = titles
        .iter()
        .find(|t| t["name"] == "dpkg")
        .unwrap_or_else(|| panic!("{titles:?}"));
    assert_eq!(t["versions"][0]["destinations"][0], "inv-01");
    assert!(titles.iter().all(|t| {
        t["name"]
            .as_str()
            .is_some_and(|n| n.to_lowercase().contains("dpk"))
    }));
    let text = s.ok(&["software", "list", "--name", "dpkg"]);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.contains("inv-01"), "{text}");
    let text = s.ok(&["dest", "show", "inv-01"]);
    assert!(
        text.contains(&format!("software    {installed} programs")),
        "{text}"
    );

    // Restarted with nothing changed: nothing sent again.
    let inventories = |s: &Server| {
        s.events()
            .iter()
            .filter(|e| e["kind"] == "destination.inventory")
            .count()
    };
    assert_eq!(inventories(&s), 1);
    a.stop();
    a.start();
    wait_until(
        DEADLINE,
        "the restarted agent to compare its inventory",
        || {
            let log = std::fs::read_to_string(a.data().join("agent.log")).ok()?;
            (log.matches("agent started").count() >= 2).then_some(())
        },
        || a.diagnostics(),
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(inventories(&s), 1, "{}", a.diagnostics());
}

#[test]
fn a_pending_agents_inventory_is_not_taken() {
    let s = Server::start();
    let (_, token) = s.token(false);
    let a = Agent::enrolled(&s, &token, "inv-pending");
    wait_until(
        DEADLINE,
        "the pending agent to be refused its inventory",
        || {
            let log = std::fs::read_to_string(a.data().join("agent.log")).ok()?;
            log.contains("inventory not sent").then_some(())
        },
        || format!("{}\n{}", a.diagnostics(), s.diagnostics()),
    );
    let d = s.json(&["dest", "show", "inv-pending", "--json"]);
    assert_eq!(d["software"], serde_json::json!([]), "{d:#}");
    let titles = s.json(&["software", "list", "--json"]);
    assert_eq!(titles, serde_json::json!([]));
    if !dpkg_here() {
        return;
    }
    // Approved: it comes at once, not at the next retry a minute later.
    let approved = std::time::Instant::now();
    s.ok(&["dest", "approve", "inv-pending"]);
    wait_software(&s, "inv-pending", &a);
    assert!(
        approved.elapsed() < std::time::Duration::from_secs(20),
        "the inventory came {:?} after approval",
        approved.elapsed()
    );
}

/// What courier installed is part of the inventory (source `courier`)
/// until courier uninstalls it.
#[test]
fn what_courier_installed_is_listed_until_it_is_uninstalled() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "inv-c");
    let script = s.input("setup.sh");
    std::fs::write(&script, "exit 0\n").unwrap();
    let pkg = super::add_package(
        &s,
        &script,
        &[
            "--name",
            "Courier Probe",
            "--version",
            "2.1",
            "--install-command",
            "sh setup.sh",
            "--uninstall-command",
            "true",
        ],
    );
    let listed = |s: &Server| -> Vec<Value> {
        let d = s.json(&["dest", "show", "inv-c", "--json"]);
        d["software"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["source"] == "courier")
            .cloned()
            .collect()
    };
    assert!(listed(&s).is_empty());
    let t = create_task(&s, &pkg, "inv-c", &[]);
    s.wait_task_finished(task_id(&t), &[&a]);
    let mine = listed(&s);
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["name"], "Courier Probe");
    assert_eq!(mine[0]["version"], "2.1");
    assert_eq!(mine[0]["uninstall"], "true");
    let titles = s.json(&["software", "list", "--name", "probe", "--json"]);
    assert_eq!(titles[0]["name"], "Courier Probe", "{titles:#}");
    assert_eq!(titles[0]["versions"][0]["destinations"][0], "inv-c");

    // Installed again: still one entry.
    let t = create_task(&s, &pkg, "inv-c", &[]);
    s.wait_task_finished(task_id(&t), &[&a]);
    assert_eq!(listed(&s).len(), 1);

    let u = create_task(&s, &pkg, "inv-c", &["--uninstall"]);
    let u = s.wait_task_finished(task_id(&u), &[&a]);
    assert_eq!(dest(&u, "inv-c")["status"], "succeeded", "{u:#}");
    assert!(listed(&s).is_empty());
    let titles = s.json(&["software", "list", "--name", "probe", "--json"]);
    assert_eq!(titles, serde_json::json!([]));
}

/// A `dpkg-query` on PATH that prints `text` and exits with `code`.
fn fake_dpkg(text: &str, code: i32) -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("list"), text).unwrap();
    let query = dir.path().join("dpkg-query");
    std::fs::write(
        &query,
        format!(
            "#!/bin/sh\ncat '{}'\nexit {code}\n",
            dir.path().join("list").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&query, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (dir, path)
}

/// What the agent sends, as `courier agent inventory --wire` prints it
/// (the running agent reads its inventory from that command): the
/// list's digest, then the list the server takes, which leaves out an
/// entry the server would refuse.
#[test]
fn the_wire_form_is_the_digest_then_the_list_the_server_takes() {
    let wire = |path: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
            .args(["agent", "inventory", "--wire"])
            .env("PATH", path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8(o.stdout).unwrap();
        let (digest, list) = text.split_once('\n').unwrap();
        let list: Value = serde_json::from_str(list).unwrap();
        (digest.to_string(), list)
    };
    let (_d1, path) = fake_dpkg("ii \tzlib1g\t1.2\tDebian\nii \tbad\u{7}name\t1\tX\n", 0);
    let (digest, list) = wire(&path);
    assert_eq!(digest.len(), 64, "{digest}");
    assert_eq!(list["digest"], digest.as_str());
    let names: Vec<&str> = list["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["zlib1g"]);
    // Equal lists, equal digests; another list, another digest.
    assert_eq!(wire(&path).0, digest);
    let (_d2, other) = fake_dpkg("ii \tzlib1g\t1.3\tDebian\n", 0);
    assert_ne!(wire(&other).0, digest);
}

/// A package database that cannot be read: the agent says why in its
/// log and sends nothing, not an empty or partial list.
#[test]
fn an_inventory_that_cannot_be_read_is_not_sent_and_the_log_says_why() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let (_d, path) = fake_dpkg("ii \tzlib1g\t1.2\tDebian\n", 3);
    let a = Agent::enrol_with_env(&s.addr, &token, "inv-broken", &[("PATH", path)]);
    let line = wait_until(
        DEADLINE,
        "the agent to report its unreadable inventory",
        || {
            let log = std::fs::read_to_string(a.data().join("agent.log")).ok()?;
            log.lines()
                .find(|l| l.contains("inventory not sent"))
                .map(str::to_string)
        },
        || format!("{}\n{}", a.diagnostics(), s.diagnostics()),
    );
    assert!(
        line.contains("cannot read the inventory: dpkg-query failed (exit status: 3)"),
        "{line}"
    );
    let d = s.json(&["dest", "show", "inv-broken", "--json"]);
    assert_eq!(d["software"], serde_json::json!([]), "{d:#}");
}
