//! What views and overlays have in common with `App`: the context they are
//! given, the effects they ask for, and the two traits `App` routes
//! through. A component changes only itself; anything beyond (a request,
//! another view, a line in the footer) it returns as an `Effect`.

use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::Line;

use super::backend::{Command, Snapshot};
use super::data::Data;
use super::keymap::{Action, Context};
use super::overlays::Mode;
use super::overlays::confirm::Confirm;
use super::table::Table;
use super::text;
use super::theme::Theme;
use super::views::View;
use crate::api::{ApiError, Request};
use crate::model::{Level, Task};

/// What a component may read while it handles a key or draws.
pub struct Ctx<'a> {
    pub data: &'a Data,
    pub theme: &'a Theme,
    pub read_only: bool,
}

/// What a component asks `App` to do.
#[derive(Debug)]
pub enum Effect {
    None,
    /// Several effects, in order.
    All(Vec<Effect>),
    /// Commands for the backend.
    Send(Vec<Command>),
    /// The result of the key, in the footer.
    Flash(Level, String),
    /// Opens an overlay.
    Open(Mode),
    /// Closes the overlay.
    Close,
    /// Shows a view and asks for the data it needs.
    Switch(View),
    /// Opens a task in its detail view: the list's summary of it shows
    /// until its rows arrive.
    OpenTask(Task),
    /// A global action, as if its key was pressed.
    Act(Action),
    Quit,
    /// A new filter for the shown view's list.
    Filter(String),
    ClearFilter,
}

impl Effect {
    /// A change for the server; `done` is the footer line when it worked.
    pub fn act(request: Request, done: String) -> Effect {
        Effect::Send(vec![Command::Act { request, done }])
    }

    /// Asks before a destructive request; Cancel is the default.
    pub fn confirm(question: String, request: Request, done: String) -> Effect {
        Effect::Open(Mode::Confirm(Confirm::ask(question, request, done)))
    }

    pub fn info(msg: impl Into<String>) -> Effect {
        Effect::Flash(Level::Info, msg.into())
    }

    pub fn warn(msg: impl Into<String>) -> Effect {
        Effect::Flash(Level::Warn, msg.into())
    }

    pub fn nothing_selected() -> Effect {
        Effect::warn(text::NOTHING_SELECTED)
    }
}

/// A view's tab: the global action whose key shows it, and its label.
#[derive(Debug, Clone, Copy)]
pub struct Tab {
    pub action: Action,
    pub label: &'static str,
}

/// A full-screen view: a list with a detail pane. Each owns its state and
/// its list; the data they show is shared (`Data`).
pub trait Component {
    /// The keymap context of its own keys.
    fn context(&self) -> Context;

    /// Its tab; none for a view opened from another.
    fn tab(&self) -> Option<Tab> {
        None
    }

    /// Words after the tab's label.
    fn badge(&self, _data: &Data) -> String {
        String::new()
    }

    /// The view it is opened from: that tab is lit and Esc goes back.
    fn parent(&self) -> Option<View> {
        None
    }

    fn table(&self) -> &Table;

    fn table_mut(&mut self) -> &mut Table;

    /// Recomputes which rows pass the list's filter.
    fn refilter(&mut self, data: &Data);

    /// Data came; the view takes from the snapshot what is its own.
    fn on_snapshot(&mut self, _snap: &mut Snapshot, data: &Data) {
        self.refilter(data);
    }

    /// The view is about to be shown.
    fn on_show(&mut self, _data: &Data) {}

    fn move_by(&mut self, delta: isize) {
        self.table_mut().move_by(delta);
    }

    /// An action of its own keys (or a global one it gives a meaning,
    /// like Enter).
    fn handle(&mut self, action: Action, cx: &Ctx) -> Effect;

    /// The refresh the view needs while shown.
    fn refresh(&mut self, _data: &Data) -> Command {
        Command::Refresh {
            task: None,
            triage: false,
        }
    }

    /// Draws the list.
    fn draw(&self, f: &mut Frame, area: Rect, cx: &Ctx);

    /// The detail pane: the selected row in full.
    fn detail(&self, cx: &Ctx) -> Vec<Line<'static>>;

    /// Whether the strip of recent events shows under it.
    fn log_strip(&self) -> bool {
        true
    }
}

/// How an overlay uses the footer.
pub enum Footer<'a> {
    /// A prompt being typed: shown even over a flash line.
    Prompt(Line<'a>),
    /// Shown unless a flash line is.
    Hint(&'static str),
    /// The shown view's keys, unless a flash line.
    Keys,
}

/// A dialog, form, pane or prompt over the view; it has every key while
/// open.
pub trait Overlay {
    fn key(&mut self, ev: &KeyEvent) -> Effect;

    fn draw(&self, _f: &mut Frame, _cx: &Ctx) {}

    fn footer(&self, _theme: &Theme) -> Footer<'_> {
        Footer::Keys
    }

    /// The answer to a request a form submitted (`Command::Submit`): a
    /// form closes when it worked and shows a refusal at its fields.
    fn answered(&mut self, r: Result<String, ApiError>) -> Effect {
        match r {
            Ok(done) => Effect::info(done),
            Err(e) => Effect::Flash(Level::Error, e.message),
        }
    }
}
