use super::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// A placement nobody cancels.
const NEVER: &Stop<'static> = &|| false;

/// What a test puts in a ZIP.
enum Item<'a> {
    File(&'a str, &'a [u8], u32),
    Folder(&'a str),
    Link(&'a str, &'a str),
}

fn write_zip(path: &Path, items: &[Item<'_>]) {
    let mut zip = ZipWriter::new(File::create(path).expect("create zip"));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for item in items {
        match *item {
            Item::File(name, bytes, mode) => {
                zip.start_file(name, options.unix_permissions(mode))
                    .expect("start file");
                zip.write_all(bytes).expect("write entry");
            }
            Item::Folder(name) => zip.add_directory(name, options).expect("folder"),
            Item::Link(name, target) => zip.add_symlink(name, target, options).expect("link"),
        }
    }
    zip.finish().expect("finish zip");
}

/// A scratch directory with a ZIP beside the destination folder.
struct Case {
    tmp: tempfile::TempDir,
    zip: PathBuf,
    dest: PathBuf,
}

impl Case {
    fn new(items: &[Item<'_>]) -> Case {
        let tmp = tempfile::tempdir().expect("tempdir");
        let zip = tmp.path().join("package.zip");
        let dest = tmp.path().join("dest");
        write_zip(&zip, items);
        Case { tmp, zip, dest }
    }

    /// Rewrites bytes of the archive in place.
    fn patch(&self, edit: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = fs::read(&self.zip).expect("read zip");
        edit(&mut bytes);
        fs::write(&self.zip, bytes).expect("write zip");
    }

    fn refusal(&self, result: Result<Stats, PlaceError>) -> String {
        match result {
            Err(PlaceError::Refused(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Every path under the scratch directory, relative, sorted.
    fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.tmp.path(), self.tmp.path(), &mut out);
        out.sort();
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let rel = path.strip_prefix(base).expect("prefix");
        out.push(rel.display().to_string());
        if fs::symlink_metadata(&path).expect("meta").is_dir() {
            walk(base, &path, out);
        }
    }
}

/// Offsets of every header with `signature` (local "PK\3\4" or
/// central "PK\1\2").
fn headers(bytes: &[u8], signature: &[u8; 4]) -> Vec<usize> {
    memchr::memmem::find_iter(bytes, signature).collect()
}

fn small() -> Limits {
    Limits { max_total: 1 << 20 }
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").mode() & 0o7777
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn nested_zip_is_unzipped() {
    let case = Case::new(&[
        Item::Folder("empty/"),
        Item::File("top.txt", b"top", 0o644),
        Item::File("a/b/c/deep.txt", b"deep", 0o644),
        Item::File("a\\win.txt", b"win", 0o644),
        Item::File("bin/tool", b"#!/bin/sh\n", 0o755),
    ]);
    let stats = unzip_into(&case.zip, &case.dest, &small(), NEVER).expect("unzip");
    assert_eq!(
        stats,
        Stats {
            files: 4,
            bytes: 3 + 4 + 3 + 10
        }
    );
    assert_eq!(
        fs::read(case.dest.join("a/b/c/deep.txt")).expect("deep"),
        b"deep"
    );
    assert_eq!(fs::read(case.dest.join("a/win.txt")).expect("win"), b"win");
    assert!(case.dest.join("empty").is_dir());
    assert_eq!(mode_of(&case.dest.join("bin/tool")) & 0o111, 0o111);
    assert_eq!(mode_of(&case.dest.join("top.txt")) & 0o111, 0);
    assert!(!case.tree().iter().any(|p| p.contains(".courier-")));
}

#[test]
fn paths_out_of_the_folder_are_refused_and_nothing_is_written() {
    for (name, why) in [
        ("../evil", "'..' component"),
        ("a/../../evil", "'..' component"),
        ("/abs", "absolute path"),
        ("C:\\x", "drive letter"),
    ] {
        let case = Case::new(&[
            Item::File("good.txt", b"fine", 0o644),
            Item::File(name, b"x", 0o644),
        ]);
        let before = case.tree();
        let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small(), NEVER));
        assert!(message.contains(why), "{name}: {message}");
        assert!(message.starts_with("ZIP entry '"), "{name}: {message}");
        assert_eq!(case.tree(), before, "{name}");
        let message = case.refusal(unzip_into(&case.zip, &case.dest, &small(), NEVER));
        assert!(message.contains(why), "{name}: {message}");
        assert_eq!(case.tree(), before, "{name}");
    }
}

#[test]
fn symlink_entry_is_refused() {
    let case = Case::new(&[Item::Link("link", "/etc/passwd")]);
    let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small(), NEVER));
    assert_eq!(message, "ZIP entry 'link' is a symbolic link");
    assert!(!case.dest.exists());
}

#[test]
fn links_already_in_the_folder_are_not_followed() {
    let case = Case::new(&[Item::File("sub/x.txt", b"x", 0o644)]);
    let outside = case.tmp.path().join("outside");
    fs::create_dir_all(&outside).expect("outside");
    fs::create_dir_all(&case.dest).expect("dest");
    std::os::unix::fs::symlink(&outside, case.dest.join("sub")).expect("link");
    let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small(), NEVER));
    assert!(message.contains("is a symbolic link"), "{message}");
    assert_eq!(fs::read_dir(&outside).expect("outside").count(), 0);

    // A link where the file goes is not written through either.
    let case = Case::new(&[Item::File("x.txt", b"x", 0o644)]);
    fs::create_dir_all(&case.dest).expect("dest");
    let target = case.tmp.path().join("target");
    fs::write(&target, "keep").expect("target");
    std::os::unix::fs::symlink(&target, case.dest.join("x.txt")).expect("link");
    let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small(), NEVER));
    assert!(message.contains("symbolic link"), "{message}");
    assert_eq!(fs::read_to_string(&target).expect("target"), "keep");
}

