//! One task's destinations, each with its state, exit code and message.

use ratatui::Frame;
use ratatui::layout::Constraint::{Fill, Length};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph};

use super::View;
use super::tasks::rerun_failed;
use crate::console::backend::{Command, Snapshot};
use crate::console::component::{Component, Ctx, Effect, Rerun};
use crate::console::data::{Data, RowsChange};
use crate::console::keymap::{Action, Context};
use crate::console::overlays::task_form;
use crate::console::table::{Column, Listed, Needle, SortKey, Spec, Table, col};
use crate::console::text::{self, state_symbol};
use crate::console::widgets::{block, human_size, kv, progress_bar, state_cell};
use crate::model::TaskDestination;
use crate::task::WorkState;

const COLUMNS: &[Column] = &[
    col("DESTINATION", Length(18)),
    col("STATUS", Length(16)),
    col("TRY", Length(4)),
    col("EXIT", Length(6)),
    col("MEANING / MESSAGE", Fill(1)),
];

/// A task with more rows than this is not fetched from the Tasks list
/// (only once opened): its rows are megabytes of JSON.
pub(crate) const BIG: usize = 2000;

#[derive(Debug, Default)]
pub struct TaskDetail {
    table: Table,
    /// A task was opened and its rows have not come yet: when they do,
    /// the selection goes to its first failure.
    opening: bool,
}

impl Listed for TaskDestination {
    fn id(&self) -> String {
        self.name.clone()
    }

    fn matches(&self, n: &Needle) -> bool {
        n.matches(&self.name)
            || n.matches(self.status.as_str())
            || self.message.as_deref().is_some_and(|m| n.matches(m))
    }

    fn sort_key(&self, column: usize) -> SortKey<'_> {
        match column {
            0 => SortKey::text(&self.name),
            1 => SortKey::text(self.status.as_str()),
            2 => SortKey::Num(self.attempt),
            3 => SortKey::Num(self.exit_code.unwrap_or(i64::MIN)),
            _ => SortKey::text(self.message.as_deref().unwrap_or("")),
        }
    }
}

impl TaskDetail {
    fn selected<'d>(&self, data: &'d Data) -> Option<&'d TaskDestination> {
        let t = data.task.as_ref()?;
        self.table.current().and_then(|i| t.destinations.get(i))
    }

    /// The first time a task's rows are here, the selection goes to its
    /// first failure (what the admin opened it for), if any.
    fn first_failure(&mut self, data: &Data) {
        let Some(t) = data.task.as_ref() else { return };
        if self.opening && !t.destinations.is_empty() {
            self.opening = false;
            if let Some(d) = t
                .destinations
                .iter()
                .find(|d| d.status == WorkState::Failed)
            {
                self.table.select_id(&d.name);
            }
        }
    }
}

impl Component for TaskDetail {
    fn context(&self) -> Context {
        Context::TaskDetail
    }

    fn parent(&self) -> Option<View> {
        Some(View::Tasks)
    }

    fn table(&self) -> &Table {
        &self.table
    }

    fn table_mut(&mut self) -> &mut Table {
        &mut self.table
    }

    fn refilter(&mut self, data: &Data) {
        let rows = data.task.as_ref().map_or(&[][..], |t| &t.destinations[..]);
        self.table.refilter(rows);
    }

    /// The open task's rows came: the first time, the selection goes to
    /// its first failure (what the admin opened it for), if any. When
    /// only some rows changed, only they are listed again.
    fn on_snapshot(&mut self, _snap: &mut Snapshot, data: &Data) {
        match (&data.task_change, data.task.as_ref()) {
            (RowsChange::None, _) => {}
            (RowsChange::Rows(changed), Some(t)) => {
                self.table.update_rows(&t.destinations, changed)
            }
            _ => self.refilter(data),
        }
        self.first_failure(data);
    }

    /// Another task opens: unfiltered, unmarked, on its first failure
    /// once its rows are here.
    fn on_show(&mut self, data: &Data) {
        self.table.select_first();
        self.table.filter.clear();
        self.table.marked.clear();
        self.opening = true;
        self.refilter(data);
        self.first_failure(data);
    }

    fn sort_columns(&self) -> usize {
        COLUMNS.len()
    }

    fn markable(&self) -> bool {
        true
    }

    fn handle(&mut self, action: Action, cx: &Ctx) -> Effect {
        let task = cx.data.task.as_ref();
        match action {
            Action::Output => match (task, self.selected(cx.data)) {
                (Some(t), Some(d)) => Effect::Send(vec![Command::Output {
                    task: t.id,
                    name: d.name.clone(),
                }]),
                _ => Effect::nothing_selected(),
            },
            Action::RerunFailed if !self.table.marked.is_empty() => match task {
                Some(t) => {
                    let mut rerun = Rerun {
                        what: format!("of task {} '{}'", t.id, t.name),
                        ..Rerun::default()
                    };
                    for d in t
                        .destinations
                        .iter()
                        .filter(|d| self.table.is_marked(&d.name))
                    {
                        rerun.add(t.id, &t.name, &d.name);
                    }
                    self.table.marked.clear();
                    Effect::rerun(rerun)
                }
                None => Effect::nothing_selected(),
            },
            Action::RerunFailed => rerun_failed(task),
            Action::EditTask => task_form::edit_task(task, cx.data),
            Action::EventsOf => match self.selected(cx.data) {
                Some(d) => Effect::LogOf(d.name.clone()),
                None => Effect::nothing_selected(),
            },
            Action::CopyTask => task_form::copy_task(task, cx.data),
            Action::PauseResume => Effect::pause_or_resume(task),
            a => Effect::Unhandled(a),
        }
    }

