//! Every transition and rule of the task room, without SQLite.

use super::rules::*;
use super::state::*;

const NOW: i64 = 1_800_000_000;

fn at(state: WorkState) -> Current {
    Current {
        state,
        attempt: 2,
        retries: 0,
    }
}

fn says(state: WorkState) -> Reported {
    Reported {
        attempt: 2,
        state,
        transient: false,
    }
}

#[test]
fn progress_moves_an_unfinished_attempt_forward() {
    for cur in WorkState::UNFINISHED {
        assert_eq!(
            apply_report(at(cur), says(WorkState::Installing), NOW),
            Effect::Progress(WorkState::Installing)
        );
    }
    assert_eq!(
        apply_report(at(WorkState::Waiting), says(WorkState::Transferring), NOW),
        Effect::Progress(WorkState::Transferring)
    );
}

#[test]
fn outcomes_finish_an_unfinished_attempt() {
    for end in [WorkState::Succeeded, WorkState::Failed] {
        assert_eq!(
            apply_report(at(WorkState::Installing), says(end), NOW),
            Effect::Finish(end)
        );
    }
}

#[test]
fn finished_destinations_and_other_attempts_ignore_reports() {
    for cur in [
        WorkState::Succeeded,
        WorkState::Failed,
        WorkState::Cancelled,
    ] {
        for r in WorkState::ALL {
            assert_eq!(
                apply_report(at(cur), says(*r), NOW),
                Effect::Ignore,
                "{cur} {r}"
            );
        }
    }
    let old = Reported {
        attempt: 1,
        ..says(WorkState::Failed)
    };
    assert_eq!(
        apply_report(at(WorkState::Installing), old, NOW),
        Effect::Ignore
    );
    // An agent cannot put work back to waiting or cancel it.
    for r in [WorkState::Waiting, WorkState::Cancelled] {
        assert_eq!(
            apply_report(at(WorkState::Installing), says(r), NOW),
            Effect::Ignore
        );
    }
}

#[test]
fn transient_failures_retry_with_backoff_then_fail() {
    let transient = Reported {
        transient: true,
        ..says(WorkState::Failed)
    };
    for n in 0..MAX_RETRIES {
        let cur = Current {
            retries: n,
            ..at(WorkState::Installing)
        };
        assert_eq!(
            apply_report(cur, transient, NOW),
            Effect::RetryAt {
                at: NOW + retry_backoff(n),
                retry: n + 1
            }
        );
    }
    let spent = Current {
        retries: MAX_RETRIES,
        ..at(WorkState::Installing)
    };
    assert_eq!(
        apply_report(spent, transient, NOW),
        Effect::Finish(WorkState::Failed)
    );
    assert_eq!([0, 1, 2, 3, 4].map(retry_backoff), [30, 60, 120, 240, 480]);
}

#[test]
fn the_action_follows_task_type_then_package_kind() {
    assert_eq!(
        action_for(TaskType::Install, PackageKind::Install),
        Action::Install
    );
    assert_eq!(
        action_for(TaskType::Install, PackageKind::File),
        Action::Distribute
    );
    assert_eq!(
        action_for(TaskType::Uninstall, PackageKind::Install),
        Action::Uninstall
    );
}

#[test]
fn a_window_holds_only_work_not_yet_started() {
    // Windows are in the machine's time zone: build one around NOW's hour
    // and one that excludes it.
    let h = jiff::Timestamp::from_second(NOW)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::system())
        .hour();
    let inside = format!("{:02}:00-{:02}:00", h, (h + 1) % 24);
    let outside = format!("{:02}:00-{:02}:00", (h + 1) % 24, (h + 2) % 24);
    assert!(held_by_window(WorkState::Waiting, Some(&outside), NOW));
    assert!(!held_by_window(WorkState::Waiting, Some(&inside), NOW));
    assert!(!held_by_window(WorkState::Installing, Some(&outside), NOW));
    assert!(!held_by_window(
        WorkState::Transferring,
        Some(&outside),
        NOW
    ));
    assert!(!held_by_window(WorkState::Waiting, None, NOW));
}

#[test]
fn polls_wake_when_held_work_comes_due() {
    assert_eq!(next_due_in(None, false, NOW), None);
    assert_eq!(next_due_in(Some(NOW + 30), false, NOW), Some(30));
    assert_eq!(next_due_in(Some(NOW + 300), true, NOW), Some(60));
    assert_eq!(next_due_in(Some(NOW + 5), true, NOW), Some(5));
    assert_eq!(next_due_in(None, true, NOW), Some(60));
    assert_eq!(next_due_in(Some(NOW - 5), false, NOW), None);
}

#[test]
fn rerun_picks_failed_or_every_finished_but_never_cancelled() {
    assert!(rerun_picks(WorkState::Failed, false));
    assert!(!rerun_picks(WorkState::Succeeded, false));
    assert!(rerun_picks(WorkState::Succeeded, true));
    for s in [
        WorkState::Cancelled,
        WorkState::Waiting,
        WorkState::Installing,
    ] {
        assert!(!rerun_picks(s, true));
    }
}

