//! The Windows agent for real: `courier.exe`, built from this source for
//! `x86_64-pc-windows-gnu` by `dist/build-windows.sh`, run under Wine
//! against a Linux `courier serve` on loopback, installing real MSIs with
//! the prefix's own msiexec.
//!
//! Skipped, saying so, only where Wine is not installed; `.ci/run`
//! installs it and sets `COURIER_REQUIRE_WINE`, so CI always runs them.
//! The build is incremental: the first run builds the Windows standard
//! library and the crate (minutes), later runs reuse them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::procs::{DEADLINE, Server, create_task, dest, tail, task_id, wait_until};
use crate::support::fixture;

/// `wine`, when installed.
fn wine() -> Option<PathBuf> {
    ["/usr/bin/wine", "/usr/bin/wine64", "/usr/lib/wine/wine64"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The Windows build of courier, built once per test run, or the one
/// `COURIER_WINDOWS_EXE` names.
fn courier_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        // A build made elsewhere (another profile, a real Windows build).
        if let Some(exe) = std::env::var_os("COURIER_WINDOWS_EXE") {
            return PathBuf::from(exe);
        }
        build_windows(&[])
    })
}

/// Runs `dist/build-windows.sh ARGS` and returns the path it printed last.
fn build_windows(args: &[&str]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/build-windows.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dist/build-windows.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dist/build-windows.sh {args:?} failed ({}):\n{}\n{}",
        out.status,
        tail_text(&stdout, 4000),
        tail_text(&String::from_utf8_lossy(&out.stderr), 8000)
    );
    let exe = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    assert!(
        exe.is_file(),
        "dist/build-windows.sh printed no exe: {stdout}"
    );
    exe
}

fn tail_text(s: &str, max: usize) -> &str {
    let start = s.len().saturating_sub(max);
    let start = (start..s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0);
    &s[start..]
}

/// Says why a test does not run here, or gives Wine's path.
macro_rules! need_wine {
    () => {
        match wine() {
            Some(w) => w,
            None => {
                assert!(
                    std::env::var_os("COURIER_REQUIRE_WINE").is_none(),
                    "Wine is not installed and COURIER_REQUIRE_WINE is set (.ci/run installs it)"
                );
                eprintln!("skipped: Wine is not installed (apt-get install wine64; .ci/run does)");
                return;
            }
        }
    };
}

/// A Wine prefix of its own, made with `wineboot`, its processes stopped
/// when dropped.
pub struct Prefix {
    wine: PathBuf,
    dir: tempfile::TempDir,
}

impl Prefix {
    fn new(wine: PathBuf) -> Prefix {
        let p = Prefix {
            wine,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let out = p.command("wineboot").arg("-i").output().expect("wineboot");
        assert!(out.status.success(), "wineboot -i failed: {out:?}");
        p
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("prefix")
    }

    /// A program run in this prefix: `wine PROGRAM`.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(&self.wine);
        c.arg(program)
            .env("WINEPREFIX", self.path())
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .stdin(Stdio::null());
        c
    }

    /// The Linux path of `C:\…` in this prefix.
    fn c_drive(&self, windows_path: &str) -> PathBuf {
        let rel = windows_path
            .trim_start_matches("C:\\")
            .trim_start_matches("c:\\")
            .replace('\\', "/");
        self.path().join("drive_c").join(rel)
    }

