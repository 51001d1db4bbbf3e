//! Forms: register or edit a package, create or edit a task.

use std::path::Path;

use ratatui::crossterm::event::{Event as CtEvent, KeyCode, KeyEvent};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::text;
use crate::api::Request;
use crate::model::{Destination, Kind, Package, Task};
use crate::service::{AddPackage, CreateTask, EditPackage};

#[derive(Debug, Clone)]
pub struct Field {
    pub label: &'static str,
    pub input: Input,
    pub hint: String,
}

impl Field {
    fn new(label: &'static str, value: &str, hint: &str) -> Field {
        Field {
            label,
            input: Input::new(value.to_string()),
            hint: hint.to_string(),
        }
    }
}

/// Register (`editing: None`) or edit a package.
#[derive(Debug, Clone)]
pub struct PackageForm {
    pub editing: Option<i64>,
    pub fields: Vec<Field>,
    pub focus: usize,
    /// What the file looks like, once the path is known (MSI details…).
    pub detected: Option<String>,
}

const P_PATH: usize = 0;
const P_NAME: usize = 1;
const P_VERSION: usize = 2;
const P_KIND: usize = 3;
const P_INSTALL: usize = 4;
const P_UNINSTALL: usize = 5;
const P_FOLDER: usize = 6;

impl PackageForm {
    pub fn add() -> PackageForm {
        PackageForm {
            editing: None,
            fields: vec![
                Field::new(
                    "File",
                    "",
                    "path of an MSI, EXE, ZIP or any file (Tab completes)",
                ),
                Field::new("Name", "", "default: from the MSI, else the file name"),
                Field::new("Version", "", "default: from the MSI"),
                Field::new("Kind", "", "install or file; empty: decided from the file"),
                Field::new("Install command", "", "silent command; set for an MSI"),
                Field::new("Uninstall command", "", "set for an MSI"),
                Field::new("Folder", "", "where files go (file distribution)"),
            ],
            focus: P_PATH,
            detected: None,
        }
    }

    pub fn edit(p: &Package) -> PackageForm {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut f = PackageForm::add();
        f.editing = Some(p.id);
        f.fields[P_PATH] = Field::new("File", &p.file_name, "content cannot change");
        f.fields[P_NAME].input = Input::new(p.name.clone());
        f.fields[P_VERSION].input = Input::new(o(&p.version));
        f.fields[P_KIND].input = Input::new(p.kind.as_str().into());
        f.fields[P_INSTALL].input = Input::new(o(&p.install_command));
        f.fields[P_UNINSTALL].input = Input::new(o(&p.uninstall_command));
        f.fields[P_FOLDER].input = Input::new(o(&p.folder));
        f.focus = P_NAME;
        f
    }

    fn first_field(&self) -> usize {
        if self.editing.is_some() {
            P_NAME
        } else {
            P_PATH
        }
    }

    /// Handles a key; returns the request when the form is submitted.
    pub fn key(&mut self, ev: &KeyEvent) -> Result<Option<Request>, String> {
        match ev.code {
            KeyCode::Tab if self.focus == P_PATH && self.editing.is_none() => {
                let v = self.fields[P_PATH].input.value().to_string();
                if let Some(done) = complete_path(&v)
                    && done != v
                {
                    self.fields[P_PATH].input = Input::new(done);
                    return Ok(None);
                }
                self.leave_path();
                self.focus = P_NAME;
            }
            KeyCode::Tab | KeyCode::Down => {
                if self.focus == P_PATH {
                    self.leave_path();
                }
                self.focus = (self.focus + 1).min(self.fields.len() - 1);
            }
            KeyCode::BackTab | KeyCode::Up => {
                self.focus = self.focus.saturating_sub(1).max(self.first_field());
            }
            KeyCode::Enter => return self.submit().map(Some),
            _ => {
                if self.editing.is_none() || self.focus != P_PATH {
                    self.fields[self.focus]
                        .input
                        .handle_event(&CtEvent::Key(*ev));
                }
            }
        }
        Ok(None)
    }

