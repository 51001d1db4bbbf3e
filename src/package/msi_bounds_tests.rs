//! The sizes an MSI declares, against what it holds: hello.msi passes,
//! files declaring 4 GiB are refused before the `msi` crate sees them.

use std::io::{Cursor, Write};
use std::path::Path;

use super::*;
use crate::package::tests::fixture;
use crate::package::{InspectError, inspect};

/// An input the fuzzer found (fuzz/corpus/package_inspect/).
fn fuzzer_find(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus/package_inspect")
        .join(name);
    std::fs::read(path).unwrap()
}

/// hello.msi with its stream `name` replaced by `bytes`.
fn hello_with(name: &str, bytes: &[u8]) -> Vec<u8> {
    let original = std::fs::read(fixture("hello.msi")).unwrap();
    let mut comp = cfb::CompoundFile::open(Cursor::new(original)).unwrap();
    assert!(comp.exists(name), "hello.msi has no stream {name:?}");
    comp.create_stream(name).unwrap().write_all(bytes).unwrap();
    comp.flush().unwrap();
    comp.into_inner().into_inner()
}

/// What registration says of `bytes` as a package file.
fn refusal(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("setup.msi");
    std::fs::write(&path, bytes).unwrap();
    match inspect(&path, dir.path()) {
        Err(InspectError::Refused(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn stream_names_are_encoded_as_windows_installer_does() {
    assert_eq!(
        stream_name("_Tables", true),
        "\u{4840}\u{3f7f}\u{4164}\u{422f}\u{4836}"
    );
    assert_eq!(
        stream_name("_Columns", true),
        "\u{4840}\u{3b3f}\u{43f2}\u{4438}\u{45b1}"
    );
    assert_eq!(
        stream_name("App.exe", false),
        "\u{44ca}\u{47b3}\u{46e8}\u{4828}"
    );
}

/// A real MSI declares exactly the string bytes it holds, and passes.
#[test]
fn hello_msi_holds_what_it_declares() {
    let bytes = std::fs::read(fixture("hello.msi")).unwrap();
    let cap = bytes.len() as u64;
    let mut comp = cfb::CompoundFile::open(Cursor::new(&bytes)).unwrap();
    let pool = comp.open_stream(stream_name("_StringPool", true)).unwrap();
    let declared = declared_strings(pool, cap);
    let data = comp.open_stream(stream_name("_StringData", true)).unwrap();
    assert!(declared > 0);
    assert_eq!(declared, real_len(data, cap));
    let summary = comp.open_stream(SUMMARY_INFORMATION).unwrap();
    let held = real_len(summary, cap);
    let summary = comp.open_stream(SUMMARY_INFORMATION).unwrap();
    assert_eq!(oversized_summary_string(summary, held), None);
    check(Cursor::new(&bytes)).unwrap();
}

/// The fuzzer's finds, 9.5 KiB each, whose string pool (and summary
/// information) declare a string of 1.5 GB (2.9 GB) that the msi crate
/// allocated before reading: refused by the check, which runs before the
/// crate is called, with one line; registration says the same.
#[test]
fn the_fuzzers_msis_are_refused_before_the_msi_crate_reads_them() {
    let pool = fuzzer_find("msi-string-pool-claims-1.5-gb");
    let e = check(Cursor::new(&pool)).unwrap_err();
    let declared: u64 = e
        .strip_prefix("not a valid MSI: string pool declares ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{e}"));
    assert!(declared > 1_500_000_000, "{e}");
    assert!(e.ends_with("but its string data holds 1545"), "{e}");
    assert_eq!(refusal(&pool), e);

    let summary = fuzzer_find("msi-summary-string-claims-2.9-gb");
    let e = check(Cursor::new(&summary)).unwrap_err();
    assert!(
        e.starts_with("not a valid MSI: summary information declares a string of 2952790"),
        "{e}"
    );
    assert_eq!(refusal(&summary), e);
}

/// A string pool whose one string claims 4 GiB (a 16-bit length of 0
/// with a reference count, then 0xFFFFFFFF), in an otherwise good MSI.
#[test]
fn a_string_pool_declaring_4_gib_is_refused() {
    let mut pool = 1252u32.to_le_bytes().to_vec();
    pool.extend_from_slice(&[0, 0, 1, 0]);
    pool.extend_from_slice(&u32::MAX.to_le_bytes());
    let bytes = hello_with(&stream_name("_StringPool", true), &pool);
    let e = refusal(&bytes);
    assert!(
        e.starts_with("not a valid MSI: string pool declares 4294967295 bytes of strings, but its string data holds "),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1);
}

/// A summary information whose title claims 4 GiB.
#[test]
fn a_summary_string_declaring_4_gib_is_refused() {
    let mut set = Vec::new();
    set.extend_from_slice(&0xFFFEu16.to_le_bytes()); // byte order
    set.extend_from_slice(&0u16.to_le_bytes()); // format version
    set.extend_from_slice(&0u16.to_le_bytes()); // OS version
    set.extend_from_slice(&2u16.to_le_bytes()); // Win32
    set.extend_from_slice(&[0; 16]); // class id
    set.extend_from_slice(&1u32.to_le_bytes()); // reserved
    set.extend_from_slice(&[7; 16]); // format id
    set.extend_from_slice(&48u32.to_le_bytes()); // section offset
    set.extend_from_slice(&32u32.to_le_bytes()); // section size
    set.extend_from_slice(&1u32.to_le_bytes()); // one property
    set.extend_from_slice(&2u32.to_le_bytes()); // the title
    set.extend_from_slice(&16u32.to_le_bytes()); // at 16 in the section
    set.extend_from_slice(&30u32.to_le_bytes()); // a string
    set.extend_from_slice(&u32::MAX.to_le_bytes()); // of 4 GiB
    set.extend_from_slice(b"Courier\0");
    let bytes = hello_with(SUMMARY_INFORMATION, &set);
    let e = refusal(&bytes);
    assert_eq!(
        e,
        format!(
            "not a valid MSI: summary information declares a string of 4294967295 bytes, but its stream holds {}",
            set.len()
        )
    );
}
