//! One destination's result in full: state, how long the attempt has run,
//! exit code, message and the output of its command, scrollable. While the
//! attempt runs the pane is live: every refresh brings the destination
//! again (`Command::Output` asks the backend to watch it), and the end of
//! the output stays in view as it grows. `y` copies the output.

use std::io::Write;
use std::path::PathBuf;

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::text::Text;
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::console::backend::Command;
use crate::console::component::{Ctx, Effect, Overlay};
use crate::console::text;
use crate::console::widgets::{block, centered};
use crate::model::{Level, TaskDestination};

#[derive(Debug, Clone)]
pub struct OutputPane {
    pub task: i64,
    /// The destination as last fetched; while the pane is open each
    /// refresh brings it again (`Data::output`, handed over by `App`).
    pub dest: TaskDestination,
    pub scroll: u16,
    /// Keeps the end of the output in view (the default while the attempt
    /// runs); scrolling up stops it, `G` starts it again.
    pub follow: bool,
    /// `l`: the installer's log instead of the command's output.
    pub show_log: bool,
}

/// "42 s", "3 min 07 s", "2 h 05 min".
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// Width of the labels ("message  "); a value that wraps continues under
/// the value, not under the label.
const LABEL: usize = 9;

/// Appends `label  value`, the value wrapped to `width` columns in all.
fn field(body: &mut String, label: &str, value: &str, width: usize) {
    let lines = crate::console::widgets::wrap(value, width.saturating_sub(LABEL).max(10));
    for (i, line) in lines.iter().enumerate() {
        let head = if i == 0 { label } else { "" };
        body.push_str(&format!("{head:<LABEL$}{line}\n"));
    }
}

/// What the pane shows of `d`, `width` columns wide.
pub fn body(d: &TaskDestination, width: usize) -> String {
    let mut body = String::new();
    let running = !d.status.is_final();
    let elapsed = d
        .elapsed_secs
        .map(|e| {
            if running {
                format!(" · running for {}", duration(e))
            } else {
                format!(" · took {}", duration(e))
            }
        })
        .unwrap_or_default();
    let status = format!("{} {}{elapsed}", text::state_symbol(d.status), d.status);
    field(&mut body, "status", &status, width);
    let attempt = format!("{} (automatic retries {})", d.attempt, d.retries);
    field(&mut body, "attempt", &attempt, width);
    if let Some(s) = &d.started_at {
        field(&mut body, "started", s, width);
    }
    if let Some(c) = d.exit_code {
        let meaning = d.meaning.as_deref().map(|m| format!(" — {m}"));
        field(
            &mut body,
            "exit",
            &format!("{c}{}", meaning.unwrap_or_default()),
            width,
        );
    }
    if let Some(m) = &d.message {
        field(&mut body, "message", m, width);
    }
    if d.reboot_required {
        field(&mut body, "reboot", "required", width);
    }
    if let Some(x) = d.detection {
        field(&mut body, "detected", x.as_str(), width);
    }
    if let Some(s) = &d.stuck {
        field(
            &mut body,
            "stuck",
            &format!("{} (since {})", s.reason, s.since),
            width,
        );
    }
    if d.has_log {
        field(
            &mut body,
            "log",
            "the installer's log is kept: l shows it",
            width,
        );
    }
    field(&mut body, "updated", &d.updated_at, width);
    body.push('\n');
    match d.output.as_deref().filter(|o| !o.trim().is_empty()) {
        Some(o) => body.push_str(o),
        None if running => body.push_str(text::OUTPUT_NOT_YET),
        None => body.push_str("(no output)"),
    }
    body
}

impl OutputPane {
    /// The pane for destination `d` of task `task`.
    pub fn of(task: i64, d: &TaskDestination) -> OutputPane {
        OutputPane {
            task,
            dest: d.clone(),
            scroll: 0,
            follow: !d.status.is_final(),
            show_log: false,
        }
    }

    /// A refresh brought destination rows: its own, unless older than
    /// what it shows, replaces what it shows.
    pub fn refreshed(&mut self, fetched: &(i64, TaskDestination)) {
        let (task, d) = fetched;
        if *task == self.task && d.name == self.dest.name && d.updated_at >= self.dest.updated_at {
            self.dest = d.clone();
        }
    }

