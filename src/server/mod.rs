//! `courier serve`: the server core in its own process. It owns the data
//! dir: the agent listener (HTTPS, mutual TLS), the admin socket (a named
//! pipe on Windows) the CLI and consoles use, and the background sweeps.
//!
//! Invariant: every state change goes through [`Core::call`], which runs
//! it on the one writer thread and answers after the commit (`writer.rs`).

mod admin;
pub mod guard;
pub mod limits;
mod listener;
mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::api::{ApiError, Handler, Request, Response};
use crate::datadir::DataDir;
use crate::model::DestinationId;
use crate::proto::POLL_WAIT_SECS;
use crate::service::Service;

/// Shared by every connection of the server.
pub struct Core {
    /// The one writer: every request runs there, in order, and is
    /// answered after its batch commits.
    writer: writer::Writer,
    /// Read-only admin requests, on a connection of their own; None: the
    /// writer answers them too.
    reader: Option<writer::Writer>,
    /// One wake-up per destination with a long-poll waiting.
    notifies: Arc<Mutex<HashMap<DestinationId, Arc<Waker>>>>,
    /// Content bytes sent to agents since start, for the status line.
    pub bytes_served: AtomicU64,
    content_root: std::path::PathBuf,
    /// Where package registrations inspect archives.
    scratch: std::path::PathBuf,
    /// Concurrent transfers and bandwidth allowed for content.
    limits: limits::Limits,
    /// Agent connections and held long-polls.
    conns: limits::Connections,
    /// What strangers may hold: anonymous connections, refused enrolments.
    guard: Arc<guard::Guard>,
}

/// What a long-poll of one destination waits on: a generation, counted up
/// by the writer after each commit that changed the destination's work.
/// A poll reads it inside its look (in the writer) and waits until it
/// moves, so a change committed after the look is never missed.
#[derive(Default)]
pub struct Waker {
    generation: AtomicU64,
    notify: Notify,
}

impl Waker {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Returns once the generation is past `seen`.
    pub async fn changed(&self, seen: u64) {
        loop {
            let n = self.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.generation() != seen {
                return;
            }
            n.await;
        }
    }
}

impl Core {
    pub fn new(
        svc: Service,
        limits: limits::Limits,
        conns: limits::Connections,
    ) -> Result<Arc<Core>> {
        Self::with_batch(svc, limits, conns, writer::MAX_BATCH)
    }

    /// Answers read-only admin requests from `reader`, a service of its
    /// own on the same data dir, instead of the writer.
    pub fn with_reader(self: Arc<Self>, reader: Service) -> Result<Arc<Core>> {
        let mut core = Arc::try_unwrap(self).map_err(|_| anyhow!("the core is already shared"))?;
        core.reader =
            Some(writer::Writer::start_reader(reader).context("cannot start the reader thread")?);
        Ok(Arc::new(core))
    }

    /// A core whose writer commits at most `max_batch` requests together
    /// (1: a commit per request, as benchmarks compare).
    pub fn with_batch(
        svc: Service,
        limits: limits::Limits,
        conns: limits::Connections,
        max_batch: usize,
    ) -> Result<Arc<Core>> {
        let content_root = svc.data().content_dir();
        let scratch = svc.data().scratch_dir();
        let notifies: Arc<Mutex<HashMap<DestinationId, Arc<Waker>>>> = Arc::default();
        let waker = notifies.clone();
        let writer = writer::Writer::start(svc, max_batch, move |dests| wake(&waker, dests))
            .context("cannot start the writer thread")?;
        Ok(Arc::new(Core {
            writer,
            reader: None,
            notifies,
            bytes_served: AtomicU64::new(0),
            content_root,
            scratch,
            limits,
            guard: Arc::new(guard::Guard::new(conns.max_open)),
            conns,
        }))
    }

