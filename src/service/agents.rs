//! Tokens, enrolment, destinations and the agent side of the protocol
//! (polls and reports) as rules of the server core.

use anyhow::{Result, anyhow, bail};

use super::{Service, not_found};
use crate::model::{Destination, DestinationId, Level, Token};
use crate::pki;
use crate::proto::{
    AgentInfo, Assignment, EnrollRequest, EnrollResponse, MoveOrder, PackageRef, PollResponse,
    Removal, RenewResponse, Report, Work,
};
use crate::store::destinations::Host;
use crate::store::{destinations, events, tasks, tokens, work};
use crate::task::detect::Detection;
use crate::task::outcome::{Ending, Verdict};
use crate::task::policy;
use crate::task::rules::{self, Effect, Reported};
use crate::task::{Action, DestStatus, WorkState};

#[cfg(test)]
pub use crate::task::rules::{MAX_RETRIES, retry_backoff};

fn host(info: &AgentInfo) -> Host<'_> {
    Host {
        os: &info.os,
        hostname: &info.hostname,
        agent_version: &info.agent_version,
        command_timeout: info.command_timeout,
        disks: None,
    }
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
        // Not echoed as sent: it may be megabytes, or terminal escapes.
        let shown: String = name
            .chars()
            .take(64)
            .map(|c| if c.is_ascii_graphic() { c } else { '?' })
            .collect();
        let more = if name.chars().count() > 64 { "…" } else { "" };
        bail!(
            "destination name '{shown}{more}' ({} bytes): use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit",
            name.len()
        );
    }
    Ok(())
}

