//! Rollouts in rings: the next ring starts when the current one has
//! finished and its gate holds; a gate that trips pauses the task with
//! the reason as an event. An administrator pauses and resumes.

use std::collections::HashSet;

use anyhow::{Result, anyhow, bail};
use rusqlite::Connection;

use super::{Service, conflict};
use crate::clock::UnixTime;
use crate::model::NewEvent;
use crate::model::{DestinationId, Level, Ring, Task, TaskId};
use crate::store::events;
use crate::store::tasks::{self, TaskRow};
use crate::store::{rings, triage};
use crate::task::rings::{self as rule, Gate, Outcome, RingState};

/// The rings of a task as users see them.
pub(super) fn views(c: &Connection, row: &TaskRow) -> Result<Vec<Ring>> {
    let Some(spec) = row.rings.as_deref() else {
        return Ok(Vec::new());
    };
    let n = rule::parse_rings(spec).map_err(|e| anyhow!(e))?.len();
    let counts = rings::counts(c, row.id)?;
    let open = row.ring_open as usize;
    Ok((0..n)
        .map(|i| {
            let k = counts
                .iter()
                .find(|(r, _)| *r == i)
                .map(|(_, k)| *k)
                .unwrap_or_default();
            let state = if i > open {
                RingState::Waiting
            } else if k.unfinished == 0 {
                RingState::Done
            } else if row.paused_reason.is_some() {
                RingState::Paused
            } else {
                RingState::Running
            };
            Ring {
                size: k.total,
                state,
                failed: k.failed,
            }
        })
        .collect())
}

fn event(
    now: UnixTime,
    level: Level,
    kind: &'static str,
    task: TaskId,
    message: String,
) -> NewEvent {
    NewEvent {
        at: now,
        level,
        kind,
        subject: format!("task {task}"),
        message,
    }
}

/// After a destination of `task` finished: when its current ring is done,
/// starts the next if the gate holds, else pauses the task. Returns the
/// destinations to wake.
pub(super) fn advance(c: &Connection, now: UnixTime, task: TaskId) -> Result<Vec<DestinationId>> {
    let Some(row) = tasks::get(c, task)? else {
        return Ok(Vec::new());
    };
    let Some(spec) = row.rings.as_deref() else {
        return Ok(Vec::new());
    };
    if row.paused_reason.is_some() {
        return Ok(Vec::new());
    }
    let n = rule::parse_rings(spec).map_err(|e| anyhow!(e))?.len();
    let gate = row
        .gate
        .as_deref()
        .map(rule::parse_gate)
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let cur = row.ring_open as usize;
    // Asked at every finished report: the cheap questions first, the
    // rows counted by ring only once a ring has ended.
    if cur + 1 >= n || rings::started_unfinished(c, task, cur)? {
        return Ok(Vec::new());
    }
    let counts = rings::counts(c, task)?;
    let started = |r: &usize| *r <= cur;
    let (finished, failed) = counts
        .iter()
        .filter(|(r, _)| started(r))
        .fold((0, 0), |(t, f), (_, k)| (t + k.total, f + k.failed));
    let new_causes = match gate {
        Some(Gate::NewSignature) => new_causes(c, task, cur)?,
        _ => Vec::new(),
    };
    let outcome = Outcome {
        finished,
        failed,
        new_causes,
    };
    match rule::check(gate, cur, &outcome) {
        Ok(()) => open_next(c, now, &row, n, &counts),
        Err(reason) => {
            rings::set_paused(c, task, Some(&reason))?;
            events::append(c, &event(now, Level::Warn, "task.paused", task, reason))?;
            Ok(Vec::new())
        }
    }
}

/// Starts the next ring that has destinations (the last one when none
/// has), with its event; returns its waiting destinations.
fn open_next(
    c: &Connection,
    now: UnixTime,
    row: &TaskRow,
    n: usize,
    counts: &[(usize, rings::RingCounts)],
) -> Result<Vec<DestinationId>> {
    let cur = row.ring_open as usize;
    let next = counts
        .iter()
        .map(|(r, _)| *r)
        .find(|r| *r > cur)
        .unwrap_or(n - 1);
    let size = counts
        .iter()
        .find(|(r, _)| *r == next)
        .map_or(0, |(_, k)| k.total);
    rings::set_open(c, row.id, next)?;
    events::append(
        c,
        &event(
            now,
            Level::Info,
            "task.ring",
            row.id,
            format!(
                "'{}': ring {} of {n} started ({size} destination{})",
                row.name,
                next + 1,
                if size == 1 { "" } else { "s" }
            ),
        ),
    )?;
    rings::waiting_in(c, row.id, next)
}

/// Causes of the failures of ring `ring` that no earlier ring showed.
fn new_causes(c: &Connection, task: TaskId, ring: usize) -> Result<Vec<String>> {
    let failed = triage::failed_in_task(c, task)?;
    let cause = |f| super::triage::with_causes(f).cause().signature;
    let mut seen = HashSet::new();
    let mut last = Vec::new();
    for (r, f) in failed {
        if r < ring {
            seen.insert(cause(f));
        } else if r == ring {
            last.push(cause(f));
        }
    }
    let mut new: Vec<String> = last.into_iter().filter(|c| !seen.contains(c)).collect();
    new.sort();
    new.dedup();
    Ok(new)
}

impl Service {
    /// Holds a task's waiting work until it is resumed.
    pub fn pause_task(&mut self, id: TaskId) -> Result<Task> {
        let row = self.task_row(id)?;
        if row.completed_at.is_some() {
            return Err(conflict(format!(
                "task {id} has finished: nothing to pause"
            )));
        }
        if let Some(why) = &row.paused_reason {
            return Err(conflict(format!("task {id} is paused already: {why}")));
        }
        let now = self.clock.now();
        let reason = "paused by an administrator";
        self.store.write(|tx| {
            rings::set_paused(tx, id, Some(reason))?;
            events::append(
                tx,
                &event(now, Level::Info, "task.paused", id, reason.into()),
            )?;
            Ok(())
        })?;
        self.task(id)
    }

    /// Lets a paused task go on; its current ring done, the next starts
    /// (the administrator has looked: the gate is not asked again).
    pub fn resume_task(&mut self, id: TaskId) -> Result<Task> {
        let row = self.task_row(id)?;
        let Some(why) = row.paused_reason.clone() else {
            bail!("task {id} is not paused");
        };
        let now = self.clock.now();
        let wake = self.store.write(|tx| {
            rings::set_paused(tx, id, None)?;
            events::append(
                tx,
                &event(
                    now,
                    Level::Info,
                    "task.resumed",
                    id,
                    format!("'{}' resumed (was: {why})", row.name),
                ),
            )?;
            let mut wake = rings::waiting_in(tx, id, row.ring_open as usize)?;
            if let Some(spec) = row.rings.as_deref() {
                let n = rule::parse_rings(spec).map_err(|e| anyhow!(e))?.len();
                let counts = rings::counts(tx, id)?;
                let cur = row.ring_open as usize;
                let current_done = counts.iter().all(|(r, k)| *r > cur || k.unfinished == 0);
                if current_done && cur + 1 < n {
                    wake.extend(open_next(tx, now, &row, n, &counts)?);
                }
            }
            Ok(wake)
        })?;
        self.wake.extend(wake);
        self.task(id)
    }
}
