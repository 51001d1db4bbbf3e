//! Runs an install or uninstall command the way an admin would type it, and
//! brings back what an admin needs to triage it: the exit code, whether it
//! was stopped for taking too long, and the end of what it printed.
//!
//! The command runs through the platform shell so that quoting, variables
//! and `&&` behave as the admin expects. It gets its own process group, so
//! a timeout stops everything it started in that group (an installer that
//! spawns helpers, a script that backgrounds a job), not only the shell;
//! on Windows the command runs in a Job Object instead.
//! Output is kept in one fixed-size tail buffer: an installer that logs a
//! gigabyte costs the agent `tail_bytes` of memory, and the end of the log
//! is where the reason for a failure is.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep_until, timeout};

/// How long output is still read after the command has exited (or been
/// killed). Something the command left running may hold the pipes open
/// forever; its output after this is not waited for.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Bytes read from a pipe at a time.
const READ_LEN: usize = 8 << 10;

/// Bytes of stderr kept on their own, for the failure's one-line reason.
const STDERR_TAIL: usize = 2048;

/// Marks output whose beginning was dropped to keep only the tail.
const TRUNCATED_MARK: &str = "…";

/// How often the output tail is offered while the command runs (only
/// when it changed): often enough to watch, rare enough to cost nothing.
pub const LIVE_EVERY: Duration = Duration::from_secs(1);

/// `command` with a verbose Windows Installer log written to `log`, when
/// it runs msiexec and names no log of its own: the exit code of a failed
/// MSI says little, its log says which action failed and why.
pub fn with_msi_log(command: &str, log: &Path) -> String {
    let first = command
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_matches('"')
        .to_ascii_lowercase();
    let is_msiexec =
        first == "msiexec" || first.ends_with("\\msiexec.exe") || first == "msiexec.exe";
    let has_log = command.split_whitespace().any(|w| {
        w.len() > 1 && (w.starts_with("/l") || w.starts_with("/L") || w.starts_with("-l"))
    });
    if !is_msiexec || has_log {
        return command.to_string();
    }
    format!("{command} /l*v \"{}\"", log.display())
}

/// The last `max` bytes of an installer's log, from its first whole line,
/// decoded from UTF-16 (with its byte-order mark, or recognised by its
/// zero high bytes) or else as UTF-8, lossily. None when there is no log.
pub fn log_tail(path: &Path, max: usize) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    // UTF-16 takes two bytes a character: read twice the tail.
    let want = (max as u64).saturating_mul(2);
    let start = len.saturating_sub(want) & !1;
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::new();
    f.take(want).read_to_end(&mut bytes).ok()?;
    let mut text = decode_log(&bytes, start == 0);
    if text.len() > max || start > 0 {
        let mut cut = text.len().saturating_sub(max);
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        // From the next whole line, unless that would leave nothing.
        if let Some(nl) = text[cut..]
            .find('\n')
            .filter(|nl| cut + nl + 1 < text.len())
        {
            cut += nl + 1;
        }
        text.drain(..cut);
    }
    Some(text)
}

fn decode_log(bytes: &[u8], at_start: bool) -> String {
    let bom = at_start && bytes.starts_with(&[0xFF, 0xFE]);
    let sample = &bytes[..bytes.len().min(512)];
    let zero_high = sample.len() >= 4
        && sample
            .iter()
            .skip(1)
            .step_by(2)
            .filter(|b| **b == 0)
            .count()
            * 4
            >= sample.len();
    if bom || zero_high {
        let body = if bom { &bytes[2..] } else { bytes };
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// What to run and how long to let it run.
#[derive(Debug, Clone, Copy)]
pub struct RunSpec<'a> {
    /// The command line, given to `sh -c` (Unix) or `cmd /C` (Windows).
    pub command: &'a str,
    /// Working directory: the package's extracted content.
    pub cwd: &'a Path,
    /// After this the command and its process group are killed.
    pub timeout: Duration,
    /// How many of the last bytes of output (stdout and stderr together)
    /// are kept.
    pub tail_bytes: usize,
    /// Given the output tail while the command runs, every [`LIVE_EVERY`]
    /// when it changed, so an admin can watch an installation.
    pub live: Option<&'a tokio::sync::watch::Sender<String>>,
    /// Told the command's process id once it exists. On Unix the command
    /// waits at a gate until this has returned, so what it records (the
    /// agent: which process group to stop after a crash) is in place before
    /// the command's first step; an error kills the command before it runs
    /// and is the run's error.
    pub on_start: Option<OnStart<'a>>,
}

/// See [`RunSpec::on_start`].
#[derive(Clone, Copy)]
pub struct OnStart<'a>(pub &'a (dyn Fn(u32) -> io::Result<()> + Sync));