/// What an agent says of its computer, as it is shown in the log and
/// lists: bounded, and without control characters.
pub fn check_info(info: &crate::proto::AgentInfo) -> Result<()> {
    for (what, v, max) in [
        ("os", &info.os, 64),
        ("hostname", &info.hostname, 255),
        ("agent version", &info.agent_version, 64),
    ] {
        if v.len() > max || v.chars().any(char::is_control) {
            bail!("{what}: at most {max} bytes, no control characters");
        }
    }
    if info.disks.len() > crate::proto::MAX_DISKS {
        bail!("disks: at most {} volumes", crate::proto::MAX_DISKS);
    }
    for d in &info.disks {
        if d.path.len() > 1024 || d.path.chars().any(char::is_control) {
            bail!("disk path: at most 1024 bytes, no control characters");
        }
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
            .ok_or_else(|| not_found(format!("token {id}: no such token")))?;
        if !changed && !t.revoked {
            bail!("token {id}: could not revoke");
        }
        Ok(t)
    }

    // ---- enrolment ------------------------------------------------------

    /// Enrols an agent: checks the token, signs its CSR, records it as a
    /// pending (or, with an auto-approving token, online) destination.
    /// A refusal is returned as one line for the agent to show; the
    /// listener logs it ([`Service::log_refused`]), the first of an
    /// address in a minute on its own and the rest counted
    /// (`server/guard.rs`).
    pub fn enroll(&mut self, req: EnrollRequest) -> Result<EnrollResponse> {
        self.try_enroll(&req)
    }

    /// Logs one refused enrolment of an agent calling itself `name`.
    pub fn log_refused(&mut self, name: &str, peer: &str, why: &str) -> Result<()> {
        // The name is the peer's: shown only once it passed the rules,
        // never as sent.
        let subject = match check_name(name) {
            Ok(()) => format!("agent '{name}'"),
            Err(_) => "agent with an invalid name".to_string(),
        };
        let ev = self.event(
            Level::Warn,
            "agent.refused",
            subject,
            format!("enrolment from {peer} refused: {why}"),
        );
        self.store.write(|tx| events::append(tx, &ev))?;
        Ok(())
    }

    /// Logs the enrolments refused from `addr` in a minute beyond those
    /// logged on their own.
    pub fn log_refusals(&mut self, addr: &str, more: u32) -> Result<()> {
        let ev = self.event(
            Level::Warn,
            "agent.refused",
            format!("address {addr}"),
            format!(
                "{more} more refused enrolment{} from {addr} in the last minute",
                if more == 1 { "" } else { "s" }
            ),
        );
        self.store.write(|tx| events::append(tx, &ev))?;
        Ok(())
    }

    fn try_enroll(&mut self, req: &EnrollRequest) -> Result<EnrollResponse> {
        check_name(&req.name)?;
        check_info(&req.info)?;
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
        if destinations::by_name(self.store.conn(), &req.name)?.is_some() {
            return Err(super::conflict(format!(
                "a destination named '{}' is already enrolled: start the agent with another --name, or remove the old one (courier dest rm {})",
                req.name, req.name
            )));
        }
        let signed = self.pki()?.sign_agent(&req.csr_pem, &req.name, now)?;
        let status = if tok.auto_approve {
            DestStatus::Online
        } else {
            DestStatus::Pending
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
            let id = destinations::insert(
                tx,
                &req.name,
                status,
                host(&req.info),
                &signed.fingerprint,
                tok.id,
                now,
            )?;
            destinations::set_certificate(
                tx,
                id,
                &signed.fingerprint,
                None,
                signed.validity.not_after,
            )?;
            tokens::used(tx, tok.id)?;
            events::append(tx, &ev)?;
            Ok(())
        })?;
        Ok(EnrollResponse {
            cert_pem: signed.cert_pem,
            ca_pem,
            status,
        })
    }

    /// Who a client certificate belongs to: (destination, status).
    pub fn agent_identity(&self, fingerprint: &str) -> Result<Option<(DestinationId, DestStatus)>> {
        destinations::by_fingerprint(self.store.conn(), fingerprint)
    }

    /// Signs a new certificate for the agent of `dest`, which asked with
    /// the certificate whose fingerprint is `asked_with`. The new one is
    /// the destination's from now on; the one it asked with stays accepted
    /// until it expires, so an agent that dies before it saved the new
    /// certificate goes on with the old (and renews again), and requests
    /// and downloads under way with the old one finish. Any other
    /// certificate of the destination (one a renewal signed and the agent
    /// never saved) is no longer accepted.
    pub fn renew_certificate(
        &mut self,
        dest: DestinationId,
        asked_with: &str,
        csr_pem: &str,
    ) -> Result<RenewResponse> {
        let now = self.clock.now();
        let d = destinations::by_id(self.store.conn(), dest)?
            .ok_or_else(|| anyhow!("destination {dest} was removed"))?;
        let signed = self.pki()?.sign_agent(csr_pem, &d.name, now)?;
        let ev = self.event(
            Level::Info,
            "agent.renewed",
            format!("destination {}", d.name),
            format!(
                "new certificate, valid until {}",
                crate::clock::rfc3339(signed.validity.not_after)
            ),
        );
        self.store.write(|tx| {
            destinations::set_certificate(
                tx,
                dest,
                &signed.fingerprint,
                Some(asked_with),
                signed.validity.not_after,
            )?;
            events::append(tx, &ev)?;
            Ok(())
        })?;
        Ok(RenewResponse {
            cert_pem: signed.cert_pem,
        })
    }

    /// Issues a new server certificate when the one the listener presents
    /// is due (`pki::ServerPki::refresh_server`), with its event.
    pub fn refresh_server_cert(&mut self) -> Result<()> {
        let now = self.clock.now();
        if let Some(v) = self.pki()?.refresh_server(now)? {
            let ev = self.event(
                Level::Info,
                "server.certificate",
                String::new(),
                format!(
                    "new server certificate, valid until {}",
                    crate::clock::rfc3339(v.not_after)
                ),
            );
            self.store.write(|tx| events::append(tx, &ev))?;
        }
        Ok(())
    }

    // ---- destinations ---------------------------------------------------

    pub fn destinations(&self) -> Result<Vec<Destination>> {
        destinations::list(self.store.conn())
    }

    pub fn destination(&self, name: &str) -> Result<Destination> {
        destinations::by_name(self.store.conn(), name)?
            .ok_or_else(|| not_found(format!("destination '{name}': no such destination")))
    }

    /// Applies an admin's decision on a destination: `rule` gives its new
    /// status, or None when the decision changes nothing.
    fn decide_destination(
        &mut self,
        name: &str,
        rule: fn(DestStatus) -> Option<DestStatus>,
        kind: &'static str,
    ) -> Result<Destination> {
        let d = self.destination(name)?;
        let Some(new) = rule(d.status) else {
            return Ok(d);
        };
        let ev = self.event(
            Level::Info,
            kind,
            format!("destination {name}"),
            format!("{} → {}", d.status, new),
        );
        // A rejected destination gets no more work: what it had left
        // ends cancelled, so its tasks can complete.
        let affected = if new == DestStatus::Rejected {
            tasks::of_destination(self.store.conn(), d.id)?
        } else {
            Vec::new()
        };
        let now = self.clock.now();
        let wake = self.store.write(|tx| {
            destinations::set_status(tx, d.id, new)?;
            events::append(tx, &ev)?;
            let mut wake = Vec::new();
            for (tid, tname, _) in &affected {
                if tasks::cancel(tx, *tid, d.id, "the destination was rejected", now)? {
                    wake.extend(super::task_rules::complete_if_done(tx, now, *tid, tname)?);
                }
            }
            Ok(wake)
        })?;
        self.wake.extend(wake);
        self.wake.push(d.id);
        self.destination(name)
    }

    pub fn approve_destination(&mut self, name: &str) -> Result<Destination> {
        self.decide_destination(name, rules::approve, "agent.approved")
    }

    pub fn reject_destination(&mut self, name: &str) -> Result<Destination> {
        self.decide_destination(name, rules::reject, "agent.rejected")
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

    /// Marks destinations not heard from for `stale` seconds offline, each
    /// with its event, in one transaction.
    pub fn mark_offline(&mut self, stale: i64) -> Result<Vec<String>> {
        let now = self.clock.now();
        self.store.write(|tx| {
            let mut names = Vec::new();
            for (id, name, status) in destinations::silent_since(tx, now - stale)? {
                let Some(new) = rules::on_silence(status) else {
                    continue;
                };
                destinations::set_status(tx, id, new)?;
                names.push(name);
            }
            for n in &names {
                events::append(
                    tx,
                    &crate::model::NewEvent {
                        at: now,
                        level: Level::Info,
                        kind: "agent.offline",
                        subject: format!("destination {n}"),
                        message: format!("no contact for {stale} s"),
                    },
                )?;
            }
            Ok(names)
        })
    }

    // ---- agent protocol -------------------------------------------------

    /// A poll: records that the agent is alive and returns its work.
    pub fn poll(&mut self, dest: DestinationId, info: &AgentInfo) -> Result<PollResponse> {
        let now = self.clock.now();
        let d = destinations::by_id(self.store.conn(), dest)?
            .ok_or_else(|| anyhow!("destination {dest} was removed"))?;
        if !d.status.is_approved() {
            return Ok(PollResponse {
                status: d.status,
                assignments: Vec::new(),
                move_to: None,
                next_poll_secs: None,
            });
        }
        let ev = self.event(
            Level::Info,
            "agent.online",
            format!("destination {}", d.name),
            format!("{} {}", info.os, info.agent_version),
        );
        let disks = (!info.disks.is_empty())
            .then(|| serde_json::to_string(&info.disks))
            .transpose()?;
        self.store.write(|tx| {
            let h = Host {
                disks: disks.as_deref(),
                ..host(info)
            };
            destinations::seen(tx, dest, h, now)?;
            if let Some(new) = rules::on_contact(d.status) {
                destinations::set_status(tx, dest, new)?;
                events::append(tx, &ev)?;
            }
            Ok(())
        })?;
        let move_to = destinations::move_order(self.store.conn(), dest)?
            .map(|(server, token)| MoveOrder { server, token });
        Ok(PollResponse {
            status: DestStatus::Online,
            assignments: if move_to.is_some() {
                Vec::new()
            } else {
                self.assignments(dest, now)?
            },
            move_to,
            next_poll_secs: None,
        })
    }

    /// The work `dest` should be doing now, as the agent receives it.
    pub(super) fn assignments(&self, dest: DestinationId, now: i64) -> Result<Vec<Assignment>> {
        Ok(work::work_for(self.store.conn(), dest, now)?
            .into_iter()
            .filter(|w| !rules::held_by_window(w.state, w.window.as_deref(), now))
            .filter_map(|w| {
                let (action, work) = match (w.package, w.command) {
                    (None, Some(command)) => (
                        Action::Uninstall,
                        Work::Removal(Removal {
                            name: w.task_name.clone(),
                            command,
                            success_codes: policy::REMOVAL_SUCCESS_CODES.to_vec(),
                        }),
                    ),
                    (Some(p), command) => {
                        let action = rules::action_for(w.task_type, p.kind);
                        let command = command.or(match action {
                            Action::Install => p.install_command,
                            Action::Uninstall => p.uninstall_command,
                            Action::Distribute => None,
                        });
                        let package = PackageRef {
                            id: p.id,
                            name: p.name,
                            hash: p.hash,
                            size: p.size,
                            format: p.format,
                            file_name: p.file_name,
                            command,
                            folder: p.folder,
                            success_codes: p.success_codes,
                            detect: p.detect,
                        };
                        (action, Work::Package(package))
                    }
                    (None, None) => return None,
                };
                Some(Assignment {
                    task_id: w.task_id,
                    task_name: w.task_name,
                    attempt: w.attempt,
                    action,
                    work,
                    force: w.force,
                })
            })
            .collect())
    }

    /// Applies an agent's report. Idempotent: a report for another attempt,
    /// or for a destination already finished, changes nothing.
    pub fn report(&mut self, dest: DestinationId, r: &Report) -> Result<()> {
        let now = self.clock.now();
        let Some(cur) = tasks::state(self.store.conn(), r.task_id, dest)? else {
            return Ok(());
        };
        let reported = Reported {
            attempt: r.attempt,
            state: r.status.state(),
            transient: r.retry,
        };
        let effect = rules::apply_report(cur, reported, now);
        if let Effect::Progress(state) = effect {
            // While a command runs, the agent's progress carries its output
            // tail so far: kept on the row until the final output replaces it.
            let progress = tasks::Progress {
                state,
                transferred: r.transferred,
                output: r.output.as_deref(),
            };
            return self
                .store
                .write(|tx| tasks::set_progress(tx, r.task_id, dest, &progress, now));
        }
        if effect == Effect::Ignore {
            return Ok(());
        }
        let task = tasks::get(self.store.conn(), r.task_id)?
            .ok_or_else(|| anyhow!("task {} vanished", r.task_id))?;
        let dname = destinations::by_id(self.store.conn(), dest)?
            .map(|d| d.name)
            .unwrap_or_else(|| dest.to_string());
        let action = match task.kind {
            crate::task::TaskType::Uninstall => Action::Uninstall,
            crate::task::TaskType::Install => Action::Install,
        };
        let ending = ending(r, action);
        let message = ending.message();
        let meaning = r
            .exit_code
            .and_then(crate::task::outcome::meaning)
            .map(str::to_string);
        let what = format!("{}{}", r.status.as_str(), ending.describe());
        match effect {
            Effect::RetryAt { at, retry } => {
                let msg = format!(
                    "{what}; automatic retry {retry}/{} after {}",
                    rules::MAX_RETRIES,
                    crate::clock::rfc3339(at)
                );
                let ev = self.event(
                    Level::Warn,
                    "task.retry",
                    format!("task {}", task.id),
                    format!("{dname}: {msg}"),
                );
                self.store.write(|tx| {
                    let why = tasks::Requeue::Retry {
                        at,
                        message: &msg,
                        exit_code: r.exit_code,
                        meaning: meaning.as_deref(),
                    };
                    tasks::requeue(tx, task.id, dest, &why, now)?;
                    events::append(tx, &ev)?;
                    Ok(())
                })
            }
            Effect::Finish(state) => {
                let outcome = tasks::Outcome {
                    state,
                    exit_code: r.exit_code,
                    message: message.as_deref(),
                    meaning: meaning.as_deref(),
                    output: r.output.as_deref(),
                    transferred: r.transferred,
                    reboot_required: r.reboot_required,
                    detection: r.detection,
                    log: r.log.as_deref().map(|l| tail(l, crate::proto::LOG_TAIL)),
                };
                let (level, kind) = match state {
                    WorkState::Failed => (Level::Error, "task.failed"),
                    _ => (Level::Info, "task.succeeded"),
                };
                let ev = self.event(
                    level,
                    kind,
                    format!("task {}", task.id),
                    format!("'{}' on {dname}: {what}", task.name),
                );
                let wake = self.store.write(|tx| {
                    tasks::finish(tx, task.id, dest, &outcome, now)?;
                    events::append(tx, &ev)?;
                    super::task_rules::complete_if_done(tx, now, task.id, &task.name)
                })?;
                self.wake.extend(wake);
                Ok(())
            }
            Effect::Ignore | Effect::Progress(_) => Ok(()),
        }
    }

    /// Seconds until held-back work of `dest` may start. None when
    /// nothing is held.
    pub fn next_due_in(&self, dest: DestinationId) -> Result<Option<i64>> {
        let now = self.clock.now();
        let (due, windowed) = work::next_due(self.store.conn(), dest, now)?;
        Ok(rules::next_due_in(due, windowed, now))
    }

    /// Whether `dest` may download `hash` now.
    pub fn may_fetch(&self, dest: DestinationId, hash: &str) -> Result<bool> {
        work::may_fetch(self.store.conn(), dest, hash)
    }
}

/// How a reported attempt ended, from the report's data: an exit code
/// with the verdict the agent reached, or a stop without one.
fn ending(r: &Report, action: Action) -> Ending<'_> {
    let said = r.message.as_deref().filter(|m| !m.is_empty());
    if let Some(detection) = r.detection.filter(|d| *d != Detection::Verified) {
        return Ending::Detected {
            code: r.exit_code,
            detection,
            action,
            said,
        };
    }
    match r.exit_code {
        Some(code) => Ending::Exited {
            code,
            verdict: match (r.status.state(), r.retry, r.reboot_required) {
                (WorkState::Succeeded, _, true) => Verdict::SuccessRebootRequired,
                (WorkState::Succeeded, _, false) => Verdict::Success,
                (_, true, _) => Verdict::RetryLater,
                _ => Verdict::Failure,
            },
            said,
        },
        None => Ending::Stopped { reason: said },
    }
}

/// At most the last `max` bytes of `s`, cut at a character boundary: what
/// an agent sends is kept no longer than what an honest one would send.
fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