    /// `reg query KEY`: whether the key exists.
    fn has_key(&self, key: &str) -> bool {
        self.command("reg")
            .args(["query", key])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// `courier.exe ARGS` in the prefix, waited for.
    fn courier(&self, args: &[&str]) -> Output {
        self.command(courier_exe())
            .args(args)
            .output()
            .expect("wine courier.exe")
    }

    /// Keeps the prefix's services running until dropped. Wine ends its
    /// services (services.exe and what it started) as soon as no other
    /// Windows program runs in the prefix; Windows keeps them running for
    /// as long as it is up. A `cmd` waiting on a pipe stands in for the
    /// rest of the system.
    fn keep_services_up(&self) -> Keeper {
        Keeper(
            self.command("cmd")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("wine cmd"),
        )
    }

    /// `cmd /c …` in the prefix.
    fn run(&self, args: &[&str]) -> Output {
        self.command("cmd")
            .arg("/c")
            .args(args)
            .output()
            .expect("wine cmd")
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = Command::new("wineserver")
            .arg("-k")
            .env("WINEPREFIX", self.path())
            .status();
    }
}

pub struct Keeper(Child);

impl Drop for Keeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `courier.exe agent` under Wine, its data in `C:\courier agent` (a space
/// in every path the agent builds: its cache, the package it hands to
/// msiexec, the MSI log).
pub struct WineAgent<'p> {
    prefix: &'p Prefix,
    name: String,
    child: Option<Child>,
}

const AGENT_DATA: &str = "C:\\courier agent";

impl<'p> WineAgent<'p> {
    fn enrolled(
        prefix: &'p Prefix,
        server: &str,
        token: &str,
        name: &str,
        extra: &[&str],
    ) -> WineAgent<'p> {
        let stderr = fs::File::create(prefix.dir.path().join("agent.stderr")).expect("stderr");
        let child = prefix
            .command(courier_exe())
            .args([
                "--data", AGENT_DATA, "agent", "--server", server, "--token", token,
            ])
            .args(["--name", name])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn wine courier.exe agent");
        let mut a = WineAgent {
            prefix,
            name: name.to_string(),
            child: Some(child),
        };
        let identity = prefix.c_drive(AGENT_DATA).join("identity.json");
        let child = a.child.as_mut().expect("child");
        let exited = wait_until(
            DEADLINE,
            "the Windows agent to enrol",
            || {
                if identity.exists() {
                    return Some(None);
                }
                child.try_wait().ok().flatten().map(Some)
            },
            || a_diagnostics(prefix),
        );
        if let Some(status) = exited {
            panic!(
                "courier.exe agent exited ({status}) instead of enrolling\n{}",
                a_diagnostics(prefix)
            );
        }
        a
    }
}

/// Prints the agent's side when the test fails while it is alive.
struct Diagnose<'p>(&'p Prefix);

impl Drop for Diagnose<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", a_diagnostics(self.0));
        }
    }
}

fn a_diagnostics(prefix: &Prefix) -> String {
    format!(
        "--- courier.exe stderr ---\n{}\n--- agent.log (end) ---\n{}",
        tail(&prefix.dir.path().join("agent.stderr"), 4096),
        tail(&prefix.c_drive(AGENT_DATA).join("agent.log"), 8192)
    )
}

impl Drop for WineAgent<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("agent {}:\n{}", self.name, a_diagnostics(self.prefix));
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Registers `file` on the server with more `package add` flags.
fn add(s: &Server, file: &Path, extra: &[&str]) -> Value {
    let path = file.display().to_string();
    let mut args = vec!["package", "add", path.as_str()];
    args.extend_from_slice(extra);
    args.push("--json");
    s.json(&args)
}

const HELLO_CODE: &str = "{6F1C2B9A-3D4E-4F50-8A61-7B2C3D4E5F60}";
/// Where a 32-bit per-machine MSI such as hello.msi is registered on
/// 64-bit Windows (and in a 64-bit Wine prefix): the 32-bit registry view.
const UNINSTALL_KEY: &str =
    "HKLM\\Software\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall";

