//! Console state and how it changes. `App::key` and `App::message` are the
//! only ways state changes; drawing (`draw.rs`) only reads it.

use std::collections::{BTreeMap, HashSet, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::backend::{Command, Message, Snapshot};
use super::form::{PackageForm, TaskForm};
use super::keymap::{self, Action, Context};
use super::text;
use super::theme::Theme;
use crate::api::Request;
use crate::model::{Destination, Event, Failure, Level, Package, Status, Task, TaskDestination};

/// Events kept for the log view.
pub const LOG_CAPACITY: usize = 5000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Packages,
    Tasks,
    TaskDetail,
    Destinations,
    Log,
    Triage,
}

impl View {
    pub fn context(self) -> Context {
        match self {
            View::Packages => Context::Packages,
            View::Tasks => Context::Tasks,
            View::TaskDetail => Context::TaskDetail,
            View::Destinations => Context::Destinations,
            View::Log => Context::Log,
            View::Triage => Context::Triage,
        }
    }
}

/// Selection and filter of one list; `visible` holds the indices that pass
/// the filter, recomputed when data or filter change (never while drawing).
#[derive(Debug, Clone, Default)]
pub struct ListState {
    pub selected: usize,
    pub filter: String,
    pub visible: Vec<usize>,
}

impl ListState {
    fn clamp(&mut self) {
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
    }

    /// The index into the data of the selected row.
    pub fn current(&self) -> Option<usize> {
        self.visible.get(self.selected).copied()
    }
}

/// A question before something destructive. Cancel is the default.
#[derive(Debug, Clone)]
pub struct Confirm {
    pub text: String,
    pub on_yes: Option<(Request, String)>,
    /// Yes quits the console instead of sending a request.
    pub quit: bool,
    pub yes_selected: bool,
}

#[derive(Debug, Clone)]
pub struct OutputPane {
    pub title: String,
    pub body: String,
    pub scroll: u16,
}

#[derive(Debug, Clone)]
pub enum Mode {
    Normal,
    Filter(Input),
    Command(Input),
    Help(u16),
    Confirm(Confirm),
    PackageForm(Box<PackageForm>),
    TaskForm(Box<TaskForm>),
    Output(OutputPane),
}

/// Failed destinations sharing one cause.
#[derive(Debug, Clone)]
pub struct Group {
    pub cause: String,
    /// Indices into `App::failures`.
    pub rows: Vec<usize>,
    pub tasks: usize,
}

/// A row of the triage list: a group, or one of its destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriageRow {
    Group(usize),
    Member(usize, usize),
}

pub struct App {
    pub theme: Theme,
    pub read_only: bool,
    /// "attached" to a `courier serve`, or "standalone" (server in here).
    pub link: String,
    pub connected: Result<(), String>,
    pub view: View,
    pub mode: Mode,
    pub status: Status,
    /// Bytes per second served, from the last two snapshots.
    pub rate: Option<f64>,
    last_served: Option<(std::time::Instant, u64)>,
    pub packages: Vec<Package>,
    pub tasks: Vec<Task>,
    pub destinations: Vec<Destination>,
    pub events: VecDeque<Event>,
    pub task: Option<Task>,
    pub failures: Vec<Failure>,
    pub groups: Vec<Group>,
    pub expanded: HashSet<String>,
    pub triage_rows: Vec<TriageRow>,
    pub lists: BTreeMap<&'static str, ListState>,
    pub log_follow: bool,
    /// Least level shown in the log.
    pub log_level: Level,
    pub mouse: bool,
    /// The result of the last action, shown in the footer.
    pub flash: Option<(Level, String)>,
    pub quit: bool,
    /// Commands for the backend, drained by the loop.
    pub outbox: Vec<Command>,
    /// Whether the console runs the server (quitting stops it).
    pub standalone: bool,
    /// When the open task's rows were last asked for.
    task_fetched: Option<std::time::Instant>,
}

fn list_key(view: View) -> &'static str {
    match view {
        View::Packages => "packages",
        View::Tasks => "tasks",
        View::TaskDetail => "detail",
        View::Destinations => "destinations",
        View::Log => "log",
        View::Triage => "triage",
    }
}

