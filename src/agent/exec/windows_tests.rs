//! The command runner on Windows, run under Wine by `tests/it/wine.rs`
//! (the library's unit tests built for Windows).

use super::*;

fn spec<'a>(command: &'a str, cwd: &'a Path, timeout: Duration) -> RunSpec<'a> {
    RunSpec {
        command,
        cwd,
        timeout,
        tail_bytes: 4096,
        live: None,
        on_start: None,
    }
}

#[tokio::test]
async fn exit_codes_and_output_come_through_cmd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(spec(
        "echo hello& exit /b 1603",
        dir.path(),
        Duration::from_secs(30),
    ))
    .await
    .expect("run");
    assert_eq!(out.exit_code, Some(1603));
    assert!(out.output.contains("hello"), "{:?}", out.output);
}

#[tokio::test]
async fn quoted_paths_with_spaces_run_as_typed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("my setup");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("run me.cmd"), "@echo args=%1 %2\r\n@exit /b 7\r\n").unwrap();
    let out = run(spec(
        "\"my setup\\run me.cmd\" \"first arg\" second",
        dir.path(),
        Duration::from_secs(30),
    ))
    .await
    .expect("run");
    assert_eq!(out.exit_code, Some(7), "{:?}", out.output);
    assert!(
        out.output.contains("args=\"first arg\" second"),
        "{:?}",
        out.output
    );
}

#[tokio::test]
async fn a_timeout_ends_the_command_and_what_it_started() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("child.cmd"),
        "@echo off\r\n:loop\r\necho tick>>ticks.txt\r\nping -n 2 127.0.0.1 >nul\r\ngoto loop\r\n",
    )
    .unwrap();
    let out = run(spec(
        "start \"\" /b cmd /c child.cmd & ping -n 60 127.0.0.1 >nul",
        dir.path(),
        Duration::from_secs(4),
    ))
    .await
    .expect("run");
    assert!(out.timed_out);
    assert_eq!(out.exit_code, None);
    let ticks = || {
        std::fs::metadata(dir.path().join("ticks.txt"))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    assert!(ticks() > 0, "the child never ran");
    // The kill is asynchronous: a loaded machine gets a moment.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = ticks();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ticks(), after, "the child outlived the timeout");
}