#[test]
fn encrypted_and_unknown_compression_are_refused() {
    let case = Case::new(&[Item::File("secret.txt", b"hush", 0o644)]);
    case.patch(|bytes| {
        for at in headers(bytes, b"PK\x03\x04") {
            bytes[at + 6] |= 1;
        }
        for at in headers(bytes, b"PK\x01\x02") {
            bytes[at + 8] |= 1;
        }
    });
    let message = case.refusal(unzip_into(&case.zip, &case.dest, &small(), NEVER));
    assert_eq!(message, "ZIP entry 'secret.txt' is encrypted");

    let case = Case::new(&[Item::File("a.bin", b"data", 0o644)]);
    case.patch(|bytes| {
        for at in headers(bytes, b"PK\x03\x04") {
            bytes[at + 8] = 12;
        }
        for at in headers(bytes, b"PK\x01\x02") {
            bytes[at + 10] = 12;
        }
    });
    let message = case.refusal(unzip_into(&case.zip, &case.dest, &small(), NEVER));
    assert!(message.contains("compression method"), "{message}");
}

#[test]
fn bomb_is_refused_and_partial_files_removed() {
    // Honest headers past the limit: refused before anything is written.
    let big = vec![0u8; 2 << 20];
    let case = Case::new(&[Item::File("big.bin", &big, 0o644)]);
    let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small(), NEVER));
    assert!(message.contains("more than the limit"), "{message}");
    assert!(!case.dest.exists());

    // Lying headers (1 KiB claimed): refused while inflating, and what
    // was written so far, including the good entry before it, is gone.
    let case = Case::new(&[
        Item::File("good/first.txt", b"first", 0o644),
        Item::File("bomb/zeros.bin", &big, 0o644),
    ]);
    let claim = 1024u32.to_le_bytes();
    case.patch(|bytes| {
        let local = headers(bytes, b"PK\x03\x04")[1];
        bytes[local + 22..local + 26].copy_from_slice(&claim);
        let central = headers(bytes, b"PK\x01\x02")[1];
        bytes[central + 24..central + 28].copy_from_slice(&claim);
    });
    let before = case.tree();
    let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small(), NEVER));
    assert_eq!(
        message,
        "ZIP entry 'bomb/zeros.bin' claims 1024 bytes but decompresses to more"
    );
    assert_eq!(case.tree(), before);

    // The limit counts bytes really written, across entries.
    let part = vec![1u8; 700 << 10];
    let case = Case::new(&[
        Item::File("one.bin", &part, 0o644),
        Item::File("two.bin", &part, 0o644),
    ]);
    let message = case.refusal(unzip_into(&case.zip, &case.dest, &small(), NEVER));
    assert!(message.ends_with("crossed at 'two.bin'"), "{message}");
    assert!(!case.dest.exists());
}

