//! Losing the terminal ends a standalone console as `q` would: an SSH drop
//! (here a killed tmux session) or a SIGTERM leaves no process behind, and
//! the port and the admin socket are free for the admin who reconnects.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::tmux::{Tmux, courier_bin};
use crate::procs::DEADLINE;

/// How long a console may take to be gone once its terminal is.
const GONE_WITHIN: Duration = Duration::from_secs(2);

/// A standalone console in tmux, on a data dir whose `courier.toml` gives
/// it a loopback port of its own.
struct Standalone {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    tmux: Tmux,
}

impl Standalone {
    fn start() -> Standalone {
        Standalone::start_with(Listen::ConfigFile)
    }

    fn start_with(listen: Listen) -> Standalone {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let addr = free_port();
        let mut argv = vec![
            courier_bin().display().to_string(),
            "--data".into(),
            data.display().to_string(),
        ];
        let in_file = match listen {
            Listen::ConfigFile => addr,
            Listen::Flag => {
                argv.extend(["--listen".into(), addr.to_string()]);
                // The flag wins over the file.
                free_port()
            }
        };
        std::fs::write(
            data.join("courier.toml"),
            format!("[server]\nlisten = \"{in_file}\"\n"),
        )
        .unwrap();
        let tmux = Tmux::start(
            100,
            30,
            dir.path(),
            &[
                ("HOME", dir.path().display().to_string()),
                (
                    "XDG_CONFIG_HOME",
                    dir.path().join("config").display().to_string(),
                ),
            ],
            &argv,
        );
        let c = Standalone { dir, addr, tmux };
        c.tmux
            .wait_for(&format!("● standalone {addr}"), DEADLINE, || c.log());
        assert!(c.socket().exists(), "no admin socket while running");
        assert!(
            TcpListener::bind(addr).is_err(),
            "the console should hold {addr} while it runs"
        );
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket(&self) -> PathBuf {
        self.data().join("admin.sock")
    }

    fn log(&self) -> String {
        crate::procs::tail(&self.data().join("logs/console.log"), 2000)
    }

    /// Waits up to [`GONE_WITHIN`] for the console's process to end, then
    /// checks what it leaves: a free port, no admin socket, no
    /// `server.json`, and a log saying the server stopped.
    fn assert_gone_and_clean(&self, what: &str) {
        let pid = self.tmux.pane_pid();
        let start = Instant::now();
        while alive(pid) {
            assert!(
                start.elapsed() < GONE_WITHIN,
                "the console (pid {pid}) still runs {} s after {what}\n--- console.log ---\n{}",
                GONE_WITHIN.as_secs(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = start.elapsed();
        assert!(
            TcpListener::bind(self.addr).is_ok(),
            "{} is still taken after {what}",
            self.addr
        );
        assert!(
            !self.socket().exists(),
            "the admin socket is left after {what}"
        );
        assert!(
            !self.data().join("server.json").exists(),
            "server.json is left after {what}"
        );
        let log = self.log();
        assert!(log.contains("shutting down"), "{log}");
        eprintln!("console gone {} ms after {what}", took.as_millis());
    }
}

/// Where the console is told its address.
enum Listen {
    /// `listen` in `courier.toml`'s `[server]`.
    ConfigFile,
    /// `courier --listen ADDR`, over another address in the file.
    Flag,
}

/// A loopback port nothing listens on now.
fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap()
}

/// Whether `pid` still runs: a zombie has ended (nobody may reap an
/// orphan in a container).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command's name in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Issue "the console at 2 a.m.": killing the tmux session (as an SSH drop
/// does to its terminal) left the console reading end of file in a loop,
/// holding the port and the data dir.
#[test]
fn killed_session_ends_a_standalone_console_and_frees_its_port() {
    let c = Standalone::start();
    c.tmux.kill_session();
    c.assert_gone_and_clean("the tmux session was killed");
}

/// SIGTERM ends the console like `q`: the terminal is given back and the
/// standalone server stops cleanly.
#[test]
fn sigterm_ends_a_standalone_console_cleanly() {
    let c = Standalone::start();
    kill(Pid::from_raw(c.tmux.pane_pid()), Signal::SIGTERM).unwrap();
    c.assert_gone_and_clean("SIGTERM");
    let screen = c.tmux.screen();
    assert!(
        !screen.contains("● standalone"),
        "the console's screen should be gone:\n{screen}"
    );
}

/// The console's port error told to use `--listen`, which the console did
/// not have; now it has, as `courier serve` does, and it wins over
/// `courier.toml`.
#[test]
fn listen_flag_gives_a_standalone_console_its_address() {
    let c = Standalone::start_with(Listen::Flag);
    c.tmux.send("q");
    c.assert_gone_and_clean("q");
}

/// Keys that arrive together (a paste, fast typing, a script) are all
/// taken at once: none waits in the reader for the next keystroke.
#[test]
fn keys_typed_in_one_burst_all_arrive() {
    let c = Standalone::start();
    c.tmux.send("/");
    c.tmux.wait_for("/", DEADLINE, || c.log());
    c.tmux.type_text("no-such-row-42");
    c.tmux
        .wait_for("no-such-row-42", Duration::from_secs(5), || c.log());
    c.tmux.send("Escape");
    // An Escape followed at once by a key reads as Alt+key.
    std::thread::sleep(Duration::from_millis(300));
    c.tmux.send("q");
    c.assert_gone_and_clean("q");
}
