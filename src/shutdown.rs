//! When the operating system asks a long-running role to stop. Unix and
//! Windows say it differently (signals, console control events); the roles
//! only wait on one of these futures.

/// Resolves when the process is asked to stop: SIGINT or SIGTERM on Unix;
/// Ctrl-C, Ctrl-Break, its console closing or the system shutting down on
/// Windows. Without a way to listen, it never resolves and the role runs
/// until killed.
pub async fn requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_shutdown};
        let (Ok(mut c), Ok(mut brk), Ok(mut close), Ok(mut down)) =
            (ctrl_c(), ctrl_break(), ctrl_close(), ctrl_shutdown())
        else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = c.recv() => {}
            _ = brk.recv() => {}
            _ = close.recv() => {}
            _ = down.recv() => {}
        }
    }
}

/// Resolves when a full-screen terminal program should end although no key
/// said so: SIGHUP (its terminal closed) or SIGTERM on Unix; its console
/// window closing, Ctrl-Break or the system shutting down on Windows. Ctrl-C
/// is not among them: the console reads it as a key.
pub async fn terminal_gone() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut hup), Ok(mut term)) = (
            signal(SignalKind::hangup()),
            signal(SignalKind::terminate()),
        ) else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = hup.recv() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_close, ctrl_shutdown};
        let (Ok(mut close), Ok(mut brk), Ok(mut down)) =
            (ctrl_close(), ctrl_break(), ctrl_shutdown())
        else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = close.recv() => {}
            _ = brk.recv() => {}
            _ = down.recv() => {}
        }
    }
}

/// What the terminal a full-screen program reads its keys from has to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalInput {
    /// Bytes are waiting to be read.
    Ready,
    /// Nothing came within the wait.
    Idle,
    /// The terminal hung up (its SSH connection dropped, its tmux session
    /// was killed, its window closed): every read now returns end of file
    /// or fails, and nothing will ever come again.
    Gone,
}

/// The terminal the console reads keys from, watched without reading it:
/// standard input when it is a terminal, else `/dev/tty` (where crossterm
/// reads then). A hung-up terminal reads as end of file forever, and
/// crossterm retries such reads without end; asking `poll(2)` first tells
/// a hangup from a key, so the console never reads a dead terminal.
#[cfg(unix)]
pub struct Terminal {
    /// `None` reads standard input.
    dev_tty: Option<std::fs::File>,
}

#[cfg(unix)]
impl Terminal {
    pub fn open() -> std::io::Result<Terminal> {
        use std::io::IsTerminal as _;
        let dev_tty = if std::io::stdin().is_terminal() {
            None
        } else {
            Some(std::fs::OpenOptions::new().read(true).open("/dev/tty")?)
        };
        Ok(Terminal { dev_tty })
    }

    /// Waits up to `timeout` for input or a hangup.
    pub fn wait(&self, timeout: std::time::Duration) -> TerminalInput {
        use nix::errno::Errno;
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd as _;
        let stdin = std::io::stdin();
        let fd = match &self.dev_tty {
            Some(f) => f.as_fd(),
            None => stdin.as_fd(),
        };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => TerminalInput::Idle,
            Err(_) => TerminalInput::Gone,
            Ok(_) => {
                let got = fds[0].revents().unwrap_or(PollFlags::empty());
                if got.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                    TerminalInput::Gone
                } else if got.contains(PollFlags::POLLIN) {
                    TerminalInput::Ready
                } else {
                    TerminalInput::Idle
                }
            }
        }
    }
}

/// Points standard output and error at `/dev/null`, for a program whose
/// terminal hung up: what is still written on the way out (a library's
/// "failed to restore the terminal", a panic's message) then cannot fail,
/// where it would otherwise panic inside `eprintln!` and abort the clean
/// stop.
#[cfg(unix)]
pub fn detach_output() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}
