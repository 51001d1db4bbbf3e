//! Folders held open while files are placed in them, so that what was
//! checked is what is written to.
//!
//! On Unix a [`Dir`] is a descriptor: every folder below the destination
//! is opened from its parent's descriptor with `O_NOFOLLOW | O_DIRECTORY`,
//! and every file or folder is created, renamed and removed relative to the
//! descriptor of its folder (`openat`, `mkdirat`, `renameat`, `unlinkat`).
//! A folder swapped for a link once it was checked is never followed: the
//! next open of it is refused, and what is open already is the real folder.
//!
//! On Windows a `Dir` is a path, each part of which was checked not to be
//! a link or another reparse point (a junction) when it was opened; the
//! files are then created and renamed by path. That refuses links and
//! junctions already there, but not one swapped in between the check and
//! the use: on Windows the destination folder's access list is what keeps
//! others from making such swaps.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// What a name in a folder is, links not followed.
pub(super) enum Kind {
    Dir,
    /// A regular file, with its mode, owner and group (Unix).
    File(Meta),
    Link,
    Other,
}

/// Mode bits, owner and group of a file or folder (zeros on Windows).
#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    #[cfg_attr(not(unix), allow(dead_code))]
    pub mode: u32,
    #[cfg_attr(not(unix), allow(dead_code))]
    pub uid: u32,
    #[cfg_attr(not(unix), allow(dead_code))]
    pub gid: u32,
}

