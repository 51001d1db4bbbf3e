//! Extraction of a ZIP: every entry is checked before a byte is written,
//! then each is inflated through the shared bounded loop into a staged
//! file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::staging::{Staging, finish_file};
use super::{BUF_LEN, Limits, PlaceError, Rules, Stats, Stop, StopCheck, io_context, refused};
use crate::package::entry_path;
use crate::package::inflate::{Claim, InflateError, inflate};
use crate::package::zip::{add_parents, check_type, collision_key};

/// One entry of the archive, checked and ready to extract.
struct Planned {
    index: usize,
    /// Relative '/'-separated path from [`entry_path`].
    path: String,
    is_folder: bool,
    executable: bool,
    claim: Claim,
}

/// Extracts every entry of `zip` into `folder` with the permission
/// `rules`; nothing is renamed into place unless every entry is good.
pub(super) fn extract(
    zip: &Path,
    folder: &Path,
    limits: &Limits,
    rules: Rules,
    stop: &Stop<'_>,
) -> Result<Stats, PlaceError> {
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
        if stop() {
            return Err(PlaceError::Stopped);
        }
        if item.is_folder {
            staging.ensure_dir(&item.path)?;
            continue;
        }
        let shown = item.path.escape_debug().to_string();
        let (dir, file_name) = staging.ensure_parent(&item.path)?;
        let dest = dir.child(file_name);
        let rel_dir = item.path[..item.path.len() - file_name.len()].trim_end_matches('/');
        let perms = staging.perms_for(&dir, file_name, &item.path, item.executable)?;
        let (mut out, temp) = staging.create_temp(&dir, rel_dir, file_name, &perms)?;
        let raw = archive
            .by_index_raw(item.index)
            .map_err(|e| zip_error(e, &format!("ZIP entry '{shown}' cannot be read"), reading()))?;
        let budget = limits.max_total.saturating_sub(stats.bytes);
        let claimed = item.claim.size;
        let mut check = StopCheck::new(stop);
        let mut stopped = false;
        let size = inflate(raw, &item.claim, budget, &mut buf, |_, piece| {
            out.write_all(piece)?;
            stopped = check.wrote(piece.len());
            if stopped {
                return Err(io::Error::other("stopped"));
            }
            Ok(())
        })
        .map_err(|e| match e {
            _ if stopped => PlaceError::Stopped,
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
        finish_file(&out, &temp, &perms)
            .map_err(io_context(format!("writing {}", dest.display())))?;
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
