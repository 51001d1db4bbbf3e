//! `courier demo`: the whole flow in seconds: a server in this process,
//! real agents as child processes, sample packages and tasks (one failing
//! for a visible reason), and the console. On a throwaway data dir, or on
//! the one given with `--data`, which is kept (and reopened as it was by
//! the next demo on it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

use crate::api::{AddPackage, CreateTask};
use crate::api::{Client, Request};
use crate::datadir::DataDir;
use crate::model::{Package, Token};
use crate::server::{InProcess, Options};
use crate::task::TaskStatus;

/// Bytes of the MSI built by `tests/fixtures/build.sh`, so the demo shows
/// real MSI detection.
const HELLO_MSI: &[u8] = include_bytes!("../tests/fixtures/hello.msi");

/// Agents and the demo's files, cleaned up however the demo ends.
struct Demo {
    /// The agents' data dirs, the sample packages, the agents' logs.
    root: PathBuf,
    /// Whether `root` (and the server's data dir in it) is removed at the
    /// end: not when the admin gave the data dir.
    throwaway: bool,
    agents: Vec<Child>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        for a in &mut self.agents {
            let _ = a.kill();
            let _ = a.wait();
        }
        if self.throwaway {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// A data dir the admin gave the demo: kept afterwards.
pub struct Kept {
    pub data: DataDir,
    /// `listen` of its `courier.toml`, if set.
    pub listen: Option<std::net::SocketAddr>,
}

pub struct DemoOptions {
    pub agents: usize,
    pub theme: Option<String>,
    pub read_only: bool,
    /// Keep the console closed: set everything up, wait for the tasks to
    /// finish, print a summary (used by tests and scripts).
    pub headless: bool,
    /// The data dir to use and keep; None for a throwaway one.
    pub kept: Option<Kept>,
}

pub fn run(opts: DemoOptions) -> Result<()> {
    let (mut demo, data, listen) = match &opts.kept {
        None => {
            let root = std::env::temp_dir().join(format!("courier-demo-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            crate::datadir::create_private_dir(&root)?;
            let data = DataDir::open(root.join("server"))?;
            (Demo::at(root, true), data, None)
        }
        Some(kept) => {
            let root = kept.data.root().join("demo");
            crate::datadir::create_private_dir(&root)?;
            (Demo::at(root, false), kept.data.clone(), kept.listen)
        }
    };
    let root = demo.root.clone();
    let server = InProcess::start(
        data.clone(),
        Options {
            listen: listen.unwrap_or(([127, 0, 0, 1], 0).into()),
            max_transfers: None,
            bandwidth: None,
            max_polls: None,
            checkin_secs: 30,
            stall_secs: crate::task::stuck::STALL_SECS as u64,
            announce: false,
        },
    )
    .with_context(|| format!("the demo's server on {}", data.root().display()))?;
    if opts.kept.is_some() && listen.is_none() {
        // The agents enrolled here know the server by this address: the
        // next demo (or console) on this data dir listens there again.
        pin_listen(&data, server.addr)?;
    }
    let mut client = Client::connect(&data.admin_endpoint(), || {
        anyhow::bail!("demo server not reachable")
    })?;
    // A kept data dir that already holds the demo is reopened as it is:
    // its agents come back, nothing is registered twice.
    let fresh = client
        .call_as::<Vec<Package>>(Request::PackageList { all: false })?
        .is_empty();
    let token: Token = client.call_as(Request::TokenCreate {
        ttl: Some(3600),
        auto_approve: true,
    })?;
    let token = token.token.context("token")?;
    let exe = std::env::current_exe()?;
    let names: Vec<String> = (1..=opts.agents.max(1))
        .map(|i| format!("demo-pc-{i:02}"))
        .collect();
    for name in &names {
        let dir = root.join(format!("agent-{name}"));
        let log = std::fs::File::create(root.join(format!("{name}.log")))?;
        let child = Command::new(&exe)
            .arg("--data")
            .arg(&dir)
            .args([
                "agent",
                "--server",
                &server.addr.to_string(),
                "--token",
                &token,
                "--name",
                name,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start a demo agent")?;
        demo.agents.push(child);
    }
    // Agents enrol in the background; wait until they are all known.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let dests: Vec<crate::model::Destination> = client.call_as(Request::DestList)?;
        if dests.len() >= names.len() {
            break;
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "demo agents did not enrol within 30 s (logs in {})",
                root.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if fresh {
        seed(&mut client, &root, &names)?;
    }
    if opts.headless {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let tasks: Vec<crate::model::Task> = client.call_as(Request::TaskSummaries)?;
            if tasks
                .iter()
                .all(|t| matches!(t.status, TaskStatus::Completed | TaskStatus::Failed))
            {
                let mut out = std::io::stdout().lock();
                for t in tasks {
                    writeln!(
                        out,
                        "task {} {}: {} ({} succeeded, {} failed)",
                        t.id, t.name, t.status, t.counts.succeeded, t.counts.failed
                    )?;
                }
                break;
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("demo tasks did not finish within 60 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    } else {
        let theme = crate::console::theme::Theme::choose(opts.theme.as_deref())?;
        let mut app = crate::console::app::App::new(theme, opts.read_only, "● demo".into(), false);
        app.act(crate::console::keymap::Action::ViewTasks);
        crate::console::run_attached(app, data.admin_endpoint())?;
    }
    drop(client);
    drop(server);
    drop(demo);
    if opts.kept.is_some() {
        // Not println!: the terminal may be gone, and nothing is worth a
        // panic on the way out.
        let _ = writeln!(
            std::io::stderr(),
            "courier demo: the demo's data stays in {0} (courier --data {0})",
            data.root().display()
        );
    }
    Ok(())
}

impl Demo {
    fn at(root: PathBuf, throwaway: bool) -> Demo {
        Demo {
            root,
            throwaway,
            agents: Vec::new(),
        }
    }
}

/// Writes `listen = "ADDR"` into the data dir's `courier.toml` (made for
/// it: a file with `listen` set is read instead of pinned).
fn pin_listen(data: &DataDir, addr: std::net::SocketAddr) -> Result<()> {
    let path = data.root().join("courier.toml");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    let line = format!("listen = \"{addr}\"\n");
    text = match text.find("[server]") {
        Some(at) => {
            let end = at + "[server]".len();
            format!(
                "{}\n{line}{}",
                &text[..end],
                text[end..].trim_start_matches('\n')
            )
        }
        None => format!(
            "{text}{}[server]\n{line}",
            if text.is_empty() { "" } else { "\n" }
        ),
    };
    std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))
}

/// Registers the sample packages and creates the sample tasks, once the
/// agents are known.
fn seed(client: &mut Client, root: &Path, names: &[String]) -> Result<()> {
    let pkgs = root.join("packages");
    std::fs::create_dir_all(&pkgs)?;
    let dest = root.join("distributed");
    std::fs::create_dir_all(&dest)?;
    let tool = sample_zip(
        &pkgs.join("hello-tool-2.1.zip"),
        &[
            (
                "install.sh",
                "#!/bin/sh\necho \"installing hello-tool 2.1 into $PWD\"\nsleep 1\necho 'hello-tool 2.1' > installed.marker\necho done\n",
            ),
            ("uninstall.sh", "#!/bin/sh\necho 'removing hello-tool'\n"),
            ("bin/hello", "#!/bin/sh\necho hello\n"),
        ],
    )?;
    // Fails on the second machine, as a real installer would on a machine
    // missing a prerequisite: exit 3 and a line on stderr saying why.
    let legacy = sample_zip(
        &pkgs.join("legacy-erp-client.zip"),
        &[(
            "setup.sh",
            "#!/bin/sh\ncase \"$PWD\" in\n  *demo-pc-02*) echo 'checking prerequisites…'; echo 'error: libodbc.so.2 not found: install the ODBC driver first' >&2; exit 3;;\nesac\necho 'installed legacy ERP client'\n",
        )],
    )?;
    let motd = pkgs.join("motd.txt");
    std::fs::write(&motd, "Maintenance window: Saturday 22:00-02:00\n")?;
    let msi = pkgs.join("hello.msi");
    std::fs::write(&msi, HELLO_MSI)?;

    let add = |c: &mut Client,
               path: &Path,
               cmd: Option<&str>,
               un: Option<&str>,
               folder: Option<&Path>|
     -> Result<Package> {
        c.call_as(Request::PackageAdd(AddPackage {
            path: path.to_path_buf(),
            install_command: cmd.map(str::to_string),
            uninstall_command: un.map(str::to_string),
            folder: folder.map(|f| f.display().to_string()),
            ..AddPackage::default()
        }))
    };
    let p_tool = add(
        client,
        &tool,
        Some("sh install.sh"),
        Some("sh uninstall.sh"),
        None,
    )?;
    let p_legacy = add(client, &legacy, Some("sh setup.sh"), None, None)?;
    let p_motd = add(client, &motd, None, None, Some(&dest))?;
    let p_msi = add(client, &msi, None, None, None)?;

    // Forced: the MSI's task is one the pre-flight knows will fail on a
    // Linux agent; the demo shows how such a failure reads in triage.
    let task = |c: &mut Client, package: i64, to: Vec<String>, name: &str| -> Result<()> {
        c.call(Request::TaskCreate(CreateTask {
            package: Some(package),
            to,
            name: Some(name.to_string()),
            force: true,
            ..CreateTask::default()
        }))?;
        Ok(())
    };
    task(client, p_tool.id, names.to_vec(), "Roll out hello-tool 2.1")?;
    task(
        client,
        p_legacy.id,
        names.to_vec(),
        "Install legacy ERP client",
    )?;
    task(
        client,
        p_motd.id,
        names.to_vec(),
        "Distribute message of the day",
    )?;
    task(
        client,
        p_msi.id,
        names[..1].to_vec(),
        "Install Courier Hello (MSI)",
    )?;

    Ok(())
}

/// Writes a ZIP of text files (scripts marked executable).
fn sample_zip(path: &Path, files: &[(&str, &str)]) -> Result<PathBuf> {
    let f = std::fs::File::create(path)?;
    let mut w = zip::ZipWriter::new(f);
    for (name, body) in files {
        let mode = if body.starts_with("#!") { 0o755 } else { 0o644 };
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(mode);
        w.start_file(*name, opts)?;
        w.write_all(body.as_bytes())?;
    }
    w.finish()?;
    Ok(path.to_path_buf())
}
