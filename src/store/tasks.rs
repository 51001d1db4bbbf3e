//! The `tasks` and `task_destinations` tables: rows in, rows out. Which
//! state follows which, and what a row means for an agent, is decided in
//! `crate::task`.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::sql::{Cached, in_list};
use crate::clock::{UnixTime, rfc3339};
use crate::model::{Counts, DestinationId, PackageId, Stuck, TaskDestination, TaskId};
use crate::task::detect::Detection;
use crate::task::rules::RetentionRow;
use crate::task::stuck;
use crate::task::{TaskClass, TaskType, WorkState};

/// The stored part of a task; status and counts are derived.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: TaskId,
    pub name: String,
    pub kind: TaskType,
    pub class: TaskClass,
    pub package_id: Option<PackageId>,
    pub package_name: String,
    pub start_at: Option<UnixTime>,
    pub window: Option<String>,
    pub created_at: UnixTime,
    pub completed_at: Option<UnixTime>,
    /// An uninstallation from the inventory: the program (or pattern).
    pub software: Option<String>,
    pub software_version: Option<String>,
    pub policy_id: Option<i64>,
    /// Runs despite detection rules.
    pub force: bool,
    /// Rings (`5,25%,100%`) and gate (`failures=10%`), as given.
    pub rings: Option<String>,
    pub gate: Option<String>,
    /// The highest ring started (0 without rings).
    pub ring_open: i64,
    /// Why waiting work is not handed out (a gate tripped, an admin).
    pub paused_reason: Option<String>,
}

const TASK_COLUMNS: &str = "id, name, type, class, package_id, package_name, start_at, window,
     created_at, completed_at, software, software_version, policy_id, force, rings, gate,
     ring_open, paused_reason";

fn task_from_row(r: &Row) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        class: r.get(3)?,
        package_id: r.get(4)?,
        package_name: r.get(5)?,
        start_at: r.get(6)?,
        window: r.get(7)?,
        created_at: r.get(8)?,
        completed_at: r.get(9)?,
        software: r.get(10)?,
        software_version: r.get(11)?,
        policy_id: r.get(12)?,
        force: r.get(13)?,
        rings: r.get(14)?,
        gate: r.get(15)?,
        ring_open: r.get(16)?,
        paused_reason: r.get(17)?,
    })
}

/// `status IN (…)` of the states still to finish.
fn unfinished() -> String {
    in_list(&WorkState::UNFINISHED)
}

/// A task about to be stored.
pub struct NewTask<'a> {
    pub name: &'a str,
    pub kind: TaskType,
    pub class: TaskClass,
    pub package_id: Option<PackageId>,
    pub package_name: &'a str,
    pub start_at: Option<UnixTime>,
    pub window: Option<&'a str>,
    pub software: Option<&'a str>,
    pub software_version: Option<&'a str>,
    pub policy_id: Option<i64>,
    pub force: bool,
    pub rings: Option<&'a str>,
    pub gate: Option<&'a str>,
}

pub fn insert(c: &Connection, t: &NewTask, at: UnixTime) -> Result<TaskId> {
    c.exec(
        "INSERT INTO tasks (name, type, class, package_id, package_name, start_at, window,
                            created_at, software, software_version, policy_id, force, rings,
                            gate)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            t.name,
            t.kind,
            t.class,
            t.package_id,
            t.package_name,
            t.start_at,
            t.window,
            at,
            t.software,
            t.software_version,
            t.policy_id,
            t.force,
            t.rings,
            t.gate
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// Adds a destination to a task, waiting for its first attempt; with
/// `command`, it runs that instead of the package's (a removal its
/// inventory reported).
pub fn add_destination(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
    command: Option<&str>,
    at: UnixTime,
) -> Result<()> {
    c.exec(
        "INSERT INTO task_destinations (task_id, destination_id, status, attempt, updated_at,
                                        command, state_since)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?4)",
        params![task, dest, WorkState::Waiting, at, command],
    )?;
    Ok(())
}

