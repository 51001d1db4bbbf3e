//! Content transfer: it resumes after either side dies midway, content
//! that does not match its hash is never installed, and the agent's cache
//! is never trusted blindly.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{add_package, tree};
use crate::procs::{Agent, DEADLINE, Server, create_task, dest, task_id};

const MIB: u64 = 1 << 20;

/// `len` bytes nothing compresses, the same on every run: the BLAKE3
/// output stream of a fixed key. Returns the BLAKE3 of the file.
fn pattern_file(path: &Path, len: u64) -> String {
    let mut xof = blake3::Hasher::new()
        .update(b"courier distribution test pattern")
        .finalize_xof();
    let mut out = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let mut buf = vec![0u8; MIB as usize];
    let mut left = len;
    while left > 0 {
        let n = left.min(MIB) as usize;
        xof.fill(&mut buf[..n]);
        out.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    out.flush().unwrap();
    drop(out);
    file_hash(path)
}

fn file_hash(path: &Path) -> String {
    let mut h = blake3::Hasher::new();
    h.update_reader(fs::File::open(path).unwrap()).unwrap();
    h.finalize().to_hex().to_string()
}

/// Size of the package the resume tests break midway.
const BIG: u64 = 48 * MIB;

/// The resume tests' server serves content at this rate (about 1.5 s for
/// [`BIG`]), so the test sees the transfer midway however fast loopback
/// is; unthrottled, 48 MiB crosses it in about 0.1 s here.
const RESUME_SERVER: [&str; 2] = ["--bandwidth", "32MiB/s"];

/// Waits (polling often: loopback is fast) until the agent's partial
/// download of `hash` holds at least `at_least` bytes, then calls `brk`
/// at once. Returns the size of the partial file right after.
fn break_transfer_at(
    a: &mut Agent,
    hash: &str,
    at_least: u64,
    brk: impl FnOnce(&mut Agent),
) -> u64 {
    let part = a.data().join("cache").join(format!("{hash}.part"));
    let done = a.data().join("cache").join(hash);
    let end = Instant::now() + DEADLINE;
    loop {
        let len = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if len >= at_least {
            brk(a);
            break;
        }
        assert!(
            !done.exists(),
            "the whole package arrived before the transfer could be broken: make BIG larger\n{}",
            a.diagnostics()
        );
        assert!(
            Instant::now() < end,
            "the download never reached {at_least} bytes\n{}",
            a.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let len = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    assert!(
        !done.exists() && len < BIG,
        "the download finished anyway ({len} bytes): make BIG larger"
    );
    len
}

/// A file package of [`BIG`] incompressible bytes to be placed in a
/// folder of its own. Returns (package, folder, its content hash).
fn big_file_package(s: &Server) -> (Value, PathBuf, tempfile::TempDir) {
    let src = s.input("big.bin");
    let hash = pattern_file(&src, BIG);
    let place = tempfile::tempdir().unwrap();
    let folder = place.path().join("big");
    let pkg = add_package(s, &src, &["--folder", folder.to_str().unwrap()]);
    assert_eq!(pkg["hash"], hash.as_str());
    assert_eq!(pkg["size"], BIG);
    (pkg, folder, place)
}

#[test]
fn transfer_resumes_after_the_server_dies_midway() {
    let mut s = Server::start_with(&RESUME_SERVER);
    let (_, token) = s.token(true);
    let mut a = Agent::enrolled(&s, &token, "resume-01");
    let (pkg, folder, _place) = big_file_package(&s);
    let hash = pkg["hash"].as_str().unwrap().to_string();

    let t = create_task(&s, &pkg, "resume-01", &[]);
    let id = task_id(&t);
    let broken_at = break_transfer_at(&mut a, &hash, BIG / 4, |_| s.kill());
    assert!(broken_at >= BIG / 4);
    s.restart();

    let t = s.wait_task_finished(id, &[&a]);
    assert_eq!(t["status"], "completed", "{t:#}");
    let d = dest(&t, "resume-01");
    assert_eq!(d["status"], "succeeded", "{t:#}");
    let placed = folder.join("big.bin");
    assert_eq!(file_hash(&placed), hash, "placed file differs");

    // Every byte crossed the network once, plus at most the part of a
    // chunk that was in flight when the server died. Starting over would
    // have fetched the first `broken_at` bytes a second time.
    let transferred = d["transferred"].as_u64().unwrap();
    eprintln!("server killed at {broken_at} of {BIG} bytes; {transferred} transferred in all");
    assert!(
        (BIG..BIG + 2 * MIB).contains(&transferred),
        "transferred {transferred} for {BIG} bytes broken at {broken_at}: {t:#}"
    );
}

#[test]
fn transfer_resumes_after_the_agent_dies_midway() {
    let s = Server::start_with(&RESUME_SERVER);
    let (_, token) = s.token(true);
    let mut a = Agent::enrolled(&s, &token, "resume-02");
    let (pkg, folder, _place) = big_file_package(&s);
    let hash = pkg["hash"].as_str().unwrap().to_string();

    let t = create_task(&s, &pkg, "resume-02", &[]);
    let id = task_id(&t);
    let kept = break_transfer_at(&mut a, &hash, BIG / 4, |a| a.kill());
    a.start();

    let t = s.wait_task_finished(id, &[&a]);
    assert_eq!(t["status"], "completed", "{t:#}");
    let d = dest(&t, "resume-02");
    assert_eq!(d["status"], "succeeded", "{t:#}");
    assert_eq!(file_hash(&folder.join("big.bin")), hash);

    // The new agent process fetched only what the dead one had not kept
    // (a chunk cut short by the kill is fetched again).
    let transferred = d["transferred"].as_u64().unwrap();
    eprintln!("agent killed with {kept} of {BIG} bytes kept; {transferred} transferred after");
    assert!(
        transferred <= BIG - kept + 2 * MIB && transferred < BIG,
        "transferred {transferred} for {BIG} bytes, {kept} kept: {t:#}"
    );
}

/// A file package of 3 MiB whose copy in the server's content store is
/// damaged after registration (one bit in its second chunk), sent to
/// `name`. Returns the finished task, the package's folder and hash.
fn corrupted_distribution(
    s: &Server,
    a: &Agent,
    name: &str,
) -> (Value, PathBuf, String, tempfile::TempDir) {
    let src = s.input("data.bin");
    let hash = pattern_file(&src, 3 * MIB);
    let place = tempfile::tempdir().unwrap();
    let folder = place.path().join("target");
    fs::create_dir(&folder).unwrap();
    let pkg = add_package(s, &src, &["--folder", folder.to_str().unwrap()]);

    let blob = s.data().join("content").join(&hash[..2]).join(&hash);
    let mut perms = fs::metadata(&blob).unwrap().permissions();
    perms.set_mode(perms.mode() | 0o200);
    fs::set_permissions(&blob, perms).unwrap();
    let mut bytes = fs::read(&blob).unwrap();
    bytes[(MIB + MIB / 2) as usize] ^= 0x01;
    fs::write(&blob, bytes).unwrap();

    let t = create_task(s, &pkg, name, &[]);
    let t = s.wait_task_finished(task_id(&t), &[a]);
    (t, folder, hash, place)
}

#[test]
fn corrupted_content_is_never_installed() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "verify-01");
    let (t, folder, hash, _place) = corrupted_distribution(&s, &a, "verify-01");

    assert_eq!(t["status"], "failed", "{t:#}");
    let d = dest(&t, "verify-01");
    assert_eq!(d["status"], "failed", "{t:#}");
    let msg = d["message"].as_str().unwrap_or("");
    assert!(msg.contains("verification"), "{t:#}");
    // Nothing placed, not even a temporary file, and nothing kept in the
    // agent's cache as if it were the package.
    assert!(tree(&folder).is_empty(), "{:?}", tree(&folder));
    assert!(!a.data().join("cache").join(&hash).exists());
}

/// `transferred` is documented as the bytes downloaded for the attempt; a
/// download that fails still downloaded what it did.
#[test]
fn failed_download_reports_the_bytes_it_fetched() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "verify-02");
    let (t, _folder, _hash, _place) = corrupted_distribution(&s, &a, "verify-02");
    let d = dest(&t, "verify-02");
    assert_eq!(d["status"], "failed", "{t:#}");
    // At least the good first chunk and the damaged second one crossed
    // the network (the second, several times).
    let transferred = d["transferred"].as_u64().unwrap();
    assert!(
        transferred >= 2 * MIB,
        "the failed attempt fetched megabytes but reports {transferred} bytes transferred: {t:#}"
    );
}

