//! Small drawing pieces every part of the console shares: the bordered
//! block, a centred overlay area, state and level styles.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell};

use super::text::{self, Role};
use super::theme::Theme;
use crate::model::Level;

pub use crate::model::human_size;

pub fn block<'a>(theme: &Theme, title: String) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(format!(" {title} "), theme.title))
}

/// The first row to show so that `selected` is on screen.
pub fn window(selected: usize, height: usize) -> usize {
    if height == 0 || selected < height {
        0
    } else {
        selected + 1 - height
    }
}

/// An area of at most `w`×`h` in the middle of `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub fn role_style(theme: &Theme, role: Role) -> Style {
    match role {
        Role::Ok => theme.ok,
        Role::Error => theme.error,
        Role::Info => theme.info,
        Role::Warn => theme.warn,
        Role::Muted => theme.muted,
    }
}

/// A state with its symbol, in its role's style.
pub fn state_cell<'a>(theme: &Theme, state: impl text::Glance) -> Cell<'a> {
    Cell::from(format!("{} {state}", state.symbol())).style(role_style(theme, state.role()))
}

pub fn level_style(theme: &Theme, l: Level) -> Style {
    match l {
        Level::Info => theme.text,
        Level::Warn => theme.warn,
        Level::Error => theme.error,
    }
}

pub fn level_symbol(l: Level) -> &'static str {
    match l {
        Level::Info => "·",
        Level::Warn => "▲",
        Level::Error => "✖",
    }
}

/// Levels in order of severity, for "this level or worse".
pub fn level_rank(l: Level) -> u8 {
    match l {
        Level::Info => 0,
        Level::Warn => 1,
        Level::Error => 2,
    }
}

pub fn progress_bar(done: u64, total: u64, width: usize) -> String {
    if total == 0 || width == 0 {
        return String::new();
    }
    let filled = ((done as f64 / total as f64) * width as f64).round() as usize;
    format!(
        "{}{}",
        "█".repeat(filled.min(width)),
        "░".repeat(width - filled.min(width))
    )
}

/// A "key  value" line of a detail pane.
pub fn kv(theme: &Theme, k: &str, v: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{k:<12}"), theme.muted),
        Span::styled(v, theme.text),
    ])
}

/// `text` in lines of at most `width` characters, broken between words
/// where it can be (a word longer than a line is cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split(' ') {
            let (n, w) = (line.chars().count(), word.chars().count());
            if n > 0 && n + 1 + w > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            while line.chars().count() > width {
                let cut: String = line.chars().take(width).collect();
                line = line.chars().skip(width).collect();
                lines.push(cut);
            }
        }
        lines.push(line);
    }
    lines
}

/// Text an agent reported (a program's name, its publisher) as the
/// terminal shows it: a control character is written as `\u{1b}` instead
/// of acting, as the command line's output does.
pub fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
