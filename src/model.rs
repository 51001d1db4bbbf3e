//! The objects courier shows and stores, with the JSON shape of the
//! command-line contract (`docs/cli.md`). Field names here are public API:
//! extend, never rename.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::task::{DestStatus, Format, PolicyKind, TaskClass, TaskStatus, TaskType, WorkState};

pub type PackageId = i64;
pub type TaskId = i64;

/// What a package does at its destination (the domain's name for it).
pub use crate::task::PackageKind as Kind;

/// Exit codes an installation counts as success unless the admin edits them:
/// 0, and 3010/1641 (success, reboot required).
pub const DEFAULT_SUCCESS_CODES: [i64; 3] = [0, 3010, 1641];

/// A registered package. Content (`hash`, `size`, `format`, `file_name`…)
/// never changes; the rest is metadata the admin may edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub id: PackageId,
    pub name: String,
    pub version: Option<String>,
    pub kind: Kind,
    /// Judged from the content.
    pub format: Format,
    /// Bytes of the registered file.
    pub size: u64,
    /// BLAKE3 of the registered file: its address in the content store.
    pub hash: String,
    /// SHA-256 of the registered file, to compare with a vendor's checksum.
    pub sha256: String,
    pub install_command: Option<String>,
    pub uninstall_command: Option<String>,
    pub folder: Option<String>,
    pub success_codes: Vec<i64>,
    /// The file's name when registered; an MSI or EXE keeps it at the
    /// destination so its command can name it.
    pub file_name: String,
    /// Path of the installer inside a ZIP, when one was found.
    pub installer: Option<String>,
    pub product_code: Option<String>,
    /// For a ZIP: bytes its entries decompress to, and how many files.
    pub unzipped_size: Option<u64>,
    pub entries: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
    /// Detection rules (`msi:{…}`, `file:…`, …): all hold when the
    /// software is installed.
    #[serde(default)]
    pub detect: Vec<String>,
}

/// Level of an event in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "info" => Some(Level::Info),
            "warn" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// One entry of the event log: what an admin must know happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    pub at: String,
    pub level: Level,
    /// Dotted machine-readable kind, e.g. "package.added".
    pub kind: String,
    /// What the event is about, e.g. "package 3".
    pub subject: String,
    pub message: String,
}

/// An event about to be appended; the store gives it its id.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub at: UnixTime,
    pub level: Level,
    pub kind: &'static str,
    pub subject: String,
    pub message: String,
}

pub type DestinationId = i64;

/// A target computer running the courier agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub id: DestinationId,
    pub name: String,
    pub status: DestStatus,
    pub os: Option<String>,
    pub hostname: Option<String>,
    pub agent_version: Option<String>,
    pub last_seen: Option<String>,
    pub enrolled_at: String,
    /// Unfinished task destinations on this computer.
    pub running_work: u64,
    /// The server it was ordered to move to, until it has left.
    pub moving_to: Option<String>,
    /// When the agent's certificate expires (the agent renews it well
    /// before); null for one signed before certificates expired.
    #[serde(default)]
    pub cert_expires_at: Option<String>,
    /// The software its agent last listed (`dest show` only), by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<Vec<Software>>,
}

/// One destination of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDestination {
    pub name: String,
    pub status: WorkState,
    pub exit_code: Option<i64>,
    pub message: Option<String>,
    /// What the exit code means, when it is a known one.
    pub meaning: Option<String>,
    pub attempt: i64,
    pub retries: i64,
    pub transferred: u64,
    pub reboot_required: bool,
    /// Tail of the command's output (only in `task show`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub updated_at: String,
    /// When the current attempt started (its first progress); null while
    /// it waits.
    #[serde(default)]
    pub started_at: Option<String>,
    /// Seconds the current attempt has run: to now while under way, to its
    /// end once finished.
    #[serde(default)]
    pub elapsed_secs: Option<i64>,
    /// The command this destination runs instead of the package's: the
    /// removal its inventory reported (uninstallation from inventory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// What the package's detection rules said of this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<crate::task::detect::Detection>,
    /// The end of the installer's log is kept (`courier task log`).
    #[serde(default)]
    pub has_log: bool,
    /// That log (only when one destination is asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// When the current state began: its age.
    #[serde(default)]
    pub state_since: Option<String>,
    /// Set when the work is not moving (`task::stuck`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck: Option<Stuck>,
}

