//! Work that is not moving: every unfinished destination's state has an
//! age, and past a limit it is flagged stuck with why and since when, so
//! "pending forever" becomes a line in triage instead of a silence.
//!
//! Invariant: pure; the store gives the ages, the thresholds come from the
//! server's settings.

use serde::{Deserialize, Serialize};

use super::WorkState;
use crate::clock::UnixTime;

/// A transfer without progress this long is stuck (`serve --stall-secs`).
pub const STALL_SECS: i64 = 5 * 60;
/// A destination offline this long with work waiting is stuck.
pub const OFFLINE_SECS: i64 = super::rules::DAY;
/// The agent's command timeout when it did not say its own.
pub const COMMAND_TIMEOUT_SECS: i64 = 3600;
/// Past the agent's command timeout, how long before an install still
/// "installing" is stuck: the agent kills the command at its timeout and
/// reports at once, so a row still installing after this lost its agent.
pub const OVERDUE_GRACE_SECS: i64 = 5 * 60;

/// Why a destination is stuck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StuckKind {
    /// Transferring, but no byte has arrived for a while.
    Stalled,
    /// Installing past the agent's command timeout.
    Overdue,
    /// Its destination is offline with this work waiting.
    Offline,
}

impl StuckKind {
    /// What triage groups by.
    pub fn label(self) -> &'static str {
        match self {
            StuckKind::Stalled => "no transfer progress",
            StuckKind::Overdue => "installing past its timeout",
            StuckKind::Offline => "destination offline with work waiting",
        }
    }
}

/// What the age of a destination's state is judged from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ages {
    pub state: WorkState,
    /// When the state began.
    pub state_since: UnixTime,
    /// When the row last changed (a transfer's last progress report).
    pub updated: UnixTime,
    /// When the destination's agent was last heard from; None if never.
    pub last_seen: Option<UnixTime>,
    /// The agent's command timeout, when it said it.
    pub command_timeout: Option<i64>,
}

/// The limits, from the server's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub stall_secs: i64,
    pub offline_secs: i64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            stall_secs: STALL_SECS,
            offline_secs: OFFLINE_SECS,
        }
    }
}

/// Whether the destination is stuck at `now`: why, in words with the age,
/// and since when.
pub fn stuck(a: &Ages, limits: &Limits, now: UnixTime) -> Option<(StuckKind, String, UnixTime)> {
    if !a.state.is_unfinished() {
        return None;
    }
    if let Some(seen) = a.last_seen
        && now - seen >= limits.offline_secs
    {
        return Some((
            StuckKind::Offline,
            format!(
                "destination offline for {} with work waiting",
                age(now - seen)
            ),
            seen,
        ));
    }
    match a.state {
        WorkState::Transferring if now - a.updated >= limits.stall_secs => Some((
            StuckKind::Stalled,
            format!("no transfer progress for {}", age(now - a.updated)),
            a.updated,
        )),
        WorkState::Installing => {
            let timeout = a.command_timeout.unwrap_or(COMMAND_TIMEOUT_SECS);
            (now - a.state_since >= timeout + OVERDUE_GRACE_SECS).then(|| {
                (
                    StuckKind::Overdue,
                    format!(
                        "installing for {}, past the agent's {} timeout",
                        age(now - a.state_since),
                        age(timeout)
                    ),
                    a.state_since,
                )
            })
        }
        _ => None,
    }
}

/// "45 s", "12 min", "3 h 05 min", "4 days".
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ if s < 2 * 86_400 => "1 day".into(),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_900_000_000;

    fn ages(state: WorkState, since: i64) -> Ages {
        Ages {
            state,
            state_since: NOW - since,
            updated: NOW - since,
            last_seen: Some(NOW - 10),
            command_timeout: None,
        }
    }

    #[test]
    fn each_state_is_stuck_past_its_own_limit() {
        let l = Limits::default();
        assert_eq!(stuck(&ages(WorkState::Transferring, 299), &l, NOW), None);
        let (kind, why, since) = stuck(&ages(WorkState::Transferring, 300), &l, NOW).unwrap();
        assert_eq!(kind, StuckKind::Stalled);
        assert_eq!(why, "no transfer progress for 5 min");
        assert_eq!(since, NOW - 300);

        // An install runs up to the agent's timeout, then a grace.
        assert_eq!(stuck(&ages(WorkState::Installing, 3600), &l, NOW), None);
        let (kind, why, _) = stuck(&ages(WorkState::Installing, 3900), &l, NOW).unwrap();
        assert_eq!(kind, StuckKind::Overdue);
        assert_eq!(
            why,
            "installing for 1 h 05 min, past the agent's 1 h 00 min timeout"
        );
        let short = Ages {
            command_timeout: Some(60),
            ..ages(WorkState::Installing, 400)
        };
        assert_eq!(stuck(&short, &l, NOW).unwrap().0, StuckKind::Overdue);

        // Waiting for an agent gone four days: stuck; for one seen a
        // minute ago, only waiting.
        let gone = Ages {
            last_seen: Some(NOW - 4 * 86_400 - 5),
            ..ages(WorkState::Waiting, 10)
        };
        let (kind, why, since) = stuck(&gone, &l, NOW).unwrap();
        assert_eq!(kind, StuckKind::Offline);
        assert_eq!(why, "destination offline for 4 days with work waiting");
        assert_eq!(since, NOW - 4 * 86_400 - 5);
        assert_eq!(stuck(&ages(WorkState::Waiting, 90_000), &l, NOW), None);
        // Never enrolled yet (pending approval) is not "offline".
        let never = Ages {
            last_seen: None,
            ..ages(WorkState::Waiting, 90_000)
        };
        assert_eq!(stuck(&never, &l, NOW), None);
        // Finished work is never stuck.
        assert_eq!(stuck(&ages(WorkState::Failed, 900_000), &l, NOW), None);
    }
}
