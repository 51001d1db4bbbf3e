//! Certificate renewal with a real server and agent: the agent renews
//! when its certificate has a third of its life left (its clock moved on
//! through `COURIER_CLOCK_FILE`), a renewal the agent never saved locks
//! nobody out, and an agent the server no longer accepts cannot renew.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{Dest, script_package, wait_task};
use crate::procs::{DEADLINE, Server, create_task, dest, task_id, wait_until};

const DAY: i64 = 86_400;

/// The key and identity an agent keeps in its data dir, as text.
#[derive(Clone)]
struct Identity {
    json: Value,
    key: String,
}

impl Identity {
    fn of(data: &Path) -> Identity {
        let text = fs::read_to_string(data.join("identity.json")).unwrap();
        Identity {
            json: serde_json::from_str(&text).unwrap(),
            key: fs::read_to_string(data.join("key.pem")).unwrap(),
        }
    }

    fn cert(&self) -> &str {
        self.json["cert_pem"].as_str().unwrap()
    }

    fn fingerprint(&self) -> String {
        courier::pki::fingerprint_pem(self.cert()).unwrap()
    }

    /// POST `path` with `body` as this agent; (status, body).
    fn post(&self, addr: &str, path: &str, body: &Value) -> (u16, Value) {
        let tls = courier::pki::agent_client_config(
            self.json["ca_pem"].as_str().unwrap(),
            self.cert(),
            &self.key,
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let r = client
                .post(format!("https://{addr}{path}"))
                .json(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        })
    }

    /// Asks for a new certificate for a new key, as the agent does: the
    /// answer, and the identity it makes when it is a certificate.
    fn renew(&self, addr: &str) -> (u16, Value, Option<Identity>) {
        let (key, csr) = courier::pki::agent_key_and_csr("whatever").unwrap();
        let (status, answer) = self.post(addr, "/v1/renew", &serde_json::json!({ "csr_pem": csr }));
        let new = answer["cert_pem"].as_str().map(|cert| {
            let mut json = self.json.clone();
            json["cert_pem"] = cert.into();
            Identity { json, key }
        });
        (status, answer, new)
    }

    /// A report of an attempt that does not exist: 204 for an agent the
    /// server accepts (it changes nothing), 403 for one it does not.
    fn report(&self, addr: &str) -> u16 {
        let r = serde_json::json!({"task_id": 999_999, "attempt": 1, "status": "failed",
            "exit_code": null, "message": null, "output": null, "transferred": 0});
        self.post(addr, "/v1/report", &r).0
    }
}

/// The certificates the server's store holds for `name`: (current, the
/// one it replaced while still accepted).
fn stored(s: &Server, name: &str) -> (String, Option<String>) {
    let db = rusqlite::Connection::open_with_flags(
        s.data().join("courier.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row(
        "SELECT cert_fingerprint, prev_fingerprint FROM destinations WHERE name = ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn renewals(s: &Server, name: &str) -> usize {
    let subject = format!("destination {name}");
    s.events()
        .iter()
        .filter(|e| e["kind"] == "agent.renewed" && e["subject"] == subject.as_str())
        .count()
}

/// Runs a task that succeeds on `d` and waits for it.
fn install(s: &Server, d: &Dest, file: &str) {
    let pkg = script_package(s, file, "exit 0\n", &format!("sh {file}"));
    let id = task_id(&create_task(s, &pkg, &d.name, &[]));
    wait_task(s, id, d, "the install to succeed", |t| {
        dest(t, &d.name)["status"] == "succeeded"
    });
}

#[test]
fn an_agent_renews_its_certificate_and_a_lost_renewal_locks_nobody_out() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("offset");
    fs::write(&clock, "0").unwrap();
    let env = [("COURIER_CLOCK_FILE", clock.to_str().unwrap())];
    let mut d = Dest::enrolled(&s, &token, "pc-renew", &env);
    let first = Identity::of(&d.data());
    assert_eq!(stored(&s, "pc-renew"), (first.fingerprint(), None));
    let shown = s.json(&["dest", "show", "pc-renew", "--json"]);
    let v = courier::pki::Validity::of_pem(first.cert()).unwrap();
    assert_eq!(
        shown["cert_expires_at"],
        courier::clock::rfc3339(v.not_after)
    );
    assert_eq!(v.not_after - v.not_before, 365 * DAY + 3600);

    // Killed between the server signing and the agent saving: the server
    // has a new certificate for it, the agent still the old one.
    d.kill();
    let (status, answer, lost) = first.renew(&s.addr);
    assert_eq!(status, 200, "{answer}");
    let lost = lost.unwrap();
    assert_eq!(
        stored(&s, "pc-renew"),
        (lost.fingerprint(), Some(first.fingerprint()))
    );
    d.restart();
    install(&s, &d, "before.sh");
    assert_eq!(Identity::of(&d.data()).fingerprint(), first.fingerprint());

    // 250 days on by the agent's clock, 115 of its 365 are left: it
    // renews as it starts, and goes on with the new certificate.
    d.kill();
    fs::write(&clock, (250 * DAY).to_string()).unwrap();
    d.restart();
    let renewed = wait_until(
        DEADLINE,
        "the agent to renew its certificate",
        || {
            let id = Identity::of(&d.data());
            (id.fingerprint() != first.fingerprint()).then_some(id)
        },
        || d.diagnostics(),
    );
    assert!(
        d.log().contains("certificate renewed, valid until"),
        "{}",
        d.diagnostics()
    );
    assert!(!d.data().join("renewed.json").exists());
    // The server holds it, with the certificate it asked with.
    assert_eq!(
        stored(&s, "pc-renew"),
        (renewed.fingerprint(), Some(first.fingerprint()))
    );
    assert_eq!(renewals(&s, "pc-renew"), 2);
    let v = courier::pki::Validity::of_pem(renewed.cert()).unwrap();
    let shown = s.json(&["dest", "show", "pc-renew", "--json"]);
    assert_eq!(
        shown["cert_expires_at"],
        courier::clock::rfc3339(v.not_after)
    );
    install(&s, &d, "after.sh");
    assert_eq!(Identity::of(&d.data()).fingerprint(), renewed.fingerprint());

    // The renewal that was lost is nobody's; the certificate it replaced
    // works until it expires, or until the next renewal.
    assert_eq!(lost.report(&s.addr), 403);
    assert_eq!(first.report(&s.addr), 204);
    let (status, answer, _) = renewed.renew(&s.addr);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(first.report(&s.addr), 403);
    assert_eq!(first.renew(&s.addr).0, 403);
    assert_eq!(renewed.report(&s.addr), 204);
}

/// Renewal is for agents the server accepts: a pending one renews; a
/// rejected one gets the answer a removed one (an unknown certificate)
/// gets, and nothing changes.
#[test]
fn a_rejected_agent_cannot_renew() {
    let s = Server::start();
    let (_, manual) = s.token(false);
    let mut rejected = Dest::enrolled(&s, &manual, "pc-rejected", &[]);
    let mut removed = Dest::enrolled(&s, &manual, "pc-removed", &[]);
    rejected.kill();
    removed.kill();
    let (rej, rem) = (
        Identity::of(&rejected.data()),
        Identity::of(&removed.data()),
    );

    let (status, body, _) = rej.renew(&s.addr);
    assert_eq!(status, 200, "a pending agent renews: {body}");
    let pending_renewed = stored(&s, "pc-rejected");
    assert_eq!(pending_renewed.1, Some(rej.fingerprint()));

    s.ok(&["dest", "reject", "pc-rejected"]);
    s.ok(&["dest", "rm", "pc-removed"]);
    let (status, refused, _) = rej.renew(&s.addr);
    let (unknown_status, unknown, _) = rem.renew(&s.addr);
    assert_eq!((status, unknown_status), (403, 403));
    assert_eq!(refused, unknown);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("not known to the server"),
        "{refused}"
    );
    assert_eq!(stored(&s, "pc-rejected"), pending_renewed);
    assert_eq!(renewals(&s, "pc-rejected"), 1);
}

