//! Create a security policy, or edit one: its kind, name, program (or
//! pattern), package, minimum version and enforcement. A refusal of the
//! server shows at the field it is about; nothing typed is lost.

use ratatui::Frame;
use ratatui::crossterm::event::{Event as CtEvent, KeyCode, KeyEvent};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::{AddPolicy, EditPolicy};
use crate::api::{ApiError, Request};
use crate::console::backend::Command;
use crate::console::component::{Ctx, Effect, Footer, Overlay};
use crate::console::text;
use crate::console::theme::Theme;
use crate::console::widgets::{block, centered, wrap};
use crate::model::{Package, Policy};
use crate::task::PolicyKind;

pub const F_KIND: usize = 0;
pub const F_NAME: usize = 1;
pub const F_PROGRAM: usize = 2;
pub const F_PACKAGE: usize = 3;
pub const F_VERSION: usize = 4;
pub const F_ENFORCE: usize = 5;

const LABELS: [&str; 6] = [
    "Kind",
    "Name",
    "Program",
    "Package",
    "Min version",
    "Enforce",
];

/// Width of the label column.
const LABEL_W: usize = 14;

/// The command line's words in the server's refusals, the form's words
/// for them, and the field they are about.
const FLAG_WORDS: &[(&str, &str, usize)] = &[
    ("--mandatory NAME", "Program", F_PROGRAM),
    ("--prohibited PATTERN", "Program (a pattern)", F_PROGRAM),
    ("--package ID", "Package", F_PACKAGE),
    ("--package", "Package", F_PACKAGE),
    ("--min-version", "Min version", F_VERSION),
    ("--name", "Name", F_NAME),
];

/// A refusal told in the form's words, with the field it is about: the
/// first the message names.
pub fn in_form_words(message: &str) -> (Option<usize>, String) {
    let mut first: Option<(usize, usize)> = None;
    let mut words = message.to_string();
    for (flag, label, field) in FLAG_WORDS {
        if let Some(at) = message.find(flag)
            && first.is_none_or(|(a, _)| at < a)
        {
            first = Some((at, *field));
        }
        words = words
            .replace(&format!("give {flag}"), &format!("fill in {label}"))
            .replace(flag, label);
    }
    let field = first.map(|(_, f)| f).or_else(|| {
        let lower = message.to_lowercase();
        lower.starts_with("package ").then_some(F_PACKAGE)
    });
    (field, words)
}

/// Create (`editing: None`) or edit a policy.
#[derive(Debug, Clone)]
pub struct PolicyForm {
    pub editing: Option<Policy>,
    pub kind: PolicyKind,
    pub name: Input,
    pub program: Input,
    pub package: Input,
    pub min_version: Input,
    pub enforce: bool,
    pub focus: usize,
    /// The packages to name the chosen one (by id).
    pub packages: Vec<Package>,
    /// Submitted, waiting for the server's answer.
    pub pending: bool,
    /// Why the last submission was refused, and the field it is about
    /// (None: the form as a whole).
    pub error: Option<(Option<usize>, String)>,
}

impl PolicyForm {
    pub fn add(packages: Vec<Package>) -> PolicyForm {
        PolicyForm {
            editing: None,
            kind: PolicyKind::Mandatory,
            name: Input::default(),
            program: Input::default(),
            package: Input::default(),
            min_version: Input::default(),
            enforce: false,
            focus: F_KIND,
            packages,
            pending: false,
            error: None,
        }
    }

    pub fn edit(p: &Policy, packages: Vec<Package>) -> PolicyForm {
        let mut f = PolicyForm::add(packages);
        f.kind = p.kind;
        f.name = Input::new(p.name.clone());
        f.program = Input::new(p.software.clone().unwrap_or_default());
        f.package = Input::new(p.package.map(|id| id.to_string()).unwrap_or_default());
        f.min_version = Input::new(p.min_version.clone().unwrap_or_default());
        f.enforce = p.enforce;
        f.focus = F_NAME;
        f.editing = Some(p.clone());
        f
    }

