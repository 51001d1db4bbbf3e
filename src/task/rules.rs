//! The seed's task rules as pure functions over plain rows and a `now`.
//! The service loads rows, asks these functions what to do, and writes the
//! answer with its event in one transaction.

use std::fmt;

use super::state::{
    Action, DestStatus, Format, PackageKind, TaskClass, TaskStatus, TaskType, WorkState,
};
use crate::clock::UnixTime;

/// Automatic retries of a transient failure before it counts as failed.
pub const MAX_RETRIES: i64 = 5;

/// How far in the past a task's start may be and still mean "now": the
/// minute typed has begun, or passed while it was typed.
pub const START_GRACE_SECS: i64 = 5 * 60;

/// Whether a start at `at` is in the past, beyond the grace: most often a
/// typo (a wrong year or day) for a time meant to come, refused rather
/// than read as "at once".
pub fn start_is_past(at: UnixTime, now: UnixTime) -> bool {
    at < now - START_GRACE_SECS
}

/// Seconds before automatic retry `n` (0-based): 30 s, 1, 2, 4, 8 min.
pub fn retry_backoff(n: i64) -> i64 {
    30 << n.clamp(0, 8)
}

/// Seconds in a day.
pub const DAY: i64 = 86_400;

// ---- one destination of one task ------------------------------------------

/// Where a destination of a task stands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    pub state: WorkState,
    pub attempt: i64,
    /// Automatic retries already made of this attempt's failures.
    pub retries: i64,
}

/// What an agent's report says, reduced to what decides its effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported {
    pub attempt: i64,
    pub state: WorkState,
    /// The failure is transient (another installation held the lock, the
    /// network broke): worth the same attempt again later.
    pub transient: bool,
}

/// What a report does to a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A report for another attempt, a finished destination, or a report
    /// that goes backwards: nothing changes (reports are idempotent).
    Ignore,
    /// The attempt moved on (downloading, installing).
    Progress(WorkState),
    /// A transient failure: a new attempt, not before `at`; this is
    /// automatic retry number `retry` (1-based).
    RetryAt { at: UnixTime, retry: i64 },
    /// The attempt ended in this final state.
    Finish(WorkState),
}

/// Decides what report `r` does to a destination standing at `cur`.
pub fn apply_report(cur: Current, r: Reported, now: UnixTime) -> Effect {
    if r.attempt != cur.attempt || cur.state.is_final() {
        return Effect::Ignore;
    }
    match r.state {
        WorkState::Waiting | WorkState::Cancelled => Effect::Ignore,
        s if s.is_unfinished() => Effect::Progress(s),
        WorkState::Failed if r.transient && cur.retries < MAX_RETRIES => Effect::RetryAt {
            at: now + retry_backoff(cur.retries),
            retry: cur.retries + 1,
        },
        s => Effect::Finish(s),
    }
}

/// The action a task of type `t` asks of a destination for a package of
/// kind `k`.
pub fn action_for(t: TaskType, k: PackageKind) -> Action {
    match (t, k) {
        (TaskType::Uninstall, _) => Action::Uninstall,
        (TaskType::Install, PackageKind::File) => Action::Distribute,
        (TaskType::Install, PackageKind::Install) => Action::Install,
    }
}

/// True when a daily window holds work at `now`: outside its window a task
/// starts nothing new (download included, to keep the network quiet), but
/// work already under way finishes.
pub fn held_by_window(state: WorkState, window: Option<&str>, now: UnixTime) -> bool {
    state == WorkState::Waiting && window.is_some_and(|w| !crate::clock::in_window(w, now))
}

/// Seconds until held work of a destination may start, given when the
/// earliest start time or retry backoff comes due and whether a daily
/// window holds any (windows open on the minute, so a minute at most).
pub fn next_due_in(due: Option<UnixTime>, windowed: bool, now: UnixTime) -> Option<i64> {
    let until_due = due.filter(|d| *d > now).map(|d| d - now);
    match (until_due, windowed) {
        (Some(s), true) => Some(s.min(60)),
        (None, true) => Some(60),
        (s, false) => s,
    }
}

/// Whether a re-run picks a destination in `state`: the failed ones, or
/// with `all` every finished one except those taken out of the task.
pub fn rerun_picks(state: WorkState, all: bool) -> bool {
    match state {
        WorkState::Failed => true,
        WorkState::Succeeded => all,
        _ => false,
    }
}

/// What editing a task's destinations does, by destination id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationEdit<Id> {
    /// New to the task: they start waiting.
    pub added: Vec<Id>,
    /// Cancelled earlier and wanted again: a new attempt.
    pub revived: Vec<Id>,
    /// Unfinished and no longer wanted: cancelled.
    pub removed: Vec<Id>,
    /// Finished and no longer wanted: they keep their outcome, since an
    /// edit cannot undo what already happened on the computer.
    pub kept_finished: Vec<Id>,
}

