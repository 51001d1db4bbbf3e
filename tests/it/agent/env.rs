//! An install command gets the environment an admin expects, without the
//! agent's own settings and secrets.

use super::{Dest, script_package, wait_task};
use crate::procs::{Server, create_task, dest, task_id};

/// The enrolment token of a systemd agent lives in its environment
/// (`COURIER_TOKEN` from `agent.env`): an installer that logs its
/// environment must not leak it, nor any other `COURIER_*` setting.
#[test]
fn install_commands_do_not_see_the_agents_settings() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let d = Dest::enrolled(
        &s,
        &token,
        "env-01",
        &[
            ("COURIER_TOKEN", &token),
            ("COURIER_LOG", "info"),
            ("courier_extra", "lower-case-secret"),
            ("INSTALLER_HINT", "kept-for-the-installer"),
        ],
    );
    let pkg = script_package(&s, "env.sh", "env\necho end-of-env\n", "sh env.sh");
    let t = create_task(&s, &pkg, "env-01", &[]);
    let t = wait_task(&s, task_id(&t), &d, "the install to end", |t| {
        dest(t, "env-01")["status"] == "succeeded"
    });
    let out = dest(&t, "env-01")["output"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(out.contains("end-of-env"), "{t:#}");
    assert!(
        out.contains("INSTALLER_HINT=kept-for-the-installer"),
        "{out}"
    );
    assert!(out.contains("PATH="), "{out}");
    let secret = token.split('.').nth(1).expect("token secret");
    assert!(
        !out.contains(secret),
        "the token reached the installer:\n{out}"
    );
    for name in ["COURIER_TOKEN", "COURIER_LOG", "courier_extra"] {
        assert!(
            !out.lines().any(|l| l.starts_with(&format!("{name}="))),
            "{name} reached the installer:\n{out}"
        );
    }
}
