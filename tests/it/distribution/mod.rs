//! Distribution end to end: a real `courier serve` and real agents on
//! loopback, each in temp dirs of its own. Packages are registered, tasks
//! created, and what the agents did is checked on disk and in the task's
//! per-destination states.

mod checkin;
mod cuts;
mod detection;
mod enrolment;
mod full;
mod hostile;
mod install;
mod inventory;
mod live;
mod offline;
mod plan;
mod policies;
mod rings;
mod stuck;
mod transfer;
mod windows;

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::procs::Server;

/// Registers a package; returns its JSON.
fn add_package(s: &Server, file: &Path, flags: &[&str]) -> Value {
    let mut args = vec!["package", "add", file.to_str().expect("utf-8 path")];
    args.extend_from_slice(flags);
    args.push("--json");
    s.json(&args)
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Marker files the install scripts of these tests leave in `dir`.
fn markers(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect();
    v.sort();
    v
}

/// An install script that proves it ran: it leaves a marker file in
/// `marks` (outside every agent) holding its working directory and first
/// argument, checks the rest of the package is beside it, and says so.
fn marker_script(marks: &Path) -> String {
    format!(
        "#!/bin/sh\nset -e\ntest -f setup/payload.txt\nf=$(mktemp '{}/ran.XXXXXX')\necho \"$(pwd) $1\" > \"$f\"\necho \"installed with $1\"\n",
        marks.display()
    )
}
