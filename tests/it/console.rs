//! The console: whole-app snapshots (ratatui `TestBackend` + insta) of
//! every view, form and overlay at 80×24 and 160×48 in two themes;
//! behaviour of `App` (filter, command mode, triage, quitting, read-only);
//! and end to end, the real binary in tmux: `demo.tape` replayed against
//! `courier demo`, and a console attached to `courier serve` with real
//! agents.
//!
//! Seeded data carries fixed timestamps and a fixed listen address, so
//! nothing in a snapshot depends on the clock or a port.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use courier::api::Request;
use courier::console::app::{App, Mode, View};
use courier::console::backend::{Command as Cmd, Message, Snapshot};
use courier::console::draw;
use courier::console::theme::Theme;
use courier::model::{
    Counts, Destination, Event, Failure, Kind, Level, Package, Status, Task, TaskDestination,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};

use crate::procs::{Agent, DEADLINE, Server, wait_until};

// ---- seeded data ------------------------------------------------------------

const WHEN: &str = "2025-06-01T09:00:00Z";

fn package(id: i64, name: &str, kind: Kind, format: &str, size: u64) -> Package {
    Package {
        id,
        name: name.into(),
        version: None,
        kind,
        format: format.parse().unwrap(),
        size,
        hash: format!("{id:064x}"),
        sha256: format!("{:064x}", id * 7),
        install_command: None,
        uninstall_command: None,
        folder: None,
        success_codes: vec![0, 3010, 1641],
        file_name: name.into(),
        installer: None,
        product_code: None,
        unzipped_size: None,
        entries: None,
        created_at: WHEN.into(),
        updated_at: WHEN.into(),
    }
}

fn packages() -> Vec<Package> {
    let mut msi = package(1, "Courier Hello", Kind::Install, "msi", 32_768);
    msi.version = Some("1.0.0".into());
    msi.file_name = "hello.msi".into();
    msi.install_command = Some(r#"msiexec /i "hello.msi" /qn /norestart"#.into());
    msi.uninstall_command =
        Some("msiexec /x {6F1E3D4C-1B2A-4C5D-9E8F-0A1B2C3D4E5F} /qn /norestart".into());
    msi.product_code = Some("{6F1E3D4C-1B2A-4C5D-9E8F-0A1B2C3D4E5F}".into());
    let mut exe = package(2, "hello-nsis", Kind::Install, "exe", 61_440);
    exe.version = Some("2.4".into());
    exe.file_name = "hello-nsis.exe".into();
    exe.install_command = Some("hello-nsis.exe /S".into());
    let mut zip = package(3, "legacy-erp-client", Kind::Install, "zip", 4_718_592);
    zip.file_name = "legacy-erp-client.zip".into();
    zip.install_command = Some("sh setup.sh".into());
    zip.installer = Some("setup.sh".into());
    zip.unzipped_size = Some(9_437_184);
    zip.entries = Some(12);
    let mut motd = package(4, "motd.txt", Kind::File, "file", 42);
    motd.folder = Some("/etc/motd.d".into());
    vec![msi, exe, zip, motd]
}

fn destination(id: i64, name: &str, status: &str, os: &str, seen: Option<&str>) -> Destination {
    Destination {
        id,
        name: name.into(),
        status: status.parse().unwrap(),
        os: Some(os.into()),
        hostname: Some(format!("{name}.corp.example")),
        agent_version: Some("0.1.0".into()),
        last_seen: seen.map(str::to_string),
        enrolled_at: "2025-05-30T08:00:00Z".into(),
        running_work: 0,
        moving_to: None,
    }
}

fn destinations() -> Vec<Destination> {
    let mut online = destination(1, "pc-accounting-01", "online", "windows", Some(WHEN));
    online.running_work = 2;
    vec![
        online,
        destination(2, "pc-accounting-02", "online", "windows", Some(WHEN)),
        destination(
            3,
            "build-linux-07",
            "offline",
            "linux",
            Some("2025-05-31T17:42:10Z"),
        ),
        destination(4, "kiosk-lobby", "pending", "windows", None),
        destination(
            5,
            "unknown-laptop",
            "rejected",
            "linux",
            Some("2025-05-29T11:00:00Z"),
        ),
    ]
}

fn counts(
    waiting: u64,
    transferring: u64,
    installing: u64,
    succeeded: u64,
    failed: u64,
    cancelled: u64,
) -> Counts {
    Counts {
        waiting,
        transferring,
        installing,
        succeeded,
        failed,
        cancelled,
    }
}

fn task(id: i64, name: &str, status: &str, package: &Package, counts: Counts) -> Task {
    Task {
        id,
        name: name.into(),
        kind: "install".parse().unwrap(),
        class: "admin".parse().unwrap(),
        status: status.parse().unwrap(),
        package: Some(package.id),
        package_name: package.name.clone(),
        start_at: None,
        window: None,
        created_at: "2025-06-01T08:30:00Z".into(),
        completed_at: None,
        counts,
        destinations: Vec::new(),
        warnings: Vec::new(),
    }
}

fn tasks() -> Vec<Task> {
    let p = packages();
    let mut done = task(
        2,
        "Install legacy ERP client",
        "failed",
        &p[2],
        counts(0, 0, 0, 1, 3, 0),
    );
    done.completed_at = Some("2025-06-01T08:41:07Z".into());
    let mut motd = task(
        3,
        "Distribute message of the day",
        "completed",
        &p[3],
        counts(0, 0, 0, 2, 0, 0),
    );
    motd.completed_at = Some("2025-06-01T08:35:00Z".into());
    let mut later = task(
        4,
        "Uninstall hello-nsis overnight",
        "scheduled",
        &p[1],
        counts(2, 0, 0, 0, 0, 0),
    );
    later.kind = "uninstall".parse().unwrap();
    later.start_at = Some("2025-06-02T22:00:00Z".into());
    later.window = Some("22:00-06:00".into());
    vec![
        task(
            1,
            "Roll out Courier Hello 1.0",
            "running",
            &p[0],
            counts(1, 1, 1, 2, 3, 1),
        ),
        done,
        motd,
        later,
    ]
}

fn row(name: &str, status: &str) -> TaskDestination {
    TaskDestination {
        name: name.into(),
        status: status.parse().unwrap(),
        exit_code: None,
        message: None,
        meaning: None,
        attempt: 1,
        retries: 0,
        transferred: 0,
        reboot_required: false,
        output: None,
        updated_at: WHEN.into(),
    }
}

fn failed_row(name: &str, code: i64, meaning: &str, message: &str) -> TaskDestination {
    TaskDestination {
        exit_code: Some(code),
        meaning: Some(meaning.into()),
        message: Some(message.into()),
        transferred: 32_768,
        ..row(name, "failed")
    }
}

/// Task 1 with one row per state: a transfer half done (the gauge),
/// failures with exit codes 1603, 1618 and 3010 (this package does not
/// count a restart as success), a success that needs a restart.
fn detail() -> Task {
    let mut t = tasks().remove(0);
    let mut ok = row("pc-accounting-01", "succeeded");
    ok.exit_code = Some(0);
    ok.transferred = 32_768;
    let mut reboot = row("pc-accounting-02", "succeeded");
    reboot.exit_code = Some(3010);
    reboot.meaning = Some("success; a restart is required to complete the installation".into());
    reboot.reboot_required = true;
    reboot.transferred = 32_768;
    let mut moving = row("pc-sales-01", "transferring");
    moving.transferred = 16_384;
    let mut busy = row("pc-sales-02", "installing");
    busy.transferred = 32_768;
    let mut retried = failed_row(
        "pc-sales-03",
        1618,
        "another installation is in progress; retry later",
        "exit 1618: gave up after 3 tries",
    );
    retried.retries = 3;
    t.destinations = vec![
        ok,
        reboot,
        moving,
        busy,
        failed_row(
            "pc-hr-01",
            1603,
            "fatal error during installation (see the Windows Installer log)",
            "exit 1603: Product: Courier Hello -- Installation failed.",
        ),
        retried,
        failed_row(
            "pc-hr-02",
            3010,
            "success; a restart is required to complete the installation",
            "exit 3010: not a success code of this package",
        ),
        row("pc-hr-03", "waiting"),
        row("pc-old-09", "cancelled"),
    ];
    t
}

fn failure(task: &Task, dest: &str, code: Option<i64>, message: &str) -> Failure {
    Failure {
        task_id: task.id,
        task_name: task.name.clone(),
        destination: dest.into(),
        exit_code: code,
        meaning: code.and_then(|c| courier::task::outcome::meaning(c).map(str::to_string)),
        message: Some(message.into()),
        attempt: 1,
        updated_at: WHEN.into(),
    }
}

/// Failed destinations of tasks 1 and 2: exit 1603 on three machines of
/// two tasks, two download time-outs that differ only in a number, one
/// 1618 and one 3010.
fn failures() -> Vec<Failure> {
    let t = tasks();
    vec![
        failure(
            &t[0],
            "pc-hr-01",
            Some(1603),
            "exit 1603: Installation failed.",
        ),
        failure(
            &t[0],
            "pc-sales-03",
            Some(1618),
            "exit 1618: gave up after 3 tries",
        ),
        failure(
            &t[0],
            "pc-hr-02",
            Some(3010),
            "exit 3010: not a success code",
        ),
        failure(
            &t[1],
            "pc-fin-01",
            Some(1603),
            "exit 1603: Installation failed.",
        ),
        failure(
            &t[1],
            "pc-fin-02",
            Some(1603),
            "exit 1603: Installation failed.",
        ),
        failure(
            &t[1],
            "pc-branch-11",
            None,
            "download timed out after 600 s: no byte for 60 s",
        ),
        failure(
            &t[1],
            "pc-branch-12",
            None,
            "download timed out after 3600 s: no byte for 60 s",
        ),
    ]
}

fn event(id: i64, at: &str, level: Level, kind: &str, subject: &str, message: &str) -> Event {
    Event {
        id,
        at: at.into(),
        level,
        kind: kind.into(),
        subject: subject.into(),
        message: message.into(),
    }
}

fn events() -> Vec<Event> {
    // Subjects and messages in the server's own words.
    vec![
        event(
            1,
            "2025-06-01T08:30:00Z",
            Level::Info,
            "package.added",
            "package 1",
            "'Courier Hello' 1.0.0 (install, msi, 32.77 kB) from hello.msi, sha256 1f0e…",
        ),
        event(
            2,
            "2025-06-01T08:30:05Z",
            Level::Info,
            "task.created",
            "task 1",
            "'Roll out Courier Hello 1.0' for 9 destinations",
        ),
        event(
            3,
            "2025-06-01T08:31:12Z",
            Level::Warn,
            "agent.enrolled",
            "destination kiosk-lobby",
            "kiosk-lobby (windows, 0.1.0) with token 3, waiting for approval",
        ),
        event(
            4,
            "2025-06-01T08:40:59Z",
            Level::Error,
            "task.destination",
            "task 1",
            "'Roll out Courier Hello 1.0' on pc-hr-01: failed, exit 1603",
        ),
        event(
            5,
            "2025-06-01T08:41:07Z",
            Level::Warn,
            "task.finished",
            "task 2",
            "'Install legacy ERP client' failed: 1 succeeded, 3 failed, 0 cancelled",
        ),
        event(
            6,
            "2025-06-01T08:59:30Z",
            Level::Info,
            "agent.online",
            "destination pc-accounting-02",
            "windows 0.1.0",
        ),
    ]
}

fn status() -> Status {
    Status {
        listen: Some("10.0.0.5:7443".into()),
        online: 2,
        offline: 1,
        pending: 1,
        total: 5,
        running_tasks: 1,
        unfinished: 3,
        bytes_served: 0,
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        status: status(),
        packages: packages(),
        tasks: tasks(),
        destinations: destinations(),
        events: events(),
        task: None,
        failures: None,
    }
}

/// An attached console on the seeded data, on the Tasks view.
fn app_with(theme: &str, read_only: bool) -> App {
    let mut app = App::new(
        Theme::load(theme).unwrap(),
        read_only,
        "● attached".into(),
        false,
    );
    app.message(Message::Snapshot(Box::new(snapshot())));
    app.outbox.clear();
    app
}

fn seeded() -> App {
    app_with("default", false)
}

/// Opens task 1 and delivers its rows, as the backend would.
fn open_detail(app: &mut App) {
    press(app, "2g");
    key(app, KeyCode::Enter);
    assert_eq!(app.view, View::TaskDetail);
    app.message(Message::Snapshot(Box::new(Snapshot {
        task: Some(detail()),
        ..snapshot()
    })));
}

/// Opens triage and delivers the failures.
fn open_triage(app: &mut App) {
    press(app, "!");
    assert_eq!(app.view, View::Triage);
    app.message(Message::Snapshot(Box::new(Snapshot {
        failures: Some(failures()),
        ..snapshot()
    })));
}

// ---- keys and screens -------------------------------------------------------

fn key(app: &mut App, code: KeyCode) {
    app.key(KeyEvent::new(code, KeyModifiers::NONE));
}

/// Presses each character as a key.
fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        let m = if c.is_ascii_uppercase() {
            KeyModifiers::SHIFT
        } else {
            KeyModifiers::NONE
        };
        app.key(KeyEvent::new(KeyCode::Char(c), m));
    }
}

