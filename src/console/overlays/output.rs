//! One destination's result in full: state, exit code, message and the
//! output of its command, scrollable.

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::text::Text;
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::console::component::{Ctx, Effect, Overlay};
use crate::console::text;
use crate::console::widgets::{block, centered};
use crate::model::TaskDestination;

#[derive(Debug, Clone)]
pub struct OutputPane {
    pub title: String,
    pub body: String,
    pub scroll: u16,
}

impl OutputPane {
    /// The pane for destination `d` of task `task`.
    pub fn of(task: i64, d: &TaskDestination) -> OutputPane {
        let mut body = String::new();
        body.push_str(&format!(
            "status   {} {}\n",
            text::state_symbol(d.status),
            d.status
        ));
        body.push_str(&format!(
            "attempt  {} (automatic retries {})\n",
            d.attempt, d.retries
        ));
        if let Some(c) = d.exit_code {
            body.push_str(&format!(
                "exit     {c}{}\n",
                d.meaning
                    .as_deref()
                    .map(|m| format!(" — {m}"))
                    .unwrap_or_default()
            ));
        }
        if let Some(m) = &d.message {
            body.push_str(&format!("message  {m}\n"));
        }
        if d.reboot_required {
            body.push_str("reboot   required\n");
        }
        body.push_str(&format!("updated  {}\n\n", d.updated_at));
        match d.output.as_deref().filter(|o| !o.trim().is_empty()) {
            Some(o) => body.push_str(o),
            None => body.push_str("(no output)"),
        }
        OutputPane {
            title: format!("task {task} · {}", d.name),
            body,
            scroll: 0,
        }
    }
}

impl Overlay for OutputPane {
    fn key(&mut self, ev: &KeyEvent) -> Effect {
        self.scroll = match ev.code {
            KeyCode::Down | KeyCode::Char('j') => self.scroll.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => self.scroll.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => self.scroll.saturating_add(10),
            KeyCode::PageUp => self.scroll.saturating_sub(10),
            KeyCode::Char('G') | KeyCode::End => self.body.lines().count().saturating_sub(5) as u16,
            KeyCode::Char('g') | KeyCode::Home => 0,
            _ => return Effect::Close,
        };
        Effect::None
    }

    fn draw(&self, f: &mut Frame, cx: &Ctx) {
        let full = f.area();
        let area = centered(
            full,
            full.width.saturating_sub(4),
            full.height.saturating_sub(2),
        );
        f.render_widget(Clear, area);
        f.render_widget(
            Paragraph::new(Text::from(self.body.clone()))
                .wrap(Wrap { trim: false })
                .scroll((self.scroll, 0))
                .block(block(
                    cx.theme,
                    format!("{} · ↑↓ PgUp/PgDn g/G · Esc closes", self.title),
                )),
            area,
        );
    }
}
