//! The software: every program the fleet's agents reported, one row per
//! title and version with the destinations that have it, and its
//! uninstallation from all of them.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::Constraint::{Fill, Length, Min};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Cell;

use crate::api::{CreateTask, Request};
use crate::console::backend::{Command, Extra, Snapshot};
use crate::console::component::{Component, Ctx, Effect, Tab};
use crate::console::data::Data;
use crate::console::keymap::{Action, Context};
use crate::console::table::{Column, Listed, Needle, SortKey, Spec, Table, col};
use crate::console::text;
use crate::console::widgets::{kv, printable};
use crate::model::SoftwareTitle;

const COLUMNS: &[Column] = &[
    col("PROGRAM", Min(24)),
    col("VERSION", Length(12)),
    col("PUBLISHER", Length(16)),
    col("DESTS", Length(5)),
    col("DESTINATIONS", Fill(1)),
];

/// The fleet's titles change when agents report (at start, then daily):
/// while shown, they are fetched again this often.
const EVERY: Duration = Duration::from_secs(5);

/// One version of one title, and where it is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub name: String,
    pub publisher: Option<String>,
    /// None: the destinations' inventories give no version.
    pub version: Option<String>,
    pub destinations: Vec<String>,
    /// Every destination that lists the title, whatever the version: an
    /// uninstallation of a row without a version reaches them all.
    pub title_destinations: usize,
}

impl Listed for Program {
    fn id(&self) -> String {
        format!(
            "{}\u{0}{}",
            self.name,
            self.version.as_deref().unwrap_or("")
        )
    }

    fn matches(&self, n: &Needle) -> bool {
        n.matches(&self.name)
            || self.version.as_deref().is_some_and(|v| n.matches(v))
            || self.publisher.as_deref().is_some_and(|p| n.matches(p))
            || self.destinations.iter().any(|d| n.matches(d))
    }

    fn sort_key(&self, column: usize) -> SortKey<'_> {
        match column {
            0 => SortKey::text(&self.name),
            1 => SortKey::text(self.version.as_deref().unwrap_or("")),
            2 => SortKey::text(self.publisher.as_deref().unwrap_or("")),
            3 => SortKey::Num(self.destinations.len() as i64),
            _ => SortKey::text(self.destinations.first().map_or("", String::as_str)),
        }
    }
}

/// The titles as rows: one per title and version.
pub fn programs(titles: &[SoftwareTitle]) -> Vec<Program> {
    let mut rows = Vec::new();
    for t in titles {
        let mut all: Vec<&str> = t
            .versions
            .iter()
            .flat_map(|v| v.destinations.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        for v in &t.versions {
            rows.push(Program {
                name: t.name.clone(),
                publisher: t.publisher.clone(),
                version: v.version.clone(),
                destinations: v.destinations.clone(),
                title_destinations: all.len(),
            });
        }
    }
    rows
}

#[derive(Debug, Default)]
pub struct Software {
    table: Table,
    pub rows: Vec<Program>,
    /// When the titles were last asked for (None: ask with the next
    /// refresh).
    asked: Option<Instant>,
}

impl Software {
    fn selected(&self) -> Option<&Program> {
        self.table.current().and_then(|i| self.rows.get(i))
    }

    /// Uninstalls the selected program, after a question naming it, its
    /// version and how many destinations.
    fn uninstall(&self) -> Effect {
        let Some(p) = self.selected() else {
            return Effect::nothing_selected();
        };
        let name = printable(&p.name);
        let (what, count) = match &p.version {
            Some(v) => (format!("'{name}' {}", printable(v)), p.destinations.len()),
            None => (format!("'{name}' (any version)"), p.title_destinations),
        };
        let question = format!(
            "Uninstall {what} from {count} destination{}? Each runs the removal command its \
             inventory reported; a destination without a quiet one is left out and named.",
            if count == 1 { "" } else { "s" }
        );
        let request = Request::TaskCreate(CreateTask {
            force: false,
            package: None,
            software: Some(p.name.clone()),
            version: p.version.clone(),
            uninstall: true,
            all: true,
            ..CreateTask::default()
        });
        Effect::confirm(
            question,
            request,
            format!("created task {{id}}: uninstalling {what}"),
        )
    }
}

impl Component for Software {
    fn context(&self) -> Context {
        Context::Software
    }

    fn tab(&self) -> Option<Tab> {
        Some(Tab {
            action: Action::ViewSoftware,
            label: "Software",
        })
    }

    fn table(&self) -> &Table {
        &self.table
    }

    fn table_mut(&mut self) -> &mut Table {
        &mut self.table
    }

    fn refilter(&mut self, _data: &Data) {
        self.table.refilter(&self.rows);
    }

    fn on_snapshot(&mut self, snap: &mut Snapshot, data: &Data) {
        if let Some(titles) = snap.software.take() {
            self.rows = programs(&titles);
            self.refilter(data);
        }
    }

    fn on_show(&mut self, _data: &Data) {
        self.asked = None;
    }

    fn refresh(&mut self, data: &Data) -> Command {
        let due = self.asked.is_none_or(|at| at.elapsed() >= EVERY);
        if due {
            self.asked = Some(Instant::now());
        }
        Command::Refresh {
            task: None,
            since: None,
            triage: false,
            fleet: data.fleet_due(),
            extra: Extra {
                software: due,
                ..Extra::default()
            },
        }
    }

    fn sort_columns(&self) -> usize {
        COLUMNS.len()
    }

    fn handle(&mut self, action: Action, _cx: &Ctx) -> Effect {
        match action {
            Action::Uninstall => self.uninstall(),
            a => Effect::Unhandled(a),
        }
    }

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Ctx) {
        let spec = Spec {
            title: "Software".into(),
            empty: text::EMPTY_SOFTWARE,
            columns: COLUMNS,
        };
        self.table.draw(f, area, cx.theme, &spec, |i| {
            let p = &self.rows[i];
            vec![
                Cell::from(printable(&p.name)),
                Cell::from(printable(p.version.as_deref().unwrap_or("-"))),
                Cell::from(printable(p.publisher.as_deref().unwrap_or(""))),
                Cell::from(p.destinations.len().to_string()),
                Cell::from(p.destinations.join(", ")),
            ]
        });
    }

    fn detail(&self, cx: &Ctx) -> Vec<Line<'static>> {
        let Some(p) = self.selected() else {
            return Vec::new();
        };
        let t = cx.theme;
        vec![
            kv(t, "program", printable(&p.name)),
            kv(
                t,
                "version",
                printable(p.version.as_deref().unwrap_or("(none reported)")),
            ),
            kv(
                t,
                "publisher",
                printable(p.publisher.as_deref().unwrap_or("-")),
            ),
            kv(
                t,
                "found on",
                format!(
                    "{} destination{}: {}",
                    p.destinations.len(),
                    if p.destinations.len() == 1 { "" } else { "s" },
                    p.destinations.join(", ")
                ),
            ),
        ]
    }
}
