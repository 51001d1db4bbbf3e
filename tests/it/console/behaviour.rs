//! Behaviour of `App`: filtering, command mode, quitting, confirmations,
//! read-only, and lists and terminals of any size.

use super::*;

use courier::console::app::Mode;
use courier::model::Status;

use super::insta;

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
        (Context::Software, '6'),
        (Context::Policies, '7'),
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

// ---- help, keys that do nothing, jumps ------------------------------------

fn help(app: &App) -> &courier::console::overlays::help::Help {
    match &app.mode {
        Mode::Help(h) => h,
        other => panic!("help is not open: {other:?}"),
    }
}

#[test]
fn help_opens_at_the_views_keys_scrolls_within_and_closes_on_its_keys() {
    let mut app = seeded();
    press(&mut app, "4?");
    assert_eq!(help(&app).order[0], courier::console::keymap::Context::Log);
    let s = render(&app, 80, 24);
    let first = s
        .lines()
        .find(|l| l.contains("Log") || l.contains("Everywhere"));
    assert!(
        first.is_some_and(|l| l.contains("Log")),
        "the Log's keys should come first:\n{s}"
    );
    insta::assert_snapshot!("help_log_80x24", s);
    // g and G scroll, they do not close; G stops at the end.
    press(&mut app, "G");
    let end = render(&app, 80, 24);
    assert!(matches!(app.mode, Mode::Help(_)));
    assert!(end.contains("Output of the selected destination"), "{end}");
    let at_end = help(&app).scroll;
    for _ in 0..30 {
        key(&mut app, KeyCode::Down);
    }
    assert_eq!(help(&app).scroll, at_end, "scrolled past the end");
    assert_eq!(render(&app, 80, 24), end);
    press(&mut app, "g");
    assert_eq!(help(&app).scroll, 0);
    // A stray key keeps it open; ?, Esc and q close it.
    press(&mut app, "x");
    assert!(matches!(app.mode, Mode::Help(_)));
    press(&mut app, "?");
    assert!(matches!(app.mode, Mode::Normal));
    press(&mut app, "?");
    key(&mut app, KeyCode::Esc);
    assert!(matches!(app.mode, Mode::Normal));
    press(&mut app, "?q");
    assert!(matches!(app.mode, Mode::Normal));
    assert!(!app.quit);
}

#[test]
fn a_key_that_does_nothing_says_so() {
    let mut app = seeded();
    press(&mut app, "2x");
    assert_eq!(flash(&app), "x does nothing in Tasks (? lists its keys)");
    // Bound elsewhere, meaningless here: the log has no marks or sort.
    press(&mut app, "4 ");
    assert_eq!(flash(&app), "Space does nothing in Log (? lists its keys)");
    press(&mut app, "s");
    assert_eq!(flash(&app), "s does nothing in Log (? lists its keys)");
    let s = render(&app, 80, 24);
    assert!(s.contains("s does nothing in Log"), "{s}");
}

#[test]
fn enter_opens_the_row_in_log_and_destinations() {
    let mut app = seeded();
    // Destinations: Enter shows the destination's events.
    press(&mut app, "3jjj");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Log);
    assert_eq!(app.list(View::Log).filter, "kiosk-lobby");
    let s = render(&app, 120, 30);
    assert!(s.contains("waiting for approval"), "{s}");
    assert!(!s.contains("package.added"), "{s}");
    key(&mut app, KeyCode::Esc);
    // Log: Enter opens what the event is about.
    press(&mut app, "g");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Packages);
    assert_eq!(app.list(View::Packages).current(), Some(0));
    press(&mut app, "4gj");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::TaskDetail);
    assert_eq!(app.data.task.as_ref().map(|t| t.id), Some(1));
    press(&mut app, "4gjj");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Destinations);
    assert_eq!(app.list(View::Destinations).current(), Some(3));
}

#[test]
fn command_line_jumps_to_a_task_destination_or_package() {
    let mut app = seeded();
    press(&mut app, ":task 2");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::TaskDetail);
    assert_eq!(app.data.task.as_ref().map(|t| t.id), Some(2));
    assert!(matches!(app.mode, Mode::Normal));
    press(&mut app, ":dest build-linux-07");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Destinations);
    assert_eq!(app.list(View::Destinations).current(), Some(2));
    press(&mut app, ":pkg 3");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Packages);
    assert_eq!(app.list(View::Packages).current(), Some(2));
    press(&mut app, ":task 99");
    key(&mut app, KeyCode::Enter);
    assert_eq!(flash(&app), "no task 99");
    press(&mut app, ":dest nowhere");
    key(&mut app, KeyCode::Enter);
    assert_eq!(flash(&app), "no destination nowhere");
}

