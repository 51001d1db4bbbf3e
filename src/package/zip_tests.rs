//! Tests of ZIP inspection: hostile names, sizes, headers and links.

use super::*;
use crate::package::tests::{HELLO_CODE, fixture, pe_image};
use crate::package::{Framework, inspect, inspect_with_limit};
use ::zip::ZipWriter;
use ::zip::write::SimpleFileOptions;

/// What a test puts in a ZIP.
enum Item<'a> {
    File(&'a str, Vec<u8>),
    Folder(&'a str),
    Link(&'a str, &'a str),
}

fn write_zip(path: &Path, items: Vec<Item<'_>>) {
    let mut zip = ZipWriter::new(File::create(path).expect("create zip"));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for item in items {
        match item {
            Item::File(name, bytes) => {
                zip.start_file(name, options).expect("start file");
                zip.write_all(&bytes).expect("write entry");
            }
            Item::Folder(name) => zip.add_directory(name, options).expect("folder"),
            Item::Link(name, target) => zip.add_symlink(name, target, options).expect("link"),
        }
    }
    zip.finish().expect("finish zip");
}

/// A scratch directory and a ZIP in it.
struct Case {
    dir: tempfile::TempDir,
    zip: PathBuf,
}

impl Case {
    fn new(items: Vec<Item<'_>>) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        let zip = dir.path().join("package.zip");
        write_zip(&zip, items);
        Case { dir, zip }
    }

    fn inspect(&self) -> Result<Inspection, InspectError> {
        inspect(&self.zip, self.dir.path())
    }

    fn refusal(&self) -> String {
        match self.inspect() {
            Err(InspectError::Refused(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Rewrites bytes of the archive in place.
    fn patch(&self, edit: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = fs::read(&self.zip).expect("read zip");
        edit(&mut bytes);
        fs::write(&self.zip, bytes).expect("write zip");
    }

    /// Nothing but the ZIP may be left in the scratch directory.
    fn assert_scratch_clean(&self) {
        let names: Vec<_> = fs::read_dir(self.dir.path())
            .expect("read scratch")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("package.zip")]);
    }
}

fn hello_msi() -> Vec<u8> {
    fs::read(fixture("hello.msi")).expect("fixture")
}

/// Offsets of every header with `signature` (local "PK\3\4" or
/// central "PK\1\2").
fn headers(bytes: &[u8], signature: &[u8; 4]) -> Vec<usize> {
    memchr::memmem::find_iter(bytes, signature).collect()
}

#[test]
fn msi_deep_in_a_zip_is_found_with_its_properties() {
    let case = Case::new(vec![
        Item::Folder("sub/"),
        Item::File("readme.txt", b"read me".to_vec()),
        Item::File("sub/dir/setup.msi", hello_msi()),
        Item::File("sub/data/setup.dat", vec![7; 5000]),
    ]);
    let got = case.inspect().expect("inspect");
    assert_eq!(got.format, Format::Zip);
    assert_eq!(got.entries, Some(3));
    let msi_len = hello_msi().len() as u64;
    assert_eq!(got.unzipped_size, Some(7 + msi_len + 5000));
    let installer = got.installer.expect("installer");
    assert_eq!(installer.path.as_deref(), Some("sub/dir/setup.msi"));
    assert_eq!(installer.format, Format::Msi);
    let info = installer.msi.expect("msi info");
    assert_eq!(info.product_name.as_deref(), Some("Courier Hello"));
    assert_eq!(info.product_version.as_deref(), Some("1.2.3"));
    assert_eq!(info.product_code.as_deref(), Some(HELLO_CODE));
    case.assert_scratch_clean();
}

#[test]
fn installer_is_found_by_content_and_the_shallowest_wins() {
    let case = Case::new(vec![
        Item::File("deep/er/other.msi", hello_msi()),
        Item::File(
            "bin/Setup.dat",
            fs::read(fixture("hello-nsis.exe")).expect("fixture"),
        ),
        Item::File("bin/helper.dll", pe_image(0x2102, 2, b"")),
        Item::File("bin/fake.exe", b"not really an exe".to_vec()),
    ]);
    let installer = case
        .inspect()
        .expect("inspect")
        .installer
        .expect("installer");
    assert_eq!(installer.path.as_deref(), Some("bin/Setup.dat"));
    assert_eq!(installer.format, Format::Exe);
    assert_eq!(installer.framework, Some(Framework::Nsis));
}

#[test]
fn two_installers_at_the_same_depth_are_ambiguous() {
    let case = Case::new(vec![
        Item::File("b/setup.exe", pe_image(0x0102, 2, b"")),
        Item::File("a/setup.msi", hello_msi()),
        Item::File("a/deeper/x.msi", hello_msi()),
    ]);
    let got = case.inspect().expect("inspect");
    assert_eq!(got.installer, None);
    assert_eq!(got.ambiguous, vec!["a/setup.msi", "b/setup.exe"]);
}

#[test]
fn nested_zip_stays_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = dir.path().join("inner.zip");
    write_zip(&inner, vec![Item::File("setup.msi", hello_msi())]);
    let case = Case::new(vec![Item::File(
        "inner.zip",
        fs::read(&inner).expect("inner"),
    )]);
    let got = case.inspect().expect("inspect");
    assert_eq!(got.format, Format::Zip);
    assert_eq!(got.installer, None);
    assert!(got.ambiguous.is_empty());
    assert_eq!(got.entries, Some(1));
}

#[test]
fn empty_zip_has_no_entries() {
    let case = Case::new(vec![]);
    let got = case.inspect().expect("inspect");
    assert_eq!(got.format, Format::Zip);
    assert_eq!((got.unzipped_size, got.entries), (Some(0), Some(0)));
}

#[test]
fn paths_out_of_the_folder_are_refused() {
    for (name, why) in [
        ("../evil", "'..' component"),
        ("a/../../evil", "'..' component"),
        ("a\\..\\evil", "'..' component"),
        ("a/.. /evil", "'..' component"),
        ("/abs", "absolute path"),
        ("\\abs", "absolute path"),
        ("C:\\x", "drive letter"),
        ("c:x", "drive letter"),
        ("a/file.txt:stream", "':'"),
    ] {
        let case = Case::new(vec![Item::File(name, b"x".to_vec())]);
        let message = case.refusal();
        assert!(message.contains(why), "{name}: {message}");
        assert!(message.starts_with("ZIP entry '"), "{name}: {message}");
    }
}

#[test]
fn entry_paths_are_normalised() {
    assert_eq!(entry_path("./a//b\\c.txt").as_deref(), Ok("a/b/c.txt"));
    assert_eq!(entry_path("dir/").as_deref(), Ok("dir"));
    assert!(entry_path("./").is_err());
    assert!(entry_path("a\0b").is_err());
    assert!(entry_path("...").is_err());
    for device in [
        "CON",
        "nul.txt",
        "dir/Aux.log",
        "com1",
        "LPT9.dat",
        "COM\u{b9}",
        "conout$",
    ] {
        let e = entry_path(device).unwrap_err();
        assert!(e.contains("reserves for a device"), "{device}: {e}");
    }
    for trailing in ["notes.", "dir /a.txt", "a/b. "] {
        let e = entry_path(trailing).unwrap_err();
        assert!(e.contains("ending in a dot or space"), "{trailing}: {e}");
    }
    for bad in ["a\u{1b}[2J.txt", "bell\u{7}", "a\u{9b}b"] {
        let e = entry_path(bad).unwrap_err();
        assert!(e.contains("control character"), "{bad:?}: {e}");
    }
    for bad in ["a?.txt", "dir/x*y", "q\"uote", "a|b", "<x>"] {
        let e = entry_path(bad).unwrap_err();
        assert!(e.contains("Windows does not allow"), "{bad}: {e}");
    }
    for fine in ["console.txt", "com10", "LPT0", "nullable/x", "a.b.c"] {
        assert!(entry_path(fine).is_ok(), "{fine}");
    }
}

#[test]
fn colliding_paths_are_refused() {
    let case = Case::new(vec![
        Item::File("dir/a.txt", b"1".to_vec()),
        Item::File("DIR\\A.TXT", b"2".to_vec()),
    ]);
    assert!(case.refusal().contains("same path as 'dir/a.txt'"));
    // NTFS upper-cases: dotless ı and I are one name there.
    let case = Case::new(vec![
        Item::File("\u{131}.txt", b"1".to_vec()),
        Item::File("I.txt", b"2".to_vec()),
    ]);
    assert!(
        case.refusal().contains("same path as"),
        "{}",
        case.refusal()
    );
    assert_ne!(collision_key("\u{212a}.txt"), collision_key("k.txt"));
    let case = Case::new(vec![
        Item::File("a", b"1".to_vec()),
        Item::File("a/b", b"2".to_vec()),
    ]);
    assert!(case.refusal().contains("'a' is a file but"));
}

/// 100,000 empty files are 100,000 creates and syncs on every
/// destination: refused before any is looked at.
#[test]
fn too_many_entries_are_refused() {
    let names: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("f{i}")).collect();
    let case = Case::new(names.iter().map(|n| Item::File(n, Vec::new())).collect());
    let message = case.refusal();
    assert!(
        message.contains("65537 entries, more than the 65536"),
        "{message}"
    );
}

#[test]
fn symlink_is_refused() {
    let case = Case::new(vec![Item::Link("link", "/etc/passwd")]);
    assert_eq!(case.refusal(), "ZIP entry 'link' is a symbolic link");
}

#[test]
fn encrypted_entry_is_refused() {
    let case = Case::new(vec![Item::File("secret.txt", b"hush".to_vec())]);
    // Set bit 0 of the general-purpose flags in the local header
    // (offset 6) and the central directory header (offset 8).
    case.patch(|bytes| {
        for at in headers(bytes, b"PK\x03\x04") {
            bytes[at + 6] |= 1;
        }
        for at in headers(bytes, b"PK\x01\x02") {
            bytes[at + 8] |= 1;
        }
    });
    assert_eq!(case.refusal(), "ZIP entry 'secret.txt' is encrypted");
}

#[test]
fn unsupported_compression_is_refused() {
    let case = Case::new(vec![Item::File("a.bin", b"data".to_vec())]);
    // Method 12 (bzip2) in the local (offset 8) and central (offset 10)
    // headers.
    case.patch(|bytes| {
        for at in headers(bytes, b"PK\x03\x04") {
            bytes[at + 8] = 12;
        }
        for at in headers(bytes, b"PK\x01\x02") {
            bytes[at + 10] = 12;
        }
    });
    let message = case.refusal();
    assert!(message.contains("compression method Bzip2"), "{message}");
}

#[test]
fn lying_header_is_refused() {
    let case = Case::new(vec![Item::File("a/b.bin", vec![0; 10 << 20])]);
    // Claim 1 KiB in the uncompressed-size fields of the local (offset
    // 22) and central (offset 24) headers.
    let claim = 1024u32.to_le_bytes();
    case.patch(|bytes| {
        for at in headers(bytes, b"PK\x03\x04") {
            bytes[at + 22..at + 26].copy_from_slice(&claim);
        }
        for at in headers(bytes, b"PK\x01\x02") {
            bytes[at + 24..at + 28].copy_from_slice(&claim);
        }
    });
    assert_eq!(
        case.refusal(),
        "ZIP entry 'a/b.bin' claims 1 KiB but decompresses to more"
    );
}

#[test]
fn header_claiming_more_than_the_content_is_refused() {
    let case = Case::new(vec![Item::File("small.bin", vec![1; 100])]);
    let claim = 4096u32.to_le_bytes();
    case.patch(|bytes| {
        for at in headers(bytes, b"PK\x03\x04") {
            bytes[at + 22..at + 26].copy_from_slice(&claim);
        }
        for at in headers(bytes, b"PK\x01\x02") {
            bytes[at + 24..at + 28].copy_from_slice(&claim);
        }
    });
    assert_eq!(
        case.refusal(),
        "ZIP entry 'small.bin' claims 4 KiB but decompresses to 100 bytes"
    );
}

#[test]
fn crc_mismatch_is_refused() {
    let case = Case::new(vec![Item::File("a.txt", b"hello".to_vec())]);
    case.patch(|bytes| {
        for at in headers(bytes, b"PK\x03\x04") {
            bytes[at + 14] ^= 0xFF;
        }
        for at in headers(bytes, b"PK\x01\x02") {
            bytes[at + 16] ^= 0xFF;
        }
    });
    assert_eq!(
        case.refusal(),
        "ZIP entry 'a.txt' is corrupt (CRC mismatch)"
    );
}

#[test]
fn local_header_disagreeing_with_the_directory_is_refused() {
    let case = Case::new(vec![Item::File("a.txt", b"hello".to_vec())]);
    case.patch(|bytes| {
        let at = headers(bytes, b"PK\x03\x04")[0];
        bytes[at + 30] = b'b'; // the local header's file name
    });
    assert!(case.refusal().starts_with("ZIP headers are inconsistent"));
}

#[test]
fn content_over_the_unzipped_limit_is_refused() {
    let case = Case::new(vec![
        Item::File("one.bin", vec![0; 700 << 10]),
        Item::File("two.bin", vec![0; 700 << 10]),
    ]);
    let message = match inspect_with_limit(&case.zip, case.dir.path(), 1 << 20) {
        Err(InspectError::Refused(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        message,
        "ZIP entries decompress to more than the 1 MiB limit for unzipped content \
         (crossed at 'two.bin')"
    );
    let within = inspect_with_limit(&case.zip, case.dir.path(), 2 << 20).expect("within");
    assert_eq!(within.unzipped_size, Some(1400 << 10));
}

#[test]
fn streamed_zip_with_data_descriptors_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("streamed.zip");
    let mut zip = ZipWriter::new_stream(File::create(&path).expect("create"));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    zip.start_file("sub/setup.msi", options).expect("start");
    zip.write_all(&hello_msi()).expect("write");
    zip.start_file("notes.txt", options).expect("start");
    zip.write_all(b"notes").expect("write");
    zip.finish().expect("finish");
    let got = inspect(&path, dir.path()).expect("inspect");
    assert_eq!(got.entries, Some(2));
    let installer = got.installer.expect("installer");
    assert_eq!(installer.path.as_deref(), Some("sub/setup.msi"));
}

/// A deterministic stream of numbers for mutating inputs (xorshift64*).
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `seed` changed the ways damaged and hostile files are: bytes
    /// flipped, cut short, a slice repeated, a 2- or 4-byte field (a size,
    /// an offset, a count) set to an extreme.
    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut b = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            match self.below(5) {
                0 => {
                    let at = self.below(b.len());
                    b[at] ^= 1 << self.below(8);
                }
                1 => b.truncate(self.below(b.len())),
                2 => {
                    let from = self.below(b.len());
                    let to = (from + self.below(512)).min(b.len());
                    let slice = b[from..to].to_vec();
                    let at = self.below(b.len());
                    b.splice(at..at, slice);
                }
                _ => {
                    let at = self.below(b.len().saturating_sub(4));
                    let v: [u8; 4] = match self.below(4) {
                        0 => [0; 4],
                        1 => [0xff; 4],
                        2 => 0x7fff_ffffu32.to_le_bytes(),
                        _ => (self.next() as u32).to_le_bytes(),
                    };
                    let n = if self.below(2) == 0 { 2 } else { 4 };
                    if at + n <= b.len() {
                        b[at..at + n].copy_from_slice(&v[..n]);
                    }
                }
            }
            if b.is_empty() {
                break;
            }
        }
        b
    }
}

