//! Rules of the service with a manual clock and no processes: retention,
//! idempotent reports, automatic retries, destination removal, package
//! deletion while in use.

use super::*;
use crate::api::CreateTask;
use crate::clock::Clock;
use crate::proto::{AgentInfo, Report, ReportStatus};
use crate::store::destinations;
use crate::task::{DestStatus, WorkState};
use std::path::PathBuf;

const DAY: i64 = 86_400;
const T0: i64 = 1_800_000_000;

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub(super) svc: Service,
    pub(super) clock: Clock,
    file: PathBuf,
}

pub(super) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let data = DataDir::open(dir.path().join("data")).unwrap();
    let svc = Service::open(data, clock.clone()).unwrap();
    let file = dir.path().join("tool.zip");
    let f = std::fs::File::create(&file).unwrap();
    let mut w = zip::ZipWriter::new(f);
    w.start_file("install.sh", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut w, b"exit 0").unwrap();
    w.finish().unwrap();
    Fixture {
        _dir: dir,
        svc,
        clock,
        file,
    }
}

impl Fixture {
    pub(super) fn package(&mut self) -> Package {
        self.svc
            .add_package(AddPackage {
                path: self.file.clone(),
                install_command: Some("sh install.sh".into()),
                uninstall_command: Some("true".into()),
                ..AddPackage::default()
            })
            .unwrap()
    }

    pub(super) fn destination(&mut self, name: &str) -> DestinationId {
        let now = self.clock.now();
        self.svc
            .store
            .write(|tx| {
                destinations::insert(
                    tx,
                    name,
                    crate::task::DestStatus::Online,
                    destinations::Host {
                        os: "linux",
                        hostname: "",
                        agent_version: "",
                        command_timeout: None,
                        disks: None,
                    },
                    &format!("fp-{name}"),
                    1,
                    now,
                )
            })
            .unwrap()
    }

    fn task(&mut self, package: i64, to: &[&str]) -> crate::model::Task {
        self.svc
            .create_task(CreateTask {
                force: false,
                package: Some(package),
                to: to.iter().map(|s| s.to_string()).collect(),
                ..CreateTask::default()
            })
            .unwrap()
    }

    pub(super) fn report(
        &mut self,
        dest: DestinationId,
        task: i64,
        attempt: i64,
        status: ReportStatus,
        code: Option<i64>,
        retry: bool,
    ) {
        self.svc
            .report(
                dest,
                &Report {
                    task_id: task,
                    attempt,
                    status,
                    exit_code: code,
                    message: code.map(|c| format!("exit {c}")),
                    output: None,
                    transferred: 10,
                    retry,
                    reboot_required: false,
                    detection: None,
                    log: None,
                },
            )
            .unwrap();
    }
}

#[test]
fn package_in_use_by_an_unfinished_task_cannot_be_deleted() {
    let mut f = fixture();
    let p = f.package();
    let pc = f.destination("pc-1");
    let t = f.task(p.id, &["pc-1"]);
    let e = f.svc.remove_package(p.id).unwrap_err().to_string();
    assert!(e.contains(&format!("task {} ({})", t.id, t.name)), "{e}");
    f.report(pc, t.id, 1, ReportStatus::Succeeded, Some(0), false);
    f.svc.remove_package(p.id).unwrap();
    // The finished task keeps the name of what it distributed.
    let t = f.svc.task(t.id).unwrap();
    assert_eq!(t.package, None);
    assert_eq!(t.package_name, p.name);
}

