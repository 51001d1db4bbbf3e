//! The console's state and how it changes. `App` routes: global keys,
//! which view is shown, which overlay is open, and messages from the
//! backend. What a key means in a view is the view's business
//! (`views/`), what it means in a dialog or form the overlay's
//! (`overlays/`). `App::key` and `App::message` are the only ways state
//! changes; drawing (`draw.rs`) only reads it.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};

use super::backend::{Command, Message, Snapshot};
use super::component::{Component, Ctx, Effect};
use super::data::Data;
use super::keymap::{self, Action};
use super::overlays::confirm::Confirm;
use super::overlays::help::Help;
use super::overlays::output::OutputPane;
use super::overlays::prompt::{CommandLine, Filter};
use super::table::Table;
use super::text;
use super::theme::Theme;
use super::views::Views;
use crate::model::Level;

pub use super::overlays::Mode;
pub use super::views::View;

pub struct App {
    pub theme: Theme,
    pub read_only: bool,
    /// "attached" to a `courier serve`, or "standalone" (server in here).
    pub link: String,
    pub connected: Result<(), String>,
    /// The view shown.
    pub view: View,
    /// The overlay open over it.
    pub mode: Mode,
    pub data: Data,
    pub views: Views,
    pub mouse: bool,
    /// The result of the last action, shown in the footer.
    pub flash: Option<(Level, String)>,
    pub quit: bool,
    /// Commands for the backend, drained by the loop.
    pub outbox: Vec<Command>,
    /// Whether the console runs the server (quitting stops it).
    pub standalone: bool,
    /// Whether the console runs the demo (quitting ends its server and
    /// agents): `courier demo` starts it with the link `text::DEMO_LINK`.
    pub demo: bool,
}

impl App {
    pub fn new(theme: Theme, read_only: bool, link: String, standalone: bool) -> App {
        let demo = link == text::DEMO_LINK;
        App {
            theme,
            read_only,
            link,
            connected: Ok(()),
            view: View::Tasks,
            mode: Mode::Normal,
            data: Data::default(),
            views: Views::default(),
            mouse: false,
            flash: None,
            quit: false,
            demo,
            outbox: Vec::new(),
            standalone,
        }
    }

