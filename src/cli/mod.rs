//! Argument parsing and output: the scriptable face of courier.
//!
//! Invariant: this module decides nothing. It turns arguments into service
//! requests and results into text or JSON; rules live in `service`.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use serde::Serialize;

mod args;
mod roles;

pub use args::Cli;
use args::{Command, DestCmd, LogArgs, PackageCmd, TaskCmd, TokenCmd};

use crate::api::{Client, Request};
use crate::clock::Clock;
use crate::datadir::DataDir;
use crate::model::{Destination, Event, Kind, Package, Task, Token};
use crate::service::{AddPackage, CreateTask, EditPackage, Service, human_size};

/// Entry point of the binary: runs the command, prints errors as one line,
/// maps outcomes to exit codes (0 ok, 1 error, 2 usage).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if !e.use_stderr() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                // --help, --version, or a bare `courier task`: the help is
                // the useful answer.
                let _ = e.print();
                return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
            }
            eprintln!("courier: {}", one_line_usage_error(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("courier: {msg}");
            ExitCode::from(1)
        }
    }
}

/// A clap usage error as one line: what is wrong, then the usage of the
/// command it concerns.
fn one_line_usage_error(rendered: &str) -> String {
    let mut what = Vec::new();
    let mut usage = None;
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u.to_string());
        } else if line.starts_with("For more information") || line.starts_with("tip:") {
            continue;
        } else {
            what.push(line.strip_prefix("error: ").unwrap_or(line).to_string());
        }
    }
    match usage {
        Some(u) => format!("{} (usage: {u})", what.join(" ")),
        None => format!("{} (see courier --help)", what.join(" ")),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                == Some(io::ErrorKind::BrokenPipe)
    })
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let command = match cli.command {
        None => {
            roles::console(cli.data, cli.theme, cli.read_only)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Serve(args)) => {
            roles::serve(cli.data, args)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Agent(args)) => {
            roles::agent(cli.data, args)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Demo(args)) => {
            roles::demo(args, cli.theme, cli.read_only)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(c) => c,
    };
    let data = DataDir::open(DataDir::resolve(cli.data)?)?;
    let socket = data.socket_path();
    let mut client = Client::connect(&socket, move || {
        let mut svc = Service::open(data, Clock::from_env()).context("cannot open the data dir")?;
        // With no server running, the retention rules are applied here,
        // so what is listed is what a server would still hold.
        svc.apply_retention()?;
        Ok(svc)
    })?;
    let mut out = io::stdout().lock();
    match command {
        Command::Package(cmd) => package(&mut client, cmd, &mut out)?,
        Command::Token(cmd) => token(&mut client, cmd, &mut out)?,
        Command::Dest(cmd) => dest(&mut client, cmd, &mut out)?,
        Command::Task(cmd) => task(&mut client, cmd, &mut out)?,
        Command::Log(args) => log(&mut client, args, &mut out)?,
        Command::Status { json } => {
            let s: crate::model::Status = client.call_as(Request::Status)?;
            if json {
                print_json(&mut out, &s)?;
            } else {
                match &s.listen {
                    Some(l) => writeln!(out, "server     running, agents connect to {l}")?,
                    None => writeln!(
                        out,
                        "server     not running for this data dir (courier serve)"
                    )?,
                }
                writeln!(
                    out,
                    "agents     {} online, {} offline, {} pending, {} in all",
                    s.online, s.offline, s.pending, s.total
                )?;
                writeln!(
                    out,
                    "tasks      {} running, {} destinations at work",
                    s.running_tasks, s.unfinished
                )?;
                if s.listen.is_some() {
                    writeln!(out, "served     {} since start", human_size(s.bytes_served))?;
                }
            }
        }
        Command::Serve(_) | Command::Agent(_) | Command::Demo(_) => {}
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn package(client: &mut Client, cmd: PackageCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        PackageCmd::Add { file, meta, json } => {
            // The server may run in another directory: send an absolute path.
            let path = std::path::absolute(&file).unwrap_or(file);
            let p: Package = client.call_as(Request::PackageAdd(AddPackage {
                path,
                name: meta.name,
                version: meta.version,
                kind: meta.kind,
                install_command: meta.install_command,
                uninstall_command: meta.uninstall_command,
                folder: meta.folder,
                success_codes: meta.success_codes.map(|c| c.0),
            }))?;
            if json {
                print_json(out, &p)
            } else {
                writeln!(out, "registered package {}", p.id)?;
                print_package(out, &p)
            }
        }
        PackageCmd::List { json } => {
            let list: Vec<Package> = client.call_as(Request::PackageList)?;
            if json {
                print_json(out, &list)
            } else {
                print_package_table(out, &list)
            }
        }
        PackageCmd::Show { id, json } => {
            let p: Package = client.call_as(Request::PackageShow { id })?;
            if json {
                print_json(out, &p)
            } else {
                print_package(out, &p)
            }
        }
        PackageCmd::Edit { id, meta, json } => {
            let p: Package = client.call_as(Request::PackageEdit {
                id,
                edit: EditPackage {
                    name: meta.name,
                    version: meta.version,
                    kind: meta.kind,
                    install_command: meta.install_command,
                    uninstall_command: meta.uninstall_command,
                    folder: meta.folder,
                    success_codes: meta.success_codes.map(|c| c.0),
                },
            })?;
            if json {
                print_json(out, &p)
            } else {
                print_package(out, &p)
            }
        }
        PackageCmd::Rm { id, json } => {
            let p: Package = client.call_as(Request::PackageRm { id })?;
            if json {
                print_json(out, &p)
            } else {
                writeln!(out, "deleted package {} '{}'", p.id, p.name)?;
                Ok(())
            }
        }
    }
}

fn token(client: &mut Client, cmd: TokenCmd, out: &mut impl Write) -> Result<()> {
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
            if json {
                return print_json(out, &t);
            }
            writeln!(out, "{}", t.token.as_deref().unwrap_or(""))?;
            eprintln!(
                "token {}: {}{}; on each destination run: courier agent --server HOST:PORT --token TOKEN",
                t.id,
                match &t.expires_at {
                    Some(e) => format!("valid until {e}"),
                    None => "never expires".into(),
                },
                if t.auto_approve {
                    ", agents approved at once"
                } else {
                    ", agents wait for 'courier dest approve'"
                }
            );
            Ok(())
        }
        TokenCmd::List { json } => {
            let list: Vec<Token> = client.call_as(Request::TokenList)?;
            if json {
                return print_json(out, &list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        if t.revoked {
                            "revoked".into()
                        } else {
                            "active".into()
                        },
                        t.expires_at.clone().unwrap_or_else(|| "never".into()),
                        if t.auto_approve {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        t.uses.to_string(),
                    ]
                })
                .collect();
            print_table(
                out,
                &["ID", "STATE", "EXPIRES", "AUTO-APPROVE", "USES"],
                &rows,
            )
        }
        TokenCmd::Revoke { id, json } => {
            let t: Token = client.call_as(Request::TokenRevoke { id })?;
            if json {
                print_json(out, &t)
            } else {
                writeln!(out, "revoked token {}", t.id)?;
                Ok(())
            }
        }
    }
}