#[test]
fn failure_midway_leaves_no_temp_file() {
    let case = Case::new(&[
        Item::File("one.txt", b"one", 0o644),
        Item::File("sub/two.txt", b"two", 0o644),
    ]);
    case.patch(|bytes| {
        let at = headers(bytes, b"PK\x03\x04")[1];
        bytes[at + 14] ^= 0xFF;
        let at = headers(bytes, b"PK\x01\x02")[1];
        bytes[at + 16] ^= 0xFF;
    });
    fs::create_dir_all(&case.dest).expect("dest");
    fs::write(case.dest.join("one.txt"), "old").expect("old");
    let before = case.tree();
    let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small(), NEVER));
    assert_eq!(message, "ZIP entry 'sub/two.txt' is corrupt (CRC mismatch)");
    assert_eq!(case.tree(), before);
    assert_eq!(
        fs::read_to_string(case.dest.join("one.txt")).expect("one"),
        "old"
    );
}

/// A folder of the destination swapped for a link to elsewhere while the
/// archive is being extracted into it (here between two entries, through
/// the cancellation probe, which is asked before each): nothing is written
/// through the link, and the placement is refused.
#[test]
fn a_folder_swapped_for_a_link_midway_is_not_followed() {
    let names: Vec<String> = (0..10).map(|i| format!("a/f{i}.txt")).collect();
    let mut items = vec![Item::Folder("a/")];
    items.extend(names.iter().map(|n| Item::File(n, b"data", 0o644)));
    for rules in [Rules::Inherit, Rules::Plain] {
        let case = Case::new(&items);
        let outside = case.tmp.path().join("outside");
        fs::create_dir(&outside).expect("outside");
        fs::create_dir(&case.dest).expect("dest");
        let asked = std::sync::atomic::AtomicUsize::new(0);
        // Names seen outside at any later probe: a failure cleaning up at
        // the end must not hide a write made through the link.
        let seen_outside = std::sync::Mutex::new(Vec::new());
        let swap = || {
            // Before the fifth entry: `a` and three files are written.
            if asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 4 {
                fs::rename(case.dest.join("a"), case.dest.join("a.moved")).expect("move");
                std::os::unix::fs::symlink(&outside, case.dest.join("a")).expect("link");
            }
            for e in fs::read_dir(&outside).expect("outside").flatten() {
                seen_outside.lock().unwrap().push(e.file_name());
            }
            false
        };
        let placed = unzip::extract(&case.zip, &case.dest, &Limits::default(), rules, &swap);
        let seen = seen_outside.into_inner().unwrap();
        assert!(seen.is_empty(), "written outside the folder: {seen:?}");
        let message = case.refusal(placed);
        assert!(
            message.ends_with("a' is a symbolic link; nothing is written through links"),
            "{message}"
        );
        assert_eq!(
            fs::read_dir(&outside).expect("outside").count(),
            0,
            "{:?}",
            case.tree()
        );
        // What was staged before the swap stayed in the real folder, and
        // nothing was renamed into place.
        assert!(
            case.tree().iter().all(|p| !p.starts_with("dest/a.moved/f")),
            "{:?}",
            case.tree()
        );
    }
}

