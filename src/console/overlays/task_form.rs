//! Create a task, or edit one: a package, the destinations, when.

use ratatui::Frame;
use ratatui::crossterm::event::{Event as CtEvent, KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::{CreateTask, Mode};
use crate::api::{ApiError, Request};
use crate::console::backend::Command;
use crate::console::component::{Ctx, Effect, Footer, Overlay};
use crate::console::data::Data;
use crate::console::text::{self, state_symbol};
use crate::console::theme::Theme;
use crate::console::widgets::{block, centered, window, wrap};
use crate::model::{Destination, Package, Plan, Task};
use crate::task::{DestStatus, TaskType, WorkState};

/// The form for a new task, `package` chosen in it; none before there is
/// a package to distribute.
pub fn new_task(data: &Data, package: Option<i64>) -> Effect {
    if data.packages.is_empty() {
        return Effect::warn("register a package first (1, then a)");
    }
    Effect::Open(Mode::TaskForm(Box::new(TaskForm::new(
        data.packages.clone(),
        data.destinations.clone(),
        package,
    ))))
}

/// The form to edit `task`. It needs the task's rows, which only the open
/// task has: the open one's are used when it is this task.
pub fn edit_task(task: Option<&Task>, data: &Data) -> Effect {
    let Some(t) = task else {
        return Effect::nothing_selected();
    };
    let t = match &data.task {
        Some(open) if open.id == t.id && !open.destinations.is_empty() => open.clone(),
        _ => t.clone(),
    };
    if t.destinations.is_empty() {
        return Effect::info("open the task (Enter) to edit it");
    }
    Effect::Open(Mode::TaskForm(Box::new(TaskForm::edit(
        t,
        data.packages.clone(),
        data.destinations.clone(),
    ))))
}

/// The form to create a copy of `task`: its package, destinations,
/// schedule and type, named "copy of …"; nothing is created before Enter.
pub fn copy_task(task: Option<&Task>, data: &Data) -> Effect {
    let Some(t) = task else {
        return Effect::nothing_selected();
    };
    let t = match &data.task {
        Some(open) if open.id == t.id && !open.destinations.is_empty() => open,
        _ => t,
    };
    if t.destinations.is_empty() {
        return Effect::info("open the task (Enter) to copy it");
    }
    let Some(package) = t
        .package
        .filter(|p| data.packages.iter().any(|k| k.id == *p))
    else {
        return Effect::warn(format!(
            "task {}: its package was deleted, nothing to copy",
            t.id
        ));
    };
    let mut f = TaskForm::new(
        data.packages.clone(),
        data.destinations.clone(),
        Some(package),
    );
    f.choose_as(t);
    f.uninstall = t.kind == TaskType::Uninstall;
    f.at = Input::new(t.start_at.clone().unwrap_or_default());
    f.window = Input::new(t.window.clone().unwrap_or_default());
    f.name = Input::new(format!("copy of {}", t.name));
    f.copy_of = Some(t.id);
    Effect::Open(Mode::TaskForm(Box::new(f)))
}

/// Why a form cannot be submitted, and the part it is about (None: the
/// form as a whole).
type Refusal = (Option<TaskPart>, String);

/// Which part of a task form has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskPart {
    Package,
    Destinations,
    Options,
}

/// Create a task, or edit one (destinations or package, not both).
#[derive(Debug, Clone)]
pub struct TaskForm {
    pub editing: Option<Task>,
    pub packages: Vec<Package>,
    pub package: usize,
    pub destinations: Vec<Destination>,
    pub chosen: Vec<bool>,
    pub cursor: usize,
    pub filter: Input,
    pub uninstall: bool,
    pub at: Input,
    pub window: Input,
    pub name: Input,
    pub part: TaskPart,
    /// Which option field has the keys (0 at, 1 window, 2 name, 3 uninstall).
    pub option: usize,
    /// The task this form copies (a new task made from it).
    pub copy_of: Option<i64>,
    /// Submitted, waiting for the server's answer.
    pub pending: bool,
    /// Why the last submission was refused, and the part it is about
    /// (None: the form as a whole).
    pub error: Option<(Option<TaskPart>, String)>,
    /// The pre-flight of a new task, and the request it answers: asked
    /// for again whenever the form's choices change.
    pub plan: Option<(CreateTask, Result<Plan, String>)>,
    /// A pre-flight asked for and not answered yet.
    pub planning: Option<CreateTask>,
}

