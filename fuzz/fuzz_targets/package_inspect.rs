//! Package files as registration inspects them: ZIP, MSI, EXE, plain.
#![no_main]

use std::sync::{LazyLock, Once};

use libfuzzer_sys::fuzz_target;

static SCRATCH: LazyLock<tempfile::TempDir> =
    LazyLock::new(|| tempfile::tempdir().expect("scratch dir"));

static QUIET: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    // The MSI reader's panics on malformed databases are caught where
    // they happen (`package::msi::read_properties`), as in the server;
    // libFuzzer's hook would abort on them anyway. A panic that escapes
    // inspection still reaches the harness and is a crash.
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    courier::fuzzing::package_inspect(data, SCRATCH.path());
});
