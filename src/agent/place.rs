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
//! its nearest existing parent. On Windows, NTFS inheritance already gives
//! a new file its folder's permissions; a replaced file gets them too, since
//! only `ReplaceFileW` would carry the old file's ACL over, and that needs
//! unsafe Win32 calls.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use crate::package::inflate::{Claim, InflateError, inflate};
use crate::package::zip::{add_parents, check_type, collision_key};
use crate::package::{MAX_UNZIPPED_SIZE, entry_path};

/// Bytes copied or inflated per read.
const BUF_LEN: usize = 64 << 10;

/// Longest part of the final name kept in a temporary name, so that the
/// prefix and suffix added never push it past the usual 255-byte limit.
const TEMP_NAME_KEEP: usize = 200;

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
}

/// Unzips `zip` into `dir` (the empty work folder the agent made for an
/// installation). Files get ordinary permissions from the process's umask,
/// executable when the entry's Unix mode says so.
pub fn unzip_into(zip: &Path, dir: &Path, limits: &Limits) -> Result<Stats, PlaceError> {
    extract(zip, dir, limits, Rules::Plain)
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
) -> Result<PathBuf, PlaceError> {
    let shown = name.escape_debug().to_string();
    let rel = entry_path(name).map_err(|why| refused(format!("file name '{shown}' {why}")))?;
    let mut input = File::open(src).map_err(io_context(format!("opening {}", src.display())))?;
    let mut staging = Staging::new(folder, Rules::Inherit);
    staging.prepare_root()?;
    let (dir, file_name) = staging.ensure_parent(&rel)?;
    let dest = dir.join(file_name);
    let perms = staging.perms_for(&dir, &dest, &rel, executable)?;
    let mut out = staging.create_temp(&dir, file_name, &dest, &perms)?;
    let mut buf = vec![0u8; BUF_LEN];
    let writing = || format!("writing {}", dest.display());
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PlaceError::Io(e, format!("reading {}", src.display()))),
        };
        out.write_all(&buf[..n]).map_err(io_context(writing()))?;
    }
    finish_file(&out, &perms).map_err(io_context(writing()))?;
    drop(out);
    staging.commit()?;
    Ok(dest)
}

/// Places every entry of `zip` into `folder` (sub-folders created), with
/// the permission rules of distributed files.
pub fn distribute_zip(zip: &Path, folder: &Path, limits: &Limits) -> Result<Stats, PlaceError> {
    extract(zip, folder, limits, Rules::Inherit)
}

/// Which permissions files and folders get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// An installation's work folder: umask, x bit from the entry.
    Plain,
    /// A distribution: inherited from the folder or the replaced file.
    Inherit,
}

/// One entry of the archive, checked and ready to extract.
struct Planned {
    index: usize,
    /// Relative '/'-separated path from [`entry_path`].
    path: String,
    is_folder: bool,
    executable: bool,
    claim: Claim,
}

fn extract(zip: &Path, folder: &Path, limits: &Limits, rules: Rules) -> Result<Stats, PlaceError> {
    let file = File::open(zip).map_err(io_context(format!("opening {}", zip.display())))?;
    let reading = || format!("reading {}", zip.display());
    let mut archive = ZipArchive::new(BufReader::new(file))
        .map_err(|e| zip_error(e, "not a readable ZIP", reading()))?;
    let plan = plan(&mut archive, limits, reading)?;

    let mut staging = Staging::new(folder, rules);
    staging.prepare_root()?;
    let mut buf = vec![0u8; BUF_LEN];
    let mut stats = Stats::default();
    for item in &plan {
        if item.is_folder {
            staging.ensure_dir(&item.path)?;
            continue;
        }
        let shown = item.path.escape_debug().to_string();
        let (dir, file_name) = staging.ensure_parent(&item.path)?;
        let dest = dir.join(file_name);
        let perms = staging.perms_for(&dir, &dest, &item.path, item.executable)?;
        let mut out = staging.create_temp(&dir, file_name, &dest, &perms)?;
        let raw = archive
            .by_index_raw(item.index)
            .map_err(|e| zip_error(e, &format!("ZIP entry '{shown}' cannot be read"), reading()))?;
        let budget = limits.max_total.saturating_sub(stats.bytes);
        let claimed = item.claim.size;
        let size = inflate(raw, &item.claim, budget, &mut buf, |_, piece| {
            out.write_all(piece)
        })
        .map_err(|e| match e {
            InflateError::MoreThanClaimed => refused(format!(
                "ZIP entry '{shown}' claims {claimed} bytes but decompresses to more"
            )),
            InflateError::LessThanClaimed(size) => refused(format!(
                "ZIP entry '{shown}' claims {claimed} bytes but decompresses to {size}"
            )),
            InflateError::OverBudget => over_limit(limits, &shown),
            InflateError::CrcMismatch => {
                refused(format!("ZIP entry '{shown}' is corrupt (CRC mismatch)"))
            }
            InflateError::Corrupt(e) => refused(format!("ZIP entry '{shown}' is corrupt ({e})")),
            InflateError::Read(e) => PlaceError::Io(e, reading()),
            InflateError::Write(e) => PlaceError::Io(e, format!("writing {}", dest.display())),
        })?;
        finish_file(&out, &perms).map_err(io_context(format!("writing {}", dest.display())))?;
        stats.files += 1;
        stats.bytes += size;
    }
    staging.commit()?;
    Ok(stats)
}

