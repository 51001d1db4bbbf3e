//! What the fuzz targets (`fuzz/`) run on each input, here so that
//! `cargo test` replays their corpora on stable (tests/it/fuzz_corpus.rs)
//! with the same code. Each function takes hostile bytes and must return,
//! whatever they are: an error is fine, a panic or a hang is a bug.

use std::path::Path;

/// Inspects `data` as a package file (ZIP, MSI, EXE or plain), as
/// registration does, with a 64 MiB limit on what a ZIP may unzip to.
pub fn package_inspect(data: &[u8], scratch: &Path) {
    let file = scratch.join("input.pkg");
    if std::fs::write(&file, data).is_err() {
        return;
    }
    let work = scratch.join("work");
    let _ = std::fs::create_dir_all(&work);
    let _ = crate::package::inspect_with_limit(&file, &work, 64 << 20);
    let _ = std::fs::remove_file(&file);
}

/// Parses `data` as every message an agent or a stranger sends the
/// listener (and as the certificate request enrolment and renewal carry),
/// and as the manifest an agent receives.
pub fn protocol(data: &[u8]) {
    let _ = serde_json::from_slice::<crate::proto::EnrollRequest>(data);
    let _ = serde_json::from_slice::<crate::proto::PollRequest>(data);
    let _ = serde_json::from_slice::<crate::proto::Report>(data);
    let _ = serde_json::from_slice::<crate::proto::RenewRequest>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::pki::check_csr(text);
    }
    let _ = serde_json::from_slice::<crate::content::Manifest>(data);
}

/// Parses `data` as a line of the admin socket.
pub fn admin_request(data: &[u8]) {
    let _ = serde_json::from_slice::<crate::api::Request>(data);
}