    /// The open task's rows come whole once, then only what changed.
    fn refresh(&mut self, data: &Data) -> Command {
        let task = data.task.as_ref().map(|t| t.id);
        Command::Refresh {
            task,
            since: task.and_then(|id| data.rev_of(id)),
            triage: false,
            fleet: data.fleet_due(),
            extra: Default::default(),
        }
    }

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Ctx) {
        let theme = cx.theme;
        let Some(task) = &cx.data.task else {
            f.render_widget(
                Paragraph::new("no task").block(block(theme, "Task".into())),
                area,
            );
            return;
        };
        let mut title = format!(
            "Task {} · {} · {} {}",
            task.id,
            task.name,
            state_symbol(task.status),
            task.status
        );
        if let Some(why) = &task.paused_reason {
            title.push_str(&format!(" · {why} (p resumes)"));
        }
        if !task.rings.is_empty() {
            let at = task
                .rings
                .iter()
                .position(|r| r.state != crate::task::rings::RingState::Done)
                .unwrap_or(task.rings.len() - 1);
            let gate = task
                .gate
                .as_deref()
                .map(|g| format!(", gate {g}"))
                .unwrap_or_default();
            title.push_str(&format!(" · ring {}/{}{gate}", at + 1, task.rings.len()));
            if task.paused_reason.is_none() && task.completed_at.is_none() {
                title.push_str(" (p pauses)");
            }
        }
        let size = cx
            .data
            .packages
            .iter()
            .find(|p| Some(p.id) == task.package)
            .map(|p| p.size)
            .unwrap_or(0);
        let c = &task.counts;
        let rows = c.waiting + c.transferring + c.installing + c.succeeded + c.failed + c.cancelled;
        let spec = Spec {
            title,
            empty: if rows > 0 {
                "loading…"
            } else {
                "no destinations"
            },
            columns: COLUMNS,
        };
        self.table.draw(f, area, theme, &spec, |i| {
            let d = &task.destinations[i];
            let status = if d.stuck.is_some() {
                Cell::from("⚠ stuck").style(theme.warn)
            } else if d.reboot_required {
                Cell::from(text::SUCCEEDED_RESTART).style(theme.warn)
            } else if d.status == WorkState::Transferring && size > 0 {
                Cell::from(format!(
                    "⇣ {}",
                    progress_bar(d.transferred.min(size), size, 8)
                ))
                .style(theme.info)
            } else {
                state_cell(theme, d.status)
            };
            let msg = match &d.stuck {
                Some(s) => s.reason.clone(),
                None => [d.meaning.clone(), d.message.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" — "),
            };
            vec![
                Cell::from(d.name.clone()),
                status,
                Cell::from(d.attempt.to_string()),
                Cell::from(d.exit_code.map(|c| c.to_string()).unwrap_or_default()),
                Cell::from(msg),
            ]
        });
    }

    fn detail(&self, cx: &Ctx) -> Vec<Line<'static>> {
        let Some(d) = self.selected(cx.data) else {
            return Vec::new();
        };
        let t = cx.theme;
        vec![
            kv(t, "destination", d.name.clone()),
            kv(
                t,
                "status",
                format!(
                    "{} {} (attempt {}, retries {})",
                    state_symbol(d.status),
                    d.status,
                    d.attempt,
                    d.retries
                ),
            ),
            kv(
                t,
                "exit",
                d.exit_code
                    .map(|c| format!("{c} {}", d.meaning.clone().unwrap_or_default()))
                    .unwrap_or_else(|| "-".into()),
            ),
            kv(
                t,
                "message",
                d.message.clone().unwrap_or_else(|| "-".into()),
            ),
            kv(t, "download", human_size(d.transferred)),
            kv(
                t,
                "since",
                d.state_since
                    .clone()
                    .unwrap_or_else(|| d.updated_at.clone()),
            ),
            kv(
                t,
                "stuck",
                d.stuck
                    .as_ref()
                    .map(|s| format!("{} (since {})", s.reason, s.since))
                    .unwrap_or_else(|| "-".into()),
            ),
            kv(
                t,
                "detection",
                d.detection
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_else(|| "-".into()),
            ),
            kv(
                t,
                "log",
                if d.has_log {
                    "installer log kept: o, then l".into()
                } else {
                    "-".into()
                },
            ),
        ]
    }
}
