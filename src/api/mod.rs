//! The admin API: every admin action as one typed request, answered with a
//! typed reply or an error of a known kind.
//!
//! This is the bottom of the admin stack: the service implements
//! [`Handler`]; the CLI and the console speak it through [`Client`], to a
//! running `courier serve` over its admin socket (a named pipe on
//! Windows; one JSON request per line, one JSON reply per line) or to a
//! handler in this process. They never see the service or the store.

mod client;
mod error;

pub use client::{Client, Link, Reply, dial, handle_guarded};
pub use error::{ApiError, ErrorKind, disk_full};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::model::{
    Destination, Event, Failure, Kind, Package, Plan, Policy, SoftwareTitle, Status, Task,
    TaskDestination, Token,
};
use crate::task::PolicyKind;

/// `courier package add`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddPackage {
    pub path: PathBuf,
    pub name: Option<String>,
    pub version: Option<String>,
    pub kind: Option<Kind>,
    pub install_command: Option<String>,
    pub uninstall_command: Option<String>,
    pub folder: Option<String>,
    pub success_codes: Option<Vec<i64>>,
    /// Detection rules; for `edit`, they replace the package's (an empty
    /// list clears them).
    #[serde(default)]
    pub detect: Option<Vec<String>>,
}

/// `courier package edit`: each `Some` replaces a field; an empty string
/// clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditPackage {
    pub name: Option<String>,
    pub version: Option<String>,
    pub kind: Option<Kind>,
    pub install_command: Option<String>,
    pub uninstall_command: Option<String>,
    pub folder: Option<String>,
    pub success_codes: Option<Vec<i64>>,
    /// Detection rules; for `edit`, they replace the package's (an empty
    /// list clears them).
    #[serde(default)]
    pub detect: Option<Vec<String>>,
}

/// `courier policy add`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddPolicy {
    pub name: Option<String>,
    pub kind: PolicyKind,
    /// Mandatory: the program's name; prohibited: a glob on names.
    pub software: Option<String>,
    pub min_version: Option<String>,
    pub package: Option<i64>,
    pub enforce: bool,
}

/// `courier policy edit`: each `Some` replaces a field; an empty string
/// clears `min_version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditPolicy {
    pub name: Option<String>,
    pub software: Option<String>,
    pub min_version: Option<String>,
    pub package: Option<i64>,
    pub enforce: Option<bool>,
}