/// Adds a new task's destinations, each in its ring (0 without rings),
/// all waiting, under one new revision: one write per row, where
/// [`add_destination`]'s trigger makes three.
pub fn add_destinations(
    c: &Connection,
    task: TaskId,
    rows: impl IntoIterator<Item = (DestinationId, usize)>,
    at: UnixTime,
) -> Result<()> {
    c.exec("UPDATE revision SET rev = rev + 1 WHERE one = 1", [])?;
    let rev = revision(c)?;
    let mut st = c.prepare_cached(
        "INSERT INTO task_destinations (task_id, destination_id, status, attempt, updated_at,
                                        state_since, ring, rev)
         VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5, ?6)",
    )?;
    for (dest, ring) in rows {
        st.execute(params![
            task,
            dest,
            WorkState::Waiting,
            at,
            ring as i64,
            rev
        ])?;
    }
    Ok(())
}

/// Adds a destination to a task as already finished in `state`, with
/// why: one a task could not run on (no quiet removal command).
pub fn add_finished(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
    state: WorkState,
    message: &str,
    at: UnixTime,
) -> Result<()> {
    c.exec(
        "INSERT INTO task_destinations (task_id, destination_id, status, attempt, updated_at,
                                        message, state_since)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?4)",
        params![task, dest, state, at, message],
    )?;
    Ok(())
}

pub fn get(c: &Connection, id: TaskId) -> Result<Option<TaskRow>> {
    Ok(c.one(
        &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"),
        [id],
        task_from_row,
    )
    .optional()?)
}

pub fn list(c: &Connection) -> Result<Vec<TaskRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY id"))?;
    let rows = st.query_map([], task_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

const DEST_COLUMNS: &str = "d.name, td.status, td.exit_code, td.message, td.meaning, td.attempt,
     td.retries, td.transferred, td.reboot_required, td.updated_at, td.started_at, td.command,
     td.detection, td.log IS NOT NULL, td.state_since, d.last_seen, d.command_timeout";

/// The time rows are judged at, and the limits past which unfinished work
/// is stuck.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub at: UnixTime,
    pub limits: stuck::Limits,
}

/// A destination row; `now` ends the elapsed time of an attempt still
/// under way (a finished one ends when it was last updated).
fn dest_from_row(r: &Row, output: Option<String>, now: &Now) -> rusqlite::Result<TaskDestination> {
    let status: WorkState = r.get(1)?;
    let updated: UnixTime = r.get(9)?;
    let started: Option<UnixTime> = r.get(10)?;
    let end = if status.is_final() { updated } else { now.at };
    let state_since: UnixTime = r.get::<_, Option<UnixTime>>(14)?.unwrap_or(updated);
    let ages = stuck::Ages {
        state: status,
        state_since,
        updated,
        last_seen: r.get(15)?,
        command_timeout: r.get(16)?,
    };
    Ok(TaskDestination {
        name: r.get(0)?,
        status,
        exit_code: r.get(2)?,
        message: r.get(3)?,
        meaning: r.get(4)?,
        attempt: r.get(5)?,
        retries: r.get(6)?,
        transferred: r.get(7)?,
        reboot_required: r.get(8)?,
        output,
        updated_at: rfc3339(updated),
        started_at: started.map(rfc3339),
        elapsed_secs: started.map(|s| end.saturating_sub(s).max(0)),
        command: r.get(11)?,
        detection: r
            .get::<_, Option<String>>(12)?
            .as_deref()
            .and_then(Detection::parse),
        has_log: r.get(13)?,
        log: None,
        state_since: Some(rfc3339(state_since)),
        stuck: stuck::stuck(&ages, &now.limits, now.at).map(|(kind, reason, since)| Stuck {
            kind,
            reason,
            since: rfc3339(since),
        }),
    })
}

