//! Triage: failed destinations of every task with what tells their cause,
//! the ones detection found done despite their exit code, and stuck work.

use anyhow::Result;

use super::Service;

impl Service {
    /// Every failed destination, with what its output and log say went
    /// wrong (the output itself stays on the server), every one detection
    /// found done despite its exit code, and the stuck ones.
    pub fn failures(&self) -> Result<Vec<crate::model::Failure>> {
        Ok(crate::store::triage::failures(self.store.conn())?
            .into_iter()
            .map(with_causes)
            .chain(crate::store::triage::stuck(
                self.store.conn(),
                &self.judged_now(),
            )?)
            .collect())
    }
}

/// A failure with what tells its cause read from its output and its
/// installer's log: the last meaningful line, the failing action; the
/// installer's own log says more than its console output (its first
/// failing action and error message).
pub(super) fn with_causes(
    (mut f, output, log): crate::store::triage::FailureRow,
) -> crate::model::Failure {
    use crate::task::cause;
    if let Some(o) = output.as_deref() {
        f.said = cause::last_line(o);
        f.action = cause::failing_action(o);
    }
    if let Some(l) = log.as_deref() {
        let m = cause::msi_log_failure(l);
        f.action = m.action.or(f.action);
        f.said = m.error.or(f.said);
    }
    f
}
