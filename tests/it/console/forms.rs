//! Forms and overlays: their snapshots, and what submitting a form sends.

use super::*;

use courier::console::app::Mode;

use super::insta;

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
    press(&mut app, "gjjjj");
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
    app.message(Message::Output(Ok(Box::new((1, d)))));
    assert!(matches!(app.mode, Mode::Output(_)));
    screens!("output", app);
}

/// Opened while a destination installs, the pane follows it: each
/// refresh brings its output so far with state and elapsed time, the
/// final output once it ends; `y` copies it, closing stops the watch.
#[test]
fn output_pane_is_live_while_the_destination_runs() {
    let mut app = seeded();
    open_detail(&mut app);
    press(&mut app, "o");
    let mut d = row("pc-hr-01", "installing");
    d.started_at = Some("2025-06-01T08:59:18Z".into());
    d.elapsed_secs = Some(42);
    d.output = Some("unpacking files\n".into());
    app.message(Message::Output(Ok(Box::new((1, d.clone())))));
    let s = render(&app, 80, 24);
    assert!(s.contains("installing · running for 42 s"), "{s}");
    assert!(s.contains("unpacking files"), "{s}");
    assert!(s.contains("live"), "{s}");

    // The next refresh: the attempt has ended.
    let mut done = d.clone();
    done.status = "succeeded".parse().unwrap();
    done.exit_code = Some(0);
    done.elapsed_secs = Some(65);
    done.updated_at = "2025-06-01T09:00:23Z".into();
    done.output = Some("unpacking files\nall done\n".into());
    app.message(Message::Snapshot(Box::new(Snapshot {
        task: Some(detail()),
        output: Some((1, done)),
        ..snapshot()
    })));
    let s = render(&app, 80, 24);
    assert!(s.contains("succeeded · took 1 min 05 s"), "{s}");
    assert!(s.contains("all done"), "{s}");
    assert!(!s.contains("live"), "{s}");

    press(&mut app, "y");
    assert!(matches!(app.mode, Mode::Output(_)), "y closed the pane");
    let said = flash(&app);
    let path = said
        .rsplit(' ')
        .next()
        .filter(|p| p.ends_with(".txt"))
        .unwrap_or_else(|| panic!("no file in {said:?}"));
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        "unpacking files\nall done\n"
    );

    app.outbox.clear();
    key(&mut app, KeyCode::Esc);
    assert!(matches!(app.mode, Mode::Normal));
    assert!(
        app.outbox.iter().any(|c| matches!(c, Cmd::Unwatch)),
        "{:?}",
        app.outbox
    );
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

// ---- submitting ----------------------------------------------------------------

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
    // The form waits for the server's answer before it closes.
    assert!(matches!(app.mode, Mode::TaskForm(_)));
    match acts(&app)[..] {
        [Request::TaskCreate(c)] => {
            assert_eq!(c.package, Some(2));
            assert_eq!(c.to, vec!["pc-accounting-01", "build-linux-07"]);
            assert_eq!(c.name.as_deref(), Some("Nightly"));
            assert!(!c.uninstall);
        }
        ref other => panic!("not one TaskCreate: {other:?}"),
    }
    app.message(Message::Answer(Ok("created task 5".into())));
    assert!(matches!(app.mode, Mode::Normal));
    assert_eq!(flash(&app), "created task 5");
    // With nothing chosen the form stays and says why, in the form.
    press(&mut app, "n");
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.mode, Mode::TaskForm(_)));
    let s = render(&app, 80, 24);
    assert!(s.contains("choose at least one destination"), "{s}");
}

fn task_form(app: &App) -> &courier::console::overlays::task_form::TaskForm {
    match &app.mode {
        Mode::TaskForm(f) => f,
        other => panic!("no task form: {other:?}"),
    }
}

fn package_form(app: &App) -> &courier::console::overlays::package_form::PackageForm {
    match &app.mode {
        Mode::PackageForm(f) => f,
        other => panic!("no package form: {other:?}"),
    }
}

fn refused(message: &str) -> Message {
    Message::Answer(Err(courier::api::ApiError::refused(message)))
}