fn draw_buffer(app: &App, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw::draw(f, app)).unwrap();
    t.backend().buffer().clone()
}

/// The screen as text, one line per row, trailing blanks trimmed.
fn text_of(b: &Buffer) -> String {
    let w = b.area.width as usize;
    let mut out = String::new();
    for cells in b.content.chunks(w) {
        let line: String = cells.iter().map(|c| c.symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn render(app: &App, w: u16, h: u16) -> String {
    text_of(&draw_buffer(app, w, h))
}

fn colour(c: Color) -> String {
    match c {
        Color::Reset => "-".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The screen with its styles: each row as runs of one style,
/// `«text»fg/bg+MODIFIERS`, so a snapshot shows what a theme changes.
fn styled_of(b: &Buffer) -> String {
    let w = b.area.width as usize;
    let mut out = String::new();
    for (y, cells) in b.content.chunks(w).enumerate() {
        let mut runs: Vec<(String, String)> = Vec::new();
        for c in cells {
            let mut style = format!("{}/{}", colour(c.fg), colour(c.bg));
            if !c.modifier.is_empty() {
                let mods: Vec<&str> = c.modifier.iter_names().map(|(n, _)| n).collect();
                style.push('+');
                style.push_str(&mods.join("+"));
            }
            match runs.last_mut() {
                Some((text, s)) if *s == style => text.push_str(c.symbol()),
                _ => runs.push((c.symbol().to_string(), style)),
            }
        }
        // A row that is blank in the default style says nothing.
        if runs.len() == 1 && runs[0].1 == "-/-" && runs[0].0.trim().is_empty() {
            continue;
        }
        out.push_str(&format!("{y:>2} "));
        for (text, style) in runs {
            out.push_str(&format!("«{text}»{style} "));
        }
        out.push('\n');
    }
    out
}

/// Snapshots the screen at 80×24 and 160×48 under `name`.
macro_rules! screens {
    ($name:literal, $app:expr) => {{
        let app = &$app;
        insta::assert_snapshot!(concat!($name, "_80x24"), render(app, 80, 24));
        insta::assert_snapshot!(concat!($name, "_160x48"), render(app, 160, 48));
    }};
}

fn acts(app: &App) -> Vec<&Request> {
    app.outbox
        .iter()
        .filter_map(|c| match c {
            Cmd::Act { request, .. } => Some(request),
            _ => None,
        })
        .collect()
}

/// Does the looks at files the app asked for, as the backend's worker
/// would, and delivers the answers.
fn inspect_pending(app: &mut App) {
    let paths: Vec<String> = app
        .outbox
        .iter()
        .filter_map(|c| match c {
            Cmd::Inspect { path } => Some(path.clone()),
            _ => None,
        })
        .collect();
    app.outbox.retain(|c| !matches!(c, Cmd::Inspect { .. }));
    for path in paths {
        app.message(Message::Inspected(courier::console::backend::inspect(
            &path,
        )));
    }
}

fn flash(app: &App) -> String {
    app.flash
        .as_ref()
        .map(|(_, m)| m.clone())
        .unwrap_or_default()
}

// ---- snapshots: views -------------------------------------------------------

#[test]
fn snapshot_packages() {
    for theme in ["default", "mono"] {
        let mut app = app_with(theme, false);
        press(&mut app, "1j");
        // Text does not depend on the theme: one snapshot for both.
        screens!("packages", app);
    }
}

#[test]
fn snapshot_tasks() {
    for theme in ["default", "mono"] {
        let mut app = app_with(theme, false);
        press(&mut app, "2");
        screens!("tasks", app);
    }
}

#[test]
fn snapshot_task_detail() {
    for theme in ["default", "mono"] {
        let mut app = app_with(theme, false);
        open_detail(&mut app);
        // The failed row with 1603 selected, so the detail pane explains it.
        press(&mut app, "jjjj");
        screens!("task_detail", app);
    }
}

#[test]
fn snapshot_destinations() {
    for theme in ["default", "mono"] {
        let mut app = app_with(theme, false);
        press(&mut app, "3jjj");
        screens!("destinations", app);
    }
}

#[test]
fn snapshot_log() {
    for theme in ["default", "mono"] {
        let mut app = app_with(theme, false);
        press(&mut app, "4");
        screens!("log", app);
    }
}

#[test]
fn snapshot_triage_expanded() {
    for theme in ["default", "mono"] {
        let mut app = app_with(theme, false);
        open_triage(&mut app);
        key(&mut app, KeyCode::Enter);
        press(&mut app, "j");
        screens!("triage", app);
    }
}

#[test]
fn snapshot_empty_console() {
    let mut app = App::new(
        Theme::load("default").unwrap(),
        false,
        "● standalone".into(),
        true,
    );
    app.message(Message::Snapshot(Box::default()));
    screens!("empty_tasks", app);
    press(&mut app, "1");
    insta::assert_snapshot!("empty_packages_80x24", render(&app, 80, 24));
    press(&mut app, "!");
    insta::assert_snapshot!("empty_triage_80x24", render(&app, 80, 24));
}

// ---- snapshots: forms and overlays -------------------------------------------

#[test]
fn snapshot_package_form() {
    let mut app = seeded();
    press(&mut app, "1a");
    assert!(matches!(app.mode, Mode::PackageForm(_)));
    screens!("package_form_empty", app);

    // An MSI: name and version come from its properties. Relative paths
    // are read from the test's working directory, the package root.
    for c in "tests/fixtures/hello.msi".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Tab);
    inspect_pending(&mut app);
    screens!("package_form_msi", app);

    // An EXE: the framework is detected and its silent switch prefilled.
    let mut app = seeded();
    press(&mut app, "1a");
    for c in "tests/fixtures/hello-nsis.exe".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Tab);
    inspect_pending(&mut app);
    insta::assert_snapshot!("package_form_exe_80x24", render(&app, 80, 24));
}

/// Leaving the path field has the backend look at the file instead of
/// the UI thread reading it (a ZIP can take seconds): the form says it is
/// looking, takes keys meanwhile, and fills in what the answer tells.
#[test]
fn package_form_looks_at_the_file_off_the_ui_thread() {
    let mut app = seeded();
    press(&mut app, "1a");
    for c in "tests/fixtures/hello.msi".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    app.outbox.clear();
    key(&mut app, KeyCode::Tab);
    assert!(
        matches!(&app.outbox[..], [Cmd::Inspect { path }] if path == "tests/fixtures/hello.msi"),
        "{:?}",
        app.outbox
    );
    let s = render(&app, 80, 24);
    assert!(s.contains("looking at tests/fixtures/hello.msi…"), "{s}");
    // The look is still pending: keys go on working, and a name typed
    // now is not overwritten by the MSI's.
    press(&mut app, "Mine");
    inspect_pending(&mut app);
    match &app.mode {
        Mode::PackageForm(f) => {
            assert_eq!(f.fields[1].input.value(), "Mine");
            assert_eq!(f.fields[2].input.value(), "1.2.3");
            assert!(f.inspecting.is_none());
        }
        other => panic!("the form closed: {other:?}"),
    }
    let s = render(&app, 80, 24);
    assert!(s.contains("MSI Courier Hello 1.2.3"), "{s}");
}

#[test]
fn snapshot_package_edit_form() {
    let mut app = seeded();
    press(&mut app, "1jjj");
    press(&mut app, "e");
    insta::assert_snapshot!("package_form_edit_80x24", render(&app, 80, 24));
}

#[test]
fn snapshot_task_form() {
    let mut app = seeded();
    // From the Packages view the selected package is preselected.
    press(&mut app, "1jn");
    assert!(matches!(app.mode, Mode::TaskForm(_)));
    key(&mut app, KeyCode::Tab);
    press(&mut app, " ");
    key(&mut app, KeyCode::Down);
    press(&mut app, " ");
    screens!("task_form", app);
}

#[test]
fn snapshot_help() {
    let mut app = seeded();
    press(&mut app, "?");
    assert!(matches!(app.mode, Mode::Help(_)));
    screens!("help", app);
    let mut app = app_with("default", true);
    press(&mut app, "?");
    insta::assert_snapshot!("help_read_only_160x48", render(&app, 160, 48));
}

#[test]
fn snapshot_confirm_delete() {
    let mut app = seeded();
    press(&mut app, "1jjd");
    assert!(matches!(app.mode, Mode::Confirm(_)));
    screens!("confirm_delete_package", app);
}

#[test]
fn snapshot_output_pane() {
    let mut app = seeded();
    open_detail(&mut app);
    press(&mut app, "jjjj");
    press(&mut app, "o");
    let wanted: Vec<_> = app
        .outbox
        .iter()
        .filter_map(|c| match c {
            Cmd::Output { task, name } => Some((*task, name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(wanted, vec![(1, "pc-hr-01".to_string())]);
    let mut d = detail().destinations[4].clone();
    d.output = Some(
        "MSI (s) (A4:3C) [08:40:58:120]: Product: Courier Hello -- Installation failed.\n\
         MSI (s) (A4:3C) [08:40:58:121]: Windows Installer installed the product. \
         Product Name: Courier Hello. Product Version: 1.0.0. Installation success or error status: 1603.\n\
         === Logging stopped: 6/1/2025  8:40:58 ==="
            .into(),
    );
    app.message(Message::Output(Ok((1, d))));
    assert!(matches!(app.mode, Mode::Output(_)));
    screens!("output", app);
}

#[test]
fn snapshot_read_only() {
    let mut app = app_with("default", true);
    press(&mut app, "1");
    app.outbox.clear();
    press(&mut app, "a");
    assert!(matches!(app.mode, Mode::Normal), "the form must not open");
    assert!(app.outbox.is_empty(), "read-only sent {:?}", app.outbox);
    insta::assert_snapshot!("read_only_refused_80x24", render(&app, 80, 24));
}

#[test]
fn snapshot_filter_and_command_footer() {
    let mut app = seeded();
    press(&mut app, "2/erp");
    insta::assert_snapshot!("filter_typing_80x24", render(&app, 80, 24));
    key(&mut app, KeyCode::Esc);
    press(&mut app, ":t");
    insta::assert_snapshot!("command_mode_80x24", render(&app, 80, 24));
}

// ---- snapshots: themes ---------------------------------------------------------

/// Themes differ in style, not text: the same small screen with its
/// styles in the default theme and in mono (no colour at all; selection,
/// header and states told apart by modifiers and symbols).
#[test]
fn snapshot_styles_default_and_mono() {
    for theme in ["default", "mono"] {
        let mut app = app_with(theme, false);
        open_detail(&mut app);
        press(&mut app, "jjjj");
        let b = draw_buffer(&app, 80, 24);
        insta::assert_snapshot!(format!("styles_task_detail_{theme}"), styled_of(&b));
    }
}

#[test]
fn mono_uses_no_colour_and_default_does() {
    let mut coloured = 0;
    for theme in ["default", "mono", "light", "high-contrast"] {
        let mut app = app_with(theme, false);
        open_detail(&mut app);
        let b = draw_buffer(&app, 160, 48);
        let colours = b
            .content
            .iter()
            .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
            .count();
        if theme == "mono" {
            assert_eq!(colours, 0, "mono drew {colours} coloured cells");
            // The selected row still stands out, by a modifier.
            assert!(
                b.content
                    .iter()
                    .any(|c| c.modifier.contains(Modifier::REVERSED)
                        || c.modifier.contains(Modifier::BOLD)),
                "mono: nothing tells the selection apart"
            );
        } else {
            coloured += 1;
            assert!(colours > 0, "{theme} drew no colour");
        }
        // Whatever the theme, the text is the same.
        assert_eq!(
            render(&app, 160, 48),
            render(&app_detail("default"), 160, 48)
        );
    }
    assert_eq!(coloured, 3);
}

fn app_detail(theme: &str) -> App {
    let mut app = app_with(theme, false);
    open_detail(&mut app);
    app
}

/// Every state in a list carries a symbol, so meaning never rests on hue.
#[test]
fn states_carry_symbols_not_only_colour() {
    let app = app_detail("mono");
    let s = render(&app, 160, 48);
    for want in [
        "✔ succeeded",
        "✖ failed",
        "⟳ installing",
        "◷ waiting",
        "⊘ cancelled",
        "⇣ ",
    ] {
        assert!(s.contains(want), "no {want:?} in\n{s}");
    }
    let mut app = app_with("mono", false);
    press(&mut app, "3");
    let s = render(&app, 160, 48);
    for want in ["✔ online", "○ offline", "◷ pending", "✖ rejected"] {
        assert!(s.contains(want), "no {want:?} in\n{s}");
    }
}

// ---- behaviour ------------------------------------------------------------------

#[test]
fn filter_narrows_rows_and_esc_clears() {
    let mut app = seeded();
    press(&mut app, "2/");
    assert!(matches!(app.mode, Mode::Filter(_)));
    press(&mut app, "ERP");
    // Case-insensitive, on name, status and package.
    assert_eq!(app.list(View::Tasks).visible, vec![1]);
    let s = render(&app, 80, 24);
    assert!(s.contains("Install legacy ERP"), "{s}");
    assert!(!s.contains("Roll out"), "{s}");
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Backspace);
    press(&mut app, "failed");
    assert_eq!(app.list(View::Tasks).visible, vec![1]);
    // Enter keeps the filter; Esc in the list clears it.
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.mode, Mode::Normal));
    assert_eq!(app.list(View::Tasks).filter, "failed");
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.list(View::Tasks).filter, "");
    assert_eq!(app.list(View::Tasks).visible.len(), 4);

    // Esc while typing clears too; a filter that matches nothing says so.
    press(&mut app, "/zzz");
    assert!(app.list(View::Tasks).visible.is_empty());
    let s = render(&app, 80, 24);
    assert!(s.contains("Nothing matches /zzz"), "{s}");
    key(&mut app, KeyCode::Esc);
    assert!(matches!(app.mode, Mode::Normal));
    assert_eq!(app.list(View::Tasks).visible.len(), 4);

    // Every list has its own filter.
    press(&mut app, "3/pending");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.list(View::Destinations).visible, vec![3]);
    press(&mut app, "2");
    assert_eq!(app.list(View::Tasks).visible.len(), 4);
    // A filter survives a data refresh.
    app.message(Message::Snapshot(Box::new(snapshot())));
    assert_eq!(app.list(View::Destinations).visible, vec![3]);
}

#[test]
fn command_mode_completes_with_tab() {
    let mut app = seeded();
    press(&mut app, ":tr");
    key(&mut app, KeyCode::Tab);
    match &app.mode {
        Mode::Command(input) => assert_eq!(input.value(), "triage"),
        other => panic!("not in command mode: {other:?}"),
    }
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Triage);
    assert!(matches!(app.mode, Mode::Normal));

    // An ambiguous prefix stays as typed; the footer lists the candidates.
    press(&mut app, ":t");
    key(&mut app, KeyCode::Tab);
    match &app.mode {
        Mode::Command(input) => assert_eq!(input.value(), "t"),
        other => panic!("not in command mode: {other:?}"),
    }
    let s = render(&app, 80, 24);
    assert!(s.contains("task triage"), "{s}");
    key(&mut app, KeyCode::Esc);

    for (cmd, view) in [
        ("pkg", View::Packages),
        ("dest", View::Destinations),
        ("log", View::Log),
        ("task", View::Tasks),
    ] {
        press(&mut app, &format!(":{cmd}"));
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.view, view, ":{cmd}");
    }
    press(&mut app, ":bogus");
    key(&mut app, KeyCode::Enter);
    assert!(
        flash(&app).contains("unknown command ':bogus'"),
        "{:?}",
        app.flash
    );
    press(&mut app, ":q");
    key(&mut app, KeyCode::Enter);
    assert!(app.quit);
}

