//! Tasks: creating them, and the view of a task with one explicit state per
//! destination.

use anyhow::{Result, anyhow, bail};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::Service;
use crate::clock::{UnixTime, rfc3339};
use crate::model::{Kind, Level, NewEvent, Task, TaskId};
use crate::store::tasks::TaskRow;
use crate::store::{destinations, events, packages, tasks};

/// `courier task create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateTask {
    pub package: i64,
    /// Destination names; empty with `all`.
    pub to: Vec<String>,
    /// Every approved destination.
    pub all: bool,
    pub uninstall: bool,
    /// Start time; None starts at once.
    pub at: Option<UnixTime>,
    pub name: Option<String>,
}

/// Sets a task's completion time once no destination is left to finish,
/// and records the outcome.
pub(crate) fn complete_if_done(
    c: &Connection,
    now: UnixTime,
    task: TaskId,
    name: &str,
) -> Result<()> {
    if tasks::unfinished_count(c, task)? > 0 {
        return Ok(());
    }
    let row = tasks::get(c, task)?.ok_or_else(|| anyhow!("task {task} vanished"))?;
    if row.completed_at.is_some() {
        return Ok(());
    }
    tasks::set_completed(c, task, Some(now))?;
    let counts = tasks::counts(c, task)?;
    let (level, kind, verdict) = if counts.failed > 0 {
        (Level::Warn, "task.finished", "failed")
    } else {
        (Level::Info, "task.finished", "completed")
    };
    events::append(
        c,
        &NewEvent {
            at: now,
            level,
            kind,
            subject: format!("task {task}"),
            message: format!(
                "'{name}' {verdict}: {} succeeded, {} failed, {} cancelled",
                counts.succeeded, counts.failed, counts.cancelled
            ),
        },
    )?;
    Ok(())
}

fn derive_status(row: &TaskRow, failed: u64, now: UnixTime) -> &'static str {
    match row.completed_at {
        Some(_) if failed > 0 => "failed",
        Some(_) => "completed",
        None if row.start_at.is_some_and(|s| s > now) => "scheduled",
        None => "running",
    }
}

impl Service {
    fn task_view(&self, row: TaskRow, with_output: bool) -> Result<Task> {
        let c = self.store.conn();
        let counts = tasks::counts(c, row.id)?;
        let destinations = tasks::destinations(c, row.id, with_output)?;
        Ok(Task {
            id: row.id,
            status: derive_status(&row, counts.failed, self.clock.now()).into(),
            name: row.name,
            kind: row.kind,
            class: row.class,
            package: row.package_id,
            package_name: row.package_name,
            start_at: row.start_at.map(rfc3339),
            created_at: rfc3339(row.created_at),
            completed_at: row.completed_at.map(rfc3339),
            counts,
            destinations,
            warnings: Vec::new(),
        })
    }

    pub fn tasks(&self) -> Result<Vec<Task>> {
        tasks::list(self.store.conn())?
            .into_iter()
            .map(|row| self.task_view(row, false))
            .collect()
    }

    pub fn task(&self, id: TaskId) -> Result<Task> {
        let row =
            tasks::get(self.store.conn(), id)?.ok_or_else(|| anyhow!("task {id}: no such task"))?;
        self.task_view(row, true)
    }

    /// Creates an administrator task: one waiting destination per target.
    pub fn create_task(&mut self, req: CreateTask) -> Result<Task> {
        let c = self.store.conn();
        let pkg = packages::get(c, req.package)?
            .ok_or_else(|| anyhow!("package {}: no such package", req.package))?;
        if req.uninstall && pkg.uninstall_command.is_none() {
            bail!(
                "package {} has no uninstall command: set one with 'courier package edit {} --uninstall-command CMD'",
                pkg.id,
                pkg.id
            );
        }
        let all = destinations::list(c)?;
        let targets: Vec<_> = if req.all {
            if !req.to.is_empty() {
                bail!("give either --to or --all, not both");
            }
            all.into_iter()
                .filter(|d| d.status == "online" || d.status == "offline")
                .collect()
        } else {
            let mut names: Vec<&str> = Vec::new();
            for n in req
                .to
                .iter()
                .flat_map(|s| s.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            let unknown: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !all.iter().any(|d| d.name == *n))
                .collect();
            if !unknown.is_empty() {
                bail!("no such destination: {}", unknown.join(", "));
            }
            let picked: Vec<_> = all
                .into_iter()
                .filter(|d| names.contains(&d.name.as_str()))
                .collect();
            let rejected: Vec<&str> = picked
                .iter()
                .filter(|d| d.status == "rejected")
                .map(|d| d.name.as_str())
                .collect();
            if !rejected.is_empty() {
                bail!("rejected destination: {}", rejected.join(", "));
            }
            picked
        };
        if targets.is_empty() {
            bail!(if req.all {
                "no approved destinations: enrol agents first (courier token create)"
            } else {
                "no destinations: give --to NAME[,NAME…] or --all"
            });
        }
        let mut warnings = Vec::new();
        let windows_only = matches!(pkg.format.as_str(), "msi" | "exe")
            && pkg.kind == Kind::Install
            || pkg
                .install_command
                .as_deref()
                .is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("msiexec"))
                && !req.uninstall;
        for d in &targets {
            if d.status == "pending" {
                warnings.push(format!(
                    "{} is waiting for approval: it gets its work once approved",
                    d.name
                ));
            }
            if let Some(os) = d.os.as_deref().filter(|os| *os != "windows")
                && windows_only
            {
                warnings.push(format!(
                    "{} runs {os}: a Windows installer ({}) will fail there",
                    d.name, pkg.format
                ));
            }
        }
        let kind = if req.uninstall {
            "uninstall"
        } else {
            "install"
        };
        let verb = match (req.uninstall, pkg.kind) {
            (true, _) => "Uninstall",
            (false, Kind::Install) => "Install",
            (false, Kind::File) => "Distribute",
        };
        let name = req
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("{verb} {}", pkg.name));
        let now = self.clock.now();
        let when = match req.at {
            Some(t) if t > now => format!("starts {}", rfc3339(t)),
            _ => "starts now".into(),
        };
        let ev = self.event(
            Level::Info,
            "task.created",
            String::new(),
            format!(
                "'{name}': {} package {} '{}' on {} destination{}, {when}",
                kind,
                pkg.id,
                pkg.name,
                targets.len(),
                if targets.len() == 1 { "" } else { "s" }
            ),
        );
        let id = self.store.write(|tx| {
            let id = tasks::insert(tx, &name, kind, "admin", pkg.id, &pkg.name, req.at, now)?;
            for d in &targets {
                tasks::add_destination(tx, id, d.id, now)?;
            }
            events::append(
                tx,
                &NewEvent {
                    subject: format!("task {id}"),
                    ..ev
                },
            )?;
            Ok(id)
        })?;
        self.wake.extend(targets.iter().map(|d| d.id));
        let mut t = self.task(id)?;
        t.warnings = warnings;
        Ok(t)
    }
}
