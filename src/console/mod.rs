//! The console: a full-screen terminal client of the admin API.
//!
//! One loop: draw the state, wait briefly for a key, apply messages from
//! the backend thread, ask for a refresh every second. When no server runs
//! for the data dir, the console starts one in this process first
//! (standalone), so agents can connect while it is open; either way it
//! talks to the server through the admin socket like the CLI does.
//!
//! Invariant: drawing never does I/O and never changes state.

pub mod app;
pub mod backend;
pub mod component;
pub mod data;
pub mod draw;
pub mod keymap;
pub mod overlays;
pub mod table;
pub mod text;
pub mod theme;
pub mod views;
pub mod widgets;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::execute;

use crate::api::Client;
use crate::datadir::DataDir;
use crate::server::{InProcess, Options};

pub struct ConsoleOptions {
    pub data: DataDir,
    pub theme: Option<String>,
    pub read_only: bool,
    /// How to start the server when none runs (standalone).
    pub serve: Options,
}

/// Runs the console until the user quits.
pub fn run(opts: ConsoleOptions) -> Result<()> {
    let theme = theme::Theme::choose(opts.theme.as_deref())?;
    let socket = opts.data.admin_endpoint();
    let attached = crate::api::dial(&socket).is_ok();
    // Keep the in-process server alive as long as the console.
    let _server = if attached {
        None
    } else {
        Some(
            InProcess::start(opts.data.clone(), opts.serve.clone()).map_err(|e| {
                anyhow::anyhow!(
                    "cannot start the console's server: {e:#} \
                     (another address: courier --listen ADDR, or listen in courier.toml's [server])"
                )
            })?,
        )
    };
    let link = if attached {
        "● attached"
    } else {
        "● standalone"
    };
    let app = app::App::new(theme, opts.read_only, link.to_string(), !attached);
    run_app(app, socket)
}

/// Runs a console already set up against the server at `socket`.
pub fn run_attached(app: app::App, socket: std::path::PathBuf) -> Result<()> {
    run_app(app, socket)
}

fn run_app(mut app: app::App, socket: std::path::PathBuf) -> Result<()> {
    let (cmd_tx, cmd_rx) = mpsc::channel();
    let (msg_tx, msg_rx) = mpsc::channel();
    let backend = std::thread::Builder::new()
        .name("console-backend".into())
        .spawn(move || {
            backend::run(
                move || {
                    let link = crate::api::dial(&socket)
                        .with_context(|| format!("admin socket {}", socket.display()))?;
                    Ok(Client::remote(link))
                },
                cmd_rx,
                msg_tx,
            )
        })?;
    // A closed terminal (SIGHUP; on Windows the console window) or a kill
    // (SIGTERM) ends the console like `q` does, so the standalone server
    // and the demo clean up.
    let hangup = Arc::new(AtomicBool::new(false));
    watch_signals(hangup.clone());
    let mut terminal = ratatui::init();
    let input = Input::start()?;
    let result = (|| -> Result<Ending> {
        let mut last_refresh = Instant::now() - Duration::from_secs(10);
        let mut mouse = false;
        loop {
            if let Err(e) = terminal.draw(|f| draw::draw(f, &app)) {
                // Drawing on a terminal that hung up may fail before its
                // input says so.
                let gone = matches!(input.wait(TICK * 2), Some(Key::Gone))
                    || hangup.load(Ordering::Relaxed);
                return if gone {
                    Ok(Ending::TerminalGone)
                } else {
                    Err(e.into())
                };
            }
            match input.wait(TICK) {
                Some(Key::Event(Event::Key(k))) if k.kind == event::KeyEventKind::Press => {
                    app.key(k)
                }
                Some(Key::Event(Event::Mouse(m))) => app.mouse(m),
                Some(Key::Gone) => return Ok(Ending::TerminalGone),
                _ => {}
            }
            while let Ok(m) = msg_rx.try_recv() {
                app.message(m);
            }
            if hangup.load(Ordering::Relaxed) {
                return Ok(Ending::TerminalGone);
            }
            if app.quit {
                return Ok(Ending::Quit);
            }
            if mouse != app.mouse {
                mouse = app.mouse;
                if mouse {
                    execute!(std::io::stdout(), EnableMouseCapture)?;
                } else {
                    execute!(std::io::stdout(), DisableMouseCapture)?;
                }
            }
            if last_refresh.elapsed() >= Duration::from_secs(1) {
                last_refresh = Instant::now();
                let r = app.refresh();
                app.outbox.push(r);
            }
            for c in app.outbox.drain(..) {
                let _ = cmd_tx.send(c);
            }
        }
    })();
    if matches!(result, Ok(Ending::TerminalGone)) {
        tracing::info!("the terminal went away or the console was asked to stop: closing");
    }
    input.stop(matches!(result, Ok(Ending::Quit)));
    if app.mouse {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
    }
    if matches!(result, Ok(Ending::TerminalGone)) {
        // A terminal that hung up takes no more writes; saying so on it
        // would fail too.
        if ratatui::try_restore().is_err() {
            #[cfg(unix)]
            crate::shutdown::detach_output();
        }
    } else {
        ratatui::restore();
    }
    drop(cmd_tx);
    let _ = backend.join();
    result.map(|_| ())
}

