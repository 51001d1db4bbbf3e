//! `courier task wait`: blocks until a task has finished, for scripts that
//! create a task and go on once it is done. One connection, asking every
//! 100 ms for what changed (the counts and the changed rows, as the
//! console's live view does), so waiting on a 100,000-destination task
//! moves little.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::render::emit;
use crate::api::{Client, Request, TaskChanges};
use crate::model::{Counts, Task};
use crate::task::TaskStatus;

const EVERY: Duration = Duration::from_millis(100);

pub(super) fn wait(
    client: &mut Client,
    id: i64,
    timeout: Option<i64>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    if matches!(client, Client::Local(_)) {
        bail!(
            "no server is running for this data dir: nothing would move task {id} on (start `courier serve`)"
        );
    }
    let start = Instant::now();
    let limit = timeout.map(|s| Duration::from_secs(s.unsigned_abs()));
    let mut since = None;
    let mut told_paused: Option<String> = None;
    loop {
        let c: TaskChanges = client.call_as(Request::TaskChanges { id, since })?;
        since = Some(c.rev);
        let t = c.task;
        match t.status {
            TaskStatus::Completed | TaskStatus::Failed => return finished(client, t, json, out),
            TaskStatus::Paused => {
                let why = t.paused_reason.clone().unwrap_or_default();
                if told_paused.as_deref() != Some(why.as_str()) {
                    eprintln!(
                        "courier: task {id} is paused{}: waiting for `courier task resume {id}`",
                        if why.is_empty() {
                            String::new()
                        } else {
                            format!(" ({why})")
                        }
                    );
                    told_paused = Some(why);
                }
            }
            TaskStatus::Scheduled | TaskStatus::Running => told_paused = None,
        }
        if let Some(limit) = limit
            && start.elapsed() >= limit
        {
            bail!(
                "task {id} '{}' has not finished after {}: {} ({})",
                t.name,
                humantime(limit),
                counts_line(&t.counts),
                t.status.as_str()
            );
        }
        std::thread::sleep(EVERY);
    }
}

/// Prints the finished task; a failed one is also an error (exit 1).
fn finished(client: &mut Client, t: Task, json: bool, out: &mut dyn Write) -> Result<()> {
    let line = format!(
        "task {} '{}' {}: {}",
        t.id,
        t.name,
        t.status.as_str(),
        counts_line(&t.counts)
    );
    if json {
        // The whole task, as `task show --json` gives it without outputs.
        let whole: Task = client.call_as(Request::TaskBrief { id: t.id })?;
        emit(out, &whole, true)?;
    } else if t.status == TaskStatus::Completed {
        writeln!(out, "{line}")?;
    }
    if t.status == TaskStatus::Failed {
        out.flush()?;
        bail!("{line} (courier triage)");
    }
    Ok(())
}

/// "18 succeeded, 2 failed": the counts that are not zero, finished first.
fn counts_line(c: &Counts) -> String {
    use crate::task::WorkState as S;
    let parts: Vec<String> = [
        S::Succeeded,
        S::Failed,
        S::Cancelled,
        S::Installing,
        S::Transferring,
        S::Waiting,
    ]
    .into_iter()
    .filter_map(|s| {
        let n = c.get(s);
        (n > 0).then(|| format!("{n} {s}"))
    })
    .collect();
    if parts.is_empty() {
        "no destinations".into()
    } else {
        parts.join(", ")
    }
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_finished_first() {
        let c = Counts {
            waiting: 3,
            transferring: 0,
            installing: 1,
            succeeded: 16,
            failed: 2,
            cancelled: 0,
        };
        assert_eq!(
            counts_line(&c),
            "16 succeeded, 2 failed, 1 installing, 3 waiting"
        );
        assert_eq!(counts_line(&Counts::default()), "no destinations");
        assert_eq!(humantime(Duration::from_secs(600)), "10m");
        assert_eq!(humantime(Duration::from_secs(45)), "45s");
    }
}
