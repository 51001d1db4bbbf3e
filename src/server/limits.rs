//! Limits on what content serving may take from the network, so a 1 GiB
//! package sent to 2,000 machines does not flatten it: at most N transfers
//! at once (the others wait their turn) and a shared bandwidth cap.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use crate::console::config::ConsoleConfig;

/// `[server]` of `<data>/courier.toml`; flags of `courier serve` win.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: Option<String>,
    pub max_transfers: Option<usize>,
    /// "100MiB/s", "50MB/s", "8M", or bytes per second.
    pub bandwidth: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
}

impl ConfigFile {
    /// Reads the config file if it exists; a malformed one is an error
    /// naming the file and the problem.
    pub fn load(path: &std::path::Path) -> Result<ConfigFile> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                anyhow::anyhow!("{}: {}", path.display(), e.to_string().replace('\n', " "))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => bail!("{}: {e}", path.display()),
        }
    }
}

/// Parses a rate in bytes per second: "100MiB/s", "50MB/s", "8M", "1048576".
pub fn parse_rate(s: &str) -> Result<u64> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t).trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("bandwidth '{s}': expected a rate like 100MiB/s"))?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "K" | "KiB" => 1024.0,
        "KB" | "kB" => 1e3,
        "M" | "MiB" => 1024.0 * 1024.0,
        "MB" => 1e6,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "GB" => 1e9,
        u => bail!("bandwidth '{s}': unknown unit '{u}' (B, KiB, MiB, GiB, KB, MB, GB)"),
    };
    let rate = (n * mult) as u64;
    if rate < 1024 {
        bail!("bandwidth '{s}': at least 1 KiB/s");
    }
    Ok(rate)
}

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

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("100MiB/s").unwrap(), 100 << 20);
        assert_eq!(parse_rate("50MB/s").unwrap(), 50_000_000);
        assert_eq!(parse_rate("8M").unwrap(), 8 << 20);
        assert_eq!(parse_rate("2048").unwrap(), 2048);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10XB/s").is_err());
        assert!(parse_rate("10").is_err());
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

    #[test]
    fn config_file_is_strict() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("courier.toml");
        std::fs::write(
            &p,
            "[server]\nmax_transfers = 10\nbandwidth = \"10MiB/s\"\n",
        )
        .unwrap();
        let c = ConfigFile::load(&p).unwrap();
        assert_eq!(c.server.max_transfers, Some(10));
        std::fs::write(&p, "[server]\nmax_transfer = 10\n").unwrap();
        let e = ConfigFile::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("courier.toml") && e.contains("max_transfer"),
            "{e}"
        );
        assert!(ConfigFile::load(&t.path().join("none.toml")).is_ok());
    }
}
