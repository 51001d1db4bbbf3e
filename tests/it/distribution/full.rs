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
