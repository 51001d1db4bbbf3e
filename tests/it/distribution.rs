//! Distribution end to end: a real `courier serve` and real agents on
//! loopback, each in temp dirs of its own. Packages are registered, tasks
//! created, and what the agents did is checked on disk and in the task's
//! per-destination states.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::procs::{Agent, DEADLINE, Server, create_task, dest, task_id, wait_until};
use crate::support::make_zip;

const MIB: u64 = 1 << 20;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Registers a package; returns its JSON.
fn add_package(s: &Server, file: &Path, flags: &[&str]) -> Value {
    let mut args = vec!["package", "add", file.to_str().expect("utf-8 path")];
    args.extend_from_slice(flags);
    args.push("--json");
    s.json(&args)
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).expect("metadata").mode() & 0o7777
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
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

/// `len` bytes nothing compresses, the same on every run: the BLAKE3
/// output stream of a fixed key. Returns the BLAKE3 of the file.
fn pattern_file(path: &Path, len: u64) -> String {
    let mut xof = blake3::Hasher::new()
        .update(b"courier distribution test pattern")
        .finalize_xof();
    let mut out = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let mut buf = vec![0u8; MIB as usize];
    let mut left = len;
    while left > 0 {
        let n = left.min(MIB) as usize;
        xof.fill(&mut buf[..n]);
        out.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    out.flush().unwrap();
    drop(out);
    file_hash(path)
}

fn file_hash(path: &Path) -> String {
    let mut h = blake3::Hasher::new();
    h.update_reader(fs::File::open(path).unwrap()).unwrap();
    h.finalize().to_hex().to_string()
}

/// Marker files the install scripts of these tests leave in `dir`.
fn markers(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect();
    v.sort();
    v
}

/// An install script that proves it ran: it leaves a marker file in
/// `marks` (outside every agent) holding its working directory and first
/// argument, checks the rest of the package is beside it, and says so.
fn marker_script(marks: &Path) -> String {
    format!(
        "#!/bin/sh\nset -e\ntest -f setup/payload.txt\nf=$(mktemp '{}/ran.XXXXXX')\necho \"$(pwd) $1\" > \"$f\"\necho \"installed with $1\"\n",
        marks.display()
    )
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
fn offline_agent_gets_its_work_when_it_comes_back() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let mut a = Agent::enrolled(&s, &token, "late-01");
    s.wait_dest("late-01", "online", &[&a]);
    a.stop();

    let marks = tempfile::tempdir().unwrap();
    let zip = s.input("late.zip");
    make_zip(
        &zip,
        &[
            ("setup/install.sh", marker_script(marks.path()).as_bytes()),
            ("setup/payload.txt", b"payload"),
        ],
    );
    let pkg = add_package(&s, &zip, &["--install-command", "sh setup/install.sh late"]);
    let t = create_task(&s, &pkg, "late-01", &[]);
    let id = task_id(&t);
    assert_eq!(dest(&t, "late-01")["status"], "waiting", "{t:#}");
    // Nobody is there to take it: it keeps waiting. (A negative check
    // needs some time; this only gives the server a chance to get it
    // wrong, it measures nothing.)
    std::thread::sleep(Duration::from_secs(2));
    let t = s.json(&["task", "show", &id.to_string(), "--json"]);
    assert_eq!(dest(&t, "late-01")["status"], "waiting", "{t:#}");
    assert_eq!(t["status"], "running", "{t:#}");
    assert!(markers(marks.path()).is_empty());

    // Started again with neither token nor server: its identity has both.
    a.start();
    let t = s.wait_task_finished(id, &[&a]);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(dest(&t, "late-01")["status"], "succeeded", "{t:#}");
    assert_eq!(markers(marks.path()).len(), 1);
    s.wait_dest("late-01", "online", &[&a]);
    assert_eq!(
        a.stderr().matches("enrolled as").count(),
        1,
        "enrolled again: {}",
        a.stderr()
    );
}

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

/// Size of the package the resume tests break midway.
const BIG: u64 = 48 * MIB;

/// The resume tests' server serves content at this rate (about 1.5 s for
/// [`BIG`]), so the test sees the transfer midway however fast loopback
/// is; unthrottled, 48 MiB crosses it in about 0.1 s here.
const RESUME_SERVER: [&str; 2] = ["--bandwidth", "32MiB/s"];

/// Waits (polling often: loopback is fast) until the agent's partial
/// download of `hash` holds at least `at_least` bytes, then calls `brk`
/// at once. Returns the size of the partial file right after.
fn break_transfer_at(
    a: &mut Agent,
    hash: &str,
    at_least: u64,
    brk: impl FnOnce(&mut Agent),
) -> u64 {
    let part = a.data().join("cache").join(format!("{hash}.part"));
    let done = a.data().join("cache").join(hash);
    let end = Instant::now() + DEADLINE;
    loop {
        let len = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if len >= at_least {
            brk(a);
            break;
        }
        assert!(
            !done.exists(),
            "the whole package arrived before the transfer could be broken: make BIG larger\n{}",
            a.diagnostics()
        );
        assert!(
            Instant::now() < end,
            "the download never reached {at_least} bytes\n{}",
            a.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let len = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    assert!(
        !done.exists() && len < BIG,
        "the download finished anyway ({len} bytes): make BIG larger"
    );
    len
}

/// A file package of [`BIG`] incompressible bytes to be placed in a
/// folder of its own. Returns (package, folder, its content hash).
fn big_file_package(s: &Server) -> (Value, PathBuf, tempfile::TempDir) {
    let src = s.input("big.bin");
    let hash = pattern_file(&src, BIG);
    let place = tempfile::tempdir().unwrap();
    let folder = place.path().join("big");
    let pkg = add_package(s, &src, &["--folder", folder.to_str().unwrap()]);
    assert_eq!(pkg["hash"], hash.as_str());
    assert_eq!(pkg["size"], BIG);
    (pkg, folder, place)
}

#[test]
fn transfer_resumes_after_the_server_dies_midway() {
    let mut s = Server::start_with(&RESUME_SERVER);
    let (_, token) = s.token(true);
    let mut a = Agent::enrolled(&s, &token, "resume-01");
    let (pkg, folder, _place) = big_file_package(&s);
    let hash = pkg["hash"].as_str().unwrap().to_string();

    let t = create_task(&s, &pkg, "resume-01", &[]);
    let id = task_id(&t);
    let broken_at = break_transfer_at(&mut a, &hash, BIG / 4, |_| s.kill());
    assert!(broken_at >= BIG / 4);
    s.restart();

    let t = s.wait_task_finished(id, &[&a]);
    assert_eq!(t["status"], "completed", "{t:#}");
    let d = dest(&t, "resume-01");
    assert_eq!(d["status"], "succeeded", "{t:#}");
    let placed = folder.join("big.bin");
    assert_eq!(file_hash(&placed), hash, "placed file differs");

    // Every byte crossed the network once, plus at most the part of a
    // chunk that was in flight when the server died. Starting over would
    // have fetched the first `broken_at` bytes a second time.
    let transferred = d["transferred"].as_u64().unwrap();
    eprintln!("server killed at {broken_at} of {BIG} bytes; {transferred} transferred in all");
    assert!(
        (BIG..BIG + 2 * MIB).contains(&transferred),
        "transferred {transferred} for {BIG} bytes broken at {broken_at}: {t:#}"
    );
}

#[test]
fn transfer_resumes_after_the_agent_dies_midway() {
    let s = Server::start_with(&RESUME_SERVER);
    let (_, token) = s.token(true);
    let mut a = Agent::enrolled(&s, &token, "resume-02");
    let (pkg, folder, _place) = big_file_package(&s);
    let hash = pkg["hash"].as_str().unwrap().to_string();

    let t = create_task(&s, &pkg, "resume-02", &[]);
    let id = task_id(&t);
    let kept = break_transfer_at(&mut a, &hash, BIG / 4, |a| a.kill());
    a.start();

    let t = s.wait_task_finished(id, &[&a]);
    assert_eq!(t["status"], "completed", "{t:#}");
    let d = dest(&t, "resume-02");
    assert_eq!(d["status"], "succeeded", "{t:#}");
    assert_eq!(file_hash(&folder.join("big.bin")), hash);

    // The new agent process fetched only what the dead one had not kept
    // (a chunk cut short by the kill is fetched again).
    let transferred = d["transferred"].as_u64().unwrap();
    eprintln!("agent killed with {kept} of {BIG} bytes kept; {transferred} transferred after");
    assert!(
        transferred <= BIG - kept + 2 * MIB && transferred < BIG,
        "transferred {transferred} for {BIG} bytes, {kept} kept: {t:#}"
    );
}

/// A file package of 3 MiB whose copy in the server's content store is
/// damaged after registration (one bit in its second chunk), sent to
/// `name`. Returns the finished task, the package's folder and hash.
fn corrupted_distribution(
    s: &Server,
    a: &Agent,
    name: &str,
) -> (Value, PathBuf, String, tempfile::TempDir) {
    let src = s.input("data.bin");
    let hash = pattern_file(&src, 3 * MIB);
    let place = tempfile::tempdir().unwrap();
    let folder = place.path().join("target");
    fs::create_dir(&folder).unwrap();
    let pkg = add_package(s, &src, &["--folder", folder.to_str().unwrap()]);

    let blob = s.data().join("content").join(&hash[..2]).join(&hash);
    let mut perms = fs::metadata(&blob).unwrap().permissions();
    perms.set_mode(perms.mode() | 0o200);
    fs::set_permissions(&blob, perms).unwrap();
    let mut bytes = fs::read(&blob).unwrap();
    bytes[(MIB + MIB / 2) as usize] ^= 0x01;
    fs::write(&blob, bytes).unwrap();

    let t = create_task(s, &pkg, name, &[]);
    let t = s.wait_task_finished(task_id(&t), &[a]);
    (t, folder, hash, place)
}

#[test]
fn corrupted_content_is_never_installed() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "verify-01");
    let (t, folder, hash, _place) = corrupted_distribution(&s, &a, "verify-01");

    assert_eq!(t["status"], "failed", "{t:#}");
    let d = dest(&t, "verify-01");
    assert_eq!(d["status"], "failed", "{t:#}");
    let msg = d["message"].as_str().unwrap_or("");
    assert!(msg.contains("verification"), "{t:#}");
    // Nothing placed, not even a temporary file, and nothing kept in the
    // agent's cache as if it were the package.
    assert!(tree(&folder).is_empty(), "{:?}", tree(&folder));
    assert!(!a.data().join("cache").join(&hash).exists());
}

/// `transferred` is documented as the bytes downloaded for the attempt; a
/// download that fails still downloaded what it did.
#[test]
fn failed_download_reports_the_bytes_it_fetched() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "verify-02");
    let (t, _folder, _hash, _place) = corrupted_distribution(&s, &a, "verify-02");
    let d = dest(&t, "verify-02");
    assert_eq!(d["status"], "failed", "{t:#}");
    // At least the good first chunk and the damaged second one crossed
    // the network (the second, several times).
    let transferred = d["transferred"].as_u64().unwrap();
    assert!(
        transferred >= 2 * MIB,
        "the failed attempt fetched megabytes but reports {transferred} bytes transferred: {t:#}"
    );
}

