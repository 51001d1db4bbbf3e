//! Staged writing: files are written under temporary names beside their
//! final paths and renamed only once all of them are complete, and a
//! placement that fails leaves nothing behind.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::perms::{Perms, apply_perms, inherited_perms, make_inheriting_dir, set_create_mode};
use super::{PlaceError, Rules, io_context, refused};

/// Longest part of the final name kept in a temporary name, so that the
/// prefix and suffix added never push it past the usual 255-byte limit.
const TEMP_NAME_KEEP: usize = 200;

/// Files and folders written so far for one placement, undone on drop
/// unless committed: temporary files are removed, folders made are removed
/// again (when empty).
pub(super) struct Staging {
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
    pub(super) fn new(root: &Path, rules: Rules) -> Self {
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
    pub(super) fn prepare_root(&mut self) -> Result<(), PlaceError> {
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
    pub(super) fn ensure_parent<'r>(
        &mut self,
        rel: &'r str,
    ) -> Result<(PathBuf, &'r str), PlaceError> {
        match rel.rsplit_once('/') {
            Some((parent, name)) => Ok((self.ensure_dir(parent)?, name)),
            None => Ok((self.root.clone(), rel)),
        }
    }

    /// Makes sure every folder of `rel` (relative, '/'-separated) exists
    /// under the root as a real folder, and returns its path. A link or a
    /// file in the way is refused: following a link could lead out of the
    /// root.
    pub(super) fn ensure_dir(&mut self, rel: &str) -> Result<PathBuf, PlaceError> {
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
    pub(super) fn perms_for(
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
        inherited_perms(dir, dest, existing.as_ref(), executable)
            .map_err(io_context(format!("reading {}", dir.display())))
    }

    /// Creates the temporary file that becomes `dest`, in the same folder
    /// so that the rename is atomic, and registers it for cleanup.
    pub(super) fn create_temp(
        &mut self,
        dir: &Path,
        name: &str,
        dest: &Path,
        perms: &Perms,
    ) -> Result<(File, PathBuf), PlaceError> {
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
                    self.staged.push((temp.clone(), dest.to_path_buf()));
                    return Ok((file, temp));
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
    pub(super) fn commit(mut self) -> Result<(), PlaceError> {
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

/// Sets the permissions decided for a fully written file (at `temp`) and
/// syncs it, so that what the rename makes visible is complete, on disk,
/// and already has its final owner and mode.
pub(super) fn finish_file(file: &File, temp: &Path, perms: &Perms) -> io::Result<()> {
    apply_perms(file, temp, perms)?;
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
fn sync_dir(dir: &Path) {
    // Best effort: the files are in place and synced; a folder that cannot
    // be synced only weakens durability across a power cut.
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}
