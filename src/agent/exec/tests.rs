//! The command runner on Unix: exit codes, signals, output, process groups.

use super::*;

#[test]
fn msiexec_gets_a_verbose_log_unless_it_names_one() {
    let log = Path::new("C:\\agent\\logs\\msi-3-1.log");
    assert_eq!(
        with_msi_log("msiexec /i \"hello.msi\" /qn /norestart", log),
        "msiexec /i \"hello.msi\" /qn /norestart /l*v \"C:\\agent\\logs\\msi-3-1.log\""
    );
    assert_eq!(
        with_msi_log(
            "MSIEXEC.EXE /x {6F1C2B9A-3D4E-4F50-8A61-7B2C3D4E5F60} /qn",
            log
        ),
        "MSIEXEC.EXE /x {6F1C2B9A-3D4E-4F50-8A61-7B2C3D4E5F60} /qn /l*v \"C:\\agent\\logs\\msi-3-1.log\""
    );
    for kept in [
        "msiexec /i a.msi /qn /L*V mine.log",
        "setup.exe /S",
        "sh install.sh",
    ] {
        assert_eq!(with_msi_log(kept, log), kept);
    }
}

#[test]
fn an_installer_log_is_read_from_its_end_in_either_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..2000).map(|i| format!("Action {i}: line\r\n")).collect();
    let utf8 = dir.path().join("ansi.log");
    std::fs::write(&utf8, &lines).unwrap();
    let tail = log_tail(&utf8, 1024).unwrap();
    assert!(tail.len() <= 1024, "{}", tail.len());
    assert!(tail.starts_with("Action "), "starts mid-line: {tail:.40}");
    assert!(tail.ends_with("Action 1999: line\r\n"));

    let wide = dir.path().join("unicode.log");
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(lines.encode_utf16().flat_map(u16::to_le_bytes));
    std::fs::write(&wide, &bytes).unwrap();
    assert_eq!(log_tail(&wide, 1024).as_deref(), Some(tail.as_str()));

    let small = dir.path().join("small.log");
    std::fs::write(&small, "Return value 3.\n").unwrap();
    assert_eq!(log_tail(&small, 1024).as_deref(), Some("Return value 3.\n"));
    assert_eq!(log_tail(&dir.path().join("none.log"), 1024), None);
}

fn spec<'a>(command: &'a str, cwd: &'a Path) -> RunSpec<'a> {
    RunSpec {
        command,
        cwd,
        timeout: Duration::from_secs(20),
        tail_bytes: 4096,
        live: None,
        on_start: None,
    }
}

async fn run_in_tmp(command: &str) -> RunOutcome {
    let dir = tempfile::tempdir().expect("tempdir");
    run(spec(command, dir.path())).await.expect("run")
}

#[tokio::test]
async fn exit_codes_are_reported() {
    let ok = run_in_tmp("true").await;
    assert_eq!(
        (ok.exit_code, ok.signal, ok.timed_out),
        (Some(0), None, false)
    );
    let three = run_in_tmp("exit 3").await;
    assert_eq!(three.exit_code, Some(3));
    assert!(!three.timed_out);
    let missing = run_in_tmp("courier-no-such-command-here").await;
    assert_eq!(missing.exit_code, Some(127));
}

#[tokio::test]
async fn death_by_signal_has_no_exit_code() {
    let out = run_in_tmp("kill -TERM $$").await;
    assert_eq!((out.exit_code, out.signal), (None, Some(15)));
    assert!(!out.timed_out);
}

#[tokio::test]
async fn endless_timeout_does_not_overflow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(RunSpec {
        timeout: Duration::MAX,
        ..spec("exit 0", dir.path())
    })
    .await
    .expect("run");
    assert_eq!(out.exit_code, Some(0));
}

#[tokio::test]
async fn both_streams_are_captured_in_order() {
    // Two pipes carry no common order: bytes ready on both at once are
    // taken in either order, so the writes are spaced out.
    let out = run_in_tmp("echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three").await;
    assert_eq!(out.output, "one\ntwo\nthree\n");
}

#[tokio::test]
async fn output_keeps_only_the_tail() {
    // 1 MiB of 'a' on stderr, then 512 KiB of 'b' and a recognisable
    // end on stdout (the same stream, so the end really is last).
    let out = run_in_tmp(
        "head -c 1048576 /dev/zero | tr '\\0' a >&2; head -c 524288 /dev/zero | tr '\\0' b; \
         printf END",
    )
    .await;
    assert_eq!(out.exit_code, Some(0));
    let body = out
        .output
        .strip_prefix(TRUNCATED_MARK)
        .expect("marked truncated");
    assert_eq!(body.len(), 4096);
    assert!(body.ends_with("bbbEND"), "{}", &body[body.len() - 20..]);
}

#[test]
fn tail_cuts_at_a_character_boundary() {
    let mut tail = Tail::new(4);
    tail.push("aé".as_bytes());
    tail.push("ü".as_bytes());
    // "aéü" is 5 bytes; the last 4 are 'é' and 'ü', whole.
    assert_eq!(tail.to_text(), "…éü");
    let mut tail = Tail::new(3);
    tail.push("éü".as_bytes());
    assert_eq!(tail.to_text(), "…ü");
    let mut tail = Tail::new(8);
    tail.push(b"short");
    assert_eq!(tail.to_text(), "short");
    let mut tail = Tail::new(0);
    tail.push(b"x");
    assert_eq!(tail.to_text(), "…");
}

