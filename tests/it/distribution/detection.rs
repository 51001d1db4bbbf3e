//! Detection rules with real agents: what is really installed decides,
//! before the installer runs and after it, whatever its exit code says.
//! The "installed software" is a file in a temp dir of the test, and a
//! package database that a script on the agent's PATH reads.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::add_package;
use crate::procs::{Agent, DEADLINE, Server, create_task, dest, task_id, wait_until};

/// A package whose install command is `command`, detected by `rules`.
fn package(s: &Server, name: &str, command: &str, rules: &[String]) -> Value {
    let file = s.input(&format!("{name}.sh"));
    std::fs::write(&file, "echo installing\n").unwrap();
    let mut flags = vec!["--name", name, "--install-command", command];
    for r in rules {
        flags.extend(["--detect", r.as_str()]);
    }
    add_package(s, &file, &flags)
}

fn finished(s: &Server, t: &Value, agent: &Agent) -> Value {
    let t = s.wait_task_finished(task_id(t), &[agent]);
    dest(&t, "pc-1").clone()
}

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn detection_skips_what_is_installed_and_overrules_exit_codes() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let agent = Agent::enrolled(&s, &token, "pc-1");
    let b = Scratch::new();
    let (app, ran) = (b.path("app"), b.path("ran"));
    let rule = format!("file:{}", shown(&app));

    // Rules are shown as given, one line each; a bad one is refused with
    // one line naming it, and nothing is registered.
    std::fs::write(s.input("x.sh"), "true\n").unwrap();
    let bad = s.err(&[
        "package",
        "add",
        s.input("x.sh").to_str().unwrap(),
        "--install-command",
        "true",
        "--detect",
        "file:relative/app",
    ]);
    assert!(
        bad.contains("detection rule 'file:relative/app'") && bad.contains("absolute path"),
        "{bad}"
    );
    assert_eq!(bad.trim().lines().count(), 1, "{bad}");
    assert_eq!(
        s.json(&["package", "list", "--json"]),
        serde_json::json!([])
    );

    // Already installed: nothing is downloaded or run.
    std::fs::write(&app, "v1").unwrap();
    let touch_ran = format!("touch {} && touch {}", shown(&ran), shown(&app));
    let p = package(&s, "tool", &touch_ran, std::slice::from_ref(&rule));
    assert_eq!(p["detect"], serde_json::json!([rule]), "{p:#}");
    let d = finished(&s, &create_task(&s, &p, "pc-1", &[]), &agent);
    assert_eq!(d["status"], "succeeded", "{d:#}");
    assert_eq!(d["detection"], "already_done", "{d:#}");
    assert_eq!(d["message"], "already installed", "{d:#}");
    assert_eq!(d["transferred"], 0, "{d:#}");
    assert!(!ran.exists(), "the installer ran though it was installed");

    // --force runs it anyway, and detection verifies the result.
    let d = finished(&s, &create_task(&s, &p, "pc-1", &["--force"]), &agent);
    assert_eq!(d["status"], "succeeded", "{d:#}");
    assert_eq!(d["detection"], "verified", "{d:#}");
    assert!(ran.exists(), "--force did not run the installer");

    // Exit 0 but not there: failed, with the rule that did not hold.
    std::fs::remove_file(&app).unwrap();
    let liar = package(&s, "liar", "echo done", std::slice::from_ref(&rule));
    let d = finished(&s, &create_task(&s, &liar, "pc-1", &[]), &agent);
    assert_eq!(d["status"], "failed", "{d:#}");
    assert_eq!(d["exit_code"], 0, "{d:#}");
    assert_eq!(d["detection"], "not_done", "{d:#}");
    let m = d["message"].as_str().unwrap_or_default();
    assert!(
        m.starts_with("installer reported success but the software is not detected")
            && m.contains("does not exist"),
        "{d:#}"
    );

    // Exit 3 but there: succeeded, flagged.
    let grumpy = package(
        &s,
        "grumpy",
        &format!(
            "touch {}; echo 'error: cannot write the log' >&2; exit 3",
            shown(&app)
        ),
        std::slice::from_ref(&rule),
    );
    let d = finished(&s, &create_task(&s, &grumpy, "pc-1", &[]), &agent);
    assert_eq!(d["status"], "succeeded", "{d:#}");
    assert_eq!(d["exit_code"], 3, "{d:#}");
    assert_eq!(d["detection"], "done_despite_exit", "{d:#}");
    assert_eq!(d["message"], "detected despite exit 3", "{d:#}");

    // Triage shows both as causes of their own, whatever the output said.
    let groups = s.json(&["triage", "--json"]);
    let causes: Vec<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["cause"].as_str())
        .collect();
    assert!(
        causes.iter().any(|c| c
            .starts_with("exit 0 · installer reported success but the software is not detected")),
        "{groups:#}"
    );
    assert!(
        causes.contains(&"exit 3 · detected despite exit N"),
        "{groups:#}"
    );
    let text = s.ok(&["triage"]);
    assert!(
        text.contains("succeeded: detected despite its exit code"),
        "{text}"
    );
    drop(agent);
}

