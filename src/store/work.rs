//! The work an agent is given: unfinished attempts of one destination
//! with what it needs of their package, when held work comes due, and
//! whether it may fetch a content.

use anyhow::Result;
use rusqlite::{Connection, params};

use super::sql::{Cached, in_list};
use crate::clock::UnixTime;
use crate::model::{DestinationId, Kind, PackageId, TaskId};
use crate::task::{Format, TaskType, WorkState};

fn unfinished() -> String {
    in_list(&WorkState::UNFINISHED)
}

/// The package of a piece of work, as the agent will need it.
#[derive(Debug, Clone)]
pub struct WorkPackage {
    pub id: PackageId,
    pub name: String,
    pub hash: String,
    pub size: u64,
    pub format: Format,
    pub file_name: String,
    pub kind: Kind,
    pub install_command: Option<String>,
    pub uninstall_command: Option<String>,
    pub folder: Option<String>,
    pub success_codes: Vec<i64>,
    /// Detection rules, canonical, one per line in the store.
    pub detect: Vec<String>,
}

/// Unfinished work of one destination in a started task.
#[derive(Debug, Clone)]
pub struct WorkRow {
    pub task_id: TaskId,
    pub task_name: String,
    pub task_type: TaskType,
    pub window: Option<String>,
    pub attempt: i64,
    pub state: WorkState,
    /// None for an uninstallation from the inventory.
    pub package: Option<WorkPackage>,
    /// The row's own command (an uninstallation from the inventory).
    pub command: Option<String>,
    /// Run despite detection (`task create --force`).
    pub force: bool,
}

/// The query of `work_for`.
pub(crate) fn work_sql() -> String {
    format!(
        "SELECT t.id, t.name, t.type, t.window, td.attempt, td.status,
                p.id, p.name, p.hash, p.size, p.format, p.file_name, p.kind,
                p.install_command, p.uninstall_command, p.folder, p.success_codes, td.command,
                p.detect, t.force
         FROM task_destinations td
         JOIN tasks t ON t.id = td.task_id
         LEFT JOIN packages p ON p.id = t.package_id
         WHERE td.destination_id = ?1
           AND (p.id IS NOT NULL OR td.command IS NOT NULL)
           AND td.status IN {}
           AND (t.start_at IS NULL OR t.start_at <= ?2)
           AND (td.not_before IS NULL OR td.not_before <= ?2)
           AND (td.status != ?3 OR (t.paused_reason IS NULL AND td.ring <= t.ring_open))
         ORDER BY t.id",
        unfinished()
    )
}

/// Unfinished attempts of `dest` in tasks started by `now` and not held by
/// a retry backoff, oldest task first.
pub fn work_for(c: &Connection, dest: DestinationId, now: UnixTime) -> Result<Vec<WorkRow>> {
    let mut st = c.prepare_cached(&work_sql())?;
    let rows = st.query_map(params![dest, now, WorkState::Waiting], |r| {
        let package = match r.get::<_, Option<PackageId>>(6)? {
            None => None,
            Some(id) => {
                let codes: String = r.get(16)?;
                Some(WorkPackage {
                    id,
                    name: r.get(7)?,
                    hash: r.get(8)?,
                    size: r.get(9)?,
                    format: r.get(10)?,
                    file_name: r.get(11)?,
                    kind: r.get(12)?,
                    install_command: r.get(13)?,
                    uninstall_command: r.get(14)?,
                    folder: r.get(15)?,
                    success_codes: codes.split(',').filter_map(|c| c.parse().ok()).collect(),
                    detect: super::packages::rules_from_text(&r.get::<_, String>(18)?),
                })
            }
        };
        Ok(WorkRow {
            task_id: r.get(0)?,
            task_name: r.get(1)?,
            task_type: r.get(2)?,
            window: r.get(3)?,
            attempt: r.get(4)?,
            state: r.get(5)?,
            package,
            command: r.get(17)?,
            force: r.get(19)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Of the work of `dest` not yet started: when the earliest held by a
/// start time or retry backoff comes due (if after `now`), and whether any
/// belongs to a task with a daily window.
pub fn next_due(
    c: &Connection,
    dest: DestinationId,
    now: UnixTime,
) -> Result<(Option<UnixTime>, bool)> {
    Ok(c.one(
        "SELECT MIN(CASE WHEN MAX(COALESCE(t.start_at, 0), COALESCE(td.not_before, 0)) > ?2
                         THEN MAX(COALESCE(t.start_at, 0), COALESCE(td.not_before, 0)) END),
                MAX(t.window IS NOT NULL)
         FROM task_destinations td JOIN tasks t ON t.id = td.task_id
         WHERE td.destination_id = ?1 AND td.status = ?3
           AND (COALESCE(t.start_at, 0) > ?2 OR COALESCE(td.not_before, 0) > ?2
                OR t.window IS NOT NULL)",
        params![dest, now, WorkState::Waiting],
        |r| {
            let due: Option<i64> = r.get(0)?;
            let windowed: Option<bool> = r.get(1)?;
            Ok((due, windowed.unwrap_or(false)))
        },
    )?)
}

/// True when `dest` has unfinished work that needs the content `hash`.
pub fn may_fetch(c: &Connection, dest: DestinationId, hash: &str) -> Result<bool> {
    Ok(c.one(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM task_destinations td
                 JOIN tasks t ON t.id = td.task_id JOIN packages p ON p.id = t.package_id
                 WHERE td.destination_id = ?1 AND p.hash = ?2 AND td.status IN {})",
            unfinished()
        ),
        params![dest, hash],
        |r| r.get(0),
    )?)
}
