//! Triage: failures grouped by cause, selection bound to the group, and
//! re-executing them through the one confirmation.

use super::*;

use courier::console::app::Mode;
use courier::model::Failure;

use super::insta;

fn causes(app: &App) -> Vec<(String, usize, usize, bool)> {
    app.views
        .triage
        .groups
        .iter()
        .map(|g| (g.cause.clone(), g.rows.len(), g.tasks, g.hint.is_some()))
        .collect()
}

fn reruns(app: &App) -> Vec<(i64, Vec<String>)> {
    acts(app)
        .into_iter()
        .map(|r| match r {
            Request::TaskRerun { id, only, .. } => (*id, only.clone().unwrap_or_default()),
            other => panic!("not a rerun: {other:?}"),
        })
        .collect()
}

#[test]
fn triage_groups_by_cause_from_the_output_not_the_exit_code() {
    let mut app = seeded();
    open_triage(&mut app);
    let s = |x: &str| x.to_string();
    assert_eq!(
        causes(&app),
        vec![
            (
                s("download timed out after N s: no byte for N s"),
                2,
                2,
                false
            ),
            (
                s("exit 1 · error: libodbc.so.N not found: install the ODBC driver first"),
                1,
                1,
                false
            ),
            (
                s("exit 1 · npm ERR! network timeout at <host>"),
                1,
                1,
                false
            ),
            (
                s(
                    "exit 1603 · action InstallFinalize · Product: Courier Hello -- Installation failed."
                ),
                1,
                1,
                true
            ),
            (s("exit 1618 · gave up after N tries"), 1, 1, true),
            (
                s("exit 5 · fatal: disk quota exceeded on <path>"),
                1,
                1,
                false
            ),
        ]
    );
    // The Linux exit 5 is not called "access denied"; the Windows 1603
    // carries its meaning beside its line.
    let screen = render(&app, 160, 48);
    assert!(!screen.contains("access denied"), "{screen}");
    press(&mut app, "jjj");
    let screen = render(&app, 160, 48);
    assert!(
        screen.contains("on Windows: fatal error during installation"),
        "{screen}"
    );
    press(&mut app, "g");
    // Groups start closed; Enter opens the selected one.
    assert_eq!(app.list(View::Triage).visible.len(), 6);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.list(View::Triage).visible.len(), 8);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.list(View::Triage).visible.len(), 6);
}

/// A failure that sorts above every seeded group, on `n` destinations.
fn new_failures(n: usize) -> Vec<Failure> {
    let mut f = failures();
    let template = f[0].clone();
    for i in 0..n {
        f.push(Failure {
            destination: format!("pc-new-{i}"),
            exit_code: None,
            meaning: None,
            said: None,
            action: None,
            message: Some("certificate expired".into()),
            ..template.clone()
        });
    }
    f
}

fn deliver(app: &mut App, failures: Vec<Failure>) {
    app.message(Message::Snapshot(Box::new(Snapshot {
        failures: Some(failures),
        ..snapshot()
    })));
}

#[test]
fn the_selection_stays_on_its_group_when_a_group_arrives_above_it() {
    let mut app = seeded();
    open_triage(&mut app);
    // The third group: npm's, one destination.
    press(&mut app, "jj");
    assert!(render(&app, 160, 48).contains("3/6"));
    deliver(&mut app, new_failures(3));
    assert_eq!(app.views.triage.groups[0].cause, "certificate expired");
    let s = render(&app, 160, 48);
    assert!(s.contains("4/7"), "the selection moved:\n{s}");
    assert!(
        s.lines()
            .any(|l| l.contains("cause") && l.contains("npm ERR!")),
        "the detail pane should describe the chosen group:\n{s}"
    );
    // One destination: re-executed at once, and it is the chosen one.
    app.outbox.clear();
    press(&mut app, "r");
    assert!(matches!(app.mode, Mode::Normal));
    assert_eq!(reruns(&app), vec![(2, vec!["pc-fin-03".to_string()])]);
}