/// Checks everything about the archive that needs no inflating, before a
/// single byte is written: a refusal here leaves no trace at all.
fn plan<R: Read + io::Seek>(
    archive: &mut ZipArchive<R>,
    limits: &Limits,
    reading: impl Fn() -> String,
) -> Result<Vec<Planned>, PlaceError> {
    // The central directory is indexed by name, so a second entry of the
    // same name would slip past these checks.
    if archive.has_duplicate_names() {
        return Err(refused("ZIP has two entries with the same name".into()));
    }
    // Local headers that disagree with the central directory, or entries
    // that overlap, mean two readers would see two different archives.
    archive
        .validate_header_consistency()
        .map_err(|e| zip_error(e, "ZIP headers are inconsistent", reading()))?;

    let mut plan = Vec::with_capacity(archive.len());
    let mut claimed_total: u64 = 0;
    // Collision key → path of every file, and the keys of every folder, to
    // refuse entries a Windows destination would see as the same path, and
    // a file where other entries need a folder.
    let mut file_keys: BTreeMap<String, String> = BTreeMap::new();
    let mut folder_keys: BTreeSet<String> = BTreeSet::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|e| {
            zip_error(
                e,
                &format!("ZIP entry #{} cannot be read", index + 1),
                reading(),
            )
        })?;
        let name = entry
            .name()
            .map_err(|e| {
                refused(format!(
                    "ZIP entry #{} has an unreadable name: {e}",
                    index + 1
                ))
            })?
            .into_owned();
        let shown = name.escape_debug().to_string();
        let entry_refused = |why: &str| refused(format!("ZIP entry '{shown}' {why}"));

        let path = entry_path(&name).map_err(|why| entry_refused(&why))?;
        let is_folder = name.ends_with(['/', '\\']);
        let mode = entry.unix_mode();
        check_type(mode, is_folder).map_err(entry_refused)?;
        if entry.encrypted() {
            return Err(entry_refused("is encrypted"));
        }
        let claim = Claim::of(&entry);
        let method = claim.method;
        if method != CompressionMethod::Stored && method != CompressionMethod::Deflated {
            return Err(entry_refused(&format!(
                "uses compression method {method}; only Stored and Deflated are supported"
            )));
        }
        let key = collision_key(&path);
        add_parents(&key, &mut folder_keys);
        if is_folder {
            folder_keys.insert(key);
        } else {
            if let Some(other) = file_keys.get(&key) {
                return Err(entry_refused(&format!(
                    "has the same path as '{}' on Windows",
                    other.escape_debug()
                )));
            }
            file_keys.insert(key, path.clone());
            // Only a claim: the real size is counted while writing. But a
            // claim already past the limit is refused before any writing.
            claimed_total = claimed_total.saturating_add(claim.size);
            if claimed_total > limits.max_total {
                return Err(over_limit(limits, &shown));
            }
        }
        plan.push(Planned {
            index,
            path,
            is_folder,
            executable: mode.is_some_and(|m| m & 0o111 != 0),
            claim,
        });
    }
    if let Some(path) = file_keys
        .iter()
        .find(|(key, _)| folder_keys.contains(*key))
        .map(|(_, path)| path)
    {
        return Err(refused(format!(
            "ZIP entry '{}' is a file but other entries need it to be a folder",
            path.escape_debug()
        )));
    }
    Ok(plan)
}