impl TaskForm {
    pub fn new(
        packages: Vec<Package>,
        destinations: Vec<Destination>,
        package: Option<i64>,
    ) -> TaskForm {
        let chosen = vec![false; destinations.len()];
        let package = package
            .and_then(|id| packages.iter().position(|p| p.id == id))
            .unwrap_or(0);
        TaskForm {
            editing: None,
            packages,
            package,
            destinations,
            chosen,
            cursor: 0,
            filter: Input::default(),
            uninstall: false,
            at: Input::default(),
            window: Input::default(),
            name: Input::default(),
            part: TaskPart::Package,
            option: 0,
            copy_of: None,
            pending: false,
            error: None,
            plan: None,
            planning: None,
        }
    }

    /// The task the form would create now, for its pre-flight: None while
    /// it could not be created (no destination chosen, a start that does
    /// not parse) and for edits.
    fn plan_request(&self) -> Option<CreateTask> {
        if self.editing.is_some() {
            return None;
        }
        match self.submit() {
            Ok(Request::TaskCreate(req)) => Some(req),
            _ => None,
        }
    }

    /// Asks for the pre-flight of what the form would create, unless it is
    /// known or asked for already (one request at a time).
    fn ask_plan(&mut self) -> Option<Command> {
        let want = self.plan_request()?;
        let known = self.plan.as_ref().is_some_and(|(r, _)| *r == want);
        if known || self.planning.is_some() {
            return None;
        }
        self.planning = Some(want.clone());
        Some(Command::Plan { request: want })
    }

    /// The pre-flight of `request` came; returns the next one to ask for
    /// when the form changed meanwhile.
    pub fn planned(
        &mut self,
        request: CreateTask,
        plan: Result<Box<Plan>, String>,
    ) -> Option<Command> {
        self.planning = None;
        self.plan = Some((request, plan.map(|p| *p)));
        self.ask_plan()
    }

    /// The pre-flight's lines for the form, when it answers what the form
    /// would create now.
    fn plan_lines(&self, width: usize) -> Option<(bool, Vec<String>)> {
        let want = self.plan_request()?;
        let Some((asked, plan)) = &self.plan else {
            return Some((false, vec!["Pre-flight: checking…".into()]));
        };
        if *asked != want {
            return Some((false, vec!["Pre-flight: checking…".into()]));
        }
        let plan = match plan {
            Ok(p) => p,
            Err(e) => return Some((true, wrap(&format!("Pre-flight: {e}"), width))),
        };
        let mut lines = wrap(
            &format!("Pre-flight: {}; {}", plan.summary, plan.starts),
            width,
        );
        let odd: Vec<&crate::model::PlanRow> = plan
            .destinations
            .iter()
            .filter(|r| r.verdict != crate::task::plan::Verdict::Run)
            .collect();
        for r in odd.iter().take(2) {
            lines.push(format!("  {}: {}", r.name, r.reason));
        }
        if odd.len() > 2 {
            lines.push(format!("  … {} more (courier task plan)", odd.len() - 2));
        }
        Some((!odd.is_empty(), lines))
    }

    /// Ticks the destinations `task` has (those not cancelled out of it).
    fn choose_as(&mut self, task: &Task) {
        for (i, d) in self.destinations.iter().enumerate() {
            self.chosen[i] = task
                .destinations
                .iter()
                .any(|td| td.name == d.name && td.status != WorkState::Cancelled);
        }
    }

