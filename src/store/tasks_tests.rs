//! Tests of the `tasks` and `task_destinations` queries.

use super::*;
use crate::model::Kind;
use crate::store::Store;
use crate::store::destinations::{self, Host};
use crate::store::packages::{self, Content, Meta};
use crate::store::triage::failures;
use crate::store::work::{may_fetch, next_due, work_for, work_sql};
use crate::task::DestStatus;
use crate::task::Format;

const T0: UnixTime = 1_800_000_000;
const AT: Now = Now {
    at: T0,
    limits: crate::task::stuck::Limits {
        stall_secs: 300,
        offline_secs: 86_400,
    },
};

/// A store with one package, destinations `pc-1`… and one task to all.
fn seeded(dests: usize) -> (Store, TaskId, Vec<DestinationId>) {
    let mut s = Store::open_in_memory().unwrap();
    let ids = s
        .write(|tx| {
            let pkg = packages::insert(
                tx,
                &Content {
                    format: Format::Zip,
                    size: 10,
                    hash: "ab".repeat(32),
                    sha256: "cd".repeat(32),
                    file_name: "tool.zip".into(),
                    installer: None,
                    product_code: None,
                    unzipped_size: Some(10),
                    entries: Some(1),
                },
                &Meta {
                    name: "tool".into(),
                    version: None,
                    kind: Kind::Install,
                    install_command: Some("sh install.sh".into()),
                    uninstall_command: Some("sh remove.sh".into()),
                    folder: None,
                    success_codes: vec![0, 3010],
                    detect: Vec::new(),
                },
                T0,
            )?;
            let task = insert(
                tx,
                &NewTask {
                    name: "Install tool",
                    kind: TaskType::Install,
                    class: TaskClass::Admin,
                    package_id: Some(pkg),
                    software: None,
                    software_version: None,
                    policy_id: None,
                    package_name: "tool",
                    start_at: None,
                    window: None,
                    force: false,
                    rings: None,
                    gate: None,
                },
                T0,
            )?;
            let mut ids = Vec::new();
            for i in 1..=dests {
                let host = Host {
                    os: "linux",
                    hostname: "h",
                    agent_version: "1",
                    command_timeout: None,
                    disks: None,
                };
                let name = format!("pc-{i}");
                let d = destinations::insert(
                    tx,
                    &name,
                    DestStatus::Online,
                    host,
                    &format!("fp-{i}"),
                    1,
                    T0,
                )?;
                add_destination(tx, task, d, None, T0)?;
                ids.push(d);
            }
            Ok((task, ids))
        })
        .unwrap();
    (s, ids.0, ids.1)
}

#[test]
fn new_destinations_wait_and_work_rows_carry_what_the_agent_needs() {
    let (s, task, d) = seeded(2);
    let c = s.conn();
    let counts = counts(c, task).unwrap();
    assert_eq!((counts.waiting, counts.unfinished()), (2, 2));
    let work = work_for(c, d[0], T0).unwrap();
    assert_eq!(work.len(), 1);
    let w = &work[0];
    assert_eq!(
        (w.task_id, w.attempt, w.state),
        (task, 1, WorkState::Waiting)
    );
    assert_eq!(w.task_type, TaskType::Install);
    let p = w.package.as_ref().unwrap();
    assert_eq!(p.success_codes, vec![0, 3010]);
    assert_eq!(p.format, Format::Zip);
    assert!(may_fetch(c, d[0], &"ab".repeat(32)).unwrap());
    assert!(!may_fetch(c, d[0], &"ef".repeat(32)).unwrap());
}

#[test]
fn finish_records_the_outcome_and_one_row_reads_alone() {
    let (mut s, task, d) = seeded(3);
    s.write(|tx| {
        let o = Outcome {
            state: WorkState::Failed,
            exit_code: Some(1603),
            message: Some("exit 1603: fatal error"),
            meaning: Some("fatal error during installation"),
            output: Some("log tail"),
            transferred: 10,
            reboot_required: false,
            detection: None,
            log: None,
        };
        finish(tx, task, d[1], &o, T0 + 5)
    })
    .unwrap();
    let c = s.conn();
    let one = destination(c, task, "pc-2", &AT).unwrap().unwrap();
    assert_eq!(one.status, WorkState::Failed);
    assert_eq!(one.exit_code, Some(1603));
    assert_eq!(
        one.meaning.as_deref(),
        Some("fatal error during installation")
    );
    assert_eq!(one.output.as_deref(), Some("log tail"));
    assert!(destination(c, task, "pc-9", &AT).unwrap().is_none());
    // Lists leave the output out; the detail includes it.
    assert!(
        destinations(c, task, &AT)
            .unwrap()
            .iter()
            .all(|d| d.output.is_none())
    );
    assert_eq!(
        destinations_with_output(c, task, &AT).unwrap()[1]
            .output
            .as_deref(),
        Some("log tail")
    );
    let f = failures(c).unwrap();
    assert_eq!((f.len(), f[0].0.destination.as_str()), (1, "pc-2"));
    assert_eq!(f[0].1.as_deref(), Some("log tail"));
    assert!(work_for(c, d[1], T0 + 5).unwrap().is_empty());
}

