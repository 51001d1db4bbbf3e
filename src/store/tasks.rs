//! The `tasks` and `task_destinations` tables.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::clock::{UnixTime, rfc3339};
use crate::exitcodes;
use crate::model::{Counts, DestinationId, PackageId, TaskDestination, TaskId};
use crate::proto::{Action, Assignment, PackageRef};

/// The stored part of a task; status and counts are derived.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: TaskId,
    pub name: String,
    pub kind: String,
    pub class: String,
    pub package_id: Option<PackageId>,
    pub package_name: String,
    pub start_at: Option<UnixTime>,
    pub window: Option<String>,
    pub created_at: UnixTime,
    pub completed_at: Option<UnixTime>,
}

const TASK_COLUMNS: &str =
    "id, name, type, class, package_id, package_name, start_at, window, created_at, completed_at";

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
    })
}

/// A task about to be stored.
pub struct NewTask<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub class: &'a str,
    pub package_id: PackageId,
    pub package_name: &'a str,
    pub start_at: Option<UnixTime>,
    pub window: Option<&'a str>,
}

pub fn insert(c: &Connection, t: &NewTask, at: UnixTime) -> Result<TaskId> {
    c.execute(
        "INSERT INTO tasks (name, type, class, package_id, package_name, start_at, window, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            t.name,
            t.kind,
            t.class,
            t.package_id,
            t.package_name,
            t.start_at,
            t.window,
            at
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn add_destination(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
    at: UnixTime,
) -> Result<()> {
    c.execute(
        "INSERT INTO task_destinations (task_id, destination_id, status, attempt, updated_at)
         VALUES (?1, ?2, 'waiting', 1, ?3)",
        params![task, dest, at],
    )?;
    Ok(())
}

pub fn get(c: &Connection, id: TaskId) -> Result<Option<TaskRow>> {
    Ok(c.query_row(
        &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"),
        [id],
        task_from_row,
    )
    .optional()?)
}

pub fn list(c: &Connection) -> Result<Vec<TaskRow>> {
    let mut st = c.prepare(&format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY id"))?;
    let rows = st.query_map([], task_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every destination of a task, by name. `with_output` includes the
/// command's output tail (large; only for one task's detail).
pub fn destinations(
    c: &Connection,
    task: TaskId,
    with_output: bool,
) -> Result<Vec<TaskDestination>> {
    let mut st = c.prepare(
        "SELECT d.name, td.status, td.exit_code, td.message, td.attempt, td.retries,
                td.transferred, td.reboot_required, td.output, td.updated_at
         FROM task_destinations td JOIN destinations d ON d.id = td.destination_id
         WHERE td.task_id = ?1 ORDER BY d.name",
    )?;
    let rows = st.query_map([task], |r| {
        let exit_code: Option<i64> = r.get(2)?;
        Ok(TaskDestination {
            name: r.get(0)?,
            status: r.get(1)?,
            exit_code,
            message: r.get(3)?,
            meaning: exit_code.and_then(exitcodes::meaning).map(str::to_string),
            attempt: r.get(4)?,
            retries: r.get(5)?,
            transferred: r.get(6)?,
            reboot_required: r.get(7)?,
            output: if with_output { r.get(8)? } else { None },
            updated_at: rfc3339(r.get(9)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn counts(c: &Connection, task: TaskId) -> Result<Counts> {
    let mut st = c.prepare(
        "SELECT status, COUNT(*) FROM task_destinations WHERE task_id = ?1 GROUP BY status",
    )?;
    let mut counts = Counts::default();
    let rows = st.query_map([task], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?))
    })?;
    for row in rows {
        let (status, n) = row?;
        match status.as_str() {
            "waiting" => counts.waiting = n,
            "transferring" => counts.transferring = n,
            "installing" => counts.installing = n,
            "succeeded" => counts.succeeded = n,
            "failed" => counts.failed = n,
            _ => counts.cancelled = n,
        }
    }
    Ok(counts)
}

/// Tasks not yet completed that distribute or uninstall `package`, as
/// `(id, name)`: while any exists the package cannot be deleted.
pub fn unfinished_using_package(
    c: &Connection,
    package: PackageId,
) -> Result<Vec<(TaskId, String)>> {
    let mut st = c.prepare(
        "SELECT id, name FROM tasks WHERE package_id = ?1 AND completed_at IS NULL ORDER BY id",
    )?;
    let rows = st.query_map(params![package], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The work a destination should be doing now: unfinished attempts of
/// started tasks, oldest task first.
pub fn assignments_for(
    c: &Connection,
    dest: DestinationId,
    now: UnixTime,
) -> Result<Vec<Assignment>> {
    let mut st = c.prepare(
        "SELECT t.id, t.name, td.attempt, t.type, p.id, p.name, p.hash, p.size, p.format,
                p.file_name, p.kind, p.install_command, p.uninstall_command, p.folder,
                p.success_codes, t.window, td.status
         FROM task_destinations td
         JOIN tasks t ON t.id = td.task_id
         JOIN packages p ON p.id = t.package_id
         WHERE td.destination_id = ?1
           AND td.status IN ('waiting', 'transferring', 'installing')
           AND (t.start_at IS NULL OR t.start_at <= ?2)
           AND (td.not_before IS NULL OR td.not_before <= ?2)
         ORDER BY t.id",
    )?;
    let rows = st.query_map(params![dest, now], |r| {
        let task_type: String = r.get(3)?;
        let kind: String = r.get(10)?;
        let action = if task_type == "uninstall" {
            Action::Uninstall
        } else if kind == "file" {
            Action::Distribute
        } else {
            Action::Install
        };
        let command: Option<String> = match action {
            Action::Uninstall => r.get(12)?,
            Action::Install => r.get(11)?,
            Action::Distribute => None,
        };
        let codes: String = r.get(14)?;
        let window: Option<String> = r.get(15)?;
        let status: String = r.get(16)?;
        // Outside its window a task starts nothing new; work already
        // under way finishes.
        let held = status == "waiting"
            && window
                .as_deref()
                .is_some_and(|w| !crate::clock::in_window(w, now));
        Ok((
            held,
            Assignment {
                task_id: r.get(0)?,
                task_name: r.get(1)?,
                attempt: r.get(2)?,
                action,
                package: PackageRef {
                    id: r.get(4)?,
                    name: r.get(5)?,
                    hash: r.get(6)?,
                    size: r.get(7)?,
                    format: r.get(8)?,
                    file_name: r.get(9)?,
                    command,
                    folder: r.get(13)?,
                    success_codes: codes.split(',').filter_map(|c| c.parse().ok()).collect(),
                },
            },
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (held, a) = row?;
        if !held {
            out.push(a);
        }
    }
    Ok(out)
}

/// When the earliest work of `dest` that is held back (start time, retry
/// backoff) comes due, and whether any is held by a daily window.
pub fn next_due(
    c: &Connection,
    dest: DestinationId,
    now: UnixTime,
) -> Result<(Option<UnixTime>, bool)> {
    Ok(c.query_row(
        "SELECT MIN(CASE WHEN MAX(COALESCE(t.start_at, 0), COALESCE(td.not_before, 0)) > ?2
                         THEN MAX(COALESCE(t.start_at, 0), COALESCE(td.not_before, 0)) END),
                MAX(t.window IS NOT NULL)
         FROM task_destinations td JOIN tasks t ON t.id = td.task_id
         WHERE td.destination_id = ?1 AND td.status = 'waiting'
           AND (COALESCE(t.start_at, 0) > ?2 OR COALESCE(td.not_before, 0) > ?2
                OR t.window IS NOT NULL)",
        params![dest, now],
        |r| {
            let due: Option<i64> = r.get(0)?;
            let windowed: Option<bool> = r.get(1)?;
            Ok((due.filter(|d| *d > now), windowed.unwrap_or(false)))
        },
    )?)
}

/// True when `dest` has unfinished work that needs the content `hash`:
/// agents may only download what they were assigned.
pub fn may_fetch(c: &Connection, dest: DestinationId, hash: &str) -> Result<bool> {
    Ok(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM task_destinations td
             JOIN tasks t ON t.id = td.task_id JOIN packages p ON p.id = t.package_id
             WHERE td.destination_id = ?1 AND p.hash = ?2
               AND td.status IN ('waiting', 'transferring', 'installing'))",
        params![dest, hash],
        |r| r.get(0),
    )?)
}

/// State of one destination of one task: (status, attempt, retries).
pub fn state(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
) -> Result<Option<(String, i64, i64)>> {
    Ok(c.query_row(
        "SELECT status, attempt, retries FROM task_destinations
             WHERE task_id = ?1 AND destination_id = ?2",
        params![task, dest],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()?)
}

pub fn set_progress(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
    status: &str,
    transferred: u64,
    at: UnixTime,
) -> Result<()> {
    c.execute(
        "UPDATE task_destinations SET status = ?3, transferred = ?4, updated_at = ?5
         WHERE task_id = ?1 AND destination_id = ?2",
        params![task, dest, status, transferred, at],
    )?;
    Ok(())
}

/// Final outcome of an attempt.
pub struct Outcome<'a> {
    pub status: &'a str,
    pub exit_code: Option<i64>,
    pub message: Option<&'a str>,
    pub output: Option<&'a str>,
    pub transferred: u64,
    pub reboot_required: bool,
}

pub fn finish(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
    o: &Outcome,
    at: UnixTime,
) -> Result<()> {
    c.execute(
        "UPDATE task_destinations SET status = ?3, exit_code = ?4, message = ?5, output = ?6,
             transferred = ?7, reboot_required = ?8, updated_at = ?9, not_before = NULL
         WHERE task_id = ?1 AND destination_id = ?2",
        params![
            task,
            dest,
            o.status,
            o.exit_code,
            o.message,
            o.output,
            o.transferred,
            o.reboot_required,
            at
        ],
    )?;
    Ok(())
}

/// Puts a destination back to waiting for a new attempt, not before
/// `not_before`; `automatic` counts it as a retry of a transient failure.
#[allow(clippy::too_many_arguments)]
pub fn requeue(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
    not_before: Option<UnixTime>,
    automatic: bool,
    message: Option<&str>,
    exit_code: Option<i64>,
    at: UnixTime,
) -> Result<()> {
    c.execute(
        "UPDATE task_destinations SET status = 'waiting', attempt = attempt + 1,
             retries = CASE WHEN ?4 THEN retries + 1 ELSE 0 END, not_before = ?3,
             message = ?5, exit_code = ?6, output = NULL, transferred = 0,
             reboot_required = 0, updated_at = ?7
         WHERE task_id = ?1 AND destination_id = ?2",
        params![task, dest, not_before, automatic, message, exit_code, at],
    )?;
    Ok(())
}

/// Destinations of a task still to finish.
pub fn unfinished_count(c: &Connection, task: TaskId) -> Result<u64> {
    Ok(c.query_row(
        "SELECT COUNT(*) FROM task_destinations
         WHERE task_id = ?1 AND status IN ('waiting', 'transferring', 'installing')",
        [task],
        |r| r.get(0),
    )?)
}

pub fn set_completed(c: &Connection, task: TaskId, at: Option<UnixTime>) -> Result<()> {
    c.execute(
        "UPDATE tasks SET completed_at = ?2 WHERE id = ?1",
        params![task, at],
    )?;
    Ok(())
}

/// Every destination of a task as (destination id, name, status).
pub fn destination_states(
    c: &Connection,
    task: TaskId,
) -> Result<Vec<(DestinationId, String, String)>> {
    let mut st = c.prepare(
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
    Ok(c.execute(
        "UPDATE task_destinations SET status = 'cancelled', message = ?3, not_before = NULL,
             updated_at = ?4
         WHERE task_id = ?1 AND destination_id = ?2
           AND status IN ('waiting', 'transferring', 'installing')",
        params![task, dest, message, at],
    )? > 0)
}

pub fn delete(c: &Connection, task: TaskId) -> Result<()> {
    c.execute("DELETE FROM tasks WHERE id = ?1", [task])?;
    Ok(())
}

pub fn set_package(c: &Connection, task: TaskId, package: PackageId, name: &str) -> Result<()> {
    c.execute(
        "UPDATE tasks SET package_id = ?2, package_name = ?3 WHERE id = ?1",
        params![task, package, name],
    )?;
    Ok(())
}

/// Tasks that include `dest`, as (task id, name, number of destinations).
pub fn of_destination(c: &Connection, dest: DestinationId) -> Result<Vec<(TaskId, String, u64)>> {
    let mut st = c.prepare(
        "SELECT t.id, t.name, (SELECT COUNT(*) FROM task_destinations x WHERE x.task_id = t.id)
         FROM tasks t JOIN task_destinations td ON td.task_id = t.id
         WHERE td.destination_id = ?1 ORDER BY t.id",
    )?;
    let rows = st.query_map([dest], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn remove_destination(c: &Connection, task: TaskId, dest: DestinationId) -> Result<()> {
    c.execute(
        "DELETE FROM task_destinations WHERE task_id = ?1 AND destination_id = ?2",
        params![task, dest],
    )?;
    Ok(())
}

/// Tasks the retention rules delete at `now`, as (id, name, why):
/// administrator tasks 30 days after completion, countermeasure tasks
/// after 7, and any task left without destinations.
pub fn expired(c: &Connection, now: UnixTime) -> Result<Vec<(TaskId, String, String)>> {
    const DAY: i64 = 86_400;
    let mut st = c.prepare(
        "SELECT id, name,
            CASE WHEN NOT EXISTS (SELECT 1 FROM task_destinations td WHERE td.task_id = t.id)
                 THEN 'no destinations left'
                 WHEN class = 'countermeasure' THEN 'completed more than 7 days ago'
                 ELSE 'completed more than 30 days ago' END
         FROM tasks t
         WHERE NOT EXISTS (SELECT 1 FROM task_destinations td WHERE td.task_id = t.id)
            OR (class = 'admin' AND completed_at IS NOT NULL AND completed_at <= ?1)
            OR (class = 'countermeasure' AND completed_at IS NOT NULL AND completed_at <= ?2)
         ORDER BY id",
    )?;
    let rows = st.query_map(params![now - 30 * DAY, now - 7 * DAY], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Destination ids with unfinished work in a task.
pub fn unfinished_destinations(c: &Connection, task: TaskId) -> Result<Vec<DestinationId>> {
    let mut st = c.prepare(
        "SELECT destination_id FROM task_destinations
         WHERE task_id = ?1 AND status IN ('waiting', 'transferring', 'installing')",
    )?;
    let rows = st.query_map([task], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every failed destination of every task, newest first.
pub fn failures(c: &Connection) -> Result<Vec<crate::model::Failure>> {
    let mut st = c.prepare(
        "SELECT t.id, t.name, d.name, td.exit_code, td.message, td.attempt, td.updated_at
         FROM task_destinations td
         JOIN tasks t ON t.id = td.task_id JOIN destinations d ON d.id = td.destination_id
         WHERE td.status = 'failed' ORDER BY td.updated_at DESC, t.id, d.name",
    )?;
    let rows = st.query_map([], |r| {
        let exit_code: Option<i64> = r.get(3)?;
        Ok(crate::model::Failure {
            task_id: r.get(0)?,
            task_name: r.get(1)?,
            destination: r.get(2)?,
            exit_code,
            meaning: exit_code.and_then(exitcodes::meaning).map(str::to_string),
            message: r.get(4)?,
            attempt: r.get(5)?,
            updated_at: rfc3339(r.get(6)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One destination of one task, with its output.
pub fn destination(c: &Connection, task: TaskId, name: &str) -> Result<Option<TaskDestination>> {
    Ok(destinations(c, task, true)?
        .into_iter()
        .find(|d| d.name == name))
}

/// Counts for the status line: running tasks and unfinished destinations.
pub fn activity(c: &Connection) -> Result<(u64, u64)> {
    Ok(c.query_row(
        "SELECT (SELECT COUNT(*) FROM tasks WHERE completed_at IS NULL),
                (SELECT COUNT(*) FROM task_destinations
                  WHERE status IN ('waiting', 'transferring', 'installing'))",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}