#[tokio::test]
async fn output_is_offered_while_the_command_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, mut rx) = tokio::sync::watch::channel(String::new());
    let finished = std::cell::Cell::new(false);
    let running = async {
        let out = run(RunSpec {
            live: Some(&tx),
            ..spec("echo first; sleep 4; echo second", dir.path())
        })
        .await
        .expect("run");
        finished.set(true);
        out
    };
    let watching = async {
        rx.changed().await.expect("offered");
        (rx.borrow_and_update().clone(), finished.get())
    };
    let (out, (seen, ended_by_then)) = tokio::join!(running, watching);
    assert_eq!(seen, "first\n");
    assert!(!ended_by_then, "offered only after the command ended");
    assert_eq!(out.output, "first\nsecond\n");
}

#[tokio::test]
async fn working_directory_is_respected() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("marker.txt"), "here").expect("write");
    let out = run(spec("cat marker.txt", dir.path())).await.expect("run");
    assert_eq!(out.output, "here");
}

#[tokio::test]
async fn missing_working_directory_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gone = dir.path().join("gone");
    assert!(run(spec("true", &gone)).await.is_err());
}

// Reads /proc to see what is still running.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The backgrounded sleep holds the output pipes too: unless it is
    // killed with the shell, reading would wait for it.
    // The timeout leaves a loaded machine ample time to start the
    // shell; what is checked is that the 30 s sleeps did not run out.
    let command = "sleep 30 & echo $! > bg.pid; echo started; sleep 30";
    let out = run(RunSpec {
        timeout: Duration::from_secs(3),
        ..spec(command, dir.path())
    })
    .await
    .expect("run");
    assert!(out.timed_out);
    assert_eq!(out.exit_code, None);
    assert_eq!(out.signal, Some(9));
    assert_eq!(out.output, "started\n");
    assert!(out.elapsed < Duration::from_secs(25), "{:?}", out.elapsed);

    let pid: i32 = std::fs::read_to_string(dir.path().join("bg.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    // The grandchild is not ours to reap; it is gone or a zombie
    // waiting for init, either way no longer sleeping. SIGKILL is
    // delivered asynchronously: a loaded machine gets a moment.
    let state = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit(") ").next().unwrap_or("").chars().next()
    };
    let mut seen = state();
    for _ in 0..50 {
        if matches!(seen, None | Some('Z') | Some('X')) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        seen = state();
    }
    assert!(matches!(seen, None | Some('Z') | Some('X')), "{seen:?}");
}

// Reads /proc to see what is still running.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn dropped_run_kills_the_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let command = "echo $$ > sh.pid.tmp && mv sh.pid.tmp sh.pid; sleep 30";
    let pid_file = dir.path().join("sh.pid");
    // Drop the run once the shell is surely up, however slow the
    // machine is.
    let run = run(spec(command, dir.path()));
    let _ = timeout(Duration::from_secs(20), async {
        tokio::pin!(run);
        loop {
            tokio::select! {
                _ = &mut run => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if pid_file.exists() {
                        return;
                    }
                }
            }
        }
    })
    .await;
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let group = pid.to_string();
    let live_members = || {
        std::fs::read_dir("/proc")
            .expect("proc")
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                // After the command name: state, ppid, pgrp, …
                let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split(' ').collect();
                fields.get(2) == Some(&group.as_str()) && fields.first() != Some(&"Z")
            })
            .count()
    };
    // SIGKILL is delivered asynchronously; give a loaded machine time.
    let mut alive = live_members();
    for _ in 0..50 {
        if alive == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        alive = live_members();
    }
    assert_eq!(alive, 0, "group {pid} still has live members");
}

// Reads /proc for the shell's process group.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_gated_command_runs_only_once_its_start_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seen = Mutex::new(None);
    let record = |pid: u32| {
        // The command has not run yet: it waits at the gate.
        assert!(!dir.path().join("ran").exists());
        *seen.lock().unwrap() = Some(pid);
        Ok(())
    };
    let out = run(RunSpec {
        on_start: Some(OnStart(&record)),
        ..spec(
            "touch ran; cut -d' ' -f5 /proc/$$/stat; read x || echo stdin-empty",
            dir.path(),
        )
    })
    .await
    .expect("run");
    assert_eq!(out.exit_code, Some(0), "{}", out.output);
    let pid = seen.lock().unwrap().expect("told the pid");
    // The pid told is the group the command runs in, and its stdin is
    // empty, as for a command without a gate.
    assert_eq!(out.output, format!("{pid}\nstdin-empty\n"));

    let refuse = |_pid: u32| Err(io::Error::other("disk full"));
    let err = run(RunSpec {
        on_start: Some(OnStart(&refuse)),
        ..spec("touch never", dir.path())
    })
    .await
    .expect_err("refused");
    assert_eq!(err.to_string(), "disk full");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!dir.path().join("never").exists(), "ran without a record");
}
