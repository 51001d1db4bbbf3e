//! The agent listener: HTTPS with mutual TLS. An agent is known by the
//! fingerprint of its client certificate; enrolment is the one endpoint
//! reachable without one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::{Core, guard};
use crate::clock::UnixTime;
use crate::model::DestinationId;
use crate::pki::{Validity, fingerprint};
use crate::proto::{EnrollRequest, ErrorBody, POLL_WAIT_SECS, PollRequest, RenewRequest, Report};
use crate::service::Service;
use crate::task::DestStatus;

/// Who is on the other end of a connection.
#[derive(Clone, Debug)]
struct Peer {
    /// Fingerprint of the client certificate, if one was presented.
    fingerprint: Option<String>,
    /// When that certificate expires. TLS checked it at the handshake, but
    /// a connection outlives that and a resumed session is not checked
    /// again (its ticket carries the certificate): every request is.
    expires: UnixTime,
    addr: SocketAddr,
}

/// An error for the agent: status and one line.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A condition that passes: the agent tries again after this.
        let retry = match self.0 {
            StatusCode::SERVICE_UNAVAILABLE => Some("5"),
            StatusCode::INSUFFICIENT_STORAGE => Some("30"),
            StatusCode::TOO_MANY_REQUESTS => Some("60"),
            _ => None,
        };
        let mut r = (self.0, Json(ErrorBody { error: self.1 })).into_response();
        if let Some(s) = retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(s));
        }
        r
    }
}

fn internal(e: anyhow::Error) -> ApiError {
    tracing::error!("{e:#}");
    if crate::api::disk_full(&e) {
        // Nothing was saved and the agent keeps what it sent: it comes
        // again once there is room.
        return ApiError(
            StatusCode::INSUFFICIENT_STORAGE,
            "the server's disk is full: nothing was saved, send it again later".into(),
        );
    }
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
}

pub fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/v1/enroll", post(enroll))
        .route("/v1/poll", post(poll))
        .route("/v1/report", post(report))
        .route("/v1/leave", post(leave))
        .route("/v1/renew", post(renew))
        .route("/v1/inventory", get(inventory_held).post(inventory))
        .route("/v1/content/{hash}", get(content))
        .route("/v1/content/{hash}/manifest", get(manifest))
        .with_state(core)
}

pub async fn serve(
    tcp: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    core: Arc<Core>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let app = router(core.clone());
    let mut backoff = Duration::from_millis(10);
    // Bounds open connections (descriptors): past it, accept waits.
    let slots = core.conns.open.clone();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, addr) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(x) => { backoff = Duration::from_millis(10); x }
                Err(e) => {
                    // Out of file descriptors and the like: wait, retry.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let core = core.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            let tls = match tokio::time::timeout(Duration::from_secs(15), acceptor.accept(stream))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%addr, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => return,
            };
            let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
            let peer = Peer {
                fingerprint: leaf.map(|c| fingerprint(c)),
                // Verified by TLS, so it parses; if not, it counts as expired.
                expires: leaf
                    .and_then(|c| Validity::of_der(c).ok())
                    .map_or(UnixTime::MIN, |v| v.not_after),
                addr,
            };
            // Without a certificate, only enrolment is open: a few such
            // connections per address, and an eighth of all in total.
            let _anonymous = match peer.fingerprint {
                Some(_) => None,
                None => match core.guard.anonymous(addr.ip()) {
                    Some(a) => Some(a),
                    None => {
                        tracing::debug!(%addr, "too many connections without a certificate");
                        return;
                    }
                },
            };
            let crowd = core.clone();
            let svc = TowerToHyperService::new(
                app.layer(axum::middleware::from_fn(admit))
                    .layer(Extension(peer))
                    .layer(tower::util::MapResponseLayer::new(
                        move |mut r: Response| {
                            if r.extensions().get::<WorkDone>().is_some() && crowd.conns.crowded() {
                                r.headers_mut()
                                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                            }
                            r
                        },
                    )),
            );
            let conn = hyper::server::conn::http1::Builder::new()
                // A client that opens a connection and sends nothing
                // (or a header a byte a minute) is dropped.
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(
                    TokioIo::new(guard::Stalled::new(
                        tls,
                        Duration::from_secs(guard::STALL_SECS),
                    )),
                    svc,
                );
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%addr, "connection: {e}");
                    }
                }
                _ = stop.changed() => {}
            }
        });
    }
}

