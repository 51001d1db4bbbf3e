//! Staged writing: files are written under temporary names beside their
//! final paths and renamed only once all of them are complete, and a
//! placement that fails leaves nothing behind.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::dirs::{Dir, Kind};
use super::perms::{Perms, apply_perms, create_mode, inherited_perms};
use super::{PlaceError, Rules, io_context, refused};

/// Longest part of the final name kept in a temporary name, so that the
/// prefix and suffix added never push it past the usual 255-byte limit.
const TEMP_NAME_KEEP: usize = 200;

/// Files and folders written so far for one placement, undone on drop
/// unless committed: temporary files are removed, folders made are removed
/// again (when empty).
///
/// Folders inside the root are reached from the root's handle, one part at
/// a time, never through a link (`dirs.rs`), each time they are used: a
/// folder swapped for a link after it was made or checked is refused at
/// its next use, and nothing is written, renamed or removed through it.
pub(super) struct Staging {
    root_path: PathBuf,
    root: Option<Dir>,
    rules: Rules,
    /// Folders above and including the root that this placement made, by
    /// path (the root's path is the admin's), parents first.
    made_above: Vec<PathBuf>,
    /// Folders inside the root this placement made, relative, parents
    /// first.
    made: Vec<String>,
    /// Temporary files: their folder (relative), temporary and final name.
    staged: Vec<(String, String, String)>,
}

impl Staging {
    pub(super) fn new(root: &Path, rules: Rules) -> Self {
        Staging {
            root_path: root.to_path_buf(),
            root: None,
            rules,
            made_above: Vec::new(),
            made: Vec::new(),
            staged: Vec::new(),
        }
    }