#[test]
fn reports_are_applied_once_and_only_for_the_current_attempt() {
    let mut f = fixture();
    let p = f.package();
    let pc = f.destination("pc-1");
    let t = f.task(p.id, &["pc-1"]);
    f.report(pc, t.id, 1, ReportStatus::Failed, Some(1603), false);
    let first = f.svc.task(t.id).unwrap();
    assert_eq!(first.status.as_str(), "failed");
    // Re-sent after a reconnect, or contradicting itself: nothing changes.
    f.clock.advance(60);
    f.report(pc, t.id, 1, ReportStatus::Failed, Some(1603), false);
    f.report(pc, t.id, 1, ReportStatus::Succeeded, Some(0), false);
    assert_eq!(f.svc.task(t.id).unwrap(), first);
    // A re-run is a new attempt; a late report of the old one is ignored.
    f.svc.rerun_task(t.id, false).unwrap();
    f.report(pc, t.id, 1, ReportStatus::Succeeded, Some(0), false);
    let d = &f.svc.task(t.id).unwrap().destinations[0];
    assert_eq!((d.status.as_str(), d.attempt), ("waiting", 2));
    f.report(pc, t.id, 2, ReportStatus::Succeeded, Some(0), false);
    assert_eq!(f.svc.task(t.id).unwrap().status.as_str(), "completed");
}

#[test]
fn transient_failures_are_retried_with_backoff_then_given_up() {
    let mut f = fixture();
    let p = f.package();
    let pc = f.destination("pc-1");
    let t = f.task(p.id, &["pc-1"]);
    for n in 0..agents::MAX_RETRIES {
        let attempt = n + 1;
        f.report(pc, t.id, attempt, ReportStatus::Failed, Some(1618), true);
        let d = f.svc.task(t.id).unwrap().destinations[0].clone();
        assert_eq!(
            (d.status.as_str(), d.attempt, d.retries),
            ("waiting", attempt + 1, n + 1)
        );
        // Not handed out before its backoff has passed.
        assert!(
            f.svc
                .poll(pc, &AgentInfo::default())
                .unwrap()
                .assignments
                .is_empty()
        );
        f.clock.advance(agents::retry_backoff(n));
        assert_eq!(
            f.svc
                .poll(pc, &AgentInfo::default())
                .unwrap()
                .assignments
                .len(),
            1
        );
    }
    f.report(
        pc,
        t.id,
        agents::MAX_RETRIES + 1,
        ReportStatus::Failed,
        Some(1618),
        true,
    );
    let t = f.svc.task(t.id).unwrap();
    assert_eq!(t.status.as_str(), "failed");
    assert_eq!(t.destinations[0].exit_code, Some(1618));
}

#[test]
fn installation_failures_are_not_retried() {
    let mut f = fixture();
    let p = f.package();
    let pc = f.destination("pc-1");
    let t = f.task(p.id, &["pc-1"]);
    f.report(pc, t.id, 1, ReportStatus::Failed, Some(1603), false);
    let d = &f.svc.task(t.id).unwrap().destinations[0];
    assert_eq!((d.status.as_str(), d.attempt, d.retries), ("failed", 1, 0));
}

#[test]
fn removed_destination_completes_single_tasks_and_leaves_others() {
    let mut f = fixture();
    let p = f.package();
    f.destination("pc-1");
    let pc2 = f.destination("pc-2");
    let single = f.task(p.id, &["pc-1"]);
    let multi = f.task(p.id, &["pc-1", "pc-2"]);
    f.svc.remove_destination("pc-1", "deleted").unwrap();
    let s = f.svc.task(single.id).unwrap();
    assert_eq!(s.status.as_str(), "completed");
    assert!(s.destinations.is_empty());
    let m = f.svc.task(multi.id).unwrap();
    assert_eq!(m.status.as_str(), "running");
    assert_eq!(m.destinations.len(), 1);
    // The remaining destination finishing completes the task.
    f.report(pc2, multi.id, 1, ReportStatus::Succeeded, Some(0), false);
    assert_eq!(f.svc.task(multi.id).unwrap().status.as_str(), "completed");
    // Retention then removes the task left with no destinations.
    assert_eq!(f.svc.apply_retention().unwrap(), vec![single.id]);
}