fn dest(client: &mut Client, cmd: DestCmd, out: &mut impl Write) -> Result<()> {
    let (d, json): (Destination, bool) = match cmd {
        DestCmd::List { json } => {
            let list: Vec<Destination> = client.call_as(Request::DestList)?;
            if json {
                return print_json(out, &list);
            }
            if list.is_empty() {
                writeln!(
                    out,
                    "no destinations (enrol agents with a token: courier token create)"
                )?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        d.status.clone(),
                        d.os.clone().unwrap_or_default(),
                        d.last_seen.clone().unwrap_or_else(|| "-".into()),
                        d.running_work.to_string(),
                    ]
                })
                .collect();
            return print_table(out, &["NAME", "STATUS", "OS", "LAST SEEN", "WORK"], &rows);
        }
        DestCmd::Show { name, json } => (client.call_as(Request::DestShow { name })?, json),
        DestCmd::Approve { name, json } => (client.call_as(Request::DestApprove { name })?, json),
        DestCmd::Reject { name, json } => (client.call_as(Request::DestReject { name })?, json),
        DestCmd::Rm { name, json } => {
            let d: Destination = client.call_as(Request::DestRm { name })?;
            if json {
                return print_json(out, &d);
            }
            writeln!(out, "deleted destination {}", d.name)?;
            return Ok(());
        }
        DestCmd::Move {
            name,
            server,
            token,
            json,
        } => (
            client.call_as(Request::DestMove {
                name,
                server,
                token,
            })?,
            json,
        ),
    };
    if json {
        return print_json(out, &d);
    }
    let rows = [
        ("name", d.name.clone()),
        ("status", d.status.clone()),
        ("os", d.os.clone().unwrap_or_default()),
        ("hostname", d.hostname.clone().unwrap_or_default()),
        ("agent", d.agent_version.clone().unwrap_or_default()),
        (
            "last seen",
            d.last_seen.clone().unwrap_or_else(|| "-".into()),
        ),
        ("enrolled", d.enrolled_at.clone()),
        ("unfinished", d.running_work.to_string()),
    ];
    for (k, v) in rows {
        writeln!(out, "{k:<11} {v}")?;
    }
    Ok(())
}

