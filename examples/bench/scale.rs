//! `bench scale`: many agents from one process against one `courier
//! serve`, speaking the real protocol: each agent makes its own key and
//! CSR and enrols with a token, then polls with mutual TLS (held long-polls
//! or check-ins, as the server says), fetches the manifest (none for
//! content of one chunk, as the agent) and the content of its assignment
//! and checks every chunk against it, and reports
//! installing and succeeded. Connections come from several 127.x source
//! addresses, so the ephemeral ports of one address are not the limit.
//!
//! Per step (a number of agents): seconds from `task create` to every
//! agent's success, the server's peak RSS and CPU seconds in that time, the
//! p99 time from task creation to an agent receiving its assignment, and
//! errors (any failed request; must be 0).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use courier::content::Manifest;
use courier::proto::{
    AgentInfo, EnrollRequest, EnrollResponse, PollRequest, PollResponse, Report, ReportStatus,
};

use crate::{flag, flags, quantile, row};

pub async fn main(args: &[String]) -> Result<()> {
    let courier = PathBuf::from(flag(args, "--courier").context("--courier PATH")?);
    let steps: Vec<usize> = flag(args, "--agents")
        .unwrap_or("1000")
        .split(',')
        .map(|s| s.parse().context("--agents N,N…"))
        .collect::<Result<_>>()?;
    let sources: u8 = flag(args, "--sources").unwrap_or("8").parse()?;
    let serve_args: Vec<String> = flags(args, "--serve-arg")
        .into_iter()
        .map(String::from)
        .collect();
    for n in steps {
        let s = step(&courier, n, sources, &serve_args).await?;
        eprintln!(
            "scale {n}: enrolled in {:.1} s; all succeeded {:.1} s after task create; \
             dispatch p99 {:.1} s; server peak RSS {:.0} MiB, CPU {:.1} s; errors {}",
            s.enrol_secs, s.done_secs, s.dispatch_p99, s.rss_peak_mib, s.cpu_secs, s.errors
        );
        row(&format!("agents_{n}_seconds"), s.done_secs, "s", None);
        row(
            &format!("agents_{n}_enrol_seconds"),
            s.enrol_secs,
            "s",
            None,
        );
        row(
            &format!("agents_{n}_server_rss_peak"),
            s.rss_peak_mib,
            "MiB",
            None,
        );
        row(&format!("agents_{n}_server_cpu"), s.cpu_secs, "s", None);
        row(
            &format!("agents_{n}_dispatch_p99"),
            s.dispatch_p99,
            "s",
            None,
        );
        row(
            &format!("agents_{n}_errors"),
            s.errors as f64,
            "count",
            None,
        );
        if s.errors > 0 {
            bail!("{} requests failed with {n} agents", s.errors);
        }
    }
    Ok(())
}

struct StepResult {
    enrol_secs: f64,
    done_secs: f64,
    dispatch_p99: f64,
    rss_peak_mib: f64,
    cpu_secs: f64,
    errors: usize,
}

/// A `courier serve` of this step, stopped when dropped.
struct Server {
    child: Child,
    data: PathBuf,
    courier: PathBuf,
    addr: String,
    ca_fingerprint: String,
    max_connections: usize,
}

