//! How triage and the pre-flight read in a terminal.

use std::io::Write;

use anyhow::Result;

use super::render::{Render, table};

impl Render for Vec<crate::model::CauseGroup> {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        if self.is_empty() {
            writeln!(out, "nothing to triage: no failed destinations")?;
            return Ok(());
        }
        for g in self {
            let tasks = if g.tasks == 1 {
                String::new()
            } else {
                format!(" in {} tasks", g.tasks)
            };
            writeln!(out, "{}× {}{tasks}", g.count, g.cause)?;
            if let Some(h) = &g.hint {
                writeln!(out, "   ({h})")?;
            }
            for f in &g.destinations {
                let flag = match (&f.stuck, f.detection) {
                    (Some(s), _) => format!(" · {} (since {})", s.reason, s.since),
                    (None, Some(crate::task::detect::Detection::DoneDespiteExit)) => {
                        " · succeeded: detected despite its exit code".into()
                    }
                    _ => String::new(),
                };
                let log = if f.has_log {
                    format!(" · log: courier task log {} {}", f.task_id, f.destination)
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    "   {} · task {} '{}' · attempt {}{flag}{log}",
                    f.destination, f.task_id, f.task_name, f.attempt
                )?;
            }
        }
        Ok(())
    }
}

impl Render for crate::model::Plan {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        let rows: Vec<Vec<String>> = self
            .destinations
            .iter()
            .map(|d| {
                vec![
                    d.name.clone(),
                    serde_json::to_value(d.verdict)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    d.reason.clone(),
                ]
            })
            .collect();
        table(out, &["DESTINATION", "VERDICT", "WHY"], &rows)?;
        writeln!(out, "\n{}; {}", self.summary, self.starts)?;
        Ok(())
    }
}
