//! Security policies and uninstallation from the inventory with real
//! agents. Each agent reads a package database of its own: `dpkg-query`
//! and `apt-get` on its PATH are scripts over a file (nothing of this
//! machine is ever removed), and the packages' install scripts write to
//! that file as a real installer writes to dpkg's.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::procs::{Agent, DEADLINE, Server, create_task, task_id, wait_until};

/// A package database for one agent, with the tools that read and change it.
struct FakeDpkg {
    _dir: tempfile::TempDir,
    db: PathBuf,
    /// Every `apt-get` command line run, one per line.
    calls: PathBuf,
    bin: PathBuf,
}

impl FakeDpkg {
    fn new(installed: &[(&str, &str)]) -> FakeDpkg {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let db = dir.path().join("status");
        let calls = dir.path().join("apt-get.calls");
        let lines: String = installed
            .iter()
            .map(|(n, v)| format!("ii \t{n}\t{v}\tTest Vendor\n"))
            .collect();
        std::fs::write(&db, lines).unwrap();
        script(&bin.join("dpkg-query"), "cat \"$FAKE_DPKG_DB\"\n");
        script(
            &bin.join("apt-get"),
            &format!(
                "echo \"$*\" >> '{}'\n\
                 for a; do name=$a; done\n\
                 grep -v \"\t$name\t\" \"$FAKE_DPKG_DB\" > \"$FAKE_DPKG_DB.new\"\n\
                 mv \"$FAKE_DPKG_DB.new\" \"$FAKE_DPKG_DB\"\n\
                 echo \"Removing $name ...\"\n",
                calls.display()
            ),
        );
        FakeDpkg {
            _dir: dir,
            db,
            calls,
            bin,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        vec![
            ("PATH", path),
            ("FAKE_DPKG_DB", self.db.display().to_string()),
        ]
    }

    fn installed(&self) -> String {
        std::fs::read_to_string(&self.db).unwrap()
    }

    fn apt_calls(&self) -> String {
        std::fs::read_to_string(&self.calls).unwrap_or_default()
    }
}

fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An agent enrolled with its own package database.
fn agent(s: &Server, token: &str, name: &str, db: &FakeDpkg) -> Agent {
    let mut a = Agent::enrol_with_env(&s.addr, token, name, &db.env());
    a.wait_enrolled();
    a
}

/// A package whose install script records `name` `version` in the
/// agent's database (replacing an older version).
fn installer(s: &Server, name: &str, version: &str) -> Value {
    let file = s.input(&format!("install-{name}-{version}.sh"));
    std::fs::write(
        &file,
        format!(
            "grep -v \"\t{name}\t\" \"$FAKE_DPKG_DB\" > \"$FAKE_DPKG_DB.new\"\n\
             mv \"$FAKE_DPKG_DB.new\" \"$FAKE_DPKG_DB\"\n\
             printf 'ii \\t{name}\\t{version}\\tTest Vendor\\n' >> \"$FAKE_DPKG_DB\"\n"
        ),
    )
    .unwrap();
    let command = format!("sh install-{name}-{version}.sh");
    super::add_package(
        s,
        &file,
        &[
            "--name",
            name,
            "--version",
            version,
            "--install-command",
            &command,
        ],
    )
}

/// Waits until `dest show` lists `name` (at `version`), or no longer
/// lists it (`None`).
fn wait_listed(s: &Server, dest: &str, name: &str, version: Option<&str>, agents: &[&Agent]) {
    let what = match version {
        Some(v) => format!("{dest}'s inventory to list {name} {v}"),
        None => format!("{dest}'s inventory to no longer list {name}"),
    };
    wait_until(
        DEADLINE,
        &what,
        || {
            let d = s.json(&["dest", "show", dest, "--json"]);
            let found = d["software"].as_array()?.iter().any(|p| {
                p["name"] == name
                    && p["source"] == "dpkg"
                    && version.is_none_or(|v| p["version"] == v)
            });
            (found == version.is_some()).then_some(())
        },
        || {
            let mut out = s.diagnostics();
            for a in agents {
                out.push_str(&a.diagnostics());
            }
            out
        },
    );
}

fn policy_task(s: &Server, id: &str, agents: &[&Agent]) -> i64 {
    wait_until(
        DEADLINE,
        &format!("policy {id}'s countermeasure task"),
        || s.json(&["policy", "show", id, "--json"])["task"].as_i64(),
        || {
            let mut out = s.diagnostics();
            for a in agents {
                out.push_str(&a.diagnostics());
            }
            out
        },
    )
}

#[test]
fn uninstalling_from_the_inventory_runs_what_each_destination_reported() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let has = FakeDpkg::new(&[("bash", "5.2"), ("old-viewer", "3.1")]);
    let lacks = FakeDpkg::new(&[("bash", "5.2")]);
    let a = agent(&s, &token, "rm-01", &has);
    let b = agent(&s, &token, "rm-02", &lacks);
    wait_listed(&s, "rm-01", "old-viewer", Some("3.1"), &[&a]);
    wait_listed(&s, "rm-02", "bash", Some("5.2"), &[&b]);

