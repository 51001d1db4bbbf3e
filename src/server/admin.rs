//! The admin socket: one JSON request per line in, one JSON reply per line
//! out (see `api`). On Unix a socket in the data dir, mode 0600; on Windows
//! a named pipe (`DataDir::admin_endpoint`) that only Administrators and
//! the server's own user may open, and no other computer.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;

use super::Core;
use crate::api::{ApiError, Reply, Request, Response};

pub async fn serve(
    mut listener: Listener,
    core: Arc<Core>,
    listen: String,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("admin accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        tokio::spawn(answer(stream, core.clone(), listen.clone()));
    }
}

/// The longest request line read: a task to 100,000 destinations named
/// is about 2 MB.
pub const MAX_LINE: usize = 16 << 20;

/// Answers the requests of one client until it hangs up. A line longer
/// than `MAX_LINE` is answered with an error and the connection closed,
/// without reading the rest.
async fn answer(stream: impl AsyncRead + AsyncWrite, core: Arc<Core>, listen: String) {
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    loop {
        let mut line = Vec::new();
        match (&mut read)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.len() > MAX_LINE {
            let too_long = Reply::Error(ApiError::refused(format!(
                "bad request: longer than {} MiB",
                MAX_LINE >> 20
            )));
            if let Ok(mut out) = serde_json::to_string(&too_long) {
                out.push('\n');
                let _ = write.write_all(out.as_bytes()).await;
            }
            break;
        }
        let reply: Reply = match serde_json::from_slice::<Request>(&line) {
            Ok(req) => {
                let mut r = core.handle(req).await;
                // Only the server knows its address and traffic.
                if let Ok(Response::Status(s)) = &mut r {
                    s.listen = Some(listen.clone());
                    s.bytes_served = core.bytes_served.load(std::sync::atomic::Ordering::Relaxed);
                }
                r.into()
            }
            Err(e) => Reply::Error(ApiError::refused(format!("bad request: {e}"))),
        };
        let mut out = match serde_json::to_string(&reply) {
            Ok(s) => s,
            Err(e) => {
                serde_json::to_string(&Reply::Error(ApiError::internal(format!("reply: {e}"))))
                    .unwrap_or_default()
            }
        };
        out.push('\n');
        if write.write_all(out.as_bytes()).await.is_err() {
            break;
        }
    }
}

/// The admin socket, bound.
#[cfg(unix)]
pub struct Listener {
    inner: tokio::net::UnixListener,
}

#[cfg(unix)]
impl Listener {
    /// Binds the socket at `endpoint`, replacing a stale one (the caller has
    /// made sure no server answers there), readable by the owner only.
    pub fn bind(endpoint: &Path) -> Result<Listener> {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::remove_file(endpoint);
        let inner = tokio::net::UnixListener::bind(endpoint)
            .with_context(|| format!("{}: cannot bind admin socket", endpoint.display()))?;
        std::fs::set_permissions(endpoint, std::fs::Permissions::from_mode(0o600))?;
        Ok(Listener { inner })
    }

    async fn accept(&mut self) -> std::io::Result<tokio::net::UnixStream> {
        Ok(self.inner.accept().await?.0)
    }
}

/// Removes the socket file once the server stopped.
#[cfg(unix)]
pub fn remove(endpoint: &Path) {
    let _ = std::fs::remove_file(endpoint);
}

/// The admin pipe: the instance the next client will connect to.
#[cfg(windows)]
pub struct Listener {
    next: tokio::net::windows::named_pipe::NamedPipeServer,
    name: std::path::PathBuf,
    access: crate::win::pipe::PipeAccess,
}

#[cfg(windows)]
impl Listener {
    /// Creates the pipe at `endpoint`. Refused if another process already
    /// serves that name (another server of the same data dir, or a process
    /// squatting on it).
    pub fn bind(endpoint: &Path) -> Result<Listener> {
        let access = crate::win::pipe::PipeAccess::owner_and_administrators()
            .context("admin pipe: cannot build its access list")?;
        let next = access
            .create(endpoint, true)
            .with_context(|| format!("{}: cannot create admin pipe", endpoint.display()))?;
        Ok(Listener {
            next,
            name: endpoint.to_path_buf(),
            access,
        })
    }

    async fn accept(
        &mut self,
    ) -> std::io::Result<tokio::net::windows::named_pipe::NamedPipeServer> {
        let connected = self.next.connect().await;
        // A pipe instance serves one client: the next one is created now,
        // whether this one connected or broke, so clients never find the
        // name missing while the server runs.
        let fresh = self.access.create(&self.name, false)?;
        let this = std::mem::replace(&mut self.next, fresh);
        connected.map(|()| this)
    }
}

/// Nothing to remove: a pipe goes with its last handle.
#[cfg(windows)]
pub fn remove(_endpoint: &Path) {}
