//! End to end in a real terminal: the harness that runs the built binary
//! in tmux, and a console attached to `courier serve` with real agents.
//! `demo.tape`'s replay (`tape.rs`) runs in the same harness.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::procs::{Agent, DEADLINE, Server, wait_until};

// ---- the real binary in tmux ---------------------------------------------------

pub(super) fn courier_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_courier"))
}

/// A tmux server of its own (its socket in a temp dir of its own) with one
/// session of a fixed size. Dropping it ends what runs in the pane and the
/// server, so a failing test leaves nothing behind.
pub(super) struct Tmux {
    /// Holds the server's socket; removed with it.
    dir: tempfile::TempDir,
    /// The pane's first process (its shell or the command).
    pane_pid: Option<i32>,
}

fn tmux_available() {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "tmux is needed for the console's end-to-end tests and was not found on PATH \
         (.ci/run installs it: apt-get install tmux)"
    );
}

impl Tmux {
    /// Starts `argv` in a new session of `w`×`h` with `env` added to a
    /// minimal environment, in `cwd`.
    pub(super) fn start(
        w: u16,
        h: u16,
        cwd: &Path,
        env: &[(&str, String)],
        argv: &[String],
    ) -> Tmux {
        tmux_available();
        let mut t = Tmux {
            dir: tempfile::tempdir().expect("tempdir"),
            pane_pid: None,
        };
        let mut cmd = vec![
            "env".to_string(),
            "-i".to_string(),
            format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
            "TERM=tmux-256color".to_string(),
            "LANG=C.UTF-8".to_string(),
        ];
        cmd.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        cmd.extend(argv.iter().cloned());
        let o = t
            .tmux()
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "main"])
            .args(["-x", &w.to_string(), "-y", &h.to_string()])
            .arg("-c")
            .arg(cwd)
            .args(&cmd)
            .output()
            .expect("run tmux");
        assert!(
            o.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // Keep the pane after its command ends, to read its last screen.
        t.run(&["set-option", "-t", "main", "remain-on-exit", "on"]);
        let pid = t.run(&["display-message", "-p", "-t", "main", "#{pane_pid}"]);
        t.pane_pid = pid.trim().parse().ok();
        t
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        // -u: the screen holds UTF-8 (✔ ✖ ⟳) whatever the test's locale.
        c.arg("-u").arg("-S").arg(self.dir.path().join("tmux.sock"));
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let o = self.tmux().args(args).output().expect("run tmux");
        assert!(
            o.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub(super) fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "main"])
    }

    /// Literal text, as typed.
    pub(super) fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "main", "-l", text]);
    }

    /// A named key (tmux names: Enter, Escape, Tab, Space, Down…).
    pub(super) fn send(&self, key: &str) {
        self.run(&["send-keys", "-t", "main", key]);
    }

    /// Waits until the screen shows `text`; on timeout the panic shows the
    /// last screen and `explain`.
    pub(super) fn wait_for(
        &self,
        text: &str,
        timeout: Duration,
        explain: impl FnOnce() -> String,
    ) -> String {
        let end = Instant::now() + timeout;
        loop {
            let last = self.screen();
            if last.contains(text) {
                return last;
            }
            if Instant::now() >= end {
                panic!(
                    "timed out after {} s waiting for {text:?} on screen\n--- screen ---\n{last}\n{}",
                    timeout.as_secs(),
                    explain()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process the pane started (the command itself, `env` having
    /// exec'd it).
    pub(super) fn pane_pid(&self) -> i32 {
        self.pane_pid.expect("the pane's pid")
    }

    /// Ends the session as a dropped SSH connection would: the pane's
    /// terminal hangs up under what runs in it.
    pub(super) fn kill_session(&self) {
        self.run(&["kill-session", "-t", "main"]);
    }

    pub(super) fn pane_dead(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "main", "#{pane_dead}"])
            .trim()
            == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // A test that failed midway left the console open: ask it to quit
        // first, so it cleans up after itself (the demo stops its agents);
        // then end whatever is left.
        if std::thread::panicking() {
            let _ = self
                .tmux()
                .args(["send-keys", "-t", "main", "Escape"])
                .output();
            std::thread::sleep(Duration::from_millis(150));
            let _ = self.tmux().args(["send-keys", "-t", "main", "q"]).output();
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end {
                let dead = self
                    .tmux()
                    .args(["display-message", "-p", "-t", "main", "#{pane_dead}"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim() != "0")
                    .unwrap_or(true);
                if dead {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Some(pid) = self.pane_pid {
            kill_tree(pid);
        }
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// SIGKILLs `pid` and its descendants, children first found from /proc
/// (the processes this test started, by id).
fn kill_tree(pid: i32) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
        kill_tree(c);
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

// ---- attached to courier serve ------------------------------------------------

/// A console attached to `courier serve` with two real agents: a task
/// created through the CLI shows up and succeeds on screen; another fails
/// on one agent, the cause is fixed, `r` in triage re-executes it and the
/// second attempt succeeds, all watched in the console.
#[test]
fn attached_console_watches_tasks_and_reexecutes_a_failure() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "e2e-a");
    let b = Agent::enrolled(&s, &token, "e2e-b");
    s.wait_dest("e2e-a", "online", &[&a, &b]);
    s.wait_dest("e2e-b", "online", &[&a, &b]);

    let tmux = Tmux::start(
        120,
        40,
        s.dir.path(),
        &[
            ("HOME", s.dir.path().display().to_string()),
            (
                "XDG_CONFIG_HOME",
                s.dir.path().join("config").display().to_string(),
            ),
        ],
        &[
            courier_bin().display().to_string(),
            "--data".into(),
            s.data().display().to_string(),
        ],
    );
    let why = || s.diagnostics();
    tmux.wait_for("● attached", DEADLINE, why);
    tmux.wait_for("2 online", DEADLINE, why);
    tmux.send("2");
    tmux.wait_for("No tasks yet", DEADLINE, why);

    // A task made with the CLI appears and succeeds on screen.
    let ok = s.input("hello.sh");
    std::fs::write(&ok, "echo hello from e2e\n").unwrap();
    let p = s.json(&[
        "package",
        "add",
        ok.to_str().unwrap(),
        "--install-command",
        "sh hello.sh",
        "--json",
    ]);
    let pid = p["id"].to_string();
    s.json(&[
        "task",
        "create",
        "--package",
        &pid,
        "--to",
        "e2e-a,e2e-b",
        "--name",
        "Hello",
        "--json",
    ]);
    tmux.wait_for("✔ completed", DEADLINE, why);
    let screen = tmux.wait_for("✔2", DEADLINE, why);
    assert!(screen.contains("Hello"), "{screen}");
    key_gap();
    tmux.send("Enter");
    tmux.wait_for("Task 1 · Hello · ✔ completed", DEADLINE, why);
    // The rows follow the list's summary within a refresh.
    let screen = tmux.wait_for("│e2e-b", DEADLINE, why);
    for name in ["e2e-a", "e2e-b"] {
        let row = screen
            .lines()
            .find(|l| l.starts_with(&format!("│{name}")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{screen}"));
        assert!(row.contains("✔ succeeded"), "{row}");
    }
    key_gap();
    tmux.send("Escape");

    // A package that fails on B until a file exists.
    let marks = tempfile::tempdir().unwrap();
    let fixed = marks.path().join("fixed");
    let script = s.input("needs-fix.sh");
    std::fs::write(
        &script,
        format!(
            "case \"$(pwd)\" in\n'{bdata}'/*)\n  if [ ! -e '{fixed}' ]; then echo 'error: prerequisite missing' >&2; exit 4; fi;;\nesac\necho fixed-ok\n",
            bdata = b.data().display(),
            fixed = fixed.display()
        ),
    )
    .unwrap();
    let p = s.json(&[
        "package",
        "add",
        script.to_str().unwrap(),
        "--install-command",
        "sh needs-fix.sh",
        "--json",
    ]);
    let pid = p["id"].to_string();
    s.json(&[
        "task",
        "create",
        "--package",
        &pid,
        "--to",
        "e2e-a,e2e-b",
        "--name",
        "Fixable",
        "--json",
    ]);
    tmux.wait_for("✖ failed", DEADLINE, why);
    tmux.wait_for("Triage ✖1", DEADLINE, why);

    // Triage: the group, its member, the output.
    key_gap();
    tmux.send("!");
    tmux.wait_for("✖ exit 4", DEADLINE, why);
    key_gap();
    tmux.send("Enter");
    tmux.wait_for("e2e-b", DEADLINE, why);
    key_gap();
    tmux.send("j");
    key_gap();
    tmux.send("o");
    tmux.wait_for("error: prerequisite missing", DEADLINE, why);
    key_gap();
    tmux.send("Escape");

    // Fix the cause, re-execute the group from triage.
    std::fs::write(&fixed, "").unwrap();
    key_gap();
    tmux.send("r");
    tmux.wait_for("re-executing 1 destination", DEADLINE, why);
    tmux.wait_for("No failed destinations", DEADLINE, why);

    // The second attempt, in the task's rows.
    key_gap();
    tmux.send("2");
    tmux.wait_for("Fixable", DEADLINE, why);
    key_gap();
    tmux.send("G");
    key_gap();
    tmux.send("Enter");
    tmux.wait_for("Task 2 · Fixable · ✔ completed", DEADLINE, why);
    let screen = tmux.wait_for("│e2e-b", DEADLINE, why);
    let b_row = screen
        .lines()
        .find(|l| l.starts_with("│e2e-b") && l.contains("succeeded"))
        .unwrap_or_else(|| panic!("no succeeded row for e2e-b:\n{screen}"));
    let cells: Vec<&str> = b_row.split_whitespace().collect();
    assert!(
        cells.windows(3).any(|w| w[0] == "succeeded" && w[1] == "2"),
        "e2e-b should show attempt 2: {b_row}"
    );
    // The server agrees.
    let t = s.json(&["task", "show", "2", "--json"]);
    let d = t["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "e2e-b")
        .unwrap();
    assert_eq!(d["attempt"], 2, "{t:#}");
    assert_eq!(d["status"], "succeeded", "{t:#}");

    // Quitting an attached console asks nothing and stops nothing.
    key_gap();
    tmux.send("q");
    wait_until(
        Duration::from_secs(20),
        "the console to exit",
        || tmux.pane_dead().then_some(()),
        || tmux.screen(),
    );
    s.ok(&["status"]);
}

/// A typist's gap between keys (see the Escape note in the tape replay).
fn key_gap() {
    std::thread::sleep(Duration::from_millis(150));
}