#[test]
fn requeue_starts_a_new_attempt_and_a_retry_waits_for_its_time() {
    let (mut s, task, d) = seeded(2);
    s.write(|tx| {
        requeue(
            tx,
            task,
            d[0],
            &Requeue::Retry {
                at: T0 + 30,
                message: "exit 1618: retry",
                exit_code: Some(1618),
                meaning: None,
            },
            T0,
        )?;
        requeue(tx, task, d[1], &Requeue::Fresh, T0)
    })
    .unwrap();
    let c = s.conn();
    let cur = state(c, task, d[0]).unwrap().unwrap();
    assert_eq!(
        (cur.state, cur.attempt, cur.retries),
        (WorkState::Waiting, 2, 1)
    );
    assert!(work_for(c, d[0], T0 + 29).unwrap().is_empty());
    assert_eq!(work_for(c, d[0], T0 + 30).unwrap().len(), 1);
    assert_eq!(next_due(c, d[0], T0).unwrap(), (Some(T0 + 30), false));
    let fresh = state(c, task, d[1]).unwrap().unwrap();
    assert_eq!((fresh.attempt, fresh.retries), (2, 0));
}

#[test]
fn progress_keeps_the_live_output_and_the_start_until_the_attempt_ends() {
    let (mut s, task, d) = seeded(1);
    let at = |state, output| Progress {
        state,
        transferred: 10,
        output,
    };
    s.write(|tx| {
        set_progress(tx, task, d[0], &at(WorkState::Transferring, None), T0)?;
        set_progress(
            tx,
            task,
            d[0],
            &at(WorkState::Installing, Some("step 1\n")),
            T0 + 4,
        )?;
        // A progress without output (the gauge) keeps what was said.
        set_progress(tx, task, d[0], &at(WorkState::Installing, None), T0 + 5)
    })
    .unwrap();
    let live = destination(s.conn(), task, "pc-1", &Now { at: T0 + 9, ..AT })
        .unwrap()
        .unwrap();
    assert_eq!(live.status, WorkState::Installing);
    assert_eq!(live.output.as_deref(), Some("step 1\n"));
    assert_eq!(live.started_at.as_deref(), Some(rfc3339(T0).as_str()));
    // Under way: counted to now.
    assert_eq!(live.elapsed_secs, Some(9));
    s.write(|tx| {
        let o = Outcome {
            state: WorkState::Succeeded,
            exit_code: Some(0),
            message: None,
            meaning: None,
            output: Some("step 1\nstep 2\n"),
            transferred: 10,
            reboot_required: false,
            detection: None,
            log: None,
        };
        finish(tx, task, d[0], &o, T0 + 12)
    })
    .unwrap();
    let done = destination(s.conn(), task, "pc-1", &Now { at: T0 + 60, ..AT })
        .unwrap()
        .unwrap();
    assert_eq!(done.output.as_deref(), Some("step 1\nstep 2\n"));
    // Finished: counted to its end, however late it is read.
    assert_eq!(done.elapsed_secs, Some(12));
    s.write(|tx| requeue(tx, task, d[0], &Requeue::Fresh, T0 + 70))
        .unwrap();
    let again = destination(s.conn(), task, "pc-1", &Now { at: T0 + 80, ..AT })
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.output, again.started_at, again.elapsed_secs),
        (None, None, None)
    );
}

#[test]
fn cancel_touches_only_unfinished_work() {
    let (mut s, task, d) = seeded(2);
    let changed = s
        .write(|tx| {
            let done = Progress {
                state: WorkState::Succeeded,
                transferred: 10,
                output: None,
            };
            set_progress(tx, task, d[0], &done, T0)?;
            Ok((
                cancel(tx, task, d[0], "removed", T0)?,
                cancel(tx, task, d[1], "removed", T0)?,
            ))
        })
        .unwrap();
    assert_eq!(changed, (false, true));
    let c = counts(s.conn(), task).unwrap();
    assert_eq!((c.succeeded, c.cancelled, c.unfinished()), (1, 1, 0));
    assert!(unfinished_destinations(s.conn(), task).unwrap().is_empty());
}