/// An open folder.
pub(super) struct Dir {
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Where it is, for messages (and for path-based calls on Windows).
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this folder, for messages.
    pub(super) fn child(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

#[cfg(unix)]
mod imp {
    use std::os::fd::AsFd;

    use nix::errno::Errno;
    use nix::fcntl::{AtFlags, OFlag, open, openat, renameat};
    use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
    use nix::unistd::{Gid, UnlinkatFlags, fchown, fsync, unlinkat};

    use super::*;

    fn meta(st: &FileStat) -> Meta {
        Meta {
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
        }
    }

    impl Dir {
        /// Opens `path` itself, following links: the destination is the
        /// admin's (or the agent's) choice, not the archive's.
        pub(in crate::agent::place) fn open_root(path: &Path) -> io::Result<Dir> {
            let fd = open(
                path,
                OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            Ok(Dir {
                fd,
                path: path.to_path_buf(),
            })
        }

        /// Another handle on the same folder.
        pub(in crate::agent::place) fn try_clone(&self) -> io::Result<Dir> {
            Ok(Dir {
                fd: self.fd.try_clone()?,
                path: self.path.clone(),
            })
        }

        /// Opens the folder `name` in this one; a link is not followed
        /// (an error, which [`Dir::kind`] tells apart).
        pub(in crate::agent::place) fn open_dir(&self, name: &str) -> io::Result<Dir> {
            let fd = openat(
                self.fd.as_fd(),
                name,
                OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            Ok(Dir {
                fd,
                path: self.path.join(name),
            })
        }

        /// What `name` is, or None if there is nothing by that name.
        pub(in crate::agent::place) fn kind(&self, name: &str) -> io::Result<Option<Kind>> {
            let st = match fstatat(self.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::ENOENT) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            Ok(Some(match kind {
                SFlag::S_IFDIR => Kind::Dir,
                SFlag::S_IFREG => Kind::File(meta(&st)),
                SFlag::S_IFLNK => Kind::Link,
                _ => Kind::Other,
            }))
        }

        /// This folder's own mode, owner and group.
        pub(in crate::agent::place) fn meta(&self) -> io::Result<Meta> {
            Ok(meta(&fstat(self.fd.as_fd())?))
        }

        /// Makes the folder `name` with `mode` (under the umask).
        pub(in crate::agent::place) fn make_dir(&self, name: &str, mode: u32) -> io::Result<()> {
            Ok(mkdirat(
                self.fd.as_fd(),
                name,
                Mode::from_bits_truncate(mode),
            )?)
        }

        /// Gives this folder `gid` (when allowed) and `mode`.
        pub(in crate::agent::place) fn set_group_and_mode(
            &self,
            gid: u32,
            mode: u32,
        ) -> io::Result<()> {
            match fchown(self.fd.as_fd(), None, Some(Gid::from_raw(gid))) {
                Ok(()) | Err(Errno::EPERM) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(fchmod(self.fd.as_fd(), Mode::from_bits_truncate(mode))?)
        }

        /// Creates the file `name`, which must not exist (a link by that
        /// name is not followed), for writing.
        pub(in crate::agent::place) fn create_new(
            &self,
            name: &str,
            mode: u32,
        ) -> io::Result<File> {
            let fd = openat(
                self.fd.as_fd(),
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_WRONLY
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(mode),
            )?;
            Ok(File::from(fd))
        }

        /// Renames `from` to `to`, both in this folder.
        pub(in crate::agent::place) fn rename(&self, from: &str, to: &str) -> io::Result<()> {
            Ok(renameat(self.fd.as_fd(), from, self.fd.as_fd(), to)?)
        }

        pub(in crate::agent::place) fn remove_file(&self, name: &str) -> io::Result<()> {
            Ok(unlinkat(self.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir)?)
        }

        pub(in crate::agent::place) fn remove_dir(&self, name: &str) -> io::Result<()> {
            Ok(unlinkat(self.fd.as_fd(), name, UnlinkatFlags::RemoveDir)?)
        }

        /// Makes the names in this folder durable.
        pub(in crate::agent::place) fn sync(&self) -> io::Result<()> {
            Ok(fsync(self.fd.as_fd())?)
        }
    }
}

#[cfg(windows)]
mod imp {
    use std::fs;
    use std::os::windows::fs::MetadataExt;

    use super::*;

    /// FILE_ATTRIBUTE_REPARSE_POINT: links, junctions, mount points.
    const REPARSE_POINT: u32 = 0x400;

    const NO_META: Meta = Meta {
        mode: 0,
        uid: 0,
        gid: 0,
    };

    impl Dir {
        pub(in crate::agent::place) fn open_root(path: &Path) -> io::Result<Dir> {
            if !fs::metadata(path)?.is_dir() {
                return Err(io::Error::from(io::ErrorKind::NotADirectory));
            }
            Ok(Dir {
                path: path.to_path_buf(),
            })
        }

        pub(in crate::agent::place) fn try_clone(&self) -> io::Result<Dir> {
            Ok(Dir {
                path: self.path.clone(),
            })
        }

        /// The folder `name` in this one, refused if it is a link or
        /// another reparse point.
        pub(in crate::agent::place) fn open_dir(&self, name: &str) -> io::Result<Dir> {
            match self.kind(name)? {
                Some(Kind::Dir) => Ok(Dir {
                    path: self.path.join(name),
                }),
                None => Err(io::Error::from(io::ErrorKind::NotFound)),
                Some(_) => Err(io::Error::from(io::ErrorKind::NotADirectory)),
            }
        }

        pub(in crate::agent::place) fn kind(&self, name: &str) -> io::Result<Option<Kind>> {
            let m = match fs::symlink_metadata(self.path.join(name)) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            Ok(Some(
                if m.file_type().is_symlink() || m.file_attributes() & REPARSE_POINT != 0 {
                    Kind::Link
                } else if m.is_dir() {
                    Kind::Dir
                } else if m.is_file() {
                    Kind::File(NO_META)
                } else {
                    Kind::Other
                },
            ))
        }

        pub(in crate::agent::place) fn meta(&self) -> io::Result<Meta> {
            Ok(NO_META)
        }

        /// NTFS inheritance gives the new folder its parent's permissions.
        pub(in crate::agent::place) fn make_dir(&self, name: &str, _mode: u32) -> io::Result<()> {
            fs::create_dir(self.path.join(name))
        }

        pub(in crate::agent::place) fn set_group_and_mode(
            &self,
            _gid: u32,
            _mode: u32,
        ) -> io::Result<()> {
            Ok(())
        }

        pub(in crate::agent::place) fn create_new(
            &self,
            name: &str,
            _mode: u32,
        ) -> io::Result<File> {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.path.join(name))
        }

        pub(in crate::agent::place) fn rename(&self, from: &str, to: &str) -> io::Result<()> {
            fs::rename(self.path.join(from), self.path.join(to))
        }

        pub(in crate::agent::place) fn remove_file(&self, name: &str) -> io::Result<()> {
            fs::remove_file(self.path.join(name))
        }

        pub(in crate::agent::place) fn remove_dir(&self, name: &str) -> io::Result<()> {
            fs::remove_dir(self.path.join(name))
        }

        /// A folder cannot be opened as a file to be synced; NTFS journals
        /// its names.
        pub(in crate::agent::place) fn sync(&self) -> io::Result<()> {
            Ok(())
        }
    }
}
