//! The scriptable face of courier: parses the command line, runs one
//! command, prints its reply as text or `--json`, and maps the outcome to an
//! exit code.
//!
//! `args` has the clap definitions, `roles` starts the long-running roles,
//! `commands` turns the admin commands into `api::Request`s and `render`
//! prints every reply.
//!
//! Invariant: this module decides nothing. It turns arguments into service
//! requests and results into text or JSON; rules live in `service`.

use std::io;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

mod args;
mod commands;
mod render;
mod roles;

pub use args::Cli;
use args::Command;
use commands::with_client;

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
        Ok(()) => ExitCode::SUCCESS,
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

/// A closed stdout (`courier … | head`) ends the command quietly rather than
/// as a failure: the reader has what it wanted.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                == Some(io::ErrorKind::BrokenPipe)
    })
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let Cli {
        data,
        theme,
        read_only,
        command,
    } = cli;
    match command {
        None => roles::console(data, theme, read_only),
        Some(Command::Serve(args)) => roles::serve(data, args),
        Some(Command::Agent(args)) => roles::agent(data, args),
        Some(Command::Demo(args)) => roles::demo(args, theme, read_only),
        Some(Command::Package(cmd)) => with_client(data, |c, out| commands::package(c, cmd, out)),
        Some(Command::Token(cmd)) => with_client(data, |c, out| commands::token(c, cmd, out)),
        Some(Command::Dest(cmd)) => with_client(data, |c, out| commands::dest(c, cmd, out)),
        Some(Command::Task(cmd)) => with_client(data, |c, out| commands::task(c, cmd, out)),
        Some(Command::Log(args)) => with_client(data, |c, out| commands::log(c, args, out)),
        Some(Command::Status { json }) => {
            with_client(data, |c, out| commands::status(c, json, out))
        }
    }
}
