//! What a stranger on the network can hold, and for how long: the limits
//! of the agent listener that come before any certificate is known
//! (docs/SECURITY.md, "Limits").
//!
//! - A connection without a client certificate (only enrolment needs one
//!   without) counts against its address: at most [`ANONYMOUS_PER_ADDRESS`]
//!   at once per address and [`Guard::anonymous_total`] in all.
//! - Refused enrolments are counted per address over a minute: the first
//!   [`LOGGED_PER_MINUTE`] are logged as events of their own, the rest as
//!   one event when the minute ends, and past [`REFUSALS_PER_MINUTE`] the
//!   address is answered 429 without the request reaching the store.
//! - A request body must arrive within [`BODY_SECS`], and a response
//!   that the peer stops reading is cut after [`STALL_SECS`] without
//!   progress ([`Stalled`]), so neither a slow sender nor a slow reader
//!   keeps a connection, a transfer slot or a descriptor.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Connections without a client certificate one address may hold: a
/// site enrolling a few hundred computers behind one NAT address at once
/// gets through (an agent turned away retries), one stranger cannot hold
/// the server's descriptors.
pub const ANONYMOUS_PER_ADDRESS: usize = 128;
/// Refused enrolments an address may cause in a minute before it is
/// answered 429 without a look at the store.
pub const REFUSALS_PER_MINUTE: u32 = 20;
/// Refused enrolments of an address logged one by one in a minute.
pub const LOGGED_PER_MINUTE: u32 = 5;
/// Seconds a request's body may take to arrive, from its headers.
pub const BODY_SECS: u64 = 20;
/// Seconds a response may wait for the peer to read before the
/// connection is cut.
pub const STALL_SECS: u64 = 20;

const MINUTE: Duration = Duration::from_secs(60);

/// The listener's per-address accounting.
#[derive(Debug)]
pub struct Guard {
    anonymous: Mutex<HashMap<IpAddr, usize>>,
    /// Anonymous connections allowed from all addresses together.
    pub anonymous_total: usize,
    refusals: Mutex<HashMap<IpAddr, Refusals>>,
}

#[derive(Debug)]
struct Refusals {
    since: Instant,
    count: u32,
}

/// Refused enrolments of one address in a minute that ended, beyond the
/// ones logged when they happened.
#[derive(Debug, PartialEq, Eq)]
pub struct RefusalSummary {
    pub addr: IpAddr,
    pub more: u32,
}

/// One anonymous connection, counted until dropped.
pub struct Anonymous {
    guard: Arc<Guard>,
    addr: IpAddr,
}

