//! Limits on what content serving may take from the network, so a 1 GiB
//! package sent to 2,000 machines does not flatten it: at most N transfers
//! at once (the others wait their turn) and a shared bandwidth cap.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The shared limits of one server.
#[derive(Debug, Default)]
pub struct Limits {
    transfers: Option<Arc<Semaphore>>,
    rate: Option<Rate>,
}

#[derive(Debug)]
struct Rate {
    bytes_per_sec: f64,
    /// When the link is next free, in the virtual schedule of all streams.
    next: Mutex<Instant>,
}

impl Limits {
    pub fn new(max_transfers: Option<usize>, bytes_per_sec: Option<u64>) -> Limits {
        Limits {
            transfers: max_transfers
                .filter(|n| *n > 0)
                .map(|n| Arc::new(Semaphore::new(n))),
            rate: bytes_per_sec.map(|r| Rate {
                bytes_per_sec: r as f64,
                next: Mutex::new(Instant::now()),
            }),
        }
    }

    /// Waits for a transfer slot; held until the returned permit drops.
    pub async fn transfer_slot(&self) -> Option<OwnedSemaphorePermit> {
        match &self.transfers {
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        }
    }

    /// Waits until `n` more bytes fit under the bandwidth cap.
    pub async fn spend(&self, n: usize) {
        let Some(rate) = &self.rate else { return };
        let until = {
            let mut next = match rate.next.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let now = Instant::now();
            // Idle time is not saved up beyond a short burst.
            let start = (*next).max(now - Duration::from_millis(50));
            *next = start + Duration::from_secs_f64(n as f64 / rate.bytes_per_sec);
            *next
        };
        tokio::time::sleep_until(until).await;
    }
}

/// Open files kept back from connections: the database, its WAL, logs,
/// content files being served (one per transfer).
const RESERVED_FILES: usize = 256;

/// How many agent connections the server keeps, and how many of them may
/// be long-polls held open. Each connection is a file descriptor, and the
/// process has a hard limit on those (20,000 on the project's machines):
/// with more agents than that, the agents past `polls` are answered at
/// once and check in again later ([`Connections::checkin_secs`]) instead
/// of waiting on an open connection.
#[derive(Debug)]
pub struct Connections {
    /// Connections open at once; past it, accept waits.
    pub open: Arc<Semaphore>,
    pub max_open: usize,
    /// Long-polls held at once.
    pub polls: Arc<Semaphore>,
    /// Content files open at once (a transfer holds one as long as its
    /// body, a manifest briefly): what the descriptors beside the
    /// connections allow, so a burst of transfers waits instead of
    /// failing to open.
    files: Arc<Semaphore>,
    pub max_polls: usize,
    /// Mean seconds between check-ins of agents without a held poll.
    pub checkin_secs: u64,
}

impl Connections {
    /// Sizes the pools from the open-file limit (raised to its hard limit
    /// first), or from `max_polls` when given.
    pub fn new(max_polls: Option<usize>, checkin_secs: u64) -> Connections {
        let files = raise_open_files().min(131_072);
        // Two thirds of the descriptors for held polls, a twelfth for
        // other connections, and the last quarter for content files
        // (`file_slot`): any connection, held polls included, may be
        // sending one.
        let usable = files.saturating_sub(RESERVED_FILES);
        let max_open = (usable * 3 / 4).max(16);
        let max_polls = max_polls.unwrap_or(usable * 2 / 3).min(max_open);
        let files = usable.saturating_sub(max_open).max(16);
        Connections {
            files: Arc::new(Semaphore::new(files)),
            open: Arc::new(Semaphore::new(max_open)),
            max_open,
            polls: Arc::new(Semaphore::new(max_polls)),
            max_polls,
            checkin_secs: checkin_secs.max(1),
        }
    }

    /// More connections are open than held polls account for: an agent's
    /// connection is closed once its work is reported, so idle
    /// keep-alives do not take the descriptors new agents need.
    pub fn crowded(&self) -> bool {
        self.max_open - self.open.available_permits() > self.max_polls
    }

    /// Waits for a descriptor to open a content file with; held until the
    /// returned permit drops.
    pub async fn file_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.files.clone().acquire_owned().await.ok()
    }

    /// Seconds until an agent without a held poll asks again: the mean
    /// interval, spread by a third either way so check-ins do not bunch.
    pub fn next_checkin(&self) -> u64 {
        let mean = self.checkin_secs;
        let spread = (mean * 2 / 3).max(1);
        let r = getrandom::u64().unwrap_or(0);
        mean - mean / 3 + r % spread
    }
}

/// Raises this process's soft limit on open files to the hard limit and
/// returns it.
#[cfg(unix)]
fn raise_open_files() -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard as usize
            } else {
                soft as usize
            }
        }
        Err(_) => 1024,
    }
}

/// Windows has no per-process descriptor limit of this kind.
#[cfg(windows)]
fn raise_open_files() -> usize {
    25_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_room_for_files_and_check_ins_spread_around_the_mean() {
        let c = Connections::new(None, 30);
        let files = raise_open_files().min(131_072);
        assert!(c.max_open + RESERVED_FILES <= files, "{c:?} of {files}");
        assert!(c.max_polls < c.max_open, "{c:?}");
        assert!(!c.crowded());
        let waits: Vec<u64> = (0..200).map(|_| c.next_checkin()).collect();
        assert!(waits.iter().all(|w| (20..40).contains(w)), "{waits:?}");
        assert!(waits.iter().any(|w| *w != waits[0]), "no spread: {waits:?}");
        // Past the held polls, the pool is crowded.
        let c = Connections::new(Some(2), 30);
        let held: Vec<_> = (0..3)
            .map(|_| c.open.clone().try_acquire_owned().unwrap())
            .collect();
        assert!(c.crowded());
        drop(held);
        assert!(!c.crowded());
    }

    #[tokio::test(start_paused = true)]
    async fn bandwidth_is_shared_across_streams() {
        let l = Arc::new(Limits::new(None, Some(1 << 20)));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..4 {
                    l.spend(128 << 10).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 4 streams × 512 KiB at 1 MiB/s: about 2 s of (paused, virtual) time.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took <= Duration::from_millis(2100),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn transfer_slots_are_bounded() {
        let l = Limits::new(Some(2), None);
        let a = l.transfer_slot().await;
        let _b = l.transfer_slot().await;
        let third = tokio::time::timeout(Duration::from_millis(50), l.transfer_slot()).await;
        assert!(third.is_err(), "a third transfer must wait");
        drop(a);
        let third = tokio::time::timeout(Duration::from_secs(10), l.transfer_slot()).await;
        assert!(third.is_ok());
    }
}
