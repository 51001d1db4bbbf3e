//! The console: whole-app snapshots (ratatui `TestBackend` + insta) of
//! every view, form and overlay at 80×24 and 160×48 in two themes;
//! behaviour of `App` (filter, command mode, triage, quitting, read-only);
//! and end to end, the real binary in tmux: `demo.tape` replayed against
//! `courier demo`, and a console attached to `courier serve` with real
//! agents.
//!
//! Seeded data carries fixed timestamps and a fixed listen address, so
//! nothing in a snapshot depends on the clock or a port.
//!
//! The tests live in submodules by subject; this module holds what they
//! share: the seeded app, keys, screens as text, and the snapshot naming
//! they assert with.

mod behaviour;
mod forms;
mod policies;
mod problems;
mod seed;
mod tape;
mod terminal;
mod themes;
mod tmux;
mod triage;
mod truth;
mod views;

use std::process::{Command, Output};

use courier::api::Request;
use courier::console::app::{App, View};
use courier::console::backend::{Command as Cmd, Message, Snapshot};
use courier::console::draw;
use courier::console::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;

use seed::{detail, failures, row, snapshot, status};

// ---- snapshot names -----------------------------------------------------------

/// insta names a snapshot `<module path>__<name>.snap` and keeps it in
/// `snapshots/` beside the file that asserts it. The console's snapshots
/// were recorded when its tests were the one module `console` in
/// `tests/it/console.rs`; its themed submodules assert through this
/// `insta` (each imports it with `use super::insta;`) so a snapshot keeps
/// its name and file, `tests/it/snapshots/it__console__NAME.snap`, whichever
/// submodule asserts it.
mod insta {
    macro_rules! assert_snapshot {
        ($name:expr, $value:expr $(,)?) => {
            $crate::console::snapshot_settings()
                .bind(|| ::insta::assert_snapshot!($crate::console::snapshot_name($name), $value))
        };
    }
    pub(super) use assert_snapshot;
}

/// The current settings, with the module left out of the file name
/// (`snapshot_name` puts this module's in) and the folder one up from
/// `console/`, where the snapshots were recorded.
fn snapshot_settings() -> ::insta::Settings {
    let mut settings = ::insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("../snapshots");
    settings
}

/// `name` as insta names a snapshot asserted in this module.
fn snapshot_name(name: impl std::fmt::Display) -> String {
    format!("{}__{name}", module_path!().replace("::", "__"))
}

// ---- the seeded app -----------------------------------------------------------

/// An attached console on the seeded data, on the Tasks view.
fn app_with(theme: &str, read_only: bool) -> App {
    let mut app = App::new(
        Theme::load(theme).unwrap(),
        read_only,
        "● attached".into(),
        false,
    );
    app.message(Message::Snapshot(Box::new(snapshot())));
    app.outbox.clear();
    app
}

fn seeded() -> App {
    app_with("default", false)
}

/// Opens task 1 and delivers its rows, as the backend would.
fn open_detail(app: &mut App) {
    press(app, "2g");
    key(app, KeyCode::Enter);
    assert_eq!(app.view, View::TaskDetail);
    app.message(Message::Snapshot(Box::new(Snapshot {
        task: Some(detail()),
        ..snapshot()
    })));
}

/// Opens triage and delivers the failures.
fn open_triage(app: &mut App) {
    press(app, "!");
    assert_eq!(app.view, View::Triage);
    app.message(Message::Snapshot(Box::new(Snapshot {
        failures: Some(failures()),
        ..snapshot()
    })));
}

// ---- keys and screens -------------------------------------------------------

fn key(app: &mut App, code: KeyCode) {
    app.key(KeyEvent::new(code, KeyModifiers::NONE));
}

/// Presses each character as a key.
fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        let m = if c.is_ascii_uppercase() {
            KeyModifiers::SHIFT
        } else {
            KeyModifiers::NONE
        };
        app.key(KeyEvent::new(KeyCode::Char(c), m));
    }
}

fn draw_buffer(app: &App, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw::draw(f, app)).unwrap();
    t.backend().buffer().clone()
}

