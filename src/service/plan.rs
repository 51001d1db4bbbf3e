//! The pre-flight (`courier task plan`, and the check `task create` makes):
//! per destination, what will happen and why, and one summary line.

use anyhow::{Result, anyhow, bail};

use super::{Service, not_found};
use crate::api::CreateTask;
use crate::clock::rfc3339;
use crate::model::{Plan, PlanRow};
use crate::proto::Disk;
use crate::store::{destinations, packages, software};
use crate::task::detect::Rule;
use crate::task::plan::{self, Free, Target, Work};
use crate::task::rules::{self, action_for};
use crate::task::{Action, Format, TaskType};

impl Service {
    /// What a task with `req` would do on each destination, before
    /// anything starts.
    pub fn plan_task(&self, req: &CreateTask) -> Result<Plan> {
        if req.software.is_some() {
            bail!(
                "task plan takes a package (--package ID): an uninstallation from the inventory runs where the inventory lists the program"
            );
        }
        let c = self.store.conn();
        let id = req
            .package
            .ok_or_else(|| anyhow!("give a package (--package ID)"))?;
        let pkg = packages::get(c, id)?
            .ok_or_else(|| not_found(format!("package {id}: no such package")))?;
        let kind = if req.uninstall {
            TaskType::Uninstall
        } else {
            TaskType::Install
        };
        let action = action_for(kind, pkg.kind);
        let command = match action {
            Action::Install => pkg.install_command.as_deref(),
            Action::Uninstall => pkg.uninstall_command.as_deref(),
            Action::Distribute => None,
        };
        let targets = self.check_schedule_and_targets(req)?;
        let now = self.clock.now();
        let work = Work {
            action,
            windows_only: rules::needs_windows(action, pkg.format, command),
            folder: pkg
                .folder
                .as_deref()
                .filter(|_| action == Action::Distribute),
            // An uninstall downloads the package too (its command runs in
            // the unpacked content).
            size: pkg.size,
            unzipped: pkg.unzipped_size.filter(|_| pkg.format == Format::Zip),
            detect: &pkg.detect,
            force: req.force,
        };
        // Inventories are read only when they can answer the rules.
        let by_inventory = !req.force
            && !pkg.detect.is_empty()
            && pkg.detect.iter().all(|r| {
                matches!(
                    r.parse::<Rule>(),
                    Ok(Rule::Msi { .. } | Rule::Dpkg { .. } | Rule::Rpm { .. })
                )
            });
        let mut rows = Vec::with_capacity(targets.len());
        let mut verdicts = Vec::with_capacity(targets.len());
        for d in &targets {
            let (last_seen, disks) = destinations::plan_facts(c, d.id)?;
            let disks: Vec<Disk> = disks
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default();
            let free: Vec<Free> = disks
                .iter()
                .map(|d| Free {
                    path: &d.path,
                    free: d.free,
                    cache: d.cache,
                })
                .collect();
            let inventory = if by_inventory && software::digest(c, d.id)?.is_some() {
                Some(software::of_destination(c, d.id)?)
            } else {
                None
            };
            let programs: Option<Vec<_>> = inventory
                .as_ref()
                .map(|l| l.iter().map(super::software::program).collect());
            let target = Target {
                status: d.status,
                os: d.os.as_deref(),
                last_seen,
                disks: &free,
                programs: programs.as_deref(),
            };
            let (verdict, reason) = plan::judge(&target, &work, now);
            verdicts.push((verdict, last_seen));
            rows.push(PlanRow {
                name: d.name.clone(),
                verdict,
                reason,
                os: d.os.clone(),
                last_seen: last_seen.map(rfc3339),
                transfer_done_at: None,
            });
        }
        let will_run = verdicts.iter().filter(|(v, _)| v.would_run()).count();
        // With a bandwidth, transfers go `max_transfers` at a time, sharing
        // it: each batch takes as long as its bytes at that rate.
        let start = req.at.filter(|at| *at > now).unwrap_or(now);
        let mut done_by = None;
        if let (Some(rate), runners) = (
            self.transfer_limits.0.filter(|r| *r > 0),
            verdicts
                .iter()
                .filter(|(v, _)| *v == plan::Verdict::Run)
                .count(),
        ) && runners > 0
        {
            let at_once = self.transfer_limits.1.unwrap_or(runners).clamp(1, runners);
            let batch = (at_once as u64 * pkg.size).div_ceil(rate) as i64;
            let mut k = 0usize;
            for (row, (v, _)) in rows.iter_mut().zip(&verdicts) {
                if *v == plan::Verdict::Run {
                    let at = start + (k / at_once + 1) as i64 * batch;
                    row.transfer_done_at = Some(rfc3339(at));
                    done_by = Some(at);
                    k += 1;
                }
            }
        }
        let transfers = done_by
            .map(|at| {
                format!(
                    ", transfers done in about {} at {}/s",
                    crate::task::stuck::age(at - start),
                    crate::model::human_size(self.transfer_limits.0.unwrap_or(0))
                )
            })
            .unwrap_or_default();
        let starts = match (req.at.filter(|at| *at > now), req.window.as_deref()) {
            (Some(at), Some(w)) => format!("starts {}, then only within {w}", rfc3339(at)),
            (Some(at), None) => format!("starts {}", rfc3339(at)),
            (None, Some(w)) if !crate::clock::in_window(w, now) => {
                format!("held until its window {w} opens (server time)")
            }
            (None, Some(w)) => format!("starts now, within its window {w}"),
            (None, None) => "starts now".into(),
        } + &transfers;
        Ok(Plan {
            summary: plan::summary(action, &verdicts, now),
            will_run,
            starts,
            destinations: rows,
        })
    }
}