/// Every destination of a task by name, without their output (which can
/// be 16 KiB each).
pub fn destinations(c: &Connection, task: TaskId, now: &Now) -> Result<Vec<TaskDestination>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {DEST_COLUMNS}
         FROM task_destinations td JOIN destinations d ON d.id = td.destination_id
         WHERE td.task_id = ?1 ORDER BY d.name"
    ))?;
    let rows = st.query_map([task], |r| dest_from_row(r, None, now))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The revision of the last change to any task-destination row (the
/// change cursor of migration 005).
pub fn revision(c: &Connection) -> Result<i64> {
    Ok(c.one("SELECT rev FROM revision WHERE one = 1", [], |r| r.get(0))?)
}

/// The destinations of a task changed (inserted or updated) after
/// revision `since`, by name, without their output.
pub fn destinations_since(
    c: &Connection,
    task: TaskId,
    since: i64,
    now: &Now,
) -> Result<Vec<TaskDestination>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {DEST_COLUMNS}
         FROM task_destinations td JOIN destinations d ON d.id = td.destination_id
         WHERE td.task_id = ?1 AND td.rev > ?2 ORDER BY d.name"
    ))?;
    let rows = st.query_map(params![task, since], |r| dest_from_row(r, None, now))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every destination of a task with its output.
pub fn destinations_with_output(
    c: &Connection,
    task: TaskId,
    now: &Now,
) -> Result<Vec<TaskDestination>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {DEST_COLUMNS}, td.output
         FROM task_destinations td JOIN destinations d ON d.id = td.destination_id
         WHERE td.task_id = ?1 ORDER BY d.name"
    ))?;
    let rows = st.query_map([task], |r| dest_from_row(r, r.get(17)?, now))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One destination of one task, with its output.
pub fn destination(
    c: &Connection,
    task: TaskId,
    name: &str,
    now: &Now,
) -> Result<Option<TaskDestination>> {
    Ok(c.one(
        &format!(
            "SELECT {DEST_COLUMNS}, td.output, td.log
             FROM task_destinations td JOIN destinations d ON d.id = td.destination_id
             WHERE td.task_id = ?1 AND d.name = ?2"
        ),
        params![task, name],
        |r| {
            let mut d = dest_from_row(r, r.get(17)?, now)?;
            d.log = r.get(18)?;
            Ok(d)
        },
    )
    .optional()?)
}

/// Destinations of a task by state.
pub fn counts(c: &Connection, task: TaskId) -> Result<Counts> {
    let mut st = c.prepare_cached(
        "SELECT status, COUNT(*) FROM task_destinations WHERE task_id = ?1 GROUP BY status",
    )?;
    let mut counts = Counts::default();
    let rows = st.query_map([task], |r| {
        Ok((r.get::<_, WorkState>(0)?, r.get::<_, u64>(1)?))
    })?;
    for row in rows {
        let (state, n) = row?;
        *counts.get_mut(state) = n;
    }
    Ok(counts)
}

/// Whether `task` has a destination still to finish (an index lookup).
pub fn any_unfinished(c: &Connection, task: TaskId) -> Result<bool> {
    Ok(c.one(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM task_destinations
                 WHERE task_id = ?1 AND status IN {})",
            unfinished()
        ),
        [task],
        |r| r.get(0),
    )?)
}

