//! Watching an installation: the output of a command that is still
//! running reaches `task show` while it runs, and the final output
//! replaces it when the attempt ends.

use super::add_package;
use crate::procs::{Agent, Server, create_task, dest, task_id};
use crate::support::make_zip;

#[test]
fn output_of_a_running_install_shows_before_it_ends() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "live-01");

    // The script says one thing, then waits until the test lets it go:
    // whatever the machine's load, it is still running when checked.
    let gate = tempfile::tempdir().unwrap();
    let release = gate.path().join("release");
    let script = format!(
        "#!/bin/sh\necho 'unpacking files'\nwhile [ ! -f '{}' ]; do sleep 0.2; done\necho 'all done'\n",
        release.display()
    );
    let zip = s.input("live.zip");
    make_zip(&zip, &[("install.sh", script.as_bytes())]);
    let pkg = add_package(&s, &zip, &["--install-command", "sh install.sh"]);
    let t = create_task(&s, &pkg, "live-01", &[]);
    let id = task_id(&t);

    let t = s.wait_task(id, &[&a], "the first line while installing", |t| {
        let d = dest(t, "live-01");
        d["status"] == "installing"
            && d["output"]
                .as_str()
                .is_some_and(|o| o.contains("unpacking files"))
    });
    let d = dest(&t, "live-01");
    let out = d["output"].as_str().unwrap();
    assert!(!out.contains("all done"), "{t:#}");
    assert!(d["started_at"].is_string(), "{t:#}");
    assert!(d["elapsed_secs"].as_i64().is_some_and(|e| e >= 0), "{t:#}");

    std::fs::write(&release, "").unwrap();
    let t = s.wait_task_finished(id, &[&a]);
    let d = dest(&t, "live-01");
    assert_eq!(d["status"], "succeeded", "{t:#}");
    assert_eq!(d["output"], "unpacking files\nall done\n", "{t:#}");
    assert!(d["elapsed_secs"].as_i64().is_some(), "{t:#}");
}
