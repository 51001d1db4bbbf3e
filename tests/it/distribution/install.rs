//! Installing and placing packages: ZIP and file packages, uninstall
//! tasks, failed installs, one install at a time on a destination.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{add_package, marker_script, markers, tree};
use crate::procs::{Agent, Server, create_task, dest, task_id};
use crate::support::make_zip;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).expect("metadata").mode() & 0o7777
}

/// A ZIP whose entries carry Unix modes, as `zip -X` on Linux makes them.
fn zip_with_modes(path: &Path, files: &[(&str, &[u8], u32)]) {
    let f = fs::File::create(path).unwrap();
    let mut w = zip::ZipWriter::new(f);
    for (name, data, mode) in files {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode);
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn zip_package_installs_on_three_agents() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let names = ["pc-01", "pc-02", "pc-03"];
    let mut agents: Vec<Agent> = names.iter().map(|n| Agent::enrol(&s, &token, n)).collect();
    for a in &mut agents {
        a.wait_enrolled();
    }

    let marks = tempfile::tempdir().unwrap();
    let zip = s.input("app.zip");
    make_zip(
        &zip,
        &[
            ("setup/install.sh", marker_script(marks.path()).as_bytes()),
            ("setup/payload.txt", b"payload"),
        ],
    );
    let pkg = add_package(
        &s,
        &zip,
        &["--install-command", "sh setup/install.sh courier-arg-42"],
    );
    assert_eq!(pkg["kind"], "install");
    assert_eq!(pkg["format"], "zip");

    let t = create_task(&s, &pkg, "pc-01,pc-02,pc-03", &[]);
    assert_eq!(t["type"], "install");
    assert_eq!(t["destinations"].as_array().unwrap().len(), 3);
    let refs: Vec<&Agent> = agents.iter().collect();
    let t = s.wait_task_finished(task_id(&t), &refs);

    assert_eq!(t["status"], "completed", "{t:#}");
    for a in &agents {
        let d = dest(&t, &a.name);
        assert_eq!(d["status"], "succeeded", "{t:#}");
        assert_eq!(d["exit_code"], 0, "{t:#}");
        assert_eq!(d["transferred"], pkg["size"], "{t:#}");
        let out = d["output"].as_str().unwrap_or_default();
        assert!(out.contains("installed with courier-arg-42"), "{t:#}");
    }
    // One marker per agent, each written from that agent's own unpacked
    // copy of the package, with the argument of the install command.
    let found = markers(marks.path());
    assert_eq!(found.len(), 3, "{found:?}");
    for a in &agents {
        let work = a.data().join("work");
        let mine: Vec<&String> = found
            .iter()
            .filter(|m| m.starts_with(work.to_str().unwrap()))
            .collect();
        assert_eq!(mine.len(), 1, "{} in {found:?}", work.display());
        assert!(mine[0].trim_end().ends_with(" courier-arg-42"), "{mine:?}");
    }

    let list = s.json(&["dest", "list", "--json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    for d in list {
        assert_eq!(d["status"], "online", "{d}");
        assert_eq!(d["os"], "linux", "{d}");
    }
    let mut listed: Vec<&str> = list.iter().map(|d| d["name"].as_str().unwrap()).collect();
    listed.sort();
    assert_eq!(listed, names);
}

#[test]
fn file_distribution_follows_the_folder_permission_rules() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "files-01");

    let place = tempfile::tempdir().unwrap();
    let folder = place.path().join("conf");
    fs::create_dir(&folder).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o750)).unwrap();
    let keep = folder.join("keep.conf");
    fs::write(&keep, "old settings").unwrap();
    fs::set_permissions(&keep, fs::Permissions::from_mode(0o600)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&folder, None, Some(12345)).unwrap();
        std::os::unix::fs::chown(&keep, Some(4242), Some(4343)).unwrap();
    }

    let zip = s.input("conf.zip");
    zip_with_modes(
        &zip,
        &[
            ("new.txt", b"brand new", 0o644),
            ("bin/tool.sh", b"#!/bin/sh\necho tool\n", 0o755),
            ("keep.conf", b"new settings", 0o644),
        ],
    );
    let pkg = add_package(&s, &zip, &["--folder", folder.to_str().unwrap()]);
    assert_eq!(pkg["kind"], "file");

    let t = create_task(&s, &pkg, "files-01", &[]);
    let t = s.wait_task_finished(task_id(&t), &[&a]);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(dest(&t, "files-01")["status"], "succeeded", "{t:#}");

    // Exactly what the archive holds, no temporary file left behind.
    assert_eq!(
        tree(&folder),
        ["bin", "bin/tool.sh", "keep.conf", "new.txt"],
        "{t:#}"
    );
    // A new file: the folder's mode without execute bits, its group.
    let new = folder.join("new.txt");
    assert_eq!(fs::read_to_string(&new).unwrap(), "brand new");
    assert_eq!(mode_of(&new), 0o640);
    // An executable entry keeps the folder's execute bits; the folder
    // made for it is like its parent.
    assert_eq!(mode_of(&folder.join("bin")), 0o750);
    assert_eq!(mode_of(&folder.join("bin/tool.sh")), 0o750);
    // A replaced file: new content, old mode (and owner and group).
    assert_eq!(fs::read_to_string(&keep).unwrap(), "new settings");
    assert_eq!(mode_of(&keep), 0o600);
    if is_root() {
        let gid = |p: &Path| fs::metadata(p).unwrap().gid();
        assert_eq!(gid(&new), 12345);
        assert_eq!(gid(&folder.join("bin")), 12345);
        assert_eq!(gid(&folder.join("bin/tool.sh")), 12345);
        let m = fs::metadata(&keep).unwrap();
        assert_eq!((m.uid(), m.gid()), (4242, 4343));
    } else {
        eprintln!("not root: group and owner checks skipped");
    }
}

