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

#[cfg(test)]
mod tests {
    use super::*;

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