impl Server {
    fn start(courier: &Path, data: &Path, extra: &[String]) -> Result<Server> {
        let mut child = Command::new(courier)
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("courier serve")?;
        let info = data.join("server.json");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = std::fs::read_to_string(&info)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            {
                return Ok(Server {
                    child,
                    data: data.to_path_buf(),
                    courier: courier.to_path_buf(),
                    addr: v["listen"].as_str().unwrap_or_default().to_string(),
                    ca_fingerprint: v["ca_fingerprint"].as_str().unwrap_or_default().to_string(),
                    max_connections: v["max_connections"].as_u64().unwrap_or(1000) as usize,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("courier serve {}: {status}", extra.join(" "));
            }
            if Instant::now() > deadline {
                bail!("courier serve did not start within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a CLI command against this server; its stdout.
    fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.courier)
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!(
                "courier {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    /// (peak RSS in MiB, CPU seconds so far) of the server process.
    fn usage(&self) -> Result<(f64, f64)> {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let hwm_kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("VmHWM")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name (which may hold spaces).
        let rest = stat.rsplit_once(')').context("stat")?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
        Ok((hwm_kib / 1024.0, ticks / clock_ticks()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// This process's limit on open files, raised to the hard limit.
fn open_files() -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((_, hard)) => {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
            hard.min(1 << 20) as usize
        }
        Err(_) => 1024,
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// What all agents of a step share.
struct Shared {
    base: String,
    /// Set when the task exists: dispatch times are measured from here.
    created: Mutex<Option<Instant>>,
    /// Seconds from task creation to each agent's assignment.
    dispatch: Mutex<Vec<f64>>,
    polled: AtomicUsize,
    succeeded: AtomicUsize,
    agents: usize,
    seq: AtomicUsize,
    /// Connections this process may have open: its own descriptors are
    /// limited like the server's. An agent holds one while its connection
    /// may be open (a held poll and the work after it) and gives it back
    /// when the server closed it and it waits to check in.
    conns: Arc<tokio::sync::Semaphore>,
    errors: AtomicUsize,
    stop: AtomicBool,
}

async fn step(courier: &Path, n: usize, sources: u8, serve_args: &[String]) -> Result<StepResult> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(courier, &dir.path().join("data"), serve_args)?;
    let token = server.cli(&["token", "create", "--auto-approve"])?;
    let payload = dir.path().join("payload.bin");
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&payload, &bytes)?;
    let pkg: serde_json::Value = serde_json::from_str(&server.cli(&[
        "package",
        "add",
        payload.to_str().context("path")?,
        "--install-command",
        "true",
        "--json",
    ])?)?;
    let package = pkg["id"].as_i64().context("package id")?;

    // Enrolment: every agent its own key and CSR.
    let base = format!("https://{}", server.addr);
    let enrolled = Instant::now();
    let enrol_client = reqwest::Client::builder()
        .tls_backend_preconfigured(courier::pki::enrol_client_config(&server.ca_fingerprint)?)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let mut enrollers = Vec::new();
    for _ in 0..64 {
        let (c, next, ids, base, token) = (
            enrol_client.clone(),
            next.clone(),
            ids.clone(),
            base.clone(),
            token.clone(),
        );
        enrollers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let name = format!("load-{i:06}");
                let (key_pem, csr_pem) = courier::pki::agent_key_and_csr(&name)?;
                let req = EnrollRequest {
                    token: token.clone(),
                    name,
                    csr_pem,
                    info: info(),
                };
                let r = c
                    .post(format!("{base}/v1/enroll"))
                    .json(&req)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("enrol: HTTP {}: {}", r.status(), r.text().await?);
                }
                let e: EnrollResponse = r.json().await?;
                ids.lock()
                    .map_err(|_| anyhow!("lock"))?
                    .push((i, key_pem, e));
            }
        }));
    }
    for e in enrollers {
        e.await??;
    }
    let enrol_secs = enrolled.elapsed().as_secs_f64();

    let shared = Arc::new(Shared {
        base,
        created: Mutex::new(None),
        dispatch: Mutex::new(Vec::with_capacity(n)),
        polled: AtomicUsize::new(0),
        succeeded: AtomicUsize::new(0),
        agents: n,
        seq: AtomicUsize::new(0),
        // No more than the server keeps: past that, connections would
        // queue in its listen backlog and time out.
        conns: Arc::new(tokio::sync::Semaphore::new(
            server
                .max_connections
                .min(open_files().saturating_sub(1000))
                .saturating_sub(500)
                .max(100),
        )),
        errors: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let ids = std::mem::take(&mut *ids.lock().map_err(|_| anyhow!("lock"))?);
    let mut agents = Vec::with_capacity(n);
    for (i, key_pem, e) in ids {
        let tls = courier::pki::agent_client_config(&e.ca_pem, &e.cert_pem, &key_pem)?;
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % sources as usize) as u8));
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .local_address(source)
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(20))
            .build()?;
        agents.push(tokio::spawn(agent(client, shared.clone())));
    }
    // Every agent has asked once (held, or told when to check in) before
    // the task exists.
    while shared.polled.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2 + n as u64 / 5000)).await;
    let (_, cpu_before) = server.usage()?;
    let t0 = Instant::now();
    *shared.created.lock().map_err(|_| anyhow!("lock"))? = Some(t0);
    server.cli(&["task", "create", "--package", &package.to_string(), "--all"])?;
    let mut last = Instant::now();
    while shared.succeeded.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if last.elapsed() > Duration::from_secs(10) {
            last = Instant::now();
            eprintln!(
                "scale {n}: {} succeeded after {:.0} s, {} errors",
                shared.succeeded.load(Ordering::Relaxed),
                t0.elapsed().as_secs_f64(),
                shared.errors.load(Ordering::Relaxed)
            );
        }
        if t0.elapsed() > Duration::from_secs(1200) {
            bail!("not done after 20 minutes");
        }
    }
    let done_secs = t0.elapsed().as_secs_f64();
    let (rss_peak_mib, cpu_after) = server.usage()?;
    shared.stop.store(true, Ordering::Relaxed);
    for a in agents {
        a.abort();
    }
    let mut dispatch = std::mem::take(&mut *shared.dispatch.lock().map_err(|_| anyhow!("lock"))?);
    Ok(StepResult {
        enrol_secs,
        done_secs,
        dispatch_p99: quantile(&mut dispatch, 0.99),
        rss_peak_mib,
        cpu_secs: cpu_after - cpu_before,
        errors: shared.errors.load(Ordering::Relaxed),
    })
}

