//! The admin API: every admin action as one request, answered with JSON.
//!
//! The CLI and the console speak it to a running `courier serve` over the
//! Unix socket `<data>/admin.sock` (one JSON request per line, one JSON
//! reply per line), or hand it straight to an in-process [`Service`] when no
//! server runs. Either way the same `Service::handle` answers, so both paths
//! give the same result.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::service::{AddPackage, CreateTask, EditPackage, Service};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    PackageAdd(AddPackage),
    PackageList,
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
    Failures,
    Status,
    TaskRm {
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

/// A reply on the socket.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok(Value),
    Error(String),
}

impl Service {
    /// Answers one admin request.
    pub fn handle(&mut self, req: Request) -> Result<Value> {
        fn json<T: Serialize>(v: T) -> Result<Value> {
            Ok(serde_json::to_value(v)?)
        }
        match req {
            Request::PackageAdd(r) => json(self.add_package(r)?),
            Request::PackageList => json(self.packages()?),
            Request::PackageShow { id } => json(self.package(id)?),
            Request::PackageEdit { id, edit } => json(self.edit_package(id, edit)?),
            Request::PackageRm { id } => json(self.remove_package(id)?),
            Request::TokenCreate { ttl, auto_approve } => {
                json(self.create_token(ttl, auto_approve)?)
            }
            Request::TokenList => json(self.tokens()?),
            Request::TokenRevoke { id } => json(self.revoke_token(id)?),
            Request::DestList => json(self.destinations()?),
            Request::DestShow { name } => json(self.destination(&name)?),
            Request::DestApprove { name } => json(self.approve_destination(&name)?),
            Request::DestReject { name } => json(self.reject_destination(&name)?),
            Request::DestRm { name } => {
                json(self.remove_destination(&name, "deleted by the administrator")?)
            }
            Request::DestMove {
                name,
                server,
                token,
            } => json(self.move_destination(&name, &server, &token)?),
            Request::TaskCreate(r) => json(self.create_task(r)?),
            Request::TaskList => json(self.tasks()?),
            Request::TaskShow { id } => json(self.task(id)?),
            Request::TaskEditDestinations { id, to } => json(self.edit_task_destinations(id, &to)?),
            Request::TaskEditPackage { id, package } => json(self.edit_task_package(id, package)?),
            Request::TaskCopy { id, to, name } => json(self.copy_task(id, to, name)?),
            Request::TaskRerun { id, all, only } => {
                json(self.rerun_task_on(id, all, only.as_deref())?)
            }
            Request::TaskSummaries => json(self.task_summaries()?),
            Request::TaskBrief { id } => json(self.task_brief(id)?),
            Request::TaskDestination { id, name } => json(self.task_destination(id, &name)?),
            Request::Failures => json(self.failures()?),
            Request::Status => json(self.status()?),
            Request::TaskRm { id } => json(self.remove_task(id)?),
            Request::Events { after, limit, tail } => match tail {
                Some(n) => json(self.events_tail(n)?),
                None => json(self.events_since(after, limit)?),
            },
        }
    }
}

/// Where admin requests go: a running server, or this process.
pub enum Client {
    Remote(BufReader<UnixStream>),
    Local(Box<Service>),
}

impl Client {
    /// Connects to the server for this data dir if one runs, else opens the
    /// store in-process.
    pub fn connect(socket: &Path, open_local: impl FnOnce() -> Result<Service>) -> Result<Client> {
        match UnixStream::connect(socket) {
            Ok(s) => Ok(Client::Remote(BufReader::new(s))),
            Err(_) => Ok(Client::Local(Box::new(open_local()?))),
        }
    }

    pub fn call(&mut self, req: Request) -> Result<Value> {
        match self {
            Client::Local(svc) => svc.handle(req),
            Client::Remote(stream) => {
                let mut line = serde_json::to_string(&req)?;
                line.push('\n');
                stream
                    .get_mut()
                    .write_all(line.as_bytes())
                    .context("admin socket")?;
                let mut reply = String::new();
                stream.read_line(&mut reply).context("admin socket")?;
                if reply.is_empty() {
                    return Err(anyhow!("the server closed the admin socket"));
                }
                match serde_json::from_str::<Reply>(&reply).context("admin socket: bad reply")? {
                    Reply::Ok(v) => Ok(v),
                    Reply::Error(e) => Err(anyhow!(e)),
                }
            }
        }
    }

    /// Calls and decodes the reply.
    pub fn call_as<T: for<'de> Deserialize<'de>>(&mut self, req: Request) -> Result<T> {
        Ok(serde_json::from_value(self.call(req)?)?)
    }
}
