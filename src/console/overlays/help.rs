//! The `?` overlay: every key, from the keymap, the shown view's first.

use std::cell::Cell;

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use crate::console::component::{Ctx, Effect, Overlay};
use crate::console::keymap::{self, Context, KEYMAP};
use crate::console::theme::Theme;
use crate::console::widgets::{block, centered};

#[derive(Debug, Clone)]
pub struct Help {
    /// The first line shown.
    pub scroll: u16,
    /// The sections in the order shown: the view's, then the rest.
    pub order: Vec<Context>,
    /// How many lines the sections take.
    total: u16,
    /// How many lines the last frame showed at once, so scrolling stops
    /// at the end of the content (like ratatui's `ListState`, a layout
    /// fact only drawing learns).
    page: Cell<u16>,
}

impl Help {
    /// The help of the view whose keymap context is `current`: its keys
    /// first, then those that work everywhere, then the other views'.
    pub fn new(current: Context) -> Help {
        let mut order = vec![current];
        order.extend(Context::ALL.iter().copied().filter(|c| *c != current));
        // A title per section, a blank line between sections, a line a key.
        let total = order.len() * 2 - 1 + KEYMAP.len();
        Help {
            scroll: 0,
            order,
            total: total as u16,
            page: Cell::new(0),
        }
    }

    fn max_scroll(&self) -> u16 {
        self.total.saturating_sub(self.page.get().max(1))
    }

    fn lines(&self, theme: &Theme, read_only: bool) -> Vec<Line<'static>> {
        let mut lines = Vec::new();
        for (n, ctx) in self.order.iter().enumerate() {
            if n > 0 {
                lines.push(Line::from(""));
            }
            lines.push(Line::from(Span::styled(ctx.title(), theme.title)));
            for b in KEYMAP.iter().filter(|b| b.context == *ctx) {
                let dim = b.mutates && read_only;
                lines.push(Line::from(vec![
                    Span::styled(format!("  {:<14}", keymap::keys_label(b.keys)), theme.key),
                    Span::styled(
                        format!("{}{}", b.help, if dim { " (read-only)" } else { "" }),
                        if dim { theme.muted } else { theme.text },
                    ),
                ]));
            }
        }
        lines
    }
}

impl Overlay for Help {
    fn key(&mut self, ev: &KeyEvent) -> Effect {
        let max = self.max_scroll();
        let by = |s: u16, d: i32| (i32::from(s) + d).clamp(0, i32::from(max)) as u16;
        self.scroll = match ev.code {
            KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Esc => return Effect::Close,
            KeyCode::Down | KeyCode::Char('j') => by(self.scroll, 1),
            KeyCode::Up | KeyCode::Char('k') => by(self.scroll, -1),
            KeyCode::PageDown | KeyCode::Char(' ') => by(self.scroll, 10),
            KeyCode::PageUp => by(self.scroll, -10),
            KeyCode::Home | KeyCode::Char('g') => 0,
            KeyCode::End | KeyCode::Char('G') => max,
            // Nothing else closes it: a stray key keeps the help open.
            _ => self.scroll.min(max),
        };
        Effect::None
    }

    fn draw(&self, f: &mut Frame, cx: &Ctx) {
        let theme = cx.theme;
        let area = centered(f.area(), 78, f.area().height.saturating_sub(2));
        self.page.set(area.height.saturating_sub(2));
        let lines = self.lines(theme, cx.read_only);
        let scroll = self.scroll.min(self.max_scroll());
        f.render_widget(Clear, area);
        f.render_widget(
            Paragraph::new(lines).scroll((scroll, 0)).block(block(
                theme,
                "Keys · ↑↓ PgUp PgDn g G scroll · ? Esc q close".into(),
            )),
            area,
        );
    }
}