#[test]
fn a_stop_midway_leaves_the_folder_as_it_was() {
    let big = vec![7u8; 9 << 20];
    let case = Case::new(&[
        Item::File("one.txt", b"one", 0o644),
        Item::File("sub/two.txt", b"two", 0o644),
        Item::File("sub/big.bin", &big, 0o644),
        Item::File("three.txt", b"three", 0o644),
    ]);
    fs::create_dir_all(&case.dest).expect("dest");
    fs::write(case.dest.join("one.txt"), "old").expect("old");
    let before = case.tree();
    // Between entries: asked before the third.
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let third = || asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 2;
    let placed = distribute_zip(&case.zip, &case.dest, &Limits::default(), &third);
    assert!(matches!(placed, Err(PlaceError::Stopped)), "{placed:?}");
    assert_eq!(case.tree(), before);
    // Inside an entry: 9 MiB are asked about every 4 MiB.
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let inside = || asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 3;
    let placed = unzip_into(
        &case.zip,
        &case.tmp.path().join("work"),
        &Limits::default(),
        &inside,
    );
    assert!(matches!(placed, Err(PlaceError::Stopped)), "{placed:?}");
    assert_eq!(case.tree(), before);
    // A single file, stopped before it is written.
    let src = case.tmp.path().join("src");
    fs::write(&src, "new").expect("src");
    let placed = distribute_file(&src, &case.dest, "one.txt", false, &|| true);
    assert!(matches!(placed, Err(PlaceError::Stopped)), "{placed:?}");
    fs::remove_file(&src).expect("src");
    assert_eq!(case.tree(), before);
}

#[test]
fn new_file_takes_the_folder_mode_without_x_unless_executable() {
    let case = Case::new(&[
        Item::File("data.txt", b"data", 0o777),
        Item::File("run.sh", b"#!/bin/sh\n", 0o755),
        Item::File("sub/more.txt", b"more", 0o644),
    ]);
    fs::create_dir_all(&case.dest).expect("dest");
    fs::set_permissions(&case.dest, fs::Permissions::from_mode(0o750)).expect("chmod");
    distribute_zip(&case.zip, &case.dest, &small(), NEVER).expect("distribute");
    // The entry's own mode is not used, only whether it is executable.
    assert_eq!(mode_of(&case.dest.join("data.txt")), 0o750);
    assert_eq!(mode_of(&case.dest.join("run.sh")), 0o750);
    assert_eq!(mode_of(&case.dest.join("sub")), 0o750);
    assert_eq!(mode_of(&case.dest.join("sub/more.txt")), 0o640);

    let src = case.tmp.path().join("notes");
    fs::write(&src, "notes").expect("src");
    let placed = distribute_file(&src, &case.dest, "notes.txt", false, NEVER).expect("file");
    assert_eq!(placed, case.dest.join("notes.txt"));
    assert_eq!(mode_of(&placed), 0o640);
    let placed = distribute_file(&src, &case.dest, "tool", true, NEVER).expect("file");
    assert_eq!(mode_of(&placed), 0o750);
}

#[test]
fn replaced_file_keeps_its_mode_owner_and_group() {
    let case = Case::new(&[Item::File("conf.ini", b"new", 0o755)]);
    fs::create_dir_all(&case.dest).expect("dest");
    fs::set_permissions(&case.dest, fs::Permissions::from_mode(0o755)).expect("chmod");
    let old = case.dest.join("conf.ini");
    fs::write(&old, "old content").expect("old");
    fs::set_permissions(&old, fs::Permissions::from_mode(0o600)).expect("chmod");
    if is_root() {
        chown(&old, Some(4242), Some(4343)).expect("chown");
    }
    distribute_zip(&case.zip, &case.dest, &small(), NEVER).expect("distribute");
    assert_eq!(fs::read_to_string(&old).expect("new"), "new");
    assert_eq!(mode_of(&old), 0o600);
    if is_root() {
        let meta = fs::metadata(&old).expect("meta");
        assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
    }

    let src = case.tmp.path().join("again");
    fs::write(&src, "again").expect("src");
    distribute_file(&src, &case.dest, "conf.ini", true, NEVER).expect("file");
    assert_eq!(fs::read_to_string(&old).expect("again"), "again");
    assert_eq!(mode_of(&old), 0o600);
}