#[test]
fn retention_keeps_admin_tasks_30_days_and_countermeasures_7() {
    let mut f = fixture();
    let p = f.package();
    let pc = f.destination("pc-1");
    let admin = f.task(p.id, &["pc-1"]);
    let counter = f.task(p.id, &["pc-1"]);
    f.svc
        .store
        .conn()
        .execute(
            "UPDATE tasks SET class = 'countermeasure' WHERE id = ?1",
            [counter.id],
        )
        .unwrap();
    f.report(pc, admin.id, 1, ReportStatus::Succeeded, Some(0), false);
    f.report(pc, counter.id, 1, ReportStatus::Succeeded, Some(0), false);
    let ids = |f: &Fixture| -> Vec<i64> { f.svc.tasks().unwrap().iter().map(|t| t.id).collect() };
    f.clock.advance(6 * DAY);
    assert!(f.svc.apply_retention().unwrap().is_empty());
    f.clock.advance(2 * DAY);
    assert_eq!(f.svc.apply_retention().unwrap(), vec![counter.id]);
    assert_eq!(ids(&f), vec![admin.id]);
    f.clock.advance(21 * DAY); // 29 days after completion
    assert!(f.svc.apply_retention().unwrap().is_empty());
    f.clock.advance(2 * DAY); // 31 days
    assert_eq!(f.svc.apply_retention().unwrap(), vec![admin.id]);
    assert!(ids(&f).is_empty());
    let expired = f
        .svc
        .events_tail(10)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "task.expired")
        .count();
    assert_eq!(expired, 2);
}

#[test]
fn unfinished_tasks_are_never_expired() {
    let mut f = fixture();
    let p = f.package();
    f.destination("pc-1");
    let t = f.task(p.id, &["pc-1"]);
    f.clock.advance(400 * DAY);
    assert!(f.svc.apply_retention().unwrap().is_empty());
    assert_eq!(f.svc.task(t.id).unwrap().status.as_str(), "running");
}

/// Makes every later event insert fail, as a full disk or a fault would.
fn break_event_log(f: &Fixture) {
    f.svc
        .store
        .conn()
        .execute_batch(
            "CREATE TRIGGER no_events BEFORE INSERT ON events
             BEGIN SELECT RAISE(ABORT, 'event log unwritable'); END;",
        )
        .unwrap();
}

fn set_status(f: &mut Fixture, id: DestinationId, status: DestStatus) {
    f.svc
        .store
        .write(|tx| destinations::set_status(tx, id, status))
        .unwrap();
}

#[test]
fn approve_and_reject_land_with_their_event_or_not_at_all() {
    let mut f = fixture();
    let pc = f.destination("pc-1");
    set_status(&mut f, pc, DestStatus::Pending);
    break_event_log(&f);
    assert!(f.svc.approve_destination("pc-1").is_err());
    assert_eq!(
        f.svc.destination("pc-1").unwrap().status,
        DestStatus::Pending
    );
    assert!(f.svc.reject_destination("pc-1").is_err());
    assert_eq!(
        f.svc.destination("pc-1").unwrap().status,
        DestStatus::Pending
    );
}

#[test]
fn going_offline_and_coming_back_land_with_their_events() {
    let mut f = fixture();
    let pc = f.destination("pc-1");
    break_event_log(&f);
    f.clock.advance(3600);
    // The offline marking fails as a whole: the destination stays online
    // rather than going offline without a record of it.
    assert!(f.svc.mark_offline(60).is_err());
    assert_eq!(
        f.svc.destination("pc-1").unwrap().status,
        DestStatus::Online
    );
    set_status(&mut f, pc, DestStatus::Offline);
    let info = AgentInfo {
        os: "linux".into(),
        ..AgentInfo::default()
    };
    assert!(f.svc.poll(pc, &info).is_err());
    assert_eq!(
        f.svc.destination("pc-1").unwrap().status,
        DestStatus::Offline
    );
}