impl App {
    pub fn new(theme: Theme, read_only: bool, link: String, standalone: bool) -> App {
        App {
            theme,
            read_only,
            link,
            connected: Ok(()),
            view: View::Tasks,
            mode: Mode::Normal,
            status: Status::default(),
            rate: None,
            last_served: None,
            packages: Vec::new(),
            tasks: Vec::new(),
            destinations: Vec::new(),
            events: VecDeque::new(),
            task: None,
            failures: Vec::new(),
            groups: Vec::new(),
            expanded: HashSet::new(),
            triage_rows: Vec::new(),
            lists: BTreeMap::new(),
            log_follow: true,
            log_level: Level::Info,
            mouse: false,
            flash: None,
            quit: false,
            outbox: Vec::new(),
            standalone,
            task_fetched: None,
        }
    }

    pub fn list(&self, view: View) -> &ListState {
        static EMPTY: std::sync::OnceLock<ListState> = std::sync::OnceLock::new();
        self.lists
            .get(list_key(view))
            .unwrap_or_else(|| EMPTY.get_or_init(ListState::default))
    }

    fn list_mut(&mut self, view: View) -> &mut ListState {
        self.lists.entry(list_key(view)).or_default()
    }

    /// The backend refresh this screen needs. The open task's rows come
    /// every time while it is small; a big one (thousands of rows, megabytes
    /// of JSON) only when its counts changed, or every 10 seconds.
    pub fn refresh(&mut self) -> Command {
        const BIG: usize = 2000;
        let task = match (self.view, &self.task) {
            (View::TaskDetail, Some(t)) => {
                let summary = self.tasks.iter().find(|s| s.id == t.id);
                let changed = summary.is_none_or(|s| s.counts != t.counts || s.status != t.status);
                let stale = self
                    .task_fetched
                    .is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(10));
                (t.destinations.len() <= BIG || changed || stale).then_some(t.id)
            }
            _ => None,
        };
        if task.is_some() {
            self.task_fetched = Some(std::time::Instant::now());
        }
        Command::Refresh {
            task,
            triage: self.view == View::Triage,
        }
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
            Message::Done(Err(e)) => self.flash(Level::Error, e),
            // A late answer must not replace a form or dialog opened since.
            Message::Output(Ok(_)) if !matches!(self.mode, Mode::Normal) => {}
            Message::Output(Ok((task, d))) => {
                let mut body = String::new();
                body.push_str(&format!(
                    "status   {} {}\n",
                    text::state_symbol(&d.status),
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
                self.mode = Mode::Output(OutputPane {
                    title: format!("task {task} · {}", d.name),
                    body,
                    scroll: 0,
                });
            }
            Message::Output(Err(e)) => self.flash(Level::Error, e),
            Message::Link(r) => {
                if let Err(e) = &r {
                    self.flash(Level::Error, format!("server unreachable: {e}"));
                }
                self.connected = r;
            }
        }
    }

    fn snapshot(&mut self, s: Snapshot) {
        let now = std::time::Instant::now();
        if let Some((at, served)) = self.last_served {
            let secs = now.duration_since(at).as_secs_f64();
            if secs > 0.2 && s.status.bytes_served >= served {
                self.rate = Some((s.status.bytes_served - served) as f64 / secs);
            }
        }
        self.last_served = Some((now, s.status.bytes_served));
        self.status = s.status;
        self.packages = s.packages;
        self.tasks = s.tasks;
        self.destinations = s.destinations;
        for e in s.events {
            if self.events.len() == LOG_CAPACITY {
                self.events.pop_front();
            }
            self.events.push_back(e);
        }
        if let Some(t) = s.task {
            self.task = Some(t);
        }
        if let Some(f) = s.failures {
            self.failures = f;
            self.regroup();
        }
        self.refilter_all();
    }

