//! What the server last told the console: the data the views read. Only
//! snapshots from the backend change it (and opening a task, which shows
//! the list's summary of it until its rows arrive).

use std::collections::VecDeque;
use std::time::Instant;

use super::backend::Snapshot;
use crate::model::{Destination, Event, Package, Status, Task, TaskDestination};

/// Events kept for the log view.
pub const LOG_CAPACITY: usize = 5000;

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
        self.destinations = std::mem::take(&mut s.destinations);
        for e in s.events.drain(..) {
            if self.events.len() == LOG_CAPACITY {
                self.events.pop_front();
            }
            self.events.push_back(e);
        }
        if let Some(t) = s.task.take() {
            self.task = Some(t);
        }
        self.output = s.output.take();
    }
}
