//! User-visible words of the console that are not key help (which lives in
//! the keymap), in one place.

pub const READ_ONLY: &str = "read-only: changes are disabled (started with --read-only)";
pub const NOTHING_SELECTED: &str = "nothing selected";
pub const CONFIRM_HINT: &str =
    "y confirm · n/Esc cancel · Tab switch · Enter chooses the highlighted button";
pub const FORM_HINT: &str = "Tab/↓ next field · ↑ previous · Enter submit · Esc cancel";
/// Said in the package form while a worker looks at the chosen file.
pub const INSPECTING: &str = "looking at";
pub const FILTER_HINT: &str = "type to filter · Enter keep · Esc clear";
pub const COMMAND_HINT: &str = "Tab complete · Enter run · Esc cancel";
pub const COMMANDS: &[(&str, &str)] = &[
    ("pkg", "Packages view"),
    ("task", "Tasks view"),
    ("dest", "Destinations view"),
    ("log", "Log view"),
    ("triage", "Failed destinations by cause"),
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
pub const QUIT_WITH_WORK: &str = "destinations are still at work and this console runs the server: \
quitting pauses their distribution until courier starts again. Quit?";

// ---- the server's names of states and kinds ---------------------------------
//
// The only place the console compares them, so that when they become typed
// these functions change and their callers do not.

/// What a state means at a glance; each role has a theme style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ok,
    Error,
    Info,
    Warn,
    Muted,
}

/// Symbol of a state, so meaning never rests on colour.
pub fn state_symbol(state: &str) -> &'static str {
    match state {
        "succeeded" | "completed" | "online" => "✔",
        "failed" | "rejected" => "✖",
        "transferring" => "⇣",
        "installing" | "running" => "⟳",
        "waiting" | "scheduled" | "pending" => "◷",
        "cancelled" => "⊘",
        "offline" => "○",
        _ => "·",
    }
}

/// The role a state is drawn in.
pub fn state_role(state: &str) -> Role {
    match state {
        "succeeded" | "completed" | "online" => Role::Ok,
        "failed" | "rejected" => Role::Error,
        "transferring" | "installing" | "running" => Role::Info,
        "pending" | "scheduled" | "waiting" => Role::Warn,
        _ => Role::Muted,
    }
}

/// A destination's row whose content is on its way.
pub fn is_transferring(status: &str) -> bool {
    status == "transferring"
}

/// A destination's row taken out of its task.
pub fn is_cancelled(status: &str) -> bool {
    status == "cancelled"
}

/// An agent turned away: it gets no work, so forms do not offer it.
pub fn is_rejected(status: &str) -> bool {
    status == "rejected"
}

/// An agent that approval changes: still waiting, or rejected before.
pub fn can_approve(status: &str) -> bool {
    status == "pending" || status == "rejected"
}

/// A task that runs the package's uninstall command.
pub fn is_uninstall(kind: &str) -> bool {
    kind == "uninstall"
}

/// The state cell of a row that succeeded but needs a restart.
pub const SUCCEEDED_RESTART: &str = "✔ succeeded ↻";
