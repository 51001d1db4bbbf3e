//! Time as the rest of courier sees it.
//!
//! Every rule that depends on time (retention, schedules, last-seen) asks a
//! [`Clock`] instead of the system, so tests can set the hour and move it on
//! without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch, UTC.
pub type UnixTime = i64;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None` reads the system clock; `Some` is a manual clock shared by all
    /// clones, moved with [`Clock::advance`].
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands still at `at` until advanced.
    pub fn manual(at: UnixTime) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(at))),
        }
    }

    pub fn now(&self) -> UnixTime {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => jiff::Timestamp::now().as_second(),
        }
    }

    /// Moves a manual clock forward; a system clock ignores it.
    pub fn advance(&self, seconds: i64) {
        if let Some(t) = &self.manual {
            t.fetch_add(seconds, Ordering::SeqCst);
        }
    }
}

/// RFC 3339 in UTC, as every JSON output and log line shows time.
pub fn rfc3339(t: UnixTime) -> String {
    match jiff::Timestamp::from_second(t) {
        Ok(ts) => ts.to_string(),
        Err(_) => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::manual(1_000);
        let shared = c.clone();
        assert_eq!(c.now(), 1_000);
        shared.advance(86_400);
        assert_eq!(c.now(), 87_400);
    }

    #[test]
    fn formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
