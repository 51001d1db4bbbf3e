//! Connections cut mid-transfer by a proxy between agent and server: the
//! download resumes where the verified bytes end, so each cut costs at
//! most about one chunk sent again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::add_package;
use crate::procs::{Agent, Server, create_task, dest, task_id};

const MIB: u64 = 1 << 20;
/// `courier::content::CHUNK_SIZE`: what the agent verifies at a time.
const CHUNK: u64 = MIB;

/// A TCP proxy to `upstream` that cuts every connection once it has
/// carried `cut_after` bytes from the server, counting the bytes the server
/// sent through it and the cuts it made.
struct Proxy {
    addr: String,
    sent: Arc<AtomicU64>,
    cuts: Arc<AtomicU64>,
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    fn start(upstream: &str, cut_after: u64) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (sent, cuts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let upstream = upstream.to_string();
        let (s, c) = (sent.clone(), cuts.clone());
        rt.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let (up, s, c) = (upstream.clone(), s.clone(), c.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&up).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    });
                    let mut carried = 0u64;
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        s.fetch_add(n as u64, Ordering::Relaxed);
                        carried += n as u64;
                        if carried >= cut_after {
                            c.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    up.abort();
                    // Dropping both halves cuts the connection (RST or FIN).
                });
            }
        });
        Proxy {
            addr,
            sent,
            cuts,
            _rt: rt,
        }
    }
}

#[test]
fn a_transfer_cut_again_and_again_resumes_and_resends_under_a_chunk_a_cut() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let proxy = Proxy::start(&s.addr, 6 * MIB + 12345);
    let mut a = Agent::enrol_at(&proxy.addr, &token, "cut-01");
    a.wait_enrolled();
    let size = 48 * MIB;
    let src = s.input("big.bin");
    let mut data = vec![0u8; size as usize];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&src, &data).unwrap();
    let place = tempfile::tempdir().unwrap();
    let folder = place.path().join("out");
    let pkg = add_package(&s, &src, &["--folder", folder.to_str().unwrap()]);
    let t = create_task(&s, &pkg, "cut-01", &[]);
    let done = s.wait_task_finished(task_id(&t), &[&a]);
    assert_eq!(dest(&done, "cut-01")["status"], "succeeded", "{done:#}");
    assert_eq!(std::fs::read(folder.join("big.bin")).unwrap(), data);
    let (sent, cuts) = (
        proxy.sent.load(Ordering::Relaxed),
        proxy.cuts.load(Ordering::Relaxed),
    );
    assert!(
        cuts >= 7,
        "only {cuts} cuts: the test did not cut the transfer"
    );
    // What the server sent beyond the package: polls, manifests, reports
    // (a few kB each) and, per cut, at most the chunk being verified.
    let extra = sent.saturating_sub(size);
    assert!(
        extra <= cuts * (CHUNK + 64 * 1024) + 256 * 1024,
        "{extra} bytes sent again over {cuts} cuts ({} per cut)",
        extra / cuts.max(1)
    );
    eprintln!(
        "cuts: {size} bytes through {cuts} cuts, {extra} bytes more ({} a cut)",
        extra / cuts
    );
}
