//! The security policies: what every destination must have, must not
//! have, or must be updated with; who violates each and why; and their
//! enforcement by countermeasure tasks.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::Constraint::{Fill, Length, Min};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Cell;

use crate::api::{EditPolicy, Request};
use crate::console::backend::{Command, Extra, Snapshot};
use crate::console::component::{Component, Ctx, Effect, Tab};
use crate::console::data::{Data, FLEET_BIG};
use crate::console::keymap::{Action, Context};
use crate::console::overlays::Mode;
use crate::console::overlays::policy_form::PolicyForm;
use crate::console::table::{Column, Listed, Needle, SortKey, Spec, Table, col};
use crate::console::text;
use crate::console::widgets::{kv, printable};
use crate::model::{Policy, Task};
use crate::task::PolicyKind;

const COLUMNS: &[Column] = &[
    col("ID", Length(4)),
    col("NAME", Min(18)),
    col("KIND", Length(10)),
    col("PROGRAM / PATTERN", Fill(1)),
    col("ENFORCED", Length(8)),
    col("VIOLATING", Length(9)),
    col("TASK", Length(6)),
];

/// The most violations the detail pane lists.
const SHOWN_VIOLATIONS: usize = 200;

/// How often a large fleet's policies are judged again while shown
/// (each judges every destination's inventory on the server).
const EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct Policies {
    table: Table,
    pub policies: Vec<Policy>,
    /// When the policies were last asked for (None: with the next refresh).
    asked: Option<Instant>,
}

impl Listed for Policy {
    fn id(&self) -> String {
        self.id.to_string()
    }

    fn matches(&self, n: &Needle) -> bool {
        n.matches(&self.name)
            || n.matches(self.kind.as_str())
            || n.matches(&self.id.to_string())
            || self.software.as_deref().is_some_and(|s| n.matches(s))
            || self.violations.iter().any(|v| n.matches(&v.destination))
    }

    fn sort_key(&self, column: usize) -> SortKey<'_> {
        match column {
            0 => SortKey::Num(self.id),
            1 => SortKey::text(&self.name),
            2 => SortKey::text(self.kind.as_str()),
            3 => SortKey::text(self.software.as_deref().unwrap_or("")),
            4 => SortKey::Num(i64::from(self.enforce)),
            5 => SortKey::Num(self.violations.len() as i64),
            _ => SortKey::Num(self.task.unwrap_or(0)),
        }
    }
}

/// What enforcing a policy does, in a few words.
fn countermeasure(p: &Policy, data: &Data) -> String {
    let package = package_of(p, data);
    match p.kind {
        PolicyKind::Mandatory => format!("installs package {package}"),
        PolicyKind::Update => format!("installs update package {package}"),
        PolicyKind::Prohibited => format!(
            "uninstalls programs matching '{}'",
            p.software.as_deref().unwrap_or("")
        ),
    }
}

/// A policy's package as "ID 'name'" (an update package is not in the
/// packages list: its id alone).
fn package_of(p: &Policy, data: &Data) -> String {
    match p.package {
        None => "-".into(),
        Some(id) => match data.packages.iter().find(|k| k.id == id) {
            Some(k) => format!("{id} '{}'", k.name),
            None => id.to_string(),
        },
    }
}

/// The countermeasure task of a policy, as the tasks list has it.
fn task_of<'d>(p: &Policy, data: &'d Data) -> Option<&'d Task> {
    p.task.and_then(|id| data.tasks.iter().find(|t| t.id == id))
}

/// "Its countermeasure task N is deleted…", for the questions.
fn drops_task(p: &Policy, data: &Data) -> String {
    let Some(id) = p.task else {
        return String::new();
    };
    let busy = task_of(p, data).map_or(0, |t| {
        t.counts.waiting + t.counts.transferring + t.counts.installing
    });
    let mut s = format!(" Its countermeasure task {id} is deleted");
    if busy > 0 {
        s.push_str(&format!(
            ", cancelling its unfinished work on {busy} destination{}",
            if busy == 1 { "" } else { "s" }
        ));
    }
    s.push('.');
    s
}

fn destinations(n: usize) -> String {
    format!("{n} destination{}", if n == 1 { "" } else { "s" })
}

impl Policies {
    fn selected(&self) -> Option<&Policy> {
        self.table.current().and_then(|i| self.policies.get(i))
    }

    /// Enforcement on or off, after a question saying what follows.
    fn toggle(p: &Policy, data: &Data) -> Effect {
        let request = Request::PolicyEdit {
            id: p.id,
            edit: EditPolicy {
                enforce: Some(!p.enforce),
                ..EditPolicy::default()
            },
        };
        if p.enforce {
            let question = format!(
                "Stop enforcing policy {} '{}'?{} Its violations stay listed; nothing is done about them.",
                p.id,
                p.name,
                drops_task(p, data)
            );
            Effect::confirm(
                question,
                request,
                format!("policy {}: no longer enforced", p.id),
            )
        } else {
            let question = format!(
                "Enforce policy {} '{}'? A countermeasure task {} on its {} violating now, and on any that violate it later.",
                p.id,
                p.name,
                countermeasure(p, data),
                destinations(p.violations.len())
            );
            Effect::confirm(question, request, format!("policy {}: enforced", p.id))
        }
    }
}

impl Component for Policies {
    fn context(&self) -> Context {
        Context::Policies
    }

    fn tab(&self) -> Option<Tab> {
        Some(Tab {
            action: Action::ViewPolicies,
            label: "Policies",
        })
    }

    fn table(&self) -> &Table {
        &self.table
    }

