//! The one keymap: it drives dispatch, the footer hints, the `?` overlay
//! and the generated `docs/keybindings.md`.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies. `Global` bindings apply everywhere unless the
/// current context binds the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Global,
    Packages,
    Tasks,
    TaskDetail,
    Destinations,
    Log,
    Triage,
    Software,
    Policies,
}

impl Context {
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::Packages => "Packages",
            Context::Tasks => "Tasks",
            Context::TaskDetail => "Task detail",
            Context::Destinations => "Destinations",
            Context::Log => "Log",
            Context::Triage => "Triage",
            Context::Software => "Software",
            Context::Policies => "Policies",
        }
    }

    pub const ALL: [Context; 9] = [
        Context::Global,
        Context::Packages,
        Context::Tasks,
        Context::TaskDetail,
        Context::Destinations,
        Context::Log,
        Context::Triage,
        Context::Software,
        Context::Policies,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    CommandMode,
    Filter,
    Down,
    Up,
    Top,
    Bottom,
    PageDown,
    PageUp,
    Enter,
    Back,
    NextPane,
    ViewPackages,
    ViewTasks,
    ViewDestinations,
    ViewLog,
    Triage,
    ViewSoftware,
    ViewPolicies,
    ToggleMouse,
    AddPackage,
    EditPackage,
    DeletePackage,
    NewTask,
    EditTask,
    CopyTask,
    RerunFailed,
    DeleteTask,
    Output,
    Approve,
    Reject,
    DeleteDestination,
    ToggleFollow,
    CycleLevel,
    RerunGroup,
    Sort,
    SortReverse,
    Mark,
    EventsOf,
    Uninstall,
    AddPolicy,
    EditPolicy,
    ToggleEnforce,
    DeletePolicy,
    PauseResume,
}

/// A key as the keymap names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Tab,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
}

impl Key {
    pub fn label(self) -> String {
        match self {
            Key::Char(' ') => "Space".into(),
            Key::Char(c) => c.to_string(),
            Key::Enter => "Enter".into(),
            Key::Esc => "Esc".into(),
            Key::Tab => "Tab".into(),
            Key::Up => "↑".into(),
            Key::Down => "↓".into(),
            Key::PageUp => "PgUp".into(),
            Key::PageDown => "PgDn".into(),
            Key::Home => "Home".into(),
            Key::End => "End".into(),
        }
    }

    fn matches(self, ev: &KeyEvent) -> bool {
        let plain = !ev
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        match (self, ev.code) {
            (Key::Char(a), KeyCode::Char(b)) => plain && a == b,
            (Key::Enter, KeyCode::Enter) => true,
            (Key::Esc, KeyCode::Esc) => true,
            (Key::Tab, KeyCode::Tab) => true,
            (Key::Up, KeyCode::Up) => true,
            (Key::Down, KeyCode::Down) => true,
            (Key::PageUp, KeyCode::PageUp) => true,
            (Key::PageDown, KeyCode::PageDown) => true,
            (Key::Home, KeyCode::Home) => true,
            (Key::End, KeyCode::End) => true,
            _ => false,
        }
    }
}

pub struct Binding {
    pub action: Action,
    pub keys: &'static [Key],
    pub context: Context,
    /// What it does, for the help overlay and the docs.
    pub help: &'static str,
    /// Short label for the footer; empty keeps it out of the footer.
    pub hint: &'static str,
    /// Changes server state: disabled in `--read-only`.
    pub mutates: bool,
}

const fn b(
    context: Context,
    action: Action,
    keys: &'static [Key],
    hint: &'static str,
    help: &'static str,
    mutates: bool,
) -> Binding {
    Binding {
        action,
        keys,
        context,
        help,
        hint,
        mutates,
    }
}

use Action as A;
use Context as C;
use Key as K;

