//! The `destinations` table.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::sql::{Cached, in_list};
use crate::clock::{UnixTime, rfc3339};
use crate::model::{Destination, DestinationId};
use crate::task::{DestStatus, WorkState};

/// What an agent says of its computer, as stored.
#[derive(Debug, Clone, Copy)]
pub struct Host<'a> {
    pub os: &'a str,
    pub hostname: &'a str,
    pub agent_version: &'a str,
    pub command_timeout: Option<u64>,
    /// Free space by volume, as JSON (`proto::Disk`); None keeps what is
    /// stored.
    pub disks: Option<&'a str>,
}

fn select() -> String {
    format!(
        "SELECT d.id, d.name, d.status, d.os, d.hostname, d.agent_version, d.last_seen,
            d.created_at,
            (SELECT COUNT(*) FROM task_destinations td WHERE td.destination_id = d.id
               AND td.status IN {}),
            d.move_to, d.cert_expires_at
         FROM destinations d",
        in_list(&WorkState::UNFINISHED)
    )
}

fn from_row(r: &Row) -> rusqlite::Result<Destination> {
    Ok(Destination {
        software: None,
        id: r.get(0)?,
        name: r.get(1)?,
        status: r.get(2)?,
        os: r.get(3)?,
        hostname: r.get(4)?,
        agent_version: r.get(5)?,
        last_seen: r.get::<_, Option<i64>>(6)?.map(rfc3339),
        enrolled_at: rfc3339(r.get(7)?),
        running_work: r.get(8)?,
        moving_to: r.get(9)?,
        cert_expires_at: r.get::<_, Option<i64>>(10)?.map(rfc3339),
    })
}

pub fn list(c: &Connection) -> Result<Vec<Destination>> {
    let mut st = c.prepare_cached(&format!("{} ORDER BY d.name", select()))?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn by_name(c: &Connection, name: &str) -> Result<Option<Destination>> {
    Ok(
        c.one(&format!("{} WHERE d.name = ?1", select()), [name], from_row)
            .optional()?,
    )
}

pub fn by_id(c: &Connection, id: DestinationId) -> Result<Option<Destination>> {
    Ok(
        c.one(&format!("{} WHERE d.id = ?1", select()), [id], from_row)
            .optional()?,
    )
}

/// The destination a client certificate belongs to, with its status: its
/// current certificate, or the one its last renewal replaced (whose end
/// the listener checks like any other).
pub fn by_fingerprint(c: &Connection, fp: &str) -> Result<Option<(DestinationId, DestStatus)>> {
    let row = |r: &Row| Ok((r.get(0)?, r.get(1)?));
    let current = c
        .one(
            "SELECT id, status FROM destinations WHERE cert_fingerprint = ?1",
            [fp],
            row,
        )
        .optional()?;
    if current.is_some() {
        return Ok(current);
    }
    Ok(c.one(
        "SELECT id, status FROM destinations WHERE prev_fingerprint = ?1",
        [fp],
        row,
    )
    .optional()?)
}

/// Records a destination's new certificate: `fingerprint`, and
/// `replaced` (the one the agent asked with, accepted until it expires);
/// any other certificate of the destination is no longer accepted.
pub fn set_certificate(
    c: &Connection,
    id: DestinationId,
    fingerprint: &str,
    replaced: Option<&str>,
    expires_at: UnixTime,
) -> Result<()> {
    c.exec(
        "UPDATE destinations SET cert_fingerprint = ?2, prev_fingerprint = ?3,
             cert_expires_at = ?4
         WHERE id = ?1",
        params![id, fingerprint, replaced, expires_at],
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn insert(
    c: &Connection,
    name: &str,
    status: DestStatus,
    info: Host,
    fingerprint: &str,
    token_id: i64,
    at: UnixTime,
) -> Result<DestinationId> {
    c.exec(
        "INSERT INTO destinations (name, status, os, hostname, agent_version, cert_fingerprint,
             token_id, last_seen, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        params![
            name,
            status,
            info.os,
            info.hostname,
            info.agent_version,
            fingerprint,
            token_id,
            at
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn set_status(c: &Connection, id: DestinationId, status: DestStatus) -> Result<()> {
    c.exec(
        "UPDATE destinations SET status = ?2 WHERE id = ?1",
        params![id, status],
    )?;
    Ok(())
}

/// Records a poll: what the agent says of itself, and when.
pub fn seen(c: &Connection, id: DestinationId, info: Host, at: UnixTime) -> Result<()> {
    c.exec(
        "UPDATE destinations SET os = ?2, hostname = ?3, agent_version = ?4, last_seen = ?5,
             command_timeout = COALESCE(?6, command_timeout), disks = COALESCE(?7, disks)
         WHERE id = ?1",
        params![
            id,
            info.os,
            info.hostname,
            info.agent_version,
            at,
            info.command_timeout.map(|t| t.min(i64::MAX as u64) as i64),
            info.disks,
        ],
    )?;
    Ok(())
}

/// How many destinations are in each status.
pub fn count_by_status(c: &Connection) -> Result<Vec<(DestStatus, u64)>> {
    let mut st = c.prepare_cached("SELECT status, COUNT(*) FROM destinations GROUP BY status")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Destinations not heard from since `before`, as (id, name, status).
pub fn silent_since(
    c: &Connection,
    before: UnixTime,
) -> Result<Vec<(DestinationId, String, DestStatus)>> {
    let mut st = c.prepare_cached(
        "SELECT id, name, status FROM destinations
         WHERE last_seen IS NULL OR last_seen < ?1 ORDER BY name",
    )?;
    let rows = st.query_map([before], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete(c: &Connection, id: DestinationId) -> Result<()> {
    c.exec("DELETE FROM destinations WHERE id = ?1", [id])?;
    Ok(())
}

/// Records that a destination is to move to another server.
pub fn set_move(c: &Connection, id: DestinationId, server: &str, token: &str) -> Result<()> {
    c.exec(
        "UPDATE destinations SET move_to = ?2, move_token = ?3 WHERE id = ?1",
        params![id, server, token],
    )?;
    Ok(())
}

/// The move order of a destination, if any.
pub fn move_order(c: &Connection, id: DestinationId) -> Result<Option<(String, String)>> {
    Ok(c.one(
        "SELECT move_to, move_token FROM destinations WHERE id = ?1 AND move_to IS NOT NULL",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?)
}

/// What the pre-flight reads of a destination besides its row: when it
/// was last heard from, and the free space its agent last reported (JSON).
pub fn plan_facts(c: &Connection, id: DestinationId) -> Result<(Option<UnixTime>, Option<String>)> {
    Ok(c.one(
        "SELECT last_seen, disks FROM destinations WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}