    /// Whether a field means something for the kind (and can change).
    pub fn applies(&self, field: usize) -> bool {
        match field {
            F_KIND => self.editing.is_none(),
            F_PROGRAM => self.kind != PolicyKind::Update,
            F_PACKAGE => self.kind != PolicyKind::Prohibited,
            F_VERSION => self.kind == PolicyKind::Mandatory,
            _ => true,
        }
    }

    /// The next field that applies, `step` away.
    fn step(&mut self, step: isize) {
        let mut f = self.focus as isize;
        loop {
            f += step;
            if !(0..LABELS.len() as isize).contains(&f) {
                return;
            }
            if self.applies(f as usize) {
                self.focus = f as usize;
                return;
            }
        }
    }

    fn cycle_kind(&mut self, step: isize) {
        let all = PolicyKind::ALL;
        let at = all.iter().position(|k| *k == self.kind).unwrap_or(0) as isize;
        self.kind = all[(at + step).rem_euclid(all.len() as isize) as usize];
    }

    fn input_mut(&mut self, field: usize) -> Option<&mut Input> {
        match field {
            F_NAME => Some(&mut self.name),
            F_PROGRAM => Some(&mut self.program),
            F_PACKAGE => Some(&mut self.package),
            F_VERSION => Some(&mut self.min_version),
            _ => None,
        }
    }

    fn value(input: &Input) -> Option<String> {
        let v = input.value().trim();
        (!v.is_empty()).then(|| v.to_string())
    }

    /// The package typed, if any, as a number.
    fn package_id(&self) -> Result<Option<i64>, (Option<usize>, String)> {
        match Self::value(&self.package) {
            None => Ok(None),
            Some(v) => v
                .trim_start_matches('#')
                .parse::<i64>()
                .map(Some)
                .map_err(|_| {
                    (
                        Some(F_PACKAGE),
                        format!("'{v}' is not a package id (the Packages view lists them)"),
                    )
                }),
        }
    }

    /// The request and the footer line when it worked, or what is wrong
    /// and at which field.
    pub fn submit(&self) -> Result<(Request, String), (Option<usize>, String)> {
        let applies = |f: usize, v: Option<String>| v.filter(|_| self.applies(f));
        let package = self.package_id()?.filter(|_| self.applies(F_PACKAGE));
        let Some(old) = &self.editing else {
            let add = AddPolicy {
                name: Self::value(&self.name),
                kind: self.kind,
                software: applies(F_PROGRAM, Self::value(&self.program)),
                min_version: applies(F_VERSION, Self::value(&self.min_version)),
                package,
                enforce: self.enforce,
            };
            return Ok((Request::PolicyAdd(add), "created policy {id}".into()));
        };
        // Only what changed is sent; an emptied minimum version clears it.
        let changed = |now: &Input, was: &Option<String>| {
            let now = now.value().trim();
            (now != was.as_deref().unwrap_or("")).then(|| now.to_string())
        };
        let edit = EditPolicy {
            name: changed(&self.name, &Some(old.name.clone())).filter(|n| !n.is_empty()),
            software: changed(&self.program, &old.software).filter(|_| self.applies(F_PROGRAM)),
            min_version: changed(&self.min_version, &old.min_version)
                .filter(|_| self.applies(F_VERSION)),
            package: package.filter(|p| Some(*p) != old.package),
            enforce: (self.enforce != old.enforce).then_some(self.enforce),
        };
        if edit == EditPolicy::default() {
            return Err((None, "nothing changed".into()));
        }
        Ok((
            Request::PolicyEdit { id: old.id, edit },
            format!("policy {} updated", old.id),
        ))
    }

    fn refused(&mut self, field: Option<usize>, why: String) {
        if let Some(f) = field.filter(|f| self.applies(*f)) {
            self.focus = f;
        }
        self.error = Some((field, why));
    }