fn info() -> AgentInfo {
    AgentInfo {
        os: "linux".into(),
        hostname: "load".into(),
        agent_version: "bench".into(),
        command_timeout: None,
        disks: Vec::new(),
    }
}

/// One agent: poll, and do what it is given.
async fn agent(client: reqwest::Client, shared: Arc<Shared>) {
    let mut first = true;
    let mut known: Vec<(i64, i64)> = Vec::new();
    let mut permit = None;
    // Agents start at different moments, as a fleet does: spread over a
    // second per 2,000 agents (25 s for 50,000).
    let spread = shared.agents as u64 / 2;
    if spread > 0 {
        let r = u64::from_le_bytes(
            *blake3::hash(&shared.seq.fetch_add(1, Ordering::Relaxed).to_le_bytes())
                .as_bytes()
                .first_chunk()
                .unwrap_or(&[0; 8]),
        );
        tokio::time::sleep(Duration::from_millis(r % spread)).await;
    }
    while !shared.stop.load(Ordering::Relaxed) {
        if permit.is_none() {
            permit = shared.conns.clone().acquire_owned().await.ok();
        }
        let req = PollRequest {
            info: info(),
            known: known.clone(),
        };
        if first {
            first = false;
            shared.polled.fetch_add(1, Ordering::Relaxed);
        }
        let resp = async {
            let r = client
                .post(format!("{}/v1/poll", shared.base))
                .json(&req)
                .timeout(Duration::from_secs(60))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("poll: HTTP {}", r.status());
            }
            Ok(r.json::<PollResponse>().await?)
        }
        .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                failed(&shared, &e);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        known.retain(|k| {
            resp.assignments
                .iter()
                .any(|a| (a.task_id, a.attempt) == *k)
        });
        for a in &resp.assignments {
            if known.contains(&(a.task_id, a.attempt)) {
                continue;
            }
            if let Some(t0) = *shared.created.lock().unwrap_or_else(|p| p.into_inner()) {
                let s = t0.elapsed().as_secs_f64();
                shared
                    .dispatch
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(s);
            }
            match work(&client, &shared.base, a).await {
                Ok(()) => {
                    shared.succeeded.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    failed(&shared, &e);
                    known.push((a.task_id, a.attempt));
                }
            }
        }
        if let Some(s) = resp.next_poll_secs {
            // The server closed the connection: wait without it.
            permit = None;
            tokio::time::sleep(Duration::from_secs(s)).await;
        }
    }
}

fn failed(shared: &Shared, e: &anyhow::Error) {
    let n = shared.errors.fetch_add(1, Ordering::Relaxed);
    if n < 5 || n.is_multiple_of(500) {
        let since = shared
            .created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|t| format!("{:.1} s after task create", t.elapsed().as_secs_f64()))
            .unwrap_or_else(|| "before the task".into());
        eprintln!(
            "scale: agent request failed ({since}, error {}): {e:#}",
            n + 1
        );
    }
}

/// Fetches and checks the content, then reports installing and success.
async fn work(client: &reqwest::Client, base: &str, a: &courier::proto::Assignment) -> Result<()> {
    let courier::proto::Work::Package(package) = &a.work else {
        anyhow::bail!("task {}: the benchmark sends packages only", a.task_id);
    };
    let hash = &package.hash;
    // As the agent does: content of one chunk needs no manifest.
    let m: Manifest = match Manifest::of_small(package.size, hash) {
        Some(m) => m,
        None => {
            ok(client
                .get(format!("{base}/v1/content/{hash}/manifest"))
                .send()
                .await?)?
            .json()
            .await?
        }
    };
    let body = ok(client
        .get(format!("{base}/v1/content/{hash}"))
        .send()
        .await?)?
    .bytes()
    .await?;
    if body.len() as u64 != m.size || m.chunk_size == 0 {
        bail!("content: {} bytes, manifest says {}", body.len(), m.size);
    }
    for (i, chunk) in body.chunks(m.chunk_size as usize).enumerate() {
        if m.chunks.get(i).map(String::as_str) != Some(blake3::hash(chunk).to_hex().as_str()) {
            bail!("content: chunk {i} does not match the manifest");
        }
    }
    for status in [ReportStatus::Installing, ReportStatus::Succeeded] {
        let r = Report {
            task_id: a.task_id,
            attempt: a.attempt,
            status,
            exit_code: (status == ReportStatus::Succeeded).then_some(0),
            message: None,
            output: None,
            transferred: m.size,
            retry: false,
            reboot_required: false,
            detection: None,
            log: None,
        };
        ok(client
            .post(format!("{base}/v1/report"))
            .json(&r)
            .send()
            .await?)?;
    }
    Ok(())
}

fn ok(r: reqwest::Response) -> Result<reqwest::Response> {
    if r.status().is_success() {
        Ok(r)
    } else {
        Err(anyhow!("{} {}", r.url().path(), r.status()))
    }
}
