//! Permissions of placed files and folders. On Unix a new file or folder
//! takes its folder's group and mode (a file without execute bits unless
//! executable), a replaced file keeps its own mode, owner and group. On
//! Windows a new file or folder is left to NTFS inheritance (it is created
//! in its folder, so it takes the folder's inheritable ACEs, with no DACL
//! of its own), and a replaced file keeps the old file's owner, group and
//! DACL, copied onto the new one before the rename puts it in place.

use std::fs::File;
use std::io;
use std::path::Path;

use super::dirs::{Dir, Meta};

/// The permissions a file gets once written.
#[derive(Debug, Clone)]
pub(super) enum Perms {
    /// Created with 0o666 or 0o777 under the umask, nothing changed after.
    Plain {
        #[cfg_attr(not(unix), allow(dead_code))]
        executable: bool,
    },
    /// A new distributed file: the folder's mode bits and group.
    #[cfg_attr(not(unix), allow(dead_code))]
    New { mode: u32, gid: u32 },
    /// A replaced file: exactly what the old one had.
    #[cfg_attr(not(unix), allow(dead_code))]
    Replace { mode: u32, uid: u32, gid: u32 },
    /// A replaced file on Windows: the old file's security descriptor.
    #[cfg(windows)]
    Keep(crate::win::security::FileSecurity),
}

#[cfg(unix)]
pub(super) fn inherited_perms(
    dir: &Dir,
    _dest: &Path,
    existing: Option<Meta>,
    executable: bool,
) -> io::Result<Perms> {
    if let Some(old) = existing {
        return Ok(Perms::Replace {
            mode: old.mode,
            uid: old.uid,
            gid: old.gid,
        });
    }
    let folder = dir.meta()?;
    let bits = if executable { 0o777 } else { 0o666 };
    Ok(Perms::New {
        mode: folder.mode & bits,
        gid: folder.gid,
    })
}

/// `dest` is the file being replaced, when `existing` says there is one.
#[cfg(windows)]
pub(super) fn inherited_perms(
    _dir: &Dir,
    dest: &Path,
    existing: Option<Meta>,
    executable: bool,
) -> io::Result<Perms> {
    match existing {
        Some(_) => Ok(Perms::Keep(crate::win::security::FileSecurity::of(dest)?)),
        None => Ok(Perms::Plain { executable }),
    }
}

/// The mode a new file is created with: private until it has its final
/// owner and mode, unless it keeps the umask's.
pub(super) fn create_mode(perms: &Perms) -> u32 {
    match perms {
        Perms::Plain { executable: true } => 0o777,
        Perms::Plain { executable: false } => 0o666,
        _ => 0o600,
    }
}

#[cfg(unix)]
pub(super) fn apply_perms(file: &File, _path: &Path, perms: &Perms) -> io::Result<()> {
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
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// `path` is where `file` was created.
#[cfg(windows)]
pub(super) fn apply_perms(_file: &File, path: &Path, perms: &Perms) -> io::Result<()> {
    match perms {
        Perms::Keep(security) => security.apply_to(path),
        _ => Ok(()),
    }
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