/// Tasks not yet completed that distribute or uninstall `package`, as
/// `(id, name)`.
pub fn unfinished_using_package(
    c: &Connection,
    package: PackageId,
) -> Result<Vec<(TaskId, String)>> {
    let mut st = c.prepare_cached(
        "SELECT id, name FROM tasks WHERE package_id = ?1 AND completed_at IS NULL ORDER BY id",
    )?;
    let rows = st.query_map(params![package], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// State of one destination of one task.
pub fn state(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
) -> Result<Option<crate::task::rules::Current>> {
    Ok(c.one(
        "SELECT status, attempt, retries FROM task_destinations
             WHERE task_id = ?1 AND destination_id = ?2",
        params![task, dest],
        |r| {
            Ok(crate::task::rules::Current {
                state: r.get(0)?,
                attempt: r.get(1)?,
                retries: r.get(2)?,
            })
        },
    )
    .optional()?)
}

/// What a progress report says of an attempt under way.
pub struct Progress<'a> {
    pub state: WorkState,
    pub transferred: u64,
    /// The output tail so far; None keeps what the row has.
    pub output: Option<&'a str>,
}

/// An attempt under way; the first progress of an attempt marks its start.
pub fn set_progress(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
    p: &Progress,
    at: UnixTime,
) -> Result<()> {
    c.exec(
        "UPDATE task_destinations SET status = ?3, transferred = ?4, updated_at = ?5,
             started_at = COALESCE(started_at, ?5), output = COALESCE(?6, output),
             state_since = CASE WHEN status = ?3 THEN state_since ELSE ?5 END
         WHERE task_id = ?1 AND destination_id = ?2",
        params![task, dest, p.state, p.transferred, at, p.output],
    )?;
    Ok(())
}

/// Final outcome of an attempt.
pub struct Outcome<'a> {
    pub state: WorkState,
    pub exit_code: Option<i64>,
    pub message: Option<&'a str>,
    pub meaning: Option<&'a str>,
    pub output: Option<&'a str>,
    pub transferred: u64,
    pub reboot_required: bool,
    pub detection: Option<Detection>,
    /// The end of the installer's log.
    pub log: Option<&'a str>,
}

pub fn finish(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
    o: &Outcome,
    at: UnixTime,
) -> Result<()> {
    c.exec(
        "UPDATE task_destinations SET status = ?3, exit_code = ?4, message = ?5, meaning = ?6,
             output = ?7, transferred = ?8, reboot_required = ?9, updated_at = ?10,
             not_before = NULL, started_at = COALESCE(started_at, ?10), detection = ?11,
             log = ?12, state_since = ?10
         WHERE task_id = ?1 AND destination_id = ?2",
        params![
            task,
            dest,
            o.state,
            o.exit_code,
            o.message,
            o.meaning,
            o.output,
            o.transferred,
            o.reboot_required,
            at,
            o.detection.map(Detection::as_str),
            o.log,
        ],
    )?;
    Ok(())
}

/// Why a destination goes back to waiting.
pub enum Requeue<'a> {
    /// An admin's re-run or edit: a fresh attempt, retries counted anew.
    Fresh,
    /// An automatic retry of a transient failure, not before `at`; what
    /// the failed attempt said is kept on the row meanwhile.
    Retry {
        at: UnixTime,
        message: &'a str,
        exit_code: Option<i64>,
        meaning: Option<&'a str>,
    },
}

/// Puts a destination back to waiting for a new attempt.
pub fn requeue(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
    why: &Requeue,
    at: UnixTime,
) -> Result<()> {
    let (not_before, automatic, message, exit_code, meaning) = match *why {
        Requeue::Fresh => (None, false, None, None, None),
        Requeue::Retry {
            at,
            message,
            exit_code,
            meaning,
        } => (Some(at), true, Some(message), exit_code, meaning),
    };
    c.exec(
        "UPDATE task_destinations SET status = ?8, attempt = attempt + 1,
             retries = CASE WHEN ?4 THEN retries + 1 ELSE 0 END, not_before = ?3,
             message = ?5, exit_code = ?6, meaning = ?7, output = NULL, transferred = 0,
             reboot_required = 0, updated_at = ?9, started_at = NULL, detection = NULL,
             log = NULL, state_since = ?9
         WHERE task_id = ?1 AND destination_id = ?2",
        params![
            task,
            dest,
            not_before,
            automatic,
            message,
            exit_code,
            meaning,
            WorkState::Waiting,
            at
        ],
    )?;
    Ok(())
}

pub fn set_completed(c: &Connection, task: TaskId, at: Option<UnixTime>) -> Result<()> {
    c.exec(
        "UPDATE tasks SET completed_at = ?2 WHERE id = ?1",
        params![task, at],
    )?;
    Ok(())
}

