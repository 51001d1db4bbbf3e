//! Tasks: creating them, and the view of a task with one explicit state per
//! destination.

use anyhow::{Result, anyhow, bail};
use rusqlite::Connection;

use super::{Service, not_found};
use crate::api::CreateTask;
use crate::clock::{UnixTime, rfc3339};
use crate::model::{Destination, Kind, Level, NewEvent, Package, Task, TaskId};
use crate::store::tasks::{Requeue, TaskRow};
use crate::store::{destinations, events, packages, tasks};
use crate::task::rules;
use crate::task::{DestStatus, TaskClass, TaskStatus, TaskType, WorkState};

/// After destinations of a task finished (or left it): starts its next
/// ring when the current one is done and the gate holds
/// (`rings::advance`), and sets its completion time once no destination is
/// left to finish, recording the outcome. Returns the destinations a
/// started ring wakes.
pub(crate) fn complete_if_done(
    c: &Connection,
    now: UnixTime,
    task: TaskId,
    name: &str,
) -> Result<Vec<crate::model::DestinationId>> {
    let wake = super::rings::advance(c, now, task)?;
    if !wake.is_empty() || tasks::any_unfinished(c, task)? {
        return Ok(wake);
    }
    let counts = tasks::counts(c, task)?;
    let row = tasks::get(c, task)?.ok_or_else(|| anyhow!("task {task} vanished"))?;
    if row.completed_at.is_some() {
        return Ok(Vec::new());
    }
    tasks::set_completed(c, task, Some(now))?;
    let status = rules::task_status(Some(now), None, counts.failed, false, now);
    let level = if status == TaskStatus::Failed {
        Level::Warn
    } else {
        Level::Info
    };
    let (kind, verdict) = ("task.finished", status.as_str());
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
    Ok(Vec::new())
}

/// The destinations named in `to` (each item may hold several names,
/// comma-separated), refusing unknown and rejected ones.
pub(super) fn resolve_names(all: &[Destination], to: &[String]) -> Result<Vec<Destination>> {
    let mut names: Vec<&str> = Vec::new();
    for n in to
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
        return Err(not_found(format!(
            "no such destination: {}",
            unknown.join(", ")
        )));
    }
    let picked: Vec<Destination> = all
        .iter()
        .filter(|d| names.contains(&d.name.as_str()))
        .cloned()
        .collect();
    let rejected: Vec<&str> = picked
        .iter()
        .filter(|d| d.status == DestStatus::Rejected)
        .map(|d| d.name.as_str())
        .collect();
    if !rejected.is_empty() {
        bail!("rejected destination: {}", rejected.join(", "));
    }
    Ok(picked)
}

/// A task shows its destinations' outputs up to this many destinations.
pub const OUTPUTS_SHOWN: usize = 200;

