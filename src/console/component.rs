//! What views and overlays have in common with `App`: the context they are
//! given, the effects they ask for, and the two traits `App` routes
//! through. A component changes only itself; anything beyond (a request,
//! another view, a line in the footer) it returns as an `Effect`.

use std::collections::BTreeMap;

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
    OpenTask(Box<Task>),
    /// A global action, as if its key was pressed.
    Act(Action),
    Quit,
    /// A new filter for the shown view's list.
    Filter(String),
    ClearFilter,
    /// The action means nothing in this view: the footer says so.
    Unhandled(Action),
    /// Shows a view with the row of this identity selected (`:task 2`,
    /// Enter on a log event) and its list unfiltered.
    Jump(View, String),
    /// Shows the log filtered to these words (a destination's events).
    LogOf(String),
}

/// Work to start again on failed destinations: what the one confirmation
/// path names before it sends anything.
#[derive(Debug, Default)]
pub struct Rerun {
    /// By task id: its name, and the destinations to re-execute (None:
    /// every failed one of the task).
    pub tasks: BTreeMap<i64, (String, Option<Vec<String>>)>,
    /// How many destinations that is.
    pub count: usize,
    /// What they have in common ("failed with: exit 4 · …"), if anything.
    pub what: String,
}

impl Rerun {
    /// Adds destination `name` of task `id`.
    pub fn add(&mut self, id: i64, task: &str, name: &str) {
        let entry = self
            .tasks
            .entry(id)
            .or_insert_with(|| (task.to_string(), Some(Vec::new())));
        if let Some(names) = &mut entry.1
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_string());
            self.count += 1;
        }
    }

    /// Adds every failed destination of a task, `failed` of them.
    pub fn add_task(&mut self, id: i64, task: &str, failed: usize) {
        if let Some((_, Some(names))) = self.tasks.get(&id) {
            self.count -= names.len();
        }
        self.tasks.insert(id, (task.to_string(), None));
        self.count += failed;
    }

    fn destinations(&self) -> String {
        let n = self.count;
        format!("{n} destination{}", if n == 1 { "" } else { "s" })
    }

    /// The question: how many, what, and on which tasks and destinations.
    fn question(&self) -> String {
        let mut q = format!("Re-execute {}", self.destinations());
        if !self.what.is_empty() {
            q.push(' ');
            q.push_str(&self.what);
        }
        q.push('?');
        for (id, (name, only)) in self.tasks.iter().take(4) {
            q.push_str(&format!("\n· task {id} '{name}' on "));
            match only {
                Some(names) => q.push_str(&list_some(names, 4)),
                None => q.push_str("its failed destinations"),
            }
        }
        if self.tasks.len() > 4 {
            q.push_str(&format!("\n· and {} more tasks", self.tasks.len() - 4));
        }
        q
    }

    fn commands(&self) -> Vec<Command> {
        let done = if self.what.is_empty() {
            format!("re-executing {}", self.destinations())
        } else {
            format!("re-executing {} {}", self.destinations(), self.what)
        };
        self.tasks
            .iter()
            .map(|(id, (_, only))| Command::Act {
                request: Request::TaskRerun {
                    id: *id,
                    all: false,
                    only: only.clone(),
                },
                done: done.clone(),
            })
            .collect()
    }
}

/// The first `n` names, and how many more.
fn list_some(names: &[String], n: usize) -> String {
    let mut s = names.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > n {
        s.push_str(&format!(" and {} more", names.len() - n));
    }
    s
}

impl Effect {
    /// A change for the server; `done` is the footer line when it worked.
    pub fn act(request: Request, done: String) -> Effect {
        Effect::Send(vec![Command::Act { request, done }])
    }

    /// `p`: pauses a task that runs, resumes a paused one.
    pub fn pause_or_resume(task: Option<&crate::model::Task>) -> Effect {
        use crate::task::TaskStatus;
        match task {
            None => Effect::nothing_selected(),
            Some(t) if t.status == TaskStatus::Paused => Effect::act(
                Request::TaskResume { id: t.id },
                format!("task {}: resumed", t.id),
            ),
            Some(t) if matches!(t.status, TaskStatus::Completed | TaskStatus::Failed) => {
                Effect::info(format!("task {} has finished: nothing to pause", t.id))
            }
            Some(t) => Effect::act(
                Request::TaskPause { id: t.id },
                format!("task {}: paused, waiting work is held (p resumes)", t.id),
            ),
        }
    }

    /// Asks before a destructive request; Cancel is the default.
    pub fn confirm(question: String, request: Request, done: String) -> Effect {
        Effect::Open(Mode::Confirm(Confirm::ask(question, request, done)))
    }

    /// Starts work again: on one destination at once; on more, only after
    /// a question that names how many and what (Cancel the default). Every
    /// re-run of the console goes through here.
    pub fn rerun(r: Rerun) -> Effect {
        match r.count {
            0 => Effect::info("no failed destinations to re-execute"),
            1 => Effect::Send(r.commands()),
            _ => Effect::Open(Mode::Confirm(Confirm::ask_all(r.question(), r.commands()))),
        }
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

    /// How many columns `s` cycles through; 0: the list keeps its order.
    fn sort_columns(&self) -> usize {
        0
    }

    /// Whether Space marks rows for `r`/`d`.
    fn markable(&self) -> bool {
        false
    }

    /// An action of its own keys (or a global one it gives a meaning,
    /// like Enter).
    fn handle(&mut self, action: Action, cx: &Ctx) -> Effect;

    /// The refresh the view needs while shown.
    fn refresh(&mut self, data: &Data) -> Command {
        Command::Refresh {
            task: None,
            since: None,
            triage: false,
            fleet: data.fleet_due(),
            extra: Default::default(),
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
