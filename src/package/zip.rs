//! ZIP checking: every entry is safe to extract and really is what its
//! headers say, and the installer inside, if any, is found.
//!
//! A ZIP is always unzipped at the destination, so anything an agent would
//! refuse or be hurt by (a path out of the folder, a link, a bomb) is refused
//! here, at registration, where the admin can fix it. Sizes are measured by
//! inflating the raw compressed bytes ourselves and counting: the headers
//! are the archive author's claims, and a bomb's headers lie. Nothing is
//! written to disk except the one MSI whose properties are read, and memory
//! is a few fixed buffers whatever the archive holds.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ::zip::{CompressionMethod, ZipArchive};

use super::inflate::{Claim, InflateError, decompressed, inflate};
use super::{
    Format, InspectError, Inspection, Installer, Kind, Sniffer, exe, human_size, msi, refused,
};

/// Unix file-type bits of an entry's mode (S_IFMT) and the types in it.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Bytes inflated per read while checking an entry.
const BUF_LEN: usize = 64 << 10;

/// The path an entry named `name` is extracted to, relative to the
/// destination folder and '/'-separated, or why it must not be extracted.
///
/// Both '/' and '\' separate folders, because archives made on Windows use
/// either and a Windows agent treats both as separators. Empty and "."
/// components are dropped. Refused: NUL, absolute paths, drive letters and
/// any ':' (an NTFS alternate stream or a drive-relative path), any
/// component made only of dots and spaces other than "." (Windows trims
/// trailing dots and spaces, so ".. " and "..." would act as ".."), any
/// other component ending in a dot or space (it would land under another
/// name), device names (`CON`, `nul.txt`, `COM1`…), control characters
/// and the characters Windows does not allow in names (`< > " | ? *`).
/// The agent must extract with this same function.
pub fn entry_path(name: &str) -> Result<String, String> {
    if name.contains('\0') {
        return Err("has a NUL byte in its name".into());
    }
    if name.chars().any(char::is_control) {
        return Err("has a control character in its name".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '<' | '>' | '"' | '|' | '?' | '*'))
    {
        return Err(format!(
            "has a character Windows does not allow in names ('{c}')"
        ));
    }
    if name.starts_with(['/', '\\']) {
        return Err("has an absolute path".into());
    }
    let mut parts = Vec::new();
    for (i, part) in name.split(['/', '\\']).enumerate() {
        if part.is_empty() || part == "." {
            continue;
        }
        if part.trim_end_matches(['.', ' ']).is_empty() {
            return Err("has a '..' component in its path".into());
        }
        if part.ends_with(['.', ' ']) {
            return Err(format!(
                "has a name ending in a dot or space ('{part}'), which Windows drops"
            ));
        }
        if is_reserved_windows_name(part) {
            return Err(format!(
                "has a name Windows reserves for a device ('{part}')"
            ));
        }
        if let Some(colon) = part.find(':') {
            let drive = i == 0 && colon == 1 && part.as_bytes()[0].is_ascii_alphabetic();
            return Err(if drive {
                "starts with a drive letter".into()
            } else {
                "has a ':' in its path (not allowed in Windows names)".into()
            });
        }
        parts.push(part);
    }
    if parts.is_empty() {
        return Err("has an empty name".into());
    }
    Ok(parts.join("/"))
}

/// True for a name Windows gives to a device (`CON`, `NUL`, `COM1`…),
/// with or without an extension: opening `nul.txt` there opens the device.
fn is_reserved_windows_name(part: &str) -> bool {
    let stem = part
        .split('.')
        .next()
        .unwrap_or(part)
        .trim_end()
        .to_ascii_uppercase();
    match stem.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        s if s.len() == 4 && (s.starts_with("COM") || s.starts_with("LPT")) => {
            matches!(s.as_bytes()[3], b'1'..=b'9')
        }
        s => {
            // COM¹ COM² COM³ LPT¹… are devices too.
            (s.starts_with("COM") || s.starts_with("LPT"))
                && matches!(&s[3..], "\u{b9}" | "\u{b2}" | "\u{b3}")
        }
    }
}

/// The key two paths collide under on a Windows destination, which ignores
/// case and trailing dots and spaces of each component. NTFS compares
/// names upper-cased one character to one (its upcase table), not
/// lower-cased: "ı.txt" and "I.txt" are one file there, "K.txt" (Kelvin
/// sign) and "k.txt" are two.
pub(crate) fn collision_key(path: &str) -> String {
    let upper = |c: char| {
        let mut u = c.to_uppercase();
        match (u.next(), u.next()) {
            (Some(one), None) => one,
            _ => c,
        }
    };
    path.split('/')
        .map(|part| {
            part.trim_end_matches(['.', ' '])
                .chars()
                .map(upper)
                .collect()
        })
        .collect::<Vec<String>>()
        .join("/")
}

