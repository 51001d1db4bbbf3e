//! The `events` table: the log an admin reads with `courier log`.

use anyhow::Result;
use rusqlite::{Connection, Row, params};

use super::sql::Cached;

use crate::clock::rfc3339;
use crate::model::{Event, Level, NewEvent};

pub fn append(c: &Connection, e: &NewEvent) -> Result<i64> {
    c.exec(
        "INSERT INTO events (at, level, kind, subject, message) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![e.at, e.level.as_str(), e.kind, e.subject, e.message],
    )?;
    Ok(c.last_insert_rowid())
}

fn from_row(r: &Row) -> rusqlite::Result<Event> {
    let level: String = r.get(2)?;
    Ok(Event {
        id: r.get(0)?,
        at: rfc3339(r.get(1)?),
        level: Level::parse(&level).unwrap_or(Level::Info),
        kind: r.get(3)?,
        subject: r.get(4)?,
        message: r.get(5)?,
    })
}

/// Events with an id above `after`, oldest first, at most `limit`.
pub fn since(c: &Connection, after: i64, limit: u32) -> Result<Vec<Event>> {
    let mut st = c.prepare_cached(
        "SELECT id, at, level, kind, subject, message FROM events
         WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = st.query_map(params![after, limit], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The newest `n` events, oldest first.
pub fn tail(c: &Connection, n: u32) -> Result<Vec<Event>> {
    let mut st = c.prepare_cached(
        "SELECT id, at, level, kind, subject, message FROM
           (SELECT * FROM events ORDER BY id DESC LIMIT ?1) ORDER BY id",
    )?;
    let rows = st.query_map([n], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