pub const KEYMAP: &[Binding] = &[
    b(
        C::Global,
        A::Help,
        &[K::Char('?')],
        "help",
        "Show every key",
        false,
    ),
    b(
        C::Global,
        A::Quit,
        &[K::Char('q')],
        "quit",
        "Quit (asks when standalone work is running)",
        false,
    ),
    b(
        C::Global,
        A::CommandMode,
        &[K::Char(':')],
        "cmd",
        "Command mode (:task N, :dest NAME, :pkg N, :log, :q…)",
        false,
    ),
    b(
        C::Global,
        A::Filter,
        &[K::Char('/')],
        "filter",
        "Filter the current list",
        false,
    ),
    b(
        C::Global,
        A::Triage,
        &[K::Char('!'), K::Char('5')],
        "triage",
        "Failed destinations of all tasks, grouped by cause",
        false,
    ),
    b(
        C::Global,
        A::ViewPackages,
        &[K::Char('1')],
        "",
        "Packages view",
        false,
    ),
    b(
        C::Global,
        A::ViewTasks,
        &[K::Char('2')],
        "",
        "Tasks view",
        false,
    ),
    b(
        C::Global,
        A::ViewDestinations,
        &[K::Char('3')],
        "",
        "Destinations view",
        false,
    ),
    b(
        C::Global,
        A::ViewLog,
        &[K::Char('4')],
        "",
        "Log view",
        false,
    ),
    b(
        C::Global,
        A::ViewSoftware,
        &[K::Char('6')],
        "",
        "Software view: programs across the fleet",
        false,
    ),
    b(
        C::Global,
        A::ViewPolicies,
        &[K::Char('7')],
        "",
        "Policies view: security policies and who violates them",
        false,
    ),
    b(
        C::Global,
        A::Down,
        &[K::Char('j'), K::Down],
        "",
        "Next row",
        false,
    ),
    b(
        C::Global,
        A::Up,
        &[K::Char('k'), K::Up],
        "",
        "Previous row",
        false,
    ),
    b(
        C::Global,
        A::Top,
        &[K::Char('g'), K::Home],
        "",
        "First row",
        false,
    ),
    b(
        C::Global,
        A::Bottom,
        &[K::Char('G'), K::End],
        "",
        "Last row",
        false,
    ),
    b(
        C::Global,
        A::PageDown,
        &[K::PageDown],
        "",
        "Page down",
        false,
    ),
    b(C::Global, A::PageUp, &[K::PageUp], "", "Page up", false),
    b(
        C::Global,
        A::Enter,
        &[K::Enter],
        "",
        "Open the selected row",
        false,
    ),
    b(
        C::Global,
        A::Back,
        &[K::Esc],
        "",
        "Back, close, clear the filter",
        false,
    ),
    b(C::Global, A::NextPane, &[K::Tab], "", "Next view", false),
    b(
        C::Global,
        A::Sort,
        &[K::Char('s')],
        "",
        "Sort by the next column (then the server's order)",
        false,
    ),
    b(
        C::Global,
        A::SortReverse,
        &[K::Char('S')],
        "",
        "Reverse the sort",
        false,
    ),
    b(
        C::Global,
        A::Mark,
        &[K::Char(' ')],
        "",
        "Mark or unmark the row (r and d act on the marked rows)",
        false,
    ),
    b(
        C::Global,
        A::ToggleMouse,
        &[K::Char('M')],
        "",
        "Mouse on/off (off by default)",
        false,
    ),
    b(
        C::Packages,
        A::AddPackage,
        &[K::Char('a')],
        "add",
        "Register a package",
        true,
    ),
    b(
        C::Packages,
        A::EditPackage,
        &[K::Char('e')],
        "edit",
        "Edit name, version, commands, folder",
        true,
    ),
    b(
        C::Packages,
        A::DeletePackage,
        &[K::Char('d')],
        "delete",
        "Delete the package, or the marked ones",
        true,
    ),
    b(
        C::Packages,
        A::NewTask,
        &[K::Char('n')],
        "task",
        "New task for this package",
        true,
    ),
    b(
        C::Tasks,
        A::Enter,
        &[K::Enter],
        "open",
        "Every destination of the task",
        false,
    ),
    b(
        C::Tasks,
        A::NewTask,
        &[K::Char('n')],
        "new",
        "New task",
        true,
    ),
    b(
        C::Tasks,
        A::EditTask,
        &[K::Char('e')],
        "edit",
        "Change destinations or package",
        true,
    ),
    b(
        C::Tasks,
        A::CopyTask,
        &[K::Char('c')],
        "copy",
        "New task from this one (a form)",
        true,
    ),
    b(
        C::Tasks,
        A::RerunFailed,
        &[K::Char('r')],
        "rerun",
        "Re-execute on failed destinations (of the marked tasks)",
        true,
    ),
    b(
        C::Tasks,
        A::DeleteTask,
        &[K::Char('d')],
        "delete",
        "Delete the task, or the marked ones (cancels their work)",
        true,
    ),
    b(
        C::Tasks,
        A::PauseResume,
        &[K::Char('p')],
        "",
        "Pause the task (waiting work is held), or resume it",
        true,
    ),
    b(
        C::TaskDetail,
        A::Output,
        &[K::Enter, K::Char('o')],
        "output",
        "Message and output of the destination",
        false,
    ),
    b(
        C::TaskDetail,
        A::RerunFailed,
        &[K::Char('r')],
        "rerun",
        "Re-execute the marked destinations, else every failed one",
        true,
    ),
    b(
        C::TaskDetail,
        A::EventsOf,
        &[K::Char('l')],
        "events",
        "Events of the destination, in the Log",
        false,
    ),
    b(
        C::TaskDetail,
        A::EditTask,
        &[K::Char('e')],
        "edit",
        "Change destinations or package",
        true,
    ),
    b(
        C::TaskDetail,
        A::CopyTask,
        &[K::Char('c')],
        "copy",
        "New task from this one (a form)",
        true,
    ),
    b(
        C::TaskDetail,
        A::PauseResume,
        &[K::Char('p')],
        "pause",
        "Pause the task (waiting work is held), or resume it",
        true,
    ),
    b(
        C::Destinations,
        A::EventsOf,
        &[K::Enter, K::Char('l')],
        "events",
        "Events of the destination, in the Log",
        false,
    ),
    b(
        C::Destinations,
        A::Approve,
        &[K::Char('a')],
        "approve",
        "Approve a pending agent",
        true,
    ),
    b(
        C::Destinations,
        A::Reject,
        &[K::Char('x')],
        "reject",
        "Reject the agent",
        true,
    ),
    b(
        C::Destinations,
        A::DeleteDestination,
        &[K::Char('d')],
        "delete",
        "Delete the destination, or the marked ones",
        true,
    ),
    b(
        C::Log,
        A::Enter,
        &[K::Enter],
        "open",
        "Open the event's task, destination or package",
        false,
    ),
    b(
        C::Log,
        A::ToggleFollow,
        &[K::Char('f')],
        "follow",
        "Follow new events / freeze",
        false,
    ),
    b(
        C::Log,
        A::CycleLevel,
        &[K::Char('l')],
        "level",
        "Show all, warnings+, errors only",
        false,
    ),
    b(
        C::Triage,
        A::Enter,
        &[K::Enter],
        "expand",
        "Open or close the group",
        false,
    ),
    b(
        C::Triage,
        A::RerunGroup,
        &[K::Char('r')],
        "rerun",
        "Re-execute every destination of the group, or of the marked rows",
        true,
    ),
    b(
        C::Triage,
        A::EventsOf,
        &[K::Char('l')],
        "events",
        "Events of the destination, in the Log",
        false,
    ),
    b(
        C::Triage,
        A::Output,
        &[K::Char('o')],
        "output",
        "Output of the selected destination",
        false,
    ),
    b(
        C::Software,
        A::Uninstall,
        &[K::Char('u')],
        "uninstall",
        "Uninstall this version from every destination that lists it (asks)",
        true,
    ),
    b(
        C::Policies,
        A::Enter,
        &[K::Enter],
        "task",
        "Open the policy's countermeasure task",
        false,
    ),
    b(
        C::Policies,
        A::AddPolicy,
        &[K::Char('a')],
        "add",
        "New policy: mandatory, prohibited or update",
        true,
    ),
    b(
        C::Policies,
        A::EditPolicy,
        &[K::Char('e')],
        "edit",
        "Edit name, program, package, version, enforcement",
        true,
    ),
    b(
        C::Policies,
        A::ToggleEnforce,
        &[K::Char('f')],
        "enforce",
        "Enforce the policy, or stop enforcing it (asks)",
        true,
    ),
    b(
        C::Policies,
        A::DeletePolicy,
        &[K::Char('d')],
        "delete",
        "Delete the policy and its countermeasure task (asks)",
        true,
    ),
];