/// The permissions a file gets once written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Perms {
    /// Created with 0o666 or 0o777 under the umask, nothing changed after.
    Plain { executable: bool },
    /// A new distributed file: the folder's mode bits and group.
    #[cfg_attr(not(unix), allow(dead_code))]
    New { mode: u32, gid: u32 },
    /// A replaced file: exactly what the old one had.
    #[cfg_attr(not(unix), allow(dead_code))]
    Replace { mode: u32, uid: u32, gid: u32 },
}

/// Files and folders written so far for one placement, undone on drop
/// unless committed: temporary files are removed, folders made are removed
/// again (when empty).
struct Staging {
    root: PathBuf,
    rules: Rules,
    /// Relative folders known to exist as real folders (not links).
    known_dirs: BTreeSet<String>,
    /// Folders this placement made, parents first.
    made_dirs: Vec<PathBuf>,
    /// Temporary files and the final paths they are renamed to.
    staged: Vec<(PathBuf, PathBuf)>,
}

impl Staging {
    fn new(root: &Path, rules: Rules) -> Self {
        Staging {
            root: root.to_path_buf(),
            rules,
            known_dirs: BTreeSet::new(),
            made_dirs: Vec::new(),
            staged: Vec::new(),
        }
    }

    /// Makes sure the root folder exists, creating it and any missing
    /// parents. The root itself may be reached through a link: it is the
    /// admin's (or the agent's) choice, not the archive's.
    fn prepare_root(&mut self) -> Result<(), PlaceError> {
        let root = self.root.clone();
        match fs::metadata(&root) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(refused(format!(
                    "destination '{}' exists and is not a folder",
                    root.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(PlaceError::Io(e, format!("reading {}", root.display()))),
        }
        let missing: Vec<&Path> = root
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && fs::metadata(p).is_err())
            .collect();
        for dir in missing.into_iter().rev() {
            self.make_dir(dir)?;
        }
        Ok(())
    }

    /// The folder of `rel`'s parent (made if needed) and `rel`'s file name.
    fn ensure_parent<'r>(&mut self, rel: &'r str) -> Result<(PathBuf, &'r str), PlaceError> {
        match rel.rsplit_once('/') {
            Some((parent, name)) => Ok((self.ensure_dir(parent)?, name)),
            None => Ok((self.root.clone(), rel)),
        }
    }

