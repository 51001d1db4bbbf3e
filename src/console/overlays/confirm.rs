//! The one confirmation before something destructive: it names what will
//! happen, and Cancel is the default.

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::api::Request;
use crate::console::backend::Command;
use crate::console::component::{Ctx, Effect, Footer, Overlay};
use crate::console::text;
use crate::console::theme::Theme;
use crate::console::widgets::{block, centered};

#[derive(Debug)]
pub struct Confirm {
    pub text: String,
    /// What Yes sends: one request, or one per task of a re-run.
    pub on_yes: Vec<Command>,
    /// Yes quits the console instead of sending a request.
    pub quit: bool,
    pub yes_selected: bool,
}

impl Confirm {
    /// Asks before sending `request`; `done` is the footer line after.
    pub fn ask(text: String, request: Request, done: String) -> Confirm {
        Confirm::ask_all(text, vec![Command::Act { request, done }])
    }

    /// Asks before sending `commands`, in order.
    pub fn ask_all(text: String, commands: Vec<Command>) -> Confirm {
        Confirm {
            text,
            on_yes: commands,
            quit: false,
            yes_selected: false,
        }
    }

    /// Asks before quitting.
    pub fn quit(text: String) -> Confirm {
        Confirm {
            text,
            on_yes: Vec::new(),
            quit: true,
            yes_selected: false,
        }
    }

    /// The requests Yes would send.
    pub fn requests(&self) -> Vec<&Request> {
        self.on_yes
            .iter()
            .filter_map(|c| match c {
                Command::Act { request, .. } => Some(request),
                _ => None,
            })
            .collect()
    }

    fn yes(&mut self) -> Effect {
        let then = if self.quit {
            Effect::Quit
        } else {
            Effect::Send(std::mem::take(&mut self.on_yes))
        };
        Effect::All(vec![Effect::Close, then])
    }
}

impl Overlay for Confirm {
    fn key(&mut self, ev: &KeyEvent) -> Effect {
        match ev.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => self.yes(),
            KeyCode::Enter if self.yes_selected => self.yes(),
            KeyCode::Tab | KeyCode::Left | KeyCode::Right | KeyCode::BackTab => {
                self.yes_selected = !self.yes_selected;
                Effect::None
            }
            _ => Effect::All(vec![Effect::info("cancelled"), Effect::Close]),
        }
    }

    fn draw(&self, f: &mut Frame, cx: &Ctx) {
        let theme = cx.theme;
        // Tall enough for a question of a few lines; the keys are in the footer.
        // As tall as the question wraps to, with the buttons under it.
        let inner = 68usize;
        let text_rows: usize = self
            .text
            .lines()
            .map(|l| l.chars().count().div_ceil(inner).max(1))
            .sum();
        let area = centered(f.area(), inner as u16 + 4, (text_rows + 4) as u16);
        let (yes, no) = if self.yes_selected {
            (theme.selection, theme.text)
        } else {
            (theme.text, theme.selection)
        };
        let mut lines: Vec<Line> = self
            .text
            .lines()
            .map(|l| Line::from(Span::styled(l.to_string(), theme.text)))
            .collect();
        lines.extend([
            Line::from(""),
            Line::from(vec![
                Span::styled(" [ Cancel ] ", no),
                Span::raw("   "),
                Span::styled(" [ Yes ] ", yes),
            ]),
        ]);
        f.render_widget(Clear, area);
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: true })
                .block(block(theme, "Confirm".into())),
            area,
        );
    }

    fn footer(&self, _theme: &Theme) -> Footer<'_> {
        Footer::Hint(text::CONFIRM_HINT)
    }
}