    // Nothing to do anywhere: one line, nothing created.
    let e = s.err(&[
        "task",
        "create",
        "--uninstall",
        "--software",
        "nothing-here",
        "--all",
    ]);
    assert_eq!(
        e,
        "courier: no destination lists nothing-here in its inventory: nothing to uninstall"
    );
    // --software without --uninstall is a usage error.
    let o = s.run(&["task", "create", "--software", "old-viewer", "--all"]);
    assert_eq!(o.status.code(), Some(2));

    let t = s.json(&[
        "task",
        "create",
        "--uninstall",
        "--software",
        "OLD-VIEWER",
        "--all",
        "--json",
    ]);
    let dests = t["destinations"].as_array().unwrap();
    assert_eq!(dests.len(), 1, "only the destination that lists it: {t:#}");
    assert_eq!(dests[0]["name"], "rm-01");
    assert_eq!(
        dests[0]["command"],
        "DEBIAN_FRONTEND=noninteractive apt-get remove -y old-viewer"
    );
    assert_eq!(t["software"], "OLD-VIEWER");
    assert_eq!(t["package"], Value::Null);
    let done = s.wait_task_finished(task_id(&t), &[&a]);
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(has.apt_calls().trim(), "remove -y old-viewer");
    assert!(!has.installed().contains("old-viewer"));
    assert!(has.installed().contains("bash"));
    // The agent sends its changed inventory after the attempt.
    wait_listed(&s, "rm-01", "old-viewer", None, &[&a]);
    assert!(lacks.apt_calls().is_empty());
    let text = s.ok(&["task", "show", &task_id(&t).to_string()]);
    assert!(
        text.contains("uninstall of 'OLD-VIEWER' from the inventory"),
        "{text}"
    );
}

#[test]
fn a_prohibited_program_installed_by_a_task_is_uninstalled_automatically() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let db = FakeDpkg::new(&[("bash", "5.2")]);
    let a = agent(&s, &token, "pro-01", &db);
    wait_listed(&s, "pro-01", "bash", Some("5.2"), &[&a]);
    let p = s.json(&[
        "policy",
        "add",
        "--prohibited",
        "*Toolbar*",
        "--enforce",
        "--json",
    ]);
    assert_eq!(p["kind"], "prohibited");
    assert_eq!(p["software"], "*Toolbar*");
    assert_eq!(p["enforce"], true);
    assert_eq!(p["violations"], serde_json::json!([]));
    assert_eq!(p["task"], Value::Null, "nothing violates yet: no task");
    let id = p["id"].as_i64().unwrap().to_string();

    // A task installs what the policy prohibits.
    let pkg = installer(&s, "bad-toolbar", "1.0");
    let t = create_task(&s, &pkg, "pro-01", &[]);
    s.wait_task_finished(task_id(&t), &[&a]);
    // Its inventory shows it; the countermeasure removes it.
    let counter = policy_task(&s, &id, &[&a]);
    let done = s.wait_task_finished(counter, &[&a]);
    assert_eq!(done["class"], "countermeasure");
    assert_eq!(done["policy"].as_i64().unwrap().to_string(), id);
    assert_eq!(done["name"], "Prohibited *Toolbar*");
    assert_eq!(done["destinations"][0]["status"], "succeeded", "{done:#}");
    assert_eq!(db.apt_calls().trim(), "remove -y bad-toolbar");
    wait_listed(&s, "pro-01", "bad-toolbar", None, &[&a]);
    let p = s.json(&["policy", "show", &id, "--json"]);
    assert_eq!(p["violations"], serde_json::json!([]), "{p:#}");
    let list = s.ok(&["task", "list"]);
    assert!(list.contains("uninstall (policy)"), "{list}");
    assert!(
        s.events()
            .iter()
            .any(|e| e["kind"] == "policy.enforced"
                && e["message"].as_str().unwrap().contains("pro-01")),
        "{:#?}",
        s.events()
    );
}