fn task(client: &mut Client, cmd: TaskCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        TaskCmd::Create {
            package,
            to,
            all,
            uninstall,
            at,
            window,
            name,
            json,
        } => {
            let t: Task = client.call_as(Request::TaskCreate(CreateTask {
                package,
                to,
                all,
                uninstall,
                at,
                window,
                name,
            }))?;
            for w in &t.warnings {
                eprintln!("courier: warning: {w}");
            }
            if json {
                print_json(out, &t)
            } else {
                writeln!(out, "created task {}", t.id)?;
                print_task(out, &t)
            }
        }
        TaskCmd::List { json } => {
            let list: Vec<Task> = client.call_as(Request::TaskList)?;
            if json {
                return print_json(out, &list);
            }
            if list.is_empty() {
                writeln!(
                    out,
                    "no tasks (create one with: courier task create --package ID --to NAME)"
                )?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    let c = &t.counts;
                    vec![
                        t.id.to_string(),
                        t.name.clone(),
                        t.kind.clone(),
                        t.status.clone(),
                        format!(
                            "{} ok, {} failed, {} running, {} waiting",
                            c.succeeded,
                            c.failed,
                            c.transferring + c.installing,
                            c.waiting
                        ),
                    ]
                })
                .collect();
            print_table(
                out,
                &["ID", "NAME", "TYPE", "STATUS", "DESTINATIONS"],
                &rows,
            )
        }
        TaskCmd::Show { id, json } => {
            let t: Task = client.call_as(Request::TaskShow { id })?;
            if json {
                print_json(out, &t)
            } else {
                print_task(out, &t)
            }
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
            if json {
                print_json(out, &t)
            } else {
                print_task(out, &t)
            }
        }
        TaskCmd::Copy { id, to, name, json } => {
            let to = (!to.is_empty()).then_some(to);
            let t: Task = client.call_as(Request::TaskCopy { id, to, name })?;
            for w in &t.warnings {
                eprintln!("courier: warning: {w}");
            }
            if json {
                print_json(out, &t)
            } else {
                writeln!(out, "created task {} (copy of {id})", t.id)?;
                print_task(out, &t)
            }
        }
        TaskCmd::Rerun { id, all, json } => {
            let t: Task = client.call_as(Request::TaskRerun {
                id,
                all,
                only: None,
            })?;
            if json {
                print_json(out, &t)
            } else {
                print_task(out, &t)
            }
        }
        TaskCmd::Rm { id, json } => {
            let t: Task = client.call_as(Request::TaskRm { id })?;
            if json {
                print_json(out, &t)
            } else {
                writeln!(out, "deleted task {} '{}'", t.id, t.name)?;
                Ok(())
            }
        }
    }
}

