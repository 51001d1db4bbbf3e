//! Triage: the failed destinations of every task, grouped by cause, so one
//! fix and one key re-execute all of a kind.

use std::collections::{BTreeMap, HashSet};

use ratatui::Frame;
use ratatui::layout::Constraint::{Fill, Length};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Cell;

use crate::console::backend::{Command, Snapshot};
use crate::console::component::{Component, Ctx, Effect, Rerun, Tab};
use crate::console::data::Data;
use crate::console::keymap::{Action, Context};
use crate::console::table::{Column, Spec, Table, col};
use crate::console::text;
use crate::console::widgets::kv;
use crate::model::Failure;
use crate::task::cause;

const COLUMNS: &[Column] = &[
    col("CAUSE / DESTINATION", Fill(1)),
    col("COUNT", Length(6)),
    col("TASKS / TASK", Length(28)),
];

/// Failed destinations sharing one cause.
#[derive(Debug, Clone)]
pub struct Group {
    /// The cause's signature (`task::cause`): what the group is.
    pub cause: String,
    /// The exit code's meaning, where it applies (Windows destinations).
    pub hint: Option<&'static str>,
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

/// The cause a failure is grouped under (`task::cause`).
pub fn cause_of(f: &Failure) -> cause::Cause {
    f.cause()
}

impl Triage {
    fn selected(&self) -> Option<Row> {
        self.table.current().and_then(|i| self.rows.get(i).copied())
    }

    /// The identity of a row: a group by its cause, a member by its task
    /// and destination, so the selection stays on it across updates.
    fn id_of(&self, row: Row) -> String {
        match row {
            Row::Group(g) => format!("cause {}", self.groups[g].cause),
            Row::Member(_, r) => {
                let f = &self.failures[r];
                format!("task {} on {}", f.task_id, f.destination)
            }
        }
    }

