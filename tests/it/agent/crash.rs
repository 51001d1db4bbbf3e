//! An agent killed mid-install: the installer it left running is stopped,
//! and the attempt is not run a second time beside it.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Dest, group_members, script_package, wait_task};
use crate::procs::{DEADLINE, Server, create_task, dest, task_id, wait_until};

/// Removes the file that keeps the test's installers waiting, however the
/// test ends, so none of them outlives it.
struct Release(PathBuf);

impl Drop for Release {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn lines(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The process group of process `pid`.
fn group_of(pid: i32) -> i32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("installer alive");
    let (_, rest) = stat.rsplit_once(')').unwrap();
    rest.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// kill -9 of the agent while its installer runs, then a restart: the
/// old installer's whole process group is killed, the same attempt does
/// not run again, the destination says why the attempt failed, and the
/// server's retry makes a new attempt, which runs once and succeeds.
#[test]
fn an_agent_killed_mid_install_stops_the_installer_and_does_not_rerun_it() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let mut d = Dest::enrolled(&s, &token, "crash-01", &[]);
    let marks = tempfile::tempdir().unwrap();
    let (log, hold) = (marks.path().join("log"), marks.path().join("hold"));
    fs::write(&hold, "").unwrap();
    let _release = Release(hold.clone());
    // The work dir is named after the attempt: "<task>-<attempt>". The
    // installer and a helper it starts wait as long as `hold` exists.
    let script = format!(
        "a=$(basename \"$PWD\")\n\
         (while [ -e '{hold}' ]; do sleep 0.1; done) &\n\
         echo \"start $a $$\" >> '{log}'\n\
         while [ -e '{hold}' ]; do sleep 0.1; done\n\
         echo \"end $a\" >> '{log}'\n",
        hold = hold.display(),
        log = log.display()
    );
    let pkg = script_package(&s, "slow-setup.sh", &script, "sh slow-setup.sh");
    let id = task_id(&create_task(&s, &pkg, "crash-01", &[]));
    let first = format!("start {id}-1 ");
    let pid: i32 = wait_until(
        DEADLINE,
        "the installer to start",
        || {
            let l = lines(&log);
            let line = l.iter().find(|l| l.starts_with(&first))?;
            line.rsplit(' ').next()?.parse().ok()
        },
        || d.diagnostics(),
    );
    let group = group_of(pid);
    assert!(group_members(group).len() >= 2, "installer and its helper");

    d.kill();
    // Nothing stops the group when the agent dies at once.
    assert!(!group_members(group).is_empty());
    d.restart();

    let t = wait_task(&s, id, &d, "attempt 1 to be reported failed", |t| {
        dest(t, "crash-01")["attempt"] == 2 || lines(&log).len() > 1
    });
    let starts: Vec<String> = lines(&log)
        .into_iter()
        .filter(|l| l.starts_with(&first))
        .collect();
    assert_eq!(starts.len(), 1, "attempt {id}-1 ran twice: {starts:?}");
    let left = group_members(group);
    assert!(left.is_empty(), "the first installer still runs: {left:?}");
    let row = dest(&t, "crash-01");
    assert_eq!(row["retries"], 1, "{t:#}");
    let message = row["message"].as_str().unwrap_or("");
    assert!(
        message.contains("the agent stopped while the installer ran; the installer was stopped"),
        "{t:#}"
    );
    let retry = s
        .events()
        .into_iter()
        .filter(|e| e["kind"] == "task.retry")
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>();
    assert!(
        retry
            .iter()
            .any(|m| m.contains("crash-01") && m.contains("the installer was stopped")),
        "{retry:?}"
    );

    // The retry (after the server's backoff) is a new attempt: it runs
    // once, to its end.
    fs::remove_file(&hold).unwrap();
    let t = wait_task(&s, id, &d, "attempt 2 to succeed", |t| {
        dest(t, "crash-01")["status"] == "succeeded"
    });
    assert_eq!(dest(&t, "crash-01")["attempt"], 2, "{t:#}");
    let all = lines(&log);
    let of = |p: &str| all.iter().filter(|l| l.starts_with(p)).count();
    assert_eq!(of(&first), 1, "{all:?}");
    assert_eq!(of(&format!("end {id}-1")), 0, "{all:?}");
    assert_eq!(of(&format!("start {id}-2 ")), 1, "{all:?}");
    assert_eq!(of(&format!("end {id}-2")), 1, "{all:?}");
}