    /// Runs `f` on the service in the writer, then wakes the long-polls
    /// of destinations whose work changed. The answer comes after the
    /// change is committed. A panic inside `f` is an error of this call
    /// only: its changes roll back and the server goes on.
    pub async fn call<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Service) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.writer.call(f).await
    }

    /// Answers one admin request.
    pub async fn handle(self: &Arc<Self>, req: Request) -> Result<Response, ApiError> {
        // A registration copies and hashes its file (seconds for a big
        // one) beside the writer, which then only records it: agents and
        // admins are not held up meanwhile.
        if let Request::PackageAdd(add) = req {
            let store = crate::store::blobs::ContentStore::at(self.content_root.clone());
            let scratch = self.scratch.clone();
            let prepared = tokio::task::spawn_blocking(move || {
                crate::service::prepare_package(&store, &scratch, &add)
            })
            .await
            .map_err(|e| ApiError::internal(format!("registration: {e}")))?
            .map_err(|e| ApiError::from_anyhow(&e))?;
            return self
                .writer
                .call(move |svc| Ok(svc.add_prepared(prepared).map(Response::from)))
                .await
                .unwrap_or_else(Err)
                .map_err(|e| ApiError::from_anyhow(&e));
        }
        let queue = match &self.reader {
            Some(r) if req.is_read() => r,
            _ => &self.writer,
        };
        queue
            .call(move |svc| Ok(svc.handle(req)))
            .await
            .unwrap_or_else(|e| Err(ApiError::from_anyhow(&e)))
    }

    /// The wake-up a long-poll of `dest` waits on.
    pub fn waker(&self, dest: DestinationId) -> Arc<Waker> {
        waker(&self.notifies, dest)
    }

    pub fn content_path(&self, hash: &str) -> std::path::PathBuf {
        crate::content::blob_path(&self.content_root, hash)
    }
}

fn waker(notifies: &Mutex<HashMap<DestinationId, Arc<Waker>>>, dest: DestinationId) -> Arc<Waker> {
    let mut map = notifies.lock().unwrap_or_else(PoisonError::into_inner);
    map.entry(dest).or_default().clone()
}

/// Wakes the long-polls of `dests`.
fn wake(notifies: &Mutex<HashMap<DestinationId, Arc<Waker>>>, dests: &[DestinationId]) {
    if dests.is_empty() {
        return;
    }
    let map = notifies.lock().unwrap_or_else(PoisonError::into_inner);
    for d in dests {
        if let Some(w) = map.get(d) {
            w.generation.fetch_add(1, Ordering::AcqRel);
            w.notify.notify_waiters();
        }
    }
}

fn open_service(data: &DataDir) -> Result<Service> {
    Service::open(data.clone(), crate::clock::Clock::from_env()).context("cannot open the data dir")
}

/// The admin API answered in this process, for a CLI command when no
/// server runs for the data dir. Retention is applied first, so what is
/// listed is what a server would still hold.
pub fn open_local(data: &DataDir) -> Result<Box<dyn Handler>> {
    let mut svc = open_service(data)?;
    svc.apply_retention()?;
    Ok(Box::new(svc))
}

/// What a running server tells other processes about itself, in
/// `<data>/server.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub listen: String,
    pub pid: u32,
    pub ca_fingerprint: String,
    /// Agent connections the server keeps open at most, and how many of
    /// them may be held long-polls.
    #[serde(default)]
    pub max_connections: usize,
    #[serde(default)]
    pub max_polls: usize,
}

impl ServerInfo {
    pub fn path(data: &DataDir) -> std::path::PathBuf {
        data.root().join("server.json")
    }

