//! The agent's life: enrol once, then keep a long-poll open, do assigned
//! work one attempt at a time, and deliver every outcome exactly once.
//!
//! Three tasks share the agent: the poller (asks for work, keeps the
//! destination online), the worker (downloads, extracts, runs: installs on
//! one destination never overlap) and the reporter (sends outcomes kept on
//! disk until the server acknowledges them, so a crash or a server restart
//! loses none).
//!
//! Enrolment and the identity it leaves are in `enrol.rs`; the
//! certificate's renewal, a fourth task, in `renew.rs`.

mod attempt;
mod enrol;
mod inflight;
mod inventory;
mod renew;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use self::attempt::perform;
use self::enrol::{Identity, client_for, default_name, enrol, load_identity, save_identity};
use crate::proto::{
    AgentInfo, Assignment, MoveOrder, POLL_WAIT_SECS, PollRequest, PollResponse, Report,
};

/// Settings of one agent process.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The agent's own data dir (identity, cache, pending reports).
    pub data: PathBuf,
    /// `HOST:PORT` of the server; taken from the identity after enrolment
    /// when not given.
    pub server: Option<String>,
    pub token: Option<String>,
    pub name: Option<String>,
    /// Longest an install or uninstall command may run.
    pub command_timeout: Duration,
}

/// Bytes of command output kept for the report.
const OUTPUT_TAIL: usize = 16 << 10;