#[test]
fn a_windows_command_inside_a_zip_is_refused_for_linux_destinations_unless_forced() {
    let mut f = fixture();
    f.destination("pc-1");
    let p = f
        .svc
        .add_package(AddPackage {
            path: f.file.clone(),
            install_command: Some("setup.exe /S".into()),
            uninstall_command: Some("msiexec /x {11111111-2222-3333-4444-555555555555} /qn".into()),
            ..AddPackage::default()
        })
        .unwrap();
    for uninstall in [false, true] {
        let req = CreateTask {
            package: Some(p.id),
            to: vec!["pc-1".into()],
            uninstall,
            ..CreateTask::default()
        };
        let refused = f.svc.create_task(req.clone()).unwrap_err().to_string();
        assert!(
            refused.contains("nothing would run") && refused.contains("1 do not fit the package"),
            "{refused}"
        );
        let forced = f
            .svc
            .create_task(CreateTask { force: true, ..req })
            .unwrap();
        assert!(
            forced
                .warnings
                .iter()
                .any(|w| w.contains("pc-1: runs linux: a Windows installer will fail there")),
            "{:?}",
            forced.warnings
        );
    }
}

#[test]
fn a_misspelt_state_in_the_database_is_an_error_not_a_cancellation() {
    let mut f = fixture();
    let p = f.package();
    f.destination("pc-1");
    let t = f.task(p.id, &["pc-1"]);
    // The schema refuses unknown names; a damaged or foreign database may
    // still hold one.
    let c = f.svc.store.conn();
    c.execute_batch("PRAGMA ignore_check_constraints = ON")
        .unwrap();
    c.execute("UPDATE task_destinations SET status = 'canceled'", [])
        .unwrap();
    let e = format!("{:#}", f.svc.task(t.id).unwrap_err());
    assert!(e.contains("unknown destination state 'canceled'"), "{e}");
    c.execute_batch("PRAGMA ignore_check_constraints = OFF")
        .unwrap();
    c.execute("UPDATE task_destinations SET status = 'cancelled'", [])
        .unwrap();
    assert_eq!(f.svc.task(t.id).unwrap().counts.cancelled, 1);
    assert_eq!(
        f.svc.task(t.id).unwrap().destinations[0].status,
        WorkState::Cancelled
    );
}

#[test]
fn errors_carry_their_kind_to_the_api() {
    use crate::api::{ErrorKind, Handler, Request};
    let mut f = fixture();
    let p = f.package();
    f.destination("pc-1");
    f.task(p.id, &["pc-1"]);
    let kind = |svc: &mut Service, r| svc.handle(r).unwrap_err().kind;
    assert_eq!(
        kind(&mut f.svc, Request::TaskShow { id: 99 }),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            &mut f.svc,
            Request::DestShow {
                name: "nope".into()
            }
        ),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(&mut f.svc, Request::PackageRm { id: p.id }),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(
            &mut f.svc,
            Request::TaskCreate(CreateTask {
                force: false,
                package: Some(p.id),
                ..CreateTask::default()
            })
        ),
        ErrorKind::Refused
    );
}

#[test]
fn a_start_in_the_past_is_refused_whoever_asks() {
    let mut f = fixture();
    let p = f.package();
    f.destination("pc-1");
    let past = f
        .svc
        .create_task(CreateTask {
            force: false,
            package: Some(p.id),
            to: vec!["pc-1".into()],
            at: Some(T0 - 3600),
            ..CreateTask::default()
        })
        .unwrap_err()
        .to_string();
    assert!(past.contains("is in the past"), "{past}");
    // The minute being typed still counts as now.
    f.svc
        .create_task(CreateTask {
            force: false,
            package: Some(p.id),
            to: vec!["pc-1".into()],
            at: Some(T0 - 60),
            ..CreateTask::default()
        })
        .unwrap();
}