impl Service {
    /// A task as users see it. `rows`: None leaves the destination rows
    /// out (lists), Some(with_output) includes them.
    pub(super) fn task_view(&self, row: TaskRow, rows: Option<bool>) -> Result<Task> {
        let c = self.store.conn();
        let counts = tasks::counts(c, row.id)?;
        let now = self.judged_now();
        let destinations = match rows {
            Some(true) => tasks::destinations_with_output(c, row.id, &now)?,
            Some(false) => tasks::destinations(c, row.id, &now)?,
            None => Vec::new(),
        };
        let rings = super::rings::views(c, &row)?;
        Ok(Task {
            id: row.id,
            status: rules::task_status(
                row.completed_at,
                row.start_at,
                counts.failed,
                row.paused_reason.is_some(),
                self.clock.now(),
            ),
            rings,
            gate: row.gate,
            paused_reason: row.paused_reason,
            name: row.name,
            kind: row.kind,
            class: row.class,
            package: row.package_id,
            package_name: row.package_name,
            software: row.software,
            software_version: row.software_version,
            policy: row.policy_id,
            force: row.force,
            start_at: row.start_at.map(rfc3339),
            window: row.window,
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
            .map(|row| self.task_view(row, Some(false)))
            .collect()
    }

    /// Tasks with their counts but without the destination rows: what a
    /// list shows, cheap with many destinations.
    pub fn task_summaries(&self) -> Result<Vec<Task>> {
        tasks::list(self.store.conn())?
            .into_iter()
            .map(|row| self.task_view(row, None))
            .collect()
    }

    pub fn task_destination(
        &self,
        id: TaskId,
        name: &str,
    ) -> Result<crate::model::TaskDestination> {
        tasks::destination(self.store.conn(), id, name, &self.judged_now())?
            .ok_or_else(|| not_found(format!("task {id} has no destination '{name}'")))
    }

    pub fn status(&self) -> Result<crate::model::Status> {
        let c = self.store.conn();
        let mut s = crate::model::Status::default();
        for (status, n) in destinations::count_by_status(c)? {
            s.total += n;
            match status {
                DestStatus::Online => s.online += n,
                DestStatus::Offline => s.offline += n,
                DestStatus::Pending => s.pending += n,
                DestStatus::Rejected => {}
            }
        }
        (s.running_tasks, s.unfinished) = tasks::activity(c)?;
        s.stuck = crate::store::triage::count_stuck(c, &self.judged_now())?;
        Ok(s)
    }

    /// A task with every destination but without their output.
    pub fn task_brief(&self, id: TaskId) -> Result<Task> {
        let row = self.task_row(id)?;
        self.task_view(row, Some(false))
    }

    pub fn task(&self, id: TaskId) -> Result<Task> {
        let row = self.task_row(id)?;
        let c = tasks::counts(self.store.conn(), id)?;
        let rows = c.waiting + c.transferring + c.installing + c.succeeded + c.failed + c.cancelled;
        // Outputs are up to 16 KiB a destination: past a few hundred, the
        // reply would be megabytes nobody reads whole (`task show` names
        // one destination for its output then).
        self.task_view(row, Some(rows <= OUTPUTS_SHOWN as u64))
    }

    /// Creates an administrator task: one waiting destination per target.
    pub fn create_task(&mut self, req: CreateTask) -> Result<Task> {
        if req.software.is_some() {
            return self.create_removal_task(req);
        }
        let c = self.store.conn();
        let package = req.package.ok_or_else(|| {
            anyhow!("give a package (--package ID), or --uninstall --software NAME")
        })?;
        let pkg = packages::get(c, package)?
            .ok_or_else(|| not_found(format!("package {package}: no such package")))?;
        let kind = if req.uninstall {
            TaskType::Uninstall
        } else {
            TaskType::Install
        };
        check_task_package(kind, &pkg)?;
        let targets = self.check_schedule_and_targets(&req)?;
        let ring_of = match req.rings.as_deref() {
            Some(spec) => {
                let sizes = crate::task::rings::parse_rings(spec).map_err(|e| anyhow!(e))?;
                crate::task::rings::assign(&sizes, targets.len())
            }
            None if req.gate.is_some() => bail!("--gate needs --rings (e.g. --rings 5,25%,100%)"),
            None => vec![0; targets.len()],
        };
        let gate = req
            .gate
            .as_deref()
            .map(crate::task::rings::parse_gate)
            .transpose()
            .map_err(|e| anyhow!(e))?;
        // The pre-flight: nothing created when nothing would run (unless
        // forced); otherwise what will not run is said.
        let plan = self.plan_task(&req)?;
        if plan.will_run == 0 && !req.force {
            bail!(
                "nothing would run: {} (see courier task plan; --force creates it anyway)",
                plan.summary
            );
        }
        let warnings: Vec<String> = plan
            .destinations
            .iter()
            .filter(|r| r.verdict != crate::task::plan::Verdict::Run)
            .map(|r| format!("{}: {}", r.name, r.reason))
            .collect();
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
            let id = tasks::insert(
                tx,
                &tasks::NewTask {
                    name: &name,
                    kind,
                    class: TaskClass::Admin,
                    package_id: Some(pkg.id),
                    package_name: &pkg.name,
                    start_at: req.at,
                    window: req.window.as_deref(),
                    software: None,
                    software_version: None,
                    policy_id: None,
                    force: req.force,
                    rings: req.rings.as_deref(),
                    gate: gate.map(|g| g.to_string()).as_deref(),
                },
                now,
            )?;
            let rows = targets.iter().zip(&ring_of).map(|(d, r)| (d.id, *r));
            tasks::add_destinations(tx, id, rows, now)?;
            events::append(
                tx,
                &NewEvent {
                    subject: format!("task {id}"),
                    ..ev
                },
            )?;
            Ok(id)
        })?;
        self.wake.extend(
            targets
                .iter()
                .zip(&ring_of)
                .filter(|(_, r)| **r == 0)
                .map(|(d, _)| d.id),
        );
        let mut t = self.task(id)?;
        t.warnings = warnings;
        Ok(t)
    }
}

