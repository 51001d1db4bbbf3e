//! Security policies with a manual clock and inventories handed to the
//! service as agents would send them: violations, the countermeasure task
//! following them, the seed's three retention rules, uninstallation from
//! the inventory.

use super::tests::{Fixture, fixture};
use crate::api::{AddPolicy, CreateTask, EditPolicy};
use crate::model::{DestinationId, Software, Task};
use crate::proto::{Inventory, ReportStatus};
use crate::task::{PolicyKind, TaskClass, WorkState};

const DAY: i64 = 86_400;

fn dpkg(name: &str, version: &str) -> Software {
    Software {
        name: name.into(),
        version: Some(version.into()),
        publisher: None,
        source: "dpkg".into(),
        product_code: None,
        uninstall: Some(format!("apt-get remove -y {name}")),
        quiet: true,
    }
}

fn send(f: &mut Fixture, dest: DestinationId, programs: Vec<Software>) {
    let digest = format!("{:?}", programs);
    let digest = blake3::hash(digest.as_bytes()).to_hex().to_string();
    f.svc
        .take_inventory(dest, &Inventory { digest, programs })
        .unwrap();
}

fn add(f: &mut Fixture, kind: PolicyKind, software: Option<&str>, package: Option<i64>) -> i64 {
    f.svc
        .add_policy(AddPolicy {
            name: None,
            kind,
            software: software.map(str::to_string),
            min_version: None,
            package,
            enforce: true,
        })
        .unwrap()
        .id
}

fn countermeasure(f: &Fixture, policy: i64) -> Option<Task> {
    let id = f.svc.policy(policy).unwrap().task?;
    Some(f.svc.task(id).unwrap())
}

fn state(t: &Task, dest: &str) -> WorkState {
    t.destinations
        .iter()
        .find(|d| d.name == dest)
        .unwrap_or_else(|| panic!("{dest} not in task {}", t.id))
        .status
}

#[test]
fn a_prohibited_program_gets_a_countermeasure_that_follows_the_inventory() {
    let mut f = fixture();
    let pc1 = f.destination("pc-1");
    let pc2 = f.destination("pc-2");
    send(
        &mut f,
        pc1,
        vec![dpkg("bash", "5"), dpkg("Bad-Toolbar", "1.0")],
    );
    send(&mut f, pc2, vec![dpkg("bash", "5")]);
    let id = add(&mut f, PolicyKind::Prohibited, Some("*toolbar*"), None);
    let p = f.svc.policy(id).unwrap();
    assert_eq!(p.name, "Prohibited *toolbar*");
    assert_eq!(p.violations.len(), 1);
    assert_eq!(p.violations[0].destination, "pc-1");
    assert_eq!(p.violations[0].reason, "has Bad-Toolbar 1.0");
    let t = countermeasure(&f, id).expect("a countermeasure task");
    assert_eq!(t.class, TaskClass::Countermeasure);
    assert_eq!(t.name, p.name);
    assert_eq!(t.policy, Some(id));
    assert_eq!(t.destinations.len(), 1);
    assert_eq!(
        t.destinations[0].command.as_deref(),
        Some("apt-get remove -y Bad-Toolbar")
    );
    // The agent gets the removal, with no content.
    let work = f.svc.assignments(pc1, f.clock.now()).unwrap();
    match &work[0].work {
        crate::proto::Work::Removal(r) => {
            assert_eq!(r.command, "apt-get remove -y Bad-Toolbar");
            assert!(r.success_codes.contains(&1605));
        }
        other => panic!("{other:?}"),
    }
    f.report(pc1, t.id, 1, ReportStatus::Succeeded, Some(0), false);
    // pc-2 starts violating: added, the completed task reopens.
    let t = f.svc.task(t.id).unwrap();
    assert!(t.completed_at.is_some());
    f.clock.advance(60);
    send(
        &mut f,
        pc2,
        vec![dpkg("bash", "5"), dpkg("Ask toolbar", "2")],
    );
    let t = countermeasure(&f, id).unwrap();
    assert_eq!(state(&t, "pc-2"), WorkState::Waiting);
    assert!(t.completed_at.is_none());
    // Fixed on pc-2 before its work started: completed, nothing run.
    f.clock.advance(60);
    send(&mut f, pc2, vec![dpkg("bash", "5")]);
    let t = countermeasure(&f, id).unwrap();
    assert_eq!(state(&t, "pc-2"), WorkState::Succeeded);
    assert!(t.completed_at.is_some());
    // The same inventory again changes nothing; a later one that shows
    // the program back starts pc-1 again.
    send(&mut f, pc1, vec![dpkg("bash", "5")]);
    f.clock.advance(60);
    send(&mut f, pc1, vec![dpkg("Bad-Toolbar", "1.1")]);
    let t = countermeasure(&f, id).unwrap();
    assert_eq!(state(&t, "pc-1"), WorkState::Waiting);
    assert_eq!(t.destinations[0].attempt, 2);
}

