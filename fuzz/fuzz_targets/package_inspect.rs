//! Package files as registration inspects them: ZIP, MSI, EXE, plain.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static SCRATCH: LazyLock<tempfile::TempDir> =
    LazyLock::new(|| tempfile::tempdir().expect("scratch dir"));

fuzz_target!(|data: &[u8]| {
    courier::fuzzing::package_inspect(data, SCRATCH.path());
});
