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
