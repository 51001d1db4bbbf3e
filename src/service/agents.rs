//! Tokens, enrolment, destinations and the agent side of the protocol
//! (polls and reports) as rules of the server core.

use anyhow::{Result, anyhow, bail};

use super::Service;
use crate::exitcodes;
use crate::model::{Destination, DestinationId, Level, Token};
use crate::pki;
use crate::proto::{
    AgentInfo, EnrollRequest, EnrollResponse, MoveOrder, PollResponse, Report, ReportStatus,
};
use crate::store::{destinations, events, tasks, tokens};

/// Automatic retries of a transient failure before it counts as failed.
pub const MAX_RETRIES: i64 = 5;

/// Seconds before automatic retry `n` (0-based): 30 s, 1, 2, 4, 8 min.
pub fn retry_backoff(n: i64) -> i64 {
    30 << n.clamp(0, 8)
}

/// Destination names: what admins type in `--to`, so kept simple.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        bail!(
            "destination name '{name}': use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"
        );
    }
    Ok(())
}

impl Service {
    // ---- tokens ---------------------------------------------------------

    /// Creates an enrolment token valid for `ttl` seconds (None: no expiry).
    pub fn create_token(&mut self, ttl: Option<i64>, auto_approve: bool) -> Result<Token> {
        let fp = self.pki()?.ca_fingerprint();
        let (secret, token) = pki::new_token(&fp)?;
        let now = self.clock.now();
        let expires = ttl.map(|t| now + t);
        let ev = self.event(
            Level::Info,
            "token.created",
            String::new(),
            format!(
                "{}{}",
                if auto_approve { "auto-approving, " } else { "" },
                match expires {
                    Some(e) => format!("expires {}", crate::clock::rfc3339(e)),
                    None => "never expires".into(),
                }
            ),
        );
        let id = self.store.write(|tx| {
            let id = tokens::insert(
                tx,
                &pki::token_digest(secret.as_str()),
                auto_approve,
                expires,
                now,
            )?;
            events::append(
                tx,
                &crate::model::NewEvent {
                    subject: format!("token {id}"),
                    ..ev
                },
            )?;
            Ok(id)
        })?;
        let mut t =
            tokens::get(self.store.conn(), id)?.ok_or_else(|| anyhow!("token {id} vanished"))?;
        t.token = Some(token);
        Ok(t)
    }

    pub fn tokens(&self) -> Result<Vec<Token>> {
        tokens::list(self.store.conn())
    }

    /// Revokes a token: agents can no longer enrol with it. Agents already
    /// enrolled keep their certificates.
    pub fn revoke_token(&mut self, id: i64) -> Result<Token> {
        let now = self.clock.now();
        let ev = self.event(
            Level::Info,
            "token.revoked",
            format!("token {id}"),
            "revoked".into(),
        );
        let changed = self.store.write(|tx| {
            let changed = tokens::revoke(tx, id, now)?;
            if changed {
                events::append(tx, &ev)?;
            }
            Ok(changed)
        })?;
        let t = tokens::get(self.store.conn(), id)?
            .ok_or_else(|| anyhow!("token {id}: no such token"))?;
        if !changed && !t.revoked {
            bail!("token {id}: could not revoke");
        }
        Ok(t)
    }

    // ---- enrolment ------------------------------------------------------

    /// Enrols an agent: checks the token, signs its CSR, records it as a
    /// pending (or, with an auto-approving token, online) destination.
    /// A refusal is logged as an event and returned as one line for the
    /// agent to show.
    pub fn enroll(&mut self, req: EnrollRequest, peer: &str) -> Result<EnrollResponse> {
        match self.try_enroll(&req) {
            Ok(r) => Ok(r),
            Err(e) => {
                let ev = self.event(
                    Level::Warn,
                    "agent.refused",
                    format!("agent '{}'", req.name),
                    format!("enrolment from {peer} refused: {e:#}"),
                );
                let _ = self.store.write(|tx| events::append(tx, &ev));
                Err(e)
            }
        }
    }

    fn try_enroll(&mut self, req: &EnrollRequest) -> Result<EnrollResponse> {
        let (secret, fp) = pki::parse_token(&req.token)?;
        let (ours, ca_pem) = {
            let p = self.pki()?;
            (p.ca_fingerprint(), p.ca_pem().to_string())
        };
        if !fp.eq_ignore_ascii_case(&ours) {
            bail!("the token was made by another courier server (CA fingerprint differs)");
        }
        let now = self.clock.now();
        let tok = tokens::by_digest(self.store.conn(), &pki::token_digest(secret))?
            .ok_or_else(|| anyhow!("unknown token: create one with 'courier token create'"))?;
        if tok.revoked_at.is_some() {
            bail!("token {} was revoked: ask for a new one", tok.id);
        }
        if let Some(exp) = tok.expires_at.filter(|e| *e <= now) {
            bail!(
                "token {} expired at {}: ask for a new one",
                tok.id,
                crate::clock::rfc3339(exp)
            );
        }
        check_name(&req.name)?;
        if destinations::by_name(self.store.conn(), &req.name)?.is_some() {
            bail!(
                "a destination named '{}' is already enrolled: start the agent with another --name, or remove the old one (courier dest rm {})",
                req.name,
                req.name
            );
        }
        let (cert_pem, cert_fp) = self.pki()?.sign_agent(&req.csr_pem, &req.name)?;
        let status = if tok.auto_approve {
            "online"
        } else {
            "pending"
        };
        let ev = self.event(
            Level::Info,
            "agent.enrolled",
            format!("destination {}", req.name),
            format!(
                "{} ({}, {}) with token {}{}",
                req.info.hostname,
                req.info.os,
                req.info.agent_version,
                tok.id,
                if tok.auto_approve {
                    ", approved automatically"
                } else {
                    ", waiting for approval (courier dest approve NAME)"
                }
            ),
        );
        self.store.write(|tx| {
            destinations::insert(tx, &req.name, status, &req.info, &cert_fp, tok.id, now)?;
            tokens::used(tx, tok.id)?;
            events::append(tx, &ev)?;
            Ok(())
        })?;
        Ok(EnrollResponse {
            cert_pem,
            ca_pem,
            status: status.into(),
        })
    }

