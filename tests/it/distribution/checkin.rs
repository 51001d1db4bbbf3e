//! More agents than the server holds long-polls for: the ones past the
//! pool are answered at once and check in again later, and still get their
//! work (docs/PERFORMANCE.md, scale).

use super::{add_package, marker_script, markers};
use crate::procs::{Agent, Server, create_task, dest, task_id};
use crate::support::make_zip;

#[test]
fn agents_past_the_held_polls_check_in_and_get_their_work() {
    let s = Server::start_with(&["--max-polls", "1", "--checkin-secs", "1"]);
    let (_, token) = s.token(true);
    let names = ["pool-01", "pool-02", "pool-03"];
    let agents: Vec<Agent> = names
        .iter()
        .map(|n| Agent::enrolled(&s, &token, n))
        .collect();
    let refs: Vec<&Agent> = agents.iter().collect();
    for n in names {
        s.wait_dest(n, "online", &refs);
    }

    let marks = tempfile::tempdir().unwrap();
    let zip = s.input("pool.zip");
    make_zip(
        &zip,
        &[
            ("setup/install.sh", marker_script(marks.path()).as_bytes()),
            ("setup/payload.txt", b"payload"),
        ],
    );
    let pkg = add_package(&s, &zip, &["--install-command", "sh setup/install.sh pool"]);
    let t = create_task(&s, &pkg, &names.join(","), &[]);
    let t = s.wait_task_finished(task_id(&t), &refs);
    for n in names {
        assert_eq!(dest(&t, n)["status"], "succeeded", "{t:#}");
    }
    assert_eq!(markers(marks.path()).len(), 3);
    // One poll is held; the other two agents were told to check in.
    let log = |a: &Agent| std::fs::read_to_string(a.data().join("agent.log")).unwrap_or_default();
    let checking_in = agents
        .iter()
        .filter(|a| log(a).contains("checking in every"))
        .count();
    assert!(
        checking_in >= 2,
        "{checking_in} agents checked in: {}",
        refs.iter()
            .map(|a| a.diagnostics())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