    /// What `y` copies: the log when shown, else the output, else the
    /// message.
    fn copied(&self) -> Option<String> {
        let d = &self.dest;
        if self.show_log {
            return d.log.clone();
        }
        d.output
            .clone()
            .filter(|o| !o.trim().is_empty())
            .or_else(|| d.message.clone())
    }
}

/// Puts `text` on the terminal's clipboard (OSC 52, which terminals pass
/// to the system clipboard, over SSH too) and into a file, whose path is
/// returned: not every terminal honours OSC 52.
pub fn copy_out(text: &str, file_name: &str) -> std::io::Result<PathBuf> {
    use base64::Engine;
    use std::io::IsTerminal;
    let path = std::env::temp_dir().join(file_name);
    std::fs::write(&path, text)?;
    let mut out = std::io::stdout();
    if out.is_terminal() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        write!(out, "\x1b]52;c;{encoded}\x07")?;
        out.flush()?;
    }
    Ok(path)
}

/// A file name from a destination's name: letters, digits, '-', '.', '_'.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl OutputPane {
    /// What the pane shows: the destination's result, or its installer's
    /// log (`l`).
    fn text(&self, width: usize) -> String {
        match (&self.dest.log, self.show_log) {
            (Some(log), true) => format!(
                "installer log of {}, its last 64 KiB (l: back to the output)\n\n{log}",
                self.dest.name
            ),
            _ => body(&self.dest, width),
        }
    }
}

impl Overlay for OutputPane {
    fn key(&mut self, ev: &KeyEvent) -> Effect {
        // Only bounds the scroll: the width the lines wrap at hardly matters.
        let lines = self.text(usize::MAX).lines().count();
        match ev.code {
            KeyCode::Down | KeyCode::Char('j') => self.scroll = self.scroll.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => {
                self.follow = false;
                self.scroll = self.scroll.saturating_sub(1)
            }
            KeyCode::PageDown | KeyCode::Char(' ') => self.scroll = self.scroll.saturating_add(10),
            KeyCode::PageUp => {
                self.follow = false;
                self.scroll = self.scroll.saturating_sub(10)
            }
            KeyCode::Char('G') | KeyCode::End => {
                self.follow = true;
                self.scroll = lines.saturating_sub(5) as u16
            }
            KeyCode::Char('g') | KeyCode::Home => {
                self.follow = false;
                self.scroll = 0
            }
            KeyCode::Char('l') => {
                if self.dest.log.is_none() {
                    return Effect::info(
                        "no installer log: one is kept when a Windows Installer (msiexec) command fails",
                    );
                }
                self.show_log = !self.show_log;
                self.follow = false;
                self.scroll = 0;
            }
            KeyCode::Char('y') => {
                let Some(text) = self.copied() else {
                    return Effect::warn(text::NOTHING_TO_COPY);
                };
                let file = format!(
                    "courier-task{}-{}.txt",
                    self.task,
                    file_safe(&self.dest.name)
                );
                return match copy_out(&text, &file) {
                    Ok(path) => Effect::info(format!("{} {}", text::COPIED, path.display())),
                    Err(e) => Effect::Flash(Level::Error, format!("cannot copy: {e}")),
                };
            }
            _ => {
                return Effect::All(vec![Effect::Send(vec![Command::Unwatch]), Effect::Close]);
            }
        }
        Effect::None
    }

    fn draw(&self, f: &mut Frame, cx: &Ctx) {
        let full = f.area();
        let area = centered(
            full,
            full.width.saturating_sub(4),
            full.height.saturating_sub(2),
        );
        let d = &self.dest;
        let inner_w = area.width.saturating_sub(2).max(1) as usize;
        let text = Text::from(self.text(inner_w));
        // Following: the last lines in view, counting the rows wrapping
        // makes of long lines.
        let inner_h = area.height.saturating_sub(2) as usize;
        let scroll = if self.follow {
            let rows: usize = text
                .lines
                .iter()
                .map(|l| l.width().div_ceil(inner_w).max(1))
                .sum();
            rows.saturating_sub(inner_h) as u16
        } else {
            self.scroll
        };
        let live = if d.status.is_final() { "" } else { " · live" };
        f.render_widget(Clear, area);
        f.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: false })
                .scroll((scroll, 0))
                .block(block(
                    cx.theme,
                    format!(
                        "task {} · {}{live} · ↑↓ PgUp/PgDn g/G · y copy · Esc closes",
                        self.task, d.name
                    ),
                )),
            area,
        );
    }
}
