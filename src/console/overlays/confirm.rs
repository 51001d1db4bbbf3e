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

#[derive(Debug, Clone)]
pub struct Confirm {
    pub text: String,
    pub on_yes: Option<(Request, String)>,
    /// Yes quits the console instead of sending a request.
    pub quit: bool,
    pub yes_selected: bool,
}

impl Confirm {
    /// Asks before sending `request`; `done` is the footer line after.
    pub fn ask(text: String, request: Request, done: String) -> Confirm {
        Confirm {
            text,
            on_yes: Some((request, done)),
            quit: false,
            yes_selected: false,
        }
    }

    /// Asks before quitting.
    pub fn quit(text: String) -> Confirm {
        Confirm {
            text,
            on_yes: None,
            quit: true,
            yes_selected: false,
        }
    }

    fn yes(&mut self) -> Effect {
        let then = if self.quit {
            Effect::Quit
        } else if let Some((request, done)) = self.on_yes.take() {
            Effect::Send(vec![Command::Act { request, done }])
        } else {
            Effect::None
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
        let area = centered(f.area(), 64, 9);
        let (yes, no) = if self.yes_selected {
            (theme.selection, theme.text)
        } else {
            (theme.text, theme.selection)
        };
        let lines = vec![
            Line::from(Span::styled(self.text.clone(), theme.text)),
            Line::from(""),
            Line::from(vec![
                Span::styled(" [ Cancel ] ", no),
                Span::raw("   "),
                Span::styled(" [ Yes ] ", yes),
            ]),
        ];
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
