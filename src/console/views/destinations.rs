//! The destinations: the agents, their state and what they run; the
//! selected one's inventory (the programs its agent reported) in the
//! detail pane, fetched by the backend with the refreshes.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::Constraint::{Length, Min};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Cell;

use crate::api::Request;
use crate::console::backend::{Command, Extra, Snapshot};
use crate::console::component::{Component, Ctx, Effect, Tab};
use crate::console::data::Data;
use crate::console::keymap::{Action, Context};
use crate::console::overlays::Mode;
use crate::console::overlays::confirm::Confirm;
use crate::console::table::{Column, Listed, Needle, SortKey, Spec, Table, col};
use crate::console::text;
use crate::console::widgets::{kv, printable, state_cell};
use crate::model::Destination;

const COLUMNS: &[Column] = &[
    col("NAME", Min(16)),
    col("STATUS", Length(12)),
    col("OS", Length(9)),
    col("LAST SEEN", Length(21)),
    col("WORK", Length(5)),
];

/// While shown, the selected destination's inventory is fetched again
/// this often (agents report at start, then daily).
const INVENTORY_EVERY: Duration = Duration::from_secs(5);

/// The most programs of an inventory the detail pane lists.
const SHOWN_PROGRAMS: usize = 300;

#[derive(Debug, Default)]
pub struct Destinations {
    table: Table,
    /// The selected destination as last fetched in detail, with its
    /// inventory.
    pub inventory: Option<Destination>,
    /// Which destination was last asked for in detail, and when.
    asked: Option<(String, Instant)>,
}

impl Destinations {
    /// The inventory lines of the detail pane, for destination `name`.
    fn inventory_lines(&self, name: &str, cx: &Ctx) -> Vec<Line<'static>> {
        let t = cx.theme;
        let Some(d) = self.inventory.as_ref().filter(|d| d.name == name) else {
            return vec![kv(t, "inventory", text::INVENTORY_COMING.into())];
        };
        let Some(programs) = &d.software else {
            return vec![kv(t, "inventory", text::NO_INVENTORY.into())];
        };
        let n = programs.len();
        let mut lines = vec![kv(
            t,
            "inventory",
            format!("{n} program{}", if n == 1 { "" } else { "s" }),
        )];
        for p in programs.iter().take(SHOWN_PROGRAMS) {
            let mut line = printable(&p.name);
            for part in [
                p.version.as_deref(),
                Some(p.source.as_str()),
                p.publisher.as_deref(),
            ]
            .into_iter()
            .flatten()
            {
                line.push_str(" · ");
                line.push_str(&printable(part));
            }
            lines.push(kv(t, "", line));
        }
        if n > SHOWN_PROGRAMS {
            lines.push(kv(
                t,
                "",
                format!(
                    "… and {} more (courier dest show {name})",
                    n - SHOWN_PROGRAMS
                ),
            ));
        }
        lines
    }

    fn selected<'d>(&self, data: &'d Data) -> Option<&'d Destination> {
        self.table.current().and_then(|i| data.destinations.get(i))
    }
}

impl Listed for Destination {
    fn id(&self) -> String {
        self.name.clone()
    }

    fn matches(&self, n: &Needle) -> bool {
        n.matches(&self.name)
            || n.matches(self.status.as_str())
            || self.os.as_deref().is_some_and(|o| n.matches(o))
    }

    fn sort_key(&self, column: usize) -> SortKey<'_> {
        match column {
            0 => SortKey::text(&self.name),
            1 => SortKey::text(self.status.as_str()),
            2 => SortKey::text(self.os.as_deref().unwrap_or("")),
            3 => SortKey::text(self.last_seen.as_deref().unwrap_or("")),
            _ => SortKey::Num(self.running_work as i64),
        }
    }
}

impl Component for Destinations {
    fn context(&self) -> Context {
        Context::Destinations
    }

    fn tab(&self) -> Option<Tab> {
        Some(Tab {
            action: Action::ViewDestinations,
            label: "Destinations",
        })
    }

    fn table(&self) -> &Table {
        &self.table
    }

    fn table_mut(&mut self) -> &mut Table {
        &mut self.table
    }

    fn refilter(&mut self, data: &Data) {
        self.table.refilter(&data.destinations);
    }

    /// The list is listed again only when it came.
    fn on_snapshot(&mut self, snap: &mut Snapshot, data: &Data) {
        if let Some(d) = snap.inventory.take() {
            self.inventory = Some(d);
        }
        if !snap.fleet_skipped {
            self.refilter(data);
        }
    }

