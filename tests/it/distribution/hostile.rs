//! Hostile peers on the agent listener: strangers without a certificate,
//! slow senders and readers, refused enrolments by the hundred, agents
//! that were never approved (docs/SECURITY.md, "Limits").

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{add_package, marker_script};
use crate::procs::{Agent, Server, create_task, dest, task_id};
use crate::support::make_zip;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The CA fingerprint a token carries (what an enrolling agent pins).
fn pin(token: &str) -> String {
    token.rsplit('.').next().unwrap().to_string()
}

/// A TLS connection to the listener without a client certificate.
async fn stranger(addr: &str, fingerprint: &str) -> TlsStream<TcpStream> {
    let config = courier::pki::enrol_client_config(fingerprint).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("courier").unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// TLS with the identity an agent saved in `dir`.
fn identity(dir: &std::path::Path) -> rustls::ClientConfig {
    let id: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("identity.json")).unwrap()).unwrap();
    let key = std::fs::read_to_string(dir.join("key.pem")).unwrap();
    courier::pki::agent_client_config(
        id["ca_pem"].as_str().unwrap(),
        id["cert_pem"].as_str().unwrap(),
        &key,
    )
    .unwrap()
}

/// An HTTP client with the identity an agent saved in `dir`.
fn as_agent(dir: &std::path::Path) -> reqwest::Client {
    let config = identity(dir);
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Whether the server closed `c` within `wait` (EOF or an error on read).
async fn closed_within(c: &mut TlsStream<TcpStream>, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(wait, c.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// A stranger sending a request's headers and then its body a byte at a
/// time is cut off (408), instead of holding the connection for ever.
#[test]
fn a_body_sent_a_byte_at_a_time_is_cut_off() {
    let s = Server::start();
    let (_, token) = s.token(false);
    runtime().block_on(async {
        let mut c = stranger(&s.addr, &pin(&token)).await;
        c.write_all(
            b"POST /v1/enroll HTTP/1.1\r\nhost: courier\r\ncontent-type: application/json\r\ncontent-length: 4000\r\n\r\n{",
        )
        .await
        .unwrap();
        let start = Instant::now();
        let mut answer = Vec::new();
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "still open after a minute of a byte every 2 s"
            );
            if c.write_all(b" ").await.is_err() {
                break;
            }
            let mut buf = [0u8; 1024];
            match tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        let took = start.elapsed();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(took >= Duration::from_secs(15), "{took:?}");
    });
}

/// Connections without a certificate are few per address; an enrolled
/// agent is not held up by a stranger holding many.
#[test]
fn strangers_hold_few_connections_and_agents_still_work() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let agent = Agent::enrolled(&s, &token, "pc-1");
    let marks = tempfile::tempdir().unwrap();
    let zip = s.input("app.zip");
    make_zip(
        &zip,
        &[
            ("setup/install.sh", marker_script(marks.path()).as_bytes()),
            ("setup/payload.txt", b"payload"),
        ],
    );
    let pkg = add_package(&s, &zip, &["--install-command", "sh setup/install.sh x"]);
    let rt = runtime();
    let (held, closed) = rt.block_on(async {
        // All of them first (well within the 30 s an idle connection is
        // kept), then which the server closed.
        let mut all = Vec::new();
        for _ in 0..160 {
            all.push(stranger(&s.addr, &pin(&token)).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut held = Vec::new();
        let mut closed = 0;
        for mut c in all {
            if closed_within(&mut c, Duration::from_millis(20)).await {
                closed += 1;
            } else {
                held.push(c);
            }
        }
        (held, closed)
    });
    assert_eq!((held.len(), closed), (128, 32), "128 per address are kept");
    let t = create_task(&s, &pkg, "pc-1", &[]);
    let done = s.wait_task_finished(task_id(&t), &[&agent]);
    assert_eq!(dest(&done, "pc-1")["status"], "succeeded", "{done:#}");
    drop(held);
}

/// Dozens of refused enrolments with 200 kB names and escape
/// sequences: the log gets five bounded events, the address is turned
/// away after 20 in a minute, and `courier log` shows no escape.
#[test]
fn refused_enrolments_cannot_flood_the_log_or_the_terminal() {
    let s = Server::start();
    let (_, token) = s.token(false);
    let wrong = format!("ct1.{}.{}", "0123456789abcdef".repeat(2), pin(&token));
    let config = courier::pki::enrol_client_config(&pin(&token)).unwrap();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap();
    let name = format!("evil\u{1b}]0;owned\u{7}\u{1b}[2J{}", "x".repeat(200_000));
    let codes: Vec<u16> = runtime().block_on(async {
        let mut codes = Vec::new();
        for _ in 0..60 {
            let body = serde_json::json!({
                "token": wrong, "name": name, "csr_pem": "",
                "info": {"os": "linux", "hostname": "h", "agent_version": "1"},
            });
            let r = client
                .post(format!("https://{}/v1/enroll", s.addr))
                .json(&body)
                .send()
                .await
                .unwrap();
            codes.push(r.status().as_u16());
        }
        codes
    });
    assert!(codes[..20].iter().all(|c| *c == 403), "{codes:?}");
    assert!(codes[20..].iter().all(|c| *c == 429), "{codes:?}");
    let refused: Vec<Value> = s
        .events()
        .into_iter()
        .filter(|e| e["kind"] == "agent.refused")
        .collect();
    assert_eq!(
        refused.len(),
        5,
        "the first five of the minute: {refused:#?}"
    );
    for e in &refused {
        let line = e.to_string();
        assert!(line.len() < 1000, "{line}");
    }
    let log = s.ok(&["log"]);
    assert!(!log.contains('\u{1b}'), "{log:?}");
    assert!(log.contains("invalid name"), "{log}");
}

/// An agent enrolled but never approved, or rejected, cannot report an
/// outcome for its destination; rejecting it ends its work.
#[test]
fn unapproved_agents_cannot_report_outcomes() {
    let s = Server::start();
    let (_, token) = s.token(false);
    let mut agent = Agent::enrolled(&s, &token, "pc-1");
    let zip = s.input("pkg.zip");
    make_zip(&zip, &[("a.txt", b"a")]);
    let pkg = add_package(&s, &zip, &["--kind", "file", "--folder", "/tmp/x"]);
    let t = create_task(&s, &pkg, "pc-1", &[]);
    let id = task_id(&t);
    agent.stop();
    let client = as_agent(&agent.data());
    let report = serde_json::json!({
        "task_id": id, "attempt": 1, "status": "succeeded", "exit_code": 0,
        "message": "forged", "output": null, "transferred": 0,
    });
    let send = || {
        runtime().block_on(async {
            client
                .post(format!("https://{}/v1/report", s.addr))
                .json(&report)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    assert_eq!(send(), 403, "pending");
    s.ok(&["dest", "reject", "pc-1"]);
    assert_eq!(send(), 403, "rejected");
    // Rejected, its work ends cancelled and the task can complete.
    let t: Value = s.json(&["task", "show", &id.to_string(), "--json"]);
    assert_eq!(dest(&t, "pc-1")["status"], "cancelled", "{t:#}");
    assert_eq!(t["status"], "completed", "{t:#}");
}

/// An agent that asks for content and then reads nothing loses its
/// transfer slot after a while: with one slot, an honest agent waiting
/// behind it gets its package.
#[test]
fn a_peer_that_stops_reading_gives_its_transfer_slot_back() {
    let s = Server::start_with(&["--max-transfers", "1"]);
    let (_, token) = s.token(true);
    let mut slow = Agent::enrolled(&s, &token, "pc-slow");
    let honest = Agent::enrolled(&s, &token, "pc-1");
    slow.stop();
    let big = s.input("big.img");
    crate::support::sparse(&big, 256 << 20);
    let folder = s.input("out");
    let pkg = add_package(
        &s,
        &big,
        &["--kind", "file", "--folder", folder.to_str().unwrap()],
    );
    let hash = pkg["hash"].as_str().unwrap().to_string();
    create_task(&s, &pkg, "pc-slow", &[]);
    let rt = runtime();
    // The stalled transfer takes the one slot: it asks, and never reads.
    let _stalled = rt.block_on(async {
        let tcp = TcpStream::connect(&s.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut c = TlsConnector::from(Arc::new(identity(&slow.data())))
            .connect(name, tcp)
            .await
            .unwrap();
        let req = format!("GET /v1/content/{hash} HTTP/1.1\r\nhost: courier\r\n\r\n");
        c.write_all(req.as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        c.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200", "the stalled transfer started");
        c
    });
    let start = Instant::now();
    let t = create_task(&s, &pkg, "pc-1", &[]);
    let done = s.wait_task_finished(task_id(&t), &[&honest]);
    assert_eq!(dest(&done, "pc-1")["status"], "succeeded", "{done:#}");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(60), "{took:?}");
}

/// A request line past the admin socket's limit is answered with one
/// error and the connection closed, without the server reading (and
/// holding) the rest; the server answers the next client.
#[cfg(unix)]
#[test]
fn an_endless_admin_line_is_cut_off() {
    use std::io::{BufRead, Write};
    let s = Server::start();
    let sock = std::os::unix::net::UnixStream::connect(s.data().join("admin.sock")).unwrap();
    let mut w = sock.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..32 {
            if w.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut reply = String::new();
    std::io::BufReader::new(sock).read_line(&mut reply).unwrap();
    assert!(reply.contains("longer than 16 MiB"), "{reply}");
    writer.join().unwrap();
    assert!(s.ok(&["status"]).contains("destinations"));
}

/// One destination of a task is shown by name, with its output: what
/// `task show` leaves out past 200 destinations (16 KiB each).
#[test]
fn one_destination_of_a_task_is_shown_by_name() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let mut agent = Agent::enrolled(&s, &token, "pc-1");
    agent.stop();
    let zip = s.input("pkg.zip");
    make_zip(&zip, &[("a.txt", b"a")]);
    let pkg = add_package(&s, &zip, &["--kind", "file", "--folder", "/tmp/x"]);
    let t = create_task(&s, &pkg, "pc-1", &[]);
    let id = task_id(&t).to_string();
    let one: Value = s.json(&["task", "show", &id, "--dest", "pc-1", "--json"]);
    assert_eq!(one["name"], "pc-1");
    assert_eq!(one["status"], "waiting");
    let text = s.ok(&["task", "show", &id, "--dest", "pc-1"]);
    assert!(text.starts_with("destination pc-1: waiting"), "{text}");
    let err = s.err(&["task", "show", &id, "--dest", "nobody"]);
    assert!(err.contains("nobody"), "{err}");
}

/// Registering a big package copies and hashes it beside the server's
/// writer: an admin's change (and any agent's report) is answered
/// meanwhile, not after the copy.
#[test]
fn registering_a_big_package_holds_nobody_up() {
    let s = Server::start();
    let big = s.input("big.img");
    crate::support::sparse(&big, 1 << 30);
    let mut add = s.cmd();
    add.args(["package", "add", big.to_str().unwrap(), "--kind", "file"]);
    add.args(["--folder", "/srv/x"]);
    let start = Instant::now();
    let mut adding = add.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (_, token) = s.token(false);
    let answered = start.elapsed();
    assert!(token.starts_with("ct1."));
    let status = adding.wait().unwrap();
    let whole = start.elapsed();
    assert!(status.success());
    assert!(
        answered < whole / 2,
        "a token took {answered:?} while a registration took {whole:?}"
    );
}

/// Without a certificate, a request other than enrolment is refused
/// before its body is read: announcing a megabyte and sending nothing
/// gets 401 at once.
#[test]
fn a_stranger_is_refused_before_its_body_is_read() {
    let s = Server::start();
    let (_, token) = s.token(false);
    runtime().block_on(async {
        let mut c = stranger(&s.addr, &pin(&token)).await;
        c.write_all(
            b"POST /v1/report HTTP/1.1\r\nhost: courier\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n",
        )
        .await
        .unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut head))
            .await
            .expect("an answer within 5 s, without the body")
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 401");
    });
}