#[test]
fn editing_destinations_adds_revives_cancels_and_keeps_history() {
    let current = [
        (1, WorkState::Succeeded),
        (2, WorkState::Installing),
        (3, WorkState::Cancelled),
        (4, WorkState::Waiting),
        (5, WorkState::Failed),
    ];
    let plan = edit_destinations(&current, &[1, 3, 6]);
    assert_eq!(plan.added, vec![6]);
    assert_eq!(plan.revived, vec![3]);
    assert_eq!(plan.removed, vec![2, 4]);
    assert_eq!(plan.kept_finished, vec![5]);
    assert!(!plan.changes_nothing());
    // Unticking a finished destination changes nothing: it keeps its
    // outcome, and the caller can say so.
    let plan = edit_destinations(&current, &[1, 2, 4]);
    assert!(plan.changes_nothing());
    assert_eq!(plan.kept_finished, vec![5]);
}

#[test]
fn task_status_comes_from_schedule_and_outcome() {
    assert_eq!(
        task_status(None, Some(NOW + 1), 0, NOW),
        TaskStatus::Scheduled
    );
    assert_eq!(task_status(None, Some(NOW), 0, NOW), TaskStatus::Running);
    assert_eq!(task_status(None, None, 3, NOW), TaskStatus::Running);
    assert_eq!(task_status(Some(NOW), None, 0, NOW), TaskStatus::Completed);
    assert_eq!(task_status(Some(NOW), None, 1, NOW), TaskStatus::Failed);
}

#[test]
fn retention_keeps_admin_tasks_30_days_and_countermeasures_7() {
    let day = 86_400;
    let row = |class, done: Option<i64>, destinations| RetentionRow {
        class,
        completed_at: done,
        destinations,
    };
    use TaskClass::*;
    assert_eq!(expiry(row(Admin, None, 2), NOW), None);
    assert_eq!(expiry(row(Admin, Some(NOW - 29 * day), 2), NOW), None);
    assert_eq!(
        expiry(row(Admin, Some(NOW - 30 * day), 2), NOW),
        Some(Expiry::CompletedDaysAgo(30))
    );
    assert_eq!(
        expiry(row(Countermeasure, Some(NOW - 6 * day), 1), NOW),
        None
    );
    assert_eq!(
        expiry(row(Countermeasure, Some(NOW - 7 * day), 1), NOW),
        Some(Expiry::CompletedDaysAgo(7))
    );
    assert_eq!(
        expiry(row(Admin, None, 0), NOW),
        Some(Expiry::NoDestinations)
    );
    assert_eq!(
        Expiry::CompletedDaysAgo(7).to_string(),
        "completed more than 7 days ago"
    );
    assert_eq!(Expiry::NoDestinations.to_string(), "no destinations left");
}

#[test]
fn windows_is_needed_by_msi_exe_and_windows_commands_for_any_task_type() {
    use Action::*;
    // An MSI's uninstall (msiexec /x) needs Windows as much as its install.
    assert!(needs_windows(
        Install,
        Format::Msi,
        Some("msiexec /i \"a.msi\" /qn")
    ));
    assert!(needs_windows(
        Uninstall,
        Format::Msi,
        Some("msiexec /x {X} /qn")
    ));
    // A ZIP whose command runs an EXE or msiexec: the old rule missed both
    // at task creation while the agent refused them.
    assert!(needs_windows(
        Install,
        Format::Zip,
        Some("\"setup.exe\" /S")
    ));
    assert!(needs_windows(
        Uninstall,
        Format::Zip,
        Some("msiexec /x {X} /qn")
    ));
    assert!(needs_windows(
        Install,
        Format::Zip,
        Some("C:\\Windows\\System32\\msiexec.exe /i x.msi")
    ));
    // Scripts and file distributions run anywhere.
    assert!(!needs_windows(Install, Format::Zip, Some("sh install.sh")));
    assert!(!needs_windows(Uninstall, Format::File, Some("./uninstall")));
    assert!(!needs_windows(Distribute, Format::Exe, None));
}

#[test]
fn approval_and_rejection_transitions() {
    use DestStatus::*;
    assert_eq!(approve(Pending), Some(Offline));
    assert_eq!(approve(Rejected), Some(Offline));
    assert_eq!(approve(Online), None);
    assert_eq!(approve(Offline), None);
    assert_eq!(reject(Pending), Some(Rejected));
    assert_eq!(reject(Online), Some(Rejected));
    assert_eq!(reject(Rejected), None);
    assert!(Online.is_approved() && Offline.is_approved());
    assert_eq!(on_contact(Offline), Some(Online));
    for s in [Online, Pending, Rejected] {
        assert_eq!(on_contact(s), None);
    }
    assert_eq!(on_silence(Online), Some(Offline));
    for s in [Offline, Pending, Rejected] {
        assert_eq!(on_silence(s), None);
    }
    assert!(!Pending.is_approved() && !Rejected.is_approved());
}
