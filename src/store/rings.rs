//! Rings of a task: how each ring stands, the ring started, and a pause
//! (each row's ring is set as it is added, `tasks::add_destinations`).

use anyhow::Result;
use rusqlite::{Connection, params};

use super::sql::{Cached, in_list};
use crate::model::{DestinationId, TaskId};
use crate::task::WorkState;

/// How one ring stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingCounts {
    pub total: u64,
    pub unfinished: u64,
    pub failed: u64,
}

/// Every ring of a task that has destinations, by ring index (rings with
/// none are absent).
pub fn counts(c: &Connection, task: TaskId) -> Result<Vec<(usize, RingCounts)>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT ring, COUNT(*), SUM(status IN {}), SUM(status = ?2)
         FROM task_destinations WHERE task_id = ?1 GROUP BY ring ORDER BY ring",
        in_list(&WorkState::UNFINISHED)
    ))?;
    let rows = st.query_map(params![task, WorkState::Failed], |r| {
        Ok((
            r.get::<_, i64>(0)? as usize,
            RingCounts {
                total: r.get(1)?,
                unfinished: r.get(2)?,
                failed: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn set_open(c: &Connection, task: TaskId, ring: usize) -> Result<()> {
    c.exec(
        "UPDATE tasks SET ring_open = ?2 WHERE id = ?1",
        params![task, ring as i64],
    )?;
    Ok(())
}

/// Pauses (with why) or resumes (None) a task's waiting work.
pub fn set_paused(c: &Connection, task: TaskId, reason: Option<&str>) -> Result<()> {
    c.exec(
        "UPDATE tasks SET paused_reason = ?2 WHERE id = ?1",
        params![task, reason],
    )?;
    Ok(())
}

/// Whether a ring up to `ring` still has unfinished work: asked at every
/// finished report of a ringed task, so answered from the index on
/// (task, status, ring) without counting rows.
pub fn started_unfinished(c: &Connection, task: TaskId, ring: usize) -> Result<bool> {
    let mut st = c.prepare_cached(&started_unfinished_sql())?;
    Ok(st.query_row(params![task, ring as i64], |r| r.get(0))?)
}

fn started_unfinished_sql() -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM task_destinations
             WHERE task_id = ?1 AND status IN {} AND ring <= ?2)",
        in_list(&WorkState::UNFINISHED)
    )
}

/// The destinations of rings up to `ring` still waiting: the ones a
/// started ring wakes.
pub fn waiting_in(c: &Connection, task: TaskId, ring: usize) -> Result<Vec<DestinationId>> {
    let mut st = c.prepare_cached(
        "SELECT destination_id FROM task_destinations
         WHERE task_id = ?1 AND ring <= ?2 AND status = ?3",
    )?;
    let rows = st.query_map(params![task, ring as i64, WorkState::Waiting], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asked at every finished report of a ringed task: it must be an
    /// index seek, never a pass over the task's rows (at 2,000
    /// destinations counting them cut the reports a second to a sixth).
    #[test]
    fn whether_a_ring_is_done_is_read_from_an_index() {
        let store = crate::store::Store::open_in_memory().unwrap();
        let c = store.conn();
        let mut st = c
            .prepare(&format!("EXPLAIN QUERY PLAN {}", started_unfinished_sql()))
            .unwrap();
        let plan: Vec<String> = st
            .query_map(params![1, 0], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.contains("COVERING INDEX task_destinations_by_task_status_ring")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|p| p.starts_with("SCAN task_destinations")),
            "{plan:?}"
        );
    }
}