/// The time of the server's clock, read through the expiry of a token.
fn server_time(s: &Server) -> i64 {
    let t = s.json(&["token", "create", "--ttl", "1h", "--json"]);
    let at: jiff::Timestamp = t["expires_at"].as_str().unwrap().parse().unwrap();
    at.as_second() - 3600
}

/// An agent whose certificate expired (it was enrolled a year ago by the
/// server's clock, and never renewed) is turned away with one line saying
/// to enrol again, instead of retrying for ever.
#[test]
fn an_agent_whose_certificate_expired_is_told_to_enrol_again() {
    let clock_dir = tempfile::tempdir().unwrap();
    let server_clock = clock_dir.path().join("server");
    let agent_clock = clock_dir.path().join("agent");
    fs::write(&server_clock, "0").unwrap();
    // The agent lives a year back: to it, its certificate is new.
    fs::write(&agent_clock, (-365 * DAY).to_string()).unwrap();
    let s = Server::start_with_env(
        &[],
        &[("COURIER_CLOCK_FILE", server_clock.to_str().unwrap())],
    );
    let (_, token) = s.token(true);
    // A year (less 20 s) back on the server's clock, the agent enrols:
    // its certificate ends 20 s from now.
    let back = 365 * DAY - 20;
    fs::write(&server_clock, (-back).to_string()).unwrap();
    let now = jiff::Timestamp::now().as_second();
    wait_until(
        DEADLINE,
        "the server's clock to go back",
        || (server_time(&s) < now - DAY).then_some(()),
        String::new,
    );
    let mut d = Dest::enrolled(
        &s,
        &token,
        "pc-late",
        &[("COURIER_CLOCK_FILE", agent_clock.to_str().unwrap())],
    );
    fs::write(&server_clock, "0").unwrap();
    let cert = Identity::of(&d.data());
    let end = courier::pki::Validity::of_pem(cert.cert())
        .unwrap()
        .not_after;
    assert!(end <= jiff::Timestamp::now().as_second() + 20, "{end}");
    assert!(!d.log().contains("certificate renewed"), "{}", d.log());
    // Once it has ended, work for the agent wakes its poll.
    while jiff::Timestamp::now().as_second() <= end + 1 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let pkg = script_package(&s, "late.sh", "exit 0\n", "sh late.sh");
    create_task(&s, &pkg, "pc-late", &[]);
    let (status, stderr) = d.wait_exit();
    assert_eq!(status.code(), Some(1), "{stderr}");
    // After the line of its enrolment, one line.
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[1].starts_with("courier: ")
            && lines[1].contains("certificate expired")
            && lines[1].contains("enrol again"),
        "{stderr}"
    );
}
