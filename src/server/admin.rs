//! The admin socket: one JSON request per line in, one JSON reply per line
//! out (see `api`). Reachable only through the 0600 socket in the data dir.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::watch;

use super::Core;
use crate::api::{ApiError, Reply, Request, Response};

pub async fn serve(
    listener: UnixListener,
    core: Arc<Core>,
    listen: String,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("admin accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let core = core.clone();
        let listen = listen.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply: Reply = match serde_json::from_str::<Request>(&line) {
                    Ok(req) => {
                        let mut r = core.handle(req).await;
                        // Only the server knows its address and traffic.
                        if let Ok(Response::Status(s)) = &mut r {
                            s.listen = Some(listen.clone());
                            s.bytes_served =
                                core.bytes_served.load(std::sync::atomic::Ordering::Relaxed);
                        }
                        r.into()
                    }
                    Err(e) => Reply::Error(ApiError::refused(format!("bad request: {e}"))),
                };
                let mut out = match serde_json::to_string(&reply) {
                    Ok(s) => s,
                    Err(e) => serde_json::to_string(&Reply::Error(ApiError::internal(format!(
                        "reply: {e}"
                    ))))
                    .unwrap_or_default(),
                };
                out.push('\n');
                if write.write_all(out.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}