/// The cache is never trusted blindly: an installer that changes its own
/// file (linked from the agent's cache into the work dir) makes the next
/// run fetch the content again instead of running the changed copy.
#[test]
fn changed_cache_is_fetched_again_not_run() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let a = Agent::enrolled(&s, &token, "pc-01");
    let data = s.input("data.txt");
    fs::write(&data, "original\n").unwrap();
    let pkg = add_package(
        &s,
        &data,
        // Overwrites its first byte in place: same size, same inode.
        &[
            "--install-command",
            "cat data.txt && printf X | dd of=data.txt bs=1 count=1 conv=notrunc 2>/dev/null",
        ],
    );
    let t = create_task(&s, &pkg, "pc-01", &[]);
    let t = s.wait_task_finished(task_id(&t), &[&a]);
    assert_eq!(dest(&t, "pc-01")["status"], "succeeded", "{t:#}");
    s.ok(&["task", "rerun", &task_id(&t).to_string(), "--all"]);
    let t = s.wait_task_finished(task_id(&t), &[&a]);
    let d = dest(&t, "pc-01");
    assert_eq!(d["status"], "succeeded", "{t:#}");
    assert_eq!(d["attempt"], 2, "{t:#}");
    assert_eq!(d["transferred"], pkg["size"], "fetched again: {t:#}");
    let out = s.json(&["task", "show", &task_id(&t).to_string(), "--json"]);
    assert_eq!(dest(&out, "pc-01")["output"], "original\n", "{out:#}");
}