    /// What components read while drawing.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            data: &self.data,
            theme: &self.theme,
            read_only: self.read_only,
        }
    }

    /// The list of a view.
    pub fn list(&self, view: View) -> &Table {
        self.views.get(view).table()
    }

    pub fn active(&self) -> &dyn Component {
        self.views.get(self.view)
    }

    /// The backend refresh the shown view needs.
    pub fn refresh(&mut self) -> Command {
        self.views.get_mut(self.view).refresh(&self.data)
    }

    fn flash(&mut self, level: Level, msg: impl Into<String>) {
        self.flash = Some((level, msg.into()));
    }

    // ---- data -------------------------------------------------------------

    pub fn message(&mut self, m: Message) {
        match m {
            Message::Snapshot(s) => self.snapshot(*s),
            Message::Done(Ok(msg)) => {
                self.flash(Level::Info, msg);
                let r = self.refresh();
                self.outbox.push(r);
            }
            Message::Warned(msg) => {
                self.flash(Level::Warn, msg);
                let r = self.refresh();
                self.outbox.push(r);
            }
            Message::Done(Err(e)) => self.flash(Level::Error, e),
            Message::Answer(r) => {
                let worked = r.is_ok();
                match self.mode.overlay_mut() {
                    Some(form) => {
                        let effect = form.answered(r);
                        self.apply(effect);
                    }
                    None => match r {
                        Ok(done) => self.flash(Level::Info, done),
                        Err(e) => self.flash(Level::Error, e.message),
                    },
                }
                if worked {
                    let r = self.refresh();
                    self.outbox.push(r);
                }
            }
            // A late answer must not replace a form or dialog opened since.
            Message::Output(Ok(_)) if !matches!(self.mode, Mode::Normal) => {}
            Message::Output(Ok(b)) => self.mode = Mode::Output(Box::new(OutputPane::of(b.0, &b.1))),
            Message::Output(Err(e)) => self.flash(Level::Error, e),
            Message::Planned(request, plan) => {
                if let Mode::TaskForm(form) = &mut self.mode
                    && let Some(next) = form.planned(request, plan)
                {
                    self.outbox.push(next);
                }
            }
            Message::Inspected(answer) => {
                if let Mode::PackageForm(form) = &mut self.mode {
                    form.inspected(answer);
                }
            }
            Message::Link(r) => {
                if let Err(e) = &r {
                    self.flash(Level::Error, format!("server unreachable: {e}"));
                }
                self.connected = r;
            }
        }
    }

    fn snapshot(&mut self, mut s: Snapshot) {
        self.data.absorb(&mut s);
        if let (Mode::Output(pane), Some(fetched)) = (&mut self.mode, &self.data.output) {
            pane.refreshed(fetched);
        }
        for v in View::ALL {
            self.views.get_mut(*v).on_snapshot(&mut s, &self.data);
        }
    }

    // ---- input ------------------------------------------------------------

    pub fn mouse(&mut self, ev: MouseEvent) {
        if !self.mouse || !matches!(self.mode, Mode::Normal) {
            return;
        }
        match ev.kind {
            MouseEventKind::ScrollDown => self.act(Action::Down),
            MouseEventKind::ScrollUp => self.act(Action::Up),
            _ => {}
        }
    }

    pub fn key(&mut self, ev: KeyEvent) {
        if ev.code == KeyCode::Char('c') && ev.modifiers.contains(KeyModifiers::CONTROL) {
            self.act(Action::Quit);
            return;
        }
        // `:task 2`, `:dest NAME`, `:pkg 3`: the command line names a view;
        // a jump to a row of it is answered here, where the rows are.
        if ev.code == KeyCode::Enter
            && let Mode::Command(line) = &self.mode
            && let Some(effect) = self.jump_command(line.value())
        {
            self.mode = Mode::Normal;
            self.apply(effect);
            return;
        }
        if let Some(overlay) = self.mode.overlay_mut() {
            let effect = overlay.key(&ev);
            self.apply(effect);
            return;
        }
        self.flash = None;
        match keymap::dispatch(self.active().context(), &ev) {
            Some(b) if b.mutates && self.read_only => self.flash(Level::Warn, text::READ_ONLY),
            Some(b) => self.act(b.action),
            None => {
                let name = keymap::event_label(&ev);
                self.flash(
                    Level::Warn,
                    text::does_nothing(&name, self.active().context()),
                );
            }
        }
    }

    /// The effect of a command line that jumps to a row: `task N` opens
    /// task N, `dest NAME` and `pkg N` select the row in their view.
    /// None for any other command.
    fn jump_command(&self, line: &str) -> Option<Effect> {
        let line = line.trim().trim_start_matches(':');
        let (word, arg) = line.split_once(char::is_whitespace)?;
        let arg = arg.trim();
        if arg.is_empty() {
            return None;
        }
        Some(match word {
            "task" | "tasks" | "t" => match arg
                .trim_start_matches('#')
                .parse::<i64>()
                .ok()
                .and_then(|id| self.data.tasks.iter().find(|t| t.id == id))
            {
                Some(t) => Effect::OpenTask(Box::new(t.clone())),
                None => Effect::warn(format!("no task {arg}")),
            },
            "dest" | "dests" | "destination" | "d" => Effect::Jump(View::Destinations, arg.into()),
            "pkg" | "pkgs" | "package" | "p" => {
                Effect::Jump(View::Packages, arg.trim_start_matches('#').into())
            }
            "policy" | "policies" => {
                Effect::Jump(View::Policies, arg.trim_start_matches('#').into())
            }
            _ => return None,
        })
    }

    /// Does what an action asks: the global ones here, the others in the
    /// shown view.
    pub fn act(&mut self, a: Action) {
        match a {
            Action::Quit => {
                let running: u64 = self
                    .data
                    .tasks
                    .iter()
                    .map(|t| t.counts.transferring + t.counts.installing)
                    .sum();
                if self.demo && running > 0 {
                    let question = format!("{running} {}", text::QUIT_DEMO_WITH_WORK);
                    self.mode = Mode::Confirm(Confirm::quit(question));
                } else if self.standalone && self.data.status.unfinished > 0 {
                    let question =
                        format!("{} {}", self.data.status.unfinished, text::QUIT_WITH_WORK);
                    self.mode = Mode::Confirm(Confirm::quit(question));
                } else {
                    self.quit = true;
                }
            }
            Action::Help => self.mode = Mode::Help(Help::new(self.active().context())),
            Action::Sort | Action::SortReverse => {
                let view = self.views.get_mut(self.view);
                let columns = view.sort_columns();
                if columns == 0 {
                    self.apply(Effect::Unhandled(a));
                    return;
                }
                if a == Action::Sort {
                    view.table_mut().next_sort(columns);
                } else {
                    view.table_mut().reverse_sort();
                }
                view.refilter(&self.data);
            }
            Action::Mark => {
                let view = self.views.get_mut(self.view);
                if !view.markable() {
                    self.apply(Effect::Unhandled(a));
                    return;
                }
                match view.table_mut().toggle_mark() {
                    Some(_) => view.move_by(1),
                    None => self.flash(Level::Warn, text::NOTHING_SELECTED),
                }
            }
            Action::CommandMode => self.mode = Mode::Command(CommandLine::default()),
            Action::Filter => self.mode = Mode::Filter(Filter::new(&self.active().table().filter)),
            Action::Down => self.move_by(1),
            Action::Up => self.move_by(-1),
            Action::PageDown => self.move_by(20),
            Action::PageUp => self.move_by(-20),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::NextPane => {
                let next = self.next_tab();
                self.switch(next);
            }
            Action::Back => {
                if !self.active().table().filter.is_empty() {
                    self.apply(Effect::ClearFilter);
                } else if let Some(parent) = self.active().parent() {
                    // The parent's list is as it was left and refreshes
                    // with the next tick: nothing to ask for now.
                    self.view = parent;
                }
            }
            Action::ToggleMouse => {
                self.mouse = !self.mouse;
                self.flash(
                    Level::Info,
                    if self.mouse { "mouse on" } else { "mouse off" },
                );
            }
            a => match self.shown_by(a) {
                Some(v) => self.switch(v),
                None => {
                    // Built from the fields, not `self.ctx()`, so the view
                    // can be borrowed mutably beside it.
                    let cx = Ctx {
                        data: &self.data,
                        theme: &self.theme,
                        read_only: self.read_only,
                    };
                    let effect = self.views.get_mut(self.view).handle(a, &cx);
                    self.apply(effect);
                }
            },
        }
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::None => {}
            Effect::All(effects) => {
                for e in effects {
                    self.apply(e);
                }
            }
            Effect::Send(commands) => self.outbox.extend(commands),
            Effect::Flash(level, msg) => self.flash(level, msg),
            Effect::Open(mode) => self.mode = mode,
            Effect::Close => self.mode = Mode::Normal,
            Effect::Switch(v) => self.switch(v),
            Effect::OpenTask(task) => {
                self.data.open_task(*task);
                self.switch(View::TaskDetail);
            }
            Effect::Act(a) => self.act(a),
            Effect::Quit => self.quit = true,
            Effect::Filter(filter) => {
                let view = self.views.get_mut(self.view);
                view.table_mut().set_filter(filter);
                view.refilter(&self.data);
            }
            Effect::ClearFilter => {
                let view = self.views.get_mut(self.view);
                view.table_mut().filter.clear();
                view.refilter(&self.data);
            }
            Effect::Unhandled(a) => {
                let key = keymap::label_of(a);
                self.flash(
                    Level::Warn,
                    text::does_nothing(&key, self.active().context()),
                );
            }
            Effect::Jump(v, id) => {
                self.switch(v);
                let view = self.views.get_mut(v);
                view.table_mut().filter.clear();
                view.refilter(&self.data);
                if !view.table_mut().select_id(&id) {
                    self.flash(Level::Warn, format!("no {} {id}", text::row_noun(v)));
                }
            }
            Effect::LogOf(words) => {
                self.switch(View::Log);
                let view = self.views.get_mut(View::Log);
                view.table_mut().set_filter(words);
                view.refilter(&self.data);
            }
        }
    }

    fn move_by(&mut self, delta: isize) {
        self.views.get_mut(self.view).move_by(delta);
    }

    /// The view whose tab `a` shows.
    fn shown_by(&self, a: Action) -> Option<View> {
        View::ALL
            .iter()
            .copied()
            .find(|v| self.views.get(*v).tab().is_some_and(|t| t.action == a))
    }

    /// The view whose tab is lit: the shown one's, or its parent's.
    pub fn tab_view(&self) -> View {
        self.active().parent().unwrap_or(self.view)
    }

    /// The view of the tab after the lit one, round to the first.
    fn next_tab(&self) -> View {
        let tabs: Vec<View> = View::ALL
            .iter()
            .copied()
            .filter(|v| self.views.get(*v).tab().is_some())
            .collect();
        let lit = self.tab_view();
        let at = tabs.iter().position(|v| *v == lit).unwrap_or(0);
        tabs.get((at + 1) % tabs.len().max(1))
            .copied()
            .unwrap_or(self.view)
    }

    fn switch(&mut self, v: View) {
        self.view = v;
        self.views.get_mut(v).on_show(&self.data);
        let r = self.refresh();
        self.outbox.push(r);
    }
}
