//! Argument parsing and output: the scriptable face of courier.
//!
//! Invariant: this module decides nothing. It turns arguments into service
//! requests and results into text or JSON; rules live in `service`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::model::{Event, Kind, Package};
use crate::service::{self, AddPackage, EditPackage, Service, human_size};

#[derive(Parser, Debug)]
#[command(
    name = "courier",
    version,
    about = "Distribute software packages to agents and follow every destination",
    arg_required_else_help = true
)]
pub struct Cli {
    /// Data dir (database, content store); default $XDG_DATA_HOME/courier
    #[arg(long, global = true, env = "COURIER_DATA", value_name = "DIR")]
    data: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Register, list, edit and delete packages
    #[command(subcommand)]
    Package(PackageCmd),
    /// Show the event log
    Log(LogArgs),
}

#[derive(Subcommand, Debug)]
enum PackageCmd {
    /// Register a file (MSI, EXE, ZIP or any file) as a package
    Add {
        /// The file to register (at most 1 GiB; a ZIP at most 2 GiB unzipped)
        file: PathBuf,
        #[command(flatten)]
        meta: MetaArgs,
        #[arg(long)]
        json: bool,
    },
    /// List packages
    #[command(alias = "ls")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one package
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Change a package's metadata (its content never changes)
    Edit {
        id: i64,
        #[command(flatten)]
        meta: MetaArgs,
        #[arg(long)]
        json: bool,
    },
    /// Delete a package no unfinished task uses
    #[command(alias = "remove")]
    Rm {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct MetaArgs {
    /// Display name (default: the MSI's ProductName, else the file name)
    #[arg(long)]
    name: Option<String>,
    /// Version (default: the MSI's ProductVersion)
    #[arg(long)]
    version: Option<String>,
    /// install: run an installer; file: place the file(s) in --folder
    #[arg(long, value_parser = parse_kind)]
    kind: Option<Kind>,
    /// Silent install command, run in the unpacked package
    #[arg(long, value_name = "CMD")]
    install_command: Option<String>,
    /// Uninstall command (set automatically for an MSI)
    #[arg(long, value_name = "CMD")]
    uninstall_command: Option<String>,
    /// Destination folder (required for file distribution)
    #[arg(long, value_name = "DIR")]
    folder: Option<String>,
    /// Exit codes that count as success, comma-separated (default 0,3010,1641)
    #[arg(long, value_name = "CODES", value_parser = parse_codes)]
    success_codes: Option<Codes>,
}

#[derive(Args, Debug)]
struct LogArgs {
    /// Keep printing new events as they happen
    #[arg(long, short)]
    follow: bool,
    /// Only the last N events
    #[arg(long, short = 'n', value_name = "N")]
    lines: Option<u32>,
    /// One JSON object per line
    #[arg(long)]
    json: bool,
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| format!("'{s}' is not a kind (install or file)"))
}

/// Exit codes as one comma-separated argument.
#[derive(Debug, Clone)]
struct Codes(Vec<i64>);

fn parse_codes(s: &str) -> Result<Codes, String> {
    s.split(',')
        .map(|c| {
            let c = c.trim();
            c.parse::<i64>()
                .map_err(|_| format!("'{c}' is not an exit code"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Codes)
}

/// Entry point of the binary: runs the command, prints errors as one line,
/// maps outcomes to exit codes (0 ok, 1 error, 2 usage).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
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

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let Some(command) = cli.command else {
        bail!("the console is not available in this build: use a subcommand (courier --help)");
    };
    let mut svc = service::open_default(cli.data)?;
    let mut out = io::stdout().lock();
    match command {
        Command::Package(cmd) => package(&mut svc, cmd, &mut out)?,
        Command::Log(args) => log(&svc, args, &mut out)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn package(svc: &mut Service, cmd: PackageCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        PackageCmd::Add { file, meta, json } => {
            let p = svc.add_package(AddPackage {
                path: file,
                name: meta.name,
                version: meta.version,
                kind: meta.kind,
                install_command: meta.install_command,
                uninstall_command: meta.uninstall_command,
                folder: meta.folder,
                success_codes: meta.success_codes.map(|c| c.0),
            })?;
            if json {
                print_json(out, &p)
            } else {
                writeln!(out, "registered package {}", p.id)?;
                print_package(out, &p)
            }
        }
        PackageCmd::List { json } => {
            let list = svc.packages()?;
            if json {
                print_json(out, &list)
            } else {
                print_package_table(out, &list)
            }
        }
        PackageCmd::Show { id, json } => {
            let p = svc.package(id)?;
            if json {
                print_json(out, &p)
            } else {
                print_package(out, &p)
            }
        }
        PackageCmd::Edit { id, meta, json } => {
            let p = svc.edit_package(
                id,
                EditPackage {
                    name: meta.name,
                    version: meta.version,
                    kind: meta.kind,
                    install_command: meta.install_command,
                    uninstall_command: meta.uninstall_command,
                    folder: meta.folder,
                    success_codes: meta.success_codes.map(|c| c.0),
                },
            )?;
            if json {
                print_json(out, &p)
            } else {
                print_package(out, &p)
            }
        }
        PackageCmd::Rm { id, json } => {
            let p = svc.remove_package(id)?;
            if json {
                print_json(out, &p)
            } else {
                writeln!(out, "deleted package {} '{}'", p.id, p.name)?;
                Ok(())
            }
        }
    }
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

fn log(svc: &Service, args: LogArgs, out: &mut impl Write) -> Result<()> {
    const PAGE: u32 = 1000;
    let mut last = 0;
    if let Some(n) = args.lines {
        for e in svc.events_tail(n)? {
            print_event(out, &e, args.json)?;
            last = e.id;
        }
    } else {
        loop {
            let page = svc.events_since(last, PAGE)?;
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
        for e in svc.events_since(last, PAGE)? {
            print_event(out, &e, args.json)?;
            last = e.id;
        }
    }
}
