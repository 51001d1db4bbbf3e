//! `<data>/courier.toml`: settings of the server and the console, under
//! the flags of the command that starts them.

use anyhow::{Result, bail};
use serde::Deserialize;

/// `[console]` of `<data>/courier.toml`; `--theme` wins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Theme name, as `--theme` takes it.
    pub theme: Option<String>,
}

/// `[server]` of `<data>/courier.toml`; flags of `courier serve` win.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: Option<String>,
    pub max_transfers: Option<usize>,
    /// "100MiB/s", "50MB/s", "8M", or bytes per second.
    pub bandwidth: Option<String>,
    pub max_polls: Option<usize>,
    pub checkin_secs: Option<u64>,
    pub stall_secs: Option<u64>,
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