/// `courier task create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTask {
    /// The package to install, distribute or uninstall; None for an
    /// uninstallation from the inventory (`software`).
    pub package: Option<i64>,
    /// Uninstall the program of this name (any case) that each
    /// destination's inventory lists, by the command it reported there.
    #[serde(default)]
    pub software: Option<String>,
    /// Only that version of `software`.
    #[serde(default)]
    pub version: Option<String>,
    /// Destination names; empty with `all`.
    pub to: Vec<String>,
    /// Every approved destination.
    pub all: bool,
    pub uninstall: bool,
    /// Start time; None starts at once.
    pub at: Option<UnixTime>,
    /// Daily window "HH:MM-HH:MM" outside which nothing new starts.
    pub window: Option<String>,
    pub name: Option<String>,
    /// Run even where the package's detection rules say there is nothing
    /// to do.
    #[serde(default)]
    pub force: bool,
    /// Rings the destinations start in, one after the other
    /// (`5,25%,100%`).
    #[serde(default)]
    pub rings: Option<String>,
    /// When the next ring may start (`failures=10%`, `signature=new`).
    #[serde(default)]
    pub gate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    PackageAdd(AddPackage),
    /// Packages; update packages (those of update policies) only with
    /// `all`.
    PackageList {
        #[serde(default)]
        all: bool,
    },
    PackageShow {
        id: i64,
    },
    PackageEdit {
        id: i64,
        edit: EditPackage,
    },
    PackageRm {
        id: i64,
    },
    TokenCreate {
        ttl: Option<i64>,
        auto_approve: bool,
    },
    TokenList,
    TokenRevoke {
        id: i64,
    },
    DestList,
    DestShow {
        name: String,
    },
    /// Titles across the fleet's inventories whose name holds `name`.
    SoftwareList {
        name: Option<String>,
    },
    DestApprove {
        name: String,
    },
    DestReject {
        name: String,
    },
    DestRm {
        name: String,
    },
    DestMove {
        name: String,
        server: String,
        token: String,
    },
    PolicyAdd(AddPolicy),
    PolicyList,
    PolicyShow {
        id: i64,
    },
    PolicyEdit {
        id: i64,
        edit: EditPolicy,
    },
    PolicyRm {
        id: i64,
    },
    TaskCreate(CreateTask),
    TaskEditDestinations {
        id: i64,
        to: Vec<String>,
    },
    TaskEditPackage {
        id: i64,
        package: i64,
    },
    TaskCopy {
        id: i64,
        to: Option<Vec<String>>,
        name: Option<String>,
    },
    TaskRerun {
        id: i64,
        all: bool,
        /// Only these destinations (of those the rule picks).
        #[serde(default)]
        only: Option<Vec<String>>,
    },
    TaskSummaries,
    /// A task with its destinations but without their output.
    TaskBrief {
        id: i64,
    },
    TaskDestination {
        id: i64,
        name: String,
    },
    /// A task with the destinations changed since revision `since` (all
    /// of them when None), without their output: what a live view asks
    /// every second instead of the whole task.
    TaskChanges {
        id: i64,
        since: Option<i64>,
    },
    Failures,
    /// The pre-flight of a task that is not created.
    TaskPlan(CreateTask),
    Status,
    TaskRm {
        id: i64,
    },
    /// Holds a task's waiting work.
    TaskPause {
        id: i64,
    },
    /// Lets a paused task go on.
    TaskResume {
        id: i64,
    },
    TaskList,
    TaskShow {
        id: i64,
    },
    /// Events after `after` (oldest first, at most `limit`), or the last
    /// `tail` events.
    Events {
        after: i64,
        limit: u32,
        tail: Option<u32>,
    },
}

impl Request {
    /// Whether answering changes nothing (the server answers these on a
    /// connection of their own, beside the writer).
    pub fn is_read(&self) -> bool {
        match self {
            Request::PackageList { .. }
            | Request::PackageShow { .. }
            | Request::PolicyList
            | Request::PolicyShow { .. }
            | Request::TokenList
            | Request::DestList
            | Request::DestShow { .. }
            | Request::SoftwareList { .. }
            | Request::TaskSummaries
            | Request::TaskBrief { .. }
            | Request::TaskDestination { .. }
            | Request::TaskChanges { .. }
            | Request::Failures
            | Request::TaskPlan(_)
            | Request::Status
            | Request::TaskList
            | Request::TaskShow { .. }
            | Request::Events { .. } => true,
            Request::PackageAdd(_)
            | Request::PackageEdit { .. }
            | Request::PackageRm { .. }
            | Request::TokenCreate { .. }
            | Request::TokenRevoke { .. }
            | Request::DestApprove { .. }
            | Request::DestReject { .. }
            | Request::DestRm { .. }
            | Request::TaskPause { .. }
            | Request::TaskResume { .. }
            | Request::DestMove { .. }
            | Request::PolicyAdd(_)
            | Request::PolicyEdit { .. }
            | Request::PolicyRm { .. }
            | Request::TaskCreate(_)
            | Request::TaskEditDestinations { .. }
            | Request::TaskEditPackage { .. }
            | Request::TaskCopy { .. }
            | Request::TaskRerun { .. }
            | Request::TaskRm { .. } => false,
        }
    }
}

/// The answer to `Request::TaskChanges`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskChanges {
    /// The task, its counts and status now; `destinations` holds the rows
    /// changed since the revision asked about (every row when `whole`).
    pub task: Task,
    /// The revision these rows are at: what to ask from next time.
    pub rev: i64,
    /// The rows are the whole task, not changes. A reader holding rows
    /// finds removed ones by the counts: after merging the changes, it
    /// holds more rows than the counts add up to.
    pub whole: bool,
}

