//! Every state and kind of the domain as a closed enum. Each converts to
//! and from today's lowercase name (`as_str`, `FromStr`, serde), so the
//! database and the command-line JSON keep their exact spelling while the
//! code cannot misspell a state.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Declares a closed enum of named states with its one table of names.
macro_rules! named {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used in the database and the JSON contract.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value of a name; None for anything else.
            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<$name, UnknownName> {
                $name::parse(s).ok_or_else(|| UnknownName { what: $what, name: s.to_string() })
            }
        }
    };
}

/// A name that is not one of a state's names (a damaged row, a typo).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{name}'")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

named!(
    /// Where one destination of one task stands.
    WorkState, "destination state" {
        /// Not started: held by a start time, window or retry backoff, or
        /// waiting for the agent to pick it up.
        Waiting = "waiting",
        /// The agent is downloading the content.
        Transferring = "transferring",
        /// The agent is running the command or placing the files.
        Installing = "installing",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Taken out of the task (edit, delete, destination removed).
        Cancelled = "cancelled",
    }
);

impl WorkState {
    /// The states of work still to finish.
    pub const UNFINISHED: [WorkState; 3] = [
        WorkState::Waiting,
        WorkState::Transferring,
        WorkState::Installing,
    ];

    /// True once nothing more happens without an admin (re-run, edit).
    pub fn is_final(self) -> bool {
        !self.is_unfinished()
    }

    pub fn is_unfinished(self) -> bool {
        Self::UNFINISHED.contains(&self)
    }
}

named!(
    /// A task as a whole, derived from its destinations and schedule.
    TaskStatus, "task status" {
        /// Its start time is still to come.
        Scheduled = "scheduled",
        Running = "running",
        /// Waiting work is held: a ring's gate tripped, or an
        /// administrator paused it.
        Paused = "paused",
        /// Finished with no destination failed.
        Completed = "completed",
        /// Finished with at least one destination failed.
        Failed = "failed",
    }
);

named!(
    /// The seed's two task types.
    TaskType, "task type" {
        /// Package distribution: install software or distribute files.
        Install = "install",
        Uninstall = "uninstall",
    }
);

named!(
    /// The seed's two task classes, which differ in retention.
    TaskClass, "task class" {
        /// Created by an administrator.
        Admin = "admin",
        /// Executed by automatic countermeasure (security policies).
        Countermeasure = "countermeasure",
    }
);

named!(
    /// What a security policy asks of every destination.
    PolicyKind, "policy kind" {
        /// A program that must be installed (at a minimum version).
        Mandatory = "mandatory",
        /// Programs, by a name pattern, that must not be installed.
        Prohibited = "prohibited",
        /// An update package every destination must have.
        Update = "update",
    }
);

named!(
    /// What a package does at its destination.
    PackageKind, "package kind" {
        /// Runs an installer (MSI, EXE, or a command inside a ZIP).
        Install = "install",
        /// Places a file, or a ZIP's contents, in a folder.
        File = "file",
    }
);

named!(
    /// What the bytes of a registered file are, judged from its content.
    Format, "package format" {
        Msi = "msi",
        Exe = "exe",
        Zip = "zip",
        File = "file",
    }
);

named!(
    /// A destination computer's standing with the server.
    DestStatus, "destination status" {
        /// Enrolled, waiting for an admin's approval.
        Pending = "pending",
        Online = "online",
        /// Approved but not heard from lately.
        Offline = "offline",
        Rejected = "rejected",
    }
);

impl DestStatus {
    /// Approved: it may be given work and fetch content.
    pub fn is_approved(self) -> bool {
        matches!(self, DestStatus::Online | DestStatus::Offline)
    }
}

named!(
    /// What an agent does with one assignment.
    Action, "action" {
        /// Run the install command in the unpacked content.
        Install = "install",
        /// Place the file, or the ZIP's contents, in the folder.
        Distribute = "distribute",
        /// Run the uninstall command in the unpacked content.
        Uninstall = "uninstall",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for s in WorkState::ALL {
            assert_eq!(WorkState::parse(s.as_str()), Some(*s));
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<WorkState>(&json).unwrap(), *s);
        }
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>(), Ok(*s));
        }
        for s in DestStatus::ALL {
            assert_eq!(s.to_string().parse::<DestStatus>(), Ok(*s));
        }
    }

    #[test]
    fn a_misspelt_state_is_an_error_not_a_default() {
        let e = "canceled".parse::<WorkState>().unwrap_err();
        assert_eq!(e.to_string(), "unknown destination state 'canceled'");
        assert!(serde_json::from_str::<WorkState>("\"Failed\"").is_err());
    }

    #[test]
    fn unfinished_and_final_split_the_states() {
        let unfinished: Vec<_> = WorkState::ALL
            .iter()
            .filter(|s| s.is_unfinished())
            .collect();
        assert_eq!(unfinished.len(), 3);
        assert!(WorkState::Cancelled.is_final());
        assert!(WorkState::Succeeded.is_final());
        assert!(!WorkState::Installing.is_final());
    }
}