/// The pre-flight of a task (`courier task plan`): what will happen on
/// each destination, before anything starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// "37 will install, 2 already installed, 1 lack disk space, 3 offline
    /// (longest 4 days)".
    pub summary: String,
    /// Destinations that would run it, now or once back or approved.
    pub will_run: usize,
    /// When it starts: now, at its start time, or when its window opens;
    /// with the server's `--bandwidth`, when the transfers should be done.
    pub starts: String,
    pub destinations: Vec<PlanRow>,
}

/// One destination of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRow {
    pub name: String,
    pub verdict: crate::task::plan::Verdict,
    pub reason: String,
    pub os: Option<String>,
    pub last_seen: Option<String>,
    /// When its transfer should be done, by the server's `--bandwidth` and
    /// `--max-transfers` (absent without a bandwidth, or when it will not
    /// run now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_done_at: Option<String>,
}

/// One ring of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ring {
    /// Destinations in it.
    pub size: u64,
    pub state: crate::task::rings::RingState,
    /// Its failed destinations.
    #[serde(default)]
    pub failed: u64,
}

/// Unfinished work that is not moving: why, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stuck {
    pub kind: crate::task::stuck::StuckKind,
    pub reason: String,
    pub since: String,
}

/// Destinations of a task by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub waiting: u64,
    pub transferring: u64,
    pub installing: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl Counts {
    /// The count of destinations in `state`.
    pub fn get_mut(&mut self, state: WorkState) -> &mut u64 {
        match state {
            WorkState::Waiting => &mut self.waiting,
            WorkState::Transferring => &mut self.transferring,
            WorkState::Installing => &mut self.installing,
            WorkState::Succeeded => &mut self.succeeded,
            WorkState::Failed => &mut self.failed,
            WorkState::Cancelled => &mut self.cancelled,
        }
    }

    /// The count of destinations in `state`.
    pub fn get(&self, state: WorkState) -> u64 {
        let mut c = self.clone();
        *c.get_mut(state)
    }

    /// Destinations still to finish.
    pub fn unfinished(&self) -> u64 {
        self.waiting + self.transferring + self.installing
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub name: String,
    /// Package distribution (install) or uninstallation.
    #[serde(rename = "type")]
    pub kind: TaskType,
    pub class: TaskClass,
    pub status: TaskStatus,
    /// Package id; null once the package has been deleted, and for an
    /// uninstallation from the inventory.
    pub package: Option<PackageId>,
    pub package_name: String,
    /// An uninstallation from the inventory: the program's name (a
    /// prohibited policy's pattern) and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// The security policy whose countermeasure this task is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<i64>,
    /// Runs even where detection says there is nothing to do.
    #[serde(default)]
    pub force: bool,
    /// Its rings, in order (none without `--rings`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rings: Vec<Ring>,
    /// The gate between rings (`failures=10%`, `signature=new`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// Why it is paused (a tripped gate, an administrator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    pub start_at: Option<String>,
    /// Daily window "HH:MM-HH:MM" outside which nothing new starts.
    pub window: Option<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub counts: Counts,
    pub destinations: Vec<TaskDestination>,
    /// Things the admin should know when the task was created or edited.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub warnings: Vec<String>,
}

/// An enrolment token as listed (the secret is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub id: i64,
    /// The token string; only set when just created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub auto_approve: bool,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked: bool,
    pub uses: i64,
}

/// One failed destination, for triage across all tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub task_id: TaskId,
    pub task_name: String,
    pub destination: String,
    pub exit_code: Option<i64>,
    pub meaning: Option<String>,
    pub message: Option<String>,
    pub attempt: i64,
    pub updated_at: String,
    /// The destination's operating system, as its agent reported it:
    /// exit-code meanings apply only to Windows.
    #[serde(default)]
    pub os: Option<String>,
    /// The last meaningful line of the command's output
    /// (`task::cause::last_line`).
    #[serde(default)]
    pub said: Option<String>,
    /// The installer's action that failed, where its log or output names
    /// it (`task::cause::msi_log_failure`, `failing_action`).
    #[serde(default)]
    pub action: Option<String>,
    /// Set when detection overruled the exit code: `not_done` (failed
    /// though the installer said success) or `done_despite_exit`
    /// (succeeded, flagged, though the installer said failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<crate::task::detect::Detection>,
    /// The end of the installer's log is kept (`courier task log`).
    #[serde(default)]
    pub has_log: bool,
    /// Set for unfinished work that is not moving: triage lists it with
    /// the failures, as a cause of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck: Option<Stuck>,
}

