//! The admin commands: each builds one `api::Request` (or a few, for the
//! log), sends it to the server or the in-process service, and prints the
//! reply with `emit`.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Result;

use super::args::{
    DestCmd, LogArgs, MetaArgs, PackageCmd, PolicyCmd, SoftwareCmd, TaskCmd, TokenCmd,
};
use super::render::{Done, Headed, emit};
use crate::api::{AddPackage, AddPolicy, CreateTask, EditPackage, EditPolicy};
use crate::api::{Client, Request};
use crate::datadir::DataDir;
use crate::model::{
    Destination, Event, Package, Policy, SoftwareTitle, Status, Task, TaskDestination, Token,
};
use crate::task::PolicyKind;

/// Runs one admin command against the server for the data dir, or against
/// the store itself when no server runs, with stdout as its output.
pub(super) fn with_client(
    data: Option<PathBuf>,
    command: impl FnOnce(&mut Client, &mut dyn Write) -> Result<()>,
) -> Result<()> {
    let data = DataDir::open(DataDir::resolve(data)?)?;
    let socket = data.admin_endpoint();
    let mut client = Client::connect(&socket, move || crate::server::open_local(&data))?;
    let mut out = io::stdout().lock();
    command(&mut client, &mut out)?;
    out.flush()?;
    Ok(())
}

pub(super) fn package(client: &mut Client, cmd: PackageCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        PackageCmd::Add { file, meta, json } => {
            // The server may run in another directory: send an absolute path.
            let path = std::path::absolute(&file).unwrap_or(file);
            let p: Package = client.call_as(Request::PackageAdd(add_package(path, meta)))?;
            let head = format!("registered package {}", p.id);
            emit(out, &Headed { head, value: &p }, json)
        }
        PackageCmd::List { all, json } => {
            let list: Vec<Package> = client.call_as(Request::PackageList { all })?;
            emit(out, &list, json)
        }
        PackageCmd::Show { id, json } => {
            let p: Package = client.call_as(Request::PackageShow { id })?;
            emit(out, &p, json)
        }
        PackageCmd::Edit { id, meta, json } => {
            let edit = edit_package(meta);
            let p: Package = client.call_as(Request::PackageEdit { id, edit })?;
            emit(out, &p, json)
        }
        PackageCmd::Rm { id, json } => {
            let p: Package = client.call_as(Request::PackageRm { id })?;
            let line = format!("deleted package {} '{}'", p.id, p.name);
            emit(out, &Done { line, value: &p }, json)
        }
    }
}

fn add_package(path: PathBuf, meta: MetaArgs) -> AddPackage {
    AddPackage {
        path,
        name: meta.name,
        version: meta.version,
        kind: meta.kind,
        install_command: meta.install_command,
        uninstall_command: meta.uninstall_command,
        folder: meta.folder,
        success_codes: meta.success_codes.map(|c| c.0),
        detect: (!meta.detect.is_empty()).then_some(meta.detect),
    }
}

fn edit_package(meta: MetaArgs) -> EditPackage {
    EditPackage {
        name: meta.name,
        version: meta.version,
        kind: meta.kind,
        install_command: meta.install_command,
        uninstall_command: meta.uninstall_command,
        folder: meta.folder,
        success_codes: meta.success_codes.map(|c| c.0),
        detect: (!meta.detect.is_empty()).then_some(meta.detect),
    }
}

pub(super) fn policy(client: &mut Client, cmd: PolicyCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        PolicyCmd::Add {
            mandatory,
            prohibited,
            update,
            package,
            min_version,
            enforce,
            name,
            json,
        } => {
            let (kind, software) = match (mandatory, prohibited, update) {
                (Some(n), _, _) => (PolicyKind::Mandatory, Some(n)),
                (_, Some(p), _) => (PolicyKind::Prohibited, Some(p)),
                _ => (PolicyKind::Update, None),
            };
            let p: Policy = client.call_as(Request::PolicyAdd(AddPolicy {
                name,
                kind,
                software,
                min_version,
                package,
                enforce,
            }))?;
            let head = format!("added policy {}", p.id);
            emit(out, &Headed { head, value: &p }, json)
        }
        PolicyCmd::List { json } => {
            let list: Vec<Policy> = client.call_as(Request::PolicyList)?;
            emit(out, &list, json)
        }
        PolicyCmd::Show { id, json } => {
            let p: Policy = client.call_as(Request::PolicyShow { id })?;
            emit(out, &p, json)
        }
        PolicyCmd::Edit {
            id,
            enforce,
            name,
            software,
            min_version,
            package,
            json,
        } => {
            let edit = EditPolicy {
                name,
                software,
                min_version,
                package,
                enforce,
            };
            let p: Policy = client.call_as(Request::PolicyEdit { id, edit })?;
            emit(out, &p, json)
        }
        PolicyCmd::Rm { id, json } => {
            let p: Policy = client.call_as(Request::PolicyRm { id })?;
            let line = format!("deleted policy {} '{}'", p.id, p.name);
            emit(out, &Done { line, value: &p }, json)
        }
    }
}

