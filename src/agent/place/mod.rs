//! Puts package content on disk: a ZIP unzipped into an installation's work
//! folder, or files distributed into the folder the admin chose.
//!
//! The agent trusts nothing about an archive, even though the server checked
//! it at registration: every entry's path goes through the same
//! [`entry_path`] rule, links, special files, encrypted entries and unknown
//! compression are refused, and sizes and CRCs are measured from what really
//! inflates, never taken from headers. Whatever the archive says, nothing is
//! written outside the folder, and nothing is written through a link found
//! inside it.
//!
//! Every file is written under a hidden temporary name in the directory of
//! its final path, synced, given its permissions, and only then renamed into
//! place, so a half-written file is never visible under its real name. The
//! renames happen only once every entry of the archive has been written and
//! verified: a refusal half-way (a bomb, a corrupt entry) leaves the folder
//! as it was, without temporary files and without the folders made for it.
//!
//! Permissions follow the seed's rule for distributed files: they come from
//! the destination folder, or from the file being replaced. On Unix a new
//! file gets its folder's group and the folder's mode without execute bits
//! (with them, if the entry is executable); a replaced file keeps the old
//! file's mode, owner and group; a new folder takes the mode and group of
//! its nearest existing parent. On Windows a new file or folder is created
//! in its destination folder and inherits from it (NTFS inheritance, no
//! DACL of its own); a replaced file gets the old file's owner, group and
//! DACL (protected or inheriting, as it was) before the rename puts it in
//! place, as `ReplaceFileW` would, but without its partial failures.
//!
//! `unzip.rs` checks and extracts archives, `staging.rs` writes files
//! under temporary names and renames them at the end, `perms.rs` decides
//! and applies permissions.

mod dirs;
mod perms;
mod staging;
#[cfg(all(test, unix))]
mod tests;
mod unzip;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use self::staging::{Staging, finish_file};
use self::unzip::extract;
use crate::package::{MAX_UNZIPPED_SIZE, entry_path};

/// Bytes copied or inflated per read.
const BUF_LEN: usize = 64 << 10;

/// Bytes written between two looks at [`Stop`] inside one file.
const STOP_EVERY: u64 = 4 << 20;

/// Asked before every entry and every few MiB inside one: true once the
/// attempt is cancelled. Placement then stops at once, removes what it
/// staged and renames nothing into place, so the folder is left as it was.
pub type Stop<'a> = dyn Fn() -> bool + Sync + 'a;

/// How much an archive may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes written in total, counted as they are written.
    pub max_total: u64,
}

impl Default for Limits {
    /// The seed's limit: 2 GiB unzipped.
    fn default() -> Self {
        Limits {
            max_total: MAX_UNZIPPED_SIZE,
        }
    }
}

/// What was placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Regular files written (folders are not counted).
    pub files: u64,
    /// Bytes written, which the archive's content really inflated to.
    pub bytes: u64,
}

/// Why content could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// The content or the destination is not acceptable: one line naming
    /// the entry or path. Retrying the same content will not help.
    #[error("{0}")]
    Refused(String),
    /// The disk or the file system failed; the second field says what was
    /// being done to which path.
    #[error("{1}: {0}")]
    Io(#[source] io::Error, String),
    /// [`Stop`] said so: the attempt was cancelled.
    #[error("stopped: the attempt was cancelled")]
    Stopped,
}

/// Unzips `zip` into `dir` (the empty work folder the agent made for an
/// installation). Files get ordinary permissions from the process's umask,
/// executable when the entry's Unix mode says so.
pub fn unzip_into(
    zip: &Path,
    dir: &Path,
    limits: &Limits,
    stop: &Stop<'_>,
) -> Result<Stats, PlaceError> {
    extract(zip, dir, limits, Rules::Plain, stop)
}

/// Places the file at `src` into `folder` under `name` (which goes through
/// the same rule as a ZIP entry's name, so "sub/x.conf" makes "sub"), with
/// the permission rules of distributed files. `executable` marks the file
/// as a program. Returns the final path.
pub fn distribute_file(
    src: &Path,
    folder: &Path,
    name: &str,
    executable: bool,
    stop: &Stop<'_>,
) -> Result<PathBuf, PlaceError> {
    if stop() {
        return Err(PlaceError::Stopped);
    }
    let shown = name.escape_debug().to_string();
    let rel = entry_path(name).map_err(|why| refused(format!("file name '{shown}' {why}")))?;
    let mut input = File::open(src).map_err(io_context(format!("opening {}", src.display())))?;
    let mut staging = Staging::new(folder, Rules::Inherit);
    staging.prepare_root()?;
    let (dir, file_name) = staging.ensure_parent(&rel)?;
    let dest = dir.child(file_name);
    let rel_dir = rel[..rel.len() - file_name.len()].trim_end_matches('/');
    let perms = staging.perms_for(&dir, file_name, &rel, executable)?;
    let (mut out, temp) = staging.create_temp(&dir, rel_dir, file_name, &perms)?;
    let mut buf = vec![0u8; BUF_LEN];
    let writing = || format!("writing {}", dest.display());
    let mut check = StopCheck::new(stop);
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PlaceError::Io(e, format!("reading {}", src.display()))),
        };
        out.write_all(&buf[..n]).map_err(io_context(writing()))?;
        if check.wrote(n) {
            return Err(PlaceError::Stopped);
        }
    }
    finish_file(&out, &temp, &perms).map_err(io_context(writing()))?;
    drop(out);
    staging.commit()?;
    Ok(dest)
}

/// Places every entry of `zip` into `folder` (sub-folders created), with
/// the permission rules of distributed files.
pub fn distribute_zip(
    zip: &Path,
    folder: &Path,
    limits: &Limits,
    stop: &Stop<'_>,
) -> Result<Stats, PlaceError> {
    extract(zip, folder, limits, Rules::Inherit, stop)
}

/// Which permissions files and folders get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rules {
    /// An installation's work folder: umask, x bit from the entry.
    Plain,
    /// A distribution: inherited from the folder or the replaced file.
    Inherit,
}

/// Asks [`Stop`] once every [`STOP_EVERY`] bytes written.
struct StopCheck<'a> {
    stop: &'a Stop<'a>,
    since: u64,
}

impl<'a> StopCheck<'a> {
    fn new(stop: &'a Stop<'a>) -> Self {
        StopCheck { stop, since: 0 }
    }

    /// `n` more bytes were written: true when it is time to stop.
    fn wrote(&mut self, n: usize) -> bool {
        self.since += n as u64;
        if self.since < STOP_EVERY {
            return false;
        }
        self.since = 0;
        (self.stop)()
    }
}

fn refused(message: String) -> PlaceError {
    // Names quoted in messages come from untrusted archives; keep them on
    // one line.
    PlaceError::Refused(
        message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    )
}

fn io_context(context: String) -> impl FnOnce(io::Error) -> PlaceError {
    move |e| PlaceError::Io(e, context)
}