pub fn agent_info() -> AgentInfo {
    AgentInfo {
        os: std::env::consts::OS.to_string(),
        hostname: hostname(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        command_timeout: None,
        disks: Vec::new(),
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

struct Agent {
    /// Replaced when the certificate is renewed (`renew.rs`).
    client: Mutex<reqwest::Client>,
    base: String,
    data: PathBuf,
    info: AgentInfo,
    command_timeout: Duration,
    /// Attempts the server has assigned and this agent has taken, until the
    /// server stops listing them (finished, cancelled or deleted).
    held: Mutex<HashSet<(i64, i64)>>,
    /// The attempt the worker is on.
    running: Mutex<Option<(i64, i64)>>,
    /// Attempts the server dropped while they ran, and the signal that
    /// tells the worker to look.
    cancelled: Mutex<HashSet<(i64, i64)>>,
    cancel: Notify,
    /// Wakes the reporter when a new report is on disk.
    reports: Notify,
    /// Wakes the inventory sender after an attempt (it may have changed
    /// what is installed).
    inventory: Notify,
}

impl Agent {
    /// The client that authenticates with the agent's current certificate.
    fn client(&self) -> reqwest::Client {
        self.client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_client(&self, client: reqwest::Client) {
        *self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = client;
    }
}

/// The agent's runtime: one thread, since an idle agent should cost next
/// to nothing, and room for 64 readiness events per turn instead of
/// tokio's 1,024 (12 KiB held for the agent's life; it waits on a few
/// sockets and pipes).
pub fn builder() -> tokio::runtime::Builder {
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_all().max_io_events_per_tick(64);
    b
}

/// Runs the agent until `shutdown` resolves or the server turns it away.
pub async fn run(cfg: AgentConfig, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let _lock = prepare(&cfg)?;
    // What a previous run left running is stopped, and its attempt
    // reported, before any new work.
    inflight::recover(&cfg.data).await;
    let mut id = ensure_enrolled(&cfg).await?;
    tokio::pin!(shutdown);
    loop {
        let order = tokio::select! {
            r = serve_one(&cfg, &id) => r?,
            _ = &mut shutdown => return Ok(()),
        };
        // The certificate may have been renewed meanwhile.
        if let Some(current) = load_identity(&cfg.data)? {
            id = current;
        }
        // Ordered to another server: enrol there first, and only then tell
        // this one we left, so a failed move leaves the agent where it was.
        let (new_id, key) = enrol(&order.server, &order.token, &id.name).await?;
        let old = client_for(&cfg.data, &id)?;
        let left = old
            .post(format!("https://{}/v1/leave", id.server))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        if let Err(e) = &left {
            tracing::warn!("could not tell {} that this agent left: {e}", id.server);
        }
        save_identity(&cfg.data, &new_id, &key)?;
        eprintln!(
            "courier agent: moved from {} to {}",
            id.server, new_id.server
        );
        tracing::info!(from = %id.server, to = %new_id.server, "moved");
        id = new_id;
    }
}

/// Enrols the agent of `cfg` unless it is enrolled already, and returns the
/// server and the name it is enrolled with, without serving any work (what
/// `courier agent install-service` does before the service first starts).
pub async fn enrol_only(cfg: &AgentConfig) -> Result<(String, String)> {
    let _lock = prepare(cfg)?;
    let id = ensure_enrolled(cfg).await?;
    Ok((id.server, id.name))
}

/// Makes the data dir and takes its lock, held as long as the file is.
fn prepare(cfg: &AgentConfig) -> Result<std::fs::File> {
    crate::datadir::create_private_dir(&cfg.data)?;
    for d in ["cache", "work", "reports", "done"] {
        crate::datadir::create_private_dir(&cfg.data.join(d))?;
    }
    // Two agents on one data dir would share an identity and run every
    // installation twice: the second one refuses to start.
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cfg.data.join("agent.lock"))
        .context("agent lock")?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another courier agent already runs with the data dir {}",
            cfg.data.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("agent lock"),
    }
}

/// The identity in the data dir, or a new one from enrolling with the
/// server and token of `cfg`.
async fn ensure_enrolled(cfg: &AgentConfig) -> Result<Identity> {
    match load_identity(&cfg.data)? {
        Some(id) => {
            if let Some(s) = cfg.server.as_deref().filter(|s| *s != id.server) {
                bail!(
                    "this agent is enrolled with {} (not {s}); to move it, use 'courier dest move' on that server, or start with a fresh --data dir",
                    id.server
                );
            }
            Ok(id)
        }
        None => {
            let server = cfg.server.clone().ok_or_else(|| {
                anyhow!("not enrolled yet: give --server HOST:PORT and --token TOKEN")
            })?;
            let token = cfg.token.clone().ok_or_else(|| {
                anyhow!("not enrolled yet: give --token TOKEN (from 'courier token create')")
            })?;
            let name = cfg.name.clone().unwrap_or_else(default_name);
            let (id, key) = enrol(&server, &token, &name).await?;
            save_identity(&cfg.data, &id, &key)?;
            Ok(id)
        }
    }
}

/// Serves one server until it orders a move (returned) or turns the agent
/// away (an error).
async fn serve_one(cfg: &AgentConfig, id: &Identity) -> Result<MoveOrder> {
    let agent = Arc::new(Agent {
        client: Mutex::new(client_for(&cfg.data, id)?),
        base: format!("https://{}", id.server),
        data: cfg.data.clone(),
        info: AgentInfo {
            command_timeout: Some(cfg.command_timeout.as_secs()),
            ..agent_info()
        },
        command_timeout: cfg.command_timeout,
        held: Mutex::new(HashSet::new()),
        running: Mutex::new(None),
        cancelled: Mutex::new(HashSet::new()),
        cancel: Notify::new(),
        reports: Notify::new(),
        inventory: Notify::new(),
    });
    tracing::info!(server = %id.server, name = %id.name, "agent started");
    let (tx, rx) = mpsc::unbounded_channel();
    let worker = tokio::spawn(worker(agent.clone(), rx));
    let reporter = tokio::spawn(reporter(agent.clone()));
    let renewer = tokio::spawn(renew::renewer(agent.clone(), id.clone()));
    let inventory = tokio::spawn(inventory::sender(agent.clone()));
    let result = poller(agent.clone(), tx).await;
    worker.abort();
    reporter.abort();
    renewer.abort();
    inventory.abort();
    result
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// ±25 % so a thousand agents that lost the server do not return together.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let f = 0.75 + (u16::from_le_bytes(b) as f64 / u16::MAX as f64) * 0.5;
    d.mul_f64(f)
}

/// Long-polls for work and hands new attempts to the worker.
async fn poller(agent: Arc<Agent>, tx: mpsc::UnboundedSender<Assignment>) -> Result<MoveOrder> {
    let mut wait = Duration::from_secs(1);
    let mut said_pending = false;
    let mut said_checkin = false;
    let mut approved = false;
    // Free space as the server last took it: sent again only when it
    // moved enough to matter to a pre-flight.
    let mut disks_sent: Vec<crate::proto::Disk> = Vec::new();
    loop {
        let known: Vec<(i64, i64)> = agent
            .held
            .lock()
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default();
        let disks = crate::agent::disks::free_space(&agent.data);
        let disks = if crate::agent::disks::moved(&disks_sent, &disks) {
            disks
        } else {
            Vec::new()
        };
        let req = PollRequest {
            info: AgentInfo {
                disks: disks.clone(),
                ..agent.info.clone()
            },
            known,
        };
        let sent = agent
            .client()
            .post(format!("{}/v1/poll", agent.base))
            .json(&req)
            .timeout(Duration::from_secs(POLL_WAIT_SECS + 20))
            .send()
            .await;
        let resp = match sent {
            Ok(r) if r.status().is_success() => r.json::<PollResponse>().await,
            Ok(r) if r.status() == reqwest::StatusCode::FORBIDDEN => {
                bail!(
                    "the server turned this agent away: {}",
                    super::fetch::error_text(r).await
                )
            }
            Ok(r) => {
                tracing::warn!(
                    "poll: {}; retrying in {wait:?}",
                    super::fetch::error_text(r).await
                );
                tokio::time::sleep(jitter(wait)).await;
                wait = (wait * 2).min(Duration::from_secs(30));
                continue;
            }
            Err(e) if crate::pki::refused_as_expired(&e) => {
                bail!(
                    "the server refused this agent's certificate as expired: enrol again with a new token"
                )
            }
            Err(e) => {
                tracing::warn!("poll: {}; retrying in {wait:?}", root_cause(&e));
                tokio::time::sleep(jitter(wait)).await;
                wait = (wait * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("poll: bad reply: {e}");
                tokio::time::sleep(jitter(wait)).await;
                continue;
            }
        };
        wait = Duration::from_secs(1);
        if !disks.is_empty() {
            disks_sent = disks;
        }
        // A server with more agents than held polls says when to ask again.
        let pause = resp
            .next_poll_secs
            .map(|s| Duration::from_secs(s.min(3600)));
        if pause.is_some() != said_checkin {
            said_checkin = pause.is_some();
            if said_checkin {
                tracing::info!(
                    "the server holds no long-poll for this agent now: checking in every {}s or so",
                    resp.next_poll_secs.unwrap_or_default()
                );
            } else {
                tracing::info!("the server holds a long-poll for this agent again");
            }
        }
        if resp.status == crate::task::DestStatus::Pending {
            if !said_pending {
                tracing::info!("waiting for an administrator to approve this agent");
                said_pending = true;
            }
            if let Some(p) = pause {
                tokio::time::sleep(p).await;
            }
            continue;
        }
        if !approved {
            // The first answer as an approved agent (after start, or just
            // approved): an inventory refused while pending goes now.
            approved = true;
            agent.inventory.notify_one();
        }
        said_pending = false;
        if let Some(order) = resp.move_to {
            tracing::info!(to = %order.server, "ordered to move");
            return Ok(order);
        }
        // Attempts the server no longer lists are finished or were
        // cancelled; the running one, if among them, is stopped.
        let listed: HashSet<(i64, i64)> = resp
            .assignments
            .iter()
            .map(|a| (a.task_id, a.attempt))
            .collect();
        let dropped: Vec<(i64, i64)> = match agent.held.lock() {
            Ok(mut h) => {
                let gone: Vec<_> = h.iter().filter(|k| !listed.contains(k)).copied().collect();
                h.retain(|k| listed.contains(k));
                gone
            }
            Err(_) => Vec::new(),
        };
        let running = agent.running.lock().ok().and_then(|r| *r);
        if let Some(r) = running.filter(|r| dropped.contains(r)) {
            tracing::info!(
                task = r.0,
                attempt = r.1,
                "the server dropped the running attempt"
            );
            if let Ok(mut c) = agent.cancelled.lock() {
                c.insert(r);
            }
            agent.cancel.notify_waiters();
        }
        for a in resp.assignments {
            let key = (a.task_id, a.attempt);
            let fresh = agent
                .held
                .lock()
                .map(|mut h| h.insert(key))
                .unwrap_or(false);
            if fresh {
                tracing::info!(
                    task = a.task_id,
                    attempt = a.attempt,
                    "new work: {}",
                    a.task_name
                );
                if tx.send(a).is_err() {
                    bail!("the worker stopped");
                }
            }
        }
        if let Some(p) = pause {
            tokio::time::sleep(p).await;
        }
    }
}

fn attempt_key(a: &Assignment) -> String {
    format!("{}-{}", a.task_id, a.attempt)
}

/// Does the work, one attempt at a time.
async fn worker(agent: Arc<Agent>, mut rx: mpsc::UnboundedReceiver<Assignment>) {
    while let Some(a) = rx.recv().await {
        let key = (a.task_id, a.attempt);
        let name = attempt_key(&a);
        let done_marker = agent.data.join("done").join(&name);
        let still_wanted = agent.held.lock().map(|h| h.contains(&key)).unwrap_or(true);
        if done_marker.exists() || !still_wanted {
            continue;
        }
        if let Ok(mut r) = agent.running.lock() {
            *r = Some(key);
        }
        // On cancellation `perform` is told to stop and waited for: it
        // kills the command's process group, stops an extraction between
        // entries and removes what it staged, and leaves the partial
        // download for a later attempt. The next attempt starts only once
        // nothing of this one runs any more.
        let stop = CancellationToken::new();
        // Boxed: an attempt's future is 19 KiB (download, extraction,
        // the command), which would otherwise sit in this task for the
        // agent's life and be copied down the stack when it is spawned.
        let mut work = Box::pin(perform(&agent, &a, &stop));
        let outcome = tokio::select! {
            r = &mut work => Some(r),
            _ = cancelled(&agent, key) => None,
        };
        if outcome.is_none() {
            stop.cancel();
            work.await;
        }
        if let Ok(mut c) = agent.cancelled.lock() {
            c.remove(&key);
        }
        if let Ok(mut r) = agent.running.lock() {
            *r = None;
        }
        match outcome {
            Some(report) => {
                keep_report(&agent.data, &name, &report).await;
                inflight::end(&agent.data, &name);
                agent.reports.notify_one();
                agent.inventory.notify_one();
            }
            None => {
                tracing::info!(
                    task = a.task_id,
                    attempt = a.attempt,
                    "cancelled by the server"
                );
                let _ = std::fs::remove_dir_all(agent.data.join("work").join(&name));
                inflight::end(&agent.data, &name);
            }
        }
    }
}

/// Resolves once the server has dropped attempt `key`.
async fn cancelled(agent: &Agent, key: (i64, i64)) {
    loop {
        let signal = agent.cancel.notified();
        tokio::pin!(signal);
        signal.as_mut().enable();
        if agent.cancelled.lock().is_ok_and(|c| c.contains(&key)) {
            return;
        }
        signal.await;
    }
}

/// Puts the final report of attempt `key` on disk, then marks the attempt
/// done, each synced with its folder so that it survives a power cut. The
/// marker comes only after the report: an attempt marked done whose report
/// was lost would never be reported, and never run again. A disk that
/// refuses is tried again until it takes them; meanwhile the worker starts
/// nothing else (the outcome is still the only copy, in memory).
async fn keep_report(data: &Path, key: &str, r: &Report) {
    let mut wait = Duration::from_secs(1);
    while let Err(e) = save_report(data, key, r) {
        tracing::error!("cannot keep the report of {key}: {e:#}; trying again in {wait:?}");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
    let done = data.join("done");
    let marked = std::fs::write(done.join(key), b"").and_then(|()| sync_dir(&done));
    if let Err(e) = marked {
        // The report is safe; without the marker, a restart before the
        // server has the report could run the attempt again.
        tracing::error!("cannot mark {key} done: {e}");
    }
}

fn save_report(data: &Path, key: &str, r: &Report) -> Result<()> {
    let dir = data.join("reports");
    let tmp = dir.join(format!(".{key}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    std::io::Write::write_all(&mut f, &serde_json::to_vec(r)?)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(format!("{key}.json")))?;
    sync_dir(&dir)?;
    Ok(())
}

/// Makes a rename or a new name in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// NTFS journals its folders' metadata; a folder cannot be opened as a
/// file to be synced anyway.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Sends every report on disk until the server has each, oldest first.
async fn reporter(agent: Arc<Agent>) {
    let dir = agent.data.join("reports");
    let mut wait = Duration::from_secs(1);
    loop {
        let mut pending: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        pending.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        let mut failed = false;
        for p in pending {
            let Ok(body) = std::fs::read(&p) else {
                continue;
            };
            let sent = agent
                .client()
                .post(format!("{}/v1/report", agent.base))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    let _ = std::fs::remove_file(&p);
                }
                Ok(r)
                    if crate::agent::fetch::final_refusal(r.status())
                        && r.status() != reqwest::StatusCode::FORBIDDEN =>
                {
                    // The server will never take this one (malformed); keep
                    // it aside for a human rather than resend forever.
                    tracing::error!("report {} refused: HTTP {}", p.display(), r.status());
                    let _ = std::fs::rename(&p, p.with_extension("refused"));
                }
                Ok(r) => {
                    tracing::warn!(
                        "report {} not taken: {}; kept, sending again in {wait:?}",
                        p.display(),
                        super::fetch::error_text(r).await
                    );
                    failed = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(
                        "report {} not sent: {}; kept, sending again in {wait:?}",
                        p.display(),
                        root_cause(&e)
                    );
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            tokio::time::sleep(jitter(wait)).await;
            wait = (wait * 2).min(Duration::from_secs(30));
            continue;
        }
        wait = Duration::from_secs(1);
        tokio::select! {
            _ = agent.reports.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}
