//! Work that stops moving is flagged stuck: a real agent whose connection
//! to the server goes silent mid-transfer (a proxy that stops forwarding,
//! as a dead link does), seen in the task, in triage and in the status.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::add_package;
use crate::procs::{Agent, DEADLINE, Server, create_task, dest, task_id, wait_until};

/// A TCP proxy to `upstream` that forwards until the bytes it carried from
/// the server reach `freeze_at`, then forwards nothing more in either
/// direction, holding every connection open: the peers see a link that
/// went silent.
struct FreezingProxy {
    addr: String,
    carried: Arc<AtomicU64>,
    freeze_at: Arc<AtomicU64>,
    _rt: tokio::runtime::Runtime,
}

impl FreezingProxy {
    fn start(upstream: &str) -> FreezingProxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let carried = Arc::new(AtomicU64::new(0));
        let freeze_at = Arc::new(AtomicU64::new(u64::MAX));
        let upstream = upstream.to_string();
        let (c, z) = (carried.clone(), freeze_at.clone());
        rt.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let (up, c, z) = (upstream.clone(), c.clone(), z.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&up).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pump(cr, sw, c.clone(), z.clone(), false));
                    pump(sr, cw, c, z, true).await;
                });
            }
        });
        FreezingProxy {
            addr,
            carried,
            freeze_at,
            _rt: rt,
        }
    }

    /// Goes silent once `more` bytes have come from the server.
    fn freeze_after(&self, more: u64) {
        let now = self.carried.load(Ordering::SeqCst);
        self.freeze_at.store(now + more, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until frozen, counting what comes from the
/// server. Frozen, it neither reads nor writes, and never closes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    carried: Arc<AtomicU64>,
    freeze_at: Arc<AtomicU64>,
    from_server: bool,
) {
    let frozen = || carried.load(Ordering::SeqCst) >= freeze_at.load(Ordering::SeqCst);
    let mut buf = vec![0u8; 16 << 10];
    loop {
        if frozen() {
            std::future::pending::<()>().await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen() {
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if from_server {
            carried.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_stalled_transfer_is_flagged_stuck_in_the_task_triage_and_status() {
    let s = Server::start_with(&["--stall-secs", "2"]);
    let (_, token) = s.token(true);
    let proxy = FreezingProxy::start(&s.addr);
    let mut a = Agent::enrol_at(&proxy.addr, &token, "pc-1");
    a.wait_enrolled();
    let src = s.input("big.bin");
    let data: Vec<u8> = (0..24u32 << 20)
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect();
    std::fs::write(&src, &data).unwrap();
    let place = tempfile::tempdir().unwrap();
    let pkg = add_package(
        &s,
        &src,
        &["--folder", place.path().join("out").to_str().unwrap()],
    );
    // Silent once 4 MiB of the 24 have passed.
    proxy.freeze_after(4 << 20);
    let t = create_task(&s, &pkg, "pc-1", &[]);
    let id = task_id(&t);

    let row = wait_until(
        DEADLINE,
        "the destination to be flagged stuck",
        || {
            let t = s.json(&["task", "show", &id.to_string(), "--json"]);
            let d = dest(&t, "pc-1").clone();
            d["stuck"].is_object().then_some(d)
        },
        || a.diagnostics(),
    );
    assert_eq!(row["status"], "transferring", "{row:#}");
    assert_eq!(row["stuck"]["kind"], "stalled", "{row:#}");
    assert!(
        row["stuck"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("no transfer progress for ")),
        "{row:#}"
    );
    assert!(row["stuck"]["since"].is_string(), "{row:#}");
    assert!(row["state_since"].is_string(), "{row:#}");

    let status = s.json(&["status", "--json"]);
    assert_eq!(status["stuck"], 1, "{status:#}");
    assert!(
        s.ok(&["status"])
            .contains("stuck      1 destination not moving"),
        "{status:#}"
    );
    let groups = s.json(&["triage", "--json"]);
    assert_eq!(
        groups[0]["cause"], "stuck · no transfer progress",
        "{groups:#}"
    );
    assert_eq!(groups[0]["destinations"][0]["destination"], "pc-1");
    assert!(s.ok(&["triage"]).contains("no transfer progress for"));
    assert!(
        s.ok(&["task", "show", &id.to_string()])
            .contains("transferring (stuck)"),
        "task show text"
    );
    drop(a);
}
