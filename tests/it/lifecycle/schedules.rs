//! Start times and daily windows: when the agents of a task may get its
//! work.

use serde_json::Value;

use super::{
    ClockFile, ids, logged_package, nudge, ran, rfc3339, server_with_clock, show, witness,
};
use crate::procs::{Agent, Server, create_task, dest, task_id};

const HOUR: i64 = 3600;

/// "HH:MM" of `t` in UTC.
fn hh_mm(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%H:%M")
        .to_string()
}

/// Issue: `--at TIME` (RFC 3339 or local "YYYY-MM-DD HH:MM"); the task is
/// `scheduled` and its agents get nothing until then.
#[test]
fn scheduled_task_waits_for_its_start_time() {
    let clock = ClockFile::new();
    let s = server_with_clock(&clock, &[]);
    let (_, token) = s.token(true);
    let x = Agent::enrolled(&s, &token, "at-x");
    let marks = tempfile::tempdir().unwrap();
    let log = marks.path().join("runs.log");
    let pkg = logged_package(&s, &log, "atpkg");
    let other = logged_package(&s, &log, "atwitness");

    let at = rfc3339(clock.now() + 2 * HOUR);
    let t = create_task(&s, &pkg, "at-x", &["--at", &at]);
    let id = task_id(&t);
    assert_eq!(t["status"], "scheduled", "{t:#}");
    assert_eq!(t["start_at"], at.as_str(), "{t:#}");
    witness(&s, &other, &x);
    let t = show(&s, id);
    assert_eq!(t["status"], "scheduled", "{t:#}");
    assert_eq!(dest(&t, "at-x")["status"], "waiting", "{t:#}");
    assert_eq!(ran(&log, &x, "install", "atpkg"), 0);
    let list = s.json(&["task", "list", "--json"]);
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| task_id(t) == id)
        .unwrap();
    assert_eq!(listed["status"], "scheduled", "{list:#}");

    // Local time, as admins type it: read in the CLI's time zone (the
    // second one a POSIX TZ string, nine hours east of UTC, so no tzdata
    // is needed).
    for (tz, expect) in [
        ("UTC", "2030-01-02T03:04:00Z"),
        ("<+09>-9", "2030-01-01T18:04:00Z"),
    ] {
        let o = s
            .cmd()
            .env("TZ", tz)
            .args([
                "task",
                "create",
                "--package",
                &pkg["id"].to_string(),
                "--to",
                "at-x",
                "--at",
                "2030-01-02 03:04",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let l: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(l["start_at"], expect, "TZ={tz}: {l:#}");
        assert_eq!(l["status"], "scheduled", "{l:#}");
        s.ok(&["task", "rm", &l["id"].to_string()]);
    }

    // Three hours later it runs.
    clock.set(3 * HOUR);
    nudge(&s, &other, &x);
    let t = s.wait_task_finished(id, &[&x]);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(dest(&t, "at-x")["status"], "succeeded", "{t:#}");
    assert_eq!(ran(&log, &x, "install", "atpkg"), 1);
}

/// Issue: a daily window (`--window HH:MM-HH:MM`, server time) outside
/// which no new installation starts.
#[test]
fn window_holds_installs_until_it_opens() {
    let clock = ClockFile::new();
    let s = server_with_clock(&clock, &[]);
    let (_, token) = s.token(true);
    let x = Agent::enrolled(&s, &token, "wn-x");
    let marks = tempfile::tempdir().unwrap();
    let log = marks.path().join("runs.log");
    let pkg = logged_package(&s, &log, "wnpkg");
    let other = logged_package(&s, &log, "wnwitness");

    // Opens in two hours, closes in three (UTC: the server runs with TZ=UTC).
    let t0 = clock.now();
    let window = format!("{}-{}", hh_mm(t0 + 2 * HOUR), hh_mm(t0 + 3 * HOUR));
    let t = create_task(&s, &pkg, "wn-x", &["--window", &window]);
    let id = task_id(&t);
    assert_eq!(t["window"], window.as_str(), "{t:#}");
    witness(&s, &other, &x);
    let t = show(&s, id);
    assert_eq!(t["status"], "running", "{t:#}");
    assert_eq!(dest(&t, "wn-x")["status"], "waiting", "{t:#}");
    assert_eq!(ran(&log, &x, "install", "wnpkg"), 0);

    // Inside the window: it runs.
    clock.set(2 * HOUR + HOUR / 2);
    nudge(&s, &other, &x);
    let t = s.wait_task_finished(id, &[&x]);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(dest(&t, "wn-x")["status"], "succeeded", "{t:#}");
    assert_eq!(ran(&log, &x, "install", "wnpkg"), 1);
}

/// DESIGN: "Errors: one clear line on stderr, exit code 1 (2 for usage
/// errors), nothing half-done". A window that is not HH:MM-HH:MM would
/// otherwise hold nothing, silently.
#[test]
fn malformed_window_is_refused() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let _x = Agent::enrolled(&s, &token, "bw-x");
    let marks = tempfile::tempdir().unwrap();
    let pkg = logged_package(&s, &marks.path().join("runs.log"), "bwpkg");
    for bad in ["nonsense", "22:00-25:00", "06:00-06:00"] {
        let o = s.run(&[
            "task",
            "create",
            "--package",
            &pkg["id"].to_string(),
            "--to",
            "bw-x",
            "--window",
            bad,
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(1 | 2)),
            "--window {bad} accepted: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(err.contains(bad), "the error should name {bad}: {err}");
    }
    assert!(ids(&s.json(&["task", "list", "--json"])).is_empty());
}