    fn table_mut(&mut self) -> &mut Table {
        &mut self.table
    }

    fn refilter(&mut self, _data: &Data) {
        self.table.refilter(&self.policies);
    }

    fn on_snapshot(&mut self, snap: &mut Snapshot, data: &Data) {
        if let Some(p) = snap.policies.take() {
            self.policies = p;
            self.refilter(data);
        }
    }

    fn on_show(&mut self, _data: &Data) {
        self.asked = None;
    }

    /// Shown, the policies and their violations come with every refresh;
    /// for a fleet past `FLEET_BIG` destinations, every `EVERY`.
    fn refresh(&mut self, data: &Data) -> Command {
        let due = data.destinations.len() <= FLEET_BIG
            || self.asked.is_none_or(|at| at.elapsed() >= EVERY);
        if due {
            self.asked = Some(Instant::now());
        }
        Command::Refresh {
            task: None,
            since: None,
            triage: false,
            fleet: data.fleet_due(),
            extra: Extra {
                policies: due,
                ..Extra::default()
            },
        }
    }

    fn sort_columns(&self) -> usize {
        COLUMNS.len()
    }

    fn handle(&mut self, action: Action, cx: &Ctx) -> Effect {
        if action == Action::AddPolicy {
            return Effect::Open(Mode::PolicyForm(Box::new(PolicyForm::add(
                cx.data.packages.clone(),
            ))));
        }
        let Some(p) = self.selected() else {
            return match action {
                Action::Enter
                | Action::EditPolicy
                | Action::ToggleEnforce
                | Action::DeletePolicy => Effect::nothing_selected(),
                a => Effect::Unhandled(a),
            };
        };
        match action {
            Action::Enter => match (p.task, task_of(p, cx.data)) {
                (_, Some(t)) => Effect::OpenTask(Box::new(t.clone())),
                (Some(id), None) => Effect::info(format!("task {id} is not listed yet")),
                (None, None) if p.enforce => Effect::info(format!(
                    "policy {}: no countermeasure task, nothing violates it",
                    p.id
                )),
                (None, None) => {
                    Effect::info(format!("policy {} is not enforced (f enforces it)", p.id))
                }
            },
            Action::EditPolicy => Effect::Open(Mode::PolicyForm(Box::new(PolicyForm::edit(
                p,
                cx.data.packages.clone(),
            )))),
            Action::ToggleEnforce => Policies::toggle(p, cx.data),
            Action::DeletePolicy => Effect::confirm(
                format!(
                    "Delete policy {} '{}'?{}",
                    p.id,
                    p.name,
                    drops_task(p, cx.data)
                ),
                Request::PolicyRm { id: p.id },
                format!("deleted policy {}", p.id),
            ),
            a => Effect::Unhandled(a),
        }
    }

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Ctx) {
        let theme = cx.theme;
        let spec = Spec {
            title: "Policies".into(),
            empty: text::EMPTY_POLICIES,
            columns: COLUMNS,
        };
        self.table.draw(f, area, theme, &spec, |i| {
            let p = &self.policies[i];
            let n = p.violations.len();
            vec![
                Cell::from(p.id.to_string()),
                Cell::from(p.name.clone()),
                Cell::from(p.kind.as_str()),
                Cell::from(printable(p.software.as_deref().unwrap_or(""))),
                if p.enforce {
                    Cell::from("✔ yes").style(theme.ok)
                } else {
                    Cell::from("○ no").style(theme.muted)
                },
                if n > 0 {
                    Cell::from(format!("✖ {n}")).style(theme.error)
                } else {
                    Cell::from("✔ 0").style(theme.ok)
                },
                Cell::from(p.task.map_or_else(|| "-".into(), |t| t.to_string())),
            ]
        });
    }

    fn detail(&self, cx: &Ctx) -> Vec<Line<'static>> {
        let Some(p) = self.selected() else {
            return Vec::new();
        };
        let t = cx.theme;
        let mut lines = vec![
            kv(t, "policy", format!("{} {}", p.id, p.name)),
            kv(
                t,
                "kind",
                format!("{} · enforcing it {}", p.kind, countermeasure(p, cx.data)),
            ),
            kv(
                t,
                "program",
                printable(p.software.as_deref().unwrap_or("-")),
            ),
        ];
        if p.kind == PolicyKind::Mandatory {
            lines.push(kv(
                t,
                "min version",
                p.min_version.clone().unwrap_or_else(|| "any".into()),
            ));
        }
        if p.kind != PolicyKind::Prohibited {
            lines.push(kv(t, "package", package_of(p, cx.data)));
        }
        lines.push(kv(
            t,
            "enforced",
            match (p.enforce, p.task) {
                (true, Some(id)) => format!("yes · countermeasure task {id} (Enter opens it)"),
                (true, None) => "yes · no countermeasure task now".into(),
                (false, _) => "no".into(),
            },
        ));
        let n = p.violations.len();
        lines.push(kv(
            t,
            "violating",
            if n == 0 {
                "none".into()
            } else {
                destinations(n)
            },
        ));
        for v in p.violations.iter().take(SHOWN_VIOLATIONS) {
            lines.push(kv(
                t,
                "",
                format!("✖ {}: {}", v.destination, printable(&v.reason)),
            ));
        }
        if n > SHOWN_VIOLATIONS {
            lines.push(kv(
                t,
                "",
                format!(
                    "… and {} more (courier policy show {} lists them all)",
                    n - SHOWN_VIOLATIONS,
                    p.id
                ),
            ));
        }
        lines.push(kv(t, "updated", p.updated_at.clone()));
        lines
    }
}