#[test]
fn a_mandatory_program_is_installed_where_missing_and_upgraded_where_old() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let pkg = installer(&s, "acme-agent", "2.0");
    let pkg_id = pkg["id"].as_i64().unwrap().to_string();
    let p = s.json(&[
        "policy",
        "add",
        "--mandatory",
        "acme-agent",
        "--min-version",
        "2.0",
        "--package",
        &pkg_id,
        "--enforce",
        "--name",
        "Acme agent everywhere",
        "--json",
    ]);
    let id = p["id"].as_i64().unwrap().to_string();
    // Enrolled after the policy: one lacks it, one has an old version.
    let fresh = FakeDpkg::new(&[("bash", "5.2")]);
    let old = FakeDpkg::new(&[("bash", "5.2"), ("acme-agent", "1.4")]);
    let a = agent(&s, &token, "man-01", &fresh);
    let b = agent(&s, &token, "man-02", &old);
    wait_listed(&s, "man-01", "acme-agent", Some("2.0"), &[&a]);
    wait_listed(&s, "man-02", "acme-agent", Some("2.0"), &[&b]);
    let counter = policy_task(&s, &id, &[&a, &b]);
    let t = s.wait_task_finished(counter, &[&a, &b]);
    assert_eq!(t["type"], "install");
    assert_eq!(t["class"], "countermeasure");
    assert_eq!(t["counts"]["succeeded"], 2, "{t:#}");
    assert!(old.installed().contains("\tacme-agent\t2.0\t"));
    assert!(!old.installed().contains("1.4"));
    let p = s.json(&["policy", "show", &id, "--json"]);
    assert_eq!(p["violations"], serde_json::json!([]), "{p:#}");

    // Enforcement unset: the countermeasure task goes at once.
    let text = s.ok(&["policy", "edit", &id, "--enforce", "off"]);
    assert!(text.contains("enforced    no"), "{text}");
    let e = s.err(&["task", "show", &counter.to_string()]);
    assert!(e.contains("no such task"), "{e}");
    assert!(s.events().iter().any(|e| {
        e["kind"] == "task.expired"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("no longer enforced")
    }));
    let o = s.run(&["policy", "edit", &id, "--enforce", "maybe"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn update_packages_are_listed_under_policies_not_packages() {
    let s = Server::start();
    let update = installer(&s, "kb-5031", "1");
    let other = installer(&s, "tool", "1");
    let uid = update["id"].as_i64().unwrap().to_string();
    let e = s.err(&["policy", "add", "--update"]);
    assert_eq!(
        e,
        "courier: an update policy installs a package: give --package ID"
    );
    let p = s.json(&["policy", "add", "--update", "--package", &uid, "--json"]);
    assert_eq!(p["kind"], "update");
    assert_eq!(p["software"], "kb-5031");
    assert_eq!(p["enforce"], false);
    let ids = |v: Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        ids(s.json(&["package", "list", "--json"])),
        [other["id"].as_i64().unwrap()]
    );
    assert_eq!(
        ids(s.json(&["package", "list", "--all", "--json"])),
        [
            update["id"].as_i64().unwrap(),
            other["id"].as_i64().unwrap()
        ]
    );
    let e = s.err(&["package", "rm", &uid]);
    assert!(e.contains("policy"), "{e}");
    let list = s.ok(&["policy", "list"]);
    assert!(list.starts_with("ID"), "{list}");
    assert!(list.contains("kb-5031"), "{list}");
    let id = p["id"].as_i64().unwrap().to_string();
    s.ok(&["policy", "rm", &id]);
    assert_eq!(ids(s.json(&["package", "list", "--json"])).len(), 2);
}