impl Drop for Anonymous {
    fn drop(&mut self) {
        let mut m = lock(&self.guard.anonymous);
        if let Some(n) = m.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.addr);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Guard {
    /// `max_open`: the connections the listener keeps in all; an eighth
    /// of them may be anonymous.
    pub fn new(max_open: usize) -> Guard {
        Guard {
            anonymous: Mutex::new(HashMap::new()),
            anonymous_total: (max_open / 8).max(ANONYMOUS_PER_ADDRESS),
            refusals: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a connection without a certificate from `addr`, or None
    /// when its address (or everyone) already holds as many as allowed.
    pub fn anonymous(self: &Arc<Self>, addr: IpAddr) -> Option<Anonymous> {
        let mut m = lock(&self.anonymous);
        let total: usize = m.values().sum();
        let mine = m.entry(addr).or_insert(0);
        if *mine >= ANONYMOUS_PER_ADDRESS || total >= self.anonymous_total {
            if *mine == 0 {
                m.remove(&addr);
            }
            return None;
        }
        *mine += 1;
        Some(Anonymous {
            guard: self.clone(),
            addr,
        })
    }

    /// Whether `addr` may try an enrolment now.
    pub fn may_enrol(&self, addr: IpAddr, now: Instant) -> bool {
        let m = lock(&self.refusals);
        m.get(&addr)
            .is_none_or(|r| now.duration_since(r.since) >= MINUTE || r.count < REFUSALS_PER_MINUTE)
    }

    /// Counts a refused enrolment from `addr`; true when it is the first
    /// of its minute, to be logged on its own.
    pub fn refused(&self, addr: IpAddr, now: Instant) -> bool {
        let mut m = lock(&self.refusals);
        match m.get_mut(&addr) {
            Some(r) if now.duration_since(r.since) < MINUTE => {
                r.count += 1;
                r.count <= LOGGED_PER_MINUTE
            }
            // A minute that ended unsummarised is summarised by the next
            // `ended` call; this refusal starts a new one.
            _ => {
                m.insert(
                    addr,
                    Refusals {
                        since: now,
                        count: 1,
                    },
                );
                true
            }
        }
    }

    /// The minutes that ended, with the refusals beyond their first;
    /// forgets them.
    pub fn ended(&self, now: Instant) -> Vec<RefusalSummary> {
        let mut m = lock(&self.refusals);
        let mut out = Vec::new();
        m.retain(|addr, r| {
            if now.duration_since(r.since) < MINUTE {
                return true;
            }
            if r.count > LOGGED_PER_MINUTE {
                out.push(RefusalSummary {
                    addr: *addr,
                    more: r.count - LOGGED_PER_MINUTE,
                });
            }
            false
        });
        out.sort_by_key(|s| s.addr);
        out
    }
}

/// A connection whose writes fail once the peer has read nothing for
/// `limit`: a response nobody reads would otherwise hold its connection,
/// its transfer slot and its content file for as long as the peer likes.
pub struct Stalled<T> {
    io: T,
    limit: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<T> Stalled<T> {
    pub fn new(io: T, limit: Duration) -> Stalled<T> {
        Stalled {
            io,
            limit,
            waiting: None,
        }
    }

    /// After a write that could not proceed: an error once it has not
    /// for `limit`.
    fn check<R>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if r.is_ready() {
            self.waiting = None;
            return r;
        }
        let limit = self.limit;
        let timer = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer read nothing for {} s", limit.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stalled<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stalled<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.check(cx, r)
    }

    /// Forwarded, so that hyper hands a response's buffers to TLS as
    /// they are instead of copying each into a buffer of its own first
    /// (it does when the stream cannot take a vectored write): one copy
    /// less per byte of content served.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.check(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.check(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_shutdown(cx);
        self.check(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn anonymous_connections_are_bounded_per_address_and_in_all() {
        let total = 2 * ANONYMOUS_PER_ADDRESS + 8;
        let g = Arc::new(Guard::new(8 * total));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let held: Vec<_> = (0..ANONYMOUS_PER_ADDRESS)
            .map(|_| g.anonymous(a).expect("under the limit"))
            .collect();
        assert!(g.anonymous(a).is_none(), "one address past its share");
        let other: Vec<_> = (0..ANONYMOUS_PER_ADDRESS)
            .map(|_| g.anonymous(b).expect("another address has its own"))
            .collect();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let more: Vec<_> = (0..8).map(|_| g.anonymous(c).unwrap()).collect();
        assert!(
            g.anonymous(c).is_none(),
            "all addresses past the total ({total})"
        );
        drop(held);
        assert!(
            g.anonymous(a).is_some(),
            "released when the connections end"
        );
        drop((other, more));
        assert!(lock(&g.anonymous).len() <= 1);
    }

    #[test]
    fn refusals_are_logged_once_a_minute_and_then_turned_away() {
        let g = Guard::new(100);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..REFUSALS_PER_MINUTE {
            assert!(g.may_enrol(a, t0));
            assert_eq!(g.refused(a, t0), i < LOGGED_PER_MINUTE, "refusal {i}");
        }
        assert!(!g.may_enrol(a, t0), "past the limit");
        assert!(g.may_enrol("192.0.2.9".parse().unwrap(), t0));
        assert!(g.ended(t0 + Duration::from_secs(30)).is_empty());
        let later = t0 + MINUTE;
        assert_eq!(
            g.ended(later),
            vec![RefusalSummary {
                addr: a,
                more: REFUSALS_PER_MINUTE - LOGGED_PER_MINUTE
            }]
        );
        assert!(g.may_enrol(a, later));
        assert!(g.refused(a, later), "a new minute logs its first again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_fails_after_the_limit() {
        let (near, _far) = tokio::io::duplex(1024);
        let mut s = Stalled::new(near, Duration::from_secs(STALL_SECS));
        let start = Instant::now();
        let mut sent = 0usize;
        let err = loop {
            match s.write(&[0u8; 512]).await {
                Ok(n) => sent += n,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(sent, 1024, "the buffer filled, then nothing moved");
        assert_eq!(start.elapsed().as_secs(), STALL_SECS);
    }

    /// A stream that takes vectored writes still does through the guard,
    /// which is what makes hyper send content without copying it first;
    /// and the guard's limit applies to them as to plain writes.
    #[tokio::test(start_paused = true)]
    async fn vectored_writes_pass_through_and_are_watched() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        assert!(tcp.is_write_vectored());
        assert!(Stalled::new(tcp, Duration::from_secs(1)).is_write_vectored());

        let (near, _far) = tokio::io::duplex(1024);
        let mut s = Stalled::new(near, Duration::from_secs(STALL_SECS));
        let bufs = [io::IoSlice::new(&[1u8; 700]), io::IoSlice::new(&[2u8; 700])];
        let err = loop {
            if let Err(e) = s.write_vectored(&bufs).await {
                break e;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
