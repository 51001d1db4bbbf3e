//! Wire types between server and agent (JSON over HTTPS).
//!
//! Invariant: nothing here names the agent. The server knows who is
//! calling from the client certificate of the TLS connection.

use serde::{Deserialize, Serialize};

use crate::task::{DestStatus, Format, WorkState};

pub use crate::content::{CHUNK_SIZE, Manifest};

/// How long a poll waits for work before returning empty.
pub const POLL_WAIT_SECS: u64 = 25;

/// What an agent says about itself when it enrols and on every poll.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct AgentInfo {
    pub os: String,
    pub hostname: String,
    pub agent_version: String,
    /// Seconds the agent lets an install command run: past it (and a
    /// grace) an install not yet reported is stuck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_timeout: Option<u64>,
    /// Free space of the agent's data dir and of every volume, for the
    /// pre-flight (`task plan`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<Disk>,
}

/// Free space on one volume of an agent's computer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Disk {
    /// The volume's mount point or drive (`/`, `C:\`), or the agent's
    /// data dir when `cache`.
    pub path: String,
    /// Bytes free for the agent.
    pub free: u64,
    /// This is the agent's data dir: content cache and work dirs.
    #[serde(default)]
    pub cache: bool,
}

/// The most volumes an agent's report is taken with.
pub const MAX_DISKS: usize = 64;

/// `POST /v1/enroll` (no client certificate yet).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub token: String,
    pub name: String,
    pub csr_pem: String,
    pub info: AgentInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub cert_pem: String,
    pub ca_pem: String,
    /// Pending until an admin approves, or online for an auto-approving
    /// token.
    pub status: DestStatus,
}

/// `POST /v1/inventory`: the software installed on the agent's computer,
/// sent whole with a digest of it; the server keeps the last one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inventory {
    pub digest: String,
    pub programs: Vec<crate::model::Software>,
}

/// The answer to a poll or an inventory: the digest of the inventory the
/// server holds for this agent, so the agent knows whether to send it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InventoryHeld {
    pub digest: Option<String>,
}

/// `POST /v1/renew` (with the agent's current certificate): a new
/// certificate for the same destination, for the key of `csr_pem`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewRequest {
    pub csr_pem: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewResponse {
    pub cert_pem: String,
}

/// Error body of every endpoint: one line for the agent's log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `POST /v1/poll`: waits up to [`POLL_WAIT_SECS`] for work.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PollRequest {
    pub info: AgentInfo,
    /// Attempts the agent already holds, as (task id, attempt): the poll
    /// waits until there is something beyond these.
    #[serde(default)]
    pub known: Vec<(i64, i64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PollResponse {
    /// Pending, online or rejected.
    pub status: DestStatus,
    pub assignments: Vec<Assignment>,
    /// Set by `courier dest move`: enrol with this server, then leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_to: Option<MoveOrder>,
    /// Set when the server holds no long-poll for this agent (it has more
    /// agents than it keeps connections for): ask again after this many
    /// seconds, on a new connection. Unset: poll again at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_secs: Option<u64>,
}

/// Where a destination is to go: another management server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MoveOrder {
    pub server: String,
    pub token: String,
}

/// What a destination must do: one attempt of one task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Assignment {
    pub task_id: i64,
    pub task_name: String,
    /// Increases with every re-run of this destination; reports name it so
    /// late reports of an old attempt change nothing.
    pub attempt: i64,
    pub action: Action,
    pub work: Work,
    /// Run even when the package's detection rules say there is nothing
    /// to do (`task create --force`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// What an assignment works with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// A package's content, fetched by hash, then placed or run.
    Package(PackageRef),
    /// No content: the command that removes a program, as this
    /// destination's own inventory reported it (uninstallation from the
    /// inventory).
    Removal(Removal),
}

/// An uninstallation from the inventory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Removal {
    /// The program's name, for the log.
    pub name: String,
    pub command: String,
    pub success_codes: Vec<i64>,
}

pub use crate::task::Action;

/// What the agent needs to know of a package to fetch and use it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PackageRef {
    pub id: i64,
    pub name: String,
    pub hash: String,
    pub size: u64,
    pub format: Format,
    pub file_name: String,
    pub command: Option<String>,
    pub folder: Option<String>,
    pub success_codes: Vec<i64>,
    /// Detection rules (`task::detect`): all hold when the software is
    /// installed. Checked before an install or uninstall and after it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detect: Vec<String>,
}

