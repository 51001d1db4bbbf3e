//! courier: register packages, distribute them to agents as tasks, and follow
//! every destination's outcome from a terminal.
//!
//! The binary is a thin shell over these modules; `docs/ARCHITECTURE.md`
//! has the code map and the invariants.

// No unsafe code, except where Windows offers no safe API in the crates used
// (`win`): there `deny` lets that one module opt out with its reasons
// written down; every other build keeps `forbid`.
#![cfg_attr(not(windows), forbid(unsafe_code))]
#![cfg_attr(windows, deny(unsafe_code))]

pub mod agent;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod content;
pub mod datadir;
pub mod demo;
pub mod fuzzing;
pub mod model;
pub mod package;
pub mod pki;
pub mod proto;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod task;
#[cfg(windows)]
pub mod win;