    /// Looks at the chosen file to prefill what it tells (MSI properties,
    /// an EXE's framework and silent switch).
    fn leave_path(&mut self) {
        let path = self.fields[P_PATH].input.value().trim().to_string();
        if path.is_empty() {
            return;
        }
        let p = Path::new(&path);
        let Ok(md) = std::fs::metadata(p) else {
            self.detected = Some(format!("{path}: no such file"));
            return;
        };
        // Only cheap looks here: a big ZIP is measured at registration.
        if md.len() > 256 << 20 {
            self.detected = None;
            return;
        }
        let scratch = std::env::temp_dir();
        match crate::package::inspect(p, &scratch) {
            Ok(i) => {
                let file = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                self.detected = Some(match &i.installer {
                    Some(inst) if inst.msi.is_some() => {
                        let m = inst.msi.clone().unwrap_or_default();
                        if self.fields[P_NAME].input.value().is_empty() {
                            self.fields[P_NAME].input =
                                Input::new(m.product_name.clone().unwrap_or_default());
                        }
                        if self.fields[P_VERSION].input.value().is_empty() {
                            self.fields[P_VERSION].input =
                                Input::new(m.product_version.clone().unwrap_or_default());
                        }
                        format!(
                            "MSI {} {} — install and uninstall commands are set automatically",
                            m.product_name.unwrap_or_default(),
                            m.product_version.unwrap_or_default()
                        )
                    }
                    Some(inst) => {
                        let exe = inst.path.clone().unwrap_or(file).replace('/', "\\");
                        match inst.framework {
                            Some(fw) => {
                                if self.fields[P_INSTALL].input.value().is_empty() {
                                    self.fields[P_INSTALL].input =
                                        Input::new(format!("{exe} {}", fw.silent_switches()));
                                }
                                format!(
                                    "EXE built with {}: silent switch prefilled, check it",
                                    fw.name()
                                )
                            }
                            None => "EXE of an unknown framework: give its silent install command"
                                .into(),
                        }
                    }
                    None if i.format == crate::package::Format::Zip => format!(
                        "ZIP of {} files, no installer found: give a command or a folder",
                        i.entries.unwrap_or(0)
                    ),
                    None => "a plain file: give the folder it goes to".into(),
                });
            }
            Err(e) => self.detected = Some(format!("refused: {e}")),
        }
    }

    fn value(&self, i: usize) -> Option<String> {
        let v = self.fields[i].input.value().trim();
        (!v.is_empty()).then(|| v.to_string())
    }

    fn submit(&mut self) -> Result<Request, String> {
        let kind = match self.value(P_KIND).as_deref() {
            None => None,
            Some(k) => Some(Kind::parse(k).ok_or_else(|| format!("kind '{k}': install or file"))?),
        };
        match self.editing {
            None => {
                let path = self
                    .value(P_PATH)
                    .ok_or("File: give the path of the file to register")?;
                let path = std::path::absolute(&path).unwrap_or_else(|_| path.into());
                Ok(Request::PackageAdd(AddPackage {
                    path,
                    name: self.value(P_NAME),
                    version: self.value(P_VERSION),
                    kind,
                    install_command: self.value(P_INSTALL),
                    uninstall_command: self.value(P_UNINSTALL),
                    folder: self.value(P_FOLDER),
                    success_codes: None,
                }))
            }
            Some(id) => {
                let raw = |i: usize| Some(self.fields[i].input.value().trim().to_string());
                Ok(Request::PackageEdit {
                    id,
                    edit: EditPackage {
                        name: raw(P_NAME),
                        version: raw(P_VERSION),
                        kind,
                        install_command: raw(P_INSTALL),
                        uninstall_command: raw(P_UNINSTALL),
                        folder: raw(P_FOLDER),
                        success_codes: None,
                    },
                })
            }
        }
    }
}

