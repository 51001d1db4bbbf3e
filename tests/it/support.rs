//! Helpers shared by the integration tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A data dir of its own and the binary to run against it.
pub struct Courier {
    pub dir: tempfile::TempDir,
}

impl Courier {
    pub fn new() -> Courier {
        Courier {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A path for input files, outside the data dir.
    pub fn input(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join("in");
        std::fs::create_dir_all(&d).unwrap();
        d.join(name)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_courier"));
        c.arg("--data").arg(self.data());
        c.env_remove("COURIER_DATA");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run courier")
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "courier {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("utf-8 stdout")
    }

    /// Runs a command that must fail with exit code 1 and exactly one line
    /// on stderr; returns that line.
    pub fn err(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(1),
            "courier {args:?} should fail with 1; stdout {} stderr {stderr}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr:?}");
        assert!(o.stdout.is_empty(), "nothing on stdout when failing");
        stderr.trim_end().to_string()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// Files in the content store (blobs and staging), to prove a refused
    /// registration left nothing behind.
    pub fn content_files(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            let Ok(rd) = std::fs::read_dir(p) else { return };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data().join("content"), &mut out);
        walk(&self.data().join("scratch"), &mut out);
        out
    }
}

/// One entry of a hand-built ZIP.
pub struct Entry<'a> {
    pub name: &'a str,
    /// Deflate-compressed body (when `deflate`) or stored bytes.
    pub body: Vec<u8>,
    pub deflate: bool,
    /// Sizes and CRC written in the headers, true or not.
    pub claimed_size: u64,
    pub crc: u32,
    /// General-purpose flags (bit 0: encrypted).
    pub flags: u16,
    /// Unix mode in the external attributes (0 for none).
    pub unix_mode: u32,
}

impl<'a> Entry<'a> {
    /// An honest stored entry.
    pub fn stored(name: &'a str, data: &[u8]) -> Entry<'a> {
        Entry {
            name,
            body: data.to_vec(),
            deflate: false,
            claimed_size: data.len() as u64,
            crc: crc32fast::hash(data),
            flags: 0,
            unix_mode: 0,
        }
    }

    /// A deflated entry of `len` zero bytes whose headers claim `claimed`.
    pub fn zeros(name: &'a str, len: u64, claimed: u64) -> Entry<'a> {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        let chunk = vec![0u8; 1 << 20];
        let mut crc = crc32fast::Hasher::new();
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            enc.write_all(&chunk[..n]).unwrap();
            crc.update(&chunk[..n]);
            left -= n as u64;
        }
        Entry {
            name,
            body: enc.finish().unwrap(),
            deflate: true,
            claimed_size: claimed,
            crc: crc.finalize(),
            flags: 0,
            unix_mode: 0,
        }
    }
}

/// Writes a ZIP byte by byte, so tests can build archives no well-behaved
/// writer would produce (lying sizes, escaping names, links, encryption).
pub fn write_zip(path: &Path, entries: &[Entry]) {
    let mut out: Vec<u8> = Vec::new();
    let mut central: Vec<u8> = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let method: u16 = if e.deflate { 8 } else { 0 };
        let name = e.name.as_bytes();
        let claimed = e.claimed_size as u32;
        let compressed = e.body.len() as u32;
        // Local file header.
        out.extend_from_slice(&0x04034b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]); // time, date (1980-01-01)
        out.extend_from_slice(&e.crc.to_le_bytes());
        out.extend_from_slice(&compressed.to_le_bytes());
        out.extend_from_slice(&claimed.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&e.body);
        // Central directory header.
        let made_by: u16 = if e.unix_mode != 0 { (3 << 8) | 20 } else { 20 };
        central.extend_from_slice(&0x02014b50u32.to_le_bytes());
        central.extend_from_slice(&made_by.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&e.flags.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&[0, 0, 0x21, 0]);
        central.extend_from_slice(&e.crc.to_le_bytes());
        central.extend_from_slice(&compressed.to_le_bytes());
        central.extend_from_slice(&claimed.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attrs
        central.extend_from_slice(&(e.unix_mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x06054b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    std::fs::write(path, out).unwrap();
}

/// A ZIP written with the zip crate, as an admin's tools would make it.
pub fn make_zip(path: &Path, files: &[(&str, &[u8])]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap();
}

/// A sparse file of exactly `len` bytes (reads as zeros, takes no disk).
pub fn sparse(path: &Path, len: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
}

/// The file of `COURIER_CLOCK_FILE`: seconds added to the system time.
pub struct ClockFile {
    dir: tempfile::TempDir,
}

impl ClockFile {
    pub fn new() -> ClockFile {
        let c = ClockFile {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        c.set(0);
        c
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("offset")
    }

    pub fn path_str(&self) -> String {
        self.path().to_str().expect("utf-8 path").to_string()
    }

    /// Moves the clock to `offset` seconds from the system time. Written
    /// beside and renamed, so a reader never sees half a number. Returns
    /// once a running server has surely seen it: a process re-reads the
    /// file when its last reading is 100 ms old, so after 300 ms any
    /// reading from before the change has expired, however loaded the
    /// machine is (this waits for a cache, it measures nothing).
    pub fn set(&self, offset: i64) {
        let tmp = self.dir.path().join("offset.tmp");
        std::fs::write(&tmp, offset.to_string()).unwrap();
        std::fs::rename(&tmp, self.path()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    /// Now, as a process reading this file sees it.
    pub fn now(&self) -> i64 {
        let offset: i64 = std::fs::read_to_string(self.path())
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        jiff::Timestamp::now().as_second() + offset
    }
}