#[test]
fn a_copy_of_a_task_whose_start_has_passed_starts_at_once() {
    let mut f = fixture();
    let p = f.package();
    f.destination("pc-1");
    let t = f
        .svc
        .create_task(CreateTask {
            force: false,
            package: Some(p.id),
            to: vec!["pc-1".into()],
            at: Some(T0 + 3600),
            ..CreateTask::default()
        })
        .unwrap();
    f.clock.advance(7200);
    let copy = f.svc.copy_task(t.id, None, None).unwrap();
    assert_eq!(copy.start_at, None);
}

/// Enrols `name` with a fresh auto-approving token; returns the
/// certificate's fingerprint.
fn enrol(f: &mut Fixture, name: &str) -> String {
    let token = f.svc.create_token(None, true).unwrap().token.unwrap();
    let (_key, csr_pem) = crate::pki::agent_key_and_csr(name).unwrap();
    let r = f
        .svc
        .enroll(crate::proto::EnrollRequest {
            token,
            name: name.into(),
            csr_pem,
            info: AgentInfo::default(),
        })
        .unwrap();
    crate::pki::fingerprint_pem(&r.cert_pem).unwrap()
}

/// Renews the certificate of the agent that shows `with`; returns the
/// new one's fingerprint.
fn renew(f: &mut Fixture, with: &str) -> String {
    let (dest, _) = f.svc.agent_identity(with).unwrap().unwrap();
    let (_key, csr) = crate::pki::agent_key_and_csr("x").unwrap();
    let r = f.svc.renew_certificate(dest, with, &csr).unwrap();
    crate::pki::fingerprint_pem(&r.cert_pem).unwrap()
}

/// A renewed certificate is the destination's; the one it replaces works
/// on (until it expires), so a renewal whose answer never reached the
/// agent leaves its certificate working, and the agent renews again with
/// it. The next renewal retires everything but its own two.
#[test]
fn a_renewal_keeps_the_certificate_it_replaces_until_the_next() {
    let mut f = fixture();
    let old = enrol(&mut f, "pc-1");
    let d = f.svc.destination("pc-1").unwrap();
    assert_eq!(
        d.cert_expires_at.as_deref(),
        Some(crate::clock::rfc3339(T0 + 365 * DAY).as_str())
    );
    let is = |f: &Fixture, fp: &str| f.svc.agent_identity(fp).unwrap();
    let pc1 = Some((d.id, DestStatus::Online));

    // The answer is lost: the agent goes on with the old certificate.
    f.clock.advance(250 * DAY);
    let lost = renew(&mut f, &old);
    assert_eq!(is(&f, &old), pc1);
    assert_eq!(is(&f, &lost), pc1);
    // It renews again with the old one: the lost one is nobody's now.
    let new = renew(&mut f, &old);
    assert_eq!(is(&f, &lost), None);
    assert_eq!(is(&f, &new), pc1);
    assert_eq!(is(&f, &old), pc1);
    let d = f.svc.destination("pc-1").unwrap();
    assert_eq!(
        d.cert_expires_at.as_deref(),
        Some(crate::clock::rfc3339(T0 + 250 * DAY + 365 * DAY).as_str())
    );
    // The next renewal, with the new one, retires the old.
    f.clock.advance(250 * DAY);
    let next = renew(&mut f, &new);
    assert_eq!(is(&f, &old), None);
    assert_eq!(is(&f, &new), pc1);
    assert_eq!(is(&f, &next), pc1);
    let renewed = f
        .svc
        .events_tail(50)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "agent.renewed" && e.subject == "destination pc-1")
        .count();
    assert_eq!(renewed, 3);
}

