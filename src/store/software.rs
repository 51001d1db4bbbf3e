//! The `software` table: each destination's inventory, replaced whole when
//! its agent sends a new one.

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};

use super::sql::Cached;
use crate::clock::UnixTime;
use crate::model::{DestinationId, Software, SoftwareTitle, SoftwareVersion};
use crate::task::policy::NameTest;
use crate::task::{PackageKind, TaskType, WorkState};

/// The digest of the inventory held for `dest`, if any.
pub fn digest(c: &Connection, dest: DestinationId) -> Result<Option<String>> {
    Ok(c.one(
        "SELECT inventory_digest FROM destinations WHERE id = ?1",
        params![dest],
        |r| r.get::<_, Option<String>>(0),
    )
    .optional()?
    .flatten())
}

/// Replaces `dest`'s inventory by `programs`, digest `digest`.
pub fn replace(
    c: &Connection,
    dest: DestinationId,
    digest: &str,
    programs: &[Software],
    at: UnixTime,
) -> Result<()> {
    c.exec(
        "DELETE FROM software WHERE destination_id = ?1",
        params![dest],
    )?;
    let mut insert = c.prepare_cached(
        "INSERT INTO software
           (destination_id, name, version, publisher, source, product_code, uninstall, quiet)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for p in programs {
        insert.execute(params![
            dest,
            p.name,
            p.version,
            p.publisher,
            p.source,
            p.product_code,
            p.uninstall,
            p.quiet
        ])?;
    }
    c.exec(
        "UPDATE destinations SET inventory_digest = ?2, inventory_at = ?3 WHERE id = ?1",
        params![dest, digest, at],
    )?;
    Ok(())
}

/// `dest`'s inventory, by name.
pub fn of_destination(c: &Connection, dest: DestinationId) -> Result<Vec<Software>> {
    let mut st = c.prepare_cached(
        "SELECT name, version, publisher, source, product_code, uninstall, quiet
         FROM software WHERE destination_id = ?1 ORDER BY name, version",
    )?;
    let rows = st.query_map(params![dest], |r| {
        Ok(Software {
            name: r.get(0)?,
            version: r.get(1)?,
            publisher: r.get(2)?,
            source: r.get(3)?,
            product_code: r.get(4)?,
            uninstall: r.get(5)?,
            quiet: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Calls `f` with each destination's programs that pass `test` (of
/// `only`, or of all), one destination at a time: the fleet's inventories
/// are never in memory at once, and SQL leaves out what no rule needs.
pub fn for_each(
    c: &Connection,
    only: Option<DestinationId>,
    test: &NameTest,
    mut f: impl FnMut(DestinationId, Vec<Software>),
) -> Result<()> {
    let (name_sql, a, b) = match test {
        NameTest::Is(n) => ("name = ?2 AND ?3 IS NULL", Some(n.as_str()), None),
        NameTest::IsOrCode(n, code) => (
            "(name = ?2 OR product_code = ?3 COLLATE NOCASE)",
            Some(n.as_str()),
            Some(code.as_str()),
        ),
        NameTest::Like(p) => (
            "name LIKE ?2 ESCAPE '\\' AND ?3 IS NULL",
            Some(p.as_str()),
            None,
        ),
        NameTest::Any => ("?2 IS NULL AND ?3 IS NULL", None, None),
    };
    let dest_sql = if only.is_some() {
        "destination_id = ?1"
    } else {
        "?1 IS NULL"
    };
    let mut st = c.prepare_cached(&format!(
        "SELECT destination_id, name, version, publisher, source, product_code, uninstall, quiet
         FROM software WHERE {dest_sql} AND {name_sql}
         ORDER BY destination_id, name, version"
    ))?;
    let rows = st.query_map(params![only, a, b], |r| {
        Ok((
            r.get::<_, DestinationId>(0)?,
            Software {
                name: r.get(1)?,
                version: r.get(2)?,
                publisher: r.get(3)?,
                source: r.get(4)?,
                product_code: r.get(5)?,
                uninstall: r.get(6)?,
                quiet: r.get(7)?,
            },
        ))
    })?;
    let mut current: Option<(DestinationId, Vec<Software>)> = None;
    for row in rows {
        let (dest, s) = row?;
        match &mut current {
            Some((d, list)) if *d == dest => list.push(s),
            _ => {
                if let Some((d, list)) = current.take() {
                    f(d, list);
                }
                current = Some((dest, vec![s]));
            }
        }
    }
    if let Some((d, list)) = current {
        f(d, list);
    }
    Ok(())
}

/// The packages courier installed, per destination: an install task's
/// success not followed by an uninstall task's success for the same
/// package there (`name`, `version`, `product_code`, `uninstall`,
/// `destination_id`).
fn by_courier_sql() -> String {
    let (ok, install, uninstall) = (
        WorkState::Succeeded.as_str(),
        TaskType::Install.as_str(),
        TaskType::Uninstall.as_str(),
    );
    let kind = PackageKind::Install.as_str();
    format!(
        "SELECT p.name AS name, p.version AS version, p.product_code AS product_code,
                p.uninstall_command AS uninstall, td.destination_id AS destination_id
         FROM task_destinations td
         JOIN tasks t ON t.id = td.task_id
         JOIN packages p ON p.id = t.package_id
         WHERE td.status = '{ok}' AND t.type = '{install}' AND p.kind = '{kind}'
           AND NOT EXISTS (
             SELECT 1 FROM task_destinations l JOIN tasks lt ON lt.id = l.task_id
             WHERE l.destination_id = td.destination_id AND lt.package_id = p.id
               AND lt.type IN ('{install}', '{uninstall}') AND l.status = '{ok}'
               AND (l.updated_at > td.updated_at
                    OR (l.updated_at = td.updated_at AND lt.id > t.id)))"
    )
}

/// What courier itself installed on `dest` and has not uninstalled since
/// (source `courier`), by name.
pub fn by_courier(c: &Connection, dest: DestinationId) -> Result<Vec<Software>> {
    Ok(by_courier_where(c, Some(dest))?
        .remove(&dest)
        .unwrap_or_default())
}

/// `by_courier` of every destination (`None`) or of one.
pub fn by_courier_where(
    c: &Connection,
    dest: Option<DestinationId>,
) -> Result<HashMap<DestinationId, Vec<Software>>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT destination_id, name, version, product_code, uninstall FROM ({})
         WHERE {} ORDER BY destination_id, name, version",
        by_courier_sql(),
        if dest.is_some() {
            "destination_id = ?1"
        } else {
            "?1 IS NULL"
        }
    ))?;
    let rows = st.query_map(params![dest], |r| {
        Ok((
            r.get::<_, DestinationId>(0)?,
            Software {
                name: r.get(1)?,
                version: r.get(2)?,
                publisher: None,
                source: "courier".into(),
                product_code: r.get(3)?,
                uninstall: r.get(4)?,
                quiet: true,
            },
        ))
    })?;
    let mut out: HashMap<DestinationId, Vec<Software>> = HashMap::new();
    for row in rows {
        let (d, s) = row?;
        out.entry(d).or_default().push(s);
    }
    Ok(out)
}

/// Every title in the fleet whose name holds `name` (any case; all when
/// None), with its versions and the destinations that have each: what
/// the agents listed and what courier installed.
pub fn titles(c: &Connection, name: Option<&str>) -> Result<Vec<SoftwareTitle>> {
    let pattern = name.map(|n| format!("%{}%", escape_like(n)));
    let mut st = c.prepare_cached(&format!(
        "WITH listed AS (
             SELECT name, version, publisher, destination_id FROM software
             UNION ALL
             SELECT name, version, NULL, destination_id FROM ({}))
         SELECT s.name, s.version, MAX(s.publisher), d.name
         FROM listed s JOIN destinations d ON d.id = s.destination_id
         WHERE ?1 IS NULL OR s.name LIKE ?1 ESCAPE '\\'
         GROUP BY s.name COLLATE NOCASE, s.version, d.id
         ORDER BY s.name COLLATE NOCASE, s.version, d.name",
        by_courier_sql()
    ))?;
    let rows = st.query_map(params![pattern], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out: Vec<SoftwareTitle> = Vec::new();
    for row in rows {
        let (name, version, publisher, dest) = row?;
        let title = match out.last_mut() {
            Some(t) if t.name.eq_ignore_ascii_case(&name) => t,
            _ => {
                out.push(SoftwareTitle {
                    name,
                    publisher: None,
                    versions: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        if title.publisher.is_none() {
            title.publisher = publisher;
        }
        match title.versions.last_mut() {
            Some(v) if v.version == version => v.destinations.push(dest),
            _ => title.versions.push(SoftwareVersion {
                version,
                destinations: vec![dest],
            }),
        }
    }
    Ok(out)
}

/// `s` with LIKE's wildcards taken literally (escape `\`).
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