/// A refused registration leaves the form open with everything typed,
/// the reason at the field it is about, whole and in the form's words.
#[test]
fn package_form_keeps_what_was_typed_when_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello\n").unwrap();
    let mut app = seeded();
    press(&mut app, "1a");
    for c in file.display().to_string().chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Tab);
    press(&mut app, "Team notes");
    app.outbox.clear();
    key(&mut app, KeyCode::Enter);
    assert_eq!(acts(&app).len(), 1, "{:?}", app.outbox);
    // What the server says to a file with neither folder nor command.
    app.message(refused(
        "no MSI or EXE installer found: give --folder DIR to distribute it as a file, \
         or --install-command CMD to install it",
    ));
    let f = package_form(&app);
    assert_eq!(f.fields[0].input.value(), file.display().to_string());
    assert_eq!(f.fields[1].input.value(), "Team notes");
    assert_eq!(f.fields[f.focus].label, "Folder");
    let s = render(&app, 80, 24);
    assert!(!s.contains("--folder"), "{s}");
    assert!(s.contains("fill in Folder"), "{s}");
    // The end of the reason too, not cut at the edge.
    assert!(s.contains("Install command to install it"), "{s}");
    assert!(flash(&app).is_empty(), "{}", flash(&app));

    press(&mut app, "/srv/notes");
    app.outbox.clear();
    key(&mut app, KeyCode::Enter);
    match acts(&app)[..] {
        [Request::PackageAdd(a)] => {
            assert_eq!(a.name.as_deref(), Some("Team notes"));
            assert_eq!(a.folder.as_deref(), Some("/srv/notes"));
        }
        ref other => panic!("not one PackageAdd: {other:?}"),
    }
    app.message(Message::Answer(Ok("registered package 9".into())));
    assert!(matches!(app.mode, Mode::Normal));
    assert_eq!(flash(&app), "registered package 9");
}

/// Tab on a path that several files share shows them, and stays.
#[test]
fn path_completion_lists_the_candidates() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["setup-a.msi", "setup-b.msi"] {
        std::fs::write(dir.path().join(f), "").unwrap();
    }
    let mut app = seeded();
    press(&mut app, "1a");
    for c in format!("{}/se", dir.path().display()).chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    let f = package_form(&app);
    assert_eq!(f.focus, 0, "Tab left the path");
    assert_eq!(
        f.fields[0].input.value(),
        format!("{}/setup-", dir.path().display())
    );
    let s = render(&app, 80, 24);
    assert!(s.contains("setup-a.msi  setup-b.msi"), "{s}");
}

/// The edit form offers what an edit may change, says so, and shows the
/// server's refusal of an edit that changes nothing.
#[test]
fn task_edit_offers_only_what_may_change_and_shows_a_refusal() {
    let mut app = seeded();
    open_detail(&mut app);
    press(&mut app, "e");
    let s = render(&app, 80, 24);
    for gone in [
        "now (or YYYY-MM-DD",
        "any time (or",
        "Uninstall",
        "Enter create",
    ] {
        assert!(!s.contains(gone), "{gone} offered:\n{s}");
    }
    assert!(s.contains("its destinations, or its package"), "{s}");
    assert!(s.contains("Enter save the change"), "{s}");
    // Tab goes between the two parts only.
    use courier::console::overlays::task_form::TaskPart;
    assert_eq!(task_form(&app).part, TaskPart::Destinations);
    key(&mut app, KeyCode::Tab);
    assert_eq!(task_form(&app).part, TaskPart::Package);
    key(&mut app, KeyCode::Tab);
    assert_eq!(task_form(&app).part, TaskPart::Destinations);

    // Untick pc-accounting-01, which has succeeded.
    press(&mut app, " ");
    app.outbox.clear();
    key(&mut app, KeyCode::Enter);
    assert!(
        matches!(
            acts(&app)[..],
            [Request::TaskEditDestinations { id: 1, .. }]
        ),
        "{:?}",
        app.outbox
    );
    app.message(refused(
        "task 1: nothing to change: pc-accounting-01 already finished and keeps its outcome \
         (an edit cannot undo what was done; delete the task or copy it instead)",
    ));
    assert!(task_form(&app).chosen.iter().filter(|c| **c).count() == 1);
    let s = render(&app, 80, 24);
    assert!(
        s.contains("nothing to change: pc-accounting-01 already finished and keeps"),
        "{s}"
    );
    assert!(!flash(&app).contains("task changed"), "{}", flash(&app));
}

