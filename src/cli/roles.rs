//! The long-running roles: server, agent, demo and console. Each gets its
//! settings (flags over `courier.toml` over defaults), a log file in its
//! data dir, and a clean stop when the system asks (SIGINT or SIGTERM on
//! Unix, Ctrl-C, Ctrl-Break or console close on Windows).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use super::args::{AgentArgs, AgentCmd, AgentRunArgs, DemoArgs, ServeArgs};
use crate::agent::runtime::AgentConfig;
use crate::config::{ConfigFile, ServerConfig, parse_rate};
use crate::datadir::DataDir;

/// Opens the console on the data dir, attached to its server or running one.
pub(super) fn console(
    data: Option<PathBuf>,
    theme: Option<String>,
    read_only: bool,
    listen: Option<SocketAddr>,
) -> Result<()> {
    let data = DataDir::open(DataDir::resolve(data)?)?;
    let file = config_file(&data)?;
    let flags = ServeArgs {
        listen,
        ..ServeArgs::default()
    };
    // A standalone console serves quietly: its screen is the terminal.
    let serve = crate::server::Options {
        announce: false,
        ..serve_options(flags, &file.server)?
    };
    init_logging(&data.log_dir().join("console.log"))?;
    crate::console::run(crate::console::ConsoleOptions {
        data,
        theme: theme.or(file.console.theme),
        read_only,
        serve,
    })
}

pub(super) fn serve(data: Option<PathBuf>, flags: ServeArgs) -> Result<()> {
    let data = DataDir::open(DataDir::resolve(data)?)?;
    let opts = serve_options(flags, &config_file(&data)?.server)?;
    init_logging(&data.log_dir().join("server.log"))?;
    let rt = crate::server::runtime(None)?;
    rt.block_on(crate::server::run(data, opts, crate::shutdown::requested()))?;
    Ok(())
}

pub(super) fn agent(data: Option<PathBuf>, args: AgentArgs) -> Result<()> {
    let data = match data {
        Some(d) => d,
        None => DataDir::default_agent_root()?,
    };
    let run = match args.cmd {
        None => args.run,
        Some(AgentCmd::Inventory { json, wire }) => return inventory(json, wire),
        Some(AgentCmd::InstallService { run, no_start }) => {
            let data = std::path::absolute(&data)?;
            init_agent_logging(&data.join("agent.log"))?;
            return crate::agent::service::install(&agent_config(data, run), !no_start);
        }
        Some(AgentCmd::UninstallService) => return crate::agent::service::uninstall(),
        Some(AgentCmd::RunService { command_timeout }) => {
            init_agent_logging(&data.join("agent.log"))?;
            return crate::agent::service::run(AgentConfig {
                data,
                server: None,
                token: None,
                name: None,
                command_timeout: std::time::Duration::from_secs(command_timeout),
            });
        }
    };
    init_agent_logging(&data.join("agent.log"))?;
    let rt = crate::agent::runtime::builder().build()?;
    rt.block_on(crate::agent::runtime::run(
        agent_config(data, run),
        crate::shutdown::requested(),
    ))?;
    Ok(())
}

fn agent_config(data: PathBuf, run: AgentRunArgs) -> AgentConfig {
    AgentConfig {
        data,
        server: run.server,
        token: run.token,
        name: run.name,
        command_timeout: std::time::Duration::from_secs(run.command_timeout),
    }
}

/// `courier agent inventory`: one line per program, or JSON, or what
/// the agent sends (`--wire`: the running agent reads it from this
/// command, so the list never sits in its own memory).
fn inventory(json: bool, wire: bool) -> Result<()> {
    let programs = crate::agent::inventory::installed()?;
    let mut out = std::io::stdout().lock();
    if wire {
        let inv = crate::agent::inventory::wire(programs);
        writeln!(out, "{}", inv.digest)?;
        serde_json::to_writer(&mut out, &inv)?;
        writeln!(out)?;
        return Ok(());
    }
    if json {
        serde_json::to_writer_pretty(&mut out, &programs)?;
        writeln!(out)?;
        return Ok(());
    }
    for p in &programs {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            p.name,
            p.version.as_deref().unwrap_or("-"),
            p.publisher.as_deref().unwrap_or("-"),
            p.product_code.as_deref().unwrap_or("-"),
            p.origin()
        )?;
    }
    Ok(())
}

