//! Disks fill up. A destination's: the attempt fails with the reason,
//! nothing half-written is left in the folder, and the agent goes on. The
//! server's: registration and admin writes fail with one clear line,
//! agents' reports wait, nothing is lost, and all goes on once there is
//! room again.

use std::process::Command;

use super::add_package;
use crate::procs::{Agent, Server, create_task, dest, task_id, wait_until};
use crate::support::Courier;

/// A tmpfs of `size` (`4m`) at `dir`, unmounted when dropped; None where
/// this process may not mount (not root, or no right to mount).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_attempt_with_its_reason_and_leaves_nothing_half_written() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "full-01");
    let place = tempfile::tempdir().unwrap();
    let Some(_disk) = SmallDisk::mount(&place.path().join("disk"), "4m") else {
        eprintln!("skipped: this process may not mount a tmpfs");
        return;
    };
    let folder = place.path().join("disk").join("app");
    let src = s.input("big.bin");
    std::fs::write(&src, vec![0x5au8; 8 << 20]).unwrap();
    let pkg = add_package(&s, &src, &["--folder", folder.to_str().unwrap()]);
    let t = create_task(&s, &pkg, "full-01", &[]);
    let done = s.wait_task_finished(task_id(&t), &[&a]);
    let d = dest(&done, "full-01");
    assert_eq!(d["status"], "failed", "{done:#}");
    let message = d["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        message.contains("no space") || message.contains("disk"),
        "{message}"
    );
    let left: Vec<_> = walk(&place.path().join("disk"));
    assert!(
        left.iter().all(|p| !p.ends_with("big.bin")),
        "a partial file was left: {left:?}"
    );
    // The agent is still there for the next task.
    let small = s.input("small.txt");
    std::fs::write(&small, b"fits").unwrap();
    let pkg = add_package(&s, &small, &["--folder", folder.to_str().unwrap()]);
    let t = create_task(&s, &pkg, "full-01", &[]);
    let done = s.wait_task_finished(task_id(&t), &[&a]);
    assert_eq!(dest(&done, "full-01")["status"], "succeeded", "{done:#}");
}

/// Fills the filesystem under `dir` with one file; returns its path.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0xffu8; 64 << 10];
    while f.write_all(&block).is_ok() {}
    // The last few bytes a block would not take.
    while f.write_all(&[0xff]).is_ok() {}
    let _ = f.sync_all();
    path
}

#[test]
fn a_full_server_disk_refuses_what_it_cannot_keep_and_loses_nothing() {
    let c = Courier::new();
    let Some(_disk) = SmallDisk::mount(&c.data(), "24m") else {
        eprintln!("skipped: this process may not mount a tmpfs");
        return;
    };
    let mut s = Server::start_in(c, &[], &[]);
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "srvfull-01");

    // A package bigger than the disk: one line saying why, nothing of it
    // left in the data dir, the server still serving.
    let big = s.input("big.bin");
    std::fs::write(&big, vec![0x5au8; 32 << 20]).unwrap();
    let used_before = du(&s.data());
    let out = s.run(&["package", "add", big.to_str().unwrap(), "--folder", "/srv"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.to_lowercase().contains("no space"), "{err}");
    assert!(
        du(&s.data()) < used_before + (1 << 20),
        "a partial package was left: {} bytes used, {used_before} before",
        du(&s.data())
    );
    s.ok(&["status"]);

    // A task whose install waits for a go-ahead, so its outcome comes
    // while the disk is full.
    let gate = s.input("go");
    let script = s.input("setup.sh");
    std::fs::write(
        &script,
        format!("while [ ! -e '{}' ]; do sleep 0.1; done\n", gate.display()),
    )
    .unwrap();
    let pkg = add_package(&s, &script, &["--install-command", "sh setup.sh"]);
    let t = create_task(&s, &pkg, "srvfull-01", &[]);
    let id = task_id(&t);
    s.wait_task(id, &[&a], "the install to run", |t| {
        dest(t, "srvfull-01")["status"] == "installing"
    });
    let filler = fill(&s.data());
    // Admin writes fail with the reason; reads still answer.
    let out = s.run(&["token", "create"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.to_lowercase().contains("disk is full"), "{err}");
    std::fs::write(&gate, b"").unwrap();
    // The agent's report cannot be kept: it waits and is sent again.
    wait_until(
        std::time::Duration::from_secs(30),
        "the agent to be told the server cannot keep its report",
        || {
            std::fs::read_to_string(a.data().join("agent.log"))
                .ok()?
                .contains("the server's disk is full")
                .then_some(())
        },
        || format!("{}\n{}", a.diagnostics(), s.diagnostics()),
    );
    let shown = s.json(&["task", "show", &id.to_string(), "--json"]);
    assert_eq!(
        dest(&shown, "srvfull-01")["status"],
        "installing",
        "{shown:#}"
    );
    // Room again: the outcome lands, once.
    std::fs::remove_file(&filler).unwrap();
    let done = s.wait_task_finished(id, &[&a]);
    let d = dest(&done, "srvfull-01");
    assert_eq!(d["status"], "succeeded", "{done:#}");
    assert_eq!(d["attempt"], 1, "{done:#}");
    s.kill();
    let db = rusqlite::Connection::open(s.data().join("courier.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// Bytes used by the files under `dir`.
fn du(dir: &std::path::Path) -> u64 {
    walk(dir)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// An installer that prints 200 MB: the attempt ends normally, the agent
/// keeps and sends only the tail, and stays small.
#[test]
fn an_install_flooding_its_output_keeps_only_the_tail() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "flood-01");
    let script = s.input("noisy-setup.sh");
    std::fs::write(
        &script,
        "head -c 200000000 /dev/zero | tr '\\0' 'x' | fold -w 100\necho 'last line'\n",
    )
    .unwrap();
    let pkg = add_package(&s, &script, &["--install-command", "sh noisy-setup.sh"]);
    let t = create_task(&s, &pkg, "flood-01", &[]);
    let done = s.wait_task_finished(task_id(&t), &[&a]);
    let d = dest(&done, "flood-01");
    assert_eq!(d["status"], "succeeded", "{done:#}");
    let out = d["output"].as_str().unwrap_or_default();
    assert!(
        out.ends_with("last line\n"),
        "{:?}",
        &out[out.len().saturating_sub(200)..]
    );
    // The last 16 KiB, marked as cut.
    assert!(out.starts_with('…'), "{:?}", &out[..40.min(out.len())]);
    assert!(
        out.len() <= (16 << 10) + '…'.len_utf8(),
        "{} bytes of output kept",
        out.len()
    );
    let pid = a.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(peak < 64 << 10, "the agent peaked at {peak} KiB");
}
