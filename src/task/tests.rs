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
        task_status(None, Some(NOW + 1), 0, false, NOW),
        TaskStatus::Scheduled
    );
    assert_eq!(
        task_status(None, Some(NOW), 0, false, NOW),
        TaskStatus::Running
    );
    assert_eq!(task_status(None, None, 3, false, NOW), TaskStatus::Running);
    assert_eq!(
        task_status(Some(NOW), None, 0, false, NOW),
        TaskStatus::Completed
    );
    assert_eq!(
        task_status(Some(NOW), None, 1, false, NOW),
        TaskStatus::Failed
    );
    assert_eq!(task_status(None, None, 0, true, NOW), TaskStatus::Paused);
    assert_eq!(
        task_status(Some(NOW), None, 0, true, NOW),
        TaskStatus::Completed
    );
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

// ---- security policies ------------------------------------------------------

mod policies {
    use std::cmp::Ordering;

    use super::super::policy::*;
    use super::super::state::WorkState;
    use super::NOW;

    fn program<'a>(name: &'a str, version: Option<&'a str>) -> Program<'a> {
        Program {
            name,
            version,
            source: "dpkg",
            product_code: None,
            uninstall: None,
            quiet: false,
        }
    }

    #[test]
    fn versions_order_as_people_read_them() {
        let ordered = [
            "0.9", "1.0", "1.0.0", "1.0.1", "1.2", "1.10", "2.0b", "2.0.0", "10", "20260101",
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(compare_versions(a, b), i.cmp(&j), "{a} vs {b}");
            }
        }
        assert_eq!(compare_versions("1.01", "1.1"), Ordering::Equal);
        assert_eq!(compare_versions("1:2.3-4", "1:2.3-10"), Ordering::Less);
        assert_eq!(compare_versions("1.0A", "1.0a"), Ordering::Equal);
        // Longer than any integer type still orders by value.
        assert_eq!(
            compare_versions("1.000000000000000000000000000000000000000002", "1.3"),
            Ordering::Less
        );
    }

    #[test]
    fn a_mandatory_program_missing_or_too_old_is_a_violation() {
        let rule = Rule::Mandatory {
            name: "Acme Tool",
            min_version: Some("2.0"),
        };
        let v = violation(rule, &[program("other", Some("9"))]).unwrap();
        assert_eq!(v.reason, "lacks Acme Tool");
        let v = violation(rule, &[program("acme tool", Some("1.5"))]).unwrap();
        assert_eq!(v.reason, "has Acme Tool 1.5, below 2.0");
        assert_eq!(v.remove, None);
        assert_eq!(
            violation(rule, &[program("ACME TOOL", Some("2.0.1"))]),
            None
        );
        // Two installs, one recent enough: it complies.
        let two = [
            program("Acme Tool", Some("1")),
            program("Acme Tool", Some("3")),
        ];
        assert_eq!(violation(rule, &two), None);
        // Without a minimum, any version will do.
        let any = Rule::Mandatory {
            name: "Acme Tool",
            min_version: None,
        };
        assert_eq!(violation(any, &[program("Acme Tool", None)]), None);
    }

    #[test]
    fn a_prohibited_pattern_picks_a_program_it_can_remove() {
        let rule = Rule::Prohibited {
            pattern: "*toolbar*",
        };
        assert_eq!(violation(rule, &[program("Acme", None)]), None);
        let no_quiet = Program {
            uninstall: Some("C:\\tb\\uninst.exe"),
            ..program("Ask Toolbar", Some("1"))
        };
        let quiet = Program {
            uninstall: Some("C:\\tb2\\uninst.exe /S"),
            quiet: true,
            ..program("Bing TOOLBAR", Some("7"))
        };
        let v = violation(rule, &[program("Acme", None), no_quiet, quiet]).unwrap();
        assert_eq!(v.remove, Some(2));
        assert_eq!(v.reason, "has Bing TOOLBAR 7");
        // None removable: still a violation, naming the first.
        let v = violation(rule, &[no_quiet]).unwrap();
        assert_eq!(v.remove, Some(0));
        let exact = Rule::Prohibited { pattern: "acme" };
        assert!(violation(exact, &[program("ACME", None)]).is_some());
        assert!(violation(exact, &[program("acme-extra", None)]).is_none());
    }

    #[test]
    fn an_update_is_found_by_product_code_or_name_and_version() {
        let rule = Rule::Update {
            name: "KB-1",
            version: Some("2"),
            product_code: Some("{11111111-2222-3333-4444-555555555555}"),
        };
        assert_eq!(
            violation(rule, &[program("kb-1", Some("1"))])
                .unwrap()
                .reason,
            "lacks update KB-1 2"
        );
        assert_eq!(violation(rule, &[program("kb-1", Some("2"))]), None);
        let by_code = Program {
            product_code: Some("{11111111-2222-3333-4444-555555555555}"),
            ..program("Renamed", None)
        };
        assert_eq!(violation(rule, &[by_code]), None);
    }

    #[test]
    fn the_removal_command_is_quiet_or_refused_with_its_reason() {
        let msi = Program {
            source: "registry",
            product_code: Some("{11111111-2222-3333-4444-55555555AAAA}"),
            uninstall: Some("MsiExec.exe /I{11111111-2222-3333-4444-55555555AAAA}"),
            ..program("Hello", Some("1.0"))
        };
        assert_eq!(
            removal_command(&msi).unwrap(),
            "msiexec /x {11111111-2222-3333-4444-55555555AAAA} /qn /norestart"
        );
        // A product code that is not one never reaches a command.
        let forged = Program {
            product_code: Some("{x} & del C:\\"),
            ..msi
        };
        let e = removal_command(&forged).unwrap_err();
        assert!(e.contains("no quiet uninstall command"), "{e}");
        let quiet = Program {
            uninstall: Some("apt-get remove -y hello"),
            quiet: true,
            ..program("hello", None)
        };
        assert_eq!(removal_command(&quiet).unwrap(), "apt-get remove -y hello");
        let none = program("hello", None);
        assert_eq!(
            removal_command(&none).unwrap_err(),
            "hello reports no uninstall command"
        );
        let ours = Program {
            source: "courier",
            quiet: true,
            uninstall: Some("x"),
            ..none
        };
        assert!(
            removal_command(&ours)
                .unwrap_err()
                .contains("courier package")
        );
        assert!(is_product_code("{abcdef01-2345-6789-ABCD-EF0123456789}"));
        assert!(!is_product_code("{abcdef01-2345-6789-ABCD-EF012345678}"));
        assert!(!is_product_code("abcdef01-2345-6789-ABCD-EF0123456789xx"));
    }

    #[test]
    fn a_countermeasure_row_runs_again_only_for_something_new() {
        let ended = |command| {
            Some(Row {
                state: WorkState::Succeeded,
                updated_at: NOW,
                command,
            })
        };
        assert_eq!(step(true, None, None, Some(NOW)), Step::Add);
        // Still violating after an install that changed nothing: no loop.
        assert_eq!(step(true, None, ended(None), Some(NOW)), Step::Leave);
        // Violating again in an inventory taken later.
        assert_eq!(step(true, None, ended(None), Some(NOW + 1)), Step::Requeue);
        // Another prohibited program to remove.
        assert_eq!(
            step(true, Some("b"), ended(Some("a")), Some(NOW)),
            Step::Requeue
        );
        assert_eq!(
            step(true, Some("a"), ended(Some("a")), Some(NOW)),
            Step::Leave
        );
        let running = Row {
            state: WorkState::Installing,
            updated_at: NOW,
            command: None,
        };
        assert_eq!(step(true, None, Some(running), Some(NOW + 9)), Step::Leave);
        assert_eq!(step(false, None, Some(running), Some(NOW + 9)), Step::Leave);
        let waiting = Some(Row {
            state: WorkState::Waiting,
            ..running
        });
        assert_eq!(step(false, None, waiting, Some(NOW)), Step::Complete);
        assert_eq!(step(false, None, ended(None), Some(NOW)), Step::Leave);
        assert_eq!(step(false, None, None, Some(NOW)), Step::Leave);
    }

    #[test]
    fn sql_sees_what_a_rule_may_need() {
        let t = |pattern| name_test(Rule::Prohibited { pattern });
        assert_eq!(t("*tool?bar*"), NameTest::Like("%tool_bar%".into()));
        assert_eq!(t("100%_a\\b"), NameTest::Like("100\\%\\_a\\\\b".into()));
        // LIKE folds only ASCII: a pattern it cannot say is judged by the rule alone.
        assert_eq!(t("*Ärger*"), NameTest::Any);
        let m = Rule::Mandatory {
            name: "Acme",
            min_version: None,
        };
        assert_eq!(name_test(m), NameTest::Is("Acme".into()));
    }
}
