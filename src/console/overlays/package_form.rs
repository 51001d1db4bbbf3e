//! Register a package, or edit one. Leaving the path field has a worker
//! thread look at the file (an MSI's properties, an EXE's framework, a
//! ZIP's entries) and prefill what it tells; the form stays usable while
//! it looks.

use std::path::Path;

use ratatui::Frame;
use ratatui::crossterm::event::{Event as CtEvent, KeyCode, KeyEvent};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::{AddPackage, EditPackage};
use crate::api::{ApiError, Request};
use crate::console::backend::{Command, Inspected, Look};
use crate::console::component::{Ctx, Effect, Footer, Overlay};
use crate::console::text;
use crate::console::theme::Theme;
use crate::console::widgets::{block, centered, wrap};
use crate::model::{Kind, Package};
use crate::package::{Format, Inspection};

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
    /// What the file looks like, once looked at (MSI details…).
    pub detected: Option<String>,
    /// The path a worker is looking at; its answer is taken only while
    /// this is still the path asked about.
    pub inspecting: Option<String>,
    /// Submitted, waiting for the server's answer.
    pub pending: bool,
    /// Why the last submission was refused, in the form's words, and the
    /// field it is about (None: the form as a whole).
    pub error: Option<(Option<usize>, String)>,
    /// What Tab found for a path it cannot complete further.
    pub candidates: Vec<String>,
}

const P_PATH: usize = 0;
const P_NAME: usize = 1;
const P_VERSION: usize = 2;
const P_KIND: usize = 3;
const P_INSTALL: usize = 4;
const P_UNINSTALL: usize = 5;
const P_FOLDER: usize = 6;

/// Width of the label column.
const LABEL_W: usize = 18;

/// The CLI's flags in server messages and the form's words for them:
/// the field, its label as the form shows it.
const FLAG_WORDS: &[(&str, usize, &str)] = &[
    ("--install-command", P_INSTALL, "Install command"),
    ("--uninstall-command", P_UNINSTALL, "Uninstall command"),
    ("--folder", P_FOLDER, "Folder"),
    ("--kind", P_KIND, "Kind"),
    ("--name", P_NAME, "Name"),
    ("--version", P_VERSION, "Version"),
];

/// The start of the server's messages about one field's value
/// (`validate`'s "what: …").
const FIELD_PREFIXES: &[(&str, usize)] = &[
    ("name", P_NAME),
    ("version", P_VERSION),
    ("install command", P_INSTALL),
    ("uninstall command", P_UNINSTALL),
    ("folder", P_FOLDER),
];