/// Entries a ZIP package may have: each is a file the agent creates and
/// syncs, and a directory walked at every check.
pub const MAX_ENTRIES: usize = 65_536;

/// An entry that may be the package's installer.
struct Candidate {
    index: usize,
    path: String,
    /// Folders above it: 0 at the top of the ZIP.
    depth: usize,
    kind: Kind,
}

/// Checks every entry of the ZIP in `file` and looks for its installer.
/// `limit` is the most the entries may decompress to in total.
pub(super) fn inspect_zip(
    file: File,
    scratch: &Path,
    limit: u64,
) -> Result<Inspection, InspectError> {
    let mut archive = ZipArchive::new(BufReader::new(file))
        .map_err(|e| refused(format!("not a readable ZIP: {e}")))?;
    // The central directory is indexed by name, so a second entry of the
    // same name would be hidden from the checks below but not from an
    // extractor that walks the local headers.
    if archive.len() > MAX_ENTRIES {
        return Err(refused(format!(
            "ZIP has {} entries, more than the {MAX_ENTRIES} a package may have",
            archive.len()
        )));
    }
    if archive.has_duplicate_names() {
        return Err(refused(
            "ZIP has two entries with the same name".to_string(),
        ));
    }
    // Local headers that disagree with the central directory, entries that
    // overlap (a classic bomb) or local headers missing from the directory
    // mean two readers would see two different archives.
    archive
        .validate_header_consistency()
        .map_err(|e| refused(format!("ZIP headers are inconsistent: {e}")))?;

    let mut total: u64 = 0;
    let mut files: u64 = 0;
    // Collision key → path of every file, and the keys of every folder
    // (explicit entries and parents of files), to find collisions.
    let mut file_keys: BTreeMap<String, String> = BTreeMap::new();
    let mut folder_keys: BTreeSet<String> = BTreeSet::new();
    let mut candidates = Vec::new();
    let mut buf = vec![0u8; BUF_LEN];

    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| refused(format!("ZIP entry #{} cannot be read: {e}", index + 1)))?;
        let name = entry
            .name()
            .map_err(|e| {
                refused(format!(
                    "ZIP entry #{} has an unreadable name: {e}",
                    index + 1
                ))
            })?
            .into_owned();
        // Shown as written, so the admin finds it in their archive tool;
        // `refused` blanks any control character in it.
        let entry_refused = |why: &str| refused(format!("ZIP entry '{name}' {why}"));

        let path = entry_path(&name).map_err(|why| entry_refused(&why))?;
        let is_folder = name.ends_with(['/', '\\']);
        check_type(entry.unix_mode(), is_folder).map_err(&entry_refused)?;
        if entry.encrypted() {
            return Err(entry_refused("is encrypted"));
        }
        let method = entry.compression();
        if method != CompressionMethod::Stored && method != CompressionMethod::Deflated {
            return Err(entry_refused(&format!(
                "uses compression method {method}; only Stored and Deflated are supported"
            )));
        }

        let key = collision_key(&path);
        add_parents(&key, &mut folder_keys);
        if is_folder {
            // A folder entry's data, if any, is never extracted.
            folder_keys.insert(key);
            continue;
        }
        if let Some(other) = file_keys.get(&key) {
            return Err(entry_refused(&format!(
                "has the same path as '{other}' on Windows"
            )));
        }

        // Refuse on the claim alone before inflating anything.
        let claim = Claim::of(&entry);
        let budget = limit - total;
        if claim.size > budget {
            return Err(over_limit(limit, &name));
        }
        // Inflated into nothing but the sniffer: only sizes, the CRC and
        // the kind of content matter here.
        let mut sniffer = Sniffer::new();
        let size = inflate(entry, &claim, budget, &mut buf, |offset, piece| {
            sniffer.feed_at(offset, piece);
            Ok(())
        })
        .map_err(|e| match e {
            InflateError::MoreThanClaimed => entry_refused(&format!(
                "claims {} but decompresses to more",
                human_size(claim.size)
            )),
            InflateError::LessThanClaimed(size) => entry_refused(&format!(
                "claims {} but decompresses to {}",
                human_size(claim.size),
                human_size(size)
            )),
            InflateError::OverBudget => over_limit(limit, &name),
            InflateError::CrcMismatch => entry_refused("is corrupt (CRC mismatch)"),
            InflateError::Corrupt(e) => entry_refused(&format!("is corrupt ({e})")),
            InflateError::Read(e) | InflateError::Write(e) => InspectError::Io(e),
        })?;
        total += size;
        files += 1;

        // A ZIP inside is just a file: that is how a ZIP is shipped as is.
        let kind = sniffer.kind();
        if kind == Kind::Msi || kind == Kind::Exe {
            candidates.push(Candidate {
                index,
                depth: path.matches('/').count(),
                path: path.clone(),
                kind,
            });
        }
        file_keys.insert(key, path);
    }

    // A file where other entries need a folder cannot be extracted.
    if let Some(path) = file_keys
        .iter()
        .find(|(key, _)| folder_keys.contains(*key))
        .map(|(_, path)| path)
    {
        return Err(refused(format!(
            "ZIP entry '{path}' is a file but other entries need it to be a folder"
        )));
    }

    let (installer, ambiguous) = choose_installer(&mut archive, candidates, scratch)?;
    Ok(Inspection {
        format: Format::Zip,
        installer,
        ambiguous,
        unzipped_size: Some(total),
        entries: Some(files),
    })
}