impl Service {
    /// The checks every new task passes: a start to come, a window that
    /// parses, destinations that exist (`--to`) or every approved one
    /// (`--all`), and at least one.
    pub(super) fn check_schedule_and_targets(&self, req: &CreateTask) -> Result<Vec<Destination>> {
        let now = self.clock.now();
        if let Some(at) = req.at.filter(|at| rules::start_is_past(*at, now)) {
            bail!(
                "start {} is in the past (now {}): give a time to come, or none to start at once",
                rfc3339(at),
                rfc3339(now)
            );
        }
        if let Some(w) = &req.window
            && crate::clock::parse_window(w).is_none()
        {
            bail!("window '{w}': use HH:MM-HH:MM in the server's time, e.g. 22:00-06:00");
        }
        let all = destinations::list(self.store.conn())?;
        let targets: Vec<_> = if req.all {
            if !req.to.is_empty() {
                bail!("give either --to or --all, not both");
            }
            all.into_iter().filter(|d| d.status.is_approved()).collect()
        } else {
            resolve_names(&all, &req.to)?
        };
        if targets.is_empty() {
            bail!(if req.all {
                "no approved destinations: enrol agents first (courier token create)"
            } else {
                "no destinations: give --to NAME[,NAME…] or --all"
            });
        }
        Ok(targets)
    }

    /// Refuses an edit of what a task runs or where, for tasks whose rows
    /// something else decides.
    fn check_editable(row: &TaskRow) -> Result<()> {
        if let Some(policy) = row.policy_id {
            bail!(
                "task {} is the countermeasure of policy {policy}: its destinations follow the policy (courier policy edit {policy})",
                row.id
            );
        }
        if row.software.is_some() {
            bail!(
                "task {} uninstalls from the inventory, by each destination's own command: create another task instead",
                row.id
            );
        }
        Ok(())
    }

    pub(super) fn task_row(&self, id: TaskId) -> Result<TaskRow> {
        tasks::get(self.store.conn(), id)?
            .ok_or_else(|| not_found(format!("task {id}: no such task")))
    }