impl std::fmt::Debug for OnStart<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnStart(..)")
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The exit code; None when the command was killed by a signal or timed
    /// out. Windows codes are the signed value of their 32 bits.
    pub exit_code: Option<i64>,
    /// The signal that ended the command (Unix only), SIGKILL after a
    /// timeout.
    pub signal: Option<i32>,
    /// The command ran past its timeout and was killed.
    pub timed_out: bool,
    /// The last `tail_bytes` bytes of stdout and stderr interleaved in the
    /// order they were read (exact within a stream; across the two pipes,
    /// writes made at the same instant may swap), decoded lossily, prefixed
    /// with "…" if the beginning was dropped.
    pub output: String,
    /// The last bytes of stderr alone.
    pub stderr: String,
    /// From start to the end of the command.
    pub elapsed: Duration,
}

/// Runs `spec.command` and waits for it to end or time out.
///
/// Errors only when the command cannot be started or waited for (no shell,
/// `cwd` missing); a command that fails is an `Ok` with its exit code.
pub async fn run(spec: RunSpec<'_>) -> io::Result<RunOutcome> {
    let started = Instant::now();
    // A timeout too large to add (Duration::MAX as "never") waits for
    // decades instead of overflowing.
    let deadline = started
        .checked_add(spec.timeout)
        .unwrap_or_else(|| started + Duration::from_secs(30 * 365 * 86_400));
    let gated = cfg!(unix) && spec.on_start.is_some();
    let mut command = shell_command(spec.command, gated);
    command
        .current_dir(spec.cwd)
        .stdin(if gated { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    scrub_agent_settings(&mut command);
    let mut child = command.spawn()?;
    // Everything the command starts, stopped together on timeout, and when
    // this future is dropped before the command ends (the agent is shutting
    // down or the task was cancelled).
    let mut tree = Tree::attach(&child);
    if let Some(OnStart(told)) = spec.on_start {
        // On an error `tree` is dropped, which kills the command.
        told(
            child
                .id()
                .ok_or_else(|| io::Error::other("the command vanished"))?,
        )?;
    }
    if let Some(mut gate) = child.stdin.take() {
        // One short line: the pipe takes it at once. Closing the pipe
        // after it leaves nothing for the command to read.
        use tokio::io::AsyncWriteExt;
        gate.write_all(b"run\n").await?;
    }
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    // Shared by the reader and the live ticker below: both run on this
    // task and never hold the lock across an await, so it is never
    // contended (a Mutex rather than a RefCell only to keep the future Send).
    let tail = Mutex::new(Tail::new(spec.tail_bytes));
    // The end of stderr alone: where installers say why they failed.
    let mut err_tail = Tail::new(STDERR_TAIL);
    let (status, timed_out, elapsed) = {
        let mut reading = pin!(pump(stdout, stderr, &tail, &mut err_tail));
        let mut read_all = false;
        let mut expiry = pin!(sleep_until(deadline));
        let mut ticks = tokio::time::interval(LIVE_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut offered = 0u64;
        let ended = loop {
            tokio::select! {
                status = child.wait() => break Some(status?),
                () = &mut reading, if !read_all => read_all = true,
                () = &mut expiry => break None,
                _ = ticks.tick(), if spec.live.is_some() => {
                    let t = locked(&tail);
                    if let Some(live) = spec.live.filter(|_| t.written != offered) {
                        offered = t.written;
                        live.send_replace(t.to_text());
                    }
                }
            }
        };
        let timed_out = ended.is_none();
        let status = match ended {
            Some(status) => status,
            None => {
                tree.kill();
                // The command itself at least, should the rest be gone.
                let _ = child.start_kill();
                child.wait().await?
            }
        };
        let elapsed = started.elapsed();
        // The command has ended; what it left running is its own business
        // (an installer may start a service or an application that way).
        tree.release();
        if !read_all {
            let _ = timeout(DRAIN_GRACE, &mut reading).await;
        }
        (status, timed_out, elapsed)
    };

    Ok(RunOutcome {
        exit_code: if timed_out {
            None
        } else {
            status.code().map(i64::from)
        },
        signal: signal_of(status),
        timed_out,
        output: tail
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .to_text(),
        stderr: err_tail.to_text(),
        elapsed,
    })
}

/// Leaves the agent's own settings out of the command's environment:
/// `COURIER_TOKEN` (an enrolment secret), `COURIER_DATA`, `COURIER_LOG`
/// and any other `COURIER_*` variable the agent was started with are not
/// the installer's business, and what an installer sees may end up in its
/// logs. Everything else is inherited as the admin expects.
fn scrub_agent_settings(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if is_agent_setting(&name) {
            command.env_remove(name);
        }
    }
}

/// `COURIER_…`, in any case (Windows' names ignore it).
fn is_agent_setting(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .and_then(|n| n.get(..8))
        .is_some_and(|p| p.eq_ignore_ascii_case("COURIER_"))
}

/// What the shell runs first when the command is gated: it waits for the
/// agent's "run" on stdin, then becomes the shell that runs the command,
/// stdin from /dev/null as for an ungated one. Should the agent die first,
/// the pipe ends and the command never runs.
#[cfg(unix)]
const GATE: &str =
    r#"IFS= read -r go && [ "$go" = run ] && exec /bin/sh -c "$1" </dev/null; exit 125"#;

#[cfg(unix)]
fn shell_command(line: &str, gated: bool) -> Command {
    let mut command = Command::new("/bin/sh");
    if gated {
        command.arg("-c").arg(GATE).arg("/bin/sh").arg(line);
    } else {
        command.arg("-c").arg(line);
    }
    // A group of its own, led by the shell, so the whole group can be
    // killed on timeout without touching the agent.
    command.process_group(0);
    command
}

/// Windows: the command runs in a kill-on-close Job Object, so it dies
/// with the agent; no gate is needed.
#[cfg(windows)]
fn shell_command(line: &str, _gated: bool) -> Command {
    /// CREATE_NEW_PROCESS_GROUP: console control events aimed at the agent
    /// do not reach the command, and vice versa.
    const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
    let shell = std::env::var_os("ComSpec").unwrap_or_else(|| "cmd.exe".into());
    let mut command = Command::new(shell);
    // `cmd` does its own parsing of the rest of the line; quoting it the
    // way other programs expect would change what the admin wrote. `/S`
    // makes cmd strip exactly the outer quotes added here, so a line that
    // starts and ends with quotes ("C:\Program Files\x\setup.exe" /S "a b")
    // keeps all of its own.
    command
        .raw_arg(format!("/D /S /C \"{line}\""))
        // Suspended until it is in its Job Object (`Tree::attach`).
        .creation_flags(CREATE_NEW_PROCESS_GROUP | crate::win::job::CREATE_SUSPENDED);
    command
}

/// Everything a command started: on Unix its process group (the command
/// leads a group of its own); on Windows a Job Object it was put in before
/// it ran. Killed when dropped unless released, so a run abandoned
/// half-way leaves nothing behind.
struct Tree {
    #[cfg(unix)]
    group: Option<u32>,
    #[cfg(windows)]
    job: Option<crate::win::job::Job>,
}

impl Tree {
    #[cfg(unix)]
    fn attach(child: &Child) -> Tree {
        Tree { group: child.id() }
    }

    /// Puts the suspended command in a new Job Object and lets it run. If
    /// that fails the command still runs, and only it can be stopped; the
    /// agent's log says so.
    #[cfg(windows)]
    fn attach(child: &Child) -> Tree {
        use crate::win::job::{Job, resume_threads_of};
        let (Some(pid), Some(handle)) = (child.id(), child.raw_handle()) else {
            return Tree { job: None };
        };
        let job = match Job::kill_on_close() {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!("no Job Object for the command ({e}); only it can be stopped");
                if let Err(e) = resume_threads_of(pid) {
                    tracing::warn!("the command cannot be resumed ({e})");
                }
                return Tree { job: None };
            }
        };
        match job.adopt_suspended(handle, pid) {
            Ok(()) => Tree { job: Some(job) },
            Err(e) => {
                tracing::warn!(
                    "the command is not in its Job Object ({e}); only it can be stopped"
                );
                Tree { job: None }
            }
        }
    }

    /// Stops everything in the tree now.
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.group {
            kill_group_of(pid);
        }
        #[cfg(windows)]
        if let Some(job) = &self.job {
            let _ = job.terminate();
        }
    }

    /// The command has ended: the rest of the tree is left alone.
    fn release(&mut self) {
        #[cfg(unix)]
        {
            self.group = None;
        }
        #[cfg(windows)]
        if let Some(job) = self.job.take() {
            job.release();
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // On Unix the leader is not reaped yet (the tree is released once
        // it is), so its pid is still the group's id. On Windows dropping
        // the job closes it, which kills what it holds.
        self.kill();
    }
}

#[cfg(unix)]
fn kill_group_of(pid: u32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Ok(pgid) = i32::try_from(pid) {
        // ESRCH (the group is gone) is what we wanted anyway.
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

#[cfg(unix)]
fn signal_of(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(not(unix))]
fn signal_of(_status: ExitStatus) -> Option<i32> {
    None
}

/// Reads both pipes until both end, appending whatever arrives first to the
/// tail. A pipe that fails to read is treated as ended: output is a
/// diagnostic, not worth failing the run for.
async fn pump<O, E>(stdout: Option<O>, stderr: Option<E>, tail: &Mutex<Tail>, err_tail: &mut Tail)
where
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let mut out = stdout;
    let mut err = stderr;
    let mut out_buf = [0u8; READ_LEN];
    let mut err_buf = [0u8; READ_LEN];
    loop {
        tokio::select! {
            read = read_some(&mut out, &mut out_buf), if out.is_some() => match read {
                Some(n) => locked(tail).push(&out_buf[..n]),
                None => out = None,
            },
            read = read_some(&mut err, &mut err_buf), if err.is_some() => match read {
                Some(n) => {
                    locked(tail).push(&err_buf[..n]);
                    err_tail.push(&err_buf[..n]);
                }
                None => err = None,
            },
            else => break,
        }
    }
}

fn locked(tail: &Mutex<Tail>) -> MutexGuard<'_, Tail> {
    tail.lock().unwrap_or_else(|e| e.into_inner())
}

/// One read from `pipe`: Some(bytes read), or None at its end or on error.
async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    let reader = pipe.as_mut()?;
    loop {
        match reader.read(buf).await {
            Ok(0) => return None,
            Ok(n) => return Some(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

/// The last `cap` bytes of a stream, in fixed memory.
struct Tail {
    cap: usize,
    bytes: VecDeque<u8>,
    truncated: bool,
    /// Bytes pushed so far: tells whether the tail changed.
    written: u64,
}

impl Tail {
    fn new(cap: usize) -> Self {
        Tail {
            cap,
            // Grows with what arrives, up to `cap`: most commands print
            // far less than the limit.
            bytes: VecDeque::new(),
            truncated: false,
            written: 0,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        self.written += chunk.len() as u64;
        if chunk.len() >= self.cap {
            self.truncated |= !self.bytes.is_empty() || chunk.len() > self.cap;
            self.bytes.clear();
            self.bytes.extend(&chunk[chunk.len() - self.cap..]);
            return;
        }
        let excess = (self.bytes.len() + chunk.len()).saturating_sub(self.cap);
        if excess > 0 {
            self.truncated = true;
            self.bytes.drain(..excess);
        }
        self.bytes.extend(chunk);
    }

    fn to_text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let bytes = [a, b].concat();
        if !self.truncated {
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        // The cut may fall inside a UTF-8 sequence: drop its continuation
        // bytes rather than show a replacement character after the mark.
        let start = bytes
            .iter()
            .take(3)
            .take_while(|&&b| b & 0xC0 == 0x80)
            .count();
        format!(
            "{TRUNCATED_MARK}{}",
            String::from_utf8_lossy(&bytes[start..])
        )
    }
}

#[cfg(all(test, unix))]
mod tests;

#[cfg(all(test, windows))]
mod windows_tests;