#[test]
fn an_uninstall_is_verified_by_detection() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let agent = Agent::enrolled(&s, &token, "pc-1");
    let b = Scratch::new();
    let app = b.path("app");
    let rule = format!("file:{}", shown(&app));
    let file = s.input("tool.sh");
    std::fs::write(&file, "true\n").unwrap();
    let keeps = add_package(
        &s,
        &file,
        &[
            "--name",
            "keeps",
            "--install-command",
            "true",
            "--uninstall-command",
            "echo removed",
            "--detect",
            &rule,
        ],
    );
    // Nothing to uninstall: skipped, with why.
    let d = finished(
        &s,
        &create_task(&s, &keeps, "pc-1", &["--uninstall"]),
        &agent,
    );
    assert_eq!(d["status"], "succeeded", "{d:#}");
    assert_eq!(d["detection"], "already_done", "{d:#}");
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("not installed: nothing to uninstall")),
        "{d:#}"
    );
    // An uninstaller that says it removed it but did not: failed.
    std::fs::write(&app, "v1").unwrap();
    let d = finished(
        &s,
        &create_task(&s, &keeps, "pc-1", &["--uninstall"]),
        &agent,
    );
    assert_eq!(d["status"], "failed", "{d:#}");
    assert_eq!(
        d["message"], "uninstaller reported success but the software is still detected",
        "{d:#}"
    );
    // One that does: verified.
    let edited = s.json(&[
        "package",
        "edit",
        &keeps["id"].to_string(),
        "--uninstall-command",
        &format!("rm {}", shown(&app)),
        "--json",
    ]);
    assert_eq!(edited["detect"], serde_json::json!([rule]), "{edited:#}");
    let d = finished(
        &s,
        &create_task(&s, &keeps, "pc-1", &["--uninstall"]),
        &agent,
    );
    assert_eq!(d["status"], "succeeded", "{d:#}");
    assert_eq!(d["detection"], "verified", "{d:#}");
    // `--detect ''` clears the rules: the exit code alone decides again.
    let cleared = s.json(&[
        "package",
        "edit",
        &keeps["id"].to_string(),
        "--detect",
        "",
        "--json",
    ]);
    assert_eq!(cleared["detect"], serde_json::json!([]), "{cleared:#}");
    drop(agent);
}

#[test]
fn package_database_rules_compare_versions() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let b = Scratch::new();
    let db = b.path("status");
    std::fs::write(&db, "ii \thello\t1.4-1\tTest Vendor\n").unwrap();
    let bin = b.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let query = bin.join("dpkg-query");
    std::fs::write(&query, "#!/bin/sh\ncat \"$FAKE_DPKG_DB\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&query, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [("PATH", path), ("FAKE_DPKG_DB", shown(&db))];
    let mut agent = Agent::enrol_with_env(&s.addr, &token, "pc-1", &env);
    agent.wait_enrolled();

    // 1.4 is older than the rule's 2.0: installed, and the upgrade checked.
    let upgrade = format!(
        "printf 'ii \\thello\\t2.0-1\\tTest Vendor\\n' > {}",
        shown(&db)
    );
    let p = package(&s, "hello", &upgrade, &["dpkg:hello>=2.0".into()]);
    let d = finished(&s, &create_task(&s, &p, "pc-1", &[]), &agent);
    assert_eq!(d["status"], "succeeded", "{d:#}");
    assert_eq!(d["detection"], "verified", "{d:#}");
    assert!(std::fs::read_to_string(&db).unwrap().contains("2.0-1"));
    // Now its inventory lists 2.0: the pre-flight knows there is nothing
    // to do, and task create refuses.
    wait_until(
        DEADLINE,
        "the inventory to list hello 2.0-1",
        || {
            let d = s.json(&["dest", "show", "pc-1", "--json"]);
            d["software"]
                .as_array()?
                .iter()
                .any(|p| p["name"] == "hello" && p["version"] == "2.0-1" && p["source"] == "dpkg")
                .then_some(())
        },
        || agent.diagnostics(),
    );
    let e = s.err(&[
        "task",
        "create",
        "--package",
        &p["id"].to_string(),
        "--to",
        "pc-1",
    ]);
    assert!(
        e.contains("nothing would run: 0 will install, 1 already installed"),
        "{e}"
    );

    // An upgrade that leaves the old version: failed, saying which. (The
    // server's copy of the inventory may still say 2.0: forced.)
    std::fs::write(&db, "ii \thello\t1.4-1\tTest Vendor\n").unwrap();
    let noop = package(&s, "noop", "true", &["dpkg:hello>=2.0".into()]);
    let d = finished(&s, &create_task(&s, &noop, "pc-1", &["--force"]), &agent);
    assert_eq!(d["status"], "failed", "{d:#}");
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.contains("hello 1.4-1 is older than 2.0")),
        "{d:#}"
    );
    drop(agent);
}
