//! The tasks: what is being distributed where, with their progress.

use ratatui::Frame;
use ratatui::layout::Constraint::{Length, Min};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Cell;

use crate::api::Request;
use crate::console::backend::Command;
use crate::console::component::{Component, Ctx, Effect, Rerun, Tab};
use crate::console::data::Data;
use crate::console::keymap::{Action, Context};
use crate::console::overlays::Mode;
use crate::console::overlays::confirm::Confirm;
use crate::console::overlays::task_form;
use crate::console::table::{Column, Listed, Needle, SortKey, Spec, Table, col};
use crate::console::text;
use crate::console::theme::Theme;
use crate::console::widgets::{kv, printable, progress_bar, state_cell};
use crate::model::Task;
use crate::task::{TaskClass, TaskType};

const COLUMNS: &[Column] = &[
    col("ID", Length(4)),
    col("NAME", Min(18)),
    col("STATUS", Length(12)),
    col("PROGRESS", Length(10)),
    col("✔ok  ✖fail ⟳busy ◷wait", Length(23)),
];

#[derive(Debug, Default)]
pub struct Tasks {
    table: Table,
}

impl Tasks {
    fn selected<'d>(&self, data: &'d Data) -> Option<&'d Task> {
        self.table.current().and_then(|i| data.tasks.get(i))
    }

    fn marked<'d>(&self, data: &'d Data) -> Vec<&'d Task> {
        data.tasks
            .iter()
            .filter(|t| self.table.is_marked(&t.id.to_string()))
            .collect()
    }
}

/// Deletes the marked tasks, after one question naming them.
fn delete_tasks(tasks: &[&Task]) -> Effect {
    let busy: u64 = tasks
        .iter()
        .map(|t| t.counts.waiting + t.counts.transferring + t.counts.installing)
        .sum();
    let ids: Vec<String> = tasks.iter().map(|t| t.id.to_string()).collect();
    let mut question = format!("Delete {} marked tasks ({})?", tasks.len(), ids.join(", "));
    if busy > 0 {
        question.push_str(&format!(" Their work on {busy} destinations is cancelled."));
    }
    let commands = tasks
        .iter()
        .map(|t| Command::Act {
            request: Request::TaskRm { id: t.id },
            done: format!("deleted task {}", t.id),
        })
        .collect();
    Effect::Open(Mode::Confirm(Confirm::ask_all(question, commands)))
}

/// Re-executes `tasks` on their failed destinations (the tasks list and
/// the task's own view both offer it), through the one confirmation path.
pub fn rerun_failed<'t>(tasks: impl IntoIterator<Item = &'t Task>) -> Effect {
    let mut rerun = Rerun::default();
    let mut named = None;
    for t in tasks {
        named = Some(t);
        if t.counts.failed > 0 {
            rerun.add_task(t.id, &t.name, t.counts.failed as usize);
        }
    }
    match named {
        None => Effect::nothing_selected(),
        Some(t) if rerun.count == 0 && rerun.tasks.len() <= 1 => {
            Effect::info(format!("task {} has no failed destinations", t.id))
        }
        Some(t) => {
            if rerun.tasks.len() == 1 {
                rerun.what = format!("of task {} '{}'", t.id, t.name);
            }
            Effect::rerun(rerun)
        }
    }
}

/// A task's name in the list: a countermeasure task (a policy's) is
/// marked so it is told from the admins' own; an uninstallation says so.
fn name_cell<'a>(theme: &Theme, t: &Task) -> Cell<'a> {
    let mut spans = Vec::new();
    if t.class == TaskClass::Countermeasure {
        spans.push(Span::styled(text::POLICY_MARK, theme.warn));
    }
    spans.push(Span::raw(if t.kind == TaskType::Uninstall {
        format!("{} (uninstall)", t.name)
    } else {
        t.name.clone()
    }));
    Cell::from(Line::from(spans))
}

impl Listed for Task {
    fn id(&self) -> String {
        self.id.to_string()
    }

    fn matches(&self, n: &Needle) -> bool {
        n.matches(&self.name)
            || n.matches(self.status.as_str())
            || n.matches(&self.package_name)
            || n.matches(&self.id.to_string())
            || (self.class == TaskClass::Countermeasure && n.matches(text::POLICY_MARK.trim()))
    }

    fn sort_key(&self, column: usize) -> SortKey<'_> {
        let c = &self.counts;
        match column {
            0 => SortKey::Num(self.id),
            1 => SortKey::text(&self.name),
            2 => SortKey::text(self.status.as_str()),
            3 => {
                let total = c.waiting
                    + c.transferring
                    + c.installing
                    + c.succeeded
                    + c.failed
                    + c.cancelled;
                let done = c.succeeded + c.failed + c.cancelled;
                SortKey::Num((done * 1000).checked_div(total).unwrap_or(0) as i64)
            }
            _ => SortKey::Num(c.failed as i64),
        }
    }
}

impl Component for Tasks {
    fn context(&self) -> Context {
        Context::Tasks
    }

    fn tab(&self) -> Option<Tab> {
        Some(Tab {
            action: Action::ViewTasks,
            label: "Tasks",
        })
    }