    /// Makes sure the root folder exists, creating it and any missing
    /// parents, and opens it. The root itself may be reached through a
    /// link: it is the admin's (or the agent's) choice, not the archive's.
    pub(super) fn prepare_root(&mut self) -> Result<(), PlaceError> {
        let root = self.root_path.clone();
        match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(refused(format!(
                    "destination '{}' exists and is not a folder",
                    root.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let missing: Vec<&Path> = root
                    .ancestors()
                    .take_while(|p| !p.as_os_str().is_empty() && std::fs::metadata(p).is_err())
                    .collect();
                for dir in missing.into_iter().rev() {
                    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
                        return Err(refused(format!("cannot make '{}'", dir.display())));
                    };
                    let parent = if parent.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        parent
                    };
                    let parent = Dir::open_root(parent)
                        .map_err(io_context(format!("opening {}", parent.display())))?;
                    self.make_dir_in(&parent, &name.to_string_lossy())?;
                    self.made_above.push(dir.to_path_buf());
                }
            }
            Err(e) => return Err(PlaceError::Io(e, format!("reading {}", root.display()))),
        }
        let dir =
            Dir::open_root(&root).map_err(io_context(format!("opening {}", root.display())))?;
        self.root = Some(dir);
        Ok(())
    }

    fn root(&self) -> Result<Dir, PlaceError> {
        let root = self.root.as_ref().expect("prepare_root comes first");
        root.try_clone()
            .map_err(io_context(format!("opening {}", root.path().display())))
    }

    /// The folder of `rel`'s parent (made if needed) and `rel`'s file name.
    pub(super) fn ensure_parent<'r>(&mut self, rel: &'r str) -> Result<(Dir, &'r str), PlaceError> {
        match rel.rsplit_once('/') {
            Some((parent, name)) => Ok((self.ensure_dir(parent)?, name)),
            None => Ok((self.root()?, rel)),
        }
    }

    /// Opens every folder of `rel` (relative, '/'-separated) under the
    /// root, making those missing, and returns the last. A link or a file
    /// in the way is refused: following a link could lead out of the root.
    pub(super) fn ensure_dir(&mut self, rel: &str) -> Result<Dir, PlaceError> {
        self.walk(rel, true)
    }

    /// Opens the folder `rel` under the root, one part at a time and never
    /// through a link; with `make`, missing parts are made.
    fn walk(&mut self, rel: &str, make: bool) -> Result<Dir, PlaceError> {
        let mut dir = self.root()?;
        let mut so_far = String::new();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(part);
            let opened = match dir.open_dir(part) {
                Err(e) if make && e.kind() == io::ErrorKind::NotFound => {
                    self.make_dir_in(&dir, part)?;
                    self.made.push(so_far.clone());
                    dir.open_dir(part)
                }
                other => other,
            };
            dir = match opened {
                Ok(next) => next,
                Err(e) => return Err(not_a_folder(&dir, part, e)),
            };
        }
        Ok(dir)
    }

    /// Makes the folder `name` in `parent` with the placement's rules.
    fn make_dir_in(&self, parent: &Dir, name: &str) -> Result<(), PlaceError> {
        let path = parent.child(name);
        let context = || format!("creating folder {}", path.display());
        match self.rules {
            Rules::Plain => parent.make_dir(name, 0o777).map_err(io_context(context())),
            Rules::Inherit => {
                // Private until it has its parent's group and mode.
                let like = parent.meta().map_err(io_context(context()))?;
                parent
                    .make_dir(name, 0o700)
                    .map_err(io_context(context()))?;
                let made = parent.open_dir(name).map_err(io_context(context()))?;
                made.set_group_and_mode(like.gid, like.mode)
                    .map_err(io_context(context()))
            }
        }
    }

    /// Decides the permissions of the file to be placed as `name` in `dir`:
    /// from the file it replaces, or from `dir`.
    pub(super) fn perms_for(
        &self,
        dir: &Dir,
        name: &str,
        rel: &str,
        executable: bool,
    ) -> Result<Perms, PlaceError> {
        let dest = dir.child(name);
        let existing = match dir.kind(name) {
            Ok(None) => None,
            Ok(Some(Kind::File(meta))) => Some(meta),
            Ok(Some(other)) => {
                let what = match other {
                    Kind::Link => "a symbolic link",
                    Kind::Dir => "a folder",
                    _ => "not a regular file",
                };
                return Err(refused(format!(
                    "'{}' cannot be replaced: it is {what} at {}",
                    rel.escape_debug(),
                    dest.display()
                )));
            }
            Err(e) => return Err(PlaceError::Io(e, format!("reading {}", dest.display()))),
        };
        if self.rules == Rules::Plain {
            return Ok(Perms::Plain { executable });
        }
        inherited_perms(dir, &dest, existing, executable)
            .map_err(io_context(format!("reading {}", dir.path().display())))
    }

    /// Creates the temporary file that becomes `name` in `dir` (relative
    /// `rel_dir`), in the same folder so that the rename is atomic, and
    /// registers it for cleanup. Returns it and its path.
    pub(super) fn create_temp(
        &mut self,
        dir: &Dir,
        rel_dir: &str,
        name: &str,
        perms: &Perms,
    ) -> Result<(File, PathBuf), PlaceError> {
        let mut keep = name.len().min(TEMP_NAME_KEEP);
        while !name.is_char_boundary(keep) {
            keep -= 1;
        }
        let stem = &name[..keep];
        loop {
            let temp = format!(".{stem}.courier-{}", random_suffix());
            match dir.create_new(&temp, create_mode(perms)) {
                Ok(file) => {
                    let path = dir.child(&temp);
                    self.staged
                        .push((rel_dir.to_string(), temp, name.to_string()));
                    return Ok((file, path));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(PlaceError::Io(
                        e,
                        format!("creating a temporary file in {}", dir.path().display()),
                    ));
                }
            }
        }
    }

    /// Renames every staged file into place, each in its folder reached
    /// again from the root, and syncs the folders, so the renames survive
    /// a crash.
    pub(super) fn commit(mut self) -> Result<(), PlaceError> {
        let mut dirs: BTreeSet<String> = BTreeSet::new();
        let staged = std::mem::take(&mut self.staged);
        let mut open: Option<(String, Dir)> = None;
        for (i, (rel_dir, temp, name)) in staged.iter().enumerate() {
            if open.as_ref().is_none_or(|(r, _)| r != rel_dir) {
                match self.walk(rel_dir, false) {
                    Ok(dir) => open = Some((rel_dir.clone(), dir)),
                    Err(e) => {
                        // Those not renamed yet are removed on drop.
                        self.staged.extend_from_slice(&staged[i..]);
                        return Err(e);
                    }
                }
            }
            let Some((_, dir)) = &open else { continue };
            if let Err(e) = dir.rename(temp, name) {
                self.staged.extend_from_slice(&staged[i..]);
                return Err(PlaceError::Io(
                    e,
                    format!("renaming into {}", dir.child(name).display()),
                ));
            }
            dirs.insert(rel_dir.clone());
        }
        for made in std::mem::take(&mut self.made) {
            dirs.insert(made.rsplit_once('/').map_or("", |(p, _)| p).to_string());
        }
        for rel in dirs {
            // Best effort: the files are in place and synced; a folder that
            // cannot be synced only weakens durability across a power cut.
            if let Ok(dir) = self.walk(&rel, false) {
                let _ = dir.sync();
            }
        }
        for made in std::mem::take(&mut self.made_above) {
            if let Some(parent) = made.parent().and_then(|p| Dir::open_root(p).ok()) {
                let _ = parent.sync();
            }
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Best effort: this runs on a failure already being reported. A
        // folder that became a link is not entered: what was staged in it
        // stays where the real folder went.
        if self.root.is_some() {
            for (rel_dir, temp, _) in std::mem::take(&mut self.staged) {
                if let Ok(dir) = self.walk(&rel_dir, false) {
                    let _ = dir.remove_file(&temp);
                }
            }
            for rel in std::mem::take(&mut self.made).into_iter().rev() {
                let (parent, name) = rel.rsplit_once('/').unwrap_or(("", &rel));
                if let Ok(dir) = self.walk(parent, false) {
                    let _ = dir.remove_dir(name);
                }
            }
        }
        for dir in self.made_above.drain(..).rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Why the folder `name` in `dir` could not be opened: a link or a file
/// in the way is refused, anything else is the disk's failure.
fn not_a_folder(dir: &Dir, name: &str, e: io::Error) -> PlaceError {
    let path = dir.child(name);
    match dir.kind(name) {
        Ok(Some(Kind::Link)) => refused(format!(
            "'{}' is a symbolic link; nothing is written through links",
            path.display()
        )),
        Ok(Some(Kind::File(_) | Kind::Other)) => {
            refused(format!("'{}' exists and is not a folder", path.display()))
        }
        _ => PlaceError::Io(e, format!("opening {}", path.display())),
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
