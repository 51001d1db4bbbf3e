//! The service as the admin API's handler: each request to the method
//! that answers it, each error to its kind.

use anyhow::Result;

use super::Service;
use crate::api::{ApiError, Handler, Request, Response, TaskChanges};
use crate::model::TaskId;
use crate::store::tasks;

impl Handler for Service {
    fn handle(&mut self, req: Request) -> Result<Response, ApiError> {
        self.answer(req).map_err(|e| ApiError::from_anyhow(&e))
    }

    fn recover(&mut self) {
        self.store.recover();
    }
}

impl Service {
    fn answer(&mut self, req: Request) -> Result<Response> {
        Ok(match req {
            Request::PackageAdd(r) => self.add_package(r)?.into(),
            Request::PackageList { all } => self.packages(all)?.into(),
            Request::PackageShow { id } => self.package(id)?.into(),
            Request::PackageEdit { id, edit } => self.edit_package(id, edit)?.into(),
            Request::PackageRm { id } => self.remove_package(id)?.into(),
            Request::TokenCreate { ttl, auto_approve } => {
                self.create_token(ttl, auto_approve)?.into()
            }
            Request::TokenList => self.tokens()?.into(),
            Request::TokenRevoke { id } => self.revoke_token(id)?.into(),
            Request::DestList => self.destinations()?.into(),
            Request::DestShow { name } => self.destination_detail(&name)?.into(),
            Request::SoftwareList { name } => self.software_titles(name.as_deref())?.into(),
            Request::DestApprove { name } => self.approve_destination(&name)?.into(),
            Request::DestReject { name } => self.reject_destination(&name)?.into(),
            Request::DestRm { name } => self
                .remove_destination(&name, "deleted by the administrator")?
                .into(),
            Request::DestMove {
                name,
                server,
                token,
            } => self.move_destination(&name, &server, &token)?.into(),
            Request::PolicyAdd(r) => self.add_policy(r)?.into(),
            Request::PolicyList => self.policies()?.into(),
            Request::PolicyShow { id } => self.policy(id)?.into(),
            Request::PolicyEdit { id, edit } => self.edit_policy(id, edit)?.into(),
            Request::PolicyRm { id } => self.remove_policy(id)?.into(),
            Request::TaskCreate(r) => self.create_task(r)?.into(),
            Request::TaskList => self.tasks()?.into(),
            Request::TaskShow { id } => self.task(id)?.into(),
            Request::TaskEditDestinations { id, to } => {
                self.edit_task_destinations(id, &to)?.into()
            }
            Request::TaskEditPackage { id, package } => self.edit_task_package(id, package)?.into(),
            Request::TaskCopy { id, to, name } => self.copy_task(id, to, name)?.into(),
            Request::TaskRerun { id, all, only } => {
                self.rerun_task_on(id, all, only.as_deref())?.into()
            }
            Request::TaskSummaries => self.task_summaries()?.into(),
            Request::TaskBrief { id } => self.task_brief(id)?.into(),
            Request::TaskDestination { id, name } => self.task_destination(id, &name)?.into(),
            Request::TaskChanges { id, since } => self.task_changes(id, since)?.into(),
            Request::Failures => self.failures()?.into(),
            Request::TaskPlan(req) => self.plan_task(&req)?.into(),
            Request::Status => self.status()?.into(),
            Request::TaskRm { id } => self.remove_task(id)?.into(),
            Request::TaskPause { id } => self.pause_task(id)?.into(),
            Request::TaskResume { id } => self.resume_task(id)?.into(),
            Request::Events { after, limit, tail } => match tail {
                Some(n) => self.events_tail(n)?.into(),
                None => self.events_since(after, limit)?.into(),
            },
        })
    }
}

impl Service {
    /// A task with the rows written after revision `since`, or all of
    /// them. A revision from the future (a store put back from a copy)
    /// is answered with the whole task.
    pub fn task_changes(&self, id: TaskId, since: Option<i64>) -> Result<TaskChanges> {
        let row = self.task_row(id)?;
        let mut task = self.task_view(row, None)?;
        let c = self.store.conn();
        let rev = tasks::revision(c)?;
        let now = self.judged_now();
        let since = since.filter(|s| *s <= rev);
        task.destinations = match since {
            Some(s) => tasks::destinations_since(c, id, s, &now)?,
            None => tasks::destinations(c, id, &now)?,
        };
        Ok(TaskChanges {
            task,
            rev,
            whole: since.is_none(),
        })
    }
}