    /// Makes sure every folder of `rel` (relative, '/'-separated) exists
    /// under the root as a real folder, and returns its path. A link or a
    /// file in the way is refused: following a link could lead out of the
    /// root.
    fn ensure_dir(&mut self, rel: &str) -> Result<PathBuf, PlaceError> {
        let mut path = self.root.clone();
        let mut so_far = String::new();
        for part in rel.split('/') {
            path.push(part);
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(part);
            if self.known_dirs.contains(&so_far) {
                continue;
            }
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(refused(format!(
                        "'{}' is a symbolic link; nothing is written through links",
                        path.display()
                    )));
                }
                Ok(_) => {
                    return Err(refused(format!(
                        "'{}' exists and is not a folder",
                        path.display()
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => self.make_dir(&path)?,
                Err(e) => return Err(PlaceError::Io(e, format!("reading {}", path.display()))),
            }
            self.known_dirs.insert(so_far.clone());
        }
        Ok(path)
    }

    /// Makes one folder whose parent exists, with the placement's rules.
    fn make_dir(&mut self, path: &Path) -> Result<(), PlaceError> {
        let made = match self.rules {
            Rules::Plain => fs::create_dir(path),
            Rules::Inherit => make_inheriting_dir(path),
        };
        made.map_err(io_context(format!("creating folder {}", path.display())))?;
        self.made_dirs.push(path.to_path_buf());
        Ok(())
    }

    /// Decides the permissions of the file to be placed at `dest` (in
    /// `dir`): from the file it replaces, or from `dir`.
    fn perms_for(
        &self,
        dir: &Path,
        dest: &Path,
        rel: &str,
        executable: bool,
    ) -> Result<Perms, PlaceError> {
        let existing = match fs::symlink_metadata(dest) {
            Ok(m) if m.file_type().is_file() => Some(m),
            Ok(m) => {
                let what = if m.file_type().is_symlink() {
                    "a symbolic link"
                } else if m.is_dir() {
                    "a folder"
                } else {
                    "not a regular file"
                };
                return Err(refused(format!(
                    "'{}' cannot be replaced: it is {what} at {}",
                    rel.escape_debug(),
                    dest.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(PlaceError::Io(e, format!("reading {}", dest.display()))),
        };
        if self.rules == Rules::Plain {
            return Ok(Perms::Plain { executable });
        }
        inherited_perms(dir, existing.as_ref(), executable)
            .map_err(io_context(format!("reading {}", dir.display())))
    }

    /// Creates the temporary file that becomes `dest`, in the same folder
    /// so that the rename is atomic, and registers it for cleanup.
    fn create_temp(
        &mut self,
        dir: &Path,
        name: &str,
        dest: &Path,
        perms: &Perms,
    ) -> Result<File, PlaceError> {
        let mut keep = name.len().min(TEMP_NAME_KEEP);
        while !name.is_char_boundary(keep) {
            keep -= 1;
        }
        let stem = &name[..keep];
        loop {
            let temp = dir.join(format!(".{stem}.courier-{}", random_suffix()));
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            set_create_mode(&mut options, perms);
            match options.open(&temp) {
                Ok(file) => {
                    self.staged.push((temp, dest.to_path_buf()));
                    return Ok(file);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(PlaceError::Io(
                        e,
                        format!("creating a temporary file in {}", dir.display()),
                    ));
                }
            }
        }
    }

    /// Renames every staged file into place and syncs the folders, so the
    /// renames survive a crash.
    fn commit(mut self) -> Result<(), PlaceError> {
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        let mut staged = std::mem::take(&mut self.staged).into_iter();
        while let Some((temp, dest)) = staged.next() {
            if let Err(e) = fs::rename(&temp, &dest) {
                // Those not renamed yet are removed on drop.
                self.staged.push((temp, dest.clone()));
                self.staged.extend(staged);
                return Err(PlaceError::Io(
                    e,
                    format!("renaming into {}", dest.display()),
                ));
            }
            if let Some(dir) = dest.parent() {
                dirs.insert(dir.to_path_buf());
            }
        }
        for made in std::mem::take(&mut self.made_dirs) {
            if let Some(parent) = made.parent() {
                dirs.insert(parent.to_path_buf());
            }
        }
        for dir in dirs {
            sync_dir(&dir);
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Best effort: this runs on a failure already being reported.
        for (temp, _) in self.staged.drain(..) {
            let _ = fs::remove_file(temp);
        }
        for dir in self.made_dirs.drain(..).rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Sets the permissions decided for a fully written file and syncs it, so
/// that what the rename makes visible is complete, on disk, and already
/// has its final owner and mode.
fn finish_file(file: &File, perms: &Perms) -> io::Result<()> {
    apply_perms(file, perms)?;
    file.sync_all()
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    // Unpredictable names keep others from guessing them; should the system
    // source fail, the pid and a counter are still unique, and create_new
    // never opens someone else's file.
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        return format!("{}-{n}", std::process::id());
    }
    hex::encode(bytes)
}

#[cfg(unix)]
fn make_inheriting_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt, chown};
    let parent = path.parent().unwrap_or(Path::new("."));
    let parent = fs::metadata(if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    })?;
    // Private until it has its final group and mode.
    fs::DirBuilder::new().mode(0o700).create(path)?;
    allow_not_permitted(chown(path, None, Some(parent.gid())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(parent.mode() & 0o7777))
}

#[cfg(not(unix))]
fn make_inheriting_dir(path: &Path) -> io::Result<()> {
    // NTFS inheritance gives the new folder its parent's permissions.
    fs::create_dir(path)
}

#[cfg(unix)]
fn inherited_perms(
    dir: &Path,
    existing: Option<&fs::Metadata>,
    executable: bool,
) -> io::Result<Perms> {
    use std::os::unix::fs::MetadataExt;
    if let Some(old) = existing {
        return Ok(Perms::Replace {
            mode: old.mode() & 0o7777,
            uid: old.uid(),
            gid: old.gid(),
        });
    }
    let folder = fs::metadata(dir)?;
    let bits = if executable { 0o777 } else { 0o666 };
    Ok(Perms::New {
        mode: folder.mode() & bits,
        gid: folder.gid(),
    })
}

#[cfg(not(unix))]
fn inherited_perms(
    _dir: &Path,
    _existing: Option<&fs::Metadata>,
    executable: bool,
) -> io::Result<Perms> {
    // NTFS inheritance gives a new file its folder's permissions; carrying
    // a replaced file's own ACL over would take ReplaceFileW.
    Ok(Perms::Plain { executable })
}

#[cfg(unix)]
fn set_create_mode(options: &mut OpenOptions, perms: &Perms) {
    use std::os::unix::fs::OpenOptionsExt;
    let mode = match perms {
        Perms::Plain { executable: true } => 0o777,
        Perms::Plain { executable: false } => 0o666,
        // Private until it has its final owner and mode.
        Perms::New { .. } | Perms::Replace { .. } => 0o600,
    };
    options.mode(mode);
}

#[cfg(not(unix))]
fn set_create_mode(_options: &mut OpenOptions, _perms: &Perms) {}

#[cfg(unix)]
fn apply_perms(file: &File, perms: &Perms) -> io::Result<()> {
    use std::os::unix::fs::{PermissionsExt, fchown};
    // The owner is set before the mode: changing the owner clears the
    // set-user-id and set-group-id bits.
    let mode = match *perms {
        Perms::Plain { .. } => return Ok(()),
        Perms::New { mode, gid } => {
            // Not root and not a member of the folder's group: the file
            // keeps our group, which is all an unprivileged agent can do.
            allow_not_permitted(fchown(file, None, Some(gid)))?;
            mode
        }
        Perms::Replace { mode, uid, gid } => {
            if let Err(e) = fchown(file, Some(uid), Some(gid)) {
                if e.kind() != io::ErrorKind::PermissionDenied {
                    return Err(e);
                }
                // Only root gives a file away: keep at least the group.
                allow_not_permitted(fchown(file, None, Some(gid)))?;
            }
            mode
        }
    };
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn apply_perms(_file: &File, _perms: &Perms) -> io::Result<()> {
    Ok(())
}

/// EPERM from a change of owner or group is expected when the agent does
/// not run as root; it is not a reason to fail the placement.
#[cfg(unix)]
fn allow_not_permitted(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) {
    // Best effort: the files are in place and synced; a folder that cannot
    // be synced only weakens durability across a power cut.
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}

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

/// An archive that cannot be read is refused, unless the disk failed.
fn zip_error(e: ZipError, what: &str, context: String) -> PlaceError {
    match e {
        ZipError::Io(e) => PlaceError::Io(e, context),
        other => refused(format!("{what}: {other}")),
    }
}

fn over_limit(limits: &Limits, at: &str) -> PlaceError {
    refused(format!(
        "ZIP entries decompress to more than the limit of {} bytes, crossed at '{at}'",
        limits.max_total
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
    use zip::ZipWriter;
    use zip::write::SimpleFileOptions;

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
        let stats = unzip_into(&case.zip, &case.dest, &small()).expect("unzip");
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
            let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small()));
            assert!(message.contains(why), "{name}: {message}");
            assert!(message.starts_with("ZIP entry '"), "{name}: {message}");
            assert_eq!(case.tree(), before, "{name}");
            let message = case.refusal(unzip_into(&case.zip, &case.dest, &small()));
            assert!(message.contains(why), "{name}: {message}");
            assert_eq!(case.tree(), before, "{name}");
        }
    }

    #[test]
    fn symlink_entry_is_refused() {
        let case = Case::new(&[Item::Link("link", "/etc/passwd")]);
        let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small()));
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
        let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small()));
        assert!(message.contains("is a symbolic link"), "{message}");
        assert_eq!(fs::read_dir(&outside).expect("outside").count(), 0);

        // A link where the file goes is not written through either.
        let case = Case::new(&[Item::File("x.txt", b"x", 0o644)]);
        fs::create_dir_all(&case.dest).expect("dest");
        let target = case.tmp.path().join("target");
        fs::write(&target, "keep").expect("target");
        std::os::unix::fs::symlink(&target, case.dest.join("x.txt")).expect("link");
        let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small()));
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
        let message = case.refusal(unzip_into(&case.zip, &case.dest, &small()));
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
        let message = case.refusal(unzip_into(&case.zip, &case.dest, &small()));
        assert!(message.contains("compression method"), "{message}");
    }

    #[test]
    fn bomb_is_refused_and_partial_files_removed() {
        // Honest headers past the limit: refused before anything is written.
        let big = vec![0u8; 2 << 20];
        let case = Case::new(&[Item::File("big.bin", &big, 0o644)]);
        let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small()));
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
        let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small()));
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
        let message = case.refusal(unzip_into(&case.zip, &case.dest, &small()));
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
        let message = case.refusal(distribute_zip(&case.zip, &case.dest, &small()));
        assert_eq!(message, "ZIP entry 'sub/two.txt' is corrupt (CRC mismatch)");
        assert_eq!(case.tree(), before);
        assert_eq!(
            fs::read_to_string(case.dest.join("one.txt")).expect("one"),
            "old"
        );
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
        distribute_zip(&case.zip, &case.dest, &small()).expect("distribute");
        // The entry's own mode is not used, only whether it is executable.
        assert_eq!(mode_of(&case.dest.join("data.txt")), 0o750);
        assert_eq!(mode_of(&case.dest.join("run.sh")), 0o750);
        assert_eq!(mode_of(&case.dest.join("sub")), 0o750);
        assert_eq!(mode_of(&case.dest.join("sub/more.txt")), 0o640);

        let src = case.tmp.path().join("notes");
        fs::write(&src, "notes").expect("src");
        let placed = distribute_file(&src, &case.dest, "notes.txt", false).expect("file");
        assert_eq!(placed, case.dest.join("notes.txt"));
        assert_eq!(mode_of(&placed), 0o640);
        let placed = distribute_file(&src, &case.dest, "tool", true).expect("file");
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
        distribute_zip(&case.zip, &case.dest, &small()).expect("distribute");
        assert_eq!(fs::read_to_string(&old).expect("new"), "new");
        assert_eq!(mode_of(&old), 0o600);
        if is_root() {
            let meta = fs::metadata(&old).expect("meta");
            assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
        }

        let src = case.tmp.path().join("again");
        fs::write(&src, "again").expect("src");
        distribute_file(&src, &case.dest, "conf.ini", true).expect("file");
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
        distribute_zip(&case.zip, &case.dest, &small()).expect("distribute");
        let gid = |p: &Path| fs::metadata(p).expect("meta").gid();
        assert_eq!(gid(&case.dest.join("sub")), 12345);
        assert_eq!(gid(&case.dest.join("sub/x.txt")), 12345);
        let src = case.tmp.path().join("src");
        fs::write(&src, "y").expect("src");
        let placed = distribute_file(&src, &case.dest, "y.txt", false).expect("file");
        assert_eq!(gid(&placed), 12345);
    }

    #[test]
    fn missing_folder_is_made_like_its_parent() {
        let case = Case::new(&[Item::File("x.txt", b"x", 0o644)]);
        let parent = case.tmp.path().join("parent");
        fs::create_dir(&parent).expect("parent");
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o2770)).expect("chmod");
        let folder = parent.join("a/b");
        distribute_zip(&case.zip, &folder, &small()).expect("distribute");
        assert_eq!(mode_of(&parent.join("a")), 0o2770);
        assert_eq!(mode_of(&folder), 0o2770);
        assert_eq!(mode_of(&folder.join("x.txt")), 0o660);

        // A refusal removes the folders it made.
        let bad = Case::new(&[Item::Link("l", "/")]);
        let folder = parent.join("c/d");
        bad.refusal(distribute_zip(&bad.zip, &folder, &small()));
        assert!(!parent.join("c").exists());
    }

    #[test]
    fn distribute_file_refuses_unsafe_names() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        fs::write(&src, "x").expect("src");
        let folder = tmp.path().join("dest");
        for name in ["../x", "/etc/x", "C:\\x", ""] {
            match distribute_file(&src, &folder, name, false) {
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
        let message = case.refusal(unzip_into(&case.zip, &case.dest, &small()));
        assert!(message.contains("same path as 'dir/a.txt'"), "{message}");
        let case = Case::new(&[Item::File("a", b"1", 0o644), Item::File("a/b", b"2", 0o644)]);
        let message = case.refusal(unzip_into(&case.zip, &case.dest, &small()));
        assert!(message.contains("'a' is a file but"), "{message}");
    }

    #[test]
    fn long_names_get_a_short_enough_temp_name() {
        let name = "é".repeat(120); // 240 bytes, close to the 255 limit
        let case = Case::new(&[Item::File(&name, b"x", 0o644)]);
        unzip_into(&case.zip, &case.dest, &small()).expect("unzip");
        assert_eq!(fs::read(case.dest.join(&name)).expect("read"), b"x");
    }
}