    /// Groups failures by cause, the biggest group first (or in the
    /// list's sort order).
    fn regroup(&mut self) {
        let mut by: BTreeMap<String, (Option<&'static str>, Vec<usize>)> = BTreeMap::new();
        for (i, f) in self.failures.iter().enumerate() {
            let c = cause_of(f);
            let entry = by.entry(c.signature).or_default();
            entry.0 = entry.0.or(c.hint);
            entry.1.push(i);
        }
        let mut groups: Vec<Group> = by
            .into_iter()
            .map(|(cause, (hint, rows))| {
                let tasks: HashSet<i64> = rows.iter().map(|r| self.failures[*r].task_id).collect();
                Group {
                    cause,
                    hint,
                    tasks: tasks.len(),
                    rows,
                }
            })
            .collect();
        let sort = self.table.sort;
        groups.sort_by(|a, b| match sort.column {
            None => b.rows.len().cmp(&a.rows.len()).then(a.cause.cmp(&b.cause)),
            Some(0) => a.cause.to_lowercase().cmp(&b.cause.to_lowercase()),
            Some(1) => a.rows.len().cmp(&b.rows.len()).then(a.cause.cmp(&b.cause)),
            Some(_) => a.tasks.cmp(&b.tasks).then(a.cause.cmp(&b.cause)),
        });
        if sort.column.is_some() && sort.descending {
            groups.reverse();
        }
        self.groups = groups;
    }

    /// The destinations `r` re-executes: the marked rows' (a marked
    /// group's every member), else the selected row's group.
    fn rerun(&mut self) -> Effect {
        let mut picked: Vec<usize> = Vec::new();
        let mut causes: Vec<&str> = Vec::new();
        let rows: Vec<Row> = if self.table.marked.is_empty() {
            self.selected()
                .map(|r| Row::Group(r.group()))
                .into_iter()
                .collect()
        } else {
            let mut all: Vec<Row> = Vec::new();
            for (g, grp) in self.groups.iter().enumerate() {
                all.push(Row::Group(g));
                all.extend(grp.rows.iter().map(|r| Row::Member(g, *r)));
            }
            all.into_iter()
                .filter(|r| self.table.is_marked(&self.id_of(*r)))
                .collect()
        };
        if rows.is_empty() {
            return Effect::nothing_selected();
        }
        for row in rows {
            let grp = &self.groups[row.group()];
            if !causes.contains(&grp.cause.as_str()) {
                causes.push(&grp.cause);
            }
            match row {
                Row::Group(_) => picked.extend(&grp.rows),
                Row::Member(_, r) => picked.push(r),
            }
        }
        let mut rerun = Rerun::default();
        for r in picked {
            let f = &self.failures[r];
            rerun.add(f.task_id, &f.task_name, &f.destination);
        }
        rerun.what = match causes[..] {
            [one] => format!("failed with: {one}"),
            _ => format!("of {} causes", causes.len()),
        };
        self.table.marked.clear();
        Effect::rerun(rerun)
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
        self.regroup();
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
        let ids = self.rows.iter().map(|r| self.id_of(*r)).collect();
        self.table.set_rows((0..self.rows.len()).collect(), ids);
    }

    fn sort_columns(&self) -> usize {
        COLUMNS.len()
    }

    fn markable(&self) -> bool {
        true
    }

    fn on_snapshot(&mut self, snap: &mut Snapshot, data: &Data) {
        if let Some(f) = snap.failures.take() {
            self.failures = f;
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
            Action::RerunGroup => self.rerun(),
            Action::EventsOf => match selected {
                Some(Row::Member(_, r)) => Effect::LogOf(self.failures[r].destination.clone()),
                _ => Effect::info("open the group (Enter) and pick a destination"),
            },
            a => Effect::Unhandled(a),
        }
    }

    fn refresh(&mut self, data: &Data) -> Command {
        Command::Refresh {
            task: None,
            since: None,
            triage: true,
            fleet: data.fleet_due(),
            extra: Default::default(),
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
                    let mut cause =
                        vec![Span::styled(format!("{open} ✖ {}", grp.cause), theme.error)];
                    if let Some(h) = grp.hint {
                        cause.push(Span::styled(format!("  ({h})"), theme.muted));
                    }
                    vec![
                        Cell::from(Line::from(cause)),
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
                if let Some(h) = grp.hint {
                    v.push(kv(t, "exit code", format!("on Windows: {h}")));
                }
                if let Some(first) = grp.rows.first().map(|r| &self.failures[*r]) {
                    let example = first.said.clone().or_else(|| first.message.clone());
                    v.push(kv(t, "example", example.unwrap_or_default()));
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
                    kv(t, "said", x.said.clone().unwrap_or_else(|| "-".into())),
                    kv(t, "message", x.message.clone().unwrap_or_default()),
                    kv(t, "when", x.updated_at.clone()),
                    Line::from(Span::styled(
                        "o: output · l: its events · r: re-execute the group",
                        t.muted,
                    )),
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
            os: Some("linux".into()),
            said: None,
            detection: None,
            has_log: false,
            action: None,
            stuck: None,
        }
    }

    #[test]
    fn causes_meet_when_only_numbers_differ() {
        let a = failure(1, "a", None, "download timed out after 600 s: no byte");
        let b = failure(2, "b", None, "download timed out after 3600 s: no byte");
        assert_eq!(
            cause_of(&a).signature,
            "download timed out after N s: no byte"
        );
        assert_eq!(cause_of(&a), cause_of(&b));
        assert_eq!(
            cause_of(&failure(1, "c", Some(4), "exit 4")).signature,
            "exit 4"
        );
    }

    #[test]
    fn a_filter_shows_the_groups_with_a_matching_member() {
        let mut t = Triage {
            failures: vec![
                failure(1, "pc-a", Some(1), "exit 1"),
                failure(1, "pc-b", Some(2), "exit 2"),
                failure(2, "pc-c", Some(2), "exit 2"),
            ],
            ..Triage::default()
        };
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