pub(super) fn software(client: &mut Client, cmd: SoftwareCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        SoftwareCmd::List { name, json } => {
            let list: Vec<SoftwareTitle> = client.call_as(Request::SoftwareList { name })?;
            emit(out, &list, json)
        }
    }
}

pub(super) fn token(client: &mut Client, cmd: TokenCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        TokenCmd::Create {
            ttl,
            auto_approve,
            json,
        } => {
            let t: Token = client.call_as(Request::TokenCreate {
                ttl: ttl.0,
                auto_approve,
            })?;
            emit(out, &t, json)
        }
        TokenCmd::List { json } => {
            let list: Vec<Token> = client.call_as(Request::TokenList)?;
            emit(out, &list, json)
        }
        TokenCmd::Revoke { id, json } => {
            let t: Token = client.call_as(Request::TokenRevoke { id })?;
            let line = format!("revoked token {}", t.id);
            emit(out, &Done { line, value: &t }, json)
        }
    }
}

pub(super) fn dest(client: &mut Client, cmd: DestCmd, out: &mut dyn Write) -> Result<()> {
    let (req, json) = match cmd {
        DestCmd::List { json } => {
            let list: Vec<Destination> = client.call_as(Request::DestList)?;
            return emit(out, &list, json);
        }
        DestCmd::Rm { name, json } => {
            let d: Destination = client.call_as(Request::DestRm { name })?;
            let line = format!("deleted destination {}", d.name);
            return emit(out, &Done { line, value: &d }, json);
        }
        DestCmd::Show { name, json } => (Request::DestShow { name }, json),
        DestCmd::Approve { name, json } => (Request::DestApprove { name }, json),
        DestCmd::Reject { name, json } => (Request::DestReject { name }, json),
        DestCmd::Move {
            name,
            server,
            token,
            json,
        } => (
            Request::DestMove {
                name,
                server,
                token,
            },
            json,
        ),
    };
    // Every other command answers with the destination as it now is.
    let d: Destination = client.call_as(req)?;
    emit(out, &d, json)
}