/// Completes a path as a shell would: the longest common prefix of the
/// entries that start with what was typed; a lone directory gets its '/'.
pub fn complete_path(typed: &str) -> Option<String> {
    let (dir, prefix) = match typed.rfind('/') {
        Some(i) => (&typed[..=i], &typed[i + 1..]),
        None => ("", typed),
    };
    let read_from = if dir.is_empty() { "." } else { dir };
    let mut names: Vec<(String, bool)> = std::fs::read_dir(read_from)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n.starts_with(prefix) && (!n.starts_with('.') || prefix.starts_with('.')))
                .then(|| (n, e.path().is_dir()))
        })
        .collect();
    names.sort();
    let first = names.first()?;
    if names.len() == 1 {
        let slash = if first.1 { "/" } else { "" };
        return Some(format!("{dir}{}{slash}", first.0));
    }
    let mut common = first.0.clone();
    for (n, _) in &names[1..] {
        while !n.starts_with(&common) {
            common.pop();
        }
    }
    Some(format!("{dir}{common}"))
}

/// Which part of a task form has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskPart {
    Package,
    Destinations,
    Options,
}

/// Create a task, or edit one (destinations or package, not both).
#[derive(Debug, Clone)]
pub struct TaskForm {
    pub editing: Option<Task>,
    pub packages: Vec<Package>,
    pub package: usize,
    pub destinations: Vec<Destination>,
    pub chosen: Vec<bool>,
    pub cursor: usize,
    pub filter: Input,
    pub uninstall: bool,
    pub at: Input,
    pub window: Input,
    pub name: Input,
    pub part: TaskPart,
    /// Which option field has the keys (0 at, 1 window, 2 name, 3 uninstall).
    pub option: usize,
}

impl TaskForm {
    pub fn new(
        packages: Vec<Package>,
        destinations: Vec<Destination>,
        package: Option<i64>,
    ) -> TaskForm {
        let chosen = vec![false; destinations.len()];
        let package = package
            .and_then(|id| packages.iter().position(|p| p.id == id))
            .unwrap_or(0);
        TaskForm {
            editing: None,
            packages,
            package,
            destinations,
            chosen,
            cursor: 0,
            filter: Input::default(),
            uninstall: false,
            at: Input::default(),
            window: Input::default(),
            name: Input::default(),
            part: TaskPart::Package,
            option: 0,
        }
    }

    pub fn edit(task: Task, packages: Vec<Package>, destinations: Vec<Destination>) -> TaskForm {
        let mut f = TaskForm::new(packages, destinations, task.package);
        for (i, d) in f.destinations.iter().enumerate() {
            f.chosen[i] = task
                .destinations
                .iter()
                .any(|td| td.name == d.name && !text::is_cancelled(&td.status));
        }
        f.uninstall = text::is_uninstall(&task.kind);
        f.part = TaskPart::Destinations;
        f.editing = Some(task);
        f
    }

    /// Destinations shown under the filter, as indices.
    pub fn visible(&self) -> Vec<usize> {
        let f = self.filter.value().to_lowercase();
        (0..self.destinations.len())
            .filter(|i| {
                let d = &self.destinations[*i];
                f.is_empty()
                    || d.name.to_lowercase().contains(&f)
                    || d.os.as_deref().unwrap_or("").contains(&f)
                    || d.status.contains(&f)
            })
            .collect()
    }

