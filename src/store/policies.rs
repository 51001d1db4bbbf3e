//! The `policies` table, and the rows of their countermeasure tasks.

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::sql::Cached;
use crate::clock::UnixTime;
use crate::model::{DestinationId, PackageId, TaskId};
use crate::task::{DestStatus, PolicyKind, TaskClass, WorkState};

/// A stored policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRow {
    pub id: i64,
    pub name: String,
    pub kind: PolicyKind,
    pub software: Option<String>,
    pub min_version: Option<String>,
    pub package_id: Option<PackageId>,
    pub enforce: bool,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

const COLUMNS: &str =
    "id, name, kind, software, min_version, package_id, enforce, created_at, updated_at";

fn from_row(r: &Row) -> rusqlite::Result<PolicyRow> {
    Ok(PolicyRow {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        software: r.get(3)?,
        min_version: r.get(4)?,
        package_id: r.get(5)?,
        enforce: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

/// Stores a new policy (its `id` is ignored); returns its id.
pub fn insert(c: &Connection, p: &PolicyRow) -> Result<i64> {
    c.exec(
        "INSERT INTO policies (name, kind, software, min_version, package_id, enforce,
                               created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            p.name,
            p.kind,
            p.software,
            p.min_version,
            p.package_id,
            p.enforce,
            p.created_at,
            p.updated_at
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// Writes every editable field of `p`.
pub fn update(c: &Connection, p: &PolicyRow) -> Result<()> {
    c.exec(
        "UPDATE policies SET name = ?2, software = ?3, min_version = ?4, package_id = ?5,
             enforce = ?6, updated_at = ?7
         WHERE id = ?1",
        params![
            p.id,
            p.name,
            p.software,
            p.min_version,
            p.package_id,
            p.enforce,
            p.updated_at
        ],
    )?;
    Ok(())
}

pub fn delete(c: &Connection, id: i64) -> Result<()> {
    c.exec("DELETE FROM policies WHERE id = ?1", [id])?;
    Ok(())
}

pub fn get(c: &Connection, id: i64) -> Result<Option<PolicyRow>> {
    Ok(c.one(
        &format!("SELECT {COLUMNS} FROM policies WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?)
}

/// The policy named `name` (any case), if any.
pub fn by_name(c: &Connection, name: &str) -> Result<Option<PolicyRow>> {
    Ok(c.one(
        &format!("SELECT {COLUMNS} FROM policies WHERE name = ?1"),
        [name],
        from_row,
    )
    .optional()?)
}

pub fn list(c: &Connection) -> Result<Vec<PolicyRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {COLUMNS} FROM policies ORDER BY id"))?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The policies that install `package`, as (id, name).
pub fn using_package(c: &Connection, package: PackageId) -> Result<Vec<(i64, String)>> {
    let mut st =
        c.prepare_cached("SELECT id, name FROM policies WHERE package_id = ?1 ORDER BY id")?;
    let rows = st.query_map([package], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Update packages: those an update policy distributes, kept out of the
/// ordinary package list.
pub fn update_packages(c: &Connection) -> Result<Vec<PackageId>> {
    let mut st = c.prepare_cached(
        "SELECT DISTINCT package_id FROM policies WHERE kind = ?1 AND package_id IS NOT NULL",
    )?;
    let rows = st.query_map([PolicyKind::Update], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The countermeasure task of policy `id`, if it has one.
pub fn task_of(c: &Connection, id: i64) -> Result<Option<TaskId>> {
    Ok(c.one(
        "SELECT id FROM tasks WHERE policy_id = ?1 AND class = ?2 ORDER BY id DESC LIMIT 1",
        params![id, TaskClass::Countermeasure],
        |r| r.get(0),
    )
    .optional()?)
}

/// A countermeasure row as it stands: state, last change, command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    pub state: WorkState,
    pub updated_at: UnixTime,
    pub command: Option<String>,
}

/// Every row of `task`, by destination.
pub fn rows(c: &Connection, task: TaskId) -> Result<HashMap<DestinationId, CounterRow>> {
    let mut st = c.prepare_cached(
        "SELECT destination_id, status, updated_at, command FROM task_destinations
         WHERE task_id = ?1",
    )?;
    let rows = st.query_map([task], |r| {
        Ok((
            r.get(0)?,
            CounterRow {
                state: r.get(1)?,
                updated_at: r.get(2)?,
                command: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sets the command a row runs at its next attempt.
pub fn set_command(
    c: &Connection,
    task: TaskId,
    dest: DestinationId,
    command: Option<&str>,
) -> Result<()> {
    c.exec(
        "UPDATE task_destinations SET command = ?3 WHERE task_id = ?1 AND destination_id = ?2",
        params![task, dest, command],
    )?;
    Ok(())
}

/// An approved destination with an inventory to judge: (id, name, when
/// its inventory last changed).
pub fn judged(
    c: &Connection,
    only: Option<DestinationId>,
) -> Result<Vec<(DestinationId, String, UnixTime)>> {
    let mut st = c.prepare_cached(
        "SELECT id, name, inventory_at FROM destinations
         WHERE inventory_digest IS NOT NULL AND inventory_at IS NOT NULL
           AND status IN (?2, ?3) AND (?1 IS NULL OR id = ?1)
         ORDER BY name",
    )?;
    let approved = params![only, DestStatus::Online, DestStatus::Offline];
    let rows = st.query_map(approved, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