    /// Edit, first form: new destinations, same package and schedule.
    /// Finished destinations keep their history, new ones start waiting,
    /// removed ones are cancelled if not yet finished.
    pub fn edit_task_destinations(&mut self, id: TaskId, to: &[String]) -> Result<Task> {
        let row = self.task_row(id)?;
        Self::check_editable(&row)?;
        let all = destinations::list(self.store.conn())?;
        let wanted = resolve_names(&all, to)?;
        if wanted.is_empty() {
            bail!(
                "task {id}: give at least one destination (to stop it, delete it: courier task rm {id})"
            );
        }
        let current = tasks::destination_states(self.store.conn(), id)?;
        let now = self.clock.now();
        let states: Vec<(i64, WorkState)> = current.iter().map(|(d, _, s)| (*d, *s)).collect();
        let wanted_ids: Vec<i64> = wanted.iter().map(|d| d.id).collect();
        let plan = rules::edit_destinations(&states, &wanted_ids);
        let named = |ids: &[i64]| -> Vec<(i64, String)> {
            ids.iter()
                .filter_map(|id| {
                    current
                        .iter()
                        .find(|(d, _, _)| d == id)
                        .map(|(d, n, _)| (*d, n.clone()))
                        .or_else(|| {
                            wanted
                                .iter()
                                .find(|d| d.id == *id)
                                .map(|d| (d.id, d.name.clone()))
                        })
                })
                .collect()
        };
        let added = named(&plan.added);
        let revived = named(&plan.revived);
        let removed = named(&plan.removed);
        let kept = named(&plan.kept_finished);
        if plan.changes_nothing() {
            if !kept.is_empty() {
                let names: Vec<&str> = kept.iter().map(|(_, n)| n.as_str()).collect();
                bail!(
                    "task {id}: nothing to change: {} already finished and keep{} {} outcome (an edit cannot undo what was done; delete the task or copy it instead)",
                    names.join(", "),
                    if names.len() == 1 { "s" } else { "" },
                    if names.len() == 1 { "its" } else { "their" }
                );
            }
            return self.task(id);
        }
        let mut parts = Vec::new();
        if !added.is_empty() || !revived.is_empty() {
            let names: Vec<&str> = added
                .iter()
                .chain(&revived)
                .map(|(_, n)| n.as_str())
                .collect();
            parts.push(format!("added {}", names.join(", ")));
        }
        if !removed.is_empty() {
            let names: Vec<&str> = removed.iter().map(|(_, n)| n.as_str()).collect();
            parts.push(format!("cancelled {}", names.join(", ")));
        }
        let ev = self.event(
            Level::Info,
            "task.edited",
            format!("task {id}"),
            parts.join("; "),
        );
        let wake = self.store.write(|tx| {
            for (d, _) in &added {
                tasks::add_destination(tx, id, *d, None, now)?;
            }
            for (d, _) in &revived {
                tasks::requeue(tx, id, *d, &Requeue::Fresh, now)?;
            }
            for (cid, _) in &removed {
                tasks::cancel(tx, id, *cid, "removed from the task", now)?;
            }
            if !added.is_empty() || !revived.is_empty() {
                tasks::set_completed(tx, id, None)?;
            }
            events::append(tx, &ev)?;
            complete_if_done(tx, now, id, &row.name)
        })?;
        self.wake.extend(wake);
        self.wake
            .extend(added.iter().chain(&revived).map(|(d, _)| *d));
        self.wake.extend(removed.iter().map(|(d, _)| *d));
        self.task(id)
    }

    /// Edit, second form: another package, same destinations. Unfinished
    /// destinations start over with the new package.
    pub fn edit_task_package(&mut self, id: TaskId, package: i64) -> Result<Task> {
        let row = self.task_row(id)?;
        Self::check_editable(&row)?;
        let pkg = packages::get(self.store.conn(), package)?
            .ok_or_else(|| not_found(format!("package {package}: no such package")))?;
        check_task_package(row.kind, &pkg).map_err(|e| anyhow!("task {id}: {e:#}"))?;
        if row.package_id == Some(pkg.id) {
            return self.task(id);
        }
        let now = self.clock.now();
        let unfinished = tasks::unfinished_destinations(self.store.conn(), id)?;
        let ev = self.event(
            Level::Info,
            "task.edited",
            format!("task {id}"),
            format!(
                "package '{}' → {} '{}'; {} unfinished destination{} start again",
                row.package_name,
                pkg.id,
                pkg.name,
                unfinished.len(),
                if unfinished.len() == 1 { "" } else { "s" }
            ),
        );
        self.store.write(|tx| {
            tasks::set_package(tx, id, pkg.id, &pkg.name)?;
            for d in &unfinished {
                tasks::requeue(tx, id, *d, &Requeue::Fresh, now)?;
            }
            events::append(tx, &ev)?;
            Ok(())
        })?;
        self.wake.extend(unfinished);
        self.task(id)
    }

