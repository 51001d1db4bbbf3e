//! Sending the computer's software inventory: at start, after every
//! attempt, and when it changes (read again every 15 minutes and compared
//! by digest, so an unchanged inventory costs one local read and nothing
//! on the network). The server keeps the last one per destination; the
//! agent asks which digest it holds before sending the whole list.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use super::{Agent, jitter, root_cause};
use crate::proto::InventoryHeld;

/// How often the inventory is read again to notice a change.
const CHECK_EVERY: Duration = Duration::from_secs(15 * 60);

/// How soon a send that failed is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Keeps the server's copy of the inventory current, for as long as the
/// agent serves this server.
pub(super) async fn sender(agent: Arc<Agent>) {
    let mut held: Option<String> = None;
    let mut asked = false;
    loop {
        let wait = match send_if_changed(&agent, &mut held, &mut asked).await {
            Ok(()) => CHECK_EVERY,
            Err(e) => {
                tracing::warn!("inventory not sent: {e:#}; trying again in a minute");
                RETRY_AFTER
            }
        };
        tokio::select! {
            _ = agent.inventory.notified() => {}
            _ = tokio::time::sleep(jitter(wait)) => {}
        }
    }
}

async fn send_if_changed(agent: &Agent, held: &mut Option<String>, asked: &mut bool) -> Result<()> {
    let mut reader = Reader::start()?;
    let digest = reader.digest().await?;
    if !*asked {
        let r = agent
            .client()
            .get(format!("{}/v1/inventory", agent.base))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", root_cause(&e)))?;
        if !r.status().is_success() {
            bail!("{}", crate::agent::fetch::error_text(r).await);
        }
        *held = r.json::<InventoryHeld>().await?.digest;
        *asked = true;
    }
    if held.as_deref() == Some(digest.as_str()) {
        return Ok(());
    }
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(reader.rest()));
    let r = agent
        .client()
        .post(format!("{}/v1/inventory", agent.base))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", root_cause(&e)))?;
    reader.finish().await?;
    if !r.status().is_success() {
        bail!("{}", crate::agent::fetch::error_text(r).await);
    }
    tracing::info!("inventory sent");
    *held = Some(digest);
    Ok(())
}

/// `inventory --wire` run as a child of this agent, its output streamed
/// to the server: the list (about 240 KB of JSON for 760 Debian
/// packages) never sits in the agent's own memory, where its freed pages
/// stayed resident for the agent's life (docs/PERFORMANCE.md, "Agent
/// memory").
struct Reader {
    child: tokio::process::Child,
    out: Option<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Reader {
    fn start() -> Result<Reader> {
        let (exe, args) = self_command()?;
        let mut cmd = tokio::process::Command::new(exe);
        // No console window for the child on a desktop session.
        #[cfg(windows)]
        cmd.creation_flags(0x0800_0000);
        let mut child = cmd
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot read the inventory: {e}"))?;
        let out = child.stdout.take().map(tokio::io::BufReader::new);
        Ok(Reader { child, out })
    }

    /// The first line: the list's digest.
    async fn digest(&mut self) -> Result<String> {
        use tokio::io::AsyncBufReadExt;
        let mut line = String::new();
        if let Some(out) = self.out.as_mut() {
            out.read_line(&mut line).await?;
        }
        let digest = line.trim().to_string();
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.failed().await);
        }
        Ok(digest)
    }

    /// Why the command gave no list: the last line it wrote to its
    /// standard error (`dpkg-query failed (exit status: 2)`), else how it
    /// ended.
    async fn failed(&mut self) -> anyhow::Error {
        use tokio::io::AsyncReadExt;
        self.out = None;
        let mut said = String::new();
        if let Some(err) = self.child.stderr.take() {
            let _ = err.take(4096).read_to_string(&mut said).await;
        }
        let ended = match self.child.wait().await {
            Ok(status) => format!("the inventory command ended ({status})"),
            Err(e) => format!("the inventory command was lost: {e}"),
        };
        let why = said
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(|l| {
                // Without the program's name that starts every error line.
                let l = l.strip_prefix("courier-agent: ").unwrap_or(l);
                l.strip_prefix("courier: ").unwrap_or(l).to_string()
            })
            .unwrap_or(ended);
        anyhow::anyhow!("cannot read the inventory: {why}")
    }

    /// What follows the digest: the list as JSON.
    fn rest(&mut self) -> tokio::io::BufReader<tokio::process::ChildStdout> {
        self.out
            .take()
            .expect("the inventory's output is read once")
    }

    /// The command ended well: the list sent was whole.
    async fn finish(mut self) -> Result<()> {
        if !self.child.wait().await?.success() {
            return Err(self.failed().await);
        }
        Ok(())
    }
}

/// This program and the words that run `inventory --wire` in it:
/// `courier` needs the `agent` word, `courier-agent` does not. On Linux
/// the running program's own file (`/proc/self/exe`), which still runs
/// when an upgrade has replaced it on disk.
fn self_command() -> Result<(std::path::PathBuf, Vec<&'static str>)> {
    let exe = std::env::current_exe()?;
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let alone = name
        .trim_end_matches(" (deleted)")
        .trim_end_matches(".exe")
        .eq_ignore_ascii_case("courier-agent");
    let mut args = if alone { vec![] } else { vec!["agent"] };
    args.extend(["inventory", "--wire"]);
    #[cfg(target_os = "linux")]
    let exe = std::path::PathBuf::from("/proc/self/exe");
    Ok((exe, args))
}
