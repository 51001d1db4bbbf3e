//! Security policies and their automatic countermeasures: one task per
//! enforced policy (class `countermeasure`), whose destinations follow
//! the violations the inventories show.

use anyhow::{Result, anyhow, bail};

use super::software::program;
use super::task_rules::complete_if_done;
use super::{Service, conflict, not_found};
use crate::api::{AddPolicy, EditPolicy};
use crate::clock::rfc3339;
use crate::model::{
    DestinationId, Kind, Level, NewEvent, Package, Policy, PolicyViolation, Software, TaskId,
};
use crate::store::policies::{self, PolicyRow};
use crate::store::tasks::{self, Outcome, Requeue};
use crate::store::{events, packages, software};
use crate::task::policy::{Row, Rule, Step, name_test, removal_command, step, violation};
use crate::task::{PolicyKind, TaskClass, TaskType, WorkState};
use std::collections::HashMap;

/// A policy with what its rule needs to be judged.
struct Judged {
    row: PolicyRow,
    package: Option<Package>,
}

impl Judged {
    fn rule(&self) -> Rule<'_> {
        let software = self.row.software.as_deref().unwrap_or_default();
        match self.row.kind {
            PolicyKind::Mandatory => Rule::Mandatory {
                name: software,
                min_version: self.row.min_version.as_deref(),
            },
            PolicyKind::Prohibited => Rule::Prohibited { pattern: software },
            PolicyKind::Update => {
                let p = self.package.as_ref();
                Rule::Update {
                    name: p.map(|p| p.name.as_str()).unwrap_or(software),
                    version: p.and_then(|p| p.version.as_deref()),
                    product_code: p.and_then(|p| p.product_code.as_deref()),
                }
            }
        }
    }
}

/// One destination's standing against one policy.
struct Finding {
    dest: DestinationId,
    name: String,
    inventory_at: i64,
    reason: Option<String>,
    /// For a prohibited program: the command that removes it, or why
    /// none can.
    removal: Option<Result<String, String>>,
}

impl Service {
    pub fn policies(&self) -> Result<Vec<Policy>> {
        let rows = policies::list(self.store.conn())?;
        let judged = rows
            .into_iter()
            .map(|row| self.judged(row))
            .collect::<Result<Vec<_>>>()?;
        let found = self.judge(&judged, None)?;
        judged
            .into_iter()
            .zip(found)
            .map(|(p, f)| self.policy_view(p, f))
            .collect()
    }

    pub fn policy(&self, id: i64) -> Result<Policy> {
        let judged = self.judged(self.policy_row(id)?)?;
        let found = self.judge(std::slice::from_ref(&judged), None)?;
        self.policy_view(judged, found.into_iter().next().unwrap_or_default())
    }

