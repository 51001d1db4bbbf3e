//! Security policies, the fleet's software and a destination's inventory
//! in the console: what each view asks the backend for, what it shows,
//! and what its keys send (after which question).

use super::*;

use super::insta;

use courier::api::{CreateTask, EditPolicy};
use courier::console::app::Mode;
use courier::console::backend::Extra;
use courier::model::{
    Destination, Policy, PolicyViolation, Software, SoftwareTitle, SoftwareVersion, Task,
};
use courier::task::{PolicyKind, TaskClass};

fn policy() -> Policy {
    Policy {
        id: 3,
        name: "No torrent clients".into(),
        kind: PolicyKind::Prohibited,
        software: Some("*torrent*".into()),
        min_version: None,
        package: None,
        enforce: true,
        created_at: "2025-06-01T08:00:00Z".into(),
        updated_at: "2025-06-01T08:00:00Z".into(),
        violations: vec![
            PolicyViolation {
                destination: "pc-accounting-01".into(),
                reason: "has qBittorrent 4.6.2".into(),
            },
            PolicyViolation {
                destination: "pc-accounting-02".into(),
                reason: "has uTorrent 3.6".into(),
            },
        ],
        task: Some(1),
    }
}

/// The extras the refreshes in the outbox ask for.
fn extras(app: &App) -> Vec<Extra> {
    app.outbox
        .iter()
        .filter_map(|c| match c {
            Cmd::Refresh { extra, .. } => Some(extra.clone()),
            _ => None,
        })
        .collect()
}

fn confirm_text(app: &App) -> String {
    match &app.mode {
        Mode::Confirm(c) => c.text.clone(),
        other => panic!("no confirmation: {other:?}"),
    }
}

/// The Policies view asks for the policies, lists them with their
/// violations, and turning enforcement off asks first, saying the
/// countermeasure task goes and its unfinished work is cancelled; only
/// Yes sends the edit.
#[test]
fn policies_are_listed_and_enforcement_goes_off_only_after_a_question() {
    let mut app = seeded();
    press(&mut app, "7");
    assert_eq!(app.view, View::Policies);
    assert!(extras(&app).iter().any(|e| e.policies), "{:?}", app.outbox);
    app.outbox.clear();
    app.message(Message::Snapshot(Box::new(Snapshot {
        policies: Some(vec![policy()]),
        ..snapshot()
    })));
    let s = render(&app, 160, 48);
    for want in [
        "No torrent clients",
        "prohibited",
        "*torrent*",
        "✔ yes",
        "✖ 2",
        "✖ pc-accounting-01: has qBittorrent 4.6.2",
        "✖ pc-accounting-02: has uTorrent 3.6",
    ] {
        assert!(s.contains(want), "{want:?} not in\n{s}");
    }

    // Cancel, the default, sends nothing.
    press(&mut app, "f");
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.mode, Mode::Normal));
    assert!(acts(&app).is_empty());

    press(&mut app, "f");
    let q = confirm_text(&app);
    assert!(
        q.contains("Stop enforcing policy 3 'No torrent clients'?"),
        "{q}"
    );
    // Task 1 of the seed has work not yet done on 4 destinations.
    assert!(
        q.contains("countermeasure task 1 is deleted, cancelling its unfinished work on"),
        "{q}"
    );
    assert!(acts(&app).is_empty(), "nothing is sent before Yes");
    press(&mut app, "y");
    assert_eq!(
        acts(&app),
        vec![&Request::PolicyEdit {
            id: 3,
            edit: EditPolicy {
                enforce: Some(false),
                ..EditPolicy::default()
            },
        }]
    );

    // Deleting asks too.
    app.outbox.clear();
    press(&mut app, "d");
    assert!(confirm_text(&app).starts_with("Delete policy 3"));
    press(&mut app, "y");
    assert_eq!(acts(&app), vec![&Request::PolicyRm { id: 3 }]);
}

/// Enforcing a policy that is not enforced says what its countermeasure
/// will do, and on how many destinations.
#[test]
fn enforcing_a_policy_says_what_the_countermeasure_does() {
    let mut app = seeded();
    press(&mut app, "7");
    let mut p = policy();
    p.enforce = false;
    p.task = None;
    app.message(Message::Snapshot(Box::new(Snapshot {
        policies: Some(vec![p]),
        ..snapshot()
    })));
    press(&mut app, "f");
    let q = confirm_text(&app);
    assert!(
        q.contains("uninstalls programs matching '*torrent*' on its 2 destinations"),
        "{q}"
    );
    press(&mut app, "y");
    assert!(matches!(
        acts(&app)[..],
        [Request::PolicyEdit {
            id: 3,
            edit: EditPolicy {
                enforce: Some(true),
                ..
            }
        }]
    ));
}

