//! What triage reads: failed destinations with what tells their cause
//! (output, installer log), and unfinished ones that are stuck.

use anyhow::Result;
use rusqlite::{Connection, params};

use super::sql::{Cached, in_list};
use super::tasks::Now;
use crate::clock::rfc3339;
use crate::model::{Failure, Stuck};
use crate::task::WorkState;
use crate::task::detect::Detection;
use crate::task::stuck::{self, COMMAND_TIMEOUT_SECS, OVERDUE_GRACE_SECS};

/// A failure with its command's output and its installer's log.
pub type FailureRow = (Failure, Option<String>, Option<String>);

/// Every failed destination of every task, and every one that succeeded
/// only by detection despite its exit code, newest first, each with its
/// command's output and its installer's log.
pub fn failures(c: &Connection) -> Result<Vec<FailureRow>> {
    let flagged = Detection::DoneDespiteExit.as_str();
    Ok(failure_rows(
        c,
        "td.status = ?1 OR td.detection = ?2",
        params![WorkState::Failed, flagged],
    )?
    .into_iter()
    .map(|(_, f)| f)
    .collect())
}

/// The failed destinations of one task, each with its ring.
pub fn failed_in_task(c: &Connection, task: i64) -> Result<Vec<(usize, FailureRow)>> {
    failure_rows(
        c,
        "td.status = ?1 AND td.task_id = ?2",
        params![WorkState::Failed, task],
    )
}

fn failure_rows(
    c: &Connection,
    filter: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<(usize, FailureRow)>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT t.id, t.name, d.name, td.exit_code, td.meaning, td.message, td.attempt,
                td.updated_at, d.os, td.output, td.detection, td.log, td.ring
         FROM task_destinations td
         JOIN tasks t ON t.id = td.task_id JOIN destinations d ON d.id = td.destination_id
         WHERE {filter}
         ORDER BY td.updated_at DESC, t.id, d.name"
    ))?;
    let rows = st.query_map(p, |r| {
        let log: Option<String> = r.get(11)?;
        let failure = Failure {
            task_id: r.get(0)?,
            task_name: r.get(1)?,
            destination: r.get(2)?,
            exit_code: r.get(3)?,
            meaning: r.get(4)?,
            message: r.get(5)?,
            attempt: r.get(6)?,
            updated_at: rfc3339(r.get(7)?),
            os: r.get(8)?,
            said: None,
            action: None,
            detection: r
                .get::<_, Option<String>>(10)?
                .as_deref()
                .and_then(Detection::parse),
            has_log: log.is_some(),
            stuck: None,
        };
        let ring: i64 = r.get(12)?;
        Ok((ring as usize, (failure, r.get(9)?, log)))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The rows that may be stuck at `now`: the SQL side of
/// `task::stuck::stuck`, which decides for each (and says why). Kept to
/// the same limits so that the count the status line shows and the rows
/// triage lists agree.
fn stuck_where() -> String {
    format!(
        "td.status IN {unfinished}
         AND ((d.last_seen IS NOT NULL AND d.last_seen <= ?1 - ?3)
              OR (td.status = '{transferring}' AND td.updated_at <= ?1 - ?2)
              OR (td.status = '{installing}'
                  AND COALESCE(td.state_since, td.updated_at)
                      <= ?1 - COALESCE(d.command_timeout, {COMMAND_TIMEOUT_SECS})
                         - {OVERDUE_GRACE_SECS}))",
        unfinished = in_list(&WorkState::UNFINISHED),
        transferring = WorkState::Transferring.as_str(),
        installing = WorkState::Installing.as_str(),
    )
}

/// Unfinished destinations that are stuck, oldest first, each as a
/// failure to triage with why it is stuck.
pub fn stuck(c: &Connection, now: &Now) -> Result<Vec<Failure>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT t.id, t.name, d.name, td.exit_code, td.meaning, td.message, td.attempt,
                td.updated_at, d.os, td.status, td.state_since, d.last_seen, d.command_timeout
         FROM task_destinations td
         JOIN tasks t ON t.id = td.task_id JOIN destinations d ON d.id = td.destination_id
         WHERE {} ORDER BY td.updated_at, t.id, d.name",
        stuck_where()
    ))?;
    let l = now.limits;
    let rows = st.query_map(params![now.at, l.stall_secs, l.offline_secs], |r| {
        let updated: i64 = r.get(7)?;
        let ages = stuck::Ages {
            state: r.get(9)?,
            state_since: r.get::<_, Option<i64>>(10)?.unwrap_or(updated),
            updated,
            last_seen: r.get(11)?,
            command_timeout: r.get(12)?,
        };
        let failure = Failure {
            task_id: r.get(0)?,
            task_name: r.get(1)?,
            destination: r.get(2)?,
            exit_code: r.get(3)?,
            meaning: r.get(4)?,
            message: r.get(5)?,
            attempt: r.get(6)?,
            updated_at: rfc3339(updated),
            os: r.get(8)?,
            said: None,
            action: None,
            detection: None,
            has_log: false,
            stuck: stuck::stuck(&ages, &l, now.at).map(|(kind, reason, since)| Stuck {
                kind,
                reason,
                since: rfc3339(since),
            }),
        };
        Ok(failure)
    })?;
    let all: Vec<Failure> = rows.collect::<rusqlite::Result<_>>()?;
    Ok(all.into_iter().filter(|f| f.stuck.is_some()).collect())
}

/// How many destinations are stuck (the status line's count).
pub fn count_stuck(c: &Connection, now: &Now) -> Result<u64> {
    let l = now.limits;
    Ok(c.one(
        &format!(
            "SELECT COUNT(*) FROM task_destinations td
             JOIN destinations d ON d.id = td.destination_id WHERE {}",
            stuck_where()
        ),
        params![now.at, l.stall_secs, l.offline_secs],
        |r| r.get(0),
    )?)
}