    /// Who a client certificate belongs to: (destination, status).
    pub fn agent_identity(&self, fingerprint: &str) -> Result<Option<(DestinationId, String)>> {
        destinations::by_fingerprint(self.store.conn(), fingerprint)
    }

    // ---- destinations ---------------------------------------------------

    pub fn destinations(&self) -> Result<Vec<Destination>> {
        destinations::list(self.store.conn())
    }

    pub fn destination(&self, name: &str) -> Result<Destination> {
        destinations::by_name(self.store.conn(), name)?
            .ok_or_else(|| anyhow!("destination '{name}': no such destination"))
    }

    fn set_destination_status(
        &mut self,
        name: &str,
        status: &str,
        kind: &'static str,
    ) -> Result<Destination> {
        let d = self.destination(name)?;
        let new = match status {
            // Approval makes it usable; whether it is connected shows at
            // its next poll.
            "online" if d.status == "pending" || d.status == "rejected" => "offline",
            "online" => return Ok(d),
            s => s,
        };
        if d.status == new {
            return Ok(d);
        }
        let ev = self.event(
            Level::Info,
            kind,
            format!("destination {name}"),
            format!("{} → {}", d.status, new),
        );
        self.store.write(|tx| {
            destinations::set_status(tx, d.id, new)?;
            events::append(tx, &ev)?;
            Ok(())
        })?;
        self.wake.push(d.id);
        self.destination(name)
    }

    pub fn approve_destination(&mut self, name: &str) -> Result<Destination> {
        self.set_destination_status(name, "online", "agent.approved")
    }

    pub fn reject_destination(&mut self, name: &str) -> Result<Destination> {
        self.set_destination_status(name, "rejected", "agent.rejected")
    }

    /// Orders a destination to move to another management server: at its
    /// next poll the agent enrols there with `token`, then leaves this
    /// server, which then drops it from its tasks as if it were deleted.
    pub fn move_destination(
        &mut self,
        name: &str,
        server: &str,
        token: &str,
    ) -> Result<Destination> {
        let d = self.destination(name)?;
        pki::parse_token(token)?;
        if server.trim().is_empty() || !server.contains(':') {
            bail!("--server '{server}': give HOST:PORT of the other server");
        }
        let ev = self.event(
            Level::Info,
            "agent.moving",
            format!("destination {name}"),
            format!("ordered to move to {server}; it leaves at its next contact"),
        );
        self.store.write(|tx| {
            destinations::set_move(tx, d.id, server, token)?;
            events::append(tx, &ev)?;
            Ok(())
        })?;
        self.wake.push(d.id);
        self.destination(name)
    }

    /// An agent reports it enrolled elsewhere as ordered.
    pub fn agent_left(&mut self, dest: DestinationId) -> Result<()> {
        let Some(d) = destinations::by_id(self.store.conn(), dest)? else {
            return Ok(());
        };
        let Some((server, _)) = destinations::move_order(self.store.conn(), dest)? else {
            bail!("destination {} was not ordered to move", d.name);
        };
        self.remove_destination(&d.name, &format!("moved to {server}"))
            .map(|_| ())
    }

    /// Marks destinations not heard from for `stale` seconds offline.
    pub fn mark_offline(&mut self, stale: i64) -> Result<Vec<String>> {
        let now = self.clock.now();
        let names = self
            .store
            .write(|tx| destinations::mark_stale_offline(tx, now - stale))?;
        for n in &names {
            let ev = self.event(
                Level::Info,
                "agent.offline",
                format!("destination {n}"),
                format!("no contact for {stale} s"),
            );
            self.store.write(|tx| events::append(tx, &ev))?;
        }
        Ok(names)
    }

    // ---- agent protocol -------------------------------------------------