    fn on_show(&mut self, _data: &Data) {
        self.asked = None;
    }

    /// Shown, the list comes with every refresh, however long; the
    /// selected destination in detail when another is selected, or every
    /// few seconds.
    fn refresh(&mut self, data: &Data) -> Command {
        let selected = self.selected(data).map(|d| d.name.clone());
        let inventory = selected.filter(|name| {
            !matches!(&self.asked, Some((n, at)) if n == name && at.elapsed() < INVENTORY_EVERY)
        });
        if let Some(name) = &inventory {
            self.asked = Some((name.clone(), Instant::now()));
        }
        Command::Refresh {
            task: None,
            since: None,
            triage: false,
            fleet: true,
            extra: Extra {
                inventory,
                ..Extra::default()
            },
        }
    }

    fn sort_columns(&self) -> usize {
        COLUMNS.len()
    }

    fn markable(&self) -> bool {
        true
    }

    fn handle(&mut self, action: Action, cx: &Ctx) -> Effect {
        if action == Action::DeleteDestination && !self.table.marked.is_empty() {
            let names: Vec<String> = cx
                .data
                .destinations
                .iter()
                .filter(|d| self.table.is_marked(&d.name))
                .map(|d| d.name.clone())
                .collect();
            self.table.marked.clear();
            let commands = names
                .iter()
                .map(|n| Command::Act {
                    request: Request::DestRm { name: n.clone() },
                    done: format!("deleted {n}"),
                })
                .collect();
            return Effect::Open(Mode::Confirm(Confirm::ask_all(
                format!(
                    "Delete {} marked destinations ({})? Their tasks drop them; a task with no other destination completes.",
                    names.len(),
                    names.join(", ")
                ),
                commands,
            )));
        }
        let Some(d) = self.selected(cx.data) else {
            return match action {
                Action::Approve | Action::Reject | Action::DeleteDestination | Action::EventsOf => {
                    Effect::nothing_selected()
                }
                a => Effect::Unhandled(a),
            };
        };
        match action {
            Action::EventsOf => Effect::LogOf(d.name.clone()),
            Action::Approve if crate::task::rules::approve(d.status).is_some() => Effect::act(
                Request::DestApprove {
                    name: d.name.clone(),
                },
                format!("approved {}", d.name),
            ),
            Action::Approve => Effect::info(format!("{} is {}, not pending", d.name, d.status)),
            Action::Reject => Effect::confirm(
                format!("Reject {}? It will get no work.", d.name),
                Request::DestReject {
                    name: d.name.clone(),
                },
                format!("rejected {}", d.name),
            ),
            Action::DeleteDestination => Effect::confirm(
                format!(
                    "Delete destination {}? Its tasks drop it; a task with no other destination completes.",
                    d.name
                ),
                Request::DestRm {
                    name: d.name.clone(),
                },
                format!("deleted {}", d.name),
            ),
            a => Effect::Unhandled(a),
        }
    }

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Ctx) {
        let spec = Spec {
            title: "Destinations".into(),
            empty: text::EMPTY_DESTS,
            columns: COLUMNS,
        };
        self.table.draw(f, area, cx.theme, &spec, |i| {
            let d = &cx.data.destinations[i];
            vec![
                Cell::from(d.name.clone()),
                state_cell(cx.theme, d.status),
                Cell::from(d.os.clone().unwrap_or_default()),
                Cell::from(d.last_seen.clone().unwrap_or_else(|| "-".into())),
                Cell::from(d.running_work.to_string()),
            ]
        });
    }

    fn detail(&self, cx: &Ctx) -> Vec<Line<'static>> {
        let Some(d) = self.selected(cx.data) else {
            return Vec::new();
        };
        let t = cx.theme;
        let mut lines = vec![
            kv(t, "name", d.name.clone()),
            kv(t, "host", d.hostname.clone().unwrap_or_default()),
            kv(t, "os", d.os.clone().unwrap_or_default()),
            kv(t, "agent", d.agent_version.clone().unwrap_or_default()),
            kv(t, "enrolled", d.enrolled_at.clone()),
            kv(
                t,
                "moving to",
                d.moving_to.clone().unwrap_or_else(|| "-".into()),
            ),
        ];
        lines.extend(self.inventory_lines(&d.name, cx));
        lines
    }
}