#[test]
fn task_detail_opens_on_the_first_failure() {
    let mut app = seeded();
    open_detail(&mut app);
    let d = &app.data.task.as_ref().unwrap().destinations;
    let at = app.list(View::TaskDetail).current().unwrap();
    assert_eq!(d[at].name, "pc-hr-01");
    // A refresh later does not move it back.
    press(&mut app, "g");
    app.message(Message::Snapshot(Box::new(Snapshot {
        task: Some(detail()),
        ..snapshot()
    })));
    assert_eq!(app.list(View::TaskDetail).current(), Some(0));
}

#[test]
fn lists_sort_by_any_column_and_keep_the_selection() {
    let mut app = seeded();
    press(&mut app, "2j");
    let id = |app: &App| app.data.tasks[app.list(View::Tasks).current().unwrap()].id;
    assert_eq!(id(&app), 2);
    // s: by ID, then NAME…; the selection stays on task 2.
    press(&mut app, "ss");
    assert_eq!(app.list(View::Tasks).visible, vec![2, 1, 0, 3]);
    assert_eq!(id(&app), 2);
    let s = render(&app, 80, 24);
    assert!(s.contains("NAME ▲"), "{s}");
    press(&mut app, "S");
    assert_eq!(app.list(View::Tasks).visible, vec![3, 0, 1, 2]);
    assert!(render(&app, 80, 24).contains("NAME ▼"));
    // A refresh keeps the order and the selection.
    app.message(Message::Snapshot(Box::new(snapshot())));
    assert_eq!(app.list(View::Tasks).visible, vec![3, 0, 1, 2]);
    assert_eq!(id(&app), 2);
    // Destinations sort too, by status (the second column).
    press(&mut app, "3ss");
    let names: Vec<&str> = app
        .list(View::Destinations)
        .visible
        .iter()
        .map(|i| app.data.destinations[*i].name.as_str())
        .collect();
    assert_eq!(names[0], "build-linux-07");
}

#[test]
fn marked_tasks_are_deleted_after_one_question() {
    let mut app = seeded();
    press(&mut app, "2  ");
    app.outbox.clear();
    press(&mut app, "d");
    match &app.mode {
        Mode::Confirm(c) => assert!(
            c.text.starts_with("Delete 2 marked tasks (1, 2)?"),
            "{}",
            c.text
        ),
        other => panic!("no question: {other:?}"),
    }
    press(&mut app, "y");
    assert!(
        matches!(
            acts(&app)[..],
            [Request::TaskRm { id: 1 }, Request::TaskRm { id: 2 }]
        ),
        "{:?}",
        app.outbox
    );
}

#[test]
fn quitting_the_demo_with_work_running_asks() {
    let mut app = App::new(
        Theme::load("default").unwrap(),
        false,
        courier::console::text::DEMO_LINK.into(),
        false,
    );
    app.message(Message::Snapshot(Box::new(snapshot())));
    press(&mut app, "q");
    match &app.mode {
        Mode::Confirm(c) => assert!(
            c.text
                .starts_with("2 destinations are at work, and quitting ends the demo"),
            "{}",
            c.text
        ),
        other => panic!("no question: {other:?}"),
    }
    assert!(!app.quit);
    press(&mut app, "y");
    assert!(app.quit);
    // Nothing running: the demo quits at once.
    let mut idle = App::new(
        Theme::load("default").unwrap(),
        false,
        courier::console::text::DEMO_LINK.into(),
        false,
    );
    let mut snap = snapshot();
    for t in &mut snap.tasks {
        t.counts.transferring = 0;
        t.counts.installing = 0;
    }
    idle.message(Message::Snapshot(Box::new(snap)));
    press(&mut idle, "q");
    assert!(idle.quit);
}

#[test]
fn footer_hints_are_whole_and_detail_values_wrap_under_the_value() {
    let mut app = seeded();
    for (view, w) in [("4", 80), ("2", 80), ("!", 100), ("4", 200)] {
        press(&mut app, view);
        let s = render(&app, w, 24);
        let footer = s.lines().last().unwrap().trim_end().to_string();
        let hints = courier::console::keymap::hints(app.active().context(), false);
        let whole: Vec<String> = hints.iter().map(|(k, h)| format!("{k} {h}")).collect();
        let mut rest = footer.as_str();
        for h in &whole {
            match rest.trim_start().strip_prefix(h.as_str()) {
                Some(r) => rest = r,
                None => break,
            }
        }
        assert!(
            rest.trim().is_empty(),
            "{view} at {w}: a hint is cut: {footer:?} (left {rest:?})"
        );
    }
    // A long message wraps under its value, not under "message".
    open_detail(&mut app);
    let mut t = detail();
    t.destinations[4].message = Some(format!("{} the end", "word ".repeat(30)));
    app.message(Message::Snapshot(Box::new(Snapshot {
        task: Some(t),
        ..snapshot()
    })));
    let s = render(&app, 80, 40);
    let at = s
        .lines()
        .position(|l| l.contains("│message"))
        .expect("message line");
    let next = s.lines().nth(at + 1).unwrap();
    assert!(next.starts_with("│            word"), "{s}");
}