    /// Every destination policies judge (approved, with an inventory;
    /// only `only` when given) against each of `policies`: their findings,
    /// by destination name, in the order of `policies`. The inventories
    /// are read one destination at a time.
    fn judge(&self, policies: &[Judged], only: Option<DestinationId>) -> Result<Vec<Vec<Finding>>> {
        let c = self.store.conn();
        let dests: HashMap<DestinationId, (String, i64)> = policies::judged(c, only)?
            .into_iter()
            .map(|(id, name, at)| (id, (name, at)))
            .collect();
        let ours = software::by_courier_where(c, only)?;
        let mut out: Vec<Vec<Finding>> = Vec::with_capacity(policies.len());
        for p in policies {
            let mut left = dests.clone();
            let mut found = Vec::new();
            let mut judge = |left: &mut HashMap<DestinationId, (String, i64)>,
                             dest: DestinationId,
                             mut listed: Vec<Software>| {
                let Some((name, at)) = left.remove(&dest) else {
                    return;
                };
                listed.extend(ours.get(&dest).into_iter().flatten().cloned());
                found.push(finding(p, dest, name, at, &listed));
            };
            let test = name_test(p.rule());
            software::for_each(c, only, &test, |dest, listed| {
                judge(&mut left, dest, listed)
            })?;
            // Judged destinations with nothing of a name the rule looks at.
            let rest: Vec<DestinationId> = left.keys().copied().collect();
            for dest in rest {
                judge(&mut left, dest, Vec::new());
            }
            out.push(found);
        }
        for found in &mut out {
            found.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(out)
    }

    fn policy_row(&self, id: i64) -> Result<PolicyRow> {
        policies::get(self.store.conn(), id)?
            .ok_or_else(|| not_found(format!("policy {id}: no such policy")))
    }

    fn policy_view(&self, judged: Judged, found: Vec<Finding>) -> Result<Policy> {
        let violations = found
            .into_iter()
            .filter_map(|f| {
                f.reason.map(|reason| PolicyViolation {
                    destination: f.name,
                    reason,
                })
            })
            .collect();
        let row = judged.row;
        let task = policies::task_of(self.store.conn(), row.id)?;
        Ok(Policy {
            id: row.id,
            name: row.name,
            kind: row.kind,
            software: row.software,
            min_version: row.min_version,
            package: row.package_id,
            enforce: row.enforce,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
            violations,
            task,
        })
    }

    fn judged(&self, row: PolicyRow) -> Result<Judged> {
        let package = match row.package_id {
            Some(id) => packages::get(self.store.conn(), id)?,
            None => None,
        };
        Ok(Judged { row, package })
    }

    /// `policy add`.
    pub fn add_policy(&mut self, req: AddPolicy) -> Result<Policy> {
        let now = self.clock.now();
        let mut row = PolicyRow {
            id: 0,
            name: req.name.clone().unwrap_or_default(),
            kind: req.kind,
            software: req.software.clone(),
            min_version: req.min_version.clone(),
            package_id: req.package,
            enforce: req.enforce,
            created_at: now,
            updated_at: now,
        };
        self.check_policy(&mut row)?;
        let ev = self.event(
            Level::Info,
            "policy.added",
            String::new(),
            format!("'{}': {}", row.name, describe(&row)),
        );
        let id = self.store.write(|tx| {
            let id = policies::insert(tx, &row)?;
            let subject = format!("policy {id}");
            events::append(tx, &NewEvent { subject, ..ev })?;
            Ok(id)
        })?;
        self.enforce_policies(None)?;
        self.policy(id)
    }

    /// `policy edit`: a changed rule starts its countermeasure afresh;
    /// enforcement unset deletes it (the seed's third retention rule).
    pub fn edit_policy(&mut self, id: i64, edit: EditPolicy) -> Result<Policy> {
        let old = self.policy_row(id)?;
        let mut row = old.clone();
        let clear = |s: String| Some(s).filter(|s| !s.trim().is_empty());
        if let Some(n) = edit.name {
            row.name = n;
        }
        if let Some(s) = edit.software {
            row.software = clear(s);
        }
        if let Some(v) = edit.min_version {
            row.min_version = clear(v);
        }
        if let Some(p) = edit.package {
            row.package_id = Some(p);
        }
        if let Some(e) = edit.enforce {
            row.enforce = e;
        }
        self.check_policy(&mut row)?;
        if row == old {
            return self.policy(id);
        }
        row.updated_at = self.clock.now();
        let ev = self.event(
            Level::Info,
            "policy.edited",
            format!("policy {id}"),
            format!(
                "'{}': {}{}",
                row.name,
                describe(&row),
                if row.enforce { "" } else { ", not enforced" }
            ),
        );
        self.store.write(|tx| {
            policies::update(tx, &row)?;
            events::append(tx, &ev).map(|_| ())
        })?;
        let rule_changed = (&row.software, &row.min_version, row.package_id)
            != (&old.software, &old.min_version, old.package_id);
        if !row.enforce {
            self.drop_countermeasure(id, &format!("policy '{}' is no longer enforced", row.name))?;
        } else if rule_changed {
            self.drop_countermeasure(id, &format!("policy '{}' changed", row.name))?;
        }
        self.enforce_policies(None)?;
        self.policy(id)
    }

    /// `policy rm`: its countermeasure task goes with it.
    pub fn remove_policy(&mut self, id: i64) -> Result<Policy> {
        let before = self.policy(id)?;
        self.drop_countermeasure(id, &format!("policy '{}' was removed", before.name))?;
        let ev = self.event(
            Level::Info,
            "policy.removed",
            format!("policy {id}"),
            format!("'{}' removed", before.name),
        );
        self.store.write(|tx| {
            policies::delete(tx, id)?;
            events::append(tx, &ev).map(|_| ())
        })?;
        Ok(before)
    }

    /// Checks a policy as added or edited, filling in its default name.
    fn check_policy(&self, row: &mut PolicyRow) -> Result<()> {
        let c = self.store.conn();
        let software = row.software.as_deref().map(str::trim).unwrap_or_default();
        match row.kind {
            PolicyKind::Mandatory if software.is_empty() => {
                bail!("a mandatory policy names the program: --mandatory NAME --package ID")
            }
            PolicyKind::Prohibited if software.is_empty() => {
                bail!(
                    "a prohibited policy names the programs: --prohibited PATTERN (* and ? match any characters)"
                )
            }
            PolicyKind::Prohibited if row.package_id.is_some() || row.min_version.is_some() => {
                bail!(
                    "a prohibited policy uninstalls from the inventory: it takes no --package or --min-version"
                )
            }
            PolicyKind::Update if row.min_version.is_some() => {
                bail!("an update policy's version is its package's: --min-version does not apply")
            }
            _ => {}
        }
        let package = match row.package_id {
            Some(id) => Some(
                packages::get(c, id)?
                    .ok_or_else(|| not_found(format!("package {id}: no such package")))?,
            ),
            None => None,
        };
        if row.kind != PolicyKind::Prohibited {
            let p = package.as_ref().ok_or_else(|| {
                anyhow!(
                    "{} policy installs a package: give --package ID",
                    a_kind(row.kind)
                )
            })?;
            if p.kind != Kind::Install || p.install_command.is_none() {
                bail!(
                    "package {} has no install command: {} policy installs its package",
                    p.id,
                    a_kind(row.kind)
                );
            }
        }
        if row.kind == PolicyKind::Update {
            row.software = package.as_ref().map(|p| p.name.clone());
        } else {
            row.software = Some(software.to_string());
        }
        row.name = row.name.trim().to_string();
        if row.name.is_empty() {
            let what = row.software.clone().unwrap_or_default();
            row.name = format!("{} {what}", capitalised(row.kind.as_str()));
        }
        if let Some(other) = policies::by_name(c, &row.name)?.filter(|o| o.id != row.id) {
            return Err(conflict(format!(
                "a policy named '{}' exists already (policy {}): give another --name",
                row.name, other.id
            )));
        }
        Ok(())
    }

    /// Evaluates every enforced policy for every judged destination (or
    /// only `only`) and brings each countermeasure task in line: a
    /// destination that starts violating is added, one that complies
    /// before its work started is completed, one that violates again
    /// starts again.
    pub fn enforce_policies(&mut self, only: Option<DestinationId>) -> Result<()> {
        let enforced: Vec<PolicyRow> = policies::list(self.store.conn())?
            .into_iter()
            .filter(|p| p.enforce)
            .collect();
        if enforced.is_empty() {
            return Ok(());
        }
        let judged = enforced
            .into_iter()
            .map(|row| self.judged(row))
            .collect::<Result<Vec<_>>>()?;
        let found = self.judge(&judged, only)?;
        for (policy, found) in judged.iter().zip(found) {
            self.bring_in_line(policy, found)?;
        }
        Ok(())
    }

    /// The daily evaluation of every policy (and the first, at start):
    /// violations no inventory change announced, such as a package
    /// deleted since, are caught within a day.
    pub fn enforce_policies_if_due(&mut self) -> Result<()> {
        let now = self.clock.now();
        if self
            .policies_judged_at
            .is_some_and(|at| now - at < crate::task::rules::DAY)
        {
            return Ok(());
        }
        self.policies_judged_at = Some(now);
        self.enforce_policies(None)
    }

    fn bring_in_line(&mut self, policy: &Judged, found: Vec<Finding>) -> Result<()> {
        let c = self.store.conn();
        let row = &policy.row;
        let task = policies::task_of(c, row.id)?;
        let rows = match task {
            Some(t) => policies::rows(c, t)?,
            None => Default::default(),
        };
        let mut steps = Vec::new();
        for f in found {
            let current = rows.get(&f.dest);
            let command = match &f.removal {
                Some(Ok(cmd)) => Some(cmd.as_str()),
                _ => None,
            };
            let s = step(
                f.reason.is_some(),
                command,
                current.map(|r| Row {
                    state: r.state,
                    updated_at: r.updated_at,
                    command: r.command.as_deref(),
                }),
                Some(f.inventory_at),
            );
            // A removal with no command to run is not started again.
            let s = match (s, &f.removal) {
                (Step::Requeue, Some(Err(_))) => Step::Leave,
                (s, _) => s,
            };
            if s != Step::Leave {
                steps.push((s, f));
            }
        }
        if steps.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let names = |which: Step| -> Vec<&str> {
            steps
                .iter()
                .filter(|(s, _)| *s == which)
                .map(|(_, f)| f.name.as_str())
                .collect()
        };
        let mut parts = Vec::new();
        for (which, label) in [
            (Step::Add, "violating"),
            (Step::Requeue, "violating again"),
            (Step::Complete, "complying before the work started"),
        ] {
            let n = names(which);
            if !n.is_empty() {
                parts.push(format!("{label}: {}", n.join(", ")));
            }
        }
        let ev = self.event(
            Level::Info,
            "policy.enforced",
            format!("policy {}", row.id),
            format!("'{}': {}", row.name, parts.join("; ")),
        );
        let new_task = task.is_none();
        let task_id = self.store.write(|tx| {
            let id = match task {
                Some(id) => id,
                None => new_countermeasure(tx, policy, now)?,
            };
            let mut reopened = false;
            for (s, f) in &steps {
                match (s, &f.removal) {
                    (Step::Add, Some(Err(why))) => {
                        tasks::add_finished(tx, id, f.dest, WorkState::Failed, why, now)?;
                    }
                    (Step::Add, removal) => {
                        let command = removal.as_ref().and_then(|r| r.as_ref().ok());
                        tasks::add_destination(tx, id, f.dest, command.map(String::as_str), now)?;
                        reopened = true;
                    }
                    (Step::Requeue, removal) => {
                        if let Some(Ok(command)) = removal {
                            policies::set_command(tx, id, f.dest, Some(command))?;
                        }
                        tasks::requeue(tx, id, f.dest, &Requeue::Fresh, now)?;
                        reopened = true;
                    }
                    (Step::Complete, _) => {
                        let outcome = Outcome {
                            state: WorkState::Succeeded,
                            exit_code: None,
                            message: Some("complies with the policy now: nothing was run"),
                            meaning: None,
                            output: None,
                            transferred: 0,
                            reboot_required: false,
                            detection: None,
                            log: None,
                        };
                        tasks::finish(tx, id, f.dest, &outcome, now)?;
                    }
                    (Step::Leave, _) => {}
                }
            }
            if reopened {
                tasks::set_completed(tx, id, None)?;
            }
            events::append(tx, &ev)?;
            complete_if_done(tx, now, id, &row.name)?;
            Ok(id)
        })?;
        if new_task {
            tracing::info!(
                policy = row.id,
                task = task_id,
                "countermeasure task created"
            );
        }
        self.wake.extend(
            steps
                .iter()
                .filter(|(s, _)| matches!(s, Step::Add | Step::Requeue))
                .map(|(_, f)| f.dest),
        );
        Ok(())
    }

    /// Deletes the countermeasure task of policy `id`, if any: its
    /// unfinished work is cancelled on the agents.
    fn drop_countermeasure(&mut self, id: i64, why: &str) -> Result<()> {
        let Some(task) = policies::task_of(self.store.conn(), id)? else {
            return Ok(());
        };
        let row = self.task_row(task)?;
        let unfinished = tasks::unfinished_destinations(self.store.conn(), task)?;
        let now = self.clock.now();
        let ev = self.event(
            Level::Info,
            "task.expired",
            format!("task {task}"),
            format!("'{}' deleted automatically: {why}", row.name),
        );
        self.store.write(|tx| {
            for d in &unfinished {
                tasks::cancel(tx, task, *d, why, now)?;
            }
            tasks::delete(tx, task)?;
            events::append(tx, &ev).map(|_| ())
        })?;
        self.wake.extend(unfinished);
        Ok(())
    }
}

/// Stores the countermeasure task of `policy` (no destinations yet).
fn new_countermeasure(tx: &rusqlite::Connection, policy: &Judged, now: i64) -> Result<TaskId> {
    let row = &policy.row;
    let (kind, package_id, package_name, software) = match row.kind {
        PolicyKind::Prohibited => (
            TaskType::Uninstall,
            None,
            row.software.clone().unwrap_or_default(),
            row.software.as_deref(),
        ),
        PolicyKind::Mandatory | PolicyKind::Update => (
            TaskType::Install,
            row.package_id,
            policy
                .package
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            None,
        ),
    };
    let id = tasks::insert(
        tx,
        &tasks::NewTask {
            name: &row.name,
            kind,
            class: TaskClass::Countermeasure,
            package_id,
            package_name: &package_name,
            start_at: None,
            window: None,
            software,
            software_version: None,
            policy_id: Some(row.id),
            force: false,
            rings: None,
            gate: None,
        },
        now,
    )?;
    events::append(
        tx,
        &NewEvent {
            at: now,
            level: Level::Info,
            kind: "task.created",
            subject: format!("task {id}"),
            message: format!(
                "'{}': countermeasure of policy {} ({})",
                row.name,
                row.id,
                describe(row)
            ),
        },
    )?;
    Ok(id)
}

/// One destination against one policy, from its inventory.
fn finding(
    policy: &Judged,
    dest: DestinationId,
    name: String,
    inventory_at: i64,
    listed: &[Software],
) -> Finding {
    // What courier's own tasks installed counts as present (an installer
    // that registers nowhere is not installed again and again), but what
    // is there to remove is what the agent lists: the program may have
    // been removed since by other means.
    let programs: Vec<_> = listed
        .iter()
        .filter(|s| policy.row.kind != PolicyKind::Prohibited || s.source != "courier")
        .map(program)
        .collect();
    let v = violation(policy.rule(), &programs);
    let removal = v
        .as_ref()
        .and_then(|v| v.remove)
        .map(|i| removal_command(&programs[i]));
    Finding {
        dest,
        name,
        inventory_at,
        reason: v.map(|v| v.reason),
        removal,
    }
}

/// A policy's rule in a few words, for the event log.
fn describe(row: &PolicyRow) -> String {
    let software = row.software.as_deref().unwrap_or_default();
    match row.kind {
        PolicyKind::Mandatory => match &row.min_version {
            Some(v) => format!(
                "{software} {v} or later required (package {})",
                row.package_id.unwrap_or_default()
            ),
            None => format!(
                "{software} required (package {})",
                row.package_id.unwrap_or_default()
            ),
        },
        PolicyKind::Prohibited => format!("programs matching '{software}' prohibited"),
        PolicyKind::Update => format!(
            "update package {} ({software}) on every destination",
            row.package_id.unwrap_or_default()
        ),
    }
}

/// "a mandatory", "an update": the policy's kind with its article.
fn a_kind(kind: PolicyKind) -> &'static str {
    match kind {
        PolicyKind::Mandatory => "a mandatory",
        PolicyKind::Prohibited => "a prohibited",
        PolicyKind::Update => "an update",
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
