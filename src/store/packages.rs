//! The `packages` table.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::sql::Cached;

use crate::clock::{UnixTime, rfc3339};
use crate::model::{Kind, Package, PackageId};
use crate::task::Format;

/// What registration learnt of the file. Never changes once stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub format: Format,
    pub size: u64,
    pub hash: String,
    pub sha256: String,
    pub file_name: String,
    pub installer: Option<String>,
    pub product_code: Option<String>,
    pub unzipped_size: Option<u64>,
    pub entries: Option<u64>,
}

/// What the admin may edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub name: String,
    pub version: Option<String>,
    pub kind: Kind,
    pub install_command: Option<String>,
    pub uninstall_command: Option<String>,
    pub folder: Option<String>,
    pub success_codes: Vec<i64>,
    /// Detection rules, canonical (`task::detect`).
    pub detect: Vec<String>,
}

impl Meta {
    pub fn of(p: &Package) -> Meta {
        Meta {
            name: p.name.clone(),
            version: p.version.clone(),
            kind: p.kind,
            install_command: p.install_command.clone(),
            uninstall_command: p.uninstall_command.clone(),
            folder: p.folder.clone(),
            success_codes: p.success_codes.clone(),
            detect: p.detect.clone(),
        }
    }
}

const COLUMNS: &str = "id, name, version, kind, format, size, hash, sha256, file_name, \
     install_command, uninstall_command, folder, success_codes, installer, product_code, \
     unzipped_size, entries, created_at, updated_at, detect";

fn codes_to_text(codes: &[i64]) -> String {
    codes
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn codes_from_text(s: &str) -> Vec<i64> {
    s.split(',').filter_map(|c| c.trim().parse().ok()).collect()
}

/// Rules as stored: one per line (a rule has no control characters).
pub fn rules_to_text(rules: &[String]) -> String {
    rules.join("\n")
}

pub fn rules_from_text(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn from_row(r: &Row) -> rusqlite::Result<Package> {
    let codes: String = r.get(12)?;
    Ok(Package {
        id: r.get(0)?,
        name: r.get(1)?,
        version: r.get(2)?,
        kind: r.get(3)?,
        format: r.get(4)?,
        size: r.get(5)?,
        hash: r.get(6)?,
        sha256: r.get(7)?,
        file_name: r.get(8)?,
        install_command: r.get(9)?,
        uninstall_command: r.get(10)?,
        folder: r.get(11)?,
        success_codes: codes_from_text(&codes),
        installer: r.get(13)?,
        product_code: r.get(14)?,
        unzipped_size: r.get(15)?,
        entries: r.get(16)?,
        created_at: rfc3339(r.get(17)?),
        updated_at: rfc3339(r.get(18)?),
        detect: rules_from_text(&r.get::<_, String>(19)?),
    })
}

pub fn insert(c: &Connection, content: &Content, meta: &Meta, at: UnixTime) -> Result<PackageId> {
    c.exec(
        "INSERT INTO packages (name, version, kind, format, size, hash, sha256, file_name,
             install_command, uninstall_command, folder, success_codes, installer, product_code,
             unzipped_size, entries, created_at, updated_at, detect)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17,
                 ?18)",
        params![
            meta.name,
            meta.version,
            meta.kind,
            content.format,
            content.size,
            content.hash,
            content.sha256,
            content.file_name,
            meta.install_command,
            meta.uninstall_command,
            meta.folder,
            codes_to_text(&meta.success_codes),
            content.installer,
            content.product_code,
            content.unzipped_size,
            content.entries,
            at,
            rules_to_text(&meta.detect),
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn get(c: &Connection, id: PackageId) -> Result<Option<Package>> {
    let sql = format!("SELECT {COLUMNS} FROM packages WHERE id = ?1");
    Ok(c.one(&sql, [id], from_row).optional()?)
}

pub fn list(c: &Connection) -> Result<Vec<Package>> {
    let sql = format!("SELECT {COLUMNS} FROM packages ORDER BY id");
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn update_meta(c: &Connection, id: PackageId, meta: &Meta, at: UnixTime) -> Result<()> {
    c.exec(
        "UPDATE packages SET name = ?2, version = ?3, kind = ?4, install_command = ?5,
             uninstall_command = ?6, folder = ?7, success_codes = ?8, updated_at = ?9,
             detect = ?10
         WHERE id = ?1",
        params![
            id,
            meta.name,
            meta.version,
            meta.kind,
            meta.install_command,
            meta.uninstall_command,
            meta.folder,
            codes_to_text(&meta.success_codes),
            at,
            rules_to_text(&meta.detect),
        ],
    )?;
    Ok(())
}

pub fn delete(c: &Connection, id: PackageId) -> Result<()> {
    c.exec("DELETE FROM packages WHERE id = ?1", [id])?;
    Ok(())
}

/// How many packages share this content (identical files registered twice
/// share one blob).
pub fn count_by_hash(c: &Connection, hash: &str) -> Result<u64> {
    Ok(c.one(
        "SELECT COUNT(*) FROM packages WHERE hash = ?1",
        [hash],
        |r| r.get(0),
    )?)
}

/// Every content hash still referenced, for sweeping orphaned blobs.
pub fn all_hashes(c: &Connection) -> Result<Vec<String>> {
    let mut st = c.prepare_cached("SELECT DISTINCT hash FROM packages")?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