fn over_limit(limit: u64, at: &str) -> InspectError {
    refused(format!(
        "ZIP entries decompress to more than the {} limit for unzipped content (crossed at '{at}')",
        human_size(limit)
    ))
}

/// Checks the Unix file type an entry's mode gives. No type at all (mode 0
/// or no Unix mode) is an ordinary entry, as many archivers write.
pub(crate) fn check_type(mode: Option<u32>, is_folder: bool) -> Result<(), &'static str> {
    match mode.map_or(0, |m| m & S_IFMT) {
        S_IFLNK => Err("is a symbolic link"),
        0 | S_IFREG => Ok(()),
        S_IFDIR if is_folder => Ok(()),
        S_IFDIR => Err("is marked as a folder but its name does not end in '/'"),
        0o010_000 => Err("is a named pipe, not a regular file"),
        0o020_000 | 0o060_000 => Err("is a device, not a regular file"),
        0o140_000 => Err("is a socket, not a regular file"),
        _ => Err("has an unknown file type in its mode"),
    }
}

/// Records every folder above `key` as needed.
pub(crate) fn add_parents(key: &str, folders: &mut BTreeSet<String>) {
    let mut end = key.len();
    while let Some(slash) = key[..end].rfind('/') {
        // Parents of a parent are already there.
        if !folders.insert(key[..slash].to_string()) {
            break;
        }
        end = slash;
    }
}

/// Picks the installer among the candidates: the one nearest the top of the
/// ZIP, when only one is there. Several at the same depth are ambiguous; the
/// admin says which by giving an install command.
fn choose_installer<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    candidates: Vec<Candidate>,
    scratch: &Path,
) -> Result<(Option<Installer>, Vec<String>), InspectError> {
    let Some(top) = candidates.iter().map(|c| c.depth).min() else {
        return Ok((None, Vec::new()));
    };
    let mut shallowest: Vec<Candidate> =
        candidates.into_iter().filter(|c| c.depth == top).collect();
    if shallowest.len() > 1 {
        let mut paths: Vec<String> = shallowest.into_iter().map(|c| c.path).collect();
        paths.sort();
        return Ok((None, paths));
    }
    let Some(chosen) = shallowest.pop() else {
        return Ok((None, Vec::new()));
    };
    let shown = chosen.path.clone();
    let entry = archive
        .by_index_raw(chosen.index)
        .map_err(|e| refused(format!("ZIP entry '{shown}' cannot be read: {e}")))?;
    let method = entry.compression();
    let size = entry.size();
    let installer = if chosen.kind == Kind::Msi {
        // The MSI reader needs to seek, so the entry (already verified
        // above) is spilled to the scratch directory while it is read.
        let spill = Spill::create(scratch)?;
        {
            let mut out = BufWriter::new(&spill.file);
            io::copy(&mut decompressed(entry, method).take(size), &mut out)?;
            out.flush()?;
        }
        let mut file = &spill.file;
        file.seek(SeekFrom::Start(0))?;
        let info = msi::read_properties(BufReader::new(file))
            .map_err(|why| refused(format!("ZIP entry '{shown}' is {why}")))?;
        Installer {
            path: Some(chosen.path),
            format: Format::Msi,
            msi: Some(info),
            framework: None,
        }
    } else {
        let framework = exe::detect_framework(decompressed(entry, method))?;
        Installer {
            path: Some(chosen.path),
            format: Format::Exe,
            msi: None,
            framework,
        }
    };
    Ok((Some(installer), Vec::new()))
}

/// A temporary file in the scratch directory, removed when dropped.
struct Spill {
    path: PathBuf,
    file: File,
}

impl Spill {
    fn create(scratch: &Path) -> io::Result<Spill> {
        // Unique within the process by the counter and across processes by
        // the pid; create_new never opens someone else's file.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = scratch.join(format!(".inspect-{}-{n}.msi", std::process::id()));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => return Ok(Spill { path, file }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        // Best effort: a leftover in scratch is harmless and cleaned with it.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
#[path = "zip_tests.rs"]
mod tests;