    /// A new task with the same package and schedule, for the same or
    /// other destinations.
    pub fn copy_task(
        &mut self,
        id: TaskId,
        to: Option<Vec<String>>,
        name: Option<String>,
    ) -> Result<Task> {
        let row = self.task_row(id)?;
        if row.policy_id.is_some() {
            bail!("task {id} is a policy's countermeasure: its policy decides where it runs");
        }
        if row.package_id.is_none() && row.software.is_none() {
            bail!("task {id}: its package was deleted, nothing to copy");
        }
        let to = match to {
            Some(to) => to,
            // Destinations cancelled out of the task by an edit are no
            // longer its destinations.
            None => tasks::destination_states(self.store.conn(), id)?
                .into_iter()
                .filter(|(_, _, st)| *st != WorkState::Cancelled)
                .map(|(_, n, _)| n)
                .collect(),
        };
        let name = name.or_else(|| Some(format!("{} (copy)", row.name)));
        // A start long gone is not a schedule to keep (creating the copy
        // with it would be refused): the copy starts at once.
        let now = self.clock.now();
        self.create_task(CreateTask {
            rings: row.rings,
            gate: row.gate,
            force: row.force,
            package: row.package_id,
            software: row.software,
            version: row.software_version,
            to,
            all: false,
            uninstall: row.kind == TaskType::Uninstall,
            at: row.start_at.filter(|at| !rules::start_is_past(*at, now)),
            window: row.window,
            name,
        })
    }

    /// Re-executes a task for its failed destinations (or, with `all`, for
    /// every destination): a new attempt each, history kept in the log.
    pub fn rerun_task(&mut self, id: TaskId, all: bool) -> Result<Task> {
        self.rerun_task_on(id, all, None)
    }

    /// Re-executes a task on some of its destinations: the failed ones (or
    /// every finished one with `all`), restricted to `only` when given.
    /// Named in `only`, a transfer that stalled (`task::stuck`) starts
    /// again too: its download resumes from what the agent verified, and
    /// the agent drops the stalled attempt.
    pub fn rerun_task_on(
        &mut self,
        id: TaskId,
        all: bool,
        only: Option<&[String]>,
    ) -> Result<Task> {
        let row = self.task_row(id)?;
        if row.package_id.is_none() && row.software.is_none() {
            bail!("task {id}: its package was deleted; edit the task to another package first");
        }
        let states = tasks::destination_states(self.store.conn(), id)?;
        let stalled: Vec<String> = match only {
            Some(_) => tasks::destinations(self.store.conn(), id, &self.judged_now())?
                .into_iter()
                .filter(|d| {
                    d.stuck
                        .as_ref()
                        .is_some_and(|s| s.kind == crate::task::stuck::StuckKind::Stalled)
                })
                .map(|d| d.name)
                .collect(),
            None => Vec::new(),
        };
        let picked: Vec<(i64, String)> = states
            .into_iter()
            .filter(|(_, n, _)| only.is_none_or(|o| o.contains(n)))
            .filter(|(_, n, st)| rules::rerun_picks(*st, all) || stalled.contains(n))
            .map(|(d, n, _)| (d, n))
            .collect();
        if picked.is_empty() {
            bail!(if all {
                format!("task {id}: every destination is still at work")
            } else {
                format!(
                    "task {id}: no failed destinations to re-execute (--all re-runs every destination)"
                )
            });
        }
        let now = self.clock.now();
        let names: Vec<&str> = picked.iter().map(|(_, n)| n.as_str()).collect();
        let ev = self.event(
            Level::Info,
            "task.rerun",
            format!("task {id}"),
            format!("re-executing on {}", names.join(", ")),
        );
        self.store.write(|tx| {
            for (d, _) in &picked {
                tasks::requeue(tx, id, *d, &Requeue::Fresh, now)?;
            }
            tasks::set_completed(tx, id, None)?;
            events::append(tx, &ev)?;
            Ok(())
        })?;
        self.wake.extend(picked.iter().map(|(d, _)| *d));
        self.task(id)
    }

