//! Triage: the failed destinations of every task, grouped by cause, so one
//! fix and one key re-execute all of a kind.

use std::collections::{BTreeMap, HashSet};

use ratatui::Frame;
use ratatui::layout::Constraint::{Fill, Length};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Cell;

use crate::api::Request;
use crate::console::backend::{Command, Snapshot};
use crate::console::component::{Component, Ctx, Effect, Tab};
use crate::console::data::Data;
use crate::console::keymap::{Action, Context};
use crate::console::table::{Column, Spec, Table, col};
use crate::console::text;
use crate::console::widgets::kv;
use crate::model::Failure;

const COLUMNS: &[Column] = &[
    col("CAUSE / DESTINATION", Fill(3)),
    col("COUNT", Length(6)),
    col("TASKS / TASK", Fill(2)),
];

/// Failed destinations sharing one cause.
#[derive(Debug, Clone)]
pub struct Group {
    pub cause: String,
    /// Indices into the failures.
    pub rows: Vec<usize>,
    pub tasks: usize,
}

/// A row of the triage list: a group, or one of its destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Group(usize),
    Member(usize, usize),
}

impl Row {
    fn group(self) -> usize {
        match self {
            Row::Group(g) | Row::Member(g, _) => g,
        }
    }
}

#[derive(Debug, Default)]
pub struct Triage {
    table: Table,
    pub failures: Vec<Failure>,
    pub groups: Vec<Group>,
    /// Causes of the open groups.
    pub expanded: HashSet<String>,
    /// The rows the list shows: groups, and the members of open ones.
    pub rows: Vec<Row>,
}

impl Triage {
    fn selected(&self) -> Option<Row> {
        self.table.current().and_then(|i| self.rows.get(i).copied())
    }

    /// Groups failures by cause, the biggest group first.
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

    /// Re-executes every destination of a group, one request per task.
    fn rerun(&self, g: usize) -> Effect {
        let group = &self.groups[g];
        let mut by_task: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for r in &group.rows {
            let f = &self.failures[*r];
            by_task
                .entry(f.task_id)
                .or_default()
                .push(f.destination.clone());
        }
        let n = group.rows.len();
        let done = format!(
            "re-executing {n} destination{} failed with: {}",
            if n == 1 { "" } else { "s" },
            group.cause
        );
        Effect::Send(
            by_task
                .into_iter()
                .map(|(task, names)| Command::Act {
                    request: Request::TaskRerun {
                        id: task,
                        all: false,
                        only: Some(names),
                    },
                    done: done.clone(),
                })
                .collect(),
        )
    }
}

/// The cause a failure is grouped under: the exit code and its meaning,
/// else the message with numbers blanked (so "timed out after 3600 s" and
/// "… 600 s" meet).
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

impl Component for Triage {
    fn context(&self) -> Context {
        Context::Triage
    }

    fn tab(&self) -> Option<Tab> {
        Some(Tab {
            action: Action::Triage,
            label: "Triage",
        })
    }

    /// How many destinations failed, over all tasks.
    fn badge(&self, data: &Data) -> String {
        let failed: usize = data.tasks.iter().map(|t| t.counts.failed as usize).sum();
        if failed > 0 {
            format!(" ✖{failed}")
        } else {
            String::new()
        }
    }

    fn table(&self) -> &Table {
        &self.table
    }

    fn table_mut(&mut self) -> &mut Table {
        &mut self.table
    }