pub(super) fn demo(
    data: Option<PathBuf>,
    args: DemoArgs,
    theme: Option<String>,
    read_only: bool,
) -> Result<()> {
    // Given a data dir (--data or COURIER_DATA), the demo keeps it; its
    // courier.toml may say where to listen.
    let kept = match data {
        Some(dir) => {
            let data = DataDir::open(std::path::absolute(&dir)?)?;
            let file = config_file(&data)?;
            let listen = if file.server.listen.is_some() {
                Some(serve_options(ServeArgs::default(), &file.server)?.listen)
            } else {
                None
            };
            Some(crate::demo::Kept { data, listen })
        }
        None => None,
    };
    crate::demo::run(crate::demo::DemoOptions {
        agents: args.agents,
        theme,
        read_only,
        headless: args.headless,
        kept,
    })
}

fn config_file(data: &DataDir) -> Result<ConfigFile> {
    ConfigFile::load(&data.root().join("courier.toml"))
}

/// Server settings: flags first, then `courier.toml`, then defaults.
fn serve_options(flags: ServeArgs, file: &ServerConfig) -> Result<crate::server::Options> {
    let listen = match (flags.listen, file.listen.as_deref()) {
        (Some(l), _) => l,
        (None, Some(l)) => l
            .parse()
            .map_err(|_| anyhow!("courier.toml: listen '{l}' is not ADDR:PORT"))?,
        (None, None) => SocketAddr::from(([0, 0, 0, 0], 7443)),
    };
    let bandwidth = match (flags.bandwidth, file.bandwidth.as_deref()) {
        (Some(b), _) => Some(b),
        (None, Some(b)) => Some(parse_rate(b).map_err(|e| anyhow!("courier.toml: {e}"))?),
        (None, None) => None,
    };
    Ok(crate::server::Options {
        listen,
        max_transfers: flags.max_transfers.or(file.max_transfers),
        bandwidth,
        max_polls: flags.max_polls.or(file.max_polls),
        checkin_secs: match flags.checkin_secs.or(file.checkin_secs) {
            None => 30,
            Some(s @ 1..=3600) => s,
            Some(s) => bail!("courier.toml: checkin_secs {s}: expected 1 to 3600 seconds"),
        },
        stall_secs: match flags.stall_secs.or(file.stall_secs) {
            None => crate::task::stuck::STALL_SECS as u64,
            Some(s @ 1..=86400) => s,
            Some(s) => bail!("courier.toml: stall_secs {s}: expected 1 to 86400 seconds"),
        },
        announce: true,
    })
}

/// Logs of long-running roles go to a file in their data dir; the terminal
/// gets only what an operator must see. `COURIER_LOG` filters them
/// (`EnvFilter`'s syntax; default `info`).
fn init_logging(file: &Path) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COURIER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(open_log(file)?))
        .try_init();
    Ok(())
}

/// The agent's log: as [`init_logging`], but `COURIER_LOG` is read as
/// targets and levels only (`info`, `courier=debug,hyper=warn`), which
/// needs no regular-expression engine: the agent alone (`courier-agent`)
/// then carries none, a few hundred KiB less to map on every destination.
fn init_agent_logging(file: &Path) -> Result<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = std::env::var("COURIER_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing_subscriber::filter::LevelFilter::INFO)
        });
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(open_log(file)?));
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
    Ok(())
}

fn open_log(file: &Path) -> Result<std::fs::File> {
    if let Some(dir) = file.parent() {
        crate::datadir::create_private_dir(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("{}: cannot open log", file.display()))
}
