//! The packages: what can be distributed.

use ratatui::Frame;
use ratatui::layout::Constraint::{Fill, Length, Min};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Cell;

use super::View;
use crate::api::Request;
use crate::console::component::{Component, Ctx, Effect, Tab};
use crate::console::data::Data;
use crate::console::keymap::{Action, Context};
use crate::console::overlays::Mode;
use crate::console::overlays::package_form::PackageForm;
use crate::console::overlays::task_form;
use crate::console::table::{Column, Spec, Table, col};
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
        let rows = &data.packages;
        self.table.refilter(rows.len(), |i, n| {
            let p = &rows[i];
            n.matches(&p.name)
                || n.matches(p.format.as_str())
                || n.matches(p.kind.as_str())
                || n.matches(&p.id.to_string())
        });
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
            Action::DeletePackage => match selected {
                Some(p) => Effect::confirm(
                    format!("Delete package {} '{}' ({})?", p.id, p.name, p.format),
                    Request::PackageRm { id: p.id },
                    format!("deleted package {}", p.id),
                ),
                None => Effect::nothing_selected(),
            },
            Action::NewTask => task_form::new_task(cx.data, selected.map(|p| p.id)),
            _ => Effect::None,
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