    /// The parts Tab goes through: an edit changes only the package or
    /// the destinations.
    fn parts(&self) -> &'static [TaskPart] {
        if self.editing.is_some() {
            &[TaskPart::Package, TaskPart::Destinations]
        } else {
            &[TaskPart::Package, TaskPart::Destinations, TaskPart::Options]
        }
    }

    fn next_part(&self, step: isize) -> TaskPart {
        let parts = self.parts();
        let at = parts.iter().position(|p| *p == self.part).unwrap_or(0) as isize;
        parts[(at + step).rem_euclid(parts.len() as isize) as usize]
    }

    pub fn edit(task: Task, packages: Vec<Package>, destinations: Vec<Destination>) -> TaskForm {
        let mut f = TaskForm::new(packages, destinations, task.package);
        f.choose_as(&task);
        f.uninstall = task.kind == TaskType::Uninstall;
        f.part = TaskPart::Destinations;
        f.editing = Some(task);
        f
    }

    /// Destinations shown under the filter, as indices.
    pub fn visible(&self) -> Vec<usize> {
        let f = self.filter.value().to_lowercase();
        (0..self.destinations.len())
            .filter(|i| {
                let d = &self.destinations[*i];
                f.is_empty()
                    || d.name.to_lowercase().contains(&f)
                    || d.os.as_deref().unwrap_or("").contains(&f)
                    || d.status.as_str().contains(&f)
            })
            .collect()
    }

    /// Handles a key; returns the request when the form is submitted, or
    /// why it cannot be and the part that is about.
    fn handle_key(&mut self, ev: &KeyEvent) -> Result<Option<Request>, Refusal> {
        match ev.code {
            KeyCode::Tab => {
                self.part = self.next_part(1);
                return Ok(None);
            }
            KeyCode::BackTab => {
                self.part = self.next_part(-1);
                return Ok(None);
            }
            KeyCode::Enter if self.pending => return Ok(None),
            KeyCode::Enter => return self.submit().map(Some),
            _ => {}
        }
        match self.part {
            TaskPart::Package => match ev.code {
                KeyCode::Down | KeyCode::Char('j') => {
                    self.package = (self.package + 1).min(self.packages.len().saturating_sub(1))
                }
                KeyCode::Up | KeyCode::Char('k') => self.package = self.package.saturating_sub(1),
                _ => {}
            },
            TaskPart::Destinations => {
                let vis = self.visible();
                match ev.code {
                    KeyCode::Down => {
                        self.cursor = (self.cursor + 1).min(vis.len().saturating_sub(1))
                    }
                    KeyCode::Up => self.cursor = self.cursor.saturating_sub(1),
                    // Rejected agents get no work: not offered.
                    KeyCode::Char(' ') => {
                        if let Some(&i) = vis.get(self.cursor)
                            && self.destinations[i].status != DestStatus::Rejected
                        {
                            self.chosen[i] = !self.chosen[i];
                        }
                    }
                    KeyCode::Char('+') => {
                        for i in &vis {
                            self.chosen[*i] = self.destinations[*i].status != DestStatus::Rejected;
                        }
                    }
                    KeyCode::Char('-') => {
                        for i in &vis {
                            self.chosen[*i] = false;
                        }
                    }
                    _ => {
                        self.filter.handle_event(&CtEvent::Key(*ev));
                        self.cursor = 0;
                    }
                }
            }
            TaskPart::Options => match ev.code {
                KeyCode::Down => self.option = (self.option + 1).min(3),
                KeyCode::Up => self.option = self.option.saturating_sub(1),
                KeyCode::Char(' ') if self.option == 3 => self.uninstall = !self.uninstall,
                _ => {
                    let input = match self.option {
                        0 => &mut self.at,
                        1 => &mut self.window,
                        2 => &mut self.name,
                        _ => return Ok(None),
                    };
                    input.handle_event(&CtEvent::Key(*ev));
                }
            },
        }
        Ok(None)
    }

    fn chosen_names(&self) -> Vec<String> {
        self.destinations
            .iter()
            .zip(&self.chosen)
            .filter(|(_, c)| **c)
            .map(|(d, _)| d.name.clone())
            .collect()
    }

    fn submit(&self) -> Result<Request, Refusal> {
        let pkg = self.packages.get(self.package).ok_or((
            Some(TaskPart::Package),
            "no package: register one first".to_string(),
        ))?;
        let to = self.chosen_names();
        if to.is_empty() {
            return Err((
                Some(TaskPart::Destinations),
                "choose at least one destination (Space, or + for all shown)".into(),
            ));
        }
        if let Some(t) = &self.editing {
            let before: Vec<String> = t
                .destinations
                .iter()
                .filter(|d| d.status != WorkState::Cancelled)
                .map(|d| d.name.clone())
                .collect();
            let mut a = before.clone();
            let mut b = to.clone();
            a.sort();
            b.sort();
            let dests_changed = a != b;
            let pkg_changed = t.package != Some(pkg.id);
            return match (dests_changed, pkg_changed) {
                (true, true) => Err((
                    None,
                    "change the destinations or the package, not both at once".into(),
                )),
                (true, false) => Ok(Request::TaskEditDestinations { id: t.id, to }),
                (false, true) => Ok(Request::TaskEditPackage {
                    id: t.id,
                    package: pkg.id,
                }),
                (false, false) => Err((
                    None,
                    "nothing changed: tick or untick destinations, or choose another package"
                        .into(),
                )),
            };
        }
        let at = match self.at.value().trim() {
            "" => None,
            s => Some(crate::clock::parse_time(s).map_err(|e| (Some(TaskPart::Options), e))?),
        };
        let window = Some(self.window.value().trim().to_string()).filter(|w| !w.is_empty());
        let name = Some(self.name.value().trim().to_string()).filter(|w| !w.is_empty());
        Ok(Request::TaskCreate(CreateTask {
            force: false,
            package: Some(pkg.id),
            to,
            all: false,
            uninstall: self.uninstall,
            at,
            window,
            name,
            ..CreateTask::default()
        }))
    }
    /// A key's effect on the form; Enter submits.
    fn answer_key(&mut self, ev: &KeyEvent) -> Effect {
        match self.handle_key(ev) {
            Ok(Some(request)) => {
                let done = match (&request, &self.copy_of, &self.editing) {
                    (Request::TaskCreate(_), Some(of), _) => {
                        format!("created task {{id}}, a copy of task {of}")
                    }
                    (Request::TaskCreate(_), None, _) => "created task {id}".to_string(),
                    (Request::TaskEditPackage { .. }, _, Some(t)) => {
                        format!("task {}: package changed", t.id)
                    }
                    (_, _, Some(t)) => format!("task {}: destinations changed", t.id),
                    _ => "task changed".to_string(),
                };
                self.pending = true;
                self.error = None;
                Effect::Send(vec![Command::Submit { request, done }])
            }
            Ok(None) => Effect::None,
            Err((part, why)) => {
                if let Some(p) = part {
                    self.part = p;
                }
                self.error = Some((part, why));
                Effect::None
            }
        }
    }
}