/// Before a handler reads anything of a request: without a client
/// certificate only enrolment is answered, and a body must arrive whole
/// within `BODY_SECS` and fit the size limit, so neither a stranger nor a
/// slow sender makes the server parse or wait.
async fn admit(
    Extension(peer): Extension<Peer>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if peer.fingerprint.is_none() && req.uri().path() != "/v1/enroll" {
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "no client certificate: enrol first".into(),
        )
        .into_response();
    }
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, MAX_BODY);
    let bytes = match tokio::time::timeout(Duration::from_secs(guard::BODY_SECS), read).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return ApiError(StatusCode::PAYLOAD_TOO_LARGE, format!("request body: {e}"))
                .into_response();
        }
        Err(_) => {
            let mut r = ApiError(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    guard::BODY_SECS
                ),
            )
            .into_response();
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    next.run(axum::extract::Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The largest request body an agent sends (a report with its output
/// tail is a few tens of KiB).
const MAX_BODY: usize = 1 << 20;

/// The answer to a certificate the server does not know (or no longer
/// accepts for what was asked).
fn unknown_agent() -> ApiError {
    ApiError(
        StatusCode::FORBIDDEN,
        "this agent is not known to the server (removed?): enrol again with a new token".into(),
    )
}

/// Runs `f` in the writer for the destination behind the connection's
/// client certificate, looked up in the same request. A certificate that
/// has expired (by the server's clock) is refused whatever it belongs to.
async fn as_agent<T: Send + 'static>(
    core: &Arc<Core>,
    peer: &Peer,
    f: impl FnOnce(&mut Service, DestinationId, DestStatus) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let Some(fp) = peer.fingerprint.clone() else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "no client certificate: enrol first".into(),
        ));
    };
    let expires = peer.expires;
    core.call(move |svc| {
        if svc.clock().now() > expires {
            return Ok(Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "this agent's certificate expired at {}: enrol again with a new token",
                    crate::clock::rfc3339(expires)
                ),
            )));
        }
        Ok(match svc.agent_identity(&fp)? {
            Some((dest, status)) => Ok(f(svc, dest, status)?),
            None => Err(unknown_agent()),
        })
    })
    .await
    .map_err(internal)?
}

async fn enroll(
    State(core): State<Arc<Core>>,
    Extension(peer): Extension<Peer>,
    Json(req): Json<EnrollRequest>,
) -> Result<Json<crate::proto::EnrollResponse>, ApiError> {
    let ip = peer.addr.ip();
    if !core.guard.may_enrol(ip, tokio::time::Instant::now()) {
        core.guard.refused(ip, tokio::time::Instant::now());
        return Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "more than {} refused enrolments from {ip} in a minute: wait a minute",
                guard::REFUSALS_PER_MINUTE
            ),
        ));
    }
    let name = req.name.clone();
    match core.call(move |svc| svc.enroll(req)).await {
        Ok(r) => Ok(Json(r)),
        Err(e) => {
            let why = format!("{e:#}");
            if core.guard.refused(ip, tokio::time::Instant::now()) {
                let (addr, why) = (peer.addr.to_string(), why.clone());
                if let Err(e) = core
                    .call(move |svc| svc.log_refused(&name, &addr, &why))
                    .await
                {
                    tracing::warn!("{e:#}");
                }
            }
            Err(ApiError(StatusCode::FORBIDDEN, why))
        }
    }
}

/// Marks the answer to an agent's last request of a piece of work (its
/// final report): when more connections are open than held polls account
/// for, that connection is closed after it, so agents that are done do
/// not keep descriptors idle. Work in progress keeps its connection (a
/// new TLS session per request would cost more than the request).
#[derive(Clone, Copy)]
struct WorkDone;

async fn poll(
    State(core): State<Arc<Core>>,
    Extension(peer): Extension<Peer>,
    Json(req): Json<PollRequest>,
) -> Result<Response, ApiError> {
    crate::service::check_info(&req.info)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("{e:#}")))?;
    // A held poll waits on its connection for work; past the pool, the
    // agent is answered at once and told when to check in again.
    let held = core.conns.polls.clone().try_acquire_owned().ok();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(POLL_WAIT_SECS);
    let req = Arc::new(req);
    let mut began_as = None;
    loop {
        let (r, c) = (req.clone(), core.clone());
        let (mut resp, due_in, waker, seen) = as_agent(&core, &peer, move |svc, dest, _| {
            // Read in the writer, before the look: a change committed
            // after it moves the generation.
            let waker = c.waker(dest);
            let seen = waker.generation();
            Ok((
                svc.poll(dest, &r.info)?,
                svc.next_due_in(dest)?,
                waker,
                seen,
            ))
        })
        .await?;
        if resp.status == DestStatus::Rejected {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "this agent was rejected by the server's administrator".into(),
            ));
        }
        let held_by_agent =
            |a: &crate::proto::Assignment| req.known.contains(&(a.task_id, a.attempt));
        let new_work = resp.assignments.iter().any(|a| !held_by_agent(a));
        let dropped = req.known.iter().any(|k| {
            !resp
                .assignments
                .iter()
                .any(|a| (a.task_id, a.attempt) == *k)
        });
        if held.is_none() {
            resp.next_poll_secs = Some(core.conns.next_checkin());
            let mut r = Json(resp).into_response();
            // An agent given work goes on with it on this connection.
            if !new_work {
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return Ok(r);
        }
        let answer = |resp: crate::proto::PollResponse| Ok(Json(resp).into_response());
        // Approved while it waited: the agent hears it at once.
        let approved = *began_as.get_or_insert(resp.status) != resp.status;
        if new_work || dropped || approved || resp.move_to.is_some() {
            return answer(resp);
        }
        // Work held back by a start time, a retry backoff or a window comes
        // due on its own: look again then, without waiting for a change.
        let due =
            due_in.map(|s| tokio::time::Instant::now() + Duration::from_secs(s.max(0) as u64));
        tokio::select! {
            _ = waker.changed(seen) => continue,
            _ = async { if let Some(d) = due { tokio::time::sleep_until(d).await } else { std::future::pending().await } }, if due.is_some_and(|d| d < deadline) => continue,
            _ = tokio::time::sleep_until(deadline) => return answer(resp),
        }
    }
}

