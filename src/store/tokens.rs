//! The `tokens` table: enrolment tokens, kept as digests.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::sql::Cached;

use crate::clock::{UnixTime, rfc3339};
use crate::model::Token;

/// A token row as enrolment checks it.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: i64,
    pub auto_approve: bool,
    pub expires_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
}

pub fn insert(
    c: &Connection,
    digest: &str,
    auto_approve: bool,
    expires_at: Option<UnixTime>,
    at: UnixTime,
) -> Result<i64> {
    c.exec(
        "INSERT INTO tokens (digest, auto_approve, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![digest, auto_approve, at, expires_at],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn by_digest(c: &Connection, digest: &str) -> Result<Option<TokenRow>> {
    Ok(c.one(
        "SELECT id, auto_approve, expires_at, revoked_at FROM tokens WHERE digest = ?1",
        [digest],
        |r| {
            Ok(TokenRow {
                id: r.get(0)?,
                auto_approve: r.get(1)?,
                expires_at: r.get(2)?,
                revoked_at: r.get(3)?,
            })
        },
    )
    .optional()?)
}

pub fn used(c: &Connection, id: i64) -> Result<()> {
    c.exec("UPDATE tokens SET uses = uses + 1 WHERE id = ?1", [id])?;
    Ok(())
}

fn from_row(r: &Row) -> rusqlite::Result<Token> {
    Ok(Token {
        id: r.get(0)?,
        token: None,
        auto_approve: r.get(1)?,
        created_at: rfc3339(r.get(2)?),
        expires_at: r.get::<_, Option<i64>>(3)?.map(rfc3339),
        revoked: r.get::<_, Option<i64>>(4)?.is_some(),
        uses: r.get(5)?,
    })
}

pub fn list(c: &Connection) -> Result<Vec<Token>> {
    let mut st = c.prepare_cached(
        "SELECT id, auto_approve, created_at, expires_at, revoked_at, uses FROM tokens ORDER BY id",
    )?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(c: &Connection, id: i64) -> Result<Option<Token>> {
    Ok(c
        .one(
            "SELECT id, auto_approve, created_at, expires_at, revoked_at, uses FROM tokens WHERE id = ?1",
            [id],
            from_row,
        )
        .optional()?)
}

pub fn revoke(c: &Connection, id: i64, at: UnixTime) -> Result<bool> {
    Ok(c.exec(
        "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, at],
    )? > 0)
}