/// The policy form sends what it was given; a refusal shows in the form,
/// which keeps everything typed.
#[test]
fn the_policy_form_keeps_what_was_typed_when_refused() {
    let mut app = seeded();
    press(&mut app, "7a");
    assert!(matches!(app.mode, Mode::PolicyForm(_)));
    // Mandatory: name, program, package, minimum version.
    key(&mut app, KeyCode::Tab);
    press(&mut app, "Browser");
    key(&mut app, KeyCode::Tab);
    press(&mut app, "Courier Hello");
    key(&mut app, KeyCode::Tab);
    press(&mut app, "9");
    key(&mut app, KeyCode::Enter);
    let sent: Vec<_> = acts(&app).into_iter().cloned().collect();
    assert!(
        matches!(&sent[..], [Request::PolicyAdd(a)]
            if a.kind == PolicyKind::Mandatory
                && a.name.as_deref() == Some("Browser")
                && a.software.as_deref() == Some("Courier Hello")
                && a.package == Some(9)
                && !a.enforce),
        "{sent:?}"
    );
    app.message(Message::Answer(Err(courier::api::ApiError::refused(
        "package 9: no such package",
    ))));
    let Mode::PolicyForm(f) = &app.mode else {
        panic!("the form closed: {:?}", app.mode)
    };
    assert_eq!(f.name.value(), "Browser");
    assert_eq!(f.program.value(), "Courier Hello");
    let s = render(&app, 80, 24);
    assert!(s.contains("✖ package 9: no such package"), "{s}");
}

fn titles() -> Vec<SoftwareTitle> {
    vec![
        SoftwareTitle {
            name: "7-Zip 23.01 (x64)".into(),
            publisher: Some("Igor Pavlov".into()),
            versions: vec![
                SoftwareVersion {
                    version: Some("23.01".into()),
                    destinations: vec![
                        "pc-accounting-01".into(),
                        "pc-accounting-02".into(),
                        "kiosk-lobby".into(),
                    ],
                },
                SoftwareVersion {
                    version: Some("19.00".into()),
                    destinations: vec!["build-linux-07".into()],
                },
            ],
        },
        SoftwareTitle {
            name: "curl".into(),
            publisher: None,
            versions: vec![SoftwareVersion {
                version: Some("8.5.0".into()),
                destinations: vec!["build-linux-07".into()],
            }],
        },
    ]
}

/// The Software view lists a row per title and version; `u` uninstalls
/// the selected version from every destination that has it, after a
/// question naming program, version and count; warnings of the reply
/// show.
#[test]
fn software_is_uninstalled_everywhere_after_a_question() {
    let mut app = seeded();
    press(&mut app, "6");
    assert_eq!(app.view, View::Software);
    assert!(extras(&app).iter().any(|e| e.software), "{:?}", app.outbox);
    app.outbox.clear();
    app.message(Message::Snapshot(Box::new(Snapshot {
        software: Some(titles()),
        ..snapshot()
    })));
    let s = render(&app, 160, 48);
    assert!(s.contains("7-Zip 23.01 (x64)"), "{s}");
    assert!(
        s.contains("found on    3 destinations: pc-accounting-01"),
        "{s}"
    );
    assert!(s.contains("Software 1/3"), "{s}");

    // The filter narrows to the title.
    press(&mut app, "/zip");
    key(&mut app, KeyCode::Enter);
    let s = render(&app, 160, 48);
    assert!(s.contains("Software 1/2 /zip"), "{s}");

    press(&mut app, "u");
    let q = confirm_text(&app);
    assert!(
        q.starts_with("Uninstall '7-Zip 23.01 (x64)' 23.01 from 3 destinations?"),
        "{q}"
    );
    assert!(acts(&app).is_empty());
    press(&mut app, "y");
    assert_eq!(
        acts(&app),
        vec![&Request::TaskCreate(CreateTask {
            package: None,
            software: Some("7-Zip 23.01 (x64)".into()),
            version: Some("23.01".into()),
            uninstall: true,
            all: true,
            ..CreateTask::default()
        })]
    );
    app.message(Message::Warned(
        "created task 9: uninstalling '7-Zip 23.01 (x64)' 23.01 ▲ kiosk-lobby: no quiet uninstall command"
            .into(),
    ));
    let (level, line) = app.flash.clone().unwrap();
    assert_eq!(level, courier::model::Level::Warn);
    assert!(line.contains("kiosk-lobby: no quiet uninstall command"));
}