/// How long the loop waits for a key before it looks at the backend's
/// messages again.
const TICK: Duration = Duration::from_millis(100);

/// Why the loop ended.
enum Ending {
    /// The user quit.
    Quit,
    /// The terminal hung up, or the system asked the console to stop.
    TerminalGone,
}

/// What the input thread hands the loop.
enum Key {
    Event(Event),
    /// The terminal cannot be read any more: ends the console.
    Gone,
}

/// The terminal's input, read on a thread of its own: crossterm retries a
/// read of a hung-up terminal without end (`read(0) = 0` in a busy loop),
/// so the loop must never be the thread that reads. The thread asks
/// `shutdown::Terminal` first and stops at a hangup; a read error counts
/// as one too.
struct Input {
    events: mpsc::Receiver<Key>,
    stop: Arc<AtomicBool>,
    /// Says the thread has ended, so a quitting console can wait for it
    /// briefly before the shell reads the terminal again.
    done: mpsc::Receiver<()>,
}

impl Input {
    fn start() -> Result<Input> {
        #[cfg(unix)]
        let tty = crate::shutdown::Terminal::open().context("cannot open the terminal")?;
        let (tx, events) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::Builder::new()
            .name("console-input".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    #[cfg(unix)]
                    {
                        use crate::shutdown::TerminalInput;
                        match tty.wait(TICK) {
                            TerminalInput::Ready => {}
                            TerminalInput::Idle => continue,
                            TerminalInput::Gone => {
                                let _ = tx.send(Key::Gone);
                                break;
                            }
                        }
                    }
                    // On Unix the bytes are there: do not wait again.
                    let mut wait = if cfg!(unix) { Duration::ZERO } else { TICK };
                    // One read of the terminal can bring several keys (a
                    // paste, fast typing, a script): crossterm keeps those
                    // it has not handed out yet, which the terminal no
                    // longer signals, so every one is taken before waiting
                    // on the terminal again.
                    let mut ended = false;
                    loop {
                        let key = match event::poll(wait) {
                            Ok(false) => break,
                            Ok(true) => event::read().map_or(Key::Gone, Key::Event),
                            Err(_) => Key::Gone,
                        };
                        let gone = matches!(key, Key::Gone);
                        if tx.send(key).is_err() || gone {
                            ended = true;
                            break;
                        }
                        wait = Duration::ZERO;
                    }
                    if ended {
                        break;
                    }
                }
                let _ = done_tx.send(());
            })?;
        Ok(Input { events, stop, done })
    }

    /// The next key, or None after `timeout`. A thread that ended without
    /// saying why lost the terminal.
    fn wait(&self, timeout: Duration) -> Option<Key> {
        match self.events.recv_timeout(timeout) {
            Ok(k) => Some(k),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Key::Gone),
        }
    }

    /// Stops the thread. After `q` it is waited for (at most a tick and a
    /// little more), so no keystroke meant for the shell is read; after a
    /// hangup it is left to end with the process.
    fn stop(self, wait: bool) {
        self.stop.store(true, Ordering::Relaxed);
        if wait {
            let _ = self.done.recv_timeout(TICK * 3);
        }
    }
}

/// Sets `flag` when the terminal goes away or the system asks the console
/// to stop (`shutdown::terminal_gone`).
fn watch_signals(flag: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("console-signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(crate::shutdown::terminal_gone());
            flag.store(true, Ordering::Relaxed);
        });
}
