//! The errors of the admin API: one line for the admin, and a kind that
//! callers branch on (the console knows a lost link by its kind, not by
//! its words).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What went wrong, as far as a caller needs to decide what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The object named does not exist.
    NotFound,
    /// The request breaks a rule or names something invalid; nothing
    /// changed. The message says what to do instead.
    Refused,
    /// The request clashes with the current state (a name in use, a
    /// package still needed by a task).
    Conflict,
    /// The server could not be reached, or went away mid-request.
    LinkLost,
    /// A fault inside the server (database, disk, a bug); nothing changed.
    Internal,
}

/// An admin API error: its kind and one line for the admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, message)
    }

    pub fn refused(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Refused, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Conflict, message)
    }

    pub fn link_lost(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::LinkLost, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Internal, message)
    }

    /// Classifies an error raised inside the server: an `ApiError`
    /// anywhere in its chain gives the kind; a database or I/O fault is
    /// internal; any other is a refusal of the request. The message is the
    /// whole chain on one line.
    pub fn from_anyhow(e: &anyhow::Error) -> ApiError {
        if disk_full(e) {
            return ApiError::internal(format!(
                "the server's disk is full, nothing changed: free space where its data dir is ({e:#})"
            ));
        }
        let kind = if let Some(api) = e.chain().find_map(|c| c.downcast_ref::<ApiError>()) {
            api.kind
        } else if e
            .chain()
            .any(|c| c.is::<rusqlite::Error>() || c.is::<std::io::Error>())
        {
            ErrorKind::Internal
        } else {
            ErrorKind::Refused
        };
        ApiError::new(kind, format!("{e:#}"))
    }

    /// An error for a request whose handler panicked: the request failed,
    /// the server goes on.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> ApiError {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        ApiError::internal(format!("internal error: the request failed ({what})"))
    }
}

/// Whether `e` is the server's disk (or quota) being full: SQLite's
/// `SQLITE_FULL` or an `ENOSPC` / `EDQUOT` write anywhere in the chain.
/// Passing: once there is room the same request succeeds.
pub fn disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        if let Some(sql) = c.downcast_ref::<rusqlite::Error>() {
            return sql.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull);
        }
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        })
    })
}