impl Failure {
    /// Whether the destination runs Windows, as its agent said: exit-code
    /// meanings apply only there.
    pub fn windows(&self) -> bool {
        self.os
            .as_deref()
            .is_some_and(|o| o.to_ascii_lowercase().starts_with("windows"))
    }

    /// The cause it is grouped under in triage (`task::cause`).
    pub fn cause(&self) -> crate::task::cause::Cause {
        if let Some(s) = &self.stuck {
            return crate::task::cause::Cause {
                signature: format!("stuck · {}", s.kind.label()),
                hint: None,
            };
        }
        crate::task::cause::cause(&crate::task::cause::Facts {
            exit_code: self.exit_code,
            windows: self.windows(),
            action: self.action.as_deref(),
            said: self.said.as_deref(),
            message: self.message.as_deref(),
            overruled: self.detection.is_some_and(|d| d.overrules()),
        })
    }
}

/// Failures sharing one cause (`courier triage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CauseGroup {
    pub cause: String,
    /// The exit code's meaning, where it applies (Windows destinations).
    pub hint: Option<String>,
    pub count: usize,
    pub tasks: usize,
    pub destinations: Vec<Failure>,
}

/// Failures grouped by cause, the biggest group first.
pub fn group_failures(failures: Vec<Failure>) -> Vec<CauseGroup> {
    let mut by: std::collections::BTreeMap<String, CauseGroup> = Default::default();
    for f in failures {
        let c = f.cause();
        let g = by.entry(c.signature.clone()).or_insert_with(|| CauseGroup {
            cause: c.signature,
            hint: None,
            count: 0,
            tasks: 0,
            destinations: Vec::new(),
        });
        g.hint = g.hint.take().or(c.hint.map(str::to_string));
        g.count += 1;
        g.destinations.push(f);
    }
    let mut groups: Vec<CauseGroup> = by.into_values().collect();
    for g in &mut groups {
        let tasks: std::collections::HashSet<TaskId> =
            g.destinations.iter().map(|f| f.task_id).collect();
        g.tasks = tasks.len();
    }
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.cause.cmp(&b.cause)));
    groups
}

/// What the console's header shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Where agents connect; None when no server runs.
    pub listen: Option<String>,
    pub online: u64,
    pub offline: u64,
    pub pending: u64,
    pub total: u64,
    pub running_tasks: u64,
    /// Unfinished destinations across all tasks.
    pub unfinished: u64,
    /// Content bytes served since the server started.
    pub bytes_served: u64,
    /// Unfinished destinations whose work is not moving (`task::stuck`).
    #[serde(default)]
    pub stuck: u64,
}

/// Bytes as people read them ("1.5 MiB").
pub fn human_size(n: u64) -> String {
    humansize::format_size(n, humansize::BINARY)
}

/// One program in a destination's software inventory, as its agent read
/// it (`dest show --json`: `software`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Software {
    pub name: String,
    pub version: Option<String>,
    pub publisher: Option<String>,
    /// Where the agent read it: `registry`, `dpkg` or `rpm`; `courier`
    /// for a package courier installed there (and did not uninstall).
    pub source: String,
    /// The Windows Installer ProductCode, when the entry is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
    /// The command that removes it.
    pub uninstall: Option<String>,
    /// Whether that command runs without asking anyone.
    #[serde(default)]
    pub quiet: bool,
}

/// A title across the fleet (`software list`): its versions and the
/// destinations that have each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareTitle {
    pub name: String,
    pub publisher: Option<String>,
    pub versions: Vec<SoftwareVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareVersion {
    pub version: Option<String>,
    pub destinations: Vec<String>,
}

/// A security policy (`courier policy`): what every destination must or
/// must not have installed, and whether courier enforces it with a
/// countermeasure task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub id: i64,
    pub name: String,
    pub kind: PolicyKind,
    /// Mandatory: the program's name; prohibited: a glob on program
    /// names (any case); update: the update package's name.
    pub software: Option<String>,
    pub min_version: Option<String>,
    /// The package a mandatory or update policy installs.
    pub package: Option<PackageId>,
    pub enforce: bool,
    pub created_at: String,
    pub updated_at: String,
    /// The destinations that violate it now (with an inventory to judge).
    #[serde(default)]
    pub violations: Vec<PolicyViolation>,
    /// Its countermeasure task, while it is enforced and has one.
    #[serde(default)]
    pub task: Option<TaskId>,
}

/// A destination that violates a policy, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyViolation {
    pub destination: String,
    pub reason: String,
}