/// The server certificate is issued again when a third of its life is
/// left, with an event; before that, checking changes nothing.
#[test]
fn the_server_certificate_is_refreshed_when_due_with_its_event() {
    let mut f = fixture();
    let before = f.svc.pki().unwrap().server_validity();
    let issued = |f: &Fixture| {
        f.svc
            .events_tail(50)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "server.certificate")
            .count()
    };
    f.clock.advance(200 * DAY);
    f.svc.refresh_server_cert().unwrap();
    assert_eq!(f.svc.pki().unwrap().server_validity(), before);
    assert_eq!(issued(&f), 0);
    f.clock.advance(50 * DAY);
    f.svc.refresh_server_cert().unwrap();
    let after = f.svc.pki().unwrap().server_validity();
    assert_eq!(after.not_after, T0 + 250 * DAY + 365 * DAY);
    assert_eq!(issued(&f), 1);
}

#[test]
fn work_that_does_not_move_is_stuck_in_its_task_in_triage_and_in_status() {
    use crate::task::stuck::StuckKind;
    let mut f = fixture();
    let p = f.package();
    let (pc1_id, pc2, _pc3) = (
        f.destination("pc-1"),
        f.destination("pc-2"),
        f.destination("pc-3"),
    );
    let t = f.task(p.id, &["pc-1", "pc-2", "pc-3"]);
    // pc-2's agent runs installs for at most 60 s.
    let info = AgentInfo {
        command_timeout: Some(60),
        ..AgentInfo::default()
    };
    f.svc.poll(pc2, &info).unwrap();
    f.report(pc1_id, t.id, 1, ReportStatus::Transferring, None, false);
    f.report(pc2, t.id, 1, ReportStatus::Installing, None, false);
    let stuck_of = |f: &Fixture, name: &str| {
        let t = f.svc.task(t.id).unwrap();
        let d = t.destinations.iter().find(|d| d.name == name).unwrap();
        d.stuck.as_ref().map(|s| (s.kind, s.reason.clone()))
    };
    let causes = |f: &Fixture| {
        let mut c: Vec<String> = f
            .svc
            .failures()
            .unwrap()
            .iter()
            .map(|x| format!("{}: {}", x.destination, x.cause().signature))
            .collect();
        c.sort();
        c
    };
    f.clock.advance(299);
    assert_eq!(f.svc.status().unwrap().stuck, 0);
    assert!(causes(&f).is_empty());

    // Five minutes without transfer progress.
    f.clock.advance(1);
    assert_eq!(
        stuck_of(&f, "pc-1"),
        Some((StuckKind::Stalled, "no transfer progress for 5 min".into()))
    );
    assert_eq!(stuck_of(&f, "pc-2"), None);
    assert_eq!(f.svc.status().unwrap().stuck, 1);
    assert_eq!(causes(&f), ["pc-1: stuck · no transfer progress"]);

    // A stalled transfer can be started again, by name (triage's `r`);
    // an install past its timeout cannot (it may still be running).
    let again = f
        .svc
        .rerun_task_on(t.id, false, Some(&["pc-1".into()]))
        .unwrap();
    let pc1 = again
        .destinations
        .iter()
        .find(|d| d.name == "pc-1")
        .unwrap();
    assert_eq!((pc1.status, pc1.attempt), (WorkState::Waiting, 2));
    assert_eq!(stuck_of(&f, "pc-1"), None);
    f.report(pc1_id, t.id, 2, ReportStatus::Transferring, None, false);
    // Past the agent's 60 s timeout and the grace.
    f.clock.advance(60);
    assert_eq!(stuck_of(&f, "pc-2").unwrap().0, StuckKind::Overdue);
    assert_eq!(f.svc.status().unwrap().stuck, 1);
    let refused = f
        .svc
        .rerun_task_on(t.id, false, Some(&["pc-2".into()]))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("no failed destinations"), "{refused}");

    // A day without a word from any: all three offline with work
    // waiting, the waiting one too.
    f.clock.advance(DAY);
    assert_eq!(
        stuck_of(&f, "pc-3"),
        Some((
            StuckKind::Offline,
            "destination offline for 1 day with work waiting".into()
        ))
    );
    assert_eq!(f.svc.status().unwrap().stuck, 3);
    assert_eq!(causes(&f).len(), 3);

    // Finished work is no longer stuck.
    f.report(pc1_id, t.id, 2, ReportStatus::Succeeded, Some(0), false);
    assert_eq!(stuck_of(&f, "pc-1"), None);
    assert_eq!(f.svc.status().unwrap().stuck, 2);
    let t = f.svc.task(t.id).unwrap();
    assert!(t.destinations.iter().all(|d| d.state_since.is_some()));
}