    /// What a field says under its value.
    fn hint(&self, field: usize) -> String {
        match (field, self.kind) {
            (F_KIND, _) if self.editing.is_some() => "a policy keeps its kind".into(),
            (F_KIND, PolicyKind::Mandatory) => {
                "mandatory: a program every destination must have (Space changes)".into()
            }
            (F_KIND, PolicyKind::Prohibited) => {
                "prohibited: programs no destination may have (Space changes)".into()
            }
            (F_KIND, PolicyKind::Update) => {
                "update: a package every destination must have installed (Space changes)".into()
            }
            (F_NAME, _) => "default: from the kind and the program".into(),
            (F_PROGRAM, PolicyKind::Prohibited) => {
                "a pattern on program names, any case: * and ? match any characters".into()
            }
            (F_PROGRAM, PolicyKind::Update) => "the update package's name".into(),
            (F_PROGRAM, _) => "the program's name as the inventories list it".into(),
            (F_PACKAGE, PolicyKind::Prohibited) => {
                "none: each destination's reported removal command".into()
            }
            (F_PACKAGE, _) => match self.package_id() {
                Ok(Some(id)) => match self.packages.iter().find(|p| p.id == id) {
                    Some(p) => format!("→ {} {}", p.name, p.version.as_deref().unwrap_or("")),
                    None => "the id of an install package".into(),
                },
                _ => "the id of the install package that brings it (1 lists them)".into(),
            },
            (F_VERSION, PolicyKind::Mandatory) => "empty: any version will do".into(),
            (F_VERSION, _) => "the package's own".into(),
            _ => "Space: a countermeasure task fixes the violations".into(),
        }
    }
}