#[test]
fn triage_groups_by_cause() {
    let mut app = seeded();
    open_triage(&mut app);
    let groups: Vec<(String, usize, usize)> = app
        .views
        .triage
        .groups
        .iter()
        .map(|g| (g.cause.clone(), g.rows.len(), g.tasks))
        .collect();
    assert_eq!(
        groups,
        vec![
            (
                "exit 1603: fatal error during installation (see the Windows Installer log)"
                    .to_string(),
                3,
                2
            ),
            ("download timed out after N s".to_string(), 2, 1),
            (
                "exit 1618: another installation is in progress; retry later".to_string(),
                1,
                1
            ),
            (
                "exit 3010: success; a restart is required to complete the installation"
                    .to_string(),
                1,
                1
            ),
        ]
    );
    // Groups start closed; Enter opens the selected one.
    assert_eq!(app.list(View::Triage).visible.len(), 4);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.list(View::Triage).visible.len(), 7);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.list(View::Triage).visible.len(), 4);
}

#[test]
fn triage_rerun_queues_one_request_per_task_with_the_group_members() {
    let mut app = seeded();
    open_triage(&mut app);
    // The 1603 group spans tasks 1 and 2; r on the (closed) group row.
    app.outbox.clear();
    press(&mut app, "r");
    let got: Vec<(i64, bool, Option<Vec<String>>)> = acts(&app)
        .into_iter()
        .map(|r| match r {
            Request::TaskRerun { id, all, only } => (*id, *all, only.clone()),
            other => panic!("not a rerun: {other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, false, Some(vec!["pc-hr-01".to_string()])),
            (
                2,
                false,
                Some(vec!["pc-fin-01".to_string(), "pc-fin-02".to_string()])
            ),
        ]
    );

    // On a member row, r re-executes that member's whole group.
    app.outbox.clear();
    press(&mut app, "j");
    key(&mut app, KeyCode::Enter);
    press(&mut app, "j");
    press(&mut app, "r");
    let got: Vec<_> = acts(&app)
        .into_iter()
        .map(|r| match r {
            Request::TaskRerun { id, only, .. } => (*id, only.clone().unwrap_or_default()),
            other => panic!("not a rerun: {other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![(
            2,
            vec!["pc-branch-11".to_string(), "pc-branch-12".to_string()]
        )]
    );

    // o on a member asks for its output; on a group it says what to do.
    app.outbox.clear();
    press(&mut app, "o");
    assert!(
        matches!(&app.outbox[..], [Cmd::Output { task: 2, name }] if name == "pc-branch-11"),
        "{:?}",
        app.outbox
    );
    app.outbox.clear();
    press(&mut app, "k");
    press(&mut app, "o");
    assert!(app.outbox.is_empty());
    assert!(flash(&app).contains("open the group"), "{:?}", app.flash);

    // The server's answer is what the footer shows.
    app.message(Message::Done(Ok(
        "re-executing 2 destinations failed with: download timed out after N s".into(),
    )));
    let s = render(&app, 80, 24);
    assert!(s.contains("re-executing 2 destinations"), "{s}");
}

#[test]
fn rerun_failed_from_tasks_and_detail() {
    let mut app = seeded();
    press(&mut app, "2j");
    app.outbox.clear();
    press(&mut app, "r");
    assert!(
        matches!(
            acts(&app)[..],
            [Request::TaskRerun {
                id: 2,
                all: false,
                only: None
            }]
        ),
        "{:?}",
        app.outbox
    );
    // A task without failures: nothing sent, a word why.
    app.outbox.clear();
    press(&mut app, "jr");
    assert!(acts(&app).is_empty());
    assert!(
        flash(&app).contains("no failed destinations"),
        "{:?}",
        app.flash
    );
}

#[test]
fn quit_with_unfinished_work_asks_and_cancel_is_the_default() {
    let mut app = App::new(
        Theme::load("default").unwrap(),
        false,
        "● standalone".into(),
        true,
    );
    app.message(Message::Snapshot(Box::new(snapshot())));
    press(&mut app, "q");
    assert!(!app.quit);
    match &app.mode {
        Mode::Confirm(c) => {
            assert!(c.quit);
            assert!(!c.yes_selected, "Cancel must be the default");
            assert!(
                c.text.starts_with("3 destinations are still at work"),
                "{}",
                c.text
            );
        }
        other => panic!("no question: {other:?}"),
    }
    insta::assert_snapshot!("quit_confirm_80x24", render(&app, 80, 24));
    // Enter on the default button cancels.
    key(&mut app, KeyCode::Enter);
    assert!(!app.quit);
    assert!(matches!(app.mode, Mode::Normal));
    // Any other key cancels too.
    press(&mut app, "qn");
    assert!(!app.quit);
    press(&mut app, "q");
    key(&mut app, KeyCode::Esc);
    assert!(!app.quit);
    // Tab moves to Yes, Enter then quits; so does y.
    press(&mut app, "q");
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Enter);
    assert!(app.quit);
    let mut app2 = App::new(
        Theme::load("default").unwrap(),
        false,
        "● standalone".into(),
        true,
    );
    app2.message(Message::Snapshot(Box::new(snapshot())));
    press(&mut app2, "qy");
    assert!(app2.quit);
    // Ctrl-C asks the same question.
    let mut app3 = App::new(Theme::load("mono").unwrap(), false, "x".into(), true);
    app3.message(Message::Snapshot(Box::new(snapshot())));
    app3.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(matches!(app3.mode, Mode::Confirm(_)));
    assert!(!app3.quit);
}

