//! Snapshots of every view, in the default and the mono theme.

use super::*;

use super::insta;

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
        // It opens on the first failure (1603), so the detail pane
        // explains it.
        open_detail(&mut app);
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