    /// A group shows when its cause or one of its members matches; an
    /// open one shows the members that match.
    fn refilter(&mut self, _data: &Data) {
        let n = self.table.needle();
        let mut rows = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            let members: Vec<usize> = group
                .rows
                .iter()
                .copied()
                .filter(|r| {
                    let x = &self.failures[*r];
                    n.matches(&group.cause) || n.matches(&x.destination) || n.matches(&x.task_name)
                })
                .collect();
            if members.is_empty() {
                continue;
            }
            rows.push(Row::Group(g));
            if self.expanded.contains(&group.cause) {
                rows.extend(members.into_iter().map(|r| Row::Member(g, r)));
            }
        }
        self.rows = rows;
        self.table.set_visible((0..self.rows.len()).collect());
    }

    fn on_snapshot(&mut self, snap: &mut Snapshot, data: &Data) {
        if let Some(f) = snap.failures.take() {
            self.failures = f;
            self.regroup();
        }
        self.refilter(data);
    }

    fn handle(&mut self, action: Action, cx: &Ctx) -> Effect {
        let selected = self.selected();
        match action {
            Action::Enter => {
                if let Some(row) = selected {
                    let cause = self.groups[row.group()].cause.clone();
                    if !self.expanded.remove(&cause) {
                        self.expanded.insert(cause);
                    }
                    self.refilter(cx.data);
                }
                Effect::None
            }
            Action::Output => match selected {
                Some(Row::Member(_, r)) => {
                    let f = &self.failures[r];
                    Effect::Send(vec![Command::Output {
                        task: f.task_id,
                        name: f.destination.clone(),
                    }])
                }
                _ => Effect::info("open the group (Enter) and pick a destination"),
            },
            Action::RerunGroup => match selected {
                Some(row) => self.rerun(row.group()),
                None => Effect::nothing_selected(),
            },
            _ => Effect::None,
        }
    }

    fn refresh(&mut self, _data: &Data) -> Command {
        Command::Refresh {
            task: None,
            triage: true,
        }
    }

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Ctx) {
        let theme = cx.theme;
        let spec = Spec {
            title: format!(
                "Triage · {} failed destinations by cause",
                self.failures.len()
            ),
            empty: text::EMPTY_TRIAGE,
            columns: COLUMNS,
        };
        self.table
            .draw(f, area, theme, &spec, |i| match self.rows[i] {
                Row::Group(g) => {
                    let grp = &self.groups[g];
                    let open = if self.expanded.contains(&grp.cause) {
                        "▾"
                    } else {
                        "▸"
                    };
                    vec![
                        Cell::from(format!("{open} ✖ {}", grp.cause)).style(theme.error),
                        Cell::from(grp.rows.len().to_string()),
                        Cell::from(format!(
                            "{} task{}",
                            grp.tasks,
                            if grp.tasks == 1 { "" } else { "s" }
                        )),
                    ]
                }
                Row::Member(_, r) => {
                    let x = &self.failures[r];
                    vec![
                        Cell::from(format!("    {}", x.destination)),
                        Cell::from(format!("#{}", x.attempt)),
                        Cell::from(format!("{} {}", x.task_id, x.task_name)),
                    ]
                }
            });
    }

    fn detail(&self, cx: &Ctx) -> Vec<Line<'static>> {
        let t = cx.theme;
        match self.selected() {
            Some(Row::Group(g)) => {
                let grp = &self.groups[g];
                let mut v = vec![
                    kv(t, "cause", grp.cause.clone()),
                    kv(t, "count", grp.rows.len().to_string()),
                ];
                if let Some(first) = grp.rows.first().map(|r| &self.failures[*r]) {
                    v.push(kv(t, "example", first.message.clone().unwrap_or_default()));
                }
                v.push(Line::from(Span::styled(
                    "Enter: open · r: re-execute all of them",
                    t.muted,
                )));
                v
            }
            Some(Row::Member(_, r)) => {
                let x = &self.failures[r];
                vec![
                    kv(t, "destination", x.destination.clone()),
                    kv(t, "task", format!("{} {}", x.task_id, x.task_name)),
                    kv(t, "message", x.message.clone().unwrap_or_default()),
                    kv(t, "when", x.updated_at.clone()),
                    Line::from(Span::styled("o: output · r: re-execute the group", t.muted)),
                ]
            }
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(task: i64, dest: &str, code: Option<i64>, message: &str) -> Failure {
        Failure {
            task_id: task,
            task_name: format!("task {task}"),
            destination: dest.into(),
            exit_code: code,
            meaning: None,
            message: Some(message.into()),
            attempt: 1,
            updated_at: String::new(),
        }
    }

    #[test]
    fn causes_meet_when_only_numbers_differ() {
        let a = failure(1, "a", None, "download timed out after 600 s: no byte");
        let b = failure(2, "b", None, "download timed out after 3600 s: gone");
        assert_eq!(cause_of(&a), "download timed out after N s");
        assert_eq!(cause_of(&a), cause_of(&b));
        assert_eq!(cause_of(&failure(1, "c", Some(4), "x")), "exit 4");
    }

    #[test]
    fn a_filter_shows_the_groups_with_a_matching_member() {
        let mut t = Triage {
            failures: vec![
                failure(1, "pc-a", Some(1), "x"),
                failure(1, "pc-b", Some(2), "y"),
                failure(2, "pc-c", Some(2), "y"),
            ],
            ..Triage::default()
        };
        t.regroup();
        t.expanded.insert("exit 2".into());
        let data = Data::default();
        t.refilter(&data);
        assert_eq!(
            t.rows,
            vec![
                Row::Group(0),
                Row::Member(0, 1),
                Row::Member(0, 2),
                Row::Group(1)
            ]
        );
        t.table.set_filter("pc-c".into());
        t.refilter(&data);
        assert_eq!(t.rows, vec![Row::Group(0), Row::Member(0, 2)]);
    }
}