impl Overlay for TaskForm {
    fn key(&mut self, ev: &KeyEvent) -> Effect {
        if ev.code == KeyCode::Esc {
            return Effect::Close;
        }
        let effect = self.answer_key(ev);
        match self.ask_plan() {
            Some(plan) => Effect::All(vec![effect, Effect::Send(vec![plan])]),
            None => effect,
        }
    }

    fn answered(&mut self, r: Result<String, ApiError>) -> Effect {
        let pending = std::mem::take(&mut self.pending);
        super::form_answer(pending, r, |message| {
            // An edit's refusal is about what it changes.
            let part = match &self.editing {
                Some(_) => Some(self.part),
                None => None,
            };
            self.error = Some((part, message));
        })
    }

    fn draw(&self, f: &mut Frame, cx: &Ctx) {
        let theme = cx.theme;
        let full = f.area();
        let area = centered(
            full,
            full.width.saturating_sub(4).min(100),
            full.height.saturating_sub(2),
        );
        let title = match (&self.editing, self.copy_of) {
            (Some(t), _) => format!("Edit task {}: its destinations, or its package", t.id),
            (None, Some(of)) => format!("New task: a copy of task {of}"),
            (None, None) => "New task".into(),
        };
        f.render_widget(Clear, area);
        let outer = block(theme, title);
        let inner = outer.inner(area);
        f.render_widget(outer, area);
        // A refusal, else the pre-flight of what Enter would create.
        let (style, notes): (_, Vec<String>) = match &self.error {
            Some((_, why)) => (theme.error, wrap(&format!("✖ {why}"), inner.width as usize)),
            None => match self.plan_lines(inner.width as usize) {
                Some((true, lines)) => (theme.warn, lines),
                Some((false, lines)) => (theme.muted, lines),
                None => (theme.muted, Vec::new()),
            },
        };
        let [top, bottom, problem, help] = Layout::vertical([
            Constraint::Min(4),
            Constraint::Length(5),
            Constraint::Length(notes.len().min(4) as u16),
            Constraint::Length(1),
        ])
        .areas(inner);
        f.render_widget(
            Paragraph::new(
                notes
                    .into_iter()
                    .map(|l| Line::from(Span::styled(l, style)))
                    .collect::<Vec<_>>(),
            ),
            problem,
        );
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(top);
        let part_style = |p: TaskPart| {
            if self.part == p {
                theme.accent
            } else {
                theme.muted
            }
        };

        let h = left.height.saturating_sub(2) as usize;
        let start = window(self.package, h);
        let pkgs: Vec<Line> = self
            .packages
            .iter()
            .enumerate()
            .skip(start)
            .take(h)
            .map(|(i, p)| {
                let s = if i == self.package {
                    theme.selection
                } else {
                    theme.text
                };
                Line::from(Span::styled(
                    format!("{} {} ({}, {})", p.id, p.name, p.kind.as_str(), p.format),
                    s,
                ))
            })
            .collect();
        f.render_widget(
            Paragraph::new(pkgs).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(part_style(TaskPart::Package))
                    .title(" Package ↑↓ "),
            ),
            left,
        );