    fn table(&self) -> &Table {
        &self.table
    }

    fn table_mut(&mut self) -> &mut Table {
        &mut self.table
    }

    fn refilter(&mut self, data: &Data) {
        self.table.refilter(&data.tasks);
    }

    /// The selected task's rows come with each refresh, so that `e` and
    /// `c` work from the list; a big task's only when it is opened.
    fn refresh(&mut self, data: &Data) -> Command {
        let task = self.selected(data).filter(|t| {
            let c = &t.counts;
            let size =
                c.waiting + c.transferring + c.installing + c.succeeded + c.failed + c.cancelled;
            size <= super::detail::BIG as u64
        });
        let task = task.map(|t| t.id);
        Command::Refresh {
            task,
            since: task.and_then(|id| data.rev_of(id)),
            triage: false,
            fleet: data.fleet_due(),
            extra: Default::default(),
        }
    }

    fn sort_columns(&self) -> usize {
        COLUMNS.len()
    }

    fn markable(&self) -> bool {
        true
    }

    fn handle(&mut self, action: Action, cx: &Ctx) -> Effect {
        let selected = self.selected(cx.data);
        match action {
            Action::Enter => match selected {
                Some(t) => Effect::OpenTask(Box::new(t.clone())),
                None => Effect::nothing_selected(),
            },
            Action::NewTask => task_form::new_task(cx.data, None),
            Action::EditTask => task_form::edit_task(selected, cx.data),
            Action::CopyTask => task_form::copy_task(selected, cx.data),
            Action::RerunFailed if !self.table.marked.is_empty() => {
                let marked = self.marked(cx.data);
                self.table.marked.clear();
                rerun_failed(marked)
            }
            Action::RerunFailed => rerun_failed(selected),
            Action::PauseResume => Effect::pause_or_resume(selected),
            Action::DeleteTask if !self.table.marked.is_empty() => {
                let marked = self.marked(cx.data);
                self.table.marked.clear();
                delete_tasks(&marked)
            }
            Action::DeleteTask => match selected {
                Some(t) => {
                    let busy = t.counts.waiting + t.counts.transferring + t.counts.installing;
                    let cancels = if busy > 0 {
                        format!(" Its work on {busy} destinations is cancelled.")
                    } else {
                        String::new()
                    };
                    Effect::confirm(
                        format!("Delete task {} '{}'?{cancels}", t.id, t.name),
                        Request::TaskRm { id: t.id },
                        format!("deleted task {}", t.id),
                    )
                }
                None => Effect::nothing_selected(),
            },
            a => Effect::Unhandled(a),
        }
    }

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Ctx) {
        let theme = cx.theme;
        let spec = Spec {
            title: "Tasks".into(),
            empty: text::EMPTY_TASKS,
            columns: COLUMNS,
        };
        self.table.draw(f, area, theme, &spec, |i| {
            let t = &cx.data.tasks[i];
            let c = &t.counts;
            let total =
                c.waiting + c.transferring + c.installing + c.succeeded + c.failed + c.cancelled;
            let done = c.succeeded + c.failed + c.cancelled;
            vec![
                Cell::from(t.id.to_string()),
                name_cell(theme, t),
                state_cell(theme, t.status),
                Cell::from(progress_bar(done, total, 10)),
                Cell::from(Line::from(vec![
                    Span::styled(format!("✔{:<5}", c.succeeded), theme.ok),
                    Span::styled(
                        format!("✖{:<5}", c.failed),
                        if c.failed > 0 {
                            theme.error
                        } else {
                            theme.muted
                        },
                    ),
                    Span::styled(format!("⟳{:<5}", c.transferring + c.installing), theme.info),
                    Span::styled(format!("◷{}", c.waiting), theme.muted),
                ])),
            ]
        });
    }

    fn detail(&self, cx: &Ctx) -> Vec<Line<'static>> {
        let Some(x) = self.selected(cx.data) else {
            return Vec::new();
        };
        let t = cx.theme;
        let mut lines = vec![
            kv(
                t,
                "task",
                format!("{} {} ({}, {})", x.id, x.name, x.kind, x.class),
            ),
            kv(
                t,
                "package",
                format!(
                    "{} {}",
                    x.package.map(|p| p.to_string()).unwrap_or("-".into()),
                    x.package_name
                ),
            ),
        ];
        if let Some(p) = x.policy {
            lines.push(kv(
                t,
                "policy",
                format!("{p}: this task is its countermeasure (7 lists policies)"),
            ));
        }
        if let Some(s) = &x.software {
            let v = x.software_version.as_deref().unwrap_or("any version");
            lines.push(kv(
                t,
                "program",
                format!("{} {}", printable(s), printable(v)),
            ));
        }
        lines.extend([
            kv(t, "created", x.created_at.clone()),
            kv(
                t,
                "starts",
                x.start_at.clone().unwrap_or_else(|| "at once".into()),
            ),
            kv(
                t,
                "window",
                x.window.clone().unwrap_or_else(|| "any time".into()),
            ),
            kv(
                t,
                "finished",
                x.completed_at.clone().unwrap_or_else(|| "-".into()),
            ),
        ]);
        lines
    }
}
