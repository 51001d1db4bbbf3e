//! User-visible words of the console that are not key help (which lives in
//! the keymap), in one place.

use super::keymap::Context;
use super::views::View;
use crate::task::{DestStatus, TaskStatus, WorkState};

pub const READ_ONLY: &str = "read-only: changes are disabled (started with --read-only)";
pub const NOTHING_SELECTED: &str = "nothing selected";
pub const CONFIRM_HINT: &str =
    "y confirm · n/Esc cancel · Tab switch · Enter chooses the highlighted button";
pub const FORM_HINT: &str = "Tab/↓ next field · ↑ previous · Enter submit · Esc cancel";
/// Said in the package form while a worker looks at the chosen file.
pub const INSPECTING: &str = "looking at";
/// The output pane of an attempt under way that has printed nothing yet.
pub const OUTPUT_NOT_YET: &str = "(no output yet: it shows here as the command prints)";
pub const NOTHING_TO_COPY: &str = "nothing to copy: no output and no message";
/// Followed by the file the copy was written to.
pub const COPIED: &str = "copied to the terminal clipboard and to";
/// What the edit-task form says it may change.
pub const EDIT_TASK_RULES: &[&str] = &[
    "Destinations: tick to add; untick to cancel work not yet done",
    "  (a finished destination keeps its outcome). Or Package: another one.",
    "One of the two per edit. Start, window, name and type stay:",
    "copy the task (c) to change those.",
];
/// A form waiting for the server's answer.
pub const SUBMITTING: &str = "sending… (the form stays open if it is refused)";
pub const FILTER_HINT: &str = "type to filter · Enter keep · Esc clear";
pub const COMMAND_HINT: &str = "Tab complete · Enter run · Esc cancel";
pub const COMMANDS: &[(&str, &str)] = &[
    ("pkg", "Packages view"),
    ("task", "Tasks view"),
    ("dest", "Destinations view"),
    ("log", "Log view"),
    ("triage", "Failed destinations by cause"),
    ("software", "Programs across the fleet"),
    ("policy", "Security policies"),
    ("help", "Every key"),
    ("mouse", "Mouse on/off"),
    ("q", "Quit"),
];
pub const EMPTY_PACKAGES: &str = "No packages yet. Press a to register an MSI, EXE, ZIP or file.";
pub const EMPTY_TASKS: &str = "No tasks yet. Select a package and press n, or press n here.";
pub const EMPTY_DESTS: &str =
    "No destinations yet. Create a token (courier token create) and start agents with it.";
pub const EMPTY_TRIAGE: &str = "No failed destinations. ✔";
pub const EMPTY_LOG: &str = "No events yet.";
pub const EMPTY_SOFTWARE: &str =
    "No inventory yet: agents list their programs when they start and then daily.";
pub const EMPTY_POLICIES: &str = "No policies. Press a for one: a program every destination must have, must not have, or an update.";
/// Before the name of a countermeasure task (a policy's) in the tasks list.
pub const POLICY_MARK: &str = "⚑policy ";
/// A destination whose agent has listed no programs yet.
pub const NO_INVENTORY: &str = "not reported yet";
/// The detail pane waits for the selected destination's inventory.
pub const INVENTORY_COMING: &str = "…";
pub const QUIT_WITH_WORK: &str = "destinations are still at work and this console runs the server: \
quitting pauses their distribution until courier starts again. Quit?";

/// The link `courier demo` gives its console: that console runs the demo.
pub const DEMO_LINK: &str = "● demo";
pub const QUIT_DEMO_WITH_WORK: &str = "destinations are at work, and quitting ends the demo: \
its server and agents stop and its files are removed. Quit?";

/// Said when a key means nothing in the shown view.
pub fn does_nothing(key: &str, context: Context) -> String {
    format!(
        "{key} does nothing in {} (? lists its keys)",
        context.title()
    )
}

/// What a row of a view is called, for "no task 9".
pub fn row_noun(view: View) -> &'static str {
    match view {
        View::Packages => "package",
        View::Tasks | View::TaskDetail => "task",
        View::Destinations => "destination",
        View::Log => "event",
        View::Triage => "failure",
        View::Software => "program",
        View::Policies => "policy",
    }
}

// ---- how states look ----------------------------------------------------------

/// What a state means at a glance; each role has a theme style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ok,
    Error,
    Info,
    Warn,
    Muted,
}

/// A state shown in the console: its symbol, so meaning never rests on
/// colour, and the role it is drawn in.
pub trait Glance: std::fmt::Display + Copy {
    fn symbol(self) -> &'static str;
    fn role(self) -> Role;
}

impl Glance for WorkState {
    fn symbol(self) -> &'static str {
        match self {
            WorkState::Succeeded => "✔",
            WorkState::Failed => "✖",
            WorkState::Transferring => "⇣",
            WorkState::Installing => "⟳",
            WorkState::Waiting => "◷",
            WorkState::Cancelled => "⊘",
        }
    }

    fn role(self) -> Role {
        match self {
            WorkState::Succeeded => Role::Ok,
            WorkState::Failed => Role::Error,
            WorkState::Transferring | WorkState::Installing => Role::Info,
            WorkState::Waiting => Role::Warn,
            WorkState::Cancelled => Role::Muted,
        }
    }
}

impl Glance for TaskStatus {
    fn symbol(self) -> &'static str {
        match self {
            TaskStatus::Completed => "✔",
            TaskStatus::Failed => "✖",
            TaskStatus::Running => "⟳",
            TaskStatus::Paused => "⏸",
            TaskStatus::Scheduled => "◷",
        }
    }

    fn role(self) -> Role {
        match self {
            TaskStatus::Completed => Role::Ok,
            TaskStatus::Failed => Role::Error,
            TaskStatus::Running => Role::Info,
            TaskStatus::Paused => Role::Warn,
            TaskStatus::Scheduled => Role::Warn,
        }
    }
}

impl Glance for DestStatus {
    fn symbol(self) -> &'static str {
        match self {
            DestStatus::Online => "✔",
            DestStatus::Rejected => "✖",
            DestStatus::Pending => "◷",
            DestStatus::Offline => "○",
        }
    }

    fn role(self) -> Role {
        match self {
            DestStatus::Online => Role::Ok,
            DestStatus::Rejected => Role::Error,
            DestStatus::Pending => Role::Warn,
            DestStatus::Offline => Role::Muted,
        }
    }
}

/// Symbol of a state.
pub fn state_symbol(state: impl Glance) -> &'static str {
    state.symbol()
}

/// The state cell of a row that succeeded but needs a restart.
pub const SUCCEEDED_RESTART: &str = "✔ succeeded ↻";