/// A refusal of the server, which speaks to the CLI ("give --folder
/// DIR"), told in the form's words ("fill in Folder"), with the field it
/// is about: the first one it names.
pub fn in_form_words(message: &str) -> (Option<usize>, String) {
    let mut words = message.to_string();
    let mut first: Option<(usize, usize)> = None;
    for (flag, field, label) in FLAG_WORDS {
        if let Some(at) = message.find(flag)
            && first.is_none_or(|(a, _)| at < a)
        {
            first = Some((at, *field));
        }
        for (from, to) in [
            (format!("give {flag} DIR"), format!("fill in {label}")),
            (format!("give {flag} CMD"), format!("fill in {label}")),
            (format!("give {flag}"), format!("fill in {label}")),
            (format!("{flag} DIR"), (*label).to_string()),
            (format!("{flag} CMD"), (*label).to_string()),
            (format!("{flag} install"), format!("{label} 'install'")),
            (format!("{flag} file"), format!("{label} 'file'")),
            (format!("{flag} "), format!("{label} ")),
            ((*flag).to_string(), (*label).to_string()),
        ] {
            words = words.replace(&from, &to);
        }
    }
    let field = first.map(|(_, f)| f).or_else(|| {
        let lower = message.to_lowercase();
        FIELD_PREFIXES
            .iter()
            .filter(|(p, _)| lower.starts_with(p))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, f)| *f)
    });
    (field, words)
}

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
            inspecting: None,
            pending: false,
            error: None,
            candidates: Vec::new(),
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

    /// Asks a worker to look at the chosen file.
    fn leave_path(&mut self) -> Effect {
        let path = self.fields[P_PATH].input.value().trim().to_string();
        if path.is_empty() {
            return Effect::None;
        }
        self.inspecting = Some(path.clone());
        Effect::Send(vec![Command::Inspect { path }])
    }

    /// Takes the worker's answer: what the file is, and the fields it
    /// fills that are still empty.
    pub fn inspected(&mut self, answer: Inspected) {
        if self.inspecting.as_deref() != Some(answer.path.as_str()) {
            return;
        }
        self.inspecting = None;
        let path = answer.path;
        self.detected = match answer.look {
            Look::Missing => Some(format!("{path}: no such file")),
            Look::TooBig => None,
            Look::Found(i) => Some(self.prefill(&path, &i)),
            Look::Refused(e) => Some(format!("refused: {e}")),
        };
    }

    fn prefill(&mut self, path: &str, i: &Inspection) -> String {
        let file = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &i.installer {
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
            Some(inst) => match inst.framework {
                Some(fw) => {
                    if self.fields[P_INSTALL].input.value().is_empty() {
                        self.fields[P_INSTALL].input =
                            Input::new(fw.suggested_command(&inst.command_path(&file)));
                    }
                    format!(
                        "EXE built with {}: silent switch prefilled, check it",
                        fw.name()
                    )
                }
                None => "EXE of an unknown framework: give its silent install command".into(),
            },
            None if i.format == Format::Zip => format!(
                "ZIP of {} files, no installer found: give a command or a folder",
                i.entries.unwrap_or(0)
            ),
            None => "a plain file: give the folder it goes to".into(),
        }
    }

    /// Shows why the form cannot be submitted, at its field.
    fn refused(&mut self, field: Option<usize>, why: String) {
        if let Some(f) = field.filter(|f| *f >= self.first_field()) {
            self.focus = f;
        }
        self.error = Some((field, why));
    }

    fn value(&self, i: usize) -> Option<String> {
        let v = self.fields[i].input.value().trim();
        (!v.is_empty()).then(|| v.to_string())
    }

    /// The request the form makes and the footer line when it worked, or
    /// what is wrong and at which field.
    fn submit(&self) -> Result<(Request, String), (Option<usize>, String)> {
        let kind = match self.value(P_KIND).as_deref() {
            None => None,
            Some(k) => Some(Kind::parse(k).ok_or_else(|| {
                (
                    Some(P_KIND),
                    format!("'{k}' is not a kind: install, file, or empty to decide from the file"),
                )
            })?),
        };
        match self.editing {
            None => {
                let path = self.value(P_PATH).ok_or((
                    Some(P_PATH),
                    "give the path of the file to register".to_string(),
                ))?;
                let path = std::path::absolute(&path).unwrap_or_else(|_| path.into());
                let done = format!("registered package {{id}} from {}", path.display());
                let add = AddPackage {
                    path,
                    name: self.value(P_NAME),
                    version: self.value(P_VERSION),
                    kind,
                    install_command: self.value(P_INSTALL),
                    uninstall_command: self.value(P_UNINSTALL),
                    folder: self.value(P_FOLDER),
                    success_codes: None,
                    detect: None,
                };
                Ok((Request::PackageAdd(add), done))
            }
            Some(id) => {
                let raw = |i: usize| Some(self.fields[i].input.value().trim().to_string());
                let edit = EditPackage {
                    name: raw(P_NAME),
                    version: raw(P_VERSION),
                    kind,
                    install_command: raw(P_INSTALL),
                    uninstall_command: raw(P_UNINSTALL),
                    folder: raw(P_FOLDER),
                    success_codes: None,
                    detect: None,
                };
                Ok((Request::PackageEdit { id, edit }, "package updated".into()))
            }
        }
    }
}

