//! The fuzz targets' corpora (fuzz/corpus/TARGET/), replayed on stable
//! through the same functions the targets call (`courier::fuzzing`): every
//! input the fuzzer kept, or that once crashed something, keeps being
//! checked by `cargo test`.

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    files
}

fn replay(target: &str, run: impl Fn(&[u8])) {
    for f in corpus(target) {
        let data = std::fs::read(&f).unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data)));
        assert!(outcome.is_ok(), "{}: panicked", f.display());
    }
}

#[test]
fn package_inspect_corpus() {
    let scratch = tempfile::tempdir().unwrap();
    replay("package_inspect", |d| {
        courier::fuzzing::package_inspect(d, scratch.path())
    });
}

#[test]
fn protocol_corpus() {
    replay("protocol", courier::fuzzing::protocol);
}

#[test]
fn admin_request_corpus() {
    replay("admin_request", courier::fuzzing::admin_request);
}