#[test]
fn a_signature_gate_pauses_on_a_cause_no_earlier_ring_showed() {
    let mut f = fixture();
    let p = f.package();
    let ids: Vec<DestinationId> = ["pc-1", "pc-2", "pc-3"]
        .iter()
        .map(|n| f.destination(n))
        .collect();
    let t = f
        .svc
        .create_task(CreateTask {
            package: Some(p.id),
            to: vec!["pc-1".into(), "pc-2".into(), "pc-3".into()],
            rings: Some("1,2,100%".into()),
            gate: Some("signature=new".into()),
            ..CreateTask::default()
        })
        .unwrap();
    let now = f.clock.now();
    let work = |f: &Fixture, d: DestinationId| f.svc.assignments(d, now).unwrap().len();
    assert_eq!((work(&f, ids[0]), work(&f, ids[1])), (1, 0));
    // The canary's failure is a cause no ring showed before: paused.
    f.report(ids[0], t.id, 1, ReportStatus::Failed, Some(1), false);
    let v = f.svc.task(t.id).unwrap();
    assert_eq!(v.status, crate::task::TaskStatus::Paused);
    assert!(
        v.paused_reason.as_deref().is_some_and(|r| r
            .starts_with("gate signature=new tripped after ring 1: a new failure cause, exit 1")),
        "{:?}",
        v.paused_reason
    );
    assert_eq!(work(&f, ids[1]), 0);
    // Resumed: ring 2 fails the same way, which is no longer new: ring 3
    // starts by itself.
    f.svc.resume_task(t.id).unwrap();
    assert_eq!(work(&f, ids[1]), 1);
    assert_eq!(work(&f, ids[2]), 0);
    f.report(ids[1], t.id, 1, ReportStatus::Failed, Some(1), false);
    assert_eq!(work(&f, ids[2]), 1);
    let v = f.svc.task(t.id).unwrap();
    assert_eq!(v.status, crate::task::TaskStatus::Running);
    use crate::task::rings::RingState;
    let states: Vec<RingState> = v.rings.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [RingState::Done, RingState::Done, RingState::Running]
    );
}

#[test]
fn the_pre_flight_estimates_transfers_from_the_bandwidth() {
    let mut f = fixture();
    let p = f.package();
    f.destination("pc-1");
    f.destination("pc-2");
    let req = CreateTask {
        package: Some(p.id),
        to: vec!["pc-1".into(), "pc-2".into()],
        ..CreateTask::default()
    };
    let plan = f.svc.plan_task(&req).unwrap();
    assert_eq!(plan.summary, "2 will install");
    assert_eq!(plan.starts, "starts now");
    assert!(
        plan.destinations
            .iter()
            .all(|r| r.transfer_done_at.is_none())
    );
    // One transfer at a time, at a rate that takes 10 s for this package.
    let rate = p.size.div_ceil(10);
    f.svc.set_transfer_limits(Some(rate), Some(1));
    let plan = f.svc.plan_task(&req).unwrap();
    let now = f.clock.now();
    let done: Vec<Option<String>> = plan
        .destinations
        .iter()
        .map(|r| r.transfer_done_at.clone())
        .collect();
    assert_eq!(
        done,
        [
            Some(crate::clock::rfc3339(now + 10)),
            Some(crate::clock::rfc3339(now + 20))
        ]
    );
    assert!(
        plan.starts
            .starts_with("starts now, transfers done in about 20 s at "),
        "{}",
        plan.starts
    );
}
