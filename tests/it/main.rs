//! Integration tests: the real `courier` binary on temporary data dirs.

mod support;

mod agent;
mod cli_errors;
mod console;
mod datadir;
mod demo;
mod distribution;
mod fuzz_corpus;
mod lifecycle;
mod log;
mod package;
mod procs;
mod rooms;
mod wine;