#[test]
fn uninstall_task_runs_the_uninstall_command_from_the_package() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "un-01");

    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("installed");
    let zip = s.input("tool.zip");
    make_zip(
        &zip,
        &[
            (
                "install.sh",
                format!("touch '{}'\n", marker.display()).as_bytes(),
            ),
            (
                "uninstall.sh",
                format!("rm '{}' && echo removed\n", marker.display()).as_bytes(),
            ),
        ],
    );
    let pkg = add_package(
        &s,
        &zip,
        &[
            "--install-command",
            "sh install.sh",
            "--uninstall-command",
            "sh uninstall.sh",
        ],
    );

    let t = create_task(&s, &pkg, "un-01", &[]);
    let t = s.wait_task_finished(task_id(&t), &[&a]);
    assert_eq!(dest(&t, "un-01")["status"], "succeeded", "{t:#}");
    assert!(marker.exists(), "install did not run: {t:#}");

    let u = create_task(&s, &pkg, "un-01", &["--uninstall"]);
    assert_eq!(u["type"], "uninstall");
    let u = s.wait_task_finished(task_id(&u), &[&a]);
    assert_eq!(u["type"], "uninstall");
    assert_eq!(u["status"], "completed", "{u:#}");
    let d = dest(&u, "un-01");
    assert_eq!(d["status"], "succeeded", "{u:#}");
    assert_eq!(d["exit_code"], 0, "{u:#}");
    assert!(
        d["output"].as_str().unwrap_or("").contains("removed"),
        "{u:#}"
    );
    assert!(!marker.exists(), "uninstall did not remove the marker");
    // The agent kept the content from the install: nothing downloaded.
    assert_eq!(d["transferred"], 0, "{u:#}");
}

