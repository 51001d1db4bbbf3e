//! A destination's disk fills up: the attempt fails with the reason,
//! nothing half-written is left in the folder, and the agent goes on.

use std::process::Command;

use super::add_package;
use crate::procs::{Agent, Server, create_task, dest, task_id};

/// A 4 MiB tmpfs at `dir`, unmounted when dropped; None where this
/// process may not mount (not root, or no right to mount).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
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
    let Some(_disk) = SmallDisk::mount(&place.path().join("disk")) else {
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
