//! What the server last told the console: the data the views read. Only
//! snapshots from the backend change it (and opening a task, which shows
//! the list's summary of it until its rows arrive).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use super::backend::Snapshot;
use crate::model::{Destination, Event, Package, Status, Task, TaskDestination};

/// Events kept for the log view.
pub const LOG_CAPACITY: usize = 5000;

/// What a snapshot did to the open task's rows, for the view that lists
/// them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum RowsChange {
    /// Nothing.
    #[default]
    None,
    /// They were replaced, or rows came or went: list them again.
    Whole,
    /// The rows at these indices changed in place.
    Rows(Vec<usize>),
}

/// A destinations list longer than this is fetched only when a view
/// shows it, or every `FLEET_EVERY` otherwise (forms choose from it).
pub const FLEET_BIG: usize = 2000;
const FLEET_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Data {
    pub status: Status,
    /// Bytes per second served, from the last two snapshots.
    pub rate: Option<f64>,
    last_served: Option<(Instant, u64)>,
    pub packages: Vec<Package>,
    pub tasks: Vec<Task>,
    pub destinations: Vec<Destination>,
    pub events: VecDeque<Event>,
    /// The open task, with its rows once they came.
    pub task: Option<Task>,
    /// The revision the open task's rows are at (None: they must come
    /// whole next time).
    pub task_rev: Option<i64>,
    /// What the last snapshot did to the open task's rows.
    pub task_change: RowsChange,
    /// Whether the open task's rows are in name order (the server's); rows
    /// that join are put in order too.
    task_sorted: bool,
    /// Where each of the open task's rows is, by its name's hash, so a
    /// changed row is found without walking the rows (a bisection of
    /// 100,000 rows is a cache miss at every step).
    task_index: RowIndex,
    /// When the destinations list was last fetched.
    fleet_at: Option<Instant>,
    /// The destination the output pane shows, as last fetched (task id
    /// and row, output included).
    pub output: Option<(i64, TaskDestination)>,
}

impl Data {
    /// Takes what a snapshot brings for every view; what is left in it
    /// (triage's failures) belongs to one view.
    pub fn absorb(&mut self, s: &mut Snapshot) {
        let now = Instant::now();
        if let Some((at, served)) = self.last_served {
            let secs = now.duration_since(at).as_secs_f64();
            if secs > 0.2 && s.status.bytes_served >= served {
                self.rate = Some((s.status.bytes_served - served) as f64 / secs);
            }
        }
        self.last_served = Some((now, s.status.bytes_served));
        self.status = std::mem::take(&mut s.status);
        self.packages = std::mem::take(&mut s.packages);
        self.tasks = std::mem::take(&mut s.tasks);
        if !s.fleet_skipped {
            self.destinations = std::mem::take(&mut s.destinations);
            self.fleet_at = Some(now);
        }
        for e in s.events.drain(..) {
            if self.events.len() == LOG_CAPACITY {
                self.events.pop_front();
            }
            self.events.push_back(e);
        }
        self.task_change = RowsChange::None;
        if let Some(t) = s.task.take() {
            self.task_sorted = t.destinations.is_sorted_by(|a, b| a.name < b.name);
            self.task_index.build(&t.destinations);
            self.task = Some(t);
            self.task_rev = s.task_rev;
            self.task_change = RowsChange::Whole;
        } else if let Some(c) = s.task_changes.take() {
            self.merge(c, s.task_rev);
        }
        self.output = s.output.take();
    }

    /// Whether the next refresh should bring the destinations list. The
    /// first one does not, so the first frame does not wait for a big
    /// list (the status line's counts come from the status).
    pub fn fleet_due(&self) -> bool {
        self.last_served.is_some()
            && (self.destinations.len() <= FLEET_BIG
                || self.fleet_at.is_none_or(|at| at.elapsed() >= FLEET_EVERY))
    }

    /// The revision to ask task `id`'s changes from: the one its rows are
    /// at when they are the open task's, else None (the whole task).
    pub fn rev_of(&self, id: i64) -> Option<i64> {
        self.task.as_ref().filter(|t| t.id == id).and(self.task_rev)
    }

    /// Merges the rows changed since `task_rev` into the open task's. A
    /// reply for another task, or for rows not held, changes nothing.
    /// When the merged rows are more than the counts say, some were
    /// removed: the next refresh brings the task whole.
    fn merge(&mut self, mut changes: crate::model::Task, rev: Option<i64>) {
        let Some(t) = self.task.as_mut().filter(|t| t.id == changes.id) else {
            return;
        };
        if self.task_rev.is_none() {
            return;
        }
        let rows = std::mem::take(&mut changes.destinations);
        let mut header = changes;
        header.destinations = std::mem::take(&mut t.destinations);
        *t = header;
        let mut changed = Vec::with_capacity(rows.len());
        let mut new = Vec::new();
        for row in rows {
            match self.task_index.find(&t.destinations, &row.name) {
                Some(i) => {
                    t.destinations[i] = row;
                    changed.push(i);
                }
                None => new.push(row),
            }
        }
        self.task_change = if new.is_empty() {
            if changed.is_empty() {
                RowsChange::None
            } else {
                RowsChange::Rows(changed)
            }
        } else {
            t.destinations.extend(new);
            if self.task_sorted {
                t.destinations.sort_by(|a, b| a.name.cmp(&b.name));
            }
            self.task_index.build(&t.destinations);
            RowsChange::Whole
        };
        let c = &t.counts;
        let total =
            c.waiting + c.transferring + c.installing + c.succeeded + c.failed + c.cancelled;
        self.task_rev = if t.destinations.len() as u64 == total {
            rev
        } else {
            None
        };
    }

