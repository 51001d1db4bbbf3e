//! The pre-flight with real agents: a destination whose target folder is
//! on a full volume (a small tmpfs) and one offline for days are found
//! before anything starts, `task create` refuses when nothing would run,
//! and what the plan foretold is what happens.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::add_package;
use crate::procs::{Agent, DEADLINE, Server, dest, task_id, wait_until};
use crate::support::ClockFile;

const DAY: i64 = 86_400;

/// A tmpfs of `size` mounted on a temp dir, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// None when this is not root and cannot mount (the test then says
    /// so and does not run; CI runs as root).
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let root = Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
            assert!(
                !root,
                "root cannot mount a tmpfs on {}",
                dir.path().display()
            );
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn the_plan_finds_a_full_disk_and_an_offline_agent_before_anything_starts() {
    let Some(small) = SmallDisk::mount("1m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let clock = ClockFile::new();
    let path = clock.path_str();
    let s = Server::start_with_env(&[], &[("COURIER_CLOCK_FILE", &path)]);
    let (_, token) = s.token(true);
    let mut full = Agent::enrol_with_env(&s.addr, &token, "pc-full", &[]);
    full.wait_enrolled();
    let mut gone = Agent::enrol_with_env(&s.addr, &token, "pc-gone", &[]);
    gone.wait_enrolled();
    s.wait_dest("pc-gone", "online", &[&gone]);
    gone.stop();
    // Four days later: pc-gone is offline; pc-full, started again,
    // online with what it reports of its disks.
    clock.set(4 * DAY + 60);
    s.wait_dest("pc-gone", "offline", &[]);
    full.stop();
    full.start();
    wait_until(
        DEADLINE,
        "pc-full back online",
        || {
            let d = s.json(&["dest", "show", "pc-full", "--json"]);
            (d["status"] == "online").then_some(())
        },
        || full.diagnostics(),
    );

    // A 3 MiB file for a folder on a 1 MiB volume, and a small one.
    let folder: PathBuf = small.path().join("out");
    let package = |name: &str, bytes: usize| {
        let src = s.input(name);
        std::fs::write(&src, vec![7u8; bytes]).unwrap();
        add_package(&s, &src, &["--folder", folder.to_str().unwrap()])["id"].to_string()
    };
    let (big, note) = (package("data.bin", 3 << 20), package("note.txt", 100));
    let plan_of =
        |id: &str, to: &str| s.json(&["task", "plan", "--package", id, "--to", to, "--json"]);
    let row = |plan: &serde_json::Value, name: &str| {
        plan["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {plan:#}"))
            .clone()
    };

    let plan = plan_of(&big, "pc-full");
    let f = row(&plan, "pc-full");
    assert_eq!(f["verdict"], "lacks_disk", "{plan:#}");
    let why = f["reason"].as_str().unwrap();
    assert_eq!(
        why,
        format!("lacks 2 MiB of disk on {}", small.path().display()),
        "{plan:#}"
    );
    assert_eq!(
        plan["summary"],
        "0 will receive the files, 1 lack disk space"
    );
    assert_eq!(plan["will_run"], 0);
    let text = s.ok(&["task", "plan", "--package", &big, "--to", "pc-full"]);
    assert!(
        text.contains("pc-full") && text.contains("lacks_disk"),
        "{text}"
    );
    assert!(
        text.contains("0 will receive the files, 1 lack disk space; starts now"),
        "{text}"
    );
    // Nothing would run: refused with the summary, nothing created.
    let e = s.err(&["task", "create", "--package", &big, "--to", "pc-full"]);
    assert!(
        e.contains("nothing would run: 0 will receive the files, 1 lack disk space"),
        "{e}"
    );
    assert_eq!(s.json(&["task", "list", "--json"]), serde_json::json!([]));

    // The small one fits; pc-gone is offline since four days.
    let plan = plan_of(&note, "pc-full,pc-gone");
    assert_eq!(row(&plan, "pc-full")["verdict"], "run", "{plan:#}");
    let g = row(&plan, "pc-gone");
    assert_eq!(g["verdict"], "offline", "{plan:#}");
    assert_eq!(
        g["reason"], "offline for 4 days: it runs when its agent is back",
        "{plan:#}"
    );
    assert_eq!(
        plan["summary"], "1 will receive the files, 1 offline (longest 4 days)",
        "{plan:#}"
    );
    // Created, with a warning for the offline one.
    let o = s.run(&[
        "task",
        "create",
        "--package",
        &note,
        "--to",
        "pc-full,pc-gone",
        "--json",
    ]);
    assert!(o.status.success(), "{o:?}");
    let warned = String::from_utf8_lossy(&o.stderr);
    assert!(warned.contains("pc-gone: offline for 4 days"), "{warned}");
    assert!(!warned.contains("pc-full"), "{warned}");

    // What the plan foretold for the big one, forced: no space.
    let o = s.run(&[
        "task",
        "create",
        "--package",
        &big,
        "--to",
        "pc-full",
        "--force",
        "--json",
    ]);
    assert!(o.status.success(), "{o:?}");
    let t: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = wait_until(
        DEADLINE,
        "pc-full to fail",
        || {
            let t = s.json(&["task", "show", &task_id(&t).to_string(), "--json"]);
            (dest(&t, "pc-full")["status"] == "failed").then_some(t)
        },
        || full.diagnostics(),
    );
    let m = dest(&t, "pc-full")["message"].as_str().unwrap_or_default();
    assert!(m.to_lowercase().contains("space"), "{t:#}");
    drop(full);
}
