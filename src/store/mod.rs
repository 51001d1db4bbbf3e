//! The store: one SQLite database (WAL) and the content store beside it.
//!
//! Queries are free functions over `&Connection` grouped by table
//! (`packages`, `tasks`, `events`), so a change and the event that records it
//! are written in one transaction through [`Store::write`].
//!
//! Invariant: the store knows nothing of the CLI, the console or the network;
//! it checks integrity (types, references), the service checks rules.

pub mod blobs;
pub mod destinations;
pub mod events;
pub mod packages;
pub mod policies;
pub mod rings;
pub mod software;
pub mod sql;
pub mod tasks;
pub mod tokens;
pub mod triage;
pub mod work;

use std::path::Path;

use anyhow::{Context, Result, bail};
use rusqlite::Connection;

use sql::Cached;

/// Numbered migrations; `PRAGMA user_version` records how many are applied.
/// Append only: a released migration is never edited.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_initial.sql"),
    include_str!("migrations/002_meaning.sql"),
    include_str!("migrations/003_live.sql"),
    include_str!("migrations/004_unfinished.sql"),
    include_str!("migrations/005_revisions.sql"),
    include_str!("migrations/006_certificates.sql"),
    include_str!("migrations/007_inventory.sql"),
    include_str!("migrations/008_policies.sql"),
    include_str!("migrations/009_truth.sql"),
    include_str!("migrations/010_rings_at_scale.sql"),
];

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)
            .with_context(|| format!("database {}: cannot open", path.display()))?;
        private(path)?;
        let store = Self::init(conn).with_context(|| format!("database {}", path.display()))?;
        private(path)?;
        Ok(store)
    }

    /// A private in-memory store, for tests.
    pub fn open_in_memory() -> Result<Store> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Every statement the store runs, kept prepared (`sql::Cached`).
        conn.set_prepared_statement_cache_capacity(128);
        // One plan per statement whatever its parameters: SQLite (built
        // with STAT4) otherwise re-prepares a statement at every run when a
        // bound value might change its plan, which was most of the
        // writer's time when 10,000 agents polled (docs/PERFORMANCE.md).
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        // WAL lets readers (console, CLI) proceed while the writer commits. FULL syncs the
        // WAL at every commit, so an acknowledged change survives a power
        // loss; the server's writer commits requests in batches, which
        // keeps that affordable (docs/PERFORMANCE.md, store).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn)?;
        Ok(Store { conn })
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Rolls back a transaction left open by a request that panicked, so
    /// the next request starts from the last commit.
    pub fn recover(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Runs `f` in one immediate transaction: all of it lands or none does.
    /// Inside a batch (the server's writer, see [`Store::begin_batch`]) it
    /// is a savepoint of the batch's transaction instead: `f`'s changes
    /// still land together or not at all, and are committed with the batch.
    pub fn write<T>(&mut self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.conn.is_autocommit() {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        } else {
            // Prepared once like every other statement: a batch of 1,000
            // requests would otherwise parse these 2,000 times.
            self.conn.exec("SAVEPOINT write", [])?;
            match f(&self.conn) {
                Ok(out) => {
                    self.conn.exec("RELEASE write", [])?;
                    Ok(out)
                }
                Err(e) => {
                    self.conn.exec("ROLLBACK TO write", [])?;
                    self.conn.exec("RELEASE write", [])?;
                    Err(e)
                }
            }
        }
    }

    /// Opens the transaction a batch of requests runs in (group commit).
    pub fn begin_batch(&self) -> Result<()> {
        self.conn.exec("BEGIN IMMEDIATE", [])?;
        Ok(())
    }

    /// Commits the batch: from here its changes survive a crash (and,
    /// with `synchronous=FULL`, a power loss).
    pub fn commit_batch(&self) -> Result<()> {
        self.conn.exec("COMMIT", [])?;
        Ok(())
    }

    /// Marks where one request of a batch starts.
    pub fn savepoint(&self) -> Result<()> {
        self.conn.exec("SAVEPOINT request", [])?;
        Ok(())
    }

    /// Ends one request of a batch: keeps its changes, or drops them all
    /// (a request that panicked).
    pub fn end_savepoint(&self, rollback: bool) {
        let undo = if rollback {
            self.conn.exec("ROLLBACK TO request", [])
        } else {
            Ok(0)
        };
        if let Err(e) = undo.and_then(|_| self.conn.exec("RELEASE request", [])) {
            tracing::error!("savepoint: {e}");
        }
    }
}

/// The database and its WAL and shared-memory files readable by their
/// owner only, whatever the umask made them (SQLite gives the WAL the
/// database's mode when it creates it).
fn private(db: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let p = std::path::PathBuf::from(name);
            match std::fs::metadata(&p) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                        .with_context(|| format!("{}: cannot make it private", p.display()))?;
                }
                _ => {}
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let applied: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if applied > MIGRATIONS.len() {
        bail!(
            "schema version {applied} is newer than this courier knows ({}): upgrade courier",
            MIGRATIONS.len()
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now > i {
            continue;
        }
        tx.execute_batch(sql)
            .with_context(|| format!("migration {}", i + 1))?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_record_version() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("db");
        drop(Store::open(&p).unwrap());
        let s = Store::open(&p).unwrap();
        let v: usize = s
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len());
        let mode: String = s
            .conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    /// The database and its WAL are the owner's alone, even when made under
    /// a permissive umask or by an older courier.
    #[cfg(unix)]
    #[test]
    fn database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("db");
        std::fs::write(&p, b"").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut s = Store::open(&p).unwrap();
        s.write(|tx| Ok(tx.execute_batch("CREATE TABLE t (x)")?))
            .unwrap();
        for f in ["db", "db-wal"] {
            let mode = std::fs::metadata(t.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }

    /// Every commit, the server's batches included, is synced to disk
    /// before it returns: an outcome acknowledged to an agent survives a
    /// power loss (under NORMAL, WAL commits are synced only at
    /// checkpoints, and the agent would not send it again).
    #[test]
    fn commits_are_durable_before_they_are_acknowledged() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(&t.path().join("db")).unwrap();
        let sync: i64 = s
            .conn()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    #[test]
    fn refuses_a_newer_schema() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("db");
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let e = format!("{:#}", Store::open(&p).err().unwrap());
        assert!(e.contains("newer than this courier"), "{e}");
    }
}
