//! The footer's prompts: `/` filters the shown list as you type, `:` runs
//! a command by name.

use ratatui::crossterm::event::{Event as CtEvent, KeyCode, KeyEvent};
use ratatui::text::{Line, Span};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use crate::console::component::{Effect, Footer, Overlay};
use crate::console::keymap::Action;
use crate::console::text;
use crate::console::theme::Theme;

/// Typing a filter; every key applies at once.
#[derive(Debug, Clone)]
pub struct Filter {
    input: Input,
}

impl Filter {
    /// Starts from the list's current filter.
    pub fn new(current: &str) -> Filter {
        Filter {
            input: Input::new(current.to_string()),
        }
    }
}

impl Overlay for Filter {
    fn key(&mut self, ev: &KeyEvent) -> Effect {
        match ev.code {
            KeyCode::Esc => Effect::All(vec![Effect::ClearFilter, Effect::Close]),
            KeyCode::Enter => Effect::Close,
            _ => {
                self.input.handle_event(&CtEvent::Key(*ev));
                Effect::Filter(self.input.value().to_string())
            }
        }
    }

    fn footer(&self, theme: &Theme) -> Footer<'_> {
        Footer::Prompt(Line::from(vec![
            Span::styled("/", theme.key),
            Span::raw(self.input.value().to_string()),
            Span::styled("▏", theme.accent),
            Span::styled(format!("   {}", text::FILTER_HINT), theme.muted),
        ]))
    }
}

/// Typing a command; Tab completes a prefix that names one.
#[derive(Debug, Clone, Default)]
pub struct CommandLine {
    input: Input,
}

impl CommandLine {
    pub fn value(&self) -> &str {
        self.input.value()
    }

    /// What a command asks for: the action it names, or why there is none.
    fn run(word: &str) -> Effect {
        let action = match word.trim_start_matches(':') {
            "pkg" | "pkgs" | "package" | "packages" => Action::ViewPackages,
            "task" | "tasks" => Action::ViewTasks,
            "dest" | "dests" | "destinations" => Action::ViewDestinations,
            "log" => Action::ViewLog,
            "triage" | "failed" => Action::Triage,
            "software" | "sw" | "programs" => Action::ViewSoftware,
            "policy" | "policies" => Action::ViewPolicies,
            "help" => Action::Help,
            "mouse" => Action::ToggleMouse,
            "q" | "quit" => Action::Quit,
            "" => return Effect::None,
            other => return Effect::warn(format!("unknown command ':{other}' (Tab completes)")),
        };
        Effect::Act(action)
    }
}

impl Overlay for CommandLine {
    fn key(&mut self, ev: &KeyEvent) -> Effect {
        match ev.code {
            KeyCode::Esc => Effect::Close,
            KeyCode::Enter => {
                let word = self.input.value().trim().to_string();
                Effect::All(vec![Effect::Close, CommandLine::run(&word)])
            }
            KeyCode::Tab => {
                let v = self.input.value().trim().to_string();
                let matches: Vec<&str> = text::COMMANDS
                    .iter()
                    .map(|(c, _)| *c)
                    .filter(|c| c.starts_with(&v))
                    .collect();
                if let [only] = matches[..] {
                    self.input = Input::new(only.to_string());
                }
                Effect::None
            }
            _ => {
                self.input.handle_event(&CtEvent::Key(*ev));
                Effect::None
            }
        }
    }

    fn footer(&self, theme: &Theme) -> Footer<'_> {
        let v = self.input.value();
        let options: Vec<&str> = text::COMMANDS
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| c.starts_with(v))
            .collect();
        Footer::Prompt(Line::from(vec![
            Span::styled(":", theme.key),
            Span::raw(v.to_string()),
            Span::styled("▏", theme.accent),
            Span::styled(
                format!("   {}   {}", options.join(" "), text::COMMAND_HINT),
                theme.muted,
            ),
        ]))
    }
}
