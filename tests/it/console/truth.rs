//! What is true on each destination, in the console: stuck work, the
//! installer's log behind a failure, rings and their pause.

use super::*;
use courier::console::app::Mode;
use courier::model::{Ring, Stuck};
use courier::task::TaskStatus;
use courier::task::rings::RingState;
use courier::task::stuck::StuckKind;

#[test]
fn a_stuck_destination_and_the_count_are_in_view() {
    let mut app = seeded();
    open_detail(&mut app);
    let mut t = detail();
    t.destinations[2].stuck = Some(Stuck {
        kind: StuckKind::Stalled,
        reason: "no transfer progress for 12 min".into(),
        since: "2025-06-01T08:48:00Z".into(),
    });
    let mut status = status();
    status.stuck = 1;
    app.message(Message::Snapshot(Box::new(Snapshot {
        task: Some(t),
        status,
        ..snapshot()
    })));
    let s = render(&app, 160, 40);
    assert!(s.contains("⚠ 1 stuck"), "{s}");
    assert!(s.contains("⚠ stuck"), "{s}");
    assert!(s.contains("no transfer progress for 12 min"), "{s}");
}

#[test]
fn the_output_pane_shows_the_installer_log_on_l() {
    let mut app = seeded();
    open_detail(&mut app);
    let mut d = detail().destinations[4].clone();
    d.has_log = true;
    d.log = Some("Action ended 10:32:54: FailOnPurpose. Return value 3.\n".into());
    app.message(Message::Output(Ok(Box::new((1, d)))));
    let s = render(&app, 100, 30);
    assert!(s.contains("the installer's log is kept: l shows it"), "{s}");
    assert!(!s.contains("FailOnPurpose"), "{s}");
    press(&mut app, "l");
    assert!(matches!(app.mode, Mode::Output(_)), "l closed the pane");
    let s = render(&app, 100, 30);
    assert!(s.contains("FailOnPurpose. Return value 3."), "{s}");
    press(&mut app, "l");
    let s = render(&app, 100, 30);
    assert!(!s.contains("FailOnPurpose"), "{s}");
    // Without a log, l says why and keeps the pane.
    key(&mut app, KeyCode::Esc);
    let mut plain = detail().destinations[0].clone();
    plain.log = None;
    app.message(Message::Output(Ok(Box::new((1, plain)))));
    press(&mut app, "l");
    assert!(flash(&app).contains("no installer log"), "{}", flash(&app));
    assert!(matches!(app.mode, Mode::Output(_)), "l closed the pane");
}

#[test]
fn rings_show_in_the_title_and_p_pauses_or_resumes() {
    let mut app = seeded();
    open_detail(&mut app);
    let mut t = detail();
    t.status = TaskStatus::Paused;
    t.gate = Some("failures=10%".into());
    t.paused_reason = Some("gate failures=10% tripped after ring 1: 2 of 5 failed (40%)".into());
    t.rings = vec![
        Ring {
            size: 5,
            state: RingState::Done,
            failed: 2,
        },
        Ring {
            size: 45,
            state: RingState::Waiting,
            failed: 0,
        },
    ];
    app.message(Message::Snapshot(Box::new(Snapshot {
        task: Some(t),
        ..snapshot()
    })));
    let s = render(&app, 200, 40);
    assert!(
        s.contains("⏸ paused · gate failures=10% tripped after ring 1: 2 of 5 failed"),
        "{s}"
    );
    let wide = render(&app, 300, 40);
    assert!(
        wide.contains("(p resumes) · ring 2/2, gate failures=10%"),
        "{wide}"
    );
    app.outbox.clear();
    press(&mut app, "p");
    assert!(
        matches!(acts(&app)[..], [Request::TaskResume { id: 1 }]),
        "{:?}",
        app.outbox
    );
    // A running task is paused by the same key.
    press(&mut app, "2g");
    app.outbox.clear();
    press(&mut app, "p");
    assert!(
        matches!(acts(&app)[..], [Request::TaskPause { .. }]),
        "{:?}",
        app.outbox
    );
}
