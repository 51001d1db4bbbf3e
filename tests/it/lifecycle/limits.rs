//! Per-server transfer limits (concurrent transfers, bandwidth), from
//! flags or the config file.

use std::fs;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::procs::{Agent, DEADLINE, Server, create_task, dest, task_id};
use crate::support::{Courier, make_zip};

/// Runs a command that must end by itself (a refusal), killing it if it
/// does not within the deadline.
fn run_bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn courier");
    let end = Instant::now() + DEADLINE;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "still running after {} s; it should have refused to start\n{}",
                DEADLINE.as_secs(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue: per-server limits on concurrent transfers and bandwidth. With
/// one transfer at a time, two agents still both get the package.
#[test]
fn one_transfer_at_a_time_still_serves_every_agent() {
    let s = Server::start_with(&["--max-transfers", "1", "--bandwidth", "16MiB/s"]);
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "lim-a");
    let b = Agent::enrolled(&s, &token, "lim-b");

    // 6 MiB nothing compresses: each transfer takes a while at 16 MiB/s,
    // so the two compete for the one slot.
    const LEN: usize = 6 << 20;
    let mut payload = vec![0u8; LEN];
    blake3::Hasher::new()
        .update(b"courier lifecycle limits")
        .finalize_xof()
        .fill(&mut payload);
    let zip = s.input("big.zip");
    make_zip(
        &zip,
        &[
            (
                "check.sh",
                format!("test \"$(wc -c < payload.bin)\" -eq {LEN} && echo complete\n").as_bytes(),
            ),
            ("payload.bin", &payload),
        ],
    );
    let pkg = s.json(&[
        "package",
        "add",
        zip.to_str().unwrap(),
        "--install-command",
        "sh check.sh",
        "--json",
    ]);
    let t = create_task(&s, &pkg, "lim-a,lim-b", &[]);
    let t = s.wait_task_finished(task_id(&t), &[&a, &b]);
    assert_eq!(t["status"], "completed", "{t:#}");
    for n in ["lim-a", "lim-b"] {
        let d = dest(&t, n);
        assert_eq!(d["status"], "succeeded", "{t:#}");
        assert_eq!(d["transferred"], pkg["size"], "{t:#}");
    }
}

/// DESIGN: usage errors exit 2 with one clear line. A rate that is not a
/// rate is one, like any other bad flag value (`--at tomorrow`).
#[test]
fn bad_bandwidth_is_a_usage_error() {
    let c = Courier::new();
    let mut cmd = c.cmd();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--bandwidth", "fast"]);
    let o = run_bounded(cmd);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("For more information"))
        .collect();
    assert_eq!(lines.len(), 1, "one line expected: {err:?}");
    assert!(lines[0].contains("fast"), "{err}");
}

/// Issue: limits come from flags or the config file; a config file with a
/// key courier does not know is refused, naming the file and the key.
#[test]
fn config_file_with_an_unknown_key_is_refused() {
    let c = Courier::new();
    fs::create_dir_all(c.data()).unwrap();
    fs::write(
        c.data().join("courier.toml"),
        "[server]\nmax_transfer = 4\n",
    )
    .unwrap();
    let mut cmd = c.cmd();
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    let o = run_bounded(cmd);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.contains("courier.toml"), "{err}");
    assert!(err.contains("max_transfer"), "{err}");
    assert!(!c.data().join("server.json").exists());
}
