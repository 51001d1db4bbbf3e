//! Triage: failures grouped by cause, and re-executing them.

use super::*;

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
