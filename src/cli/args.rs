//! The command line as clap sees it: every command, flag and value parser.
//! Help texts here are the user-facing documentation of each flag.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::model::Kind;

#[derive(Parser, Debug)]
#[command(
    name = "courier",
    version,
    about = "Distribute software packages to agents and follow every destination",
    long_about = "Distribute software packages to agents and follow every destination.\n\n\
        Without a command, opens the console on the data dir: attached to the \
        'courier serve' running for it, or running the server itself (standalone)."
)]
pub struct Cli {
    #[cfg_attr(
        not(windows),
        doc = "Data dir (database, content store); default $XDG_DATA_HOME/courier"
    )]
    #[cfg_attr(
        windows,
        doc = "Data dir (database, content store); default %ProgramData%\\courier"
    )]
    #[arg(long, global = true, env = "COURIER_DATA", value_name = "DIR")]
    pub(super) data: Option<PathBuf>,

    /// Console theme: default, light, high-contrast, mono, or a file's name
    /// in ~/.config/courier/themes [default: mono under NO_COLOR]
    #[arg(long, global = true, value_name = "NAME")]
    pub(super) theme: Option<String>,

    /// Console: disable every action that changes something
    #[arg(long, global = true)]
    pub(super) read_only: bool,

    /// Console: where agents connect when it runs the server itself
    /// (standalone) [default: courier.toml, else 0.0.0.0:7443]
    #[arg(long, value_name = "ADDR")]
    pub(super) listen: Option<std::net::SocketAddr>,

    #[command(subcommand)]
    pub(super) command: Option<Command>,
}

/// The `courier-agent` binary: `courier agent`'s arguments and subcommands,
/// with `--data`, in a program that carries no server or console.
#[derive(Parser, Debug)]
#[command(
    name = "courier-agent",
    version,
    about = "The courier agent alone: enrols, long-polls for work, downloads, installs, reports",
    long_about = "The courier agent alone: the same arguments as 'courier agent', \
        in a program that carries no server or console (less memory on a destination)."
)]
pub struct AgentCli {
    #[cfg_attr(
        not(windows),
        doc = "The agent's data dir; default $XDG_DATA_HOME/courier-agent"
    )]
    #[cfg_attr(
        windows,
        doc = "The agent's data dir; default %ProgramData%\\courier\\agent"
    )]
    #[arg(long, global = true, env = "COURIER_DATA", value_name = "DIR")]
    pub(super) data: Option<PathBuf>,

    #[command(flatten)]
    pub(super) agent: AgentArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server: agent listener, admin socket, scheduler
    Serve(ServeArgs),
    /// Run the agent on a destination computer (--data is the agent's own)
    Agent(AgentArgs),
    /// Try courier: a server, local agents, sample packages and tasks (one
    /// failing for a visible reason), in the console; on a throwaway data
    /// dir unless --data gives one, which is kept
    Demo(DemoArgs),
    /// Register, list, edit and delete packages
    #[command(subcommand)]
    Package(PackageCmd),
    /// Enrolment tokens for agents
    #[command(subcommand)]
    Token(TokenCmd),
    /// Destinations (computers running the agent)
    #[command(subcommand, alias = "dests")]
    Dest(DestCmd),
    /// Tasks: install, distribute or uninstall a package on destinations
    #[command(subcommand)]
    Task(TaskCmd),
    /// Software the destinations' agents report installed
    #[command(subcommand)]
    Software(SoftwareCmd),
    /// Security policies: software every destination must or must not
    /// have, enforced by automatic countermeasure tasks
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Failed destinations of every task grouped by cause, with the ones
    /// detection found installed despite their exit code
    Triage {
        #[arg(long)]
        json: bool,
    },
    /// Show the event log
    Log(LogArgs),
    /// Is a server running for the data dir, agents and work in progress
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address agents connect to [default: 0.0.0.0:7443]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Content transfers served at once; the others wait their turn
    #[arg(long, value_name = "N")]
    pub max_transfers: Option<usize>,
    /// Bandwidth for all content together, e.g. 100MiB/s
    #[arg(long, value_name = "RATE", value_parser = parse_rate_arg)]
    pub bandwidth: Option<u64>,
    /// Long-polls held open at once [default: from the open-file limit];
    /// agents past it check in every --checkin-secs instead
    #[arg(long, value_name = "N")]
    pub max_polls: Option<usize>,
    /// Mean seconds between check-ins of agents without a held poll
    /// (jittered by a third) [default: 30]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub checkin_secs: Option<u64>,
    /// Seconds a transfer may go without progress before it is flagged
    /// stuck [default: 300]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub stall_secs: Option<u64>,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub cmd: Option<AgentCmd>,
    #[command(flatten)]
    pub run: AgentRunArgs,
}