fn print_task(out: &mut impl Write, t: &Task) -> Result<()> {
    writeln!(
        out,
        "task {} '{}': {} of package {} '{}', {}",
        t.id,
        t.name,
        t.kind,
        t.package
            .map(|p| p.to_string())
            .unwrap_or_else(|| "(deleted)".into()),
        t.package_name,
        t.status
    )?;
    if let Some(s) = &t.start_at {
        writeln!(out, "starts {s}")?;
    }
    let rows: Vec<Vec<String>> = t
        .destinations
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                d.status.clone(),
                d.attempt.to_string(),
                d.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                [d.meaning.clone(), d.message.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" — "),
            ]
        })
        .collect();
    print_table(
        out,
        &["DESTINATION", "STATUS", "ATTEMPT", "EXIT", "MESSAGE"],
        &rows,
    )?;
    for d in t.destinations.iter().filter(|d| d.status == "failed") {
        if let Some(o) = d.output.as_deref().filter(|o| !o.trim().is_empty()) {
            writeln!(out, "\n--- output of {} (last lines) ---", d.name)?;
            let lines: Vec<&str> = o.lines().collect();
            for l in &lines[lines.len().saturating_sub(20)..] {
                writeln!(out, "{l}")?;
            }
        }
    }
    Ok(())
}

fn print_json<T: Serialize>(out: &mut impl Write, v: &T) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

fn print_package(out: &mut impl Write, p: &Package) -> Result<()> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut rows: Vec<(&str, String)> = vec![
        ("id", p.id.to_string()),
        ("name", p.name.clone()),
        ("version", opt(&p.version)),
        ("kind", p.kind.as_str().into()),
        ("format", p.format.clone()),
        ("file", p.file_name.clone()),
        ("size", format!("{} ({} bytes)", human_size(p.size), p.size)),
    ];
    if let Some(u) = p.unzipped_size {
        rows.push((
            "unzipped",
            format!("{} in {} files", human_size(u), p.entries.unwrap_or(0)),
        ));
    }
    if let Some(i) = &p.installer {
        rows.push(("installer", i.clone()));
    }
    if let Some(c) = &p.product_code {
        rows.push(("product code", c.clone()));
    }
    rows.extend([
        ("install", opt(&p.install_command)),
        ("uninstall", opt(&p.uninstall_command)),
        ("folder", opt(&p.folder)),
        (
            "success codes",
            p.success_codes
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("blake3", p.hash.clone()),
        ("sha256", p.sha256.clone()),
        ("registered", p.created_at.clone()),
        ("updated", p.updated_at.clone()),
    ]);
    for (k, v) in rows {
        writeln!(out, "{k:<14} {v}")?;
    }
    Ok(())
}

/// Prints rows as left-aligned columns sized to their content.
fn print_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, (c, w)) in cells.into_iter().zip(&widths).enumerate() {
            if i == last {
                s.push_str(&c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s
    };
    writeln!(
        out,
        "{}",
        line(header.iter().map(|h| h.to_string()).collect())
    )?;
    for r in rows {
        writeln!(out, "{}", line(r.clone()))?;
    }
    Ok(())
}

fn print_package_table(out: &mut impl Write, list: &[Package]) -> Result<()> {
    if list.is_empty() {
        writeln!(
            out,
            "no packages (register one with: courier package add FILE)"
        )?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            let action = match p.kind {
                Kind::Install => p.install_command.clone().unwrap_or_default(),
                Kind::File => format!("→ {}", p.folder.as_deref().unwrap_or("")),
            };
            vec![
                p.id.to_string(),
                p.name.clone(),
                p.version.clone().unwrap_or_else(|| "-".into()),
                p.kind.as_str().into(),
                p.format.clone(),
                human_size(p.size),
                action,
            ]
        })
        .collect();
    print_table(
        out,
        &[
            "ID",
            "NAME",
            "VERSION",
            "KIND",
            "FORMAT",
            "SIZE",
            "COMMAND / FOLDER",
        ],
        &rows,
    )
}

fn print_event(out: &mut impl Write, e: &Event, json: bool) -> Result<()> {
    if json {
        serde_json::to_writer(&mut *out, e)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}  {:<5}  {:<16}  {:<12}  {}",
            e.at,
            e.level.as_str(),
            e.kind,
            e.subject,
            e.message
        )?;
    }
    Ok(())
}

fn log(client: &mut Client, args: LogArgs, out: &mut impl Write) -> Result<()> {
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
            print_event(out, &e, args.json)?;
            last = e.id;
        }
    } else {
        loop {
            let page = fetch(client, last, None)?;
            for e in &page {
                print_event(out, e, args.json)?;
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
            print_event(out, &e, args.json)?;
            last = e.id;
        }
    }
}