#[test]
fn quit_without_work_or_when_attached_does_not_ask() {
    // Attached: closing the console never stops a distribution.
    let mut app = seeded();
    press(&mut app, "q");
    assert!(app.quit);
    // Standalone with nothing unfinished.
    let mut app = App::new(
        Theme::load("default").unwrap(),
        false,
        "● standalone".into(),
        true,
    );
    app.message(Message::Snapshot(Box::new(Snapshot {
        status: Status {
            unfinished: 0,
            ..status()
        },
        ..snapshot()
    })));
    press(&mut app, "q");
    assert!(app.quit);
}

#[test]
fn confirm_names_the_target_and_sends_only_on_yes() {
    let mut app = seeded();
    press(&mut app, "1jj");
    app.outbox.clear();
    press(&mut app, "d");
    match &app.mode {
        Mode::Confirm(c) => assert_eq!(c.text, "Delete package 3 'legacy-erp-client' (zip)?"),
        other => panic!("no confirmation: {other:?}"),
    }
    key(&mut app, KeyCode::Enter);
    assert!(
        acts(&app).is_empty(),
        "Enter on Cancel sent {:?}",
        app.outbox
    );
    assert_eq!(flash(&app), "cancelled");
    press(&mut app, "dy");
    assert!(matches!(acts(&app)[..], [Request::PackageRm { id: 3 }]));

    // Deleting a running task says its work is cancelled.
    let mut app = seeded();
    press(&mut app, "2d");
    match &app.mode {
        Mode::Confirm(c) => assert!(
            c.text.contains("Its work on 3 destinations is cancelled"),
            "{}",
            c.text
        ),
        other => panic!("no confirmation: {other:?}"),
    }
}

