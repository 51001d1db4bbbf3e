//! The console's settings in `<data>/courier.toml`.

use serde::Deserialize;

/// `[console]` of `<data>/courier.toml`; `--theme` wins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Theme name, as `--theme` takes it.
    pub theme: Option<String>,
}