    pub fn key(&mut self, ev: &KeyEvent) -> Result<Option<Request>, String> {
        match ev.code {
            KeyCode::Tab => {
                self.part = match self.part {
                    TaskPart::Package => TaskPart::Destinations,
                    TaskPart::Destinations => TaskPart::Options,
                    TaskPart::Options => TaskPart::Package,
                };
                return Ok(None);
            }
            KeyCode::BackTab => {
                self.part = match self.part {
                    TaskPart::Package => TaskPart::Options,
                    TaskPart::Destinations => TaskPart::Package,
                    TaskPart::Options => TaskPart::Destinations,
                };
                return Ok(None);
            }
            KeyCode::Enter => return self.submit().map(Some),
            _ => {}
        }
        match self.part {
            TaskPart::Package => match ev.code {
                KeyCode::Down | KeyCode::Char('j') => {
                    self.package = (self.package + 1).min(self.packages.len().saturating_sub(1))
                }
                KeyCode::Up | KeyCode::Char('k') => self.package = self.package.saturating_sub(1),
                _ => {}
            },
            TaskPart::Destinations => {
                let vis = self.visible();
                match ev.code {
                    KeyCode::Down => {
                        self.cursor = (self.cursor + 1).min(vis.len().saturating_sub(1))
                    }
                    KeyCode::Up => self.cursor = self.cursor.saturating_sub(1),
                    // Rejected agents get no work: not offered.
                    KeyCode::Char(' ') => {
                        if let Some(&i) = vis.get(self.cursor)
                            && !text::is_rejected(&self.destinations[i].status)
                        {
                            self.chosen[i] = !self.chosen[i];
                        }
                    }
                    KeyCode::Char('+') => {
                        for i in &vis {
                            self.chosen[*i] = !text::is_rejected(&self.destinations[*i].status);
                        }
                    }
                    KeyCode::Char('-') => {
                        for i in &vis {
                            self.chosen[*i] = false;
                        }
                    }
                    _ => {
                        self.filter.handle_event(&CtEvent::Key(*ev));
                        self.cursor = 0;
                    }
                }
            }
            TaskPart::Options => match ev.code {
                KeyCode::Down => self.option = (self.option + 1).min(3),
                KeyCode::Up => self.option = self.option.saturating_sub(1),
                KeyCode::Char(' ') if self.option == 3 => self.uninstall = !self.uninstall,
                _ => {
                    let input = match self.option {
                        0 => &mut self.at,
                        1 => &mut self.window,
                        2 => &mut self.name,
                        _ => return Ok(None),
                    };
                    input.handle_event(&CtEvent::Key(*ev));
                }
            },
        }
        Ok(None)
    }

    fn chosen_names(&self) -> Vec<String> {
        self.destinations
            .iter()
            .zip(&self.chosen)
            .filter(|(_, c)| **c)
            .map(|(d, _)| d.name.clone())
            .collect()
    }

    fn submit(&self) -> Result<Request, String> {
        let pkg = self
            .packages
            .get(self.package)
            .ok_or("no package: register one first")?;
        let to = self.chosen_names();
        if to.is_empty() {
            return Err("choose at least one destination (Space, or + for all shown)".into());
        }
        if let Some(t) = &self.editing {
            let before: Vec<String> = t
                .destinations
                .iter()
                .filter(|d| !text::is_cancelled(&d.status))
                .map(|d| d.name.clone())
                .collect();
            let mut a = before.clone();
            let mut b = to.clone();
            a.sort();
            b.sort();
            let dests_changed = a != b;
            let pkg_changed = t.package != Some(pkg.id);
            return match (dests_changed, pkg_changed) {
                (true, true) => {
                    Err("change the destinations or the package, not both at once".into())
                }
                (true, false) => Ok(Request::TaskEditDestinations { id: t.id, to }),
                (false, true) => Ok(Request::TaskEditPackage {
                    id: t.id,
                    package: pkg.id,
                }),
                (false, false) => Err("nothing changed".into()),
            };
        }
        let at = match self.at.value().trim() {
            "" => None,
            s => Some(crate::clock::parse_time(s)?),
        };
        let window = Some(self.window.value().trim().to_string()).filter(|w| !w.is_empty());
        let name = Some(self.name.value().trim().to_string()).filter(|w| !w.is_empty());
        Ok(Request::TaskCreate(CreateTask {
            package: pkg.id,
            to,
            all: false,
            uninstall: self.uninstall,
            at,
            window,
            name,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_completion_extends_to_the_common_prefix() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("setup-a.msi"), b"").unwrap();
        std::fs::write(t.path().join("setup-b.msi"), b"").unwrap();
        std::fs::create_dir(t.path().join("tools")).unwrap();
        let base = format!("{}/", t.path().display());
        assert_eq!(
            complete_path(&format!("{base}se")).unwrap(),
            format!("{base}setup-")
        );
        assert_eq!(
            complete_path(&format!("{base}to")).unwrap(),
            format!("{base}tools/")
        );
        assert!(complete_path(&format!("{base}zz")).is_none());
    }
}