#[test]
fn read_only_refuses_every_mutating_key_and_sends_nothing() {
    use courier::console::keymap::{Context, KEYMAP, Key};
    let mut app = app_with("default", true);
    open_detail(&mut app);
    let views = [
        (Context::Packages, '1'),
        (Context::Tasks, '2'),
        (Context::Destinations, '3'),
        (Context::Log, '4'),
        (Context::Triage, '!'),
    ];
    let mut tried = 0;
    for b in KEYMAP.iter().filter(|b| b.mutates) {
        let Some(Key::Char(c)) = b.keys.first().copied() else {
            continue;
        };
        match b.context {
            Context::TaskDetail => {
                press(&mut app, "2");
                key(&mut app, KeyCode::Enter);
            }
            ctx => {
                let v = views.iter().find(|(x, _)| *x == ctx).expect("view key").1;
                press(&mut app, &v.to_string());
            }
        }
        app.outbox.clear();
        press(&mut app, &c.to_string());
        assert!(
            matches!(app.mode, Mode::Normal),
            "{:?} {c}: opened {:?}",
            b.context,
            app.mode
        );
        assert!(
            app.outbox.is_empty(),
            "{:?} {c}: sent {:?}",
            b.context,
            app.outbox
        );
        assert_eq!(flash(&app), courier::console::text::READ_ONLY);
        tried += 1;
    }
    assert!(tried >= 12, "only {tried} mutating keys tried");
    // Looking around still works.
    press(&mut app, "2");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::TaskDetail);
    // The header says so (at 80 columns it does not fit yet: see
    // `read_only_marker_fits_80_columns`).
    let s = render(&app, 120, 40);
    assert!(s.contains("READ-ONLY"), "{s}");
}

#[test]
fn task_form_creates_a_task_for_the_chosen_destinations() {
    let mut app = seeded();
    press(&mut app, "2n");
    // Package 2, two destinations, a name.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Tab);
    press(&mut app, " ");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    press(&mut app, " ");
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    press(&mut app, "Nightly");
    app.outbox.clear();
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.mode, Mode::Normal));
    match acts(&app)[..] {
        [Request::TaskCreate(c)] => {
            assert_eq!(c.package, 2);
            assert_eq!(c.to, vec!["pc-accounting-01", "build-linux-07"]);
            assert_eq!(c.name.as_deref(), Some("Nightly"));
            assert!(!c.uninstall);
        }
        ref other => panic!("not one TaskCreate: {other:?}"),
    }
    // With nothing chosen the form stays and says why.
    press(&mut app, "n");
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.mode, Mode::TaskForm(_)));
    assert!(flash(&app).contains("choose at least one destination"));
}

