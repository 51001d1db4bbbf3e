//! A final report reaches the disk before the attempt counts as done.

use std::fs;

use super::{Dest, script_package, wait_task};
use crate::procs::{DEADLINE, Server, create_task, dest, task_id, wait_until};

/// The agent marks an attempt done so that it never runs twice. If the
/// report could not be saved and the marker were written anyway, the
/// outcome would be lost and the attempt never run again: the task would
/// show "installing" forever. The marker must wait for the report; once
/// the disk takes the report, it is delivered.
#[test]
fn an_attempt_is_marked_done_only_once_its_report_is_on_disk() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let d = Dest::enrolled(&s, &token, "rep-01", &[]);
    // Reports cannot be written while `reports` is a file, not a folder.
    let reports = d.data().join("reports");
    fs::remove_dir(&reports).expect("reports is an empty folder");
    fs::write(&reports, "in the way").unwrap();

    let marks = tempfile::tempdir().unwrap();
    let ran = marks.path().join("ran");
    let pkg = script_package(
        &s,
        "mark.sh",
        &format!("echo ran >> '{}'\n", ran.display()),
        "sh mark.sh",
    );
    let t = create_task(&s, &pkg, "rep-01", &[]);
    let id = task_id(&t);
    wait_until(
        DEADLINE,
        "the agent to fail to keep the report",
        || d.log().contains("cannot keep the report").then_some(()),
        || d.diagnostics(),
    );
    assert_eq!(fs::read_to_string(&ran).unwrap(), "ran\n");
    let marker = d.data().join("done").join(format!("{id}-1"));
    assert!(
        !marker.exists(),
        "attempt {id}-1 is marked done but its report is nowhere on disk"
    );

    // The disk is back: the report is saved, delivered, and only then is
    // the attempt marked done.
    fs::remove_file(&reports).unwrap();
    fs::create_dir(&reports).unwrap();
    let t = wait_task(&s, id, &d, "the report to arrive", |t| {
        dest(t, "rep-01")["status"] == "succeeded"
    });
    assert_eq!(dest(&t, "rep-01")["exit_code"], 0, "{t:#}");
    assert!(marker.exists(), "{}", d.diagnostics());
    assert_eq!(fs::read_to_string(&ran).unwrap(), "ran\n", "ran twice");
}
