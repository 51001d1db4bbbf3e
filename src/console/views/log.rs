//! The event log, following new events unless frozen.

use ratatui::Frame;
use ratatui::layout::Constraint::{Length, Min};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Cell;

use super::View;
use crate::console::component::{Component, Ctx, Effect, Tab};
use crate::console::data::Data;
use crate::console::keymap::{Action, Context};
use crate::console::table::{Column, Listed, Needle, SortKey, Spec, Table, col};
use crate::console::text;
use crate::console::widgets::{kv, level_rank, level_style, level_symbol};
use crate::model::{Event, Level};

/// Narrow: the time of day only, no kind column, so messages have room
/// (the selected one is shown whole in the detail pane).
const NARROW: &[Column] = &[
    col("TIME", Length(8)),
    col("", Length(1)),
    col("SUBJECT", Length(20)),
    col("MESSAGE", Min(20)),
];

const WIDE: &[Column] = &[
    col("TIME", Length(20)),
    col("", Length(1)),
    col("KIND", Length(16)),
    col("SUBJECT", Length(16)),
    col("MESSAGE", Min(20)),
];

#[derive(Debug)]
pub struct Log {
    table: Table,
    /// The selection stays on the newest event.
    follow: bool,
    /// Least level shown.
    level: Level,
}

impl Default for Log {
    fn default() -> Log {
        Log {
            table: Table::default(),
            follow: true,
            level: Level::Info,
        }
    }
}

impl Listed for Event {
    fn id(&self) -> String {
        self.id.to_string()
    }

    fn matches(&self, n: &Needle) -> bool {
        n.matches(&self.message) || n.matches(&self.kind) || n.matches(&self.subject)
    }

    /// The log stays in time order: it has no sort.
    fn sort_key(&self, _column: usize) -> SortKey<'_> {
        SortKey::Num(self.id)
    }
}

/// What Enter on an event opens: the task, destination or package it is
/// about (its subject: "task 2", "destination pc-01", "package 3").
fn open_subject(subject: &str, data: &Data) -> Effect {
    match subject.split_once(' ') {
        Some(("task", id)) => match data.tasks.iter().find(|t| t.id.to_string() == id) {
            Some(t) => Effect::OpenTask(Box::new(t.clone())),
            None => Effect::info(format!("task {id} is gone")),
        },
        Some(("destination", name)) => Effect::Jump(View::Destinations, name.to_string()),
        Some(("package", id)) => Effect::Jump(View::Packages, id.to_string()),
        _ => Effect::info(format!("nothing to open for {subject}")),
    }
}

impl Component for Log {
    fn context(&self) -> Context {
        Context::Log
    }

    fn tab(&self) -> Option<Tab> {
        Some(Tab {
            action: Action::ViewLog,
            label: "Log",
        })
    }

    fn table(&self) -> &Table {
        &self.table
    }

    fn table_mut(&mut self) -> &mut Table {
        &mut self.table
    }

    fn refilter(&mut self, data: &Data) {
        let least = level_rank(self.level);
        self.table
            .refilter_where(&data.events, |e| level_rank(e.level) >= least);
        if self.follow {
            self.table.select_last();
        }
    }

    /// Moving freezes the log; coming back to the newest event follows
    /// again.
    fn move_by(&mut self, delta: isize) {
        self.follow = false;
        if self.table.visible.is_empty() {
            return;
        }
        self.table.move_by(delta);
        if self.table.is_last() {
            self.follow = true;
        }
    }

    fn handle(&mut self, action: Action, cx: &Ctx) -> Effect {
        match action {
            Action::Enter => {
                let Some(e) = self.table.current().and_then(|i| cx.data.events.get(i)) else {
                    return Effect::nothing_selected();
                };
                return open_subject(&e.subject, cx.data);
            }
            Action::ToggleFollow => self.follow = !self.follow,
            Action::CycleLevel => {
                self.level = match self.level {
                    Level::Info => Level::Warn,
                    Level::Warn => Level::Error,
                    Level::Error => Level::Info,
                }
            }
            a => return Effect::Unhandled(a),
        }
        self.refilter(cx.data);
        Effect::None
    }

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Ctx) {
        let theme = cx.theme;
        let level = match self.level {
            Level::Info => "all",
            Level::Warn => "warnings+",
            Level::Error => "errors",
        };
        let narrow = area.width < 120;
        let spec = Spec {
            title: format!(
                "Log · {} · {}",
                if self.follow { "following" } else { "frozen" },
                level
            ),
            empty: text::EMPTY_LOG,
            columns: if narrow { NARROW } else { WIDE },
        };
        self.table.draw(f, area, theme, &spec, |i| {
            let e = &cx.data.events[i];
            let mut cells = vec![
                Cell::from(if narrow {
                    e.at.get(11..19).unwrap_or(&e.at).to_string()
                } else {
                    e.at.clone()
                })
                .style(theme.muted),
                Cell::from(level_symbol(e.level)).style(level_style(theme, e.level)),
                Cell::from(e.kind.clone()),
                Cell::from(e.subject.clone()),
                Cell::from(e.message.clone()).style(level_style(theme, e.level)),
            ];
            if narrow {
                cells.remove(2);
            }
            cells
        });
    }

    fn detail(&self, cx: &Ctx) -> Vec<Line<'static>> {
        let Some(e) = self.table.current().and_then(|i| cx.data.events.get(i)) else {
            return Vec::new();
        };
        let t = cx.theme;
        vec![
            kv(t, "time", e.at.clone()),
            kv(t, "kind", e.kind.clone()),
            kv(t, "subject", e.subject.clone()),
            Line::from(Span::styled(e.message.clone(), level_style(t, e.level))),
        ]
    }

    /// The strip repeats the log: not shown under the log itself.
    fn log_strip(&self) -> bool {
        false
    }
}