#[test]
fn rerun_of_several_destinations_asks_first_naming_count_and_cause() {
    let mut app = seeded();
    open_triage(&mut app);
    // The time-outs: two destinations of two tasks.
    app.outbox.clear();
    press(&mut app, "r");
    let Mode::Confirm(c) = &app.mode else {
        panic!("no question: {:?}", app.mode);
    };
    assert!(!c.yes_selected, "Cancel must be the default");
    assert!(
        c.text.starts_with(
            "Re-execute 2 destinations failed with: download timed out after N s: no byte for N s?"
        ),
        "{}",
        c.text
    );
    assert!(
        c.text
            .contains("task 1 'Roll out Courier Hello 1.0' on pc-branch-11")
    );
    assert!(
        c.text
            .contains("task 2 'Install legacy ERP client' on pc-branch-12")
    );
    insta::assert_snapshot!("triage_rerun_confirm_80x24", render(&app, 80, 24));
    assert!(acts(&app).is_empty());
    // Enter on Cancel sends nothing.
    key(&mut app, KeyCode::Enter);
    assert!(acts(&app).is_empty(), "{:?}", app.outbox);
    // A group arrives above it; asked again, y re-executes the same group.
    deliver(&mut app, new_failures(3));
    press(&mut app, "ry");
    assert_eq!(
        reruns(&app),
        vec![
            (1, vec!["pc-branch-11".to_string()]),
            (2, vec!["pc-branch-12".to_string()])
        ]
    );
    // The server's answer is what the footer shows.
    app.message(Message::Done(Ok("re-executing 2 destinations".into())));
    let s = render(&app, 80, 24);
    assert!(s.contains("re-executing 2 destinations"), "{s}");
}

#[test]
fn marked_rows_are_what_r_re_executes() {
    let mut app = seeded();
    open_triage(&mut app);
    // Space marks and moves on: the libodbc and npm groups.
    press(&mut app, "j  ");
    let s = render(&app, 160, 48);
    assert!(s.contains("2 marked"), "{s}");
    assert!(s.contains("●"), "a marked row shows a symbol:\n{s}");
    app.outbox.clear();
    press(&mut app, "r");
    let Mode::Confirm(c) = &app.mode else {
        panic!("no question: {:?}", app.mode);
    };
    assert!(
        c.text.starts_with("Re-execute 2 destinations of 2 causes?"),
        "{}",
        c.text
    );
    press(&mut app, "y");
    assert_eq!(
        reruns(&app),
        vec![(2, vec!["pc-fin-02".to_string(), "pc-fin-03".to_string()])]
    );
    // The marks are used up.
    assert!(app.list(View::Triage).marked.is_empty());
}

#[test]
fn output_and_events_of_a_member() {
    let mut app = seeded();
    open_triage(&mut app);
    key(&mut app, KeyCode::Enter);
    press(&mut app, "j");
    app.outbox.clear();
    press(&mut app, "o");
    assert!(
        matches!(&app.outbox[..], [Cmd::Output { task: 1, name }] if name == "pc-branch-11"),
        "{:?}",
        app.outbox
    );
    app.outbox.clear();
    press(&mut app, "k");
    press(&mut app, "o");
    assert!(app.outbox.is_empty());
    assert!(flash(&app).contains("open the group"), "{:?}", app.flash);
    // l: the destination's events, in the log.
    press(&mut app, "jl");
    assert_eq!(app.view, View::Log);
    assert_eq!(app.list(View::Log).filter, "pc-branch-11");
}

#[test]
fn rerun_failed_from_tasks_and_detail_asks_for_more_than_one() {
    let mut app = seeded();
    press(&mut app, "2j");
    app.outbox.clear();
    press(&mut app, "r");
    match &app.mode {
        Mode::Confirm(c) => assert!(
            c.text
                .starts_with("Re-execute 3 destinations of task 2 'Install legacy ERP client'?"),
            "{}",
            c.text
        ),
        other => panic!("no question: {other:?}"),
    }
    press(&mut app, "y");
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
    // In the detail, marked rows: the two failures marked.
    open_detail(&mut app);
    app.outbox.clear();
    press(&mut app, " ");
    press(&mut app, " ");
    press(&mut app, "r");
    match &app.mode {
        Mode::Confirm(c) => assert!(
            c.text
                .starts_with("Re-execute 2 destinations of task 1 'Roll out Courier Hello 1.0'?"),
            "{}",
            c.text
        ),
        other => panic!("no question: {other:?}"),
    }
    press(&mut app, "y");
    assert_eq!(
        reruns(&app),
        vec![(1, vec!["pc-hr-01".to_string(), "pc-sales-03".to_string()])]
    );
}