    /// Groups failures by cause: the exit code and its meaning, else the
    /// message with numbers blanked (so "timed out after 3600 s" and "…
    /// 600 s" meet).
    fn regroup(&mut self) {
        let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, f) in self.failures.iter().enumerate() {
            by.entry(cause_of(f)).or_default().push(i);
        }
        let mut groups: Vec<Group> = by
            .into_iter()
            .map(|(cause, rows)| {
                let tasks: HashSet<i64> = rows.iter().map(|r| self.failures[*r].task_id).collect();
                Group {
                    cause,
                    tasks: tasks.len(),
                    rows,
                }
            })
            .collect();
        groups.sort_by(|a, b| b.rows.len().cmp(&a.rows.len()).then(a.cause.cmp(&b.cause)));
        self.groups = groups;
    }

    fn refilter_all(&mut self) {
        for v in [
            View::Packages,
            View::Tasks,
            View::TaskDetail,
            View::Destinations,
            View::Log,
            View::Triage,
        ] {
            self.refilter(v);
        }
    }

    /// Recomputes which rows of a list pass its filter.
    fn refilter(&mut self, view: View) {
        let f = self.list(view).filter.to_lowercase();
        let m = |s: &str| f.is_empty() || s.to_lowercase().contains(&f);
        let visible: Vec<usize> = match view {
            View::Packages => (0..self.packages.len())
                .filter(|i| {
                    let p = &self.packages[*i];
                    m(&p.name) || m(&p.format) || m(p.kind.as_str()) || m(&p.id.to_string())
                })
                .collect(),
            View::Tasks => (0..self.tasks.len())
                .filter(|i| {
                    let t = &self.tasks[*i];
                    m(&t.name) || m(&t.status) || m(&t.package_name) || m(&t.id.to_string())
                })
                .collect(),
            View::TaskDetail => match &self.task {
                Some(t) => (0..t.destinations.len())
                    .filter(|i| {
                        let d = &t.destinations[*i];
                        m(&d.name) || m(&d.status) || d.message.as_deref().is_some_and(m)
                    })
                    .collect(),
                None => Vec::new(),
            },
            View::Destinations => (0..self.destinations.len())
                .filter(|i| {
                    let d = &self.destinations[*i];
                    m(&d.name) || m(&d.status) || d.os.as_deref().is_some_and(m)
                })
                .collect(),
            View::Log => (0..self.events.len())
                .filter(|i| {
                    let e = &self.events[*i];
                    level_rank(e.level) >= level_rank(self.log_level)
                        && (m(&e.message) || m(&e.kind) || m(&e.subject))
                })
                .collect(),
            View::Triage => {
                let mut rows = Vec::new();
                for (g, group) in self.groups.iter().enumerate() {
                    let members: Vec<usize> = group
                        .rows
                        .iter()
                        .copied()
                        .filter(|r| {
                            let x = &self.failures[*r];
                            m(&group.cause) || m(&x.destination) || m(&x.task_name)
                        })
                        .collect();
                    if members.is_empty() {
                        continue;
                    }
                    rows.push(TriageRow::Group(g));
                    if self.expanded.contains(&group.cause) {
                        rows.extend(members.into_iter().map(|r| TriageRow::Member(g, r)));
                    }
                }
                self.triage_rows = rows;
                (0..self.triage_rows.len()).collect()
            }
        };
        let follow = view == View::Log && self.log_follow;
        let l = self.list_mut(view);
        l.visible = visible;
        if follow {
            l.selected = l.visible.len().saturating_sub(1);
        }
        l.clamp();
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
        let mode = std::mem::replace(&mut self.mode, Mode::Normal);
        self.mode = match mode {
            Mode::Normal => {
                self.flash = None;
                if let Some(b) = keymap::dispatch(self.view.context(), &ev) {
                    if b.mutates && self.read_only {
                        self.flash(Level::Warn, text::READ_ONLY);
                    } else {
                        self.act(b.action);
                    }
                }
                return;
            }
            Mode::Filter(mut input) => match ev.code {
                KeyCode::Esc => {
                    self.list_mut(self.view).filter.clear();
                    self.refilter(self.view);
                    Mode::Normal
                }
                KeyCode::Enter => Mode::Normal,
                _ => {
                    input.handle_event(&ratatui::crossterm::event::Event::Key(ev));
                    let v = input.value().to_string();
                    self.list_mut(self.view).filter = v;
                    self.list_mut(self.view).selected = 0;
                    self.refilter(self.view);
                    Mode::Filter(input)
                }
            },
            Mode::Command(mut input) => match ev.code {
                KeyCode::Esc => Mode::Normal,
                KeyCode::Enter => {
                    let cmd = input.value().trim().to_string();
                    self.run_command(&cmd);
                    return;
                }
                KeyCode::Tab => {
                    let v = input.value().trim().to_string();
                    let matches: Vec<&str> = text::COMMANDS
                        .iter()
                        .map(|(c, _)| *c)
                        .filter(|c| c.starts_with(&v))
                        .collect();
                    if matches.len() == 1 {
                        input = Input::new(matches[0].to_string());
                    }
                    Mode::Command(input)
                }
                _ => {
                    input.handle_event(&ratatui::crossterm::event::Event::Key(ev));
                    Mode::Command(input)
                }
            },
            Mode::Help(scroll) => match ev.code {
                KeyCode::Down | KeyCode::Char('j') => Mode::Help(scroll.saturating_add(1)),
                KeyCode::Up | KeyCode::Char('k') => Mode::Help(scroll.saturating_sub(1)),
                KeyCode::PageDown => Mode::Help(scroll.saturating_add(10)),
                KeyCode::PageUp => Mode::Help(scroll.saturating_sub(10)),
                _ => Mode::Normal,
            },
            Mode::Output(mut o) => match ev.code {
                KeyCode::Down | KeyCode::Char('j') => {
                    o.scroll = o.scroll.saturating_add(1);
                    Mode::Output(o)
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    o.scroll = o.scroll.saturating_sub(1);
                    Mode::Output(o)
                }
                KeyCode::PageDown | KeyCode::Char(' ') => {
                    o.scroll = o.scroll.saturating_add(10);
                    Mode::Output(o)
                }
                KeyCode::PageUp => {
                    o.scroll = o.scroll.saturating_sub(10);
                    Mode::Output(o)
                }
                KeyCode::Char('G') | KeyCode::End => {
                    o.scroll = o.body.lines().count().saturating_sub(5) as u16;
                    Mode::Output(o)
                }
                KeyCode::Char('g') | KeyCode::Home => {
                    o.scroll = 0;
                    Mode::Output(o)
                }
                _ => Mode::Normal,
            },
            Mode::Confirm(mut c) => match ev.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => self.confirmed(c),
                KeyCode::Enter if c.yes_selected => self.confirmed(c),
                KeyCode::Tab | KeyCode::Left | KeyCode::Right | KeyCode::BackTab => {
                    c.yes_selected = !c.yes_selected;
                    Mode::Confirm(c)
                }
                _ => {
                    self.flash(Level::Info, "cancelled");
                    Mode::Normal
                }
            },
            Mode::PackageForm(mut f) => match ev.code {
                KeyCode::Esc => Mode::Normal,
                _ => match f.key(&ev) {
                    Ok(Some(req)) => {
                        let done = match &req {
                            Request::PackageAdd(a) => {
                                format!("registered package {{id}} from {}", a.path.display())
                            }
                            _ => "package updated".to_string(),
                        };
                        self.outbox.push(Command::Act { request: req, done });
                        Mode::Normal
                    }
                    Ok(None) => Mode::PackageForm(f),
                    Err(e) => {
                        self.flash(Level::Error, e);
                        Mode::PackageForm(f)
                    }
                },
            },
            Mode::TaskForm(mut f) => match ev.code {
                KeyCode::Esc => Mode::Normal,
                _ => match f.key(&ev) {
                    Ok(Some(req)) => {
                        let done = match &req {
                            Request::TaskCreate(_) => "created task {id}".to_string(),
                            _ => "task changed".to_string(),
                        };
                        self.outbox.push(Command::Act { request: req, done });
                        Mode::Normal
                    }
                    Ok(None) => Mode::TaskForm(f),
                    Err(e) => {
                        self.flash(Level::Error, e);
                        Mode::TaskForm(f)
                    }
                },
            },
        };
    }

    fn confirmed(&mut self, c: Confirm) -> Mode {
        if c.quit {
            self.quit = true;
        } else if let Some((request, done)) = c.on_yes {
            self.outbox.push(Command::Act { request, done });
        }
        Mode::Normal
    }

    fn run_command(&mut self, cmd: &str) {
        let word = cmd.trim_start_matches(':');
        let action = match word {
            "pkg" | "pkgs" | "package" | "packages" => Some(Action::ViewPackages),
            "task" | "tasks" => Some(Action::ViewTasks),
            "dest" | "dests" | "destinations" => Some(Action::ViewDestinations),
            "log" => Some(Action::ViewLog),
            "triage" | "failed" => Some(Action::Triage),
            "help" => Some(Action::Help),
            "mouse" => Some(Action::ToggleMouse),
            "q" | "quit" => Some(Action::Quit),
            "" => None,
            other => {
                self.flash(
                    Level::Warn,
                    format!("unknown command ':{other}' (Tab completes)"),
                );
                None
            }
        };
        if let Some(a) = action {
            self.act(a);
        }
    }

    fn switch(&mut self, v: View) {
        self.view = v;
        let r = self.refresh();
        self.outbox.push(r);
    }

    fn confirm(&mut self, text: String, request: Request, done: String) {
        self.mode = Mode::Confirm(Confirm {
            text,
            on_yes: Some((request, done)),
            quit: false,
            yes_selected: false,
        });
    }

    fn selected_package(&self) -> Option<&Package> {
        self.list(View::Packages)
            .current()
            .and_then(|i| self.packages.get(i))
    }

    fn selected_task(&self) -> Option<&Task> {
        match self.view {
            View::TaskDetail => self.task.as_ref(),
            _ => self
                .list(View::Tasks)
                .current()
                .and_then(|i| self.tasks.get(i)),
        }
    }

    fn selected_destination(&self) -> Option<&Destination> {
        self.list(View::Destinations)
            .current()
            .and_then(|i| self.destinations.get(i))
    }

    fn selected_task_destination(&self) -> Option<&TaskDestination> {
        let t = self.task.as_ref()?;
        self.list(View::TaskDetail)
            .current()
            .and_then(|i| t.destinations.get(i))
    }

    fn move_by(&mut self, delta: isize) {
        let view = self.view;
        if view == View::Log {
            self.log_follow = false;
        }
        let l = self.list_mut(view);
        let n = l.visible.len();
        if n == 0 {
            return;
        }
        let s = l.selected as isize + delta;
        l.selected = s.clamp(0, n as isize - 1) as usize;
        if view == View::Log && l.selected + 1 == n {
            self.log_follow = true;
        }
    }

    pub fn act(&mut self, a: Action) {
        match a {
            Action::Quit => {
                if self.standalone && self.status.unfinished > 0 {
                    self.mode = Mode::Confirm(Confirm {
                        text: format!("{} {}", self.status.unfinished, text::QUIT_WITH_WORK),
                        on_yes: None,
                        quit: true,
                        yes_selected: false,
                    });
                } else {
                    self.quit = true;
                }
            }
            Action::Help => self.mode = Mode::Help(0),
            Action::CommandMode => self.mode = Mode::Command(Input::default()),
            Action::Filter => {
                let f = self.list(self.view).filter.clone();
                self.mode = Mode::Filter(Input::new(f));
            }
            Action::Down => self.move_by(1),
            Action::Up => self.move_by(-1),
            Action::PageDown => self.move_by(20),
            Action::PageUp => self.move_by(-20),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::ViewPackages => self.switch(View::Packages),
            Action::ViewTasks => self.switch(View::Tasks),
            Action::ViewDestinations => self.switch(View::Destinations),
            Action::ViewLog => self.switch(View::Log),
            Action::Triage => self.switch(View::Triage),
            Action::NextPane => {
                let next = match self.view {
                    View::Packages => View::Tasks,
                    View::Tasks | View::TaskDetail => View::Destinations,
                    View::Destinations => View::Log,
                    View::Log => View::Triage,
                    View::Triage => View::Packages,
                };
                self.switch(next);
            }
            Action::Back => {
                if !self.list(self.view).filter.is_empty() {
                    self.list_mut(self.view).filter.clear();
                    self.refilter(self.view);
                } else if self.view == View::TaskDetail {
                    self.view = View::Tasks;
                }
            }
            Action::ToggleMouse => {
                self.mouse = !self.mouse;
                self.flash(Level::Info, if self.mouse { "mouse on" } else { "mouse off" });
            }
            Action::Enter => match self.view {
                View::Tasks => {
                    if let Some(t) = self.selected_task().cloned() {
                        // Show what the list knows until the rows arrive.
                        self.task = Some(t);
                        self.list_mut(View::TaskDetail).selected = 0;
                        self.list_mut(View::TaskDetail).filter.clear();
                        self.refilter(View::TaskDetail);
                        self.switch(View::TaskDetail);
                    }
                }
                View::Packages => self.switch(View::Tasks),
                View::Triage => {
                    if let Some(TriageRow::Group(g) | TriageRow::Member(g, _)) =
                        self.list(View::Triage).current().and_then(|i| self.triage_rows.get(i).copied())
                    {
                        let cause = self.groups[g].cause.clone();
                        if !self.expanded.remove(&cause) {
                            self.expanded.insert(cause);
                        }
                        self.refilter(View::Triage);
                    }
                }
                _ => {}
            },
            Action::Output => match self.view {
                View::TaskDetail => {
                    if let (Some(t), Some(d)) = (self.task.as_ref(), self.selected_task_destination()) {
                        self.outbox.push(Command::Output {
                            task: t.id,
                            name: d.name.clone(),
                        });
                    }
                }
                View::Triage => {
                    if let Some(TriageRow::Member(_, r)) =
                        self.list(View::Triage).current().and_then(|i| self.triage_rows.get(i).copied())
                    {
                        let f = &self.failures[r];
                        self.outbox.push(Command::Output {
                            task: f.task_id,
                            name: f.destination.clone(),
                        });
                    } else {
                        self.flash(Level::Info, "open the group (Enter) and pick a destination");
                    }
                }
                _ => {}
            },
            Action::AddPackage => self.mode = Mode::PackageForm(Box::new(PackageForm::add())),
            Action::EditPackage => match self.selected_package() {
                Some(p) => self.mode = Mode::PackageForm(Box::new(PackageForm::edit(p))),
                None => self.flash(Level::Warn, text::NOTHING_SELECTED),
            },
            Action::DeletePackage => match self.selected_package().cloned() {
                Some(p) => self.confirm(
                    format!("Delete package {} '{}' ({})?", p.id, p.name, p.format),
                    Request::PackageRm { id: p.id },
                    format!("deleted package {}", p.id),
                ),
                None => self.flash(Level::Warn, text::NOTHING_SELECTED),
            },
            Action::NewTask => {
                if self.packages.is_empty() {
                    self.flash(Level::Warn, "register a package first (1, then a)");
                    return;
                }
                let pkg = match self.view {
                    View::Packages => self.selected_package().map(|p| p.id),
                    _ => None,
                };
                self.mode = Mode::TaskForm(Box::new(TaskForm::new(
                    self.packages.clone(),
                    self.destinations.clone(),
                    pkg,
                )));
            }
            Action::EditTask => match self.selected_task().cloned() {
                Some(t) => {
                    // The form needs the task's destinations: use the open
                    // one's rows when we have them.
                    let t = match &self.task {
                        Some(open) if open.id == t.id && !open.destinations.is_empty() => open.clone(),
                        _ => t,
                    };
                    if t.destinations.is_empty() {
                        self.flash(Level::Info, "open the task (Enter) to edit it");
                        return;
                    }
                    self.mode = Mode::TaskForm(Box::new(TaskForm::edit(
                        t,
                        self.packages.clone(),
                        self.destinations.clone(),
                    )));
                }
                None => self.flash(Level::Warn, text::NOTHING_SELECTED),
            },
            Action::CopyTask => match self.selected_task().cloned() {
                Some(t) => self.outbox.push(Command::Act {
                    request: Request::TaskCopy {
                        id: t.id,
                        to: None,
                        name: None,
                    },
                    done: format!("copied task {} as task {{id}}", t.id),
                }),
                None => self.flash(Level::Warn, text::NOTHING_SELECTED),
            },
            Action::RerunFailed => match self.selected_task().cloned() {
                Some(t) if t.counts.failed > 0 => self.outbox.push(Command::Act {
                    request: Request::TaskRerun {
                        id: t.id,
                        all: false,
                        only: None,
                    },
                    done: format!(
                        "re-executing task {} on {} failed destination{}",
                        t.id,
                        t.counts.failed,
                        if t.counts.failed == 1 { "" } else { "s" }
                    ),
                }),
                Some(t) => self.flash(Level::Info, format!("task {} has no failed destinations", t.id)),
                None => self.flash(Level::Warn, text::NOTHING_SELECTED),
            },
            Action::DeleteTask => match self.selected_task().cloned() {
                Some(t) => {
                    let busy = t.counts.waiting + t.counts.transferring + t.counts.installing;
                    self.confirm(
                        format!(
                            "Delete task {} '{}'?{}",
                            t.id,
                            t.name,
                            if busy > 0 {
                                format!(" Its work on {busy} destinations is cancelled.")
                            } else {
                                String::new()
                            }
                        ),
                        Request::TaskRm { id: t.id },
                        format!("deleted task {}", t.id),
                    )
                }
                None => self.flash(Level::Warn, text::NOTHING_SELECTED),
            },
            Action::Approve => match self.selected_destination().cloned() {
                Some(d) if text::can_approve(&d.status) => self.outbox.push(Command::Act {
                    request: Request::DestApprove { name: d.name.clone() },
                    done: format!("approved {}", d.name),
                }),
                Some(d) => self.flash(Level::Info, format!("{} is {}, not pending", d.name, d.status)),
                None => self.flash(Level::Warn, text::NOTHING_SELECTED),
            },
            Action::Reject => match self.selected_destination().cloned() {
                Some(d) => self.confirm(
                    format!("Reject {}? It will get no work.", d.name),
                    Request::DestReject { name: d.name.clone() },
                    format!("rejected {}", d.name),
                ),
                None => self.flash(Level::Warn, text::NOTHING_SELECTED),
            },
            Action::DeleteDestination => match self.selected_destination().cloned() {
                Some(d) => self.confirm(
                    format!(
                        "Delete destination {}? Its tasks drop it; a task with no other destination completes.",
                        d.name
                    ),
                    Request::DestRm { name: d.name.clone() },
                    format!("deleted {}", d.name),
                ),
                None => self.flash(Level::Warn, text::NOTHING_SELECTED),
            },
            Action::ToggleFollow => {
                self.log_follow = !self.log_follow;
                self.refilter(View::Log);
            }
            Action::CycleLevel => {
                self.log_level = match self.log_level {
                    Level::Info => Level::Warn,
                    Level::Warn => Level::Error,
                    Level::Error => Level::Info,
                };
                self.refilter(View::Log);
            }
            Action::RerunGroup => {
                let Some(row) = self.list(View::Triage).current().and_then(|i| self.triage_rows.get(i).copied())
                else {
                    self.flash(Level::Warn, text::NOTHING_SELECTED);
                    return;
                };
                let g = match row {
                    TriageRow::Group(g) | TriageRow::Member(g, _) => g,
                };
                let group = self.groups[g].clone();
                let mut by_task: BTreeMap<i64, Vec<String>> = BTreeMap::new();
                for r in &group.rows {
                    let f = &self.failures[*r];
                    by_task.entry(f.task_id).or_default().push(f.destination.clone());
                }
                let n = group.rows.len();
                for (task, names) in by_task {
                    self.outbox.push(Command::Act {
                        request: Request::TaskRerun {
                            id: task,
                            all: false,
                            only: Some(names),
                        },
                        done: format!(
                        "re-executing {n} destination{} failed with: {}",
                        if n == 1 { "" } else { "s" },
                        group.cause
                    ),
                    });
                }
            }
        }
    }
}

pub fn level_rank(l: Level) -> u8 {
    match l {
        Level::Info => 0,
        Level::Warn => 1,
        Level::Error => 2,
    }
}

/// The cause a failure is grouped under.
pub fn cause_of(f: &Failure) -> String {
    match f.exit_code {
        Some(c) => match &f.meaning {
            Some(m) => format!("exit {c}: {m}"),
            None => format!("exit {c}"),
        },
        None => {
            let m = f.message.as_deref().unwrap_or("no message");
            let head = m.split(": ").next().unwrap_or(m);
            head.chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .collect::<String>()
                .split('#')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("N")
        }
    }
}