async fn report(
    State(core): State<Arc<Core>>,
    Extension(peer): Extension<Peer>,
    Json(r): Json<Report>,
) -> Result<Response, ApiError> {
    let last = r.status.is_final();
    as_agent(&core, &peer, move |svc, dest, status| {
        // As for content: an agent not (or no longer) approved reports
        // nothing, whatever attempt it names.
        if !status.is_approved() {
            return Ok(Err(format!("destination is {status}")));
        }
        svc.report(dest, &r).map(Ok)
    })
    .await?
    .map_err(|why| ApiError(StatusCode::FORBIDDEN, why))?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if last {
        resp.extensions_mut().insert(WorkDone);
    }
    Ok(resp)
}

/// The agent enrolled with the server it was ordered to move to.
async fn leave(
    State(core): State<Arc<Core>>,
    Extension(peer): Extension<Peer>,
) -> Result<StatusCode, ApiError> {
    as_agent(&core, &peer, move |svc, dest, _| {
        Ok(svc.agent_left(dest).map_err(|e| format!("{e:#}")))
    })
    .await?
    .map_err(|e| ApiError(StatusCode::CONFLICT, e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new certificate for the agent asking, from a new CSR (checked as at
/// enrolment). Pending and approved agents only: a rejected one gets the
/// answer an unknown certificate gets.
async fn renew(
    State(core): State<Arc<Core>>,
    Extension(peer): Extension<Peer>,
    Json(req): Json<RenewRequest>,
) -> Result<Json<crate::proto::RenewResponse>, ApiError> {
    let asked_with = peer.fingerprint.clone().unwrap_or_default();
    as_agent(&core, &peer, move |svc, dest, status| {
        if status == DestStatus::Rejected {
            return Ok(Err(unknown_agent()));
        }
        if let Err(e) = crate::pki::check_csr(&req.csr_pem) {
            return Ok(Err(ApiError(StatusCode::BAD_REQUEST, format!("{e:#}"))));
        }
        svc.renew_certificate(dest, &asked_with, &req.csr_pem)
            .map(Ok)
    })
    .await?
    .map(Json)
}

/// The digest of the inventory the server holds for this agent.
async fn inventory_held(
    State(core): State<Arc<Core>>,
    Extension(peer): Extension<Peer>,
) -> Result<Json<crate::proto::InventoryHeld>, ApiError> {
    let digest = as_agent(&core, &peer, move |svc, dest, _| svc.inventory_digest(dest)).await?;
    Ok(Json(crate::proto::InventoryHeld { digest }))
}

/// The agent's software inventory, kept whole. Approved agents only: what
/// a pending or rejected computer says of itself counts for nothing.
async fn inventory(
    State(core): State<Arc<Core>>,
    Extension(peer): Extension<Peer>,
    Json(inv): Json<crate::proto::Inventory>,
) -> Result<StatusCode, ApiError> {
    crate::proto::check_inventory(&inv)
        .map_err(|why| ApiError(StatusCode::BAD_REQUEST, format!("inventory refused: {why}")))?;
    as_agent(&core, &peer, move |svc, dest, status| {
        if !status.is_approved() {
            return Ok(Err(format!("destination is {status}")));
        }
        svc.take_inventory(dest, &inv).map(Ok)
    })
    .await?
    .map_err(|why| ApiError(StatusCode::FORBIDDEN, why))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks that the agent is approved and assigned work that needs `hash`.
async fn authorize_fetch(core: &Arc<Core>, peer: &Peer, hash: &str) -> Result<(), ApiError> {
    let h = hash.to_string();
    let refusal = as_agent(core, peer, move |svc, dest, status| {
        Ok(if !status.is_approved() {
            Some(format!("destination is {status}"))
        } else if !svc.may_fetch(dest, &h)? {
            Some(format!(
                "no unfinished task of this destination needs content {h}"
            ))
        } else {
            None
        })
    })
    .await?;
    match refusal {
        Some(why) => Err(ApiError(StatusCode::FORBIDDEN, why)),
        None => Ok(()),
    }
}

async fn manifest(
    State(core): State<Arc<Core>>,
    Extension(peer): Extension<Peer>,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    authorize_fetch(&core, &peer, &hash).await?;
    let store = crate::store::blobs::ContentStore::at(core.content_root.clone());
    let _file = core.conns.file_slot().await;
    let m = tokio::task::spawn_blocking(move || store.manifest(&hash))
        .await
        .map_err(|e| internal(e.into()))?
        .map_err(|e| ApiError(StatusCode::NOT_FOUND, format!("content: {e}")))?;
    Ok(Json(m).into_response())
}

/// Parses `bytes=N-` or `bytes=N-M` against a blob of `size` bytes into
/// an inclusive range.
fn parse_range(h: &HeaderValue, size: u64) -> Option<(u64, u64)> {
    let s = h.to_str().ok()?.strip_prefix("bytes=")?;
    let (a, b) = s.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end: u64 = match b.trim() {
        "" => size.checked_sub(1)?,
        e => e.parse::<u64>().ok()?.min(size.checked_sub(1)?),
    };
    (start <= end && start < size).then_some((start, end))
}

async fn content(
    State(core): State<Arc<Core>>,
    Extension(peer): Extension<Peer>,
    Path(hash): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_fetch(&core, &peer, &hash).await?;
    // A descriptor for the file, held as long as the body.
    let file_slot = core.conns.file_slot().await;
    let file = tokio::fs::File::open(core.content_path(&hash))
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                ApiError(StatusCode::NOT_FOUND, format!("content {hash}: {e}"))
            }
            // Out of descriptors and the like: the agent tries again.
            _ => ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("content {hash}: {e}"),
            ),
        })?;
    let size = file.metadata().await.map_err(|e| internal(e.into()))?.len();
    let (status, start, end) = match headers.get(header::RANGE) {
        Some(h) => match parse_range(h, size) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
            None => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                )
                    .into_response());
            }
        },
        None => (StatusCode::OK, 0, size.saturating_sub(1)),
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    // Wait for a transfer slot; the permit lives as long as the body.
    let permit = core.limits.transfer_slot().await;
    let counter = core.clone();
    let stream = file_stream(file.into_std().await, start, len).then(move |chunk| {
        let core = counter.clone();
        let _held = (&permit, &file_slot);
        async move {
            if let Ok(c) = &chunk {
                core.limits.spend(c.len()).await;
                core.bytes_served
                    .fetch_add(c.len() as u64, Ordering::Relaxed);
            }
            chunk
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(resp)
}

/// Bytes a content response reads and sends at a time.
const SEND_SIZE: u64 = 256 << 10;

/// `len` bytes of `file` from `start`, read on a blocking thread straight
/// into the buffers that are sent (no zeroing, no copy between buffers):
/// on a fan-out the server's CPU per byte is part of what every agent
/// waits for.
fn file_stream(
    file: std::fs::File,
    start: u64,
    len: u64,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
    use std::io::{Read, Seek};
    let state = Some((file, start, len));
    futures_util::stream::unfold(state, |state| async move {
        let (mut file, at, left) = state?;
        if left == 0 {
            return None;
        }
        let n = left.min(SEND_SIZE);
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(n as usize);
            file.seek(std::io::SeekFrom::Start(at))?;
            (&mut file).take(n).read_to_end(&mut buf)?;
            if buf.len() as u64 != n {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
            }
            Ok((file, buf))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        Some(match read {
            Ok((file, buf)) => (Ok(buf), Some((file, at + n, left - n))),
            Err(e) => (Err(e), None),
        })
    })
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tls_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(parse_range(&h("bytes=0-"), 10), Some((0, 9)));
        assert_eq!(parse_range(&h("bytes=4-6"), 10), Some((4, 6)));
        assert_eq!(parse_range(&h("bytes=4-60"), 10), Some((4, 9)));
        assert_eq!(parse_range(&h("bytes=10-"), 10), None);
        assert_eq!(parse_range(&h("bytes=6-4"), 10), None);
        assert_eq!(parse_range(&h("items=0-"), 10), None);
    }
}