/// `POST /v1/report`: progress or outcome of one attempt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Report {
    pub task_id: i64,
    pub attempt: i64,
    pub status: ReportStatus,
    pub exit_code: Option<i64>,
    pub message: Option<String>,
    /// Tail of the command's output.
    pub output: Option<String>,
    /// Bytes downloaded for this attempt so far, resumed requests included.
    pub transferred: u64,
    /// A transient failure the server may retry (1618, network).
    #[serde(default)]
    pub retry: bool,
    #[serde(default)]
    pub reboot_required: bool,
    /// What the package's detection rules said, when it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<crate::task::detect::Detection>,
    /// The end of the installer's own log (Windows Installer's verbose
    /// log), at most [`LOG_TAIL`] bytes, sent with a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// The most of an installer's log an agent sends and the server keeps.
pub const LOG_TAIL: usize = 64 << 10;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    Transferring,
    Installing,
    Succeeded,
    Failed,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        self.state().as_str()
    }

    pub fn is_final(self) -> bool {
        self.state().is_final()
    }

    /// The destination state this report asks for.
    pub fn state(self) -> WorkState {
        match self {
            ReportStatus::Transferring => WorkState::Transferring,
            ReportStatus::Installing => WorkState::Installing,
            ReportStatus::Succeeded => WorkState::Succeeded,
            ReportStatus::Failed => WorkState::Failed,
        }
    }
}

/// The most programs an inventory may list (a Linux server with every
/// package of a distribution has a few thousand).
pub const MAX_PROGRAMS: usize = 20_000;

/// Whether the server takes this inventory entry: a name, fields within
/// their lengths, no control characters (they would reach admins'
/// terminals), a known source. The agent leaves out what would fail.
pub fn check_software(s: &crate::model::Software) -> Result<(), String> {
    let text = |what: &str, v: &str, max: usize| -> Result<(), String> {
        if v.len() > max {
            return Err(format!("{what} longer than {max} bytes"));
        }
        if v.chars().any(char::is_control) {
            return Err(format!("{what} holds control characters"));
        }
        Ok(())
    };
    if s.name.trim().is_empty() {
        return Err("a program without a name".into());
    }
    text("name", &s.name, 256)?;
    for (what, v, max) in [
        ("version", &s.version, 128),
        ("publisher", &s.publisher, 256),
        ("uninstall command", &s.uninstall, 4096),
        ("product code", &s.product_code, 38),
    ] {
        if let Some(v) = v {
            text(what, v, max)?;
        }
    }
    if !matches!(s.source.as_str(), "registry" | "dpkg" | "rpm") {
        return Err(format!("unknown source {:?}", s.source));
    }
    Ok(())
}

/// Whether the server takes this inventory: a BLAKE3 digest, at most
/// `MAX_PROGRAMS` entries, each one `check_software` takes.
pub fn check_inventory(inv: &Inventory) -> Result<(), String> {
    if inv.digest.len() != 64 || !inv.digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the digest is not 64 hex digits".into());
    }
    if inv.programs.len() > MAX_PROGRAMS {
        return Err(format!(
            "{} programs, more than the {MAX_PROGRAMS} an inventory may list",
            inv.programs.len()
        ));
    }
    for (i, p) in inv.programs.iter().enumerate() {
        check_software(p).map_err(|e| format!("program {}: {e}", i + 1))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Software;

    fn program(name: &str) -> Software {
        Software {
            name: name.into(),
            version: Some("1.0".into()),
            publisher: None,
            source: "registry".into(),
            product_code: None,
            uninstall: Some("uninstall.exe /S".into()),
            quiet: true,
        }
    }

    /// What a hostile agent might send is refused, each with its reason.
    #[test]
    fn inventories_are_bounded_and_printable() {
        let ok = Inventory {
            digest: "a".repeat(64),
            programs: vec![program("7-Zip")],
        };
        assert_eq!(check_inventory(&ok), Ok(()));
        let bad = |f: &dyn Fn(&mut Inventory)| {
            let mut inv = ok.clone();
            f(&mut inv);
            check_inventory(&inv).unwrap_err()
        };
        assert_eq!(
            bad(&|i| i.digest = "xyz".into()),
            "the digest is not 64 hex digits"
        );
        assert_eq!(
            bad(&|i| i.programs[0].name = "evil\x1b]0;owned\x07".into()),
            "program 1: name holds control characters"
        );
        assert_eq!(
            bad(&|i| i.programs[0].name = " ".into()),
            "program 1: a program without a name"
        );
        assert_eq!(
            bad(&|i| i.programs[0].uninstall = Some("x".repeat(5000))),
            "program 1: uninstall command longer than 4096 bytes"
        );
        assert_eq!(
            bad(&|i| i.programs[0].source = "apt".into()),
            "program 1: unknown source \"apt\""
        );
        assert!(
            bad(&|i| i.programs = vec![program("p"); MAX_PROGRAMS + 1]).contains("20001 programs")
        );
    }
}