    /// Deletes a task: unfinished work is cancelled on the agents (their
    /// long-polls are woken and drop it), then the task goes. The event
    /// log keeps the record.
    pub fn remove_task(&mut self, id: TaskId) -> Result<Task> {
        let before = self.task(id)?;
        let unfinished = tasks::unfinished_destinations(self.store.conn(), id)?;
        let c = &before.counts;
        let ev = self.event(
            Level::Info,
            "task.removed",
            format!("task {id}"),
            format!(
                "'{}' deleted: {} succeeded, {} failed, {} cancelled",
                before.name,
                c.succeeded,
                c.failed,
                c.cancelled + unfinished.len() as u64
            ),
        );
        let now = self.clock.now();
        self.store.write(|tx| {
            for d in &unfinished {
                tasks::cancel(tx, id, *d, "task deleted", now)?;
            }
            tasks::delete(tx, id)?;
            events::append(tx, &ev)?;
            Ok(())
        })?;
        self.wake.extend(unfinished);
        Ok(before)
    }

    /// Removes a destination (or records that it left for another
    /// server): a task whose only destination it was becomes completed, a
    /// task with others drops it.
    pub fn remove_destination(&mut self, name: &str, why: &str) -> Result<Destination> {
        let d = self.destination(name)?;
        let affected = tasks::of_destination(self.store.conn(), d.id)?;
        let now = self.clock.now();
        let ev = self.event(
            Level::Info,
            "agent.removed",
            format!("destination {name}"),
            format!(
                "{why}; {} task{} affected",
                affected.len(),
                if affected.len() == 1 { "" } else { "s" }
            ),
        );
        let wake = self.store.write(|tx| {
            let mut wake = Vec::new();
            for (tid, tname, count) in &affected {
                if *count <= 1 {
                    tasks::cancel(tx, *tid, d.id, why, now)?;
                    tasks::remove_destination(tx, *tid, d.id)?;
                    if tasks::get(tx, *tid)?.is_some_and(|t| t.completed_at.is_none()) {
                        tasks::set_completed(tx, *tid, Some(now))?;
                        events::append(
                            tx,
                            &NewEvent {
                                at: now,
                                level: Level::Info,
                                kind: "task.finished",
                                subject: format!("task {tid}"),
                                message: format!(
                                    "'{tname}' completed: its only destination {name} is gone"
                                ),
                            },
                        )?;
                    }
                } else {
                    tasks::remove_destination(tx, *tid, d.id)?;
                    wake.extend(complete_if_done(tx, now, *tid, tname)?);
                }
            }
            destinations::delete(tx, d.id)?;
            events::append(tx, &ev)?;
            Ok(wake)
        })?;
        self.wake.extend(wake);
        Ok(d)
    }

    /// The seed's retention rules: administrator tasks go 30 days after
    /// completion, countermeasure tasks after 7, any task once it has no
    /// destinations. Returns the deleted task ids.
    pub fn apply_retention(&mut self) -> Result<Vec<TaskId>> {
        let now = self.clock.now();
        let expired: Vec<(TaskId, String, rules::Expiry)> =
            tasks::retention_candidates(self.store.conn())?
                .into_iter()
                .filter_map(|(id, name, row)| rules::expiry(row, now).map(|why| (id, name, why)))
                .collect();
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        self.store.write(|tx| {
            for (id, name, why) in &expired {
                tasks::delete(tx, *id)?;
                events::append(
                    tx,
                    &NewEvent {
                        at: now,
                        level: Level::Info,
                        kind: "task.expired",
                        subject: format!("task {id}"),
                        message: format!("'{name}' deleted automatically: {why}"),
                    },
                )?;
            }
            Ok(())
        })?;
        Ok(expired.into_iter().map(|(id, _, _)| id).collect())
    }
}

/// Whether a task of type `kind` can use `pkg`.
fn check_task_package(kind: TaskType, pkg: &Package) -> Result<()> {
    if kind == TaskType::Uninstall {
        if pkg.kind == Kind::File {
            bail!(
                "an uninstallation task needs an installation package; package {} distributes files",
                pkg.id
            );
        }
        if pkg.uninstall_command.is_none() {
            bail!(
                "package {} has no uninstall command: set one with 'courier package edit {} --uninstall-command CMD'",
                pkg.id,
                pkg.id
            );
        }
    }
    Ok(())
}