#[test]
fn a_mandatory_program_missing_or_old_is_installed_and_unsetting_enforcement_drops_the_task() {
    let mut f = fixture();
    let pkg = f.package();
    let pc1 = f.destination("pc-1");
    let pc2 = f.destination("pc-2");
    let pc3 = f.destination("pc-3");
    send(&mut f, pc1, vec![dpkg("acme", "1.0")]);
    send(&mut f, pc2, vec![dpkg("acme", "2.5")]);
    send(&mut f, pc3, vec![]);
    let id = f
        .svc
        .add_policy(AddPolicy {
            name: Some("Acme 2".into()),
            kind: PolicyKind::Mandatory,
            software: Some("ACME".into()),
            min_version: Some("2.0".into()),
            package: Some(pkg.id),
            enforce: true,
        })
        .unwrap()
        .id;
    let t = countermeasure(&f, id).unwrap();
    let names: Vec<&str> = t.destinations.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["pc-1", "pc-3"]);
    assert_eq!(t.package, Some(pkg.id));
    let why: Vec<String> = f
        .svc
        .policy(id)
        .unwrap()
        .violations
        .into_iter()
        .map(|v| v.reason)
        .collect();
    assert_eq!(why, ["has ACME 1.0, below 2.0", "lacks ACME"]);
    // A second policy of that name is refused, whatever its case.
    let e = f
        .svc
        .add_policy(AddPolicy {
            name: Some("acme 2".into()),
            kind: PolicyKind::Prohibited,
            software: Some("x".into()),
            min_version: None,
            package: None,
            enforce: false,
        })
        .unwrap_err();
    assert!(format!("{e:#}").contains("exists already"), "{e:#}");
    // The package cannot go while the policy installs it.
    let e = f.svc.remove_package(pkg.id).unwrap_err();
    assert!(format!("{e:#}").contains("policy"), "{e:#}");

    f.svc
        .edit_policy(
            id,
            EditPolicy {
                enforce: Some(false),
                ..EditPolicy::default()
            },
        )
        .unwrap();
    assert!(f.svc.task(t.id).is_err(), "the countermeasure task is gone");
    let p = f.svc.policy(id).unwrap();
    assert!(!p.enforce);
    assert_eq!(p.task, None);
    assert_eq!(p.violations.len(), 2, "violations are still shown");
    let events = f.svc.events_tail(20).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "task.expired" && e.message.contains("no longer enforced")),
        "{events:#?}"
    );
    // Enforced again: a new task for the same violations.
    f.svc
        .edit_policy(
            id,
            EditPolicy {
                enforce: Some(true),
                ..EditPolicy::default()
            },
        )
        .unwrap();
    let again = countermeasure(&f, id).unwrap();
    assert_ne!(again.id, t.id);
    assert_eq!(again.destinations.len(), 2);
    // Removing the policy removes its task.
    f.svc.remove_policy(id).unwrap();
    assert!(f.svc.task(again.id).is_err());
}

