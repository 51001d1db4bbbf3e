//! The listener over real TLS on loopback, with the server's clock in the
//! test's hands: expired client certificates, and sessions resumed after
//! the certificate they carry has expired.

use std::sync::Arc;

use rustls::HandshakeKind;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::super::{Core, limits};
use crate::clock::Clock;
use crate::datadir::DataDir;
use crate::pki::{self, ServerPki};
use crate::proto::{AgentInfo, EnrollRequest, Report, ReportStatus};

const YEAR: i64 = 365 * 86_400;

struct Listener {
    _dir: tempfile::TempDir,
    core: Arc<Core>,
    clock: Clock,
    addr: std::net::SocketAddr,
    token: String,
    ca_pem: String,
    _stop: tokio::sync::watch::Sender<bool>,
}

/// A server core and its listener on loopback, on a manual clock set to
/// the real time (the client judges the server's certificate by that).
async fn listener() -> Listener {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::open(dir.path().join("data")).unwrap();
    let clock = Clock::manual(jiff::Timestamp::now().as_second());
    let mut svc = crate::service::Service::open(data, clock.clone()).unwrap();
    let tls = svc.pki().unwrap().server_config(clock.clone()).unwrap();
    let ca_pem = svc.pki().unwrap().ca_pem().to_string();
    let token = svc.create_token(None, true).unwrap().token.unwrap();
    let core = Core::new(
        svc,
        limits::Limits::new(None, None),
        limits::Connections::new(None, 30),
    )
    .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(super::serve(tcp, Arc::new(tls), core.clone(), stop_rx));
    Listener {
        _dir: dir,
        core,
        clock,
        addr,
        token,
        ca_pem,
        _stop: stop,
    }
}

/// An agent's CA, certificate and key.
struct Enrolled {
    ca: String,
    cert: String,
    key: String,
}

impl Enrolled {
    /// TLS as this agent, with a session store of its own (empty).
    fn tls(&self) -> Arc<rustls::ClientConfig> {
        Arc::new(pki::agent_client_config(&self.ca, &self.cert, &self.key).unwrap())
    }
}

impl Listener {
    /// Enrols `name` at the server's current time.
    async fn enrol(&self, name: &str) -> Enrolled {
        let (key, csr_pem) = pki::agent_key_and_csr(name).unwrap();
        let req = EnrollRequest {
            token: self.token.clone(),
            name: name.to_string(),
            csr_pem,
            info: AgentInfo::default(),
        };
        let r = self.core.call(move |svc| svc.enroll(req)).await.unwrap();
        Enrolled {
            ca: r.ca_pem,
            cert: r.cert_pem,
            key,
        }
    }
}

/// What one request on a new connection got.
#[derive(Debug)]
struct Answer {
    /// The HTTP status and body, or why there was none.
    got: Result<(u16, String), String>,
    resumed: bool,
}