/// The screen as text, one line per row, trailing blanks trimmed.
fn text_of(b: &Buffer) -> String {
    let w = b.area.width as usize;
    let mut out = String::new();
    for cells in b.content.chunks(w) {
        let line: String = cells.iter().map(|c| c.symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn render(app: &App, w: u16, h: u16) -> String {
    text_of(&draw_buffer(app, w, h))
}

fn colour(c: Color) -> String {
    match c {
        Color::Reset => "-".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The screen with its styles: each row as runs of one style,
/// `«text»fg/bg+MODIFIERS`, so a snapshot shows what a theme changes.
fn styled_of(b: &Buffer) -> String {
    let w = b.area.width as usize;
    let mut out = String::new();
    for (y, cells) in b.content.chunks(w).enumerate() {
        let mut runs: Vec<(String, String)> = Vec::new();
        for c in cells {
            let mut style = format!("{}/{}", colour(c.fg), colour(c.bg));
            if !c.modifier.is_empty() {
                let mods: Vec<&str> = c.modifier.iter_names().map(|(n, _)| n).collect();
                style.push('+');
                style.push_str(&mods.join("+"));
            }
            match runs.last_mut() {
                Some((text, s)) if *s == style => text.push_str(c.symbol()),
                _ => runs.push((c.symbol().to_string(), style)),
            }
        }
        // A row that is blank in the default style says nothing.
        if runs.len() == 1 && runs[0].1 == "-/-" && runs[0].0.trim().is_empty() {
            continue;
        }
        out.push_str(&format!("{y:>2} "));
        for (text, style) in runs {
            out.push_str(&format!("«{text}»{style} "));
        }
        out.push('\n');
    }
    out
}

/// Snapshots the screen at 80×24 and 160×48 under `name`.
macro_rules! screens {
    ($name:literal, $app:expr) => {{
        let app = &$app;
        insta::assert_snapshot!(concat!($name, "_80x24"), render(app, 80, 24));
        insta::assert_snapshot!(concat!($name, "_160x48"), render(app, 160, 48));
    }};
}
// The submodules are declared above this definition, out of its textual
// scope: they reach it by path, through `use super::*`.
use screens;

fn acts(app: &App) -> Vec<&Request> {
    app.outbox
        .iter()
        .filter_map(|c| match c {
            Cmd::Act { request, .. } | Cmd::Submit { request, .. } => Some(request),
            _ => None,
        })
        .collect()
}

/// Does the looks at files the app asked for, as the backend's worker
/// would, and delivers the answers.
fn inspect_pending(app: &mut App) {
    let paths: Vec<String> = app
        .outbox
        .iter()
        .filter_map(|c| match c {
            Cmd::Inspect { path } => Some(path.clone()),
            _ => None,
        })
        .collect();
    app.outbox.retain(|c| !matches!(c, Cmd::Inspect { .. }));
    for path in paths {
        app.message(Message::Inspected(courier::console::backend::inspect(
            &path,
        )));
    }
}

fn flash(app: &App) -> String {
    app.flash
        .as_ref()
        .map(|(_, m)| m.clone())
        .unwrap_or_default()
}

// ---- NO_COLOR -----------------------------------------------------------------
//
// These stay in this module: the first runs the second as a child test by
// its exact name, `console::no_color_child`.

/// `NO_COLOR` picks mono unless `--theme` says otherwise. The environment
/// is the process's, so the check runs in a child test process of its own
/// rather than changing this one's environment under other threads.
#[test]
fn no_color_selects_mono() {
    let run = |value: &str| -> Output {
        Command::new(std::env::current_exe().unwrap())
            .args(["console::no_color_child", "--exact", "--nocapture"])
            .env("COURIER_TEST_NO_COLOR_CHILD", value)
            .env("NO_COLOR", value)
            .output()
            .unwrap()
    };
    for value in ["1", ""] {
        let o = run(value);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains("1 passed"),
            "NO_COLOR={value:?}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn no_color_child() {
    let Some(value) = std::env::var_os("COURIER_TEST_NO_COLOR_CHILD") else {
        return;
    };
    let chosen = Theme::choose(None).unwrap();
    if value.is_empty() {
        // An empty NO_COLOR does not count (no-color.org).
        assert_eq!(chosen.name, "default");
    } else {
        assert_eq!(chosen.name, "mono");
        assert_eq!(chosen, Theme::load("mono").unwrap());
    }
    // An explicit --theme wins.
    assert_eq!(Theme::choose(Some("light")).unwrap().name, "light");
}