/// `c` opens a form filled from the task; only Enter there creates.
#[test]
fn copy_opens_a_form_filled_from_the_task() {
    let mut app = seeded();
    open_detail(&mut app);
    app.outbox.clear();
    press(&mut app, "c");
    assert!(acts(&app).is_empty(), "copied at once: {:?}", app.outbox);
    let f = task_form(&app);
    assert_eq!(f.name.value(), "copy of Roll out Courier Hello 1.0");
    let s = render(&app, 80, 24);
    assert!(s.contains("a copy of task 1"), "{s}");
    key(&mut app, KeyCode::Enter);
    match acts(&app)[..] {
        [Request::TaskCreate(c)] => {
            assert_eq!(c.package, Some(1));
            assert_eq!(c.to, vec!["pc-accounting-01", "pc-accounting-02"]);
            assert_eq!(
                c.name.as_deref(),
                Some("copy of Roll out Courier Hello 1.0")
            );
        }
        ref other => panic!("not one TaskCreate: {other:?}"),
    }
}

/// `c` and `e` work from the task list, not only once the task is open:
/// the list's refresh brings the selected task's rows.
#[test]
fn copy_works_from_the_list_once_the_selected_tasks_rows_come() {
    let mut app = seeded();
    press(&mut app, "2g");
    assert_eq!(app.view, View::Tasks);
    match app.refresh() {
        Cmd::Refresh { task, .. } => assert_eq!(task, Some(1), "the selected task"),
        other => panic!("not a refresh: {other:?}"),
    }
    app.message(Message::Snapshot(Box::new(Snapshot {
        task: Some(detail()),
        ..snapshot()
    })));
    app.outbox.clear();
    press(&mut app, "c");
    assert!(acts(&app).is_empty(), "copied at once: {:?}", app.outbox);
    assert_eq!(
        task_form(&app).name.value(),
        "copy of Roll out Courier Hello 1.0"
    );
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
fn task_form_shows_the_pre_flight_of_what_enter_would_create() {
    use courier::model::{Plan, PlanRow};
    use courier::task::plan::Verdict;
    let mut app = seeded();
    press(&mut app, "2n");
    key(&mut app, KeyCode::Tab);
    app.outbox.clear();
    press(&mut app, " ");
    // Choosing a destination asks the server what the task would do.
    let asked = app
        .outbox
        .iter()
        .find_map(|c| match c {
            Cmd::Plan { request } => Some(request.clone()),
            _ => None,
        })
        .expect("no pre-flight asked for");
    assert_eq!(asked.to.len(), 1);
    let s = render(&app, 100, 30);
    assert!(s.contains("Pre-flight: checking…"), "{s}");
    let row = |name: &str, verdict, reason: &str| PlanRow {
        name: name.into(),
        verdict,
        reason: reason.into(),
        os: Some("windows".into()),
        last_seen: None,
        transfer_done_at: None,
    };
    let plan = Plan {
        summary: "1 will install, 1 offline (longest 4 days)".into(),
        will_run: 2,
        starts: "starts now".into(),
        destinations: vec![
            row(&asked.to[0], Verdict::Run, "will run"),
            row(
                "pc-lab-03",
                Verdict::Offline,
                "offline for 4 days: it runs when its agent is back",
            ),
        ],
    };
    app.message(Message::Planned(asked.clone(), Ok(Box::new(plan))));
    let s = render(&app, 100, 30);
    assert!(
        s.contains("Pre-flight: 1 will install, 1 offline (longest 4 days); starts now"),
        "{s}"
    );
    assert!(s.contains("pc-lab-03: offline for 4 days"), "{s}");
    // A plan for what the form no longer holds is not shown as its own.
    press(&mut app, " ");
    let s = render(&app, 100, 30);
    assert!(!s.contains("Pre-flight: 1 will install"), "{s}");
}