/// Every destination of a task as (destination id, name, state).
pub fn destination_states(
    c: &Connection,
    task: TaskId,
) -> Result<Vec<(DestinationId, String, WorkState)>> {
    let mut st = c.prepare_cached(
        "SELECT d.id, d.name, td.status FROM task_destinations td
         JOIN destinations d ON d.id = td.destination_id WHERE td.task_id = ?1 ORDER BY d.name",
    )?;
    let rows = st.query_map([task], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Cancels an unfinished destination of a task; a finished one keeps its
/// outcome. Returns whether anything changed.
pub fn cancel(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
    message: &str,
    at: UnixTime,
) -> Result<bool> {
    Ok(c.exec(
        &format!(
            "UPDATE task_destinations SET status = ?5, message = ?3, not_before = NULL,
                 updated_at = ?4, state_since = ?4
             WHERE task_id = ?1 AND destination_id = ?2 AND status IN {}",
            unfinished()
        ),
        params![task, dest, message, at, WorkState::Cancelled],
    )? > 0)
}

pub fn delete(c: &Connection, task: TaskId) -> Result<()> {
    c.exec("DELETE FROM tasks WHERE id = ?1", [task])?;
    Ok(())
}

pub fn set_package(c: &Connection, task: TaskId, package: PackageId, name: &str) -> Result<()> {
    c.exec(
        "UPDATE tasks SET package_id = ?2, package_name = ?3 WHERE id = ?1",
        params![task, package, name],
    )?;
    Ok(())
}

/// Tasks that include `dest`, as (task id, name, number of destinations).
pub fn of_destination(c: &Connection, dest: DestinationId) -> Result<Vec<(TaskId, String, u64)>> {
    let mut st = c.prepare_cached(
        "SELECT t.id, t.name, (SELECT COUNT(*) FROM task_destinations x WHERE x.task_id = t.id)
         FROM tasks t JOIN task_destinations td ON td.task_id = t.id
         WHERE td.destination_id = ?1 ORDER BY t.id",
    )?;
    let rows = st.query_map([dest], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn remove_destination(c: &Connection, task: TaskId, dest: DestinationId) -> Result<()> {
    c.exec(
        "DELETE FROM task_destinations WHERE task_id = ?1 AND destination_id = ?2",
        params![task, dest],
    )?;
    Ok(())
}

/// What retention judges, for every task that is completed or has no
/// destinations left (the others are never due), as (id, name, row).
pub fn retention_candidates(c: &Connection) -> Result<Vec<(TaskId, String, RetentionRow)>> {
    let mut st = c.prepare_cached(
        "SELECT t.id, t.name, t.class, t.completed_at,
                (SELECT COUNT(*) FROM task_destinations td WHERE td.task_id = t.id) AS n
         FROM tasks t
         WHERE t.completed_at IS NOT NULL
            OR NOT EXISTS (SELECT 1 FROM task_destinations td WHERE td.task_id = t.id)
         ORDER BY t.id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            RetentionRow {
                class: r.get(2)?,
                completed_at: r.get(3)?,
                destinations: r.get(4)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Destination ids with unfinished work in a task.
pub fn unfinished_destinations(c: &Connection, task: TaskId) -> Result<Vec<DestinationId>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT destination_id FROM task_destinations WHERE task_id = ?1 AND status IN {}",
        unfinished()
    ))?;
    let rows = st.query_map([task], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Counts for the status line: running tasks and unfinished destinations.
pub fn activity(c: &Connection) -> Result<(u64, u64)> {
    Ok(c.one(
        &format!(
            "SELECT (SELECT COUNT(*) FROM tasks WHERE completed_at IS NULL),
                    (SELECT COUNT(*) FROM task_destinations WHERE status IN {})",
            unfinished()
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

#[cfg(test)]
#[path = "tasks_tests.rs"]
mod tests;