    /// Opens a task: its summary shows until its rows come, whole.
    pub fn open_task(&mut self, t: crate::model::Task) {
        self.task_index.build(&t.destinations);
        self.task = Some(t);
        self.task_rev = None;
        self.task_change = RowsChange::Whole;
    }
}

/// The open task's rows by the hash of their names. Two names with the
/// same hash are told apart by looking at the row, then by a walk.
#[derive(Debug, Default)]
struct RowIndex {
    hasher: RandomState,
    at: HashMap<u64, usize>,
}

impl RowIndex {
    fn build(&mut self, rows: &[TaskDestination]) {
        self.at.clear();
        self.at.reserve(rows.len());
        for (i, r) in rows.iter().enumerate() {
            self.at
                .entry(self.hasher.hash_one(r.name.as_str()))
                .or_insert(i);
        }
    }

    fn find(&self, rows: &[TaskDestination], name: &str) -> Option<usize> {
        match self.at.get(&self.hasher.hash_one(name)) {
            Some(&i) if rows.get(i).is_some_and(|r| r.name == name) => Some(i),
            // Not held, or another name with the same hash.
            Some(_) => rows.iter().position(|r| r.name == name),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Task;
    use crate::task::WorkState;

    fn row(name: &str, status: WorkState) -> TaskDestination {
        TaskDestination {
            name: name.into(),
            status,
            exit_code: None,
            message: None,
            meaning: None,
            attempt: 1,
            retries: 0,
            transferred: 0,
            reboot_required: false,
            output: None,
            updated_at: String::new(),
            started_at: None,
            elapsed_secs: None,
            command: None,
            detection: None,
            has_log: false,
            log: None,
            state_since: None,
            stuck: None,
        }
    }

    fn task(rows: Vec<TaskDestination>, total: u64) -> Task {
        let json = serde_json::json!({
            "id": 7, "name": "t", "type": "install", "class": "admin", "status": "running",
            "package": 1, "package_name": "p", "start_at": null, "window": null,
            "created_at": "", "completed_at": null,
            "counts": {"waiting": total, "transferring": 0, "installing": 0,
                       "succeeded": 0, "failed": 0, "cancelled": 0},
            "destinations": [],
        });
        let mut t: Task = serde_json::from_value(json).unwrap();
        t.destinations = rows;
        t
    }

    fn deliver(d: &mut Data, whole: Option<Task>, changes: Option<Task>, rev: i64) {
        let mut s = Snapshot {
            fleet_skipped: true,
            task: whole,
            task_changes: changes,
            task_rev: Some(rev),
            ..Snapshot::default()
        };
        d.absorb(&mut s);
    }

    /// Changed rows replace theirs in place, new ones join in name order,
    /// and rows beyond the counts (removed ones) ask for the whole task.
    #[test]
    fn changes_merge_into_the_rows_held() {
        let w = WorkState::Waiting;
        let mut d = Data::default();
        let rows = vec![row("a", w), row("b", w), row("d", w)];
        deliver(&mut d, Some(task(rows, 3)), None, 10);
        assert_eq!(
            (d.rev_of(7), d.task_change.clone()),
            (Some(10), RowsChange::Whole)
        );
        deliver(
            &mut d,
            None,
            Some(task(vec![row("b", WorkState::Failed)], 3)),
            12,
        );
        assert_eq!(d.task_change, RowsChange::Rows(vec![1]));
        assert_eq!(
            d.task.as_ref().unwrap().destinations[1].status,
            WorkState::Failed
        );
        assert_eq!(d.rev_of(7), Some(12));
        deliver(&mut d, None, Some(task(vec![row("c", w)], 4)), 13);
        let names: Vec<_> = d
            .task
            .as_ref()
            .unwrap()
            .destinations
            .iter()
            .map(|r| r.name.clone())
            .collect();
        assert_eq!(
            (names, d.task_change.clone()),
            (
                vec!["a".into(), "b".into(), "c".into(), "d".into()],
                RowsChange::Whole
            )
        );
        // One row went: the counts say 3, four are held.
        deliver(&mut d, None, Some(task(Vec::new(), 3)), 14);
        assert_eq!(d.rev_of(7), None);
        assert_eq!(d.rev_of(8), None);
    }
}