impl Overlay for PackageForm {
    fn key(&mut self, ev: &KeyEvent) -> Effect {
        match ev.code {
            KeyCode::Esc => Effect::Close,
            KeyCode::Tab if self.focus == P_PATH && self.editing.is_none() => {
                let v = self.fields[P_PATH].input.value().to_string();
                let c = complete_path(&v);
                self.candidates.clear();
                if let Some(c) = c {
                    if c.text != v {
                        self.fields[P_PATH].input = Input::new(c.text);
                        return Effect::None;
                    }
                    if c.candidates.len() > 1 {
                        // Nothing more to add: show what it could be.
                        self.candidates = c.candidates;
                        return Effect::None;
                    }
                }
                self.focus = P_NAME;
                self.leave_path()
            }
            KeyCode::Tab | KeyCode::Down => {
                let look = if self.focus == P_PATH {
                    self.leave_path()
                } else {
                    Effect::None
                };
                self.candidates.clear();
                self.focus = (self.focus + 1).min(self.fields.len() - 1);
                look
            }
            KeyCode::BackTab | KeyCode::Up => {
                self.focus = self.focus.saturating_sub(1).max(self.first_field());
                Effect::None
            }
            KeyCode::Enter if self.pending => Effect::None,
            KeyCode::Enter => match self.submit() {
                Ok((request, done)) => {
                    self.pending = true;
                    self.error = None;
                    Effect::Send(vec![Command::Submit { request, done }])
                }
                Err((field, e)) => {
                    self.refused(field, e);
                    Effect::None
                }
            },
            _ => {
                if self.editing.is_none() || self.focus != P_PATH {
                    self.fields[self.focus]
                        .input
                        .handle_event(&CtEvent::Key(*ev));
                    self.candidates.clear();
                }
                Effect::None
            }
        }
    }

    fn answered(&mut self, r: Result<String, ApiError>) -> Effect {
        let pending = std::mem::take(&mut self.pending);
        super::form_answer(pending, r, |message| {
            let (field, words) = in_form_words(&message);
            self.refused(field, words);
        })
    }

    fn draw(&self, f: &mut Frame, cx: &Ctx) {
        let theme = cx.theme;
        let full = f.area();
        // Text runs inside the border, after the label column.
        let width = full.width.min(84);
        let text_w = (width as usize).saturating_sub(2 + LABEL_W).max(20);
        let title = match self.editing {
            Some(id) => format!("Edit package {id}"),
            None => "Register a package".into(),
        };
        let mut lines = Vec::new();
        let indented =
            |s: String, style| Line::from(Span::styled(format!("{:<LABEL_W$}{s}", ""), style));
        for (i, field) in self.fields.iter().enumerate() {
            let focused = i == self.focus;
            let locked = self.editing.is_some() && i == 0;
            let label_style = if focused { theme.accent } else { theme.muted };
            let value = field.input.value().to_string();
            lines.push(Line::from(vec![
                Span::styled(format!("{:<LABEL_W$}", field.label), label_style),
                Span::styled(value, if locked { theme.muted } else { theme.text }),
                Span::styled(if focused { "▏" } else { "" }, theme.accent),
            ]));
            match &self.error {
                Some((Some(at), why)) if *at == i => {
                    for l in wrap(&format!("✖ {why}"), text_w) {
                        lines.push(indented(l, theme.error));
                    }
                }
                _ if i == P_PATH && !self.candidates.is_empty() => {
                    let all = self.candidates.join("  ");
                    let mut shown = wrap(&all, text_w);
                    if shown.len() > 3 {
                        shown.truncate(3);
                        shown[2] = format!("… {} candidates: type more", self.candidates.len());
                    }
                    for l in shown {
                        lines.push(indented(l, theme.info));
                    }
                }
                _ => lines.push(indented(field.hint.clone(), theme.muted)),
            }
        }
        if let Some((None, why)) = &self.error {
            for l in wrap(&format!("✖ {why}"), (width as usize).saturating_sub(2)) {
                lines.push(Line::from(Span::styled(l, theme.error)));
            }
        }
        if self.pending {
            lines.push(Line::from(Span::styled(text::SUBMITTING, theme.muted)));
        } else if let Some(path) = &self.inspecting {
            lines.push(Line::from(Span::styled(
                format!("{} {path}…", text::INSPECTING),
                theme.muted,
            )));
        } else if let Some(d) = &self.detected {
            for l in wrap(d, (width as usize).saturating_sub(2)) {
                lines.push(Line::from(Span::styled(l, theme.info)));
            }
        }
        lines.push(Line::from(Span::styled(text::FORM_HINT, theme.muted)));
        // At least room for a line of what the file is, so the form does
        // not change size as it learns that; more when a reason is long.
        let height = (lines.len() + 2).max(self.fields.len() * 2 + 5);
        let area = centered(full, width, height as u16);
        f.render_widget(Clear, area);
        f.render_widget(Paragraph::new(lines).block(block(theme, title)), area);
    }