#[test]
fn new_file_and_folder_take_the_folder_group() {
    if !is_root() {
        eprintln!("skipped: changing a folder's group to any gid needs root");
        return;
    }
    let case = Case::new(&[Item::File("sub/x.txt", b"x", 0o644)]);
    fs::create_dir_all(&case.dest).expect("dest");
    chown(&case.dest, None, Some(12345)).expect("chown");
    distribute_zip(&case.zip, &case.dest, &small(), NEVER).expect("distribute");
    let gid = |p: &Path| fs::metadata(p).expect("meta").gid();
    assert_eq!(gid(&case.dest.join("sub")), 12345);
    assert_eq!(gid(&case.dest.join("sub/x.txt")), 12345);
    let src = case.tmp.path().join("src");
    fs::write(&src, "y").expect("src");
    let placed = distribute_file(&src, &case.dest, "y.txt", false, NEVER).expect("file");
    assert_eq!(gid(&placed), 12345);
}

#[test]
fn missing_folder_is_made_like_its_parent() {
    let case = Case::new(&[Item::File("x.txt", b"x", 0o644)]);
    let parent = case.tmp.path().join("parent");
    fs::create_dir(&parent).expect("parent");
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o2770)).expect("chmod");
    let folder = parent.join("a/b");
    distribute_zip(&case.zip, &folder, &small(), NEVER).expect("distribute");
    assert_eq!(mode_of(&parent.join("a")), 0o2770);
    assert_eq!(mode_of(&folder), 0o2770);
    assert_eq!(mode_of(&folder.join("x.txt")), 0o660);

    // A refusal removes the folders it made.
    let bad = Case::new(&[Item::Link("l", "/")]);
    let folder = parent.join("c/d");
    bad.refusal(distribute_zip(&bad.zip, &folder, &small(), NEVER));
    assert!(!parent.join("c").exists());
}

#[test]
fn distribute_file_refuses_unsafe_names() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    fs::write(&src, "x").expect("src");
    let folder = tmp.path().join("dest");
    for name in ["../x", "/etc/x", "C:\\x", ""] {
        match distribute_file(&src, &folder, name, false, NEVER) {
            Err(PlaceError::Refused(m)) => assert!(m.starts_with("file name '"), "{m}"),
            other => panic!("{name}: expected a refusal, got {other:?}"),
        }
    }
    assert!(!folder.exists());
}

#[test]
fn colliding_entries_are_refused() {
    let case = Case::new(&[
        Item::File("dir/a.txt", b"1", 0o644),
        Item::File("DIR/A.TXT", b"2", 0o644),
    ]);
    let message = case.refusal(unzip_into(&case.zip, &case.dest, &small(), NEVER));
    assert!(message.contains("same path as 'dir/a.txt'"), "{message}");
    let case = Case::new(&[Item::File("a", b"1", 0o644), Item::File("a/b", b"2", 0o644)]);
    let message = case.refusal(unzip_into(&case.zip, &case.dest, &small(), NEVER));
    assert!(message.contains("'a' is a file but"), "{message}");
}

#[test]
fn long_names_get_a_short_enough_temp_name() {
    let name = "é".repeat(120); // 240 bytes, close to the 255 limit
    let case = Case::new(&[Item::File(&name, b"x", 0o644)]);
    unzip_into(&case.zip, &case.dest, &small(), NEVER).expect("unzip");
    assert_eq!(fs::read(case.dest.join(&name)).expect("read"), b"x");
}