// ---- end to end ------------------------------------------------------------------

/// A console attached to `courier serve` with two real agents: triage
/// shows one cause group, selected; a new failure adds a group above it;
/// `r` asks, naming the count and the originally selected cause, and after
/// `y` the server re-executes that group's destinations and no other.
#[test]
fn tmux_a_group_arriving_above_does_not_change_what_r_re_executes() {
    use super::tmux::{Tmux, courier_bin};
    use crate::procs::{Agent, DEADLINE, Server, create_task, dest, task_id, wait_until};

    let gap = || std::thread::sleep(std::time::Duration::from_millis(150));
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "tri-a");
    let b = Agent::enrolled(&s, &token, "tri-b");
    s.wait_dest("tri-a", "online", &[&a, &b]);
    s.wait_dest("tri-b", "online", &[&a, &b]);
    let failing = |name: &str, line: &str| {
        let script = s.input(&format!("{name}.sh"));
        std::fs::write(
            &script,
            format!("echo 'checking…'\necho '{line}' >&2\nexit 4\n"),
        )
        .unwrap();
        let cmd = format!("sh {name}.sh");
        s.json(&[
            "package",
            "add",
            script.to_str().unwrap(),
            "--install-command",
            &cmd,
            "--json",
        ])
    };
    let beta = failing("beta", "error: beta service unreachable at 10.1.2.3:8080");
    let t_beta = task_id(&create_task(&s, &beta, "tri-a,tri-b", &[]));
    s.wait_task_finished(t_beta, &[&a, &b]);

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
    gap();
    tmux.send("!");
    tmux.wait_for(
        "✖ exit 4 · error: beta service unreachable at <host>",
        DEADLINE,
        why,
    );
    tmux.wait_for("by cause 1/1", DEADLINE, why);

    // A new cause, on both agents, sorts above the selected group.
    let alpha = failing("alpha", "error: alpha config missing");
    let t_alpha = task_id(&create_task(&s, &alpha, "tri-a,tri-b", &[]));
    s.wait_task_finished(t_alpha, &[&a, &b]);
    let screen = tmux.wait_for("by cause 2/2", DEADLINE, why);
    let alpha_row = screen.find("error: alpha config missing").unwrap();
    let beta_row = screen.find("error: beta service unreachable").unwrap();
    assert!(
        alpha_row < beta_row,
        "alpha should be listed first:\n{screen}"
    );

    // r asks first: two destinations, the beta cause; then y.
    gap();
    tmux.send("r");
    let screen = tmux.wait_for("Re-execute 2 destinations", DEADLINE, why);
    let question: String = screen
        .lines()
        .skip_while(|l| !l.contains("Re-execute 2 destinations"))
        .take(4)
        .collect();
    assert!(question.contains("beta"), "{screen}");
    assert!(!question.contains("alpha"), "{screen}");
    assert!(screen.contains("[ Cancel ]"), "{screen}");
    gap();
    tmux.send("y");
    tmux.wait_for("re-executing 2 destinations", DEADLINE, why);

    // The server re-executed the beta task on both agents, not the alpha one.
    let attempts = |id: i64| {
        let t = s.json(&["task", "show", &id.to_string(), "--json"]);
        (
            dest(&t, "tri-a")["attempt"].as_i64(),
            dest(&t, "tri-b")["attempt"].as_i64(),
        )
    };
    wait_until(
        DEADLINE,
        "the beta task's second attempts",
        || (attempts(t_beta) == (Some(2), Some(2))).then_some(()),
        || format!("{:?}\n{}", attempts(t_beta), s.diagnostics()),
    );
    assert_eq!(attempts(t_alpha), (Some(1), Some(1)));

    gap();
    tmux.send("q");
    wait_until(
        std::time::Duration::from_secs(20),
        "the console to exit",
        || tmux.pane_dead().then_some(()),
        || tmux.screen(),
    );
}
