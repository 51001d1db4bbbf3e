//! Where admin requests go: a running server over its socket, or a
//! handler in this process.

use std::io::{BufRead, BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ApiError, FromResponse, Handler, Request, Response};

/// One reply line on the admin socket.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok(Response),
    Error(ApiError),
}

impl From<Result<Response, ApiError>> for Reply {
    fn from(r: Result<Response, ApiError>) -> Reply {
        match r {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Error(e),
        }
    }
}

/// Runs one request on `handler`; a panic inside it is an internal error
/// of that request, not of the caller.
pub fn handle_guarded(handler: &mut dyn Handler, req: Request) -> Result<Response, ApiError> {
    match catch_unwind(AssertUnwindSafe(|| handler.handle(req))) {
        Ok(r) => r,
        Err(payload) => {
            handler.recover();
            Err(ApiError::from_panic(payload.as_ref()))
        }
    }
}

/// A byte stream to a server: the admin socket on Unix, the admin pipe on
/// Windows.
pub trait Link: std::io::Read + Write + Send {}
impl<T: std::io::Read + Write + Send> Link for T {}

pub enum Client {
    Remote(BufReader<Box<dyn Link>>),
    Local(Box<dyn Handler>),
}

impl Client {
    /// Talks to a server over `link`.
    pub fn remote(link: Box<dyn Link>) -> Client {
        Client::Remote(BufReader::new(link))
    }

    /// Hands requests to `handler` in this process.
    pub fn local(handler: Box<dyn Handler>) -> Client {
        Client::Local(handler)
    }

    /// Sends one request and waits for its reply.
    pub fn call(&mut self, req: Request) -> Result<Response, ApiError> {
        match self {
            Client::Local(h) => handle_guarded(h.as_mut(), req),
            Client::Remote(stream) => {
                let lost = |e: std::io::Error| ApiError::link_lost(format!("admin socket: {e}"));
                let mut line = serde_json::to_string(&req)
                    .map_err(|e| ApiError::internal(format!("admin request: {e}")))?;
                line.push('\n');
                stream.get_mut().write_all(line.as_bytes()).map_err(lost)?;
                let mut reply = String::new();
                stream.read_line(&mut reply).map_err(lost)?;
                if reply.is_empty() {
                    return Err(ApiError::link_lost("the server closed the admin socket"));
                }
                match serde_json::from_str::<Reply>(&reply) {
                    Ok(Reply::Ok(v)) => Ok(v),
                    Ok(Reply::Error(e)) => Err(e),
                    Err(e) => Err(ApiError::internal(format!("admin socket: bad reply: {e}"))),
                }
            }
        }
    }

    /// Calls and takes the reply as `T`.
    pub fn call_as<T: FromResponse>(&mut self, req: Request) -> anyhow::Result<T> {
        Ok(T::from_response(self.call(req)?)?)
    }
}

impl Client {
    /// Connects to the server for this data dir if one runs (its admin
    /// endpoint answers), else hands requests to what `open_local` opens.
    pub fn connect(
        endpoint: &Path,
        open_local: impl FnOnce() -> anyhow::Result<Box<dyn Handler>>,
    ) -> anyhow::Result<Client> {
        match dial(endpoint) {
            Ok(link) => Ok(Client::remote(link)),
            // A pipe that exists but stays busy belongs to a server that
            // runs: working beside it on the same store would be wrong.
            #[cfg(windows)]
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(anyhow::anyhow!(
                "the server of this data dir does not answer on {} ({e}); try again",
                endpoint.display()
            )),
            Err(_) => Ok(Client::local(open_local()?)),
        }
    }
}

/// Opens the admin endpoint (`DataDir::admin_endpoint`) of a running
/// server: its Unix socket.
#[cfg(unix)]
pub fn dial(endpoint: &Path) -> std::io::Result<Box<dyn Link>> {
    Ok(Box::new(std::os::unix::net::UnixStream::connect(endpoint)?))
}

/// Opens the admin endpoint (`DataDir::admin_endpoint`) of a running
/// server: its named pipe, which a plain file handle reads and writes.
#[cfg(windows)]
pub fn dial(endpoint: &Path) -> std::io::Result<Box<dyn Link>> {
    use std::time::{Duration, Instant};
    // Each client takes a pipe instance; between one being taken and the
    // server creating the next, opening fails with "busy", briefly.
    const BUSY: i32 = windows_sys::Win32::Foundation::ERROR_PIPE_BUSY as i32;
    // A loaded machine can take a while to get there.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(endpoint)
        {
            Ok(f) => return Ok(Box::new(f)),
            Err(e) if e.raw_os_error() == Some(BUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}