#[test]
fn outcome_reached_while_the_server_is_down_is_delivered_after() {
    let mut s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "outbox-01");

    // The install waits for the test's go-ahead, so the server can be
    // killed while it runs and the outcome found with no one to take it.
    let marks = tempfile::tempdir().unwrap();
    let started = marks.path().join("started");
    let go = marks.path().join("go");
    let script = format!(
        "touch '{}'\ni=0\nwhile [ ! -e '{}' ]; do sleep 0.05; i=$((i+1)); [ $i -lt 1200 ] || exit 9; done\necho finished\n",
        started.display(),
        go.display()
    );
    let zip = s.input("slow.zip");
    make_zip(&zip, &[("slow.sh", script.as_bytes())]);
    let pkg = add_package(&s, &zip, &["--install-command", "sh slow.sh"]);
    let t = create_task(&s, &pkg, "outbox-01", &[]);
    let id = task_id(&t);
    wait_until(
        DEADLINE,
        "the install command to start",
        || started.exists().then_some(()),
        || a.diagnostics(),
    );

    s.kill();
    fs::write(&go, "").unwrap();
    // The outcome waits on the agent's disk for the server.
    let reports = a.data().join("reports");
    let pending = |dir: &Path| -> usize {
        fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    };
    wait_until(
        DEADLINE,
        "the agent to keep its report on disk",
        || (pending(&reports) == 1).then_some(()),
        || a.diagnostics(),
    );

    s.restart();
    let t = s.wait_task_finished(id, &[&a]);
    assert_eq!(t["status"], "completed", "{t:#}");
    let d = dest(&t, "outbox-01");
    assert_eq!(d["status"], "succeeded", "{t:#}");
    assert!(
        d["output"].as_str().unwrap_or("").contains("finished"),
        "{t:#}"
    );
    wait_until(
        DEADLINE,
        "the delivered report to leave the agent's outbox",
        || (pending(&reports) == 0).then_some(()),
        || a.diagnostics(),
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
fn windows_installer_fails_on_linux_with_a_warning_first() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "linux-01");
    let pkg = add_package(&s, &crate::support::fixture("hello.msi"), &[]);
    let o = s.run(&[
        "task",
        "create",
        "--package",
        &pkg["id"].to_string(),
        "--to",
        "linux-01",
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
/// `task create` warns, the destination fails saying why, and nothing is
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

/// The cache is never trusted blindly: an installer that changes its own
/// file (linked from the agent's cache into the work dir) makes the next
/// run fetch the content again instead of running the changed copy.
#[test]
fn changed_cache_is_fetched_again_not_run() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "pc-01");
    let data = s.input("data.txt");
    fs::write(&data, "original\n").unwrap();
    let pkg = add_package(
        &s,
        &data,
        // Overwrites its first byte in place: same size, same inode.
        &[
            "--install-command",
            "cat data.txt && printf X | dd of=data.txt bs=1 count=1 conv=notrunc 2>/dev/null",
        ],
    );
    let t = create_task(&s, &pkg, "pc-01", &[]);
    let t = s.wait_task_finished(task_id(&t), &[&a]);
    assert_eq!(dest(&t, "pc-01")["status"], "succeeded", "{t:#}");
    s.ok(&["task", "rerun", &task_id(&t).to_string(), "--all"]);
    let t = s.wait_task_finished(task_id(&t), &[&a]);
    let d = dest(&t, "pc-01");
    assert_eq!(d["status"], "succeeded", "{t:#}");
    assert_eq!(d["attempt"], 2, "{t:#}");
    assert_eq!(d["transferred"], pkg["size"], "fetched again: {t:#}");
    let out = s.json(&["task", "show", &task_id(&t).to_string(), "--json"]);
    assert_eq!(dest(&out, "pc-01")["output"], "original\n", "{out:#}");
}
