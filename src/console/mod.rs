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

use std::sync::mpsc;
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
        Some(InProcess::start(opts.data.clone(), opts.serve.clone()).context(
            "cannot start the server in the console (is the port taken? set another with --listen or courier.toml)",
        )?)
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
    let hangup = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    watch_signals(hangup.clone());
    let mut terminal = ratatui::init();
    let result = (|| -> Result<()> {
        let mut last_refresh = Instant::now() - Duration::from_secs(10);
        let mut mouse = false;
        loop {
            terminal.draw(|f| draw::draw(f, &app))?;
            if event::poll(Duration::from_millis(100))? {
                match event::read()? {
                    Event::Key(k) if k.kind == event::KeyEventKind::Press => app.key(k),
                    Event::Mouse(m) => app.mouse(m),
                    _ => {}
                }
            }
            while let Ok(m) = msg_rx.try_recv() {
                app.message(m);
            }
            if app.quit || hangup.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(());
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
    if app.mouse {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
    }
    ratatui::restore();
    drop(cmd_tx);
    let _ = backend.join();
    result
}

/// Sets `flag` when the terminal goes away or the system asks the console
/// to stop (`shutdown::terminal_gone`).
fn watch_signals(flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
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
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        });
}