impl<Id> DestinationEdit<Id> {
    pub fn changes_nothing(&self) -> bool {
        self.added.is_empty() && self.revived.is_empty() && self.removed.is_empty()
    }
}

/// Plans the first form of task edit: `current` destinations with their
/// states, `wanted` the new list.
pub fn edit_destinations<Id: Copy + PartialEq>(
    current: &[(Id, WorkState)],
    wanted: &[Id],
) -> DestinationEdit<Id> {
    let mut plan = DestinationEdit {
        added: Vec::new(),
        revived: Vec::new(),
        removed: Vec::new(),
        kept_finished: Vec::new(),
    };
    for w in wanted {
        match current.iter().find(|(id, _)| id == w) {
            None => plan.added.push(*w),
            Some((_, WorkState::Cancelled)) => plan.revived.push(*w),
            Some(_) => {}
        }
    }
    for (id, state) in current {
        if wanted.contains(id) {
            continue;
        }
        if state.is_unfinished() {
            plan.removed.push(*id);
        } else if *state != WorkState::Cancelled {
            plan.kept_finished.push(*id);
        }
    }
    plan
}

// ---- tasks ----------------------------------------------------------------

/// A task's status from its schedule and outcome: `failed` when it has
/// finished and at least one destination failed.
pub fn task_status(
    completed_at: Option<UnixTime>,
    start_at: Option<UnixTime>,
    failed: u64,
    paused: bool,
    now: UnixTime,
) -> TaskStatus {
    match completed_at {
        Some(_) if failed > 0 => TaskStatus::Failed,
        Some(_) => TaskStatus::Completed,
        None if paused => TaskStatus::Paused,
        None if start_at.is_some_and(|s| s > now) => TaskStatus::Scheduled,
        None => TaskStatus::Running,
    }
}

/// What retention needs to know of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionRow {
    pub class: TaskClass,
    pub completed_at: Option<UnixTime>,
    pub destinations: u64,
}

/// Why retention deletes a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    NoDestinations,
    /// Completed more than this many days ago.
    CompletedDaysAgo(i64),
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expiry::NoDestinations => f.write_str("no destinations left"),
            Expiry::CompletedDaysAgo(d) => write!(f, "completed more than {d} days ago"),
        }
    }
}

/// Days a completed task of `class` is kept.
pub fn retention_days(class: TaskClass) -> i64 {
    match class {
        TaskClass::Admin => 30,
        TaskClass::Countermeasure => 7,
    }
}

/// The seed's retention rule: administrator tasks go 30 days after
/// completion, countermeasure tasks after 7, any task once it has no
/// destinations left.
pub fn expiry(t: RetentionRow, now: UnixTime) -> Option<Expiry> {
    if t.destinations == 0 {
        return Some(Expiry::NoDestinations);
    }
    let days = retention_days(t.class);
    t.completed_at
        .filter(|c| *c <= now - days * DAY)
        .map(|_| Expiry::CompletedDaysAgo(days))
}

// ---- packages and destinations --------------------------------------------

/// True when running `command` for `action` on a package of `format` needs
/// Windows: MSI and EXE packages, and commands that start msiexec or an
/// `.exe`. Distributing files never does. The one definition, used by the
/// server to warn at task creation and by the agent to refuse.
pub fn needs_windows(action: Action, format: Format, command: Option<&str>) -> bool {
    if action == Action::Distribute {
        return false;
    }
    let first = command
        .and_then(|c| c.split_whitespace().next())
        .map(|w| w.trim_matches('"').to_ascii_lowercase())
        .unwrap_or_default();
    matches!(format, Format::Msi | Format::Exe)
        || first == "msiexec"
        || first.ends_with("msiexec.exe")
        || first.ends_with(".exe")
}

/// The status an admin's approval gives a destination in `current`, or
/// None when approval changes nothing. Whether it is connected shows at
/// its next poll, so approval makes it offline until then.
pub fn approve(current: DestStatus) -> Option<DestStatus> {
    match current {
        DestStatus::Pending | DestStatus::Rejected => Some(DestStatus::Offline),
        DestStatus::Online | DestStatus::Offline => None,
    }
}

/// The status a poll gives an approved destination that was offline.
pub fn on_contact(current: DestStatus) -> Option<DestStatus> {
    (current == DestStatus::Offline).then_some(DestStatus::Online)
}

/// The status a destination silent for too long takes.
pub fn on_silence(current: DestStatus) -> Option<DestStatus> {
    (current == DestStatus::Online).then_some(DestStatus::Offline)
}

/// The status rejection gives, or None when it is already rejected.
pub fn reject(current: DestStatus) -> Option<DestStatus> {
    (current != DestStatus::Rejected).then_some(DestStatus::Rejected)
}
