//! The domain's enums as SQLite text columns, by their lowercase names. A
//! name that is none of them is an error when read, never a default: a
//! damaged row shows up instead of being counted as something else.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::task::{DestStatus, Format, PackageKind, TaskClass, TaskType, WorkState};

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
    Format
);

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