/// How the agent enrols and runs.
#[derive(Args, Debug)]
pub struct AgentRunArgs {
    /// The server, as HOST:PORT
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<String>,
    /// Enrolment token from 'courier token create' (first start only)
    #[arg(long, env = "COURIER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Destination name (default: the host name)
    #[arg(long)]
    pub name: Option<String>,
    /// Longest an install or uninstall command may run, in seconds
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub command_timeout: u64,
}

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// Windows: enrol now, then run the agent as a service (LocalSystem,
    /// started at boot, restarted when it fails)
    InstallService {
        #[command(flatten)]
        run: AgentRunArgs,
        /// Register the service without starting it now
        #[arg(long)]
        no_start: bool,
    },
    /// Windows: stop the agent's service and remove it (its data stays)
    UninstallService,
    /// The software installed on this computer, as Windows lists it
    Inventory {
        #[arg(long)]
        json: bool,
        /// As the agent sends it: the list's digest on the first line,
        /// then the list as one line of JSON
        #[arg(long, conflicts_with = "json")]
        wire: bool,
    },
    /// What the Windows Service Control Manager starts
    #[command(hide = true)]
    RunService {
        #[arg(long, default_value_t = 3600, value_name = "SECS")]
        command_timeout: u64,
    },
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// How many local agents to start
    #[arg(long, default_value_t = 3)]
    pub agents: usize,
    /// No console: wait for the tasks and print how they ended
    #[arg(long)]
    pub headless: bool,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Add a policy: --mandatory NAME --package ID [--min-version V],
    /// --prohibited PATTERN, or --update --package ID
    #[command(group(ArgGroup::new("kind").args(["mandatory", "prohibited", "update"]).required(true)))]
    Add {
        /// A program every destination must have (its inventory name, any
        /// case); --package installs it where it lacks
        #[arg(long, value_name = "NAME")]
        mandatory: Option<String>,
        /// Programs no destination may have: a pattern on the name (any
        /// case; * and ? match any characters), uninstalled from the
        /// inventory
        #[arg(long, value_name = "PATTERN")]
        prohibited: Option<String>,
        /// An update package every destination must have (kept out of the
        /// package list, shown under policies)
        #[arg(long)]
        update: bool,
        /// The package that installs it
        #[arg(long, value_name = "ID")]
        package: Option<i64>,
        /// Below this version a mandatory program is upgraded
        #[arg(long, value_name = "V")]
        min_version: Option<String>,
        /// Enforce it: a countermeasure task acts on violations
        #[arg(long)]
        enforce: bool,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List policies with how many destinations violate each
    #[command(alias = "ls")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a policy and the destinations that violate it
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Change a policy; --enforce off deletes its countermeasure task
    Edit {
        id: i64,
        #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
        enforce: Option<bool>,
        #[arg(long)]
        name: Option<String>,
        /// The program's name (mandatory) or pattern (prohibited)
        #[arg(long, value_name = "NAME")]
        software: Option<String>,
        /// "" clears it
        #[arg(long, value_name = "V")]
        min_version: Option<String>,
        #[arg(long, value_name = "ID")]
        package: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Delete a policy and its countermeasure task
    #[command(alias = "remove")]
    Rm {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

/// `on` or `off` (also yes/no, true/false).
fn parse_on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(format!("'{s}': say on or off")),
    }
}

#[derive(Subcommand, Debug)]
pub enum SoftwareCmd {
    /// Each title across the destinations: its versions and who has each
    #[command(alias = "ls")]
    List {
        /// Only titles whose name holds this (any case)
        #[arg(long, value_name = "PATTERN")]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token; agents enrol with it
    Create {
        /// How long it can be used: 30m, 24h, 7d, or "never"
        #[arg(long, default_value = "24h", value_parser = parse_ttl)]
        ttl: Ttl,
        /// Agents enrolling with it are approved at once
        #[arg(long)]
        auto_approve: bool,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (secrets are not shown again)
    #[command(alias = "ls")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: no new agent can enrol with it
    Revoke {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DestCmd {
    /// List destinations
    #[command(alias = "ls")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one destination
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending agent
    Approve {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Reject an agent: it gets no work
    Reject {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a destination: tasks drop it (a task with no other completes)
    #[command(alias = "remove")]
    Rm {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Move a destination to another management server
    Move {
        name: String,
        /// The other server, HOST:PORT
        #[arg(long, value_name = "HOST:PORT")]
        server: String,
        /// An enrolment token of the other server
        #[arg(long)]
        token: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TaskCmd {
    /// Create a task for a package, or uninstall a program the
    /// inventories list (--uninstall --software NAME)
    #[command(group(ArgGroup::new("targets").args(["to", "all"]).required(true)))]
    #[command(group(ArgGroup::new("what").args(["package", "software"]).required(true)))]
    Create {
        /// The package to distribute (or uninstall)
        #[arg(long, value_name = "ID")]
        package: Option<i64>,
        /// Uninstall this program (its name as the inventory lists it, any
        /// case) by the command each destination's inventory reported;
        /// with --all, every destination that lists it
        #[arg(long, value_name = "NAME", requires = "uninstall")]
        software: Option<String>,
        /// Only this version of --software
        #[arg(long, value_name = "V", requires = "software")]
        version: Option<String>,
        /// Destinations, comma-separated
        #[arg(long, value_name = "NAME[,NAME…]")]
        to: Vec<String>,
        /// Every approved destination
        #[arg(long)]
        all: bool,
        /// Run the package's uninstall command instead
        #[arg(long)]
        uninstall: bool,
        /// Start time: RFC 3339, local "YYYY-MM-DD HH:MM", or "now"
        #[arg(long, value_name = "TIME", value_parser = parse_at)]
        at: Option<At>,
        /// Daily window (server time) outside which nothing new starts
        #[arg(long, value_name = "HH:MM-HH:MM")]
        window: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// Run even where the package's detection rules say it is already
        /// installed (or, uninstalling, already gone), and create it even
        /// when the pre-flight says nothing would run
        #[arg(long, conflicts_with = "software")]
        force: bool,
        /// Start the destinations in rings, one after the other: counts or
        /// percentages of all, cumulative (5,25%,100%); the last takes the
        /// rest
        #[arg(long, value_name = "SIZES", conflicts_with = "software")]
        rings: Option<String>,
        /// When the next ring may start: failures=N% or failures=N (at
        /// most that many of the started rings failed), or signature=new
        /// (no failure cause the earlier rings had not shown)
        #[arg(long, value_name = "GATE", requires = "rings")]
        gate: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Before creating a task: what it would do on each destination
    /// (online, system, free disk, already installed, window) and a summary
    #[command(group(ArgGroup::new("targets").args(["to", "all"]).required(true)))]
    Plan {
        /// The package to distribute (or uninstall)
        #[arg(long, value_name = "ID")]
        package: i64,
        /// Destinations, comma-separated
        #[arg(long, value_name = "NAME[,NAME…]")]
        to: Vec<String>,
        /// Every approved destination
        #[arg(long)]
        all: bool,
        /// Plan the package's uninstallation instead
        #[arg(long)]
        uninstall: bool,
        /// Start time: RFC 3339, local "YYYY-MM-DD HH:MM", or "now"
        #[arg(long, value_name = "TIME", value_parser = parse_at)]
        at: Option<At>,
        /// Daily window (server time) outside which nothing new starts
        #[arg(long, value_name = "HH:MM-HH:MM")]
        window: Option<String>,
        /// As `task create --force`: detection does not skip anything
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Wait until a task has finished, printing how it ended: exit 0 when
    /// every destination succeeded, 1 when one failed or time ran out
    Wait {
        id: i64,
        /// Give up after this long (30s, 10m, 2h); default: no limit
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        timeout: Option<Ttl>,
        #[arg(long)]
        json: bool,
    },
    /// Hold a task's waiting work (work under way finishes)
    Pause {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Let a paused task go on: its current ring done, the next starts
    Resume {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// List tasks
    #[command(alias = "ls")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a task with every destination's state (with their outputs up
    /// to 200 destinations), or one destination's with its output
    Show {
        id: i64,
        /// Only this destination, with the tail of its command's output
        #[arg(long, value_name = "NAME")]
        dest: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print the end of a destination's installer log (the Windows
    /// Installer's verbose log of a failed msiexec, at most 64 KiB)
    Log {
        id: i64,
        /// The destination
        dest: String,
        #[arg(long)]
        json: bool,
    },
    /// Change only the destinations, or only the package, of a task
    #[command(group(ArgGroup::new("change").args(["to", "package"]).required(true)))]
    Edit {
        id: i64,
        /// New destinations (package and schedule kept)
        #[arg(long, value_name = "NAME[,NAME…]")]
        to: Vec<String>,
        /// New package (destinations kept)
        #[arg(long, value_name = "ID")]
        package: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Copy a task: same package and schedule, same or other destinations
    Copy {
        id: i64,
        #[arg(long, value_name = "NAME[,NAME…]")]
        to: Vec<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Re-execute a task on its failed destinations
    Rerun {
        id: i64,
        /// Every finished destination, not only the failed ones
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete a task (unfinished work is cancelled on the agents first)
    #[command(alias = "remove")]
    Rm {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PackageCmd {
    /// Register a file (MSI, EXE, ZIP or any file) as a package
    Add {
        /// The file to register (at most 1 GiB; a ZIP at most 2 GiB unzipped)
        file: PathBuf,
        #[command(flatten)]
        meta: MetaArgs,
        #[arg(long)]
        json: bool,
    },
    /// List packages (update packages of update policies only with --all)
    #[command(alias = "ls")]
    List {
        /// Update packages too
        #[arg(long)]
        all: bool,
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
pub struct MetaArgs {
    /// Display name (default: the MSI's ProductName, else the file name)
    #[arg(long)]
    pub name: Option<String>,
    /// Version (default: the MSI's ProductVersion)
    #[arg(long)]
    pub version: Option<String>,
    /// install: run an installer; file: place the file(s) in --folder
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<Kind>,
    /// Silent install command, run in the unpacked package
    #[arg(long, value_name = "CMD")]
    pub install_command: Option<String>,
    /// Uninstall command (set automatically for an MSI)
    #[arg(long, value_name = "CMD")]
    pub uninstall_command: Option<String>,
    /// Destination folder (required for file distribution)
    #[arg(long, value_name = "DIR")]
    pub folder: Option<String>,
    /// Exit codes that count as success, comma-separated (default 0,3010,1641)
    #[arg(long, value_name = "CODES", value_parser = parse_codes)]
    pub success_codes: Option<Codes>,
    /// A detection rule, repeatable, all must hold when installed:
    /// msi:{PRODUCTCODE} (set for an MSI), file:PATH[>=VERSION],
    /// file:PATH#SHA256, registry:KEY\VALUE[=DATA], dpkg:NAME[>=VERSION],
    /// rpm:NAME[>=VERSION], command:CMD (exit 0). Editing replaces them;
    /// --detect '' clears them
    #[arg(long, value_name = "RULE")]
    pub detect: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LogArgs {
    /// Keep printing new events as they happen
    #[arg(long, short)]
    pub follow: bool,
    /// Only the last N events
    #[arg(long, short = 'n', value_name = "N")]
    pub lines: Option<u32>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
}

/// A token lifetime in seconds; None never expires.
#[derive(Debug, Clone, Copy)]
pub struct Ttl(pub Option<i64>);

fn parse_ttl(s: &str) -> Result<Ttl, String> {
    if s == "never" {
        return Ok(Ttl(None));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (30m, 24h, 7d, never)"))?;
    let mult = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{s}': unit must be s, m, h or d")),
    };
    if n <= 0 {
        return Err(format!("'{s}': must be positive"));
    }
    Ok(Ttl(Some(n * mult)))
}

/// A task's start: a time, or None for at once.
#[derive(Debug, Clone, Copy)]
pub struct At(pub Option<i64>);

/// `--at`: a time not in the past, or "now". A past time is refused rather
/// than read as "at once", since it is most often a typo (a wrong year or
/// day) for a time meant to come.
fn parse_at(s: &str) -> Result<At, String> {
    if s.trim().eq_ignore_ascii_case("now") {
        return Ok(At(None));
    }
    let at = crate::clock::parse_time(s)?;
    let now = crate::clock::Clock::from_env().now();
    if crate::task::rules::start_is_past(at, now) {
        return Err(format!(
            "{} is in the past (now {}): give a time to come, or --at now to start at once",
            crate::clock::rfc3339(at),
            crate::clock::rfc3339(now)
        ));
    }
    Ok(At(Some(at)))
}

fn parse_rate_arg(s: &str) -> Result<u64, String> {
    crate::config::parse_rate(s).map_err(|e| e.to_string())
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| format!("'{s}' is not a kind (install or file)"))
}

/// Exit codes as one comma-separated argument.
#[derive(Debug, Clone)]
pub struct Codes(pub Vec<i64>);

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