        let vis = self.visible();
        let h = right.height.saturating_sub(2) as usize;
        let start = window(self.cursor, h);
        let dests: Vec<Line> = vis
            .iter()
            .enumerate()
            .skip(start)
            .take(h)
            .map(|(pos, &i)| {
                let d = &self.destinations[i];
                let mark = if self.chosen[i] { "[x]" } else { "[ ]" };
                // In an edit, where each destination stands in the task.
                let stands = self
                    .editing
                    .as_ref()
                    .and_then(|t| t.destinations.iter().find(|td| td.name == d.name))
                    .map(|td| format!(" · {} {}", state_symbol(td.status), td.status))
                    .unwrap_or_default();
                let s = if pos == self.cursor && self.part == TaskPart::Destinations {
                    theme.selection
                } else {
                    theme.text
                };
                Line::from(Span::styled(
                    format!(
                        "{mark} {} {} {}{stands}",
                        d.name,
                        state_symbol(d.status),
                        d.os.clone().unwrap_or_default()
                    ),
                    s,
                ))
            })
            .collect();
        let chosen = self.chosen.iter().filter(|c| **c).count();
        f.render_widget(
            Paragraph::new(dests).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(part_style(TaskPart::Destinations))
                    .title(format!(
                        " Destinations {chosen} chosen · filter: {}▏ ",
                        self.filter.value()
                    ))
                    // Below, where a narrow pane still has room for it.
                    .title_bottom(" Space toggle · +/- all shown "),
            ),
            right,
        );

        let opt = |i: usize, label: &str, v: String| {
            let focused = self.part == TaskPart::Options && self.option == i;
            Line::from(vec![
                Span::styled(
                    format!("{label:<12}"),
                    if focused { theme.accent } else { theme.muted },
                ),
                Span::styled(v, theme.text),
                Span::styled(if focused { "▏" } else { "" }, theme.accent),
            ])
        };
        let options = vec![
            opt(
                0,
                "Start",
                if self.at.value().is_empty() {
                    "now (or YYYY-MM-DD HH:MM)".into()
                } else {
                    self.at.value().into()
                },
            ),
            opt(
                1,
                "Window",
                if self.window.value().is_empty() {
                    "any time (or 22:00-06:00)".into()
                } else {
                    self.window.value().into()
                },
            ),
            opt(2, "Name", self.name.value().into()),
            opt(
                3,
                "Uninstall",
                if self.uninstall {
                    "[x] run the uninstall command".into()
                } else {
                    "[ ] (Space)".into()
                },
            ),
        ];
        if self.editing.is_some() {
            let lines: Vec<Line> = text::EDIT_TASK_RULES
                .iter()
                .map(|l| Line::from(Span::styled(*l, theme.text)))
                .collect();
            f.render_widget(
                Paragraph::new(lines).block(
                    Block::default()
                        .borders(Borders::TOP)
                        .border_style(theme.muted)
                        .title(" What an edit may change "),
                ),
                bottom,
            );
        } else {
            f.render_widget(
                Paragraph::new(options).block(
                    Block::default()
                        .borders(Borders::TOP)
                        .border_style(part_style(TaskPart::Options))
                        .title(" Options ↑↓ "),
                ),
                bottom,
            );
        }
        let hint = match (self.pending, &self.editing, self.copy_of) {
            (true, _, _) => text::SUBMITTING,
            (false, Some(_), _) => "Tab package/destinations · Enter save the change · Esc cancel",
            (false, None, Some(_)) => "Tab next part · Enter create the copy · Esc cancel",
            (false, None, None) => "Tab next part · Enter create · Esc cancel",
        };
        f.render_widget(Paragraph::new(Span::styled(hint, theme.muted)), help);
    }

    fn footer(&self, _theme: &Theme) -> Footer<'_> {
        Footer::Hint(text::FORM_HINT)
    }
}
