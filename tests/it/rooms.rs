//! The rooms of `src/` and who may import whom (docs/ARCHITECTURE.md),
//! checked on the source text so a change that breaks them fails here.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every source file under `src/<room>` (a folder or a file stem), with
/// its text.
fn room(name: &str) -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let dir = src.join(name);
    if dir.is_dir() {
        sources(&dir, &mut files);
    }
    let file = src.join(format!("{name}.rs"));
    if file.is_file() {
        files.push(file);
    }
    assert!(!files.is_empty(), "no room {name}");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// The code of a file before its unit tests.
fn code(text: &str) -> &str {
    text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text)
}

fn assert_no_imports(rooms: &[&str], forbidden: &[&str]) {
    for r in rooms {
        for (path, text) in room(r) {
            for f in forbidden {
                assert!(
                    !text.contains(&format!("crate::{f}")),
                    "{} reaches crate::{f}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn console_cli_and_demo_see_the_api_not_the_service_or_store() {
    assert_no_imports(&["console", "cli", "demo"], &["service", "store"]);
}

#[test]
fn the_store_knows_no_wire_types_consoles_or_network() {
    assert_no_imports(
        &["store"],
        &[
            "proto", "console", "cli", "api", "server", "agent", "service",
        ],
    );
}

#[test]
fn the_api_sits_at_the_bottom() {
    assert_no_imports(
        &["api"],
        &["service", "store", "server", "console", "cli", "agent"],
    );
}

#[test]
fn the_task_room_does_no_io() {
    assert_no_imports(
        &["task"],
        &[
            "store", "service", "server", "proto", "agent", "api", "console",
        ],
    );
    for (path, text) in room("task") {
        for io in [
            "std::fs",
            "std::net",
            "std::process",
            "rusqlite",
            "tokio",
            "reqwest",
        ] {
            assert!(!code(&text).contains(io), "{} uses {io}", path.display());
        }
    }
}

#[test]
fn no_source_file_is_over_800_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        sources(&root.join(dir), &mut files);
    }
    for p in files {
        let n = std::fs::read_to_string(&p).unwrap().lines().count();
        assert!(n <= 800, "{} has {n} lines", p.display());
    }
}

#[test]
fn destination_states_are_spelt_in_the_task_room() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut spelt = Vec::new();
    for p in files.iter().filter(|p| !p.starts_with(src.join("task"))) {
        let text = std::fs::read_to_string(p).unwrap();
        for (i, line) in code(&text).lines().enumerate() {
            for s in [
                "waiting",
                "transferring",
                "installing",
                "succeeded",
                "failed",
                "cancelled",
            ] {
                if line.contains(&format!("\"{s}\"")) || line.contains(&format!("'{s}'")) {
                    spelt.push(format!("{}:{}: {s}", p.display(), i + 1));
                }
            }
        }
    }
    assert!(
        spelt.len() <= 10,
        "{} quoted states:\n{}",
        spelt.len(),
        spelt.join("\n")
    );
}

#[test]
fn unsafe_code_lives_in_the_windows_room_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    for path in files {
        if path.starts_with(src.join("win")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for needle in ["unsafe {", "unsafe impl", "unsafe fn", "allow(unsafe_code)"] {
            assert!(
                !text.contains(needle),
                "{} has `{needle}`: unsafe code belongs in src/win",
                path.display()
            );
        }
    }
}
