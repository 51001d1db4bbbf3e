//! The `?` overlay: every key, from the keymap.

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use crate::console::component::{Ctx, Effect, Overlay};
use crate::console::keymap::{self, Context, KEYMAP};
use crate::console::widgets::{block, centered};

#[derive(Debug, Clone, Default)]
pub struct Help {
    pub scroll: u16,
}

impl Overlay for Help {
    fn key(&mut self, ev: &KeyEvent) -> Effect {
        match ev.code {
            KeyCode::Down | KeyCode::Char('j') => self.scroll = self.scroll.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_add(10),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(10),
            _ => return Effect::Close,
        }
        Effect::None
    }

    fn draw(&self, f: &mut Frame, cx: &Ctx) {
        let theme = cx.theme;
        let area = centered(f.area(), 78, f.area().height.saturating_sub(2));
        let mut lines = Vec::new();
        for ctx in Context::ALL {
            lines.push(Line::from(Span::styled(ctx.title(), theme.title)));
            for b in KEYMAP.iter().filter(|b| b.context == ctx) {
                let dim = b.mutates && cx.read_only;
                lines.push(Line::from(vec![
                    Span::styled(format!("  {:<14}", keymap::keys_label(b.keys)), theme.key),
                    Span::styled(
                        format!("{}{}", b.help, if dim { " (read-only)" } else { "" }),
                        if dim { theme.muted } else { theme.text },
                    ),
                ]));
            }
        }
        f.render_widget(Clear, area);
        f.render_widget(
            Paragraph::new(lines).scroll((self.scroll, 0)).block(block(
                theme,
                "Keys · ↑↓ scroll · any other key closes".into(),
            )),
            area,
        );
    }
}