/// The action a key has in `context`: the context's own binding first,
/// then the global one.
pub fn dispatch(context: Context, ev: &KeyEvent) -> Option<&'static Binding> {
    let find = |ctx: Context| {
        KEYMAP
            .iter()
            .find(|b| b.context == ctx && b.keys.iter().any(|k| k.matches(ev)))
    };
    find(context).or_else(|| find(Context::Global))
}

/// Footer hints for a context, most useful first (a narrow terminal cuts
/// the end): help, the context's own keys (without the ones that change
/// something when read-only), then the other global keys. Only the first
/// key of each binding is shown.
pub fn hints(context: Context, read_only: bool) -> Vec<(String, &'static str)> {
    let shown = |b: &&Binding| !(b.hint.is_empty() || (read_only && b.mutates));
    let label = |b: &Binding| (b.keys[0].label(), b.hint);
    let global = |a: Action| {
        KEYMAP
            .iter()
            .find(|b| b.context == Context::Global && b.action == a)
    };
    let mut out: Vec<(String, &'static str)> =
        global(Action::Help).into_iter().map(label).collect();
    out.extend(
        KEYMAP
            .iter()
            .filter(|b| b.context == context)
            .filter(shown)
            .map(label),
    );
    out.extend(
        KEYMAP
            .iter()
            .filter(|b| b.context == Context::Global && b.action != Action::Help)
            .filter(shown)
            .map(label),
    );
    out
}

/// The first key of a global action (the one its tab shows).
pub fn key_of(action: Action) -> Option<Key> {
    KEYMAP
        .iter()
        .find(|b| b.context == Context::Global && b.action == action)
        .and_then(|b| b.keys.first().copied())
}

/// The first key of an action, in any context, as the help shows it.
pub fn label_of(action: Action) -> String {
    KEYMAP
        .iter()
        .find(|b| b.action == action)
        .and_then(|b| b.keys.first())
        .map_or_else(|| format!("{action:?}"), |k| k.label())
}

/// A key as pressed, as the help would name it (with its modifiers).
pub fn event_label(ev: &KeyEvent) -> String {
    let key = match ev.code {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::F(n) => format!("F{n}"),
        KeyCode::Backspace => "Backspace".into(),
        KeyCode::Delete => "Delete".into(),
        KeyCode::Insert => "Insert".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::BackTab => "Shift-Tab".into(),
        other => format!("{other:?}"),
    };
    let mut mods = String::new();
    if ev.modifiers.contains(KeyModifiers::CONTROL) {
        mods.push_str("Ctrl-");
    }
    if ev.modifiers.contains(KeyModifiers::ALT) {
        mods.push_str("Alt-");
    }
    format!("{mods}{key}")
}

pub fn keys_label(keys: &[Key]) -> String {
    keys.iter().map(|k| k.label()).collect::<Vec<_>>().join("/")
}

/// `docs/keybindings.md`, generated from the table (a test keeps the file
/// in step).
pub fn markdown() -> String {
    let mut s = String::from(
        "# Console keys\n\nGenerated from `src/console/keymap.rs`; \
         `cargo test` fails when this file and the table disagree \
         (run with `UPDATE_DOCS=1` to rewrite it).\n\
         Keys marked *changes* are disabled in `--read-only`.\n",
    );
    for ctx in Context::ALL {
        s.push_str(&format!(
            "\n## {}\n\n| keys | does |\n| --- | --- |\n",
            ctx.title()
        ));
        for b in KEYMAP.iter().filter(|b| b.context == ctx) {
            let keys = b
                .keys
                .iter()
                .map(|k| format!("`{}`", k.label()))
                .collect::<Vec<_>>()
                .join(" ");
            let tag = if b.mutates { " *(changes)*" } else { "" };
            s.push_str(&format!("| {keys} | {}{tag} |\n", b.help));
        }
    }
    s
}

#[cfg(test)]
#[path = "keymap_tests.rs"]
mod tests;