#[test]
fn package_form_registers_with_the_typed_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello\n").unwrap();
    let mut app = seeded();
    press(&mut app, "1a");
    // Type a prefix and let Tab complete it.
    let typed = format!("{}/no", dir.path().display());
    for c in typed.chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    press(&mut app, "Notes");
    for _ in 0..5 {
        key(&mut app, KeyCode::Tab);
    }
    press(&mut app, "/srv/notes");
    app.outbox.clear();
    key(&mut app, KeyCode::Enter);
    match acts(&app)[..] {
        [Request::PackageAdd(a)] => {
            assert_eq!(a.path, file);
            assert_eq!(a.name.as_deref(), Some("Notes"));
            assert_eq!(a.folder.as_deref(), Some("/srv/notes"));
            assert_eq!(a.install_command, None);
        }
        ref other => panic!("not one PackageAdd: {other:?}"),
    }
}

#[test]
fn lists_are_windowed_and_follow_the_selection() {
    let mut app = seeded();
    let mut t = detail();
    t.destinations = (0..500)
        .map(|i| row(&format!("pc-{i:04}"), "waiting"))
        .collect();
    press(&mut app, "2");
    key(&mut app, KeyCode::Enter);
    app.message(Message::Snapshot(Box::new(Snapshot {
        task: Some(t),
        ..snapshot()
    })));
    press(&mut app, "G");
    let s = render(&app, 80, 24);
    assert!(s.contains("pc-0499"), "{s}");
    assert!(s.contains("500/500"), "{s}");
    key(&mut app, KeyCode::PageUp);
    let s = render(&app, 80, 24);
    assert!(s.contains("480/500") && s.contains("pc-0479"), "{s}");
    press(&mut app, "g");
    let s = render(&app, 80, 24);
    assert!(s.contains("pc-0000") && s.contains(" 1/500"), "{s}");
}

#[test]
fn tiny_and_huge_terminals_do_not_panic() {
    for (w, h) in [(1, 1), (20, 5), (40, 10), (79, 23), (300, 80)] {
        let mut app = seeded();
        for keys in ["1", "2", "3", "4", "!"] {
            press(&mut app, keys);
            render(&app, w, h);
        }
        open_detail(&mut app);
        render(&app, w, h);
        press(&mut app, "?");
        render(&app, w, h);
        key(&mut app, KeyCode::Esc);
        press(&mut app, "1a");
        render(&app, w, h);
        key(&mut app, KeyCode::Esc);
        press(&mut app, "n");
        render(&app, w, h);
        key(&mut app, KeyCode::Esc);
        press(&mut app, "d");
        render(&app, w, h);
    }
}

/// `NO_COLOR` picks mono unless `--theme` says otherwise. The environment
/// is the process's, so the check runs in a child test process of its own
/// rather than changing this one's environment under other threads.
#[test]
fn no_color_selects_mono() {
    let run = |value: &str| -> Output {
        Command::new(std::env::current_exe().unwrap())
            .args(["console::no_color_child", "--exact", "--nocapture"])
            .env("COURIER_TEST_NO_COLOR_CHILD", value)
            .env("NO_COLOR", value)
            .output()
            .unwrap()
    };
    for value in ["1", ""] {
        let o = run(value);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains("1 passed"),
            "NO_COLOR={value:?}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn no_color_child() {
    let Some(value) = std::env::var_os("COURIER_TEST_NO_COLOR_CHILD") else {
        return;
    };
    let chosen = Theme::choose(None).unwrap();
    if value.is_empty() {
        // An empty NO_COLOR does not count (no-color.org).
        assert_eq!(chosen.name, "default");
    } else {
        assert_eq!(chosen.name, "mono");
        assert_eq!(chosen, Theme::load("mono").unwrap());
    }
    // An explicit --theme wins.
    assert_eq!(Theme::choose(Some("light")).unwrap().name, "light");
}

// ---- known console problems ----------------------------------------------------
//
// What the console should do and does not yet; each names the fix. Run
// them with `cargo test --test it console -- --ignored` once fixed, and
// drop the `ignore`.

/// `--read-only` must show at any width: at 80 columns the header's link,
/// agents, tasks and rate already take 81 cells, so the READ-ONLY marker
/// appended last (`draw.rs`, `draw_header`) is never seen.
#[test]

fn read_only_marker_fits_80_columns() {
    let app = app_with("default", true);
    let s = render(&app, 80, 24);
    assert!(s.lines().next().unwrap().contains("READ-ONLY"), "{s}");
}

/// An installer's log lines are long; the output pane (`draw_output`)
/// cuts them at the pane's edge with no way to scroll sideways.
#[test]

fn output_pane_wraps_long_lines() {
    let mut app = seeded();
    open_detail(&mut app);
    let mut d = detail().destinations[4].clone();
    d.output = Some(format!("{} the end is here", "x".repeat(100)));
    app.message(Message::Output(Ok((1, d))));
    let s = render(&app, 80, 24);
    assert!(s.contains("the end is here"), "{s}");
}

/// At 120 columns the Tasks list gives NAME 12 cells, so "Roll out
/// hello-tool 2.1" and "Roll out hello-setup" both read "Roll out hel"
/// (seen in the demo). Fixed columns (`draw_tasks`: 4+9+12+10+20) and the
/// 62 % list split leave the one column that identifies a task the least.
#[test]

fn task_names_readable_at_120_columns() {
    let mut app = seeded();
    press(&mut app, "2");
    let s = render(&app, 120, 40);
    assert!(s.contains("Distribute message of the day"), "{s}");
}

/// The Log view below 120 columns has no detail pane (`draw_main`) and
/// gives MESSAGE what is left after a 20-cell timestamp, KIND and SUBJECT:
/// about 21 cells at 80 columns, so no message can be read whole.
#[test]

fn log_messages_readable_at_80_columns() {
    let mut app = seeded();
    press(&mut app, "4g");
    let s = render(&app, 80, 24);
    assert!(s.contains("from hello.msi"), "{s}");
}

// ---- end to end: the real binary in tmux ------------------------------------------

fn courier_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_courier"))
}

/// A tmux server of its own (its socket in a temp dir of its own) with one
/// session of a fixed size. Dropping it ends what runs in the pane and the
/// server, so a failing test leaves nothing behind.
struct Tmux {
    /// Holds the server's socket; removed with it.
    dir: tempfile::TempDir,
    /// The pane's first process (its shell or the command).
    pane_pid: Option<i32>,
}

fn tmux_available() {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "tmux is needed for the console's end-to-end tests and was not found on PATH \
         (.ci/run installs it: apt-get install tmux)"
    );
}

