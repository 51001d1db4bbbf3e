//! The packages: what can be distributed.

use ratatui::Frame;
use ratatui::layout::Constraint::{Fill, Length, Min};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Cell;

use super::View;
use crate::api::Request;
use crate::console::backend::Command;
use crate::console::component::{Component, Ctx, Effect, Tab};
use crate::console::data::Data;
use crate::console::keymap::{Action, Context};
use crate::console::overlays::Mode;
use crate::console::overlays::confirm::Confirm;
use crate::console::overlays::package_form::PackageForm;
use crate::console::overlays::task_form;
use crate::console::table::{Column, Listed, Needle, SortKey, Spec, Table, col};
use crate::console::text;
use crate::console::widgets::{human_size, kv};
use crate::model::{Kind, Package};

const COLUMNS: &[Column] = &[
    col("ID", Length(4)),
    col("NAME", Min(18)),
    col("VERSION", Length(9)),
    col("KIND", Length(11)),
    col("SIZE", Length(10)),
    col("COMMAND / FOLDER", Fill(1)),
];

#[derive(Debug, Default)]
pub struct Packages {
    table: Table,
}

impl Packages {
    fn selected<'d>(&self, data: &'d Data) -> Option<&'d Package> {
        self.table.current().and_then(|i| data.packages.get(i))
    }
}

impl Listed for Package {
    fn id(&self) -> String {
        self.id.to_string()
    }

    fn matches(&self, n: &Needle) -> bool {
        n.matches(&self.name)
            || n.matches(self.format.as_str())
            || n.matches(self.kind.as_str())
            || n.matches(&self.id.to_string())
    }

    fn sort_key(&self, column: usize) -> SortKey<'_> {
        match column {
            0 => SortKey::Num(self.id),
            1 => SortKey::text(&self.name),
            2 => SortKey::text(self.version.as_deref().unwrap_or("")),
            3 => SortKey::text(format!("{} {}", self.kind.as_str(), self.format)),
            4 => SortKey::Num(self.size as i64),
            _ => SortKey::text(
                self.install_command
                    .as_deref()
                    .or(self.folder.as_deref())
                    .unwrap_or(""),
            ),
        }
    }
}

impl Component for Packages {
    fn context(&self) -> Context {
        Context::Packages
    }

    fn tab(&self) -> Option<Tab> {
        Some(Tab {
            action: Action::ViewPackages,
            label: "Packages",
        })
    }

    fn table(&self) -> &Table {
        &self.table
    }

    fn table_mut(&mut self) -> &mut Table {
        &mut self.table
    }

    fn refilter(&mut self, data: &Data) {
        self.table.refilter(&data.packages);
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
            Action::Enter => Effect::Switch(View::Tasks),
            Action::AddPackage => Effect::Open(Mode::PackageForm(Box::new(PackageForm::add()))),
            Action::EditPackage => match selected {
                Some(p) => Effect::Open(Mode::PackageForm(Box::new(PackageForm::edit(p)))),
                None => Effect::nothing_selected(),
            },
            Action::DeletePackage if !self.table.marked.is_empty() => {
                let marked: Vec<&Package> = cx
                    .data
                    .packages
                    .iter()
                    .filter(|p| self.table.is_marked(&p.id.to_string()))
                    .collect();
                let ids: Vec<String> = marked.iter().map(|p| p.id.to_string()).collect();
                let commands = marked
                    .iter()
                    .map(|p| Command::Act {
                        request: Request::PackageRm { id: p.id },
                        done: format!("deleted package {}", p.id),
                    })
                    .collect();
                self.table.marked.clear();
                Effect::Open(Mode::Confirm(Confirm::ask_all(
                    format!("Delete {} marked packages ({})?", ids.len(), ids.join(", ")),
                    commands,
                )))
            }
            Action::DeletePackage => match selected {
                Some(p) => Effect::confirm(
                    format!("Delete package {} '{}' ({})?", p.id, p.name, p.format),
                    Request::PackageRm { id: p.id },
                    format!("deleted package {}", p.id),
                ),
                None => Effect::nothing_selected(),
            },
            Action::NewTask => task_form::new_task(cx.data, selected.map(|p| p.id)),
            a => Effect::Unhandled(a),
        }
    }

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Ctx) {
        let spec = Spec {
            title: "Packages".into(),
            empty: text::EMPTY_PACKAGES,
            columns: COLUMNS,
        };
        self.table.draw(f, area, cx.theme, &spec, |i| {
            let p = &cx.data.packages[i];
            let action = match p.kind {
                Kind::Install => p.install_command.clone().unwrap_or_default(),
                Kind::File => format!("→ {}", p.folder.as_deref().unwrap_or("")),
            };
            vec![
                Cell::from(p.id.to_string()),
                Cell::from(p.name.clone()),
                Cell::from(p.version.clone().unwrap_or_default()),
                Cell::from(format!("{} {}", p.kind.as_str(), p.format)),
                Cell::from(human_size(p.size)),
                Cell::from(action),
            ]
        });
    }

    fn detail(&self, cx: &Ctx) -> Vec<Line<'static>> {
        let Some(p) = self.selected(cx.data) else {
            return Vec::new();
        };
        let t = cx.theme;
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        vec![
            kv(t, "package", format!("{} {}", p.id, p.name)),
            kv(
                t,
                "file",
                format!("{} ({}, {})", p.file_name, p.format, human_size(p.size)),
            ),
            kv(t, "install", or_dash(&p.install_command)),
            kv(t, "uninstall", or_dash(&p.uninstall_command)),
            kv(t, "folder", or_dash(&p.folder)),
            kv(t, "sha256", p.sha256.clone()),
        ]
    }
}