/// Sends a report of an attempt that does not exist (answered 204 once
/// the agent is accepted: reports for unknown work change nothing) on a
/// new connection with `tls`, reusing its session if it holds one.
async fn report(addr: std::net::SocketAddr, tls: &Arc<rustls::ClientConfig>) -> Answer {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(pki::SERVER_NAME).unwrap();
    let mut c = match TlsConnector::from(tls.clone()).connect(name, tcp).await {
        Ok(c) => c,
        Err(e) => {
            return Answer {
                got: Err(e.to_string()),
                resumed: false,
            };
        }
    };
    let resumed = c.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
    let body = serde_json::to_string(&Report {
        task_id: 999_999,
        attempt: 1,
        status: ReportStatus::Failed,
        exit_code: None,
        message: None,
        output: None,
        transferred: 0,
        retry: false,
        reboot_required: false,
        detection: None,
        log: None,
    })
    .unwrap();
    let req = format!(
        "POST /v1/report HTTP/1.1\r\nhost: courier\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut buf = Vec::new();
    let mut failed = c
        .write_all(req.as_bytes())
        .await
        .err()
        .map(|e| e.to_string());
    if failed.is_none() {
        failed = c.read_to_end(&mut buf).await.err().map(|e| e.to_string());
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    // An answer counts even if the close after it was not a clean one.
    let got = match text.strip_prefix("HTTP/1.1 ") {
        Some(rest) => Ok((
            rest[..3].parse().unwrap(),
            rest.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
        )),
        None => Err(failed.unwrap_or_else(|| format!("no answer: {text:?}"))),
    };
    Answer { got, resumed }
}

/// A client certificate signed by the server's own CA but expired is
/// refused at the handshake, as one from another CA is: no answer at all,
/// whatever it belongs to. The server goes on serving the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_client_certificate_is_refused_like_a_strangers() {
    let l = listener().await;
    let good = l.enrol("pc-ok").await.tls();
    assert_eq!(report(l.addr, &good).await.got.unwrap().0, 204);

    // Enrolled two years ago: its certificate ended a year ago.
    l.clock.advance(-2 * YEAR);
    let old = l.enrol("pc-old").await.tls();
    l.clock.advance(2 * YEAR);
    let expired = report(l.addr, &old).await;
    let why = expired
        .got
        .expect_err("an expired certificate was answered");
    assert!(why.contains("CertificateExpired"), "{why}");

    // A certificate the server never signed (another server's CA).
    let other = tempfile::tempdir().unwrap();
    let foreign = ServerPki::load_or_create(other.path(), l.clock.now()).unwrap();
    let (key, csr) = pki::agent_key_and_csr("pc-x").unwrap();
    let cert = foreign.sign_agent(&csr, "pc-x", l.clock.now()).unwrap();
    let stranger = Enrolled {
        ca: l.ca_pem.clone(),
        cert: cert.cert_pem,
        key,
    }
    .tls();
    let unknown = report(l.addr, &stranger).await;
    let why = unknown.got.expect_err("a foreign certificate was answered");
    assert!(why.contains("received fatal alert"), "{why}");

    assert_eq!(report(l.addr, &good).await.got.unwrap().0, 204);
}

/// A session resumed from a ticket skips the certificate check of the
/// handshake: once the certificate it carries has expired, the listener
/// refuses its requests all the same, and a new handshake fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumed_after_its_certificate_expired_is_refused() {
    let l = listener().await;
    let agent = l.enrol("pc-1").await;
    let tls = agent.tls();
    let first = report(l.addr, &tls).await;
    assert_eq!(first.got.unwrap().0, 204);
    let again = report(l.addr, &tls).await;
    assert!(again.resumed, "the second connection did not resume");
    assert_eq!(again.got.unwrap().0, 204);

    l.clock.advance(YEAR + 86_400);
    let late = report(l.addr, &tls).await;
    assert!(late.resumed, "the late connection did not resume: {late:?}");
    let (status, body) = late.got.unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("certificate expired"), "{body}");

    // Without the session: refused at the handshake, which an agent's
    // client tells from a server it cannot reach.
    let fresh = report(l.addr, &agent.tls()).await;
    assert!(!fresh.resumed);
    let why = fresh.got.expect_err("an expired certificate was answered");
    assert!(why.contains("CertificateExpired"), "{why}");
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(agent.tls().as_ref().clone())
        .build()
        .unwrap();
    let e = client
        .post(format!("https://{}/v1/report", l.addr))
        .body("{}")
        .send()
        .await
        .expect_err("an expired certificate was answered");
    assert!(pki::refused_as_expired(&e), "{e:?}");
    let down = client
        .post("https://127.0.0.1:1/v1/report")
        .send()
        .await
        .unwrap_err();
    assert!(!pki::refused_as_expired(&down), "{down:?}");
    // An agent enrolled now is served.
    let now = l.enrol("pc-2").await.tls();
    assert_eq!(report(l.addr, &now).await.got.unwrap().0, 204);
}
