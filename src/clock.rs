//! Time as the rest of courier sees it.
//!
//! Every rule that depends on time (retention, schedules, last-seen) asks a
//! [`Clock`] instead of the system, so tests can set the hour and move it on
//! without waiting.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Seconds since the Unix epoch, UTC.
pub type UnixTime = i64;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None` reads the system clock; `Some` is a manual clock shared by all
    /// clones, moved with [`Clock::advance`].
    manual: Option<Arc<AtomicI64>>,
    /// System time shifted by the number of seconds in a file, for tests of
    /// whole processes (`COURIER_CLOCK_FILE`).
    offset: Option<Arc<OffsetFile>>,
}

/// A file holding a number of seconds to add to the system time. Re-read
/// at most every 100 ms so a test can move a running server's time.
#[derive(Debug)]
struct OffsetFile {
    path: PathBuf,
    cached: Mutex<Option<(Instant, i64)>>,
}

impl OffsetFile {
    fn offset(&self) -> i64 {
        let mut c = match self.cached.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if let Some((at, v)) = *c
            && at.elapsed() < Duration::from_millis(100)
        {
            return v;
        }
        let v = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        *c = Some((Instant::now(), v));
        v
    }
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    /// The system clock, unless `COURIER_CLOCK_FILE` names a file whose
    /// number of seconds is added to it (how the integration tests age
    /// tasks by 31 days without waiting).
    pub fn from_env() -> Clock {
        match std::env::var_os("COURIER_CLOCK_FILE").filter(|v| !v.is_empty()) {
            Some(p) => Clock {
                manual: None,
                offset: Some(Arc::new(OffsetFile {
                    path: PathBuf::from(p),
                    cached: Mutex::new(None),
                })),
            },
            None => Clock::system(),
        }
    }

    /// A clock that stands still at `at` until advanced.
    pub fn manual(at: UnixTime) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(at))),
            offset: None,
        }
    }

    pub fn now(&self) -> UnixTime {
        match (&self.manual, &self.offset) {
            (Some(t), _) => t.load(Ordering::SeqCst),
            (None, Some(f)) => jiff::Timestamp::now().as_second() + f.offset(),
            (None, None) => jiff::Timestamp::now().as_second(),
        }
    }

    /// Moves a manual clock forward; a system clock ignores it.
    pub fn advance(&self, seconds: i64) {
        if let Some(t) = &self.manual {
            t.fetch_add(seconds, Ordering::SeqCst);
        }
    }
}

/// Parses a start time as admins type it: RFC 3339, or a local
/// "YYYY-MM-DD HH:MM" in this machine's time zone.
pub fn parse_time(s: &str) -> Result<UnixTime, String> {
    if let Ok(ts) = s.trim().parse::<jiff::Timestamp>() {
        return Ok(ts.as_second());
    }
    jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", s.trim())
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::system()).ok())
        .map(|z| z.timestamp().as_second())
        .ok_or_else(|| {
            format!("'{s}' is not a time: use RFC 3339 (2026-12-01T22:00:00Z) or YYYY-MM-DD HH:MM")
        })
}

/// Parses a daily window "HH:MM-HH:MM" into minutes of the day.
pub fn parse_window(w: &str) -> Option<(u16, u16)> {
    let minutes = |s: &str| -> Option<u16> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let (a, b) = w.split_once('-')?;
    let (a, b) = (minutes(a)?, minutes(b)?);
    (a != b).then_some((a, b))
}

/// Whether `t` falls inside the daily window `w` in this machine's time
/// zone. A window may run over midnight ("22:00-06:00").
pub fn in_window(w: &str, t: UnixTime) -> bool {
    let Some((start, end)) = parse_window(w) else {
        return true;
    };
    let Ok(ts) = jiff::Timestamp::from_second(t) else {
        return true;
    };
    let local = ts.to_zoned(jiff::tz::TimeZone::system());
    let now = local.hour() as u16 * 60 + local.minute() as u16;
    if start < end {
        start <= now && now < end
    } else {
        now >= start || now < end
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
    fn offset_file_shifts_the_system_time() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("offset");
        std::fs::write(&f, "86400").unwrap();
        let c = Clock {
            manual: None,
            offset: Some(Arc::new(OffsetFile {
                path: f,
                cached: Mutex::new(None),
            })),
        };
        let shift = c.now() - jiff::Timestamp::now().as_second();
        assert!((86_399..=86_401).contains(&shift), "{shift}");
    }

    #[test]
    fn windows_run_over_midnight() {
        assert_eq!(parse_window("22:00-06:00"), Some((1320, 360)));
        assert_eq!(parse_window("25:00-06:00"), None);
        assert_eq!(parse_window("06:00-06:00"), None);
        assert_eq!(parse_window("nonsense"), None);
        // These run in whatever zone the machine has; compare against the
        // zone's own view of the same instants.
        let tz = jiff::tz::TimeZone::system();
        let at = |h: i8, m: i8| {
            jiff::civil::date(2026, 11, 24)
                .at(h, m, 0, 0)
                .to_zoned(tz.clone())
                .unwrap()
                .timestamp()
                .as_second()
        };
        assert!(in_window("22:00-06:00", at(23, 30)));
        assert!(in_window("22:00-06:00", at(5, 59)));
        assert!(!in_window("22:00-06:00", at(6, 0)));
        assert!(!in_window("22:00-06:00", at(12, 0)));
        assert!(in_window("09:00-17:00", at(9, 0)));
        assert!(!in_window("09:00-17:00", at(17, 0)));
    }

    #[test]
    fn formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