#[test]
fn countermeasure_tasks_go_7_days_after_completion_and_at_zero_destinations() {
    let mut f = fixture();
    let pc1 = f.destination("pc-1");
    send(&mut f, pc1, vec![dpkg("evil", "1")]);
    let id = add(&mut f, PolicyKind::Prohibited, Some("evil"), None);
    let t = countermeasure(&f, id).unwrap();
    f.report(pc1, t.id, 1, ReportStatus::Succeeded, Some(0), false);
    f.clock.advance(6 * DAY);
    assert!(f.svc.apply_retention().unwrap().is_empty());
    f.clock.advance(DAY + 1);
    assert_eq!(f.svc.apply_retention().unwrap(), vec![t.id]);
    // Violating again later: a new countermeasure task.
    send(&mut f, pc1, vec![dpkg("evil", "2")]);
    let t2 = countermeasure(&f, id).unwrap();
    assert_ne!(t2.id, t.id);
    // Its only destination removed: the task has none left and goes.
    f.svc.remove_destination("pc-1", "test").unwrap();
    assert_eq!(f.svc.apply_retention().unwrap(), vec![t2.id]);
}

#[test]
fn an_update_package_is_kept_out_of_the_package_list() {
    let mut f = fixture();
    let pkg = f.package();
    let other = f.package();
    add(&mut f, PolicyKind::Update, None, Some(pkg.id));
    let ids = |list: Vec<crate::model::Package>| list.iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(ids(f.svc.packages(false).unwrap()), [other.id]);
    assert_eq!(ids(f.svc.packages(true).unwrap()), [pkg.id, other.id]);
}

#[test]
fn bad_policies_are_refused_with_what_is_wrong() {
    let mut f = fixture();
    let refused = |f: &mut Fixture, kind, software: Option<&str>, package, min: Option<&str>| {
        let e = f
            .svc
            .add_policy(AddPolicy {
                name: None,
                kind,
                software: software.map(str::to_string),
                min_version: min.map(str::to_string),
                package,
                enforce: true,
            })
            .unwrap_err();
        format!("{e:#}")
    };
    let e = refused(&mut f, PolicyKind::Mandatory, Some("x"), None, None);
    assert!(e.contains("--package"), "{e}");
    let e = refused(&mut f, PolicyKind::Mandatory, Some(" "), Some(1), None);
    assert!(e.contains("names the program"), "{e}");
    let e = refused(&mut f, PolicyKind::Update, None, Some(99), None);
    assert!(e.contains("package 99"), "{e}");
    let e = refused(&mut f, PolicyKind::Prohibited, Some("x"), None, Some("2"));
    assert!(e.contains("--min-version"), "{e}");
    assert!(f.svc.policies().unwrap().is_empty());
}

