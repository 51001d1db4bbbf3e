//! Uninstallation from the inventory: a task with no package, whose
//! destinations each run the removal command their own inventory reported
//! for the program.

use anyhow::{Result, bail};

use super::Service;
use super::software::program;
use super::task_rules::complete_if_done;
use crate::api::CreateTask;
use crate::clock::rfc3339;
use crate::model::{Destination, Level, NewEvent, Task};
use crate::store::{events, tasks};
use crate::task::policy::removal_command;
use crate::task::{TaskClass, TaskType, WorkState};

/// What one destination of a removal task does.
enum Plan {
    /// Runs this command.
    Run(String),
    /// Ends at once in this state, for this reason.
    End(WorkState, String),
}

impl Service {
    /// `task create --uninstall --software NAME [--version V]`.
    pub(super) fn create_removal_task(&mut self, req: CreateTask) -> Result<Task> {
        let name = req.software.clone().unwrap_or_default();
        let name = name.trim();
        if name.is_empty() {
            bail!("--software: give the program's name as its inventory lists it");
        }
        if req.package.is_some() {
            bail!("give either --package or --software, not both");
        }
        if !req.uninstall {
            bail!(
                "--software uninstalls what the inventory lists: add --uninstall (to install, register a package)"
            );
        }
        let version = req
            .version
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let targets = self.check_schedule_and_targets(&req)?;
        let what = match version {
            Some(v) => format!("{name} {v}"),
            None => name.to_string(),
        };
        let mut plans: Vec<(&Destination, Plan)> = Vec::new();
        for d in &targets {
            if let Some(plan) = self.removal_plan(d, name, version, req.all)? {
                plans.push((d, plan));
            }
        }
        if !plans.iter().any(|(_, p)| matches!(p, Plan::Run(_))) {
            let why: Vec<String> = plans
                .iter()
                .filter_map(|(d, p)| match p {
                    Plan::End(WorkState::Failed, why) => Some(format!("{}: {why}", d.name)),
                    _ => None,
                })
                .collect();
            if why.is_empty() {
                bail!("no destination lists {what} in its inventory: nothing to uninstall");
            }
            bail!("nothing to uninstall: {}", why.join("; "));
        }
        let task_name = req
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("Uninstall {what}"));
        let now = self.clock.now();
        let ev = self.event(
            Level::Info,
            "task.created",
            String::new(),
            format!(
                "'{task_name}': uninstall {what} from the inventory on {} destination{}, {}",
                plans.len(),
                if plans.len() == 1 { "" } else { "s" },
                match req.at {
                    Some(t) if t > now => format!("starts {}", rfc3339(t)),
                    _ => "starts now".into(),
                }
            ),
        );
        let id = self.store.write(|tx| {
            let id = tasks::insert(
                tx,
                &tasks::NewTask {
                    name: &task_name,
                    kind: TaskType::Uninstall,
                    class: TaskClass::Admin,
                    package_id: None,
                    package_name: name,
                    start_at: req.at,
                    window: req.window.as_deref(),
                    software: Some(name),
                    software_version: version,
                    policy_id: None,
                    force: false,
                    rings: None,
                    gate: None,
                },
                now,
            )?;
            for (d, plan) in &plans {
                match plan {
                    Plan::Run(command) => tasks::add_destination(tx, id, d.id, Some(command), now)?,
                    Plan::End(state, why) => tasks::add_finished(tx, id, d.id, *state, why, now)?,
                }
            }
            events::append(
                tx,
                &NewEvent {
                    subject: format!("task {id}"),
                    ..ev
                },
            )?;
            complete_if_done(tx, now, id, &task_name).map(|_| id)
        })?;
        self.wake.extend(
            plans
                .iter()
                .filter(|(_, p)| matches!(p, Plan::Run(_)))
                .map(|(d, _)| d.id),
        );
        let mut t = self.task(id)?;
        t.warnings = plans
            .iter()
            .filter_map(|(d, p)| match p {
                Plan::End(state, why) => Some(format!("{}: {state}: {why}", d.name)),
                Plan::Run(_) => None,
            })
            .collect();
        Ok(t)
    }

    /// What removing `name` (at `version`) means on `d`, by its inventory.
    /// None leaves `d` out: with `--all`, destinations that do not list
    /// the program are not the task's.
    fn removal_plan(
        &self,
        d: &Destination,
        name: &str,
        version: Option<&str>,
        all: bool,
    ) -> Result<Option<Plan>> {
        let listed = self.inventory(d.id)?;
        let matching: Vec<_> = listed
            .iter()
            .filter(|s| s.name.eq_ignore_ascii_case(name))
            .filter(|s| version.is_none_or(|v| s.version.as_deref() == Some(v)))
            .collect();
        if matching.is_empty() {
            if all {
                return Ok(None);
            }
            let (state, why) = if self.inventory_digest(d.id)?.is_none() {
                (
                    WorkState::Failed,
                    "no inventory from this destination yet: nothing to go by",
                )
            } else {
                (
                    WorkState::Succeeded,
                    "not installed: its inventory does not list it",
                )
            };
            return Ok(Some(Plan::End(state, why.into())));
        }
        let mut refusal = String::new();
        for s in &matching {
            match removal_command(&program(s)) {
                Ok(command) => return Ok(Some(Plan::Run(command))),
                Err(why) if refusal.is_empty() => refusal = why,
                Err(_) => {}
            }
        }
        Ok(Some(Plan::End(WorkState::Failed, refusal)))
    }
}