/// Thousands of damaged and hostile variants of real ZIPs: inspection
/// accepts or refuses each, never panics or hangs, and leaves nothing in
/// its scratch folder. (The cases are generated, so every run checks the
/// same ones; a failure prints the case's number.)
#[test]
fn mutated_zips_are_refused_or_accepted_never_crash() {
    let seeds: Vec<Vec<u8>> = [
        vec![
            Item::Folder("setup/"),
            Item::File("setup/install.sh", b"echo hi\n".repeat(50)),
            Item::File("setup/data.bin", vec![7u8; 70_000]),
        ],
        vec![Item::File("readme.txt", b"hello".to_vec())],
    ]
    .into_iter()
    .map(|items| {
        let case = Case::new(items);
        fs::read(&case.zip).expect("seed")
    })
    .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let scratch = dir.path().join("scratch");
    fs::create_dir(&scratch).expect("scratch");
    let file = dir.path().join("case.zip");
    let mut m = Mutator(0x00c0_ffee);
    let start = std::time::Instant::now();
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..3000 {
        let bytes = m.mutate(&seeds[case % seeds.len()]);
        fs::write(&file, &bytes).expect("write case");
        let outcome = std::panic::catch_unwind(|| inspect_with_limit(&file, &scratch, 1 << 20));
        match outcome {
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!("case {case} panicked"),
        }
        let left = fs::read_dir(&scratch).expect("scratch").count();
        assert_eq!(left, 0, "case {case} left files in scratch");
    }
    assert!(
        start.elapsed() < std::time::Duration::from_secs(120),
        "3000 cases took {:?}",
        start.elapsed()
    );
    // Both sides were reached: the mutations are neither all harmless
    // nor all fatal at the first byte.
    assert!(
        accepted > 100 && refused > 1000,
        "{accepted} accepted, {refused} refused"
    );
}

/// The same for MSI databases: the properties are read or the file is
/// refused, whatever its bytes.
#[test]
fn mutated_msis_are_refused_or_read_never_crash() {
    let seed = hello_msi();
    let mut m = Mutator(0x0bad_5eed);
    for case in 0..1500 {
        let bytes = m.mutate(&seed);
        let outcome = std::panic::catch_unwind(|| {
            crate::package::msi::read_properties(std::io::Cursor::new(bytes))
        });
        assert!(outcome.is_ok(), "case {case} panicked");
    }
}
