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
mod truth;
mod wait;

use args::Command;
pub use args::{AgentCli, Cli};
use commands::with_client;
use render::Failure;

/// Entry point of the binary: runs the command, prints errors as one line
/// (a JSON object under `--json`), maps outcomes to exit codes (0 ok,
/// 1 error, 2 usage).
pub fn main() -> ExitCode {
    finish(Cli::try_parse().and_then(console_flags_alone), run)
}

/// Entry point of the `courier-agent` binary: `courier agent` alone, with
/// the same arguments, parsing, errors and exit codes. It reaches no server
/// or console code, so a build of it carries none.
pub fn agent_main() -> ExitCode {
    finish(AgentCli::try_parse(), |c| roles::agent(c.data, c.agent))
}

/// Runs a parsed command line, or answers a usage error: the one place
/// where outcomes become messages and exit codes, for both binaries.
fn finish<T>(parsed: Result<T, clap::Error>, run: impl FnOnce(T) -> Result<()>) -> ExitCode {
    let json = json_requested(std::env::args_os());
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let rendered = e.render().to_string();
            if !e.use_stderr() {
                // --help, --version: the answer itself.
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                if !json {
                    // A bare `courier task`: the help is the useful answer.
                    let _ = e.print();
                } else {
                    let what = match usage_of(&rendered) {
                        Some(u) => format!("a command is missing (usage: {u})"),
                        None => "a command is missing (see courier --help)".into(),
                    };
                    render::failure(Failure::Usage, &what, json);
                }
                return ExitCode::from(2);
            }
            render::failure(Failure::Usage, &one_line_usage_error(&rendered), json);
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            // The kind the server gave, or the one it would give to the
            // same fault (I/O and database: internal; else refused).
            let kind = crate::api::ApiError::from_anyhow(&e).kind;
            render::failure(Failure::Api(kind), &msg, json);
            ExitCode::from(1)
        }
    }
}

/// Whether errors should be JSON: `--json` anywhere before a `--`, read
/// from the raw arguments so that a command line clap refuses is answered
/// in the form asked for too.
fn json_requested(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// `--listen` before a command is the console's: refused with another
/// command (`courier serve` has its own), where it would be ignored.
fn console_flags_alone(cli: Cli) -> Result<Cli, clap::Error> {
    if let (Some(addr), Some(_)) = (cli.listen, &cli.command) {
        use clap::CommandFactory as _;
        return Err(Cli::command().error(
            clap::error::ErrorKind::ArgumentConflict,
            format!(
                "--listen {addr} before a command is the console's; \
                 for the server say courier serve --listen {addr}"
            ),
        ));
    }
    Ok(cli)
}

/// A clap usage error as one line: what is wrong, then the usage of the
/// command it concerns.
fn one_line_usage_error(rendered: &str) -> String {
    let mut what = Vec::new();
    let usage = usage_of(rendered);
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let said_elsewhere = ["Usage: ", "For more information", "tip:"];
        if !said_elsewhere.iter().any(|p| line.starts_with(p)) {
            what.push(line.strip_prefix("error: ").unwrap_or(line).to_string());
        }
    }
    match usage {
        Some(u) => format!("{} (usage: {u})", what.join(" ")),
        None => format!("{} (see courier --help)", what.join(" ")),
    }
}

/// The usage line of a clap message, without its label.
fn usage_of(rendered: &str) -> Option<String> {
    rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(str::to_string)
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
        listen,
        command,
    } = cli;
    match command {
        None => roles::console(data, theme, read_only, listen),
        Some(Command::Serve(args)) => roles::serve(data, args),
        Some(Command::Agent(args)) => roles::agent(data, args),
        Some(Command::Demo(args)) => roles::demo(data, args, theme, read_only),
        Some(Command::Package(cmd)) => with_client(data, |c, out| commands::package(c, cmd, out)),
        Some(Command::Token(cmd)) => with_client(data, |c, out| commands::token(c, cmd, out)),
        Some(Command::Dest(cmd)) => with_client(data, |c, out| commands::dest(c, cmd, out)),
        Some(Command::Software(cmd)) => with_client(data, |c, out| commands::software(c, cmd, out)),
        Some(Command::Policy(cmd)) => with_client(data, |c, out| commands::policy(c, cmd, out)),
        Some(Command::Task(cmd)) => with_client(data, |c, out| commands::task(c, cmd, out)),
        Some(Command::Log(args)) => with_client(data, |c, out| commands::log(c, args, out)),
        Some(Command::Triage { json }) => {
            with_client(data, |c, out| commands::triage(c, json, out))
        }
        Some(Command::Status { json }) => {
            with_client(data, |c, out| commands::status(c, json, out))
        }
    }
}
