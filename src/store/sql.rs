//! The domain's enums as SQLite text columns, by their lowercase names. A
//! name that is none of them is an error when read, never a default: a
//! damaged row shows up instead of being counted as something else.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, Params, Row};

use crate::task::{DestStatus, Format, PackageKind, PolicyKind, TaskClass, TaskType, WorkState};

macro_rules! text_column {
    ($($t:ty),+) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = v.as_str()?;
                s.parse::<$t>().map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    )+};
}

text_column!(
    WorkState,
    DestStatus,
    TaskType,
    TaskClass,
    PackageKind,
    Format,
    PolicyKind
);

/// `execute` and `query_row` through the connection's statement cache:
/// the server runs the same few statements thousands of times a second,
/// and parsing them again each time was a fifth of its work.
pub trait Cached {
    fn exec<P: Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize>;
    fn one<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        p: P,
        f: F,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }

    fn one<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        p: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(p, f)
    }
}

/// `(name, name, …)` for `status IN …` from a set of states, so SQL never
/// spells a state the domain does not define.
pub fn in_list(states: &[WorkState]) -> String {
    let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("({})", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn states_round_trip_and_unknown_names_are_errors() {
        let c = Connection::open_in_memory().unwrap();
        for s in WorkState::ALL {
            let back: WorkState = c.query_row("SELECT ?1", [s], |r| r.get(0)).unwrap();
            assert_eq!(back, *s);
        }
        let bad = c.query_row("SELECT 'canceled'", [], |r| r.get::<_, WorkState>(0));
        let e = bad.unwrap_err().to_string();
        assert!(e.contains("unknown destination state 'canceled'"), "{e}");
        assert_eq!(
            in_list(&WorkState::UNFINISHED),
            "('waiting', 'transferring', 'installing')"
        );
    }
}
