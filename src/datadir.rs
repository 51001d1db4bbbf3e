//! Where courier keeps its state, and the layout inside it.
//!
//! Chosen by `--data`, then `COURIER_DATA`, then `$XDG_DATA_HOME/courier`,
//! then `~/.local/share/courier` (on Windows `%ProgramData%\courier`).
//! Created on first use, readable by its owner only: it holds the database,
//! the registered content and (later) keys.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Resolves the data dir from an explicit flag (which clap has already
    /// filled from `COURIER_DATA`) or the platform's default.
    pub fn resolve(flag: Option<PathBuf>) -> Result<PathBuf> {
        if let Some(p) = flag {
            if p.as_os_str().is_empty() {
                bail!("--data: empty path");
            }
            return Ok(p);
        }
        default_root()
    }

    /// The agent's data dir when `--data` is not given: beside the
    /// server's default on Unix, inside it on Windows.
    pub fn default_agent_root() -> Result<PathBuf> {
        let server = default_root()?;
        if cfg!(windows) {
            return Ok(server.join("agent"));
        }
        server
            .parent()
            .map(|p| p.join("courier-agent"))
            .ok_or_else(|| anyhow::anyhow!("no data dir: give --data DIR"))
    }

    /// Opens the data dir, creating it (mode 0700) if it does not exist.
    pub fn open(root: PathBuf) -> Result<DataDir> {
        if !root.exists() {
            create_private_dir(&root)
                .with_context(|| format!("data dir {}: cannot create", root.display()))?;
        } else if !root.is_dir() {
            bail!("data dir {}: not a directory", root.display());
        } else {
            tighten(&root)?;
        }
        let dir = DataDir { root };
        create_private_dir(&dir.content_dir())?;
        create_private_dir(&dir.scratch_dir())?;
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn db_path(&self) -> PathBuf {
        self.root.join("courier.db")
    }

    /// Registered content, addressed by BLAKE3 hash.
    pub fn content_dir(&self) -> PathBuf {
        self.root.join("content")
    }

    /// The server's CA, certificate and keys.
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// Where a running `courier serve` answers the admin API: a socket in
    /// the data dir on Unix (mode 0600).
    #[cfg(unix)]
    pub fn admin_endpoint(&self) -> PathBuf {
        self.root.join("admin.sock")
    }

    /// Where a running `courier serve` answers the admin API: on Windows a
    /// named pipe. Pipe names are machine-wide, not files in the data dir,
    /// so the name is derived from the data dir's full path (case folded,
    /// as NTFS compares names): each data dir has its own server.
    #[cfg(windows)]
    pub fn admin_endpoint(&self) -> PathBuf {
        let full = fs::canonicalize(&self.root)
            .or_else(|_| std::path::absolute(&self.root))
            .unwrap_or_else(|_| self.root.clone());
        let key = full.to_string_lossy().to_lowercase();
        let hash = blake3::hash(key.as_bytes()).to_hex();
        PathBuf::from(format!(r"\\.\pipe\courier-{}", &hash[..16]))
    }

    pub fn log_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Work space for inspecting packages; emptied of stale files at open.
    pub fn scratch_dir(&self) -> PathBuf {
        self.root.join("scratch")
    }
}

#[cfg(not(windows))]
fn default_root() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("courier"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/courier")),
        None => bail!("no data dir: give --data DIR or set COURIER_DATA"),
    }
}

/// Machine-wide state on Windows lives under `%ProgramData%`; `HOME` is
/// usually unset there (and under Wine it is the Linux user's).
#[cfg(windows)]
fn default_root() -> Result<PathBuf> {
    match std::env::var_os("ProgramData").filter(|v| !v.is_empty()) {
        Some(p) => Ok(PathBuf::from(p).join("courier")),
        None => bail!("no data dir: %ProgramData% is not set; give --data DIR or set COURIER_DATA"),
    }
}

/// Creates `path` and any missing parents, each new one private: mode
/// 0700 on Unix; on Windows an access list of its own that only SYSTEM,
/// Administrators and this process's account are on.
/// An existing data dir that others may read or enter is made its
/// owner's alone (0700), as a new one is created: it holds the CA key
/// and the database.
fn tighten(root: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(root)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(root, fs::Permissions::from_mode(mode & 0o700 | 0o700))
                .with_context(|| format!("data dir {}: cannot make it private", root.display()))?;
            tracing::warn!(
                "data dir {} was open to others (mode {:o}); now 0700",
                root.display(),
                mode & 0o777
            );
        }
    }
    #[cfg(not(unix))]
    let _ = root;
    Ok(())
}

pub fn create_private_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .with_context(|| format!("{}: cannot create directory", path.display()))
    }
    #[cfg(windows)]
    {
        let missing: Vec<&Path> = path
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
            .collect();
        for dir in missing.into_iter().rev() {
            match fs::create_dir(dir) {
                Ok(()) => crate::win::security::restrict_to_admins(dir).with_context(|| {
                    format!("{}: cannot restrict access to the directory", dir.display())
                })?,
                // Made meanwhile by another process: its access list stays.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("{}: cannot create directory", dir.display()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_dir() {
        let t = tempfile::tempdir().unwrap();
        let d = DataDir::open(t.path().join("a/b")).unwrap();
        assert!(d.content_dir().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(d.root()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_data_dir_open_to_others_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("data");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        DataDir::open(root.clone()).unwrap();
        let mode = fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[cfg(windows)]
    #[test]
    fn admin_pipe_is_named_after_the_data_dir() {
        let t = tempfile::tempdir().unwrap();
        let a = DataDir::open(t.path().join("a")).unwrap();
        let b = DataDir::open(t.path().join("b")).unwrap();
        let shouted = t.path().join("a").to_string_lossy().to_uppercase();
        let a_again = DataDir::open(PathBuf::from(shouted)).unwrap();
        let name = a.admin_endpoint();
        let text = name.to_string_lossy();
        assert!(text.starts_with(r"\\.\pipe\courier-"), "{text}");
        assert_ne!(name, b.admin_endpoint());
        assert_eq!(name, a_again.admin_endpoint());
    }

    #[test]
    fn refuses_a_file_as_data_dir() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        fs::write(&f, b"x").unwrap();
        let e = DataDir::open(f).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
    }
}
