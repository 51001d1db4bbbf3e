//! The agent that runs on each destination: enrols, long-polls for work,
//! downloads and verifies content, extracts, runs, reports.

pub mod exec;
pub mod fetch;
pub mod place;
pub mod runtime;