#[test]
fn installers_install_uninstall_and_fail_as_on_windows() {
    let wine = need_wine!();
    courier_exe();
    let prefix = Prefix::new(wine);
    let s = Server::start();
    let (_, token) = s.token(true);
    let agent = WineAgent::enrolled(&prefix, &s.addr, &token, "win-1", &[]);
    let d = s.wait_dest("win-1", "online", &[]);
    assert_eq!(d["os"], "windows", "{d:#}");

    // Install: the MSI's file lands and its ProductCode is registered.
    let hello = add(&s, &fixture("hello.msi"), &[]);
    let t = create_task(&s, &hello, "win-1", &[]);
    let t = s.wait_task_finished(task_id(&t), &[]);
    let row = dest(&t, "win-1");
    assert_eq!(
        row["status"],
        "succeeded",
        "{t:#}\n{}",
        a_diagnostics(&prefix)
    );
    assert_eq!(row["exit_code"], 0);
    let installed = prefix.c_drive("C:\\Program Files (x86)\\Courier Hello\\hello.txt");
    assert!(installed.is_file(), "{} missing", installed.display());
    let key = format!("{UNINSTALL_KEY}\\{HELLO_CODE}");
    assert!(prefix.has_key(&key), "{key} not registered");
    // The software inventory lists it as Windows does, from the 32-bit
    // registry view, with the ProductCode that uninstalls it.
    let out = prefix.courier(&["agent", "inventory", "--json"]);
    assert!(out.status.success(), "inventory: {out:?}");
    let programs: Value = serde_json::from_slice(&out.stdout).expect("inventory JSON");
    let hello_row = programs
        .as_array()
        .expect("a list")
        .iter()
        .find(|p| p["product_code"] == HELLO_CODE)
        .unwrap_or_else(|| panic!("{HELLO_CODE} not in the inventory: {programs:#}"));
    assert_eq!(hello_row["name"], "Courier Hello", "{hello_row:#}");
    assert_eq!(hello_row["version"], "1.2.3", "{hello_row:#}");
    assert_eq!(hello_row["publisher"], "Courier Tests", "{hello_row:#}");
    assert_eq!(hello_row["view"], "32-bit", "{hello_row:#}");
    // The agent kept msiexec's verbose log.
    let log = prefix
        .c_drive(AGENT_DATA)
        .join(format!("msi-logs/task-{}.log", task_id(&t)));
    assert!(log.is_file(), "no MSI log at {}", log.display());

    // Uninstall by ProductCode: both gone.
    let u = create_task(&s, &hello, "win-1", &["--uninstall"]);
    let u = s.wait_task_finished(task_id(&u), &[]);
    assert_eq!(dest(&u, "win-1")["status"], "succeeded", "{u:#}");
    assert!(!installed.exists(), "{} still there", installed.display());
    assert!(!prefix.has_key(&key), "{key} still registered");
    let out = prefix.courier(&["agent", "inventory", "--json"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(HELLO_CODE),
        "still in the inventory after uninstalling"
    );

    // A refused MSI: 1603 with its meaning, the full code as Windows gives
    // it to the agent (not Wine's 8-bit view of it).
    let refuses = add(&s, &fixture("refuses.msi"), &[]);
    let f = create_task(&s, &refuses, "win-1", &[]);
    let f = s.wait_task_finished(task_id(&f), &[]);
    let row = dest(&f, "win-1");
    assert_eq!(row["status"], "failed", "{f:#}");
    assert_eq!(row["exit_code"], 1603, "{f:#}");
    assert!(
        row["meaning"]
            .as_str()
            .unwrap_or("")
            .contains("fatal error during installation"),
        "{f:#}"
    );
    // Told once in the text view, not as meaning and message both.
    let text = s.ok(&["task", "show", &task_id(&f).to_string()]);
    assert_eq!(
        text.matches("fatal error during installation").count(),
        1,
        "{text}"
    );

    // A custom action that fails after the files are copied: rolled back,
    // nothing left, and the code with its meaning. Windows says 1603 here;
    // Wine says 1627, function failed.
    let fails = add(&s, &fixture("fails.msi"), &[]);
    let f = create_task(&s, &fails, "win-1", &[]);
    let f = s.wait_task_finished(task_id(&f), &[]);
    let row = dest(&f, "win-1");
    assert_eq!(row["status"], "failed", "{f:#}");
    assert!(
        row["exit_code"] == 1603 || row["exit_code"] == 1627,
        "{f:#}"
    );
    assert!(
        row["meaning"]
            .as_str()
            .is_some_and(|m| m.contains("fatal error") || m.contains("custom action")),
        "{f:#}"
    );
    let rolled_back = prefix.c_drive("C:\\Program Files (x86)\\Courier Fails\\hello.txt");
    assert!(
        !rolled_back.exists(),
        "not rolled back: {}",
        rolled_back.display()
    );

    // An EXE with its silent command: the NSIS installer puts its file in
    // the %TEMP% of the account the agent runs as. (A 64-bit one: this
    // Wine has no 32-bit support, and a 32-bit installer ends at once
    // there, with 0 and nothing done.)
    let exe = add(
        &s,
        &fixture("hello-nsis64.exe"),
        &["--install-command", "hello-nsis64.exe /S"],
    );
    let e = create_task(&s, &exe, "win-1", &[]);
    let e = s.wait_task_finished(task_id(&e), &[]);
    let row = dest(&e, "win-1");
    assert_eq!(row["status"], "succeeded", "{e:#}");
    assert_eq!(row["exit_code"], 0, "{e:#}");
    let users = prefix.c_drive("C:\\users");
    let placed = fs::read_dir(&users)
        .expect("C:\\users")
        .filter_map(|u| u.ok())
        .map(|u| u.path().join("Temp/courier-hello-nsis64/hello.txt"))
        .find(|p| p.is_file());
    assert!(placed.is_some(), "the NSIS installer placed nothing");
    drop(agent);
}

#[test]
fn files_are_distributed_into_a_windows_folder() {
    let wine = need_wine!();
    courier_exe();
    let prefix = Prefix::new(wine);
    let s = Server::start();
    let (_, token) = s.token(true);
    let _agent = WineAgent::enrolled(&prefix, &s.addr, &token, "win-2", &[]);
    let pkg = add(
        &s,
        &fixture("hello.txt"),
        &["--folder", "C:\\courier-dist\\notes"],
    );
    let t = create_task(&s, &pkg, "win-2", &[]);
    let t = s.wait_task_finished(task_id(&t), &[]);
    assert_eq!(
        dest(&t, "win-2")["status"],
        "succeeded",
        "{t:#}\n{}",
        a_diagnostics(&prefix)
    );
    let placed = prefix.c_drive("C:\\courier-dist\\notes\\hello.txt");
    assert_eq!(
        fs::read(&placed).unwrap_or_default(),
        fs::read(fixture("hello.txt")).unwrap()
    );
    let listing = prefix.run(&["dir", "C:\\courier-dist\\notes"]);
    assert!(String::from_utf8_lossy(&listing.stdout).contains("hello.txt"));

    // Replaced: the new file gets the old one's owner, group and DACL.
    // Upstream Wine keeps no ACLs, only Unix modes: it turns a DACL it is
    // given into a mode (0775 for any DACL of a file it owns) and a file it
    // creates gets 0644. So what can be seen here is that the old file's
    // descriptor was applied to the new one, not how faithfully.
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let fresh = mode(&placed);
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("hello.txt");
    fs::write(&newer, "a newer hello\n").unwrap();
    let other = dir.path().join("other.txt");
    fs::write(&other, "another file\n").unwrap();
    for file in [&newer, &other] {
        let pkg = add(&s, file, &["--folder", "C:\\courier-dist\\notes"]);
        let t = create_task(&s, &pkg, "win-2", &[]);
        let t = s.wait_task_finished(task_id(&t), &[]);
        assert_eq!(dest(&t, "win-2")["status"], "succeeded", "{t:#}");
    }
    assert_eq!(fs::read_to_string(&placed).unwrap(), "a newer hello\n");
    assert_ne!(
        mode(&placed),
        fresh,
        "the replaced file did not get the old file's security descriptor"
    );
    // A new file is left to inherit: nothing set on it.
    assert_eq!(mode(&placed.with_file_name("other.txt")), fresh);
    // The agent's data dir was given an access list of its own (SYSTEM,
    // Administrators, the agent's account), where a folder the agent makes
    // for a distribution is left to inherit; again Wine can only show that
    // it differs.
    assert_ne!(
        mode(&prefix.c_drive(AGENT_DATA)),
        mode(&prefix.c_drive("C:\\courier-dist")),
        "the data dir has no access list of its own"
    );
}

/// A ZIP of `files` at `path`.
fn zip_of(path: &Path, files: &[(&str, &str)]) {
    crate::support::make_zip(
        path,
        &files
            .iter()
            .map(|(n, t)| (*n, t.as_bytes()))
            .collect::<Vec<_>>(),
    );
}

/// Bytes in a file, 0 when it is not there.
fn size_of_file(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn a_timeout_stops_the_installer_and_its_child() {
    let wine = need_wine!();
    courier_exe();
    let prefix = Prefix::new(wine);
    let s = Server::start();
    let (_, token) = s.token(true);
    let mut agent = WineAgent::enrolled(
        &prefix,
        &s.addr,
        &token,
        "win-3",
        &["--command-timeout", "8"],
    );
    // The installer starts a child that ticks into a file every second or
    // so, then waits far past the timeout itself. Both are in a folder
    // whose name has a space, which the command quotes as an admin would.
    let zip = s.input("slow.zip");
    zip_of(
        &zip,
        &[
            (
                "slow setup/install.cmd",
                "@echo off\r\necho installing\r\nstart \"\" /b cmd /c \"%~dp0child.cmd\"\r\nping -n 120 127.0.0.1 >nul\r\n",
            ),
            (
                "slow setup/child.cmd",
                "@echo off\r\nif not exist C:\\courier-ticks mkdir C:\\courier-ticks\r\n:loop\r\necho tick>>C:\\courier-ticks\\ticks.txt\r\nping -n 2 127.0.0.1 >nul\r\ngoto loop\r\n",
            ),
        ],
    );
    let pkg = add(
        &s,
        &zip,
        &["--install-command", "\"slow setup\\install.cmd\""],
    );
    let t = create_task(&s, &pkg, "win-3", &[]);
    let t = s.wait_task_finished(task_id(&t), &[]);
    let row = dest(&t, "win-3");
    assert_eq!(row["status"], "failed", "{t:#}\n{}", a_diagnostics(&prefix));
    let message = row["message"].as_str().unwrap_or("");
    assert!(message.contains("8 s"), "{t:#}");
    let ticks = prefix.c_drive("C:\\courier-ticks\\ticks.txt");
    assert!(
        size_of_file(&ticks) > 0,
        "the child never ran: {t:#}\n{}",
        a_diagnostics(&prefix)
    );
    // Killed with the installer: the file stops growing.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after_kill = size_of_file(&ticks);
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(
        size_of_file(&ticks),
        after_kill,
        "the installer's child outlived the timeout"
    );

    // The agent itself dies half-way through the same install: the Job
    // Object goes with its last handle, and everything in it with it.
    fs::remove_file(&ticks).unwrap();
    let again = create_task(&s, &pkg, "win-3", &[]);
    wait_until(
        DEADLINE,
        "the installer's child to tick again",
        || (size_of_file(&ticks) > 0).then_some(()),
        || {
            let id = task_id(&again).to_string();
            format!(
                "{:#}\n{}",
                s.json(&["task", "show", &id, "--json"]),
                a_diagnostics(&prefix)
            )
        },
    );
    if let Some(mut c) = agent.child.take() {
        c.kill().expect("kill the agent");
        c.wait().expect("reap the agent");
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after_death = size_of_file(&ticks);
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(
        size_of_file(&ticks),
        after_death,
        "the installer's child outlived the agent"
    );
}

/// `sc query courier-agent`: its state word (RUNNING, STOPPED…), or None
/// when there is no such service.
fn service_state(prefix: &Prefix) -> Option<String> {
    let out = prefix
        .command("sc")
        .args(["query", "courier-agent"])
        .output()
        .expect("wine sc query");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.trim_start().starts_with("STATE"))?;
    line.split_whitespace().last().map(str::to_string)
}

fn wait_service_state(prefix: &Prefix, want: &str) {
    wait_until(
        DEADLINE,
        &format!("the service to be {want}"),
        || (service_state(prefix).as_deref() == Some(want)).then_some(()),
        || format!("{:?}\n{}", service_state(prefix), a_diagnostics(prefix)),
    );
}

#[test]
fn the_agent_runs_as_a_windows_service() {
    let wine = need_wine!();
    courier_exe();
    let prefix = Prefix::new(wine);
    let _diagnose = Diagnose(&prefix);
    let _up = prefix.keep_services_up();
    let s = Server::start();
    let (_, token) = s.token(true);
    let out = prefix.courier(&[
        "--data",
        AGENT_DATA,
        "agent",
        "install-service",
        "--server",
        &s.addr,
        "--token",
        &token,
        "--name",
        "win-svc",
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "install-service: {out:?}\n{}",
        a_diagnostics(&prefix)
    );
    assert!(said.contains("as win-svc"), "{said}");
    wait_service_state(&prefix, "RUNNING");
    s.wait_dest("win-svc", "online", &[]);

    let deliver = |name: &str| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        fs::write(&file, name).unwrap();
        let pkg = add(&s, &file, &["--folder", "C:\\courier-dist\\svc"]);
        let t = create_task(&s, &pkg, "win-svc", &[]);
        let t = s.wait_task_finished(task_id(&t), &[]);
        assert_eq!(
            dest(&t, "win-svc")["status"],
            "succeeded",
            "{t:#}\n{}",
            a_diagnostics(&prefix)
        );
        assert!(prefix.c_drive("C:\\courier-dist\\svc").join(name).is_file());
    };
    deliver("first.txt");

    // Stopped and started by the Service Control Manager, as `sc` does.
    let stop = prefix
        .command("sc")
        .args(["stop", "courier-agent"])
        .output();
    assert!(stop.is_ok_and(|o| o.status.success()), "sc stop failed");
    wait_service_state(&prefix, "STOPPED");
    let start = prefix
        .command("sc")
        .args(["start", "courier-agent"])
        .output();
    assert!(start.is_ok_and(|o| o.status.success()), "sc start failed");
    wait_service_state(&prefix, "RUNNING");
    deliver("second.txt");

    // A second install is refused, saying why, and changes nothing.
    let again = prefix.courier(&[
        "--data",
        AGENT_DATA,
        "agent",
        "install-service",
        "--server",
        &s.addr,
        "--token",
        &token,
    ]);
    assert!(!again.status.success());
    let why = String::from_utf8_lossy(&again.stderr);
    assert!(why.contains("installed already"), "{why}");
    assert_eq!(service_state(&prefix).as_deref(), Some("RUNNING"));

    let out = prefix.courier(&["agent", "uninstall-service"]);
    assert!(out.status.success(), "uninstall-service: {out:?}");
    assert_eq!(service_state(&prefix), None, "still registered");
    let out = prefix.courier(&["agent", "uninstall-service"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not installed"));
}

/// `courier.exe --data DIR ARGS --json` in the prefix, parsed.
fn windows_json(prefix: &Prefix, data: &str, args: &[&str]) -> Value {
    let mut all = vec!["--data", data];
    all.extend_from_slice(args);
    all.push("--json");
    let out = prefix.courier(&all);
    assert!(
        out.status.success(),
        "courier.exe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("courier.exe {args:?}: not JSON ({e})"))
}

#[test]
fn server_commands_and_agent_all_run_on_windows() {
    let wine = need_wine!();
    courier_exe();
    let prefix = Prefix::new(wine);
    let _diagnose = Diagnose(&prefix);
    const SERVER_DATA: &str = "C:\\courier server";
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let stderr = fs::File::create(prefix.dir.path().join("server.stderr")).unwrap();
    let mut server = Keeper(
        prefix
            .command(courier_exe())
            .args(["--data", SERVER_DATA, "serve", "--listen", &addr])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("wine courier.exe serve"),
    );
    let said = prefix.dir.path().join("server.stderr");
    wait_until(
        DEADLINE,
        "the Windows server to announce its admin pipe",
        || {
            let text = fs::read_to_string(&said).unwrap_or_default();
            if let Ok(Some(status)) = server.0.try_wait() {
                panic!("courier.exe serve exited ({status}): {text}");
            }
            text.contains(r"\\.\pipe\courier-").then_some(())
        },
        || fs::read_to_string(&said).unwrap_or_default(),
    );

    // The admin commands, over the pipe, and an agent of the same server.
    let token = windows_json(&prefix, SERVER_DATA, &["token", "create", "--auto-approve"]);
    let token = token["token"].as_str().expect("token").to_string();
    let _agent = WineAgent::enrolled(&prefix, &addr, &token, "win-all", &[]);
    let msi = format!("Z:{}", fixture("hello.msi").display()).replace('/', "\\");
    let pkg = windows_json(&prefix, SERVER_DATA, &["package", "add", &msi]);
    assert_eq!(pkg["format"], "msi", "{pkg:#}");
    let id = pkg["id"].to_string();
    windows_json(
        &prefix,
        SERVER_DATA,
        &["task", "create", "--package", &id, "--to", "win-all"],
    );
    let done = wait_until(
        DEADLINE,
        "the task to finish on the Windows server",
        || {
            let t = windows_json(&prefix, SERVER_DATA, &["task", "show", "1"]);
            (t["status"] != "running" && t["status"] != "waiting").then_some(t)
        },
        || fs::read_to_string(&said).unwrap_or_default(),
    );
    assert_eq!(done["status"], "completed", "{done:#}");
    assert!(
        prefix
            .c_drive("C:\\Program Files (x86)\\Courier Hello\\hello.txt")
            .is_file()
    );
    drop(server);
}

#[test]
fn the_unit_tests_pass_on_windows() {
    let wine = need_wine!();
    let tests = build_windows(&["--lib-tests"]);
    let prefix = Prefix::new(wine);
    let out = prefix
        .command(&tests)
        .args(["--test-threads", "2"])
        .output()
        .expect("wine: the unit tests");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "unit tests failed on Windows:\n{}\n{}",
        tail_text(&said, 8000),
        tail_text(&String::from_utf8_lossy(&out.stderr), 4000)
    );
    // The Windows-only ones among them ran.
    assert!(
        said.contains("admin_pipe_is_named_after_the_data_dir ... ok"),
        "{said}"
    );
}
