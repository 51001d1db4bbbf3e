//! The agent that runs on each destination: enrols, long-polls for work,
//! downloads and verifies content, extracts, runs, reports.

pub mod detect;
pub mod disks;
pub mod exec;
pub mod fetch;
pub mod inventory;
pub mod place;
pub mod runtime;
pub mod service;