pub(super) fn task(client: &mut Client, cmd: TaskCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        TaskCmd::Create {
            package,
            software,
            version,
            to,
            all,
            uninstall,
            at,
            window,
            name,
            force,
            rings,
            gate,
            json,
        } => {
            let t: Task = client.call_as(Request::TaskCreate(CreateTask {
                rings,
                gate,
                force,
                package,
                software,
                version,
                to,
                all,
                uninstall,
                at: at.and_then(|a| a.0),
                window,
                name,
            }))?;
            warn(&t);
            let head = format!("created task {}", t.id);
            emit(out, &Headed { head, value: &t }, json)
        }
        TaskCmd::List { json } => {
            let list: Vec<Task> = client.call_as(Request::TaskList)?;
            emit(out, &list, json)
        }
        TaskCmd::Show {
            id,
            dest: Some(name),
            json,
        } => {
            let d: TaskDestination = client.call_as(Request::TaskDestination { id, name })?;
            emit(out, &d, json)
        }
        TaskCmd::Plan {
            package,
            to,
            all,
            uninstall,
            at,
            window,
            force,
            json,
        } => {
            let p: crate::model::Plan = client.call_as(Request::TaskPlan(CreateTask {
                package: Some(package),
                to,
                all,
                uninstall,
                at: at.and_then(|a| a.0),
                window,
                force,
                ..CreateTask::default()
            }))?;
            emit(out, &p, json)
        }
        TaskCmd::Wait { id, timeout, json } => {
            super::wait::wait(client, id, timeout.and_then(|t| t.0), json, out)
        }
        TaskCmd::Pause { id, json } => {
            let t: Task = client.call_as(Request::TaskPause { id })?;
            let line = format!(
                "paused task {} '{}': waiting work is held (courier task resume {})",
                t.id, t.name, t.id
            );
            emit(out, &Done { line, value: &t }, json)
        }
        TaskCmd::Resume { id, json } => {
            let t: Task = client.call_as(Request::TaskResume { id })?;
            let line = format!("resumed task {} '{}'", t.id, t.name);
            emit(out, &Done { line, value: &t }, json)
        }
        TaskCmd::Log { id, dest, json } => {
            let d: TaskDestination = client.call_as(Request::TaskDestination {
                id,
                name: dest.clone(),
            })?;
            let Some(log) = d.log else {
                anyhow::bail!(
                    "task {id} on {dest} has no installer log: one is kept when a Windows Installer (msiexec) command fails"
                );
            };
            if json {
                let v = serde_json::json!({
                    "task": id, "destination": d.name, "attempt": d.attempt, "log": log,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                write!(out, "{log}")?;
                if !log.ends_with('\n') {
                    writeln!(out)?;
                }
            }
            Ok(())
        }
        TaskCmd::Show {
            id,
            dest: None,
            json,
        } => {
            let t: Task = client.call_as(Request::TaskShow { id })?;
            emit(out, &t, json)
        }
        TaskCmd::Edit {
            id,
            to,
            package,
            json,
        } => {
            let req = match package {
                Some(package) => Request::TaskEditPackage { id, package },
                None => Request::TaskEditDestinations { id, to },
            };
            let t: Task = client.call_as(req)?;
            emit(out, &t, json)
        }
        TaskCmd::Copy { id, to, name, json } => {
            let to = (!to.is_empty()).then_some(to);
            let t: Task = client.call_as(Request::TaskCopy { id, to, name })?;
            warn(&t);
            let head = format!("created task {} (copy of {id})", t.id);
            emit(out, &Headed { head, value: &t }, json)
        }
        TaskCmd::Rerun { id, all, json } => {
            let t: Task = client.call_as(Request::TaskRerun {
                id,
                all,
                only: None,
            })?;
            emit(out, &t, json)
        }
        TaskCmd::Rm { id, json } => {
            let t: Task = client.call_as(Request::TaskRm { id })?;
            let line = format!("deleted task {} '{}'", t.id, t.name);
            emit(out, &Done { line, value: &t }, json)
        }
    }
}

/// A new task's warnings go to stderr in both output forms, so that JSON on
/// stdout stays one document and a script still sees them.
fn warn(t: &Task) {
    for w in &t.warnings {
        eprintln!("courier: warning: {w}");
    }
}

pub(super) fn status(client: &mut Client, json: bool, out: &mut dyn Write) -> Result<()> {
    let s: Status = client.call_as(Request::Status)?;
    emit(out, &s, json)
}

pub(super) fn log(client: &mut Client, args: LogArgs, out: &mut dyn Write) -> Result<()> {
    const PAGE: u32 = 1000;
    let mut last = 0;
    let fetch = |client: &mut Client, after: i64, tail: Option<u32>| -> Result<Vec<Event>> {
        client.call_as(Request::Events {
            after,
            limit: PAGE,
            tail,
        })
    };
    if let Some(n) = args.lines {
        for e in fetch(client, 0, Some(n))? {
            emit(out, &e, args.json)?;
            last = e.id;
        }
    } else {
        // Page by page, so a long log is never one huge reply.
        loop {
            let page = fetch(client, last, None)?;
            for e in &page {
                emit(out, e, args.json)?;
                last = e.id;
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
    }
    if !args.follow {
        return Ok(());
    }
    loop {
        out.flush()?;
        std::thread::sleep(std::time::Duration::from_millis(300));
        for e in fetch(client, last, None)? {
            emit(out, &e, args.json)?;
            last = e.id;
        }
    }
}

pub(super) fn triage(client: &mut Client, json: bool, out: &mut dyn Write) -> Result<()> {
    let failures: Vec<crate::model::Failure> = client.call_as(Request::Failures)?;
    let groups = crate::model::group_failures(failures);
    emit(out, &groups, json)
}