    pub fn read(data: &DataDir) -> Option<ServerInfo> {
        let text = std::fs::read_to_string(Self::path(data)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// How `courier serve` was asked to run (flags over the config file).
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub max_transfers: Option<usize>,
    /// Bytes per second for all content together.
    pub bandwidth: Option<u64>,
    /// Long-polls held at once; None: from the open-file limit.
    pub max_polls: Option<usize>,
    /// Mean seconds between check-ins of agents past `max_polls`.
    pub checkin_secs: u64,
    /// Seconds without transfer progress before a destination is stuck.
    pub stall_secs: u64,
    /// Say on stderr where the server listens (not under a console).
    pub announce: bool,
}

/// Runs the server until `shutdown` resolves.
pub async fn run(
    data: DataDir,
    opts: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let svc = open_service(&data)?;
    let listen = opts.listen;
    let socket = data.admin_endpoint();
    if crate::api::dial(&socket).is_ok() {
        bail!(
            "a server already runs for {} (its admin socket answers)",
            data.root().display()
        );
    }
    let mut svc = svc;
    let limits = crate::task::stuck::Limits {
        stall_secs: opts.stall_secs as i64,
        ..Default::default()
    };
    svc.set_stuck_limits(limits);
    svc.set_transfer_limits(opts.bandwidth, opts.max_transfers);
    let clock = svc.clock().clone();
    let (tls, fingerprint) = {
        let pki = svc.pki()?;
        (pki.server_config(clock)?, pki.ca_fingerprint())
    };
    let conns = limits::Connections::new(opts.max_polls, opts.checkin_secs);
    tracing::info!(
        connections = conns.max_open,
        polls = conns.max_polls,
        "agent connections"
    );
    let core = Core::new(
        svc,
        limits::Limits::new(opts.max_transfers, opts.bandwidth),
        conns,
    )?;
    let mut reader = open_service(&data)?;
    reader.set_stuck_limits(limits);
    reader.set_transfer_limits(opts.bandwidth, opts.max_transfers);
    let core = core.with_reader(reader)?;
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = tcp.local_addr()?;
    let admin = admin::Listener::bind(&socket)?;
    let info = ServerInfo {
        listen: bound.to_string(),
        pid: std::process::id(),
        ca_fingerprint: fingerprint.clone(),
        max_connections: core.conns.max_open,
        max_polls: core.conns.max_polls,
    };
    crate::pki::write_private(&ServerInfo::path(&data), &serde_json::to_vec_pretty(&info)?)?;
    core.call(move |svc| svc.log_server_start(&bound.to_string()))
        .await?;
    tracing::info!(%bound, "listening");
    if opts.announce {
        eprintln!(
            "courier serve: agents on {bound}, admin socket {}, CA fingerprint {fingerprint}",
            socket.display()
        );
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let agents = tokio::spawn(listener::serve(
        tcp,
        Arc::new(tls),
        core.clone(),
        stop_rx.clone(),
    ));
    let admin_task = tokio::spawn(admin::serve(
        admin,
        core.clone(),
        bound.to_string(),
        stop_rx.clone(),
    ));
    let sweeper = tokio::spawn(sweep(core.clone(), stop_rx));

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = agents.await;
        let _ = admin_task.await;
        let _ = sweeper.await;
    })
    .await;
    admin::remove(&socket);
    let _ = std::fs::remove_file(ServerInfo::path(&data));
    core.call(|svc| svc.log_server_stop()).await?;
    Ok(())
}

/// Background rules: destinations that stopped polling go offline, the
/// retention rules delete old tasks, and the server certificate is issued
/// again when due (at start, then every few seconds: each is one indexed
/// query or a comparison when there is nothing to do).
async fn sweep(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    // Silent for two held polls, or past the longest check-in interval.
    let checkin_max = core.conns.checkin_secs * 4 / 3 + 1;
    let stale = (POLL_WAIT_SECS * 2 + 10).max(checkin_max + 20) as i64;
    loop {
        let swept = core
            .call(move |svc| {
                svc.mark_offline(stale)?;
                svc.prune_events()?;
                let expired = svc.apply_retention();
                svc.enforce_policies_if_due()?;
                // A comparison, unless the server certificate is due.
                svc.refresh_server_cert()?;
                expired
            })
            .await;
        // Refused enrolments beyond each address's first few of a minute:
        // one event per address and minute (`guard.rs`).
        let ended = core.guard.ended(tokio::time::Instant::now());
        if !ended.is_empty() {
            let logged = core
                .call(move |svc| {
                    for s in ended {
                        svc.log_refusals(&s.addr.to_string(), s.more)?;
                    }
                    Ok(())
                })
                .await;
            if let Err(e) = logged {
                tracing::warn!("sweep: {e:#}");
            }
        }
        if let Err(e) = swept {
            tracing::warn!("sweep: {e:#}");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A server running on a thread of this process (the console's standalone
/// mode and `courier demo`). Dropping it shuts the server down.
pub struct InProcess {
    /// Where agents connect.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

/// The runtime the server runs on: tokio's multi-thread scheduler, with
/// `workers` threads or one per core. A build without the `server` feature
/// (the `courier-agent` binary, which never serves) has no such scheduler
/// and says so.
#[cfg(feature = "server")]
pub fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    builder.enable_all().build()
}

#[cfg(not(feature = "server"))]
pub fn runtime(_workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    Err(std::io::Error::other(
        "this build cannot serve (built without the `server` feature)",
    ))
}

impl InProcess {
    /// Starts the server core for `data` and waits until its admin socket
    /// answers.
    pub fn start(data: DataDir, opts: Options) -> Result<InProcess> {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let info_path = ServerInfo::path(&data);
        let socket = data.admin_endpoint();
        let _ = std::fs::remove_file(&info_path);
        let thread = std::thread::Builder::new()
            .name("courier-server".into())
            .spawn(move || -> Result<()> {
                let rt = runtime(Some(2))?;
                rt.block_on(run(data, opts, async {
                    let _ = stop_rx.await;
                }))
            })?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if thread.is_finished() {
                return match thread.join() {
                    Ok(Err(e)) => Err(e),
                    _ => Err(anyhow!("the server stopped at once")),
                };
            }
            if crate::api::dial(&socket).is_ok()
                && let Ok(text) = std::fs::read_to_string(&info_path)
                && let Ok(info) = serde_json::from_str::<ServerInfo>(&text)
            {
                let addr = info.listen.parse()?;
                return Ok(InProcess {
                    addr,
                    stop: Some(stop_tx),
                    thread: Some(thread),
                });
            }
            if std::time::Instant::now() > deadline {
                return Err(anyhow!("the server did not start within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorKind;

    #[tokio::test]
    async fn a_panic_in_one_request_leaves_the_server_serving() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path().join("data")).unwrap();
        let svc = Service::open(data, crate::clock::Clock::manual(1_800_000_000)).unwrap();
        let core = Core::new(
            svc,
            limits::Limits::new(None, None),
            limits::Connections::new(None, 30),
        )
        .unwrap();
        let events = |svc: &mut Service| -> Result<i64> {
            Ok(svc
                .store()
                .conn()
                .query_row("SELECT count(*) FROM events", [], |r| r.get(0))?)
        };
        core.call(|svc| svc.log_server_start("127.0.0.1:1"))
            .await
            .unwrap();
        let before = core.call(events).await.unwrap();
        assert!(before > 0);
        let boom = core
            .call(|svc| -> Result<()> {
                // Mid-change, as a bug in a rule would.
                svc.store().conn().execute_batch("DELETE FROM events;")?;
                panic!("rule bug")
            })
            .await
            .unwrap_err();
        let e = ApiError::from_anyhow(&boom);
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(e.message.contains("rule bug"), "{}", e.message);
        // What it changed before panicking is rolled back.
        assert_eq!(core.call(events).await.unwrap(), before);
        // The next admin request is answered, the next agent call too.
        let r = core.handle(Request::Status).await;
        assert!(matches!(r, Ok(Response::Status(_))), "{r:?}");
        let t = core
            .handle(Request::TokenCreate {
                ttl: None,
                auto_approve: false,
            })
            .await;
        assert!(matches!(t, Ok(Response::Token(_))), "{t:?}");
    }
}

#[cfg(test)]
mod reader_tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_are_answered_while_the_writer_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path().join("data")).unwrap();
        let open = || Service::open(data.clone(), crate::clock::Clock::manual(1_800_000_000));
        let core = Core::new(
            open().unwrap(),
            limits::Limits::new(None, None),
            limits::Connections::new(None, 30),
        )
        .unwrap()
        .with_reader(open().unwrap())
        .unwrap();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let busy = core.call(move |_| {
            go_rx.recv().ok();
            Ok(())
        });
        let read = async {
            let r = tokio::time::timeout(Duration::from_secs(5), core.handle(Request::Status))
                .await
                .expect("a read waited for the writer");
            go_tx.send(()).unwrap();
            r
        };
        let (done, status) = tokio::join!(busy, read);
        done.unwrap();
        assert!(matches!(status, Ok(Response::Status(_))), "{status:?}");
    }
}
