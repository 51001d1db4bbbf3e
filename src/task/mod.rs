//! The domain: every state and kind as a type, every rule of the seed as a
//! pure function over plain rows and a `now`.
//!
//! Invariant: no I/O here (no SQLite, no files, no network), so every rule
//! is unit-tested on its own. The store converts these types to and from
//! its columns; the JSON contract uses the same lowercase names.

pub mod cause;
pub mod detect;
pub mod outcome;
pub mod plan;
pub mod policy;
pub mod rings;
pub mod rules;
pub mod state;
pub mod stuck;
#[cfg(test)]
mod tests;

pub use outcome::{Ending, Verdict};
pub use state::{
    Action, DestStatus, Format, PackageKind, PolicyKind, TaskClass, TaskStatus, TaskType,
    UnknownName, WorkState,
};