    fn footer(&self, _theme: &Theme) -> Footer<'_> {
        Footer::Hint(text::FORM_HINT)
    }
}

/// What Tab makes of a path being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The path extended as far as the entries agree.
    pub text: String,
    /// The entries it may still become (directories with their '/').
    pub candidates: Vec<String>,
}

/// Completes a path as a shell would: the longest common prefix of the
/// entries that start with what was typed; a lone directory gets its '/'.
pub fn complete_path(typed: &str) -> Option<Completion> {
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
    let candidates = names
        .iter()
        .map(|(n, d)| format!("{n}{}", if *d { "/" } else { "" }))
        .collect();
    if names.len() == 1 {
        let slash = if first.1 { "/" } else { "" };
        return Some(Completion {
            text: format!("{dir}{}{slash}", first.0),
            candidates,
        });
    }
    let mut common = first.0.clone();
    for (n, _) in &names[1..] {
        while !n.starts_with(&common) {
            common.pop();
        }
    }
    Some(Completion {
        text: format!("{dir}{common}"),
        candidates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyModifiers;

    #[test]
    fn path_completion_extends_to_the_common_prefix() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("setup-a.msi"), b"").unwrap();
        std::fs::write(t.path().join("setup-b.msi"), b"").unwrap();
        std::fs::create_dir(t.path().join("tools")).unwrap();
        let base = format!("{}/", t.path().display());
        let c = complete_path(&format!("{base}se")).unwrap();
        assert_eq!(c.text, format!("{base}setup-"));
        assert_eq!(c.candidates, vec!["setup-a.msi", "setup-b.msi"]);
        let c = complete_path(&format!("{base}to")).unwrap();
        assert_eq!(c.text, format!("{base}tools/"));
        assert!(complete_path(&format!("{base}zz")).is_none());
    }

    fn key(form: &mut PackageForm, code: KeyCode) -> Effect {
        form.key(&KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn leaving_the_path_asks_for_a_look_and_a_stale_answer_is_dropped() {
        let mut form = PackageForm::add();
        for c in "/nowhere/a.msi".chars() {
            key(&mut form, KeyCode::Char(c));
        }
        let look = key(&mut form, KeyCode::Down);
        assert!(
            matches!(&look, Effect::Send(c) if matches!(&c[..], [Command::Inspect { path }] if path == "/nowhere/a.msi")),
            "{look:?}"
        );
        assert_eq!(form.focus, P_NAME);
        // The path changed before the answer came: the answer is for
        // another file and must not fill this form.
        key(&mut form, KeyCode::Up);
        key(&mut form, KeyCode::Char('x'));
        key(&mut form, KeyCode::Down);
        form.inspected(Inspected {
            path: "/nowhere/a.msi".into(),
            look: Look::Missing,
        });
        assert_eq!(form.inspecting.as_deref(), Some("/nowhere/a.msix"));
        assert_eq!(form.detected, None);
        form.inspected(Inspected {
            path: "/nowhere/a.msix".into(),
            look: Look::Missing,
        });
        assert_eq!(form.inspecting, None);
        assert_eq!(
            form.detected.as_deref(),
            Some("/nowhere/a.msix: no such file")
        );
    }

    #[test]
    fn an_empty_path_asks_for_nothing() {
        let mut form = PackageForm::add();
        assert!(matches!(key(&mut form, KeyCode::Down), Effect::None));
        assert_eq!(form.inspecting, None);
    }
}
