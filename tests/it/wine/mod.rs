//! The Windows agent for real: `courier.exe`, built from this source for
//! `x86_64-pc-windows-gnu` by `dist/build-windows.sh`, run under Wine
//! against a Linux `courier serve` on loopback, installing real MSIs with
//! the prefix's own msiexec. `agent.rs`: installers, files, timeouts;
//! `roles.rs`: the service, the server and CLI, the unit tests.
//!
//! Skipped, saying so, only where Wine is not installed; `.ci/run`
//! installs it and sets `COURIER_REQUIRE_WINE`, so CI always runs them.
//! The build is incremental: the first run builds the Windows standard
//! library and the crate (minutes), later runs reuse them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::procs::{DEADLINE, Server, tail, wait_until};

/// `wine`, when installed.
pub fn wine() -> Option<PathBuf> {
    ["/usr/bin/wine", "/usr/bin/wine64", "/usr/lib/wine/wine64"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The Windows build of courier, built once per test run, or the one
/// `COURIER_WINDOWS_EXE` names.
pub fn courier_exe() -> &'static Path {
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
pub fn build_windows(args: &[&str]) -> PathBuf {
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

pub fn tail_text(s: &str, max: usize) -> &str {
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

mod agent;
mod roles;

/// A Wine prefix of its own, made with `wineboot`, its processes stopped
/// when dropped.
pub struct Prefix {
    wine: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Prefix {
    pub fn new(wine: PathBuf) -> Prefix {
        let p = Prefix {
            wine,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        // Setting up the prefix is not what is tested: one that hangs is
        // killed and made again, once.
        let boot = || bounded(p.command("wineboot").arg("-i"), Duration::from_secs(180));
        let out = match boot() {
            Some(out) => out,
            None => {
                p.kill_server();
                boot().expect("wineboot -i did not finish in 180 s, twice")
            }
        };
        assert!(out.status.success(), "wineboot -i failed: {out:?}");
        // Let the prefix settle: the services wineboot started end with
        // its wineserver a few seconds later. A test that starts while
        // they are ending finds a Service Control Manager on its way out.
        let mut settle = Command::new("wineserver");
        settle.arg("-w").env("WINEPREFIX", p.path());
        assert!(
            bounded(&mut settle, Duration::from_secs(60)).is_some(),
            "the prefix's wineserver did not end within 60 s of wineboot"
        );
        p
    }

    /// Stops every process of this prefix.
    fn kill_server(&self) {
        let mut kill = Command::new("wineserver");
        kill.arg("-k").env("WINEPREFIX", self.path());
        let _ = bounded(&mut kill, Duration::from_secs(30));
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("prefix")
    }

    /// A program run in this prefix: `wine PROGRAM`.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(&self.wine);
        c.arg(program)
            .env("WINEPREFIX", self.path())
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .stdin(Stdio::null());
        c
    }

    /// The Linux path of `C:\…` in this prefix.
    pub fn c_drive(&self, windows_path: &str) -> PathBuf {
        let rel = windows_path
            .trim_start_matches("C:\\")
            .trim_start_matches("c:\\")
            .replace('\\', "/");
        self.path().join("drive_c").join(rel)
    }

    /// `reg query KEY`: whether the key exists.
    pub fn has_key(&self, key: &str) -> bool {
        bounded(
            self.command("reg").args(["query", key]),
            Duration::from_secs(120),
        )
        .is_some_and(|o| o.status.success())
    }

    /// `courier.exe ARGS` in the prefix, waited for.
    pub fn courier(&self, args: &[&str]) -> Output {
        bounded(
            self.command(courier_exe()).args(args),
            Duration::from_secs(120),
        )
        .unwrap_or_else(|| panic!("courier.exe {args:?} did not finish in 120 s"))
    }

    /// Keeps the prefix's services running until dropped. Wine ends its
    /// services (services.exe and what it started) as soon as no other
    /// Windows program runs in the prefix; Windows keeps them running for
    /// as long as it is up. A `cmd` waiting on a pipe stands in for the
    /// rest of the system.
    pub fn keep_services_up(&self) -> Keeper {
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
    pub fn run(&self, args: &[&str]) -> Output {
        bounded(
            self.command("cmd").arg("/c").args(args),
            Duration::from_secs(120),
        )
        .unwrap_or_else(|| panic!("cmd /c {args:?} did not finish in 120 s"))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        self.kill_server();
    }
}

/// Runs `cmd` to its end and returns what it printed, or None (after
/// killing it) when it runs past `limit`: a hung Windows program fails its
/// test instead of stalling the suite. What it printed is read until its
/// end plus a moment: a wineserver it started may keep the pipes open long
/// after it exited.
pub fn bounded(cmd: &mut Command, limit: Duration) -> Option<Output> {
    use std::sync::{Arc, Mutex, mpsc};
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (done_tx, done) = mpsc::channel();
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        let got = Arc::new(Mutex::new(Vec::new()));
        let into = got.clone();
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            if let Some(mut pipe) = pipe {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    into.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
            let _ = done_tx.send(());
        });
        got
    };
    use std::io::Read as _;
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for _ in 0..2 {
        if done.recv_timeout(Duration::from_secs(3)).is_err() {
            break;
        }
    }
    let take = |v: &Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *v.lock().unwrap());
    Some(Output {
        status,
        stdout: take(&out),
        stderr: take(&err),
    })
}

pub struct Keeper(pub Child);

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
    pub child: Option<Child>,
}

pub const AGENT_DATA: &str = "C:\\courier agent";

impl<'p> WineAgent<'p> {
    pub fn enrolled(
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
pub struct Diagnose<'p>(pub &'p Prefix);

impl Drop for Diagnose<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", a_diagnostics(self.0));
        }
    }
}

pub fn a_diagnostics(prefix: &Prefix) -> String {
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
pub fn add(s: &Server, file: &Path, extra: &[&str]) -> Value {
    let path = file.display().to_string();
    let mut args = vec!["package", "add", path.as_str()];
    args.extend_from_slice(extra);
    args.push("--json");
    s.json(&args)
}

pub const HELLO_CODE: &str = "{6F1C2B9A-3D4E-4F50-8A61-7B2C3D4E5F60}";
/// Where a 32-bit per-machine MSI such as hello.msi is registered on
/// 64-bit Windows (and in a 64-bit Wine prefix): the 32-bit registry view.
pub const UNINSTALL_KEY: &str =
    "HKLM\\Software\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall";

/// A ZIP of `files` at `path`.
pub fn zip_of(path: &Path, files: &[(&str, &str)]) {
    crate::support::make_zip(
        path,
        &files
            .iter()
            .map(|(n, t)| (*n, t.as_bytes()))
            .collect::<Vec<_>>(),
    );
}

/// Bytes in a file, 0 when it is not there.
pub fn size_of_file(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