#[test]
fn uninstalling_from_the_inventory_uses_each_destinations_command_or_says_why_not() {
    let mut f = fixture();
    let pc1 = f.destination("pc-1");
    let pc2 = f.destination("pc-2");
    let pc3 = f.destination("pc-3");
    let _pc4 = f.destination("pc-4");
    let msi = Software {
        name: "Hello".into(),
        version: Some("1.0".into()),
        publisher: None,
        source: "registry".into(),
        product_code: Some("{11111111-2222-3333-4444-555555555555}".into()),
        uninstall: Some("MsiExec.exe /I{11111111-2222-3333-4444-555555555555}".into()),
        quiet: true,
    };
    let loud = Software {
        product_code: None,
        uninstall: Some("C:\\hello\\uninstall.exe".into()),
        quiet: false,
        ..msi.clone()
    };
    send(&mut f, pc1, vec![msi]);
    send(&mut f, pc2, vec![loud]);
    send(&mut f, pc3, vec![dpkg("other", "1")]);
    let create = |f: &mut Fixture, to: &[&str], all: bool| {
        f.svc.create_task(CreateTask {
            force: false,
            software: Some("hello".into()),
            uninstall: true,
            all,
            to: to.iter().map(|s| s.to_string()).collect(),
            ..CreateTask::default()
        })
    };
    let t = create(&mut f, &[], true).unwrap();
    assert_eq!(t.name, "Uninstall hello");
    assert_eq!(t.software.as_deref(), Some("hello"));
    let names: Vec<&str> = t.destinations.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["pc-1", "pc-2"],
        "with --all, only those that list it"
    );
    assert_eq!(
        t.destinations[0].command.as_deref(),
        Some("msiexec /x {11111111-2222-3333-4444-555555555555} /qn /norestart")
    );
    assert_eq!(state(&t, "pc-2"), WorkState::Failed);
    let why = t.destinations[1].message.as_deref().unwrap();
    assert!(why.contains("no quiet uninstall command"), "{why}");
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    // Named destinations that do not list it, or never sent an inventory.
    let e = create(&mut f, &["pc-3", "pc-4"], false).unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("pc-4: no inventory"), "{e}");
    let t = create(&mut f, &["pc-1", "pc-3"], false).unwrap();
    assert_eq!(state(&t, "pc-3"), WorkState::Succeeded);
    // Nothing anywhere: refused, nothing stored.
    let before = f.svc.tasks().unwrap().len();
    let e = f
        .svc
        .create_task(CreateTask {
            force: false,
            software: Some("nowhere".into()),
            uninstall: true,
            all: true,
            ..CreateTask::default()
        })
        .unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        "no destination lists nowhere in its inventory: nothing to uninstall"
    );
    assert_eq!(f.svc.tasks().unwrap().len(), before);
    // A task without a package cannot be given one or other destinations.
    let e = f
        .svc
        .edit_task_destinations(t.id, &["pc-2".into()])
        .unwrap_err();
    assert!(format!("{e:#}").contains("uninstalls from the inventory"));
}

#[test]
fn every_policy_is_evaluated_again_daily() {
    let mut f = fixture();
    let pc1 = f.destination("pc-1");
    send(&mut f, pc1, vec![dpkg("bash", "5")]);
    let id = add(&mut f, PolicyKind::Prohibited, Some("evil"), None);
    f.svc.enforce_policies_if_due().unwrap();
    // A change no inventory announced (written past the service).
    let sneak = |f: &mut Fixture| {
        let now = f.clock.now();
        f.svc
            .store
            .write(|tx| crate::store::software::replace(tx, pc1, "d2", &[dpkg("evil", "1")], now))
            .unwrap();
    };
    sneak(&mut f);
    f.clock.advance(DAY - 60);
    f.svc.enforce_policies_if_due().unwrap();
    assert_eq!(countermeasure(&f, id), None, "not due yet");
    f.clock.advance(60);
    f.svc.enforce_policies_if_due().unwrap();
    let t = countermeasure(&f, id).expect("caught by the daily evaluation");
    assert_eq!(state(&t, "pc-1"), WorkState::Waiting);
}

#[test]
fn a_pattern_matches_in_sql_as_the_rule_does() {
    let mut f = fixture();
    let pc1 = f.destination("pc-1");
    let pc2 = f.destination("pc-2");
    let pc3 = f.destination("pc-3");
    send(&mut f, pc1, vec![dpkg("axb", "1"), dpkg("100-tools", "1")]);
    send(&mut f, pc2, vec![dpkg("A_B", "1")]);
    send(&mut f, pc3, vec![dpkg("Zürich-Ärger", "1")]);
    let under = add(&mut f, PolicyKind::Prohibited, Some("a_b"), None);
    let who = |f: &Fixture, id| -> Vec<String> {
        f.svc
            .policy(id)
            .unwrap()
            .violations
            .into_iter()
            .map(|v| v.destination)
            .collect()
    };
    assert_eq!(who(&f, under), ["pc-2"]);
    let percent = add(&mut f, PolicyKind::Prohibited, Some("100%*"), None);
    assert!(who(&f, percent).is_empty());
    let umlaut = add(&mut f, PolicyKind::Prohibited, Some("*ärger"), None);
    assert_eq!(who(&f, umlaut), ["pc-3"]);
}