#[test]
fn failed_install_shows_exit_code_and_output() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "fail-01");

    // A single script, not a ZIP: it is placed in the work dir as is.
    let script = s.input("broken-setup.sh");
    fs::write(
        &script,
        "echo 'checking prerequisites'\necho 'error: disk full on /opt' >&2\nexit 3\n",
    )
    .unwrap();
    let pkg = add_package(&s, &script, &["--install-command", "sh broken-setup.sh"]);
    let t = create_task(&s, &pkg, "fail-01", &[]);
    let t = s.wait_task_finished(task_id(&t), &[&a]);

    assert_eq!(t["status"], "failed", "{t:#}");
    let d = dest(&t, "fail-01");
    assert_eq!(d["status"], "failed", "{t:#}");
    assert_eq!(d["exit_code"], 3, "{t:#}");
    assert!(
        d["message"].as_str().unwrap_or("").contains("exit 3"),
        "{t:#}"
    );
    let out = d["output"].as_str().unwrap_or("");
    assert!(out.contains("checking prerequisites"), "{t:#}");
    assert!(out.contains("error: disk full on /opt"), "{t:#}");

    // The text view shows the same to an admin at a terminal.
    let text = s.ok(&["task", "show", &t["id"].to_string()]);
    assert!(text.contains("error: disk full on /opt"), "{text}");
    assert!(
        s.events()
            .iter()
            .any(|e| e["kind"] == "task.failed"
                && e["message"].as_str().unwrap().contains("fail-01")),
        "no task.failed event"
    );
}

#[test]
fn installs_on_one_destination_never_overlap() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "serial-01");

    // Each install holds a lock directory for a while; a second install
    // running at the same time would find it taken and fail.
    let marks = tempfile::tempdir().unwrap();
    let lock = marks.path().join("lock");
    let script = format!(
        "mkdir '{0}' || {{ echo 'another install is running' >&2; exit 7; }}\nsleep 0.5\nrmdir '{0}'\n",
        lock.display()
    );
    let file = s.input("exclusive.sh");
    fs::write(&file, script).unwrap();
    let pkg = add_package(&s, &file, &["--install-command", "sh exclusive.sh"]);
    let ids: Vec<i64> = (0..3)
        .map(|_| task_id(&create_task(&s, &pkg, "serial-01", &[])))
        .collect();
    for id in ids {
        let t = s.wait_task_finished(id, &[&a]);
        assert_eq!(dest(&t, "serial-01")["status"], "succeeded", "{t:#}");
    }
}

#[test]
fn task_wait_returns_when_the_task_ends_and_says_how() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "wait-01");

    // An install that takes a while: `task wait` must not return before.
    let slow = s.input("slow-setup.sh");
    fs::write(&slow, "sleep 1\necho installed\n").unwrap();
    let pkg = add_package(&s, &slow, &["--install-command", "sh slow-setup.sh"]);
    let id = task_id(&create_task(&s, &pkg, "wait-01", &[])).to_string();
    let line = s.ok(&["task", "wait", &id, "--timeout", "2m"]);
    assert!(
        line.starts_with(&format!("task {id} '"))
            && line.trim_end().ends_with("completed: 1 succeeded"),
        "{line}"
    );
    let t = s.json(&["task", "show", &id, "--json"]);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(dest(&t, "wait-01")["status"], "succeeded", "{t:#}");
    let j = s.json(&["task", "wait", &id, "--json"]);
    assert_eq!(j["status"], "completed", "{j:#}");
    assert_eq!(j["destinations"][0]["name"], "wait-01", "{j:#}");

    // A failed task: exit 1, one line saying so and where to look.
    let broken = s.input("broken.sh");
    fs::write(&broken, "exit 4\n").unwrap();
    let bad = add_package(&s, &broken, &["--install-command", "sh broken.sh"]);
    let id = task_id(&create_task(&s, &bad, "wait-01", &[])).to_string();
    let line = s.err(&["task", "wait", &id]);
    assert!(
        line.contains(&format!("task {id} '"))
            && line.contains("failed: 1 failed (courier triage)"),
        "{line}"
    );

    // A task that cannot end in time: the limit, and where it stands.
    let later = create_task(&s, &pkg, "wait-01", &["--at", "2099-01-01 09:00"]);
    let id = task_id(&later).to_string();
    let line = s.err(&["task", "wait", &id, "--timeout", "1s"]);
    assert!(
        line.ends_with("has not finished after 1s: 1 waiting (scheduled)"),
        "{line}"
    );
    let line = s.err(&["task", "wait", "9999"]);
    assert!(line.contains("9999"), "{line}");
    drop(a);
}