impl Overlay for PolicyForm {
    fn key(&mut self, ev: &KeyEvent) -> Effect {
        match ev.code {
            KeyCode::Esc => Effect::Close,
            KeyCode::Tab | KeyCode::Down => {
                self.step(1);
                Effect::None
            }
            KeyCode::BackTab | KeyCode::Up => {
                self.step(-1);
                Effect::None
            }
            KeyCode::Enter if self.pending => Effect::None,
            KeyCode::Enter => match self.submit() {
                Ok((request, done)) => {
                    self.pending = true;
                    self.error = None;
                    Effect::Send(vec![Command::Submit { request, done }])
                }
                Err((field, why)) => {
                    self.refused(field, why);
                    Effect::None
                }
            },
            KeyCode::Char(' ') | KeyCode::Right if self.focus == F_KIND => {
                self.cycle_kind(1);
                Effect::None
            }
            KeyCode::Left if self.focus == F_KIND => {
                self.cycle_kind(-1);
                Effect::None
            }
            KeyCode::Char(' ') if self.focus == F_ENFORCE => {
                self.enforce = !self.enforce;
                Effect::None
            }
            _ => {
                let focus = self.focus;
                if let Some(input) = self.input_mut(focus) {
                    input.handle_event(&CtEvent::Key(*ev));
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
        let width = full.width.min(84);
        let text_w = (width as usize).saturating_sub(2 + LABEL_W).max(20);
        let title = match &self.editing {
            Some(p) => format!("Edit policy {} ({})", p.id, p.kind),
            None => "New security policy".into(),
        };
        let indented =
            |s: String, style| Line::from(Span::styled(format!("{:<LABEL_W$}{s}", ""), style));
        let mut lines = Vec::new();
        for (i, label) in LABELS.iter().enumerate() {
            let focused = i == self.focus;
            let applies = self.applies(i);
            let value = match i {
                F_KIND if self.editing.is_none() => format!("◂ {} ▸", self.kind),
                F_KIND => self.kind.to_string(),
                F_NAME => self.name.value().to_string(),
                F_PROGRAM => self.program.value().to_string(),
                F_PACKAGE => self.package.value().to_string(),
                F_VERSION => self.min_version.value().to_string(),
                _ if self.enforce => "[x] enforced".into(),
                _ => "[ ] not enforced".into(),
            };
            let value = if applies || i == F_KIND {
                value
            } else {
                "-".into()
            };
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{label:<LABEL_W$}"),
                    if focused { theme.accent } else { theme.muted },
                ),
                Span::styled(value, if applies { theme.text } else { theme.muted }),
                Span::styled(if focused { "▏" } else { "" }, theme.accent),
            ]));
            match &self.error {
                Some((Some(at), why)) if *at == i => {
                    for l in wrap(&format!("✖ {why}"), text_w) {
                        lines.push(indented(l, theme.error));
                    }
                }
                _ => lines.push(indented(self.hint(i), theme.muted)),
            }
        }
        if let Some((None, why)) = &self.error {
            for l in wrap(&format!("✖ {why}"), (width as usize).saturating_sub(2)) {
                lines.push(Line::from(Span::styled(l, theme.error)));
            }
        }
        if self.pending {
            lines.push(Line::from(Span::styled(text::SUBMITTING, theme.muted)));
        }
        lines.push(Line::from(Span::styled(text::FORM_HINT, theme.muted)));
        let area = centered(full, width, (lines.len() + 2) as u16);
        f.render_widget(Clear, area);
        f.render_widget(Paragraph::new(lines).block(block(theme, title)), area);
    }

    fn footer(&self, _theme: &Theme) -> Footer<'_> {
        Footer::Hint(text::FORM_HINT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyModifiers;

    fn key(form: &mut PolicyForm, code: KeyCode) -> Effect {
        form.key(&KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn typed(form: &mut PolicyForm, s: &str) {
        for c in s.chars() {
            key(form, KeyCode::Char(c));
        }
    }

    /// A prohibited policy skips the package and version fields and sends
    /// its pattern; a refusal lands at its field with what was typed.
    #[test]
    fn a_prohibited_policy_sends_its_pattern_and_a_refusal_keeps_the_form() {
        let mut form = PolicyForm::add(Vec::new());
        key(&mut form, KeyCode::Char(' '));
        assert_eq!(form.kind, PolicyKind::Prohibited);
        key(&mut form, KeyCode::Tab);
        typed(&mut form, "No torrents");
        key(&mut form, KeyCode::Tab);
        typed(&mut form, "*torrent*");
        key(&mut form, KeyCode::Tab);
        assert_eq!(form.focus, F_ENFORCE, "package and version do not apply");
        key(&mut form, KeyCode::Char(' '));
        let sent = key(&mut form, KeyCode::Enter);
        let Effect::Send(c) = sent else {
            panic!("nothing sent: {sent:?}")
        };
        assert!(matches!(
            &c[..],
            [Command::Submit { request: Request::PolicyAdd(a), .. }]
                if a.kind == PolicyKind::Prohibited
                    && a.software.as_deref() == Some("*torrent*")
                    && a.package.is_none()
                    && a.enforce
        ));
        let e = form.answered(Err(ApiError::refused(
            "a policy named 'No torrents' exists already (policy 2): give another --name",
        )));
        assert!(matches!(e, Effect::None));
        assert_eq!(form.focus, F_NAME);
        assert_eq!(form.name.value(), "No torrents");
        let (_, why) = form.error.clone().unwrap();
        assert!(why.ends_with("give another Name"), "{why}");
    }

    /// An edit sends only what changed; an unchanged form says so.
    #[test]
    fn an_edit_sends_what_changed() {
        let p: Policy = serde_json::from_value(serde_json::json!({
            "id": 4, "name": "Browser", "kind": "mandatory", "software": "Firefox",
            "min_version": "120", "package": 2, "enforce": true,
            "created_at": "", "updated_at": "",
        }))
        .unwrap();
        let mut form = PolicyForm::edit(&p, Vec::new());
        assert!(matches!(form.submit(), Err((None, _))));
        key(&mut form, KeyCode::Down);
        key(&mut form, KeyCode::Down);
        key(&mut form, KeyCode::Down);
        assert_eq!(form.focus, F_VERSION);
        key(&mut form, KeyCode::Backspace);
        typed(&mut form, "8");
        match form.submit() {
            Ok((Request::PolicyEdit { id: 4, edit }, _)) => assert_eq!(
                edit,
                EditPolicy {
                    min_version: Some("128".into()),
                    ..EditPolicy::default()
                }
            ),
            other => panic!("{other:?}"),
        }
    }
}