impl Tmux {
    /// Starts `argv` in a new session of `w`×`h` with `env` added to a
    /// minimal environment, in `cwd`.
    fn start(w: u16, h: u16, cwd: &Path, env: &[(&str, String)], argv: &[String]) -> Tmux {
        tmux_available();
        let mut t = Tmux {
            dir: tempfile::tempdir().expect("tempdir"),
            pane_pid: None,
        };
        let mut cmd = vec![
            "env".to_string(),
            "-i".to_string(),
            format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
            "TERM=tmux-256color".to_string(),
            "LANG=C.UTF-8".to_string(),
        ];
        cmd.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        cmd.extend(argv.iter().cloned());
        let o = t
            .tmux()
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "main"])
            .args(["-x", &w.to_string(), "-y", &h.to_string()])
            .arg("-c")
            .arg(cwd)
            .args(&cmd)
            .output()
            .expect("run tmux");
        assert!(
            o.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // Keep the pane after its command ends, to read its last screen.
        t.run(&["set-option", "-t", "main", "remain-on-exit", "on"]);
        let pid = t.run(&["display-message", "-p", "-t", "main", "#{pane_pid}"]);
        t.pane_pid = pid.trim().parse().ok();
        t
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        // -u: the screen holds UTF-8 (✔ ✖ ⟳) whatever the test's locale.
        c.arg("-u").arg("-S").arg(self.dir.path().join("tmux.sock"));
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let o = self.tmux().args(args).output().expect("run tmux");
        assert!(
            o.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "main"])
    }

    /// Literal text, as typed.
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "main", "-l", text]);
    }

    /// A named key (tmux names: Enter, Escape, Tab, Space, Down…).
    fn send(&self, key: &str) {
        self.run(&["send-keys", "-t", "main", key]);
    }

    /// Waits until the screen shows `text`; on timeout the panic shows the
    /// last screen and `explain`.
    fn wait_for(&self, text: &str, timeout: Duration, explain: impl FnOnce() -> String) -> String {
        let end = Instant::now() + timeout;
        loop {
            let last = self.screen();
            if last.contains(text) {
                return last;
            }
            if Instant::now() >= end {
                panic!(
                    "timed out after {} s waiting for {text:?} on screen\n--- screen ---\n{last}\n{}",
                    timeout.as_secs(),
                    explain()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pane_dead(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "main", "#{pane_dead}"])
            .trim()
            == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // A test that failed midway left the console open: ask it to quit
        // first, so it cleans up after itself (the demo stops its agents);
        // then end whatever is left.
        if std::thread::panicking() {
            let _ = self
                .tmux()
                .args(["send-keys", "-t", "main", "Escape"])
                .output();
            std::thread::sleep(Duration::from_millis(150));
            let _ = self.tmux().args(["send-keys", "-t", "main", "q"]).output();
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end {
                let dead = self
                    .tmux()
                    .args(["display-message", "-p", "-t", "main", "#{pane_dead}"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim() != "0")
                    .unwrap_or(true);
                if dead {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Some(pid) = self.pane_pid {
            kill_tree(pid);
        }
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// SIGKILLs `pid` and its descendants, children first found from /proc
/// (the processes this test started, by id).
fn kill_tree(pid: i32) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
        kill_tree(c);
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

// ---- demo.tape ------------------------------------------------------------------

/// One step of a VHS tape, as far as the replay needs it.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Type(String),
    /// A key and how many times (tmux key name).
    Key(&'static str, usize),
    Sleep(Duration),
    /// `Wait+Screen@T /text/`: the screen must come to show `text`.
    Wait(String, Duration),
}

fn duration(s: &str) -> Duration {
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("bad duration {s:?}"));
    match unit {
        "ms" => Duration::from_secs_f64(n / 1000.0),
        "s" => Duration::from_secs_f64(n),
        "m" => Duration::from_secs_f64(n * 60.0),
        _ => panic!("bad duration unit in {s:?}"),
    }
}

/// A `/…/` pattern of a Wait as plain text: the tape's patterns are
/// literal, with `\` escaping the one character after it, and hold no
/// slash (VHS would end the pattern there).
fn literal_pattern(p: &str, line: usize) -> String {
    let mut out = String::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '/' => panic!("demo.tape:{line}: a Wait pattern cannot hold '/'"),
            '\\' => match chars.next() {
                Some('/') | None => panic!("demo.tape:{line}: bad escape in a Wait pattern"),
                Some(c) => out.push(c),
            },
            '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => {
                panic!(
                    "demo.tape:{line}: the replay takes Wait patterns literally; escape {c:?} as \\{c}"
                )
            }
            c => out.push(c),
        }
    }
    out
}

/// Parses the VHS commands demo.tape uses; anything else fails the test,
/// so the tape cannot grow a step the replay silently skips.
fn parse_tape(text: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        let (cmd, _speed) = cmd
            .split_once('@')
            .map_or((cmd, None), |(c, s)| (c, Some(s)));
        let count = || -> usize {
            if rest.is_empty() {
                1
            } else {
                rest.parse()
                    .unwrap_or_else(|_| panic!("demo.tape:{n}: bad count {rest:?}"))
            }
        };
        let key = |k: &'static str| Step::Key(k, count());
        let step = match cmd {
            "Output" | "Set" | "Require" | "Hide" | "Show" | "Screenshot" => continue,
            "Type" => {
                let q = rest.chars().next().expect("Type needs a string");
                assert!(
                    matches!(q, '"' | '\'' | '`') && rest.len() >= 2 && rest.ends_with(q),
                    "demo.tape:{n}: Type takes one quoted string"
                );
                Step::Type(rest[1..rest.len() - 1].to_string())
            }
            "Enter" => key("Enter"),
            "Escape" => key("Escape"),
            "Tab" => key("Tab"),
            "Space" => key("Space"),
            "Backspace" => key("BSpace"),
            "Up" => key("Up"),
            "Down" => key("Down"),
            "Left" => key("Left"),
            "Right" => key("Right"),
            "PageUp" => key("PPage"),
            "PageDown" => key("NPage"),
            "Sleep" => Step::Sleep(duration(rest)),
            c if c.starts_with("Wait") => {
                let timeout = match line
                    .split_once(' ')
                    .map(|x| x.0)
                    .and_then(|h| h.split_once('@'))
                {
                    Some((_, t)) => duration(t),
                    None => Duration::from_secs(15),
                };
                assert!(
                    c == "Wait+Screen",
                    "demo.tape:{n}: only Wait+Screen is replayed (plain Wait reads one line)"
                );
                let p = rest
                    .strip_prefix('/')
                    .and_then(|r| r.strip_suffix('/'))
                    .unwrap_or_else(|| panic!("demo.tape:{n}: Wait needs /pattern/"));
                Step::Wait(literal_pattern(p, n), timeout)
            }
            other => panic!("demo.tape:{n}: the replay does not know {other:?}"),
        };
        steps.push(step);
    }
    steps
}

#[test]
fn tape_parser_reads_the_commands_it_knows() {
    let steps = parse_tape(
        "# c\nOutput x.gif\nSet FontSize 14\nHide\nType 'a \"b\"'\nShow\nEnter\nDown 3\n\
         Sleep 500ms\nWait+Screen@20s /Tasks 1 · a\\.b/\nType@80ms \"!\"\n",
    );
    assert_eq!(
        steps,
        vec![
            Step::Type("a \"b\"".into()),
            Step::Key("Enter", 1),
            Step::Key("Down", 3),
            Step::Sleep(Duration::from_millis(500)),
            Step::Wait("Tasks 1 · a.b".into(), Duration::from_secs(20)),
            Step::Type("!".into()),
        ]
    );
}

/// demo.tape, replayed: a shell in tmux with the built `courier` first on
/// PATH types what the tape types, presses what it presses, and waits for
/// every screen the tape waits for. The tape registers a package through
/// the form, creates a task, watches it succeed, triages the demo's
/// failure, looks at its output, re-executes it and quits.
#[test]
fn demo_tape_replays_against_the_real_binary() {
    let tape_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo.tape");
    let tape = std::fs::read_to_string(&tape_path).expect("demo.tape");
    let steps = parse_tape(&tape);
    // The tape must keep walking the whole flow the issue asks for.
    let waits: Vec<&str> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Wait(t, _) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    for must in [
        "Register a package",
        "registered",
        "New task",
        "created task",
        "✔ completed",
        "✖ exit 3",
        "libodbc",
        "re-executing",
    ] {
        assert!(
            waits.iter().any(|w| w.contains(must)),
            "demo.tape no longer waits for {must:?} (waits: {waits:?})"
        );
    }

    let home = tempfile::tempdir().unwrap();
    let bin_dir = courier_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let tmp = home.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let env = [
        ("PATH", path),
        ("HOME", home.path().display().to_string()),
        ("TMPDIR", tmp.display().to_string()),
        (
            "XDG_CONFIG_HOME",
            home.path().join("config").display().to_string(),
        ),
        (
            "XDG_DATA_HOME",
            home.path().join("data").display().to_string(),
        ),
        ("PS1", "$ ".to_string()),
    ];
    let shell = vec![
        "bash".to_string(),
        "--norc".to_string(),
        "--noprofile".to_string(),
    ];
    let tmux = Tmux::start(120, 40, home.path(), &env, &shell);
    let demo_logs = || {
        // The demo keeps its agents' logs in its scratch dir under TMPDIR.
        let mut s = String::new();
        for e in walk(&tmp) {
            if e.extension().is_some_and(|x| x == "log") {
                s.push_str(&format!(
                    "--- {} ---\n{}\n",
                    e.display(),
                    crate::procs::tail(&e, 2048)
                ));
            }
        }
        s
    };
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Type(text) => tmux.type_text(text),
            Step::Key(k, n) => {
                for _ in 0..*n {
                    tmux.send(k);
                    // A lone Escape followed at once by a key reads as
                    // Alt+key; a typist leaves a gap, so does the replay.
                    std::thread::sleep(Duration::from_millis(60));
                }
            }
            // The tape's pauses are for the viewer; the waits decide.
            Step::Sleep(d) => std::thread::sleep((*d).min(Duration::from_millis(300))),
            Step::Wait(text, timeout) => {
                // Loaded CI machines get more time than the viewer needs.
                let t = (*timeout * 3).max(Duration::from_secs(20));
                let screen =
                    tmux.wait_for(text, t, || format!("step {i}: {step:?}\n{}", demo_logs()));
                // COURIER_TAPE_SCREENS=DIR keeps the screen of every wait,
                // to review what the tape shows without VHS.
                if let Some(dir) = std::env::var_os("COURIER_TAPE_SCREENS") {
                    let name = format!("{i:03}.txt");
                    std::fs::write(Path::new(&dir).join(name), &screen).unwrap();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(120));
    }
    // q left the console: the demo cleaned up its scratch dir and agents.
    wait_until(
        Duration::from_secs(20),
        "the demo to end and leave the shell",
        || {
            let s = tmux.screen();
            let gone = !s.contains("Triage");
            gone.then_some(())
        },
        || tmux.screen(),
    );
    wait_until(
        Duration::from_secs(20),
        "the demo to remove its scratch dir",
        || {
            let left: Vec<_> = std::fs::read_dir(&tmp)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("courier-demo-"))
                .collect();
            left.is_empty().then_some(())
        },
        || format!("{:?}", walk(&tmp)),
    );
    assert!(!tmux.pane_dead(), "the shell should still run");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

// ---- end to end: attached to courier serve ------------------------------------------

/// A console attached to `courier serve` with two real agents: a task
/// created through the CLI shows up and succeeds on screen; another fails
/// on one agent, the cause is fixed, `r` in triage re-executes it and the
/// second attempt succeeds, all watched in the console.
#[test]
fn attached_console_watches_tasks_and_reexecutes_a_failure() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "e2e-a");
    let b = Agent::enrolled(&s, &token, "e2e-b");
    s.wait_dest("e2e-a", "online", &[&a, &b]);
    s.wait_dest("e2e-b", "online", &[&a, &b]);

    let tmux = Tmux::start(
        120,
        40,
        s.dir.path(),
        &[
            ("HOME", s.dir.path().display().to_string()),
            (
                "XDG_CONFIG_HOME",
                s.dir.path().join("config").display().to_string(),
            ),
        ],
        &[
            courier_bin().display().to_string(),
            "--data".into(),
            s.data().display().to_string(),
        ],
    );
    let why = || s.diagnostics();
    tmux.wait_for("● attached", DEADLINE, why);
    tmux.wait_for("2 online", DEADLINE, why);
    tmux.send("2");
    tmux.wait_for("No tasks yet", DEADLINE, why);

    // A task made with the CLI appears and succeeds on screen.
    let ok = s.input("hello.sh");
    std::fs::write(&ok, "echo hello from e2e\n").unwrap();
    let p = s.json(&[
        "package",
        "add",
        ok.to_str().unwrap(),
        "--install-command",
        "sh hello.sh",
        "--json",
    ]);
    let pid = p["id"].to_string();
    s.json(&[
        "task",
        "create",
        "--package",
        &pid,
        "--to",
        "e2e-a,e2e-b",
        "--name",
        "Hello",
        "--json",
    ]);
    tmux.wait_for("✔ completed", DEADLINE, why);
    let screen = tmux.wait_for("✔2", DEADLINE, why);
    assert!(screen.contains("Hello"), "{screen}");
    key_gap();
    tmux.send("Enter");
    tmux.wait_for("Task 1 · Hello · ✔ completed", DEADLINE, why);
    // The rows follow the list's summary within a refresh.
    let screen = tmux.wait_for("│e2e-b", DEADLINE, why);
    for name in ["e2e-a", "e2e-b"] {
        let row = screen
            .lines()
            .find(|l| l.starts_with(&format!("│{name}")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{screen}"));
        assert!(row.contains("✔ succeeded"), "{row}");
    }
    key_gap();
    tmux.send("Escape");

    // A package that fails on B until a file exists.
    let marks = tempfile::tempdir().unwrap();
    let fixed = marks.path().join("fixed");
    let script = s.input("needs-fix.sh");
    std::fs::write(
        &script,
        format!(
            "case \"$(pwd)\" in\n'{bdata}'/*)\n  if [ ! -e '{fixed}' ]; then echo 'error: prerequisite missing' >&2; exit 4; fi;;\nesac\necho fixed-ok\n",
            bdata = b.data().display(),
            fixed = fixed.display()
        ),
    )
    .unwrap();
    let p = s.json(&[
        "package",
        "add",
        script.to_str().unwrap(),
        "--install-command",
        "sh needs-fix.sh",
        "--json",
    ]);
    let pid = p["id"].to_string();
    s.json(&[
        "task",
        "create",
        "--package",
        &pid,
        "--to",
        "e2e-a,e2e-b",
        "--name",
        "Fixable",
        "--json",
    ]);
    tmux.wait_for("✖ failed", DEADLINE, why);
    tmux.wait_for("Triage ✖1", DEADLINE, why);

    // Triage: the group, its member, the output.
    key_gap();
    tmux.send("!");
    tmux.wait_for("✖ exit 4", DEADLINE, why);
    key_gap();
    tmux.send("Enter");
    tmux.wait_for("e2e-b", DEADLINE, why);
    key_gap();
    tmux.send("j");
    key_gap();
    tmux.send("o");
    tmux.wait_for("error: prerequisite missing", DEADLINE, why);
    key_gap();
    tmux.send("Escape");

    // Fix the cause, re-execute the group from triage.
    std::fs::write(&fixed, "").unwrap();
    key_gap();
    tmux.send("r");
    tmux.wait_for("re-executing 1 destination", DEADLINE, why);
    tmux.wait_for("No failed destinations", DEADLINE, why);

    // The second attempt, in the task's rows.
    key_gap();
    tmux.send("2");
    tmux.wait_for("Fixable", DEADLINE, why);
    key_gap();
    tmux.send("G");
    key_gap();
    tmux.send("Enter");
    tmux.wait_for("Task 2 · Fixable · ✔ completed", DEADLINE, why);
    let screen = tmux.wait_for("│e2e-b", DEADLINE, why);
    let b_row = screen
        .lines()
        .find(|l| l.starts_with("│e2e-b") && l.contains("succeeded"))
        .unwrap_or_else(|| panic!("no succeeded row for e2e-b:\n{screen}"));
    let cells: Vec<&str> = b_row.split_whitespace().collect();
    assert!(
        cells.windows(3).any(|w| w[0] == "succeeded" && w[1] == "2"),
        "e2e-b should show attempt 2: {b_row}"
    );
    // The server agrees.
    let t = s.json(&["task", "show", "2", "--json"]);
    let d = t["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "e2e-b")
        .unwrap();
    assert_eq!(d["attempt"], 2, "{t:#}");
    assert_eq!(d["status"], "succeeded", "{t:#}");

    // Quitting an attached console asks nothing and stops nothing.
    key_gap();
    tmux.send("q");
    wait_until(
        Duration::from_secs(20),
        "the console to exit",
        || tmux.pane_dead().then_some(()),
        || tmux.screen(),
    );
    s.ok(&["status"]);
}

/// A typist's gap between keys (see the Escape note in the tape replay).
fn key_gap() {
    std::thread::sleep(Duration::from_millis(150));
}