    /// A poll: records that the agent is alive and returns its work.
    pub fn poll(&mut self, dest: DestinationId, info: &AgentInfo) -> Result<PollResponse> {
        let now = self.clock.now();
        let d = destinations::by_id(self.store.conn(), dest)?
            .ok_or_else(|| anyhow!("destination {dest} was removed"))?;
        if d.status == "pending" || d.status == "rejected" {
            return Ok(PollResponse {
                status: d.status,
                ..PollResponse::default()
            });
        }
        let back = self
            .store
            .write(|tx| destinations::seen(tx, dest, info, now))?;
        if back {
            let ev = self.event(
                Level::Info,
                "agent.online",
                format!("destination {}", d.name),
                format!("{} {}", info.os, info.agent_version),
            );
            self.store.write(|tx| events::append(tx, &ev))?;
        }
        let move_to = destinations::move_order(self.store.conn(), dest)?
            .map(|(server, token)| MoveOrder { server, token });
        Ok(PollResponse {
            status: "online".into(),
            assignments: if move_to.is_some() {
                Vec::new()
            } else {
                tasks::assignments_for(self.store.conn(), dest, now)?
            },
            move_to,
        })
    }

    /// Applies an agent's report. Idempotent: a report for another attempt,
    /// or for a destination already finished, changes nothing.
    pub fn report(&mut self, dest: DestinationId, r: &Report) -> Result<()> {
        let now = self.clock.now();
        let Some((status, attempt, retries)) = tasks::state(self.store.conn(), r.task_id, dest)?
        else {
            return Ok(());
        };
        let finished = matches!(status.as_str(), "succeeded" | "failed" | "cancelled");
        if r.attempt != attempt || finished {
            return Ok(());
        }
        if !r.status.is_final() {
            return self.store.write(|tx| {
                tasks::set_progress(tx, r.task_id, dest, r.status.as_str(), r.transferred, now)
            });
        }
        let task = tasks::get(self.store.conn(), r.task_id)?
            .ok_or_else(|| anyhow!("task {} vanished", r.task_id))?;
        let dname = destinations::by_id(self.store.conn(), dest)?
            .map(|d| d.name)
            .unwrap_or_else(|| dest.to_string());
        let what = describe_outcome(r);
        if r.status == ReportStatus::Failed && r.retry && retries < MAX_RETRIES {
            let wait = retry_backoff(retries);
            let msg = format!(
                "{what}; automatic retry {}/{MAX_RETRIES} after {}",
                retries + 1,
                crate::clock::rfc3339(now + wait)
            );
            let ev = self.event(
                Level::Warn,
                "task.retry",
                format!("task {}", task.id),
                format!("{dname}: {msg}"),
            );
            return self.store.write(|tx| {
                tasks::requeue(
                    tx,
                    task.id,
                    dest,
                    Some(now + wait),
                    true,
                    Some(&msg),
                    r.exit_code,
                    now,
                )?;
                events::append(tx, &ev)?;
                Ok(())
            });
        }
        let outcome = tasks::Outcome {
            status: r.status.as_str(),
            exit_code: r.exit_code,
            message: r.message.as_deref(),
            output: r.output.as_deref(),
            transferred: r.transferred,
            reboot_required: r.reboot_required,
        };
        let (level, kind) = match r.status {
            ReportStatus::Failed => (Level::Error, "task.failed"),
            _ => (Level::Info, "task.succeeded"),
        };
        let ev = self.event(
            level,
            kind,
            format!("task {}", task.id),
            format!("'{}' on {dname}: {what}", task.name),
        );
        self.store.write(|tx| {
            tasks::finish(tx, task.id, dest, &outcome, now)?;
            events::append(tx, &ev)?;
            super::task_rules::complete_if_done(tx, self.clock.now(), task.id, &task.name)?;
            Ok(())
        })
    }

    /// Seconds until held-back work of `dest` may start: a start time or
    /// retry backoff, or a minute when a daily window holds work (windows
    /// open on the minute). None when nothing is held.
    pub fn next_due_in(&self, dest: DestinationId) -> Result<Option<i64>> {
        let now = self.clock.now();
        let (due, windowed) = tasks::next_due(self.store.conn(), dest, now)?;
        let until_due = due.map(|d| d - now);
        Ok(match (until_due, windowed) {
            (Some(s), true) => Some(s.min(60)),
            (None, true) => Some(60),
            (s, false) => s,
        })
    }

    /// Whether `dest` may download `hash` now.
    pub fn may_fetch(&self, dest: DestinationId, hash: &str) -> Result<bool> {
        tasks::may_fetch(self.store.conn(), dest, hash)
    }
}

/// One line for the log: status, exit code and what it means, message.
fn describe_outcome(r: &Report) -> String {
    let mut s = r.status.as_str().to_string();
    let message = r.message.as_deref().filter(|m| !m.is_empty());
    if let Some(code) = r.exit_code {
        // The agent's message often starts with the code already.
        let said = message.is_some_and(|m| m.starts_with(&format!("exit {code}")));
        if !said {
            s.push_str(&format!(", exit {code}"));
            if let Some(m) = exitcodes::meaning(code) {
                s.push_str(&format!(" ({m})"));
            }
        }
    }
    if r.reboot_required && !message.is_some_and(|m| m.contains("reboot")) {
        s.push_str(", reboot required");
    }
    if let Some(m) = message {
        s.push_str(": ");
        s.push_str(m);
    }
    s
}
