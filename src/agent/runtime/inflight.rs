//! The attempt whose command runs, on disk while it runs: an agent that
//! dies mid-install (killed, crashed, a power cut) must neither leave the
//! installer running unwatched nor start the same attempt again beside it.
//!
//! Before the command starts, `running/<task>-<attempt>.json` says which
//! attempt it is; once the command exists (and before its first step: it
//! waits at a gate, see [`exec::RunSpec::on_start`]) the record gets its
//! process group and the leader's start time, which tells the group from a
//! later process that reuses the id. The record goes once the report is
//! saved and the attempt marked done.
//!
//! At start, before any work, the agent finds what such records describe:
//! a group still running is killed whole and waited for; the attempt is
//! then reported failed, as a transient failure, so the server's retry
//! policy makes a new, recorded attempt rather than the agent running the
//! old one twice. On Windows the command runs in a kill-on-close Job Object
//! that died with the agent; the restart rule is the same.
//!
//! [`exec::RunSpec::on_start`]: crate::agent::exec::RunSpec::on_start

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{keep_report, sync_dir};
use crate::proto::{Report, ReportStatus};

/// One running attempt, as recorded.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    task_id: i64,
    attempt: i64,
    /// The command's process group (its leader's pid), once started.
    #[serde(default)]
    group: Option<i32>,
    /// The leader's start time (clock ticks after boot, from /proc).
    #[serde(default)]
    start_time: Option<u64>,
}

fn dir(data: &Path) -> PathBuf {
    data.join("running")
}

fn path(data: &Path, task_id: i64, attempt: i64) -> PathBuf {
    dir(data).join(format!("{task_id}-{attempt}.json"))
}

/// Records that attempt `task_id`-`attempt` is about to run its command.
pub(super) fn begin(data: &Path, task_id: i64, attempt: i64) -> io::Result<()> {
    write(
        data,
        &Record {
            task_id,
            attempt,
            group: None,
            start_time: None,
        },
    )
}

/// Records the process group of the command just started (led by `pid`).
pub(super) fn started(data: &Path, task_id: i64, attempt: i64, pid: u32) -> io::Result<()> {
    let group = i32::try_from(pid).map_err(io::Error::other)?;
    write(
        data,
        &Record {
            task_id,
            attempt,
            group: Some(group),
            start_time: start_time(group),
        },
    )
}

/// The attempt is over and its report is safe: the record goes.
pub(super) fn end(data: &Path, key: &str) {
    let dir = dir(data);
    match std::fs::remove_file(dir.join(format!("{key}.json"))) {
        Ok(()) => {
            let _ = sync_dir(&dir);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!("cannot remove the record of {key}: {e}"),
    }
}

/// Written whole and synced, then renamed over the previous one.
fn write(data: &Path, r: &Record) -> io::Result<()> {
    let dir = dir(data);
    crate::datadir::create_private_dir(&dir).map_err(io::Error::other)?;
    let tmp = dir.join(format!(".{}-{}.tmp", r.task_id, r.attempt));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(r)?)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path(data, r.task_id, r.attempt))?;
    sync_dir(&dir)
}

/// Deals with what a previous run of the agent left running: each group
/// still alive is killed and waited for, and each attempt not reported yet
/// is reported failed (to be retried by the server). Runs before the
/// worker takes any work.
pub(super) async fn recover(data: &Path) {
    let Ok(entries) = std::fs::read_dir(dir(data)) else {
        return;
    };
    let mut records: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    records.sort();
    for p in records {
        let record = std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Record>(&b).ok());
        let Some(r) = record else {
            tracing::error!("unreadable record {}; removed", p.display());
            let _ = std::fs::remove_file(&p);
            continue;
        };
        let key = format!("{}-{}", r.task_id, r.attempt);
        let message = match r.group {
            None => "the agent stopped as the installer was about to start; it did not run",
            Some(group) if stop_group(group, r.start_time).await => {
                "the agent stopped while the installer ran; the installer was stopped"
            }
            Some(_) => {
                "the agent stopped while the installer ran; the installer had ended, but its outcome was lost"
            }
        };
        tracing::warn!(task = r.task_id, attempt = r.attempt, "{message}");
        if !data.join("done").join(&key).exists() {
            let report = Report {
                task_id: r.task_id,
                attempt: r.attempt,
                status: ReportStatus::Failed,
                exit_code: None,
                message: Some(message.into()),
                output: None,
                transferred: 0,
                retry: true,
                reboot_required: false,
                detection: None,
                log: None,
            };
            keep_report(data, &key, &report).await;
        }
        let _ = std::fs::remove_dir_all(data.join("work").join(&key));
        end(data, &key);
    }
}

/// Kills process group `group` if it still runs and is the one recorded
/// (its leader, if alive, started at `start_time`), and waits until none
/// of its processes is left. True if there was something to kill.
#[cfg(target_os = "linux")]
async fn stop_group(group: i32, start_time: Option<u64>) -> bool {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if members(group) == 0 {
        return false;
    }
    // The leader gone, its id cannot be given to another process while
    // the group it named still has members; the leader alive, its start
    // time tells whether it is still the one recorded.
    if let Some(now) = start_time_of_leader(group)
        && Some(now) != start_time
    {
        tracing::warn!(
            group,
            "process group {group} is not the recorded one; left alone"
        );
        return false;
    }
    let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
    for _ in 0..200 {
        if members(group) == 0 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tracing::error!(group, "process group {group} survived SIGKILL for 10 s");
    true
}

/// On Windows the command's kill-on-close Job Object ended it with the
/// agent. Elsewhere there is no /proc to identify the group by: it is left
/// alone.
#[cfg(not(target_os = "linux"))]
async fn stop_group(_group: i32, _start_time: Option<u64>) -> bool {
    cfg!(windows)
}

/// Fields of /proc/PID/stat after the command name (state is the first).
#[cfg(target_os = "linux")]
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Live (not zombie) processes of group `group`.
#[cfg(target_os = "linux")]
fn members(group: i32) -> usize {
    let group = group.to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|pid| stat_fields(&pid))
        .filter(|f| f.get(2) == Some(&group) && !matches!(f[0].as_str(), "Z" | "X"))
        .count()
}

/// The start time of process `group` if it is alive and leads its group.
#[cfg(target_os = "linux")]
fn start_time_of_leader(group: i32) -> Option<u64> {
    let f = stat_fields(&group.to_string())?;
    if f.get(2) != Some(&group.to_string()) || matches!(f[0].as_str(), "Z" | "X") {
        return None;
    }
    start_time(group)
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks
/// after boot. Never the same for two processes that share an id.
fn start_time(pid: i32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        stat_fields(&pid.to_string())?.get(19)?.parse().ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}
