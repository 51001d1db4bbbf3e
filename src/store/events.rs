//! The `events` table: the log an admin reads with `courier log`.

use anyhow::Result;
use rusqlite::{Connection, Row, params};

use super::sql::Cached;

use crate::clock::rfc3339;
use crate::model::{Event, Level, NewEvent};

/// Longest subject and message an event keeps, in bytes: whatever a
/// peer sent, a row of the log stays a line.
pub const SUBJECT_MAX: usize = 200;
pub const MESSAGE_MAX: usize = 4096;

/// Events kept: the newest `KEEP`, none older than `KEEP_DAYS` days.
pub const KEEP: i64 = 100_000;
pub const KEEP_DAYS: i64 = 90;

pub fn append(c: &Connection, e: &NewEvent) -> Result<i64> {
    c.exec(
        "INSERT INTO events (at, level, kind, subject, message) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            e.at,
            e.level.as_str(),
            e.kind,
            bounded(&e.subject, SUBJECT_MAX),
            bounded(&e.message, MESSAGE_MAX)
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// `s` cut to at most `max` bytes at a character boundary, marked "…".
fn bounded(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end]).into()
}

/// Deletes events past the newest `KEEP` or older than `KEEP_DAYS` days
/// at `now`, looking at the oldest 10,000 only (the sweep runs every few
/// seconds: a backlog goes in steps); returns how many went.
pub fn prune(c: &Connection, now: i64) -> Result<usize> {
    Ok(c.exec(
        "DELETE FROM events WHERE id IN (
           SELECT id FROM (SELECT id, at FROM events ORDER BY id LIMIT 10000)
           WHERE id <= (SELECT MAX(id) FROM events) - ?1 OR at < ?2)",
        params![KEEP, now - KEEP_DAYS * 86_400],
    )?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn event(at: i64, subject: String, message: String) -> NewEvent {
        NewEvent {
            at,
            level: Level::Warn,
            kind: "agent.refused",
            subject,
            message,
        }
    }

    /// Whatever a peer sends, an event stays a line of bounded size.
    #[test]
    fn long_subjects_and_messages_are_cut() {
        let mut s = Store::open_in_memory().unwrap();
        let long = "é".repeat(1 << 20);
        s.write(|tx| append(tx, &event(1, long.clone(), long.clone())))
            .unwrap();
        let e = &tail(s.conn(), 1).unwrap()[0];
        assert!(e.subject.len() <= SUBJECT_MAX && e.subject.ends_with('…'));
        assert!(e.message.len() <= MESSAGE_MAX && e.message.starts_with("éé"));
    }

    /// Past `KEEP` events, or `KEEP_DAYS` days, the oldest go.
    #[test]
    fn the_log_keeps_a_bounded_number_of_days_and_rows() {
        let mut s = Store::open_in_memory().unwrap();
        let day = 86_400;
        let now = 1_800_000_000;
        s.write(|tx| {
            append(
                tx,
                &event(now - (KEEP_DAYS + 1) * day, "old".into(), "".into()),
            )?;
            for i in 0..KEEP + 5 {
                append(tx, &event(now - day + i, "recent".into(), "".into()))?;
            }
            Ok(())
        })
        .unwrap();
        let gone = s.write(|tx| prune(tx, now)).unwrap();
        assert_eq!(gone, 6, "the one too old and the five past the count");
        let count: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, KEEP);
        assert_eq!(s.write(|tx| prune(tx, now)).unwrap(), 0);
    }
}