/// A typed reply: one variant per shape a request answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Package(Box<Package>),
    Packages(Vec<Package>),
    Token(Token),
    Tokens(Vec<Token>),
    Destination(Box<Destination>),
    Destinations(Vec<Destination>),
    Task(Box<Task>),
    Tasks(Vec<Task>),
    TaskDestination(Box<TaskDestination>),
    TaskChanges(Box<TaskChanges>),
    Failures(Vec<Failure>),
    Status(Status),
    Events(Vec<Event>),
    Software(Vec<SoftwareTitle>),
    Policy(Box<Policy>),
    Policies(Vec<Policy>),
    Plan(Box<Plan>),
}

impl Response {
    /// The id of the one object a change made or touched, if it has one.
    pub fn id(&self) -> Option<i64> {
        match self {
            Response::Package(p) => Some(p.id),
            Response::Token(t) => Some(t.id),
            Response::Destination(d) => Some(d.id),
            Response::Task(t) => Some(t.id),
            Response::Policy(p) => Some(p.id),
            _ => None,
        }
    }

    fn shape(&self) -> &'static str {
        match self {
            Response::Package(_) => "package",
            Response::Packages(_) => "packages",
            Response::Token(_) => "token",
            Response::Tokens(_) => "tokens",
            Response::Destination(_) => "destination",
            Response::Destinations(_) => "destinations",
            Response::Task(_) => "task",
            Response::Tasks(_) => "tasks",
            Response::TaskDestination(_) => "task destination",
            Response::TaskChanges(_) => "task changes",
            Response::Failures(_) => "failures",
            Response::Status(_) => "status",
            Response::Events(_) => "events",
            Response::Software(_) => "software",
            Response::Policy(_) => "policy",
            Response::Policies(_) => "policies",
            Response::Plan(_) => "plan",
        }
    }
}

/// A type a [`Response`] can hold: what `Client::call_as` asks for.
pub trait FromResponse: Sized {
    fn from_response(r: Response) -> Result<Self, ApiError>;
}

macro_rules! from_response {
    ($($t:ty => $v:ident $(($unbox:tt))?),+ $(,)?) => {$(
        impl FromResponse for $t {
            fn from_response(r: Response) -> Result<Self, ApiError> {
                match r {
                    Response::$v(x) => Ok(from_response!(@unbox x $($unbox)?)),
                    other => Err(ApiError::internal(format!(
                        "expected {} in the reply, got {}",
                        stringify!($v),
                        other.shape()
                    ))),
                }
            }
        }

        impl From<$t> for Response {
            fn from(x: $t) -> Response {
                Response::$v(from_response!(@box x $($unbox)?))
            }
        }
    )+};
    (@unbox $x:ident box) => { *$x };
    (@unbox $x:ident) => { $x };
    (@box $x:ident box) => { Box::new($x) };
    (@box $x:ident) => { $x };
}

from_response!(
    Package => Package(box),
    Vec<Package> => Packages,
    Token => Token,
    Vec<Token> => Tokens,
    Destination => Destination(box),
    Vec<Destination> => Destinations,
    Task => Task(box),
    Vec<Task> => Tasks,
    TaskDestination => TaskDestination(box),
    TaskChanges => TaskChanges(box),
    Vec<Failure> => Failures,
    Status => Status,
    Vec<Event> => Events,
    Vec<SoftwareTitle> => Software,
    Policy => Policy(box),
    Vec<Policy> => Policies,
    Plan => Plan(box),
);

/// What answers admin requests: the service implements it; the server
/// hands it requests from the socket, the CLI in-process when no server
/// runs.
pub trait Handler: Send {
    fn handle(&mut self, req: Request) -> Result<Response, ApiError>;

    /// Puts the handler back in order after a request panicked.
    fn recover(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_keep_their_shape_over_the_socket() {
        let status = Status {
            online: 3,
            ..Status::default()
        };
        let text = serde_json::to_string(&Response::from(status.clone())).unwrap();
        let back: Response = serde_json::from_str(&text).unwrap();
        assert_eq!(Status::from_response(back).unwrap(), status);
        let e = Vec::<Task>::from_response(Response::Status(status)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(e.message.contains("expected Tasks"), "{}", e.message);
    }
}