#[test]
fn retention_sees_completed_and_empty_tasks_only() {
    let (mut s, task, d) = seeded(1);
    assert!(retention_candidates(s.conn()).unwrap().is_empty());
    s.write(|tx| set_completed(tx, task, Some(T0))).unwrap();
    let r = retention_candidates(s.conn()).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].2.completed_at, Some(T0));
    assert_eq!((r[0].2.class, r[0].2.destinations), (TaskClass::Admin, 1));
    s.write(|tx| {
        set_completed(tx, task, None)?;
        remove_destination(tx, task, d[0])
    })
    .unwrap();
    let r = retention_candidates(s.conn()).unwrap();
    assert_eq!(r[0].2.destinations, 0);
}

#[test]
fn the_change_cursor_brings_only_rows_written_since() {
    let (mut s, task, d) = seeded(3);
    let c = s.conn();
    let all = destinations_since(c, task, 0, &AT).unwrap();
    assert_eq!(all.len(), 3);
    let r0 = revision(c).unwrap();
    assert!(r0 >= 3, "every insert took a revision: {r0}");
    assert!(destinations_since(c, task, r0, &AT).unwrap().is_empty());
    let progress = Progress {
        state: WorkState::Transferring,
        transferred: 10,
        output: None,
    };
    s.write(|tx| set_progress(tx, task, d[1], &progress, T0 + 1))
        .unwrap();
    let c = s.conn();
    let r1 = revision(c).unwrap();
    assert!(r1 > r0);
    let changed = destinations_since(c, task, r0, &Now { at: T0 + 1, ..AT }).unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(
        (changed[0].name.as_str(), changed[0].status),
        ("pc-2", WorkState::Transferring)
    );
    assert!(
        destinations_since(c, task, r1, &Now { at: T0 + 1, ..AT })
            .unwrap()
            .is_empty()
    );
    // A removal takes no revision: readers see it in the row count.
    s.write(|tx| remove_destination(tx, task, d[0])).unwrap();
    assert_eq!(revision(s.conn()).unwrap(), r1);
}

/// A new task's rows come in under one revision, each in its ring: a
/// reader before it gets them all, a reader after it none, and a later
/// change to one row still takes a revision of its own.
#[test]
fn a_new_tasks_rows_share_one_revision_and_keep_their_ring() {
    let (mut s, first, d) = seeded(3);
    let r0 = revision(s.conn()).unwrap();
    let task = s
        .write(|tx| {
            let row = get(tx, first)?.expect("seeded task");
            let id = insert(
                tx,
                &NewTask {
                    name: "Rings",
                    kind: TaskType::Install,
                    class: TaskClass::Admin,
                    package_id: row.package_id,
                    package_name: "tool",
                    software: None,
                    software_version: None,
                    policy_id: None,
                    start_at: None,
                    window: None,
                    force: false,
                    rings: Some("1,100%"),
                    gate: None,
                },
                T0,
            )?;
            add_destinations(tx, id, [(d[0], 0), (d[1], 1), (d[2], 1)], T0)?;
            Ok(id)
        })
        .unwrap();
    let c = s.conn();
    let r1 = revision(c).unwrap();
    assert_eq!(r1, r0 + 1, "one revision for the whole task");
    assert_eq!(destinations_since(c, task, r0, &AT).unwrap().len(), 3);
    assert!(destinations_since(c, task, r1, &AT).unwrap().is_empty());
    let rings = crate::store::rings::counts(c, task).unwrap();
    let sizes: Vec<(usize, u64)> = rings.iter().map(|(r, k)| (*r, k.total)).collect();
    assert_eq!(sizes, [(0, 1), (1, 2)]);
    assert_eq!(counts(c, task).unwrap().waiting, 3);
    let progress = Progress {
        state: WorkState::Transferring,
        transferred: 10,
        output: None,
    };
    s.write(|tx| set_progress(tx, task, d[2], &progress, T0 + 1))
        .unwrap();
    let c = s.conn();
    assert!(revision(c).unwrap() > r1);
    let changed = destinations_since(c, task, r1, &Now { at: T0 + 1, ..AT }).unwrap();
    assert_eq!(changed.len(), 1);
    // Rows added one at a time are still stamped by the trigger.
    assert!(r0 >= 3);
}

/// The poll's query is planned once, not again at every run with a new
/// time: SQLite re-prepared it at each poll, which was most of the
/// server's writer time with 10,000 agents polling.
#[test]
fn the_poll_query_is_not_prepared_again_at_each_run() {
    let (s, _, d) = seeded(2);
    let c = s.conn();
    for k in 0..6 {
        work_for(c, d[k % 2], T0 + k as i64).unwrap();
    }
    let st = c.prepare_cached(&work_sql()).unwrap();
    assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0);
}