fn inventory() -> Destination {
    let mut d = snapshot().destinations[0].clone();
    let program = |name: &str, version: &str, source: &str, publisher: Option<&str>| Software {
        name: name.into(),
        version: Some(version.into()),
        publisher: publisher.map(str::to_string),
        source: source.into(),
        product_code: None,
        uninstall: None,
        quiet: false,
    };
    d.software = Some(vec![
        program(
            "7-Zip 23.01 (x64)",
            "23.01",
            "registry",
            Some("Igor Pavlov"),
        ),
        // What an agent reports reaches the screen escaped.
        program("evil\u{1b}]0;pwned\u{7}", "1.0", "registry", None),
        program("Courier Hello", "1.0.0", "courier", Some("Courier")),
    ]);
    d
}

/// The Destinations view has the backend fetch the selected destination
/// in detail, and its detail pane lists the inventory.
#[test]
fn the_destination_detail_lists_its_inventory() {
    let mut app = seeded();
    press(&mut app, "3");
    assert!(
        extras(&app)
            .iter()
            .any(|e| e.inventory.as_deref() == Some("pc-accounting-01")),
        "{:?}",
        app.outbox
    );
    // Asked once, it is not asked again at every tick.
    let again = app.refresh();
    assert!(
        matches!(&again, Cmd::Refresh { extra, .. } if extra.inventory.is_none()),
        "{again:?}"
    );
    let s = render(&app, 160, 48);
    assert!(s.contains("inventory   …"), "{s}");
    app.message(Message::Snapshot(Box::new(Snapshot {
        inventory: Some(inventory()),
        ..snapshot()
    })));
    // Wide enough for a program on one line of the detail pane.
    let s = render(&app, 220, 48);
    for want in [
        "inventory   3 programs",
        "7-Zip 23.01 (x64) · 23.01 · registry · Igor Pavlov",
        "evil\\u{1b}]0;pwned\\u{7} · 1.0 · registry",
        "Courier Hello · 1.0.0 · courier · Courier",
    ] {
        assert!(s.contains(want), "{want:?} not in\n{s}");
    }
    // Another destination selected: its own is asked for.
    press(&mut app, "j");
    let r = app.refresh();
    assert!(
        matches!(&r, Cmd::Refresh { extra, .. } if extra.inventory.as_deref() == Some("pc-accounting-02")),
        "{r:?}"
    );
    assert!(render(&app, 160, 48).contains("inventory   …"));
}

/// A countermeasure task is marked in the tasks list, so an admin tells
/// it from their own.
#[test]
fn countermeasure_tasks_are_marked() {
    let mut app = seeded();
    let mut s = snapshot();
    let mut t: Task = s.tasks[0].clone();
    t.id = 9;
    t.name = "Countermeasure: No torrent clients".into();
    t.class = TaskClass::Countermeasure;
    t.policy = Some(3);
    s.tasks.push(t);
    app.message(Message::Snapshot(Box::new(s)));
    press(&mut app, "2G");
    let screen = render(&app, 160, 48);
    assert!(
        screen.contains("⚑policy Countermeasure: No torrent clients"),
        "{screen}"
    );
    assert!(screen.contains("policy      3: this task is its countermeasure"));
    // The filter finds them.
    press(&mut app, "/policy");
    key(&mut app, KeyCode::Enter);
    assert!(render(&app, 160, 48).contains("Tasks 1/1 /policy"));
}

#[test]
fn snapshot_policies_software_and_the_policy_form() {
    let mut app = seeded();
    press(&mut app, "7");
    app.message(Message::Snapshot(Box::new(Snapshot {
        policies: Some(vec![policy()]),
        ..snapshot()
    })));
    screens!("policies", app);
    press(&mut app, "a");
    insta::assert_snapshot!("policy_form_80x24", render(&app, 80, 24));
    let mut app = seeded();
    press(&mut app, "6");
    app.message(Message::Snapshot(Box::new(Snapshot {
        software: Some(titles()),
        ..snapshot()
    })));
    screens!("software", app);
}
