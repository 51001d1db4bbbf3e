//! Output: every reply the CLI prints goes through [`emit`], as pretty JSON
//! under `--json` or as the text form its [`Render`] impl gives.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::api::ErrorKind;
use crate::model::human_size;
use crate::model::{
    Destination, Event, Kind, Package, Policy, SoftwareTitle, Status, Task, TaskDestination, Token,
};
use crate::task::{TaskClass, WorkState};

/// A reply as the CLI prints it.
pub trait Render: Serialize {
    /// The form for people.
    fn text(&self, out: &mut dyn Write) -> Result<()>;

    /// The form for scripts under `--json`: one pretty JSON document.
    fn json(&self, out: &mut dyn Write) -> Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        writeln!(out)?;
        Ok(())
    }
}

/// Prints a reply as JSON or as text.
pub fn emit<T: Render + ?Sized>(out: &mut dyn Write, value: &T, json: bool) -> Result<()> {
    if json {
        value.json(out)
    } else {
        let mut text = Vec::new();
        value.text(&mut text)?;
        out.write_all(printable(&String::from_utf8_lossy(&text)).as_bytes())?;
        Ok(())
    }
}

/// Text for a terminal. Names, messages and output come from agents and
/// installers: a control character in them (an escape sequence that
/// retitles the window, clears the screen or recolours it) is shown as
/// `\u{1b}` instead of acting. Newlines and tabs stay.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let acts = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !s.chars().any(acts) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if acts(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// What kind of failure a script is told under `--json`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The command line itself was wrong (exit code 2).
    Usage,
    /// The command failed (exit code 1), with the admin API's kind:
    /// `not_found`, `refused`, `conflict`, `link_lost`, `internal`.
    #[serde(untagged)]
    Api(ErrorKind),
}

/// A failure as printed under `--json`: one line, so stderr holds one
/// JSON document a script can parse.
#[derive(Serialize)]
struct FailureLine<'a> {
    error: &'a str,
    kind: Failure,
}

/// Prints a failure on stderr: `courier: what`, or under `--json` the
/// object `{"error": what, "kind": …}` on one line.
pub fn failure(kind: Failure, what: &str, json: bool) {
    let mut err = std::io::stderr().lock();
    let _ = if json {
        let line = serde_json::to_string(&FailureLine { error: what, kind })
            .unwrap_or_else(|_| format!("{{\"error\": {what:?}, \"kind\": \"internal\"}}"));
        writeln!(err, "{line}")
    } else {
        writeln!(err, "courier: {}", printable(what))
    };
}

/// A reply after a change, shown as a line saying what was done followed by
/// the usual text of the value; its JSON is the value's alone.
#[derive(Serialize)]
#[serde(transparent)]
pub struct Headed<'a, T> {
    #[serde(skip)]
    pub head: String,
    pub value: &'a T,
}

impl<T: Render> Render for Headed<'_, T> {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        writeln!(out, "{}", self.head)?;
        self.value.text(out)
    }
}

/// A reply after a change, shown as one line saying what was done (what is
/// gone or revoked is not worth showing); its JSON is the value's alone.
#[derive(Serialize)]
#[serde(transparent)]
pub struct Done<'a, T> {
    #[serde(skip)]
    pub line: String,
    pub value: &'a T,
}

impl<T: Serialize> Render for Done<'_, T> {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        writeln!(out, "{}", self.line)?;
        Ok(())
    }
}

impl Render for Package {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        let p = self;
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let mut rows: Vec<(&str, String)> = vec![
            ("id", p.id.to_string()),
            ("name", p.name.clone()),
            ("version", opt(&p.version)),
            ("kind", p.kind.as_str().into()),
            ("format", p.format.to_string()),
            ("file", p.file_name.clone()),
            ("size", format!("{} ({} bytes)", human_size(p.size), p.size)),
        ];
        if let Some(u) = p.unzipped_size {
            rows.push((
                "unzipped",
                format!("{} in {} files", human_size(u), p.entries.unwrap_or(0)),
            ));
        }
        if let Some(i) = &p.installer {
            rows.push(("installer", i.clone()));
        }
        if let Some(c) = &p.product_code {
            rows.push(("product code", c.clone()));
        }
        rows.extend([
            ("install", opt(&p.install_command)),
            ("uninstall", opt(&p.uninstall_command)),
            ("folder", opt(&p.folder)),
            (
                "success codes",
                p.success_codes
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]);
        // One rule a line: a rule may be long (a command, a hash).
        if p.detect.is_empty() {
            rows.push(("detect", "- (the exit code alone decides)".into()));
        }
        for (i, r) in p.detect.iter().enumerate() {
            rows.push((if i == 0 { "detect" } else { "" }, r.clone()));
        }
        rows.extend([
            ("blake3", p.hash.clone()),
            ("sha256", p.sha256.clone()),
            ("registered", p.created_at.clone()),
            ("updated", p.updated_at.clone()),
        ]);
        for (k, v) in rows {
            writeln!(out, "{k:<14} {v}")?;
        }
        Ok(())
    }
}

impl Render for Vec<Package> {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        if self.is_empty() {
            writeln!(
                out,
                "no packages (register one with: courier package add FILE)"
            )?;
            return Ok(());
        }
        let rows: Vec<Vec<String>> = self
            .iter()
            .map(|p| {
                let action = match p.kind {
                    Kind::Install => p.install_command.clone().unwrap_or_default(),
                    Kind::File => format!("→ {}", p.folder.as_deref().unwrap_or("")),
                };
                vec![
                    p.id.to_string(),
                    p.name.clone(),
                    p.version.clone().unwrap_or_else(|| "-".into()),
                    p.kind.as_str().into(),
                    p.format.to_string(),
                    human_size(p.size),
                    action,
                ]
            })
            .collect();
        table(
            out,
            &[
                "ID",
                "NAME",
                "VERSION",
                "KIND",
                "FORMAT",
                "SIZE",
                "COMMAND / FOLDER",
            ],
            &rows,
        )
    }
}

/// A token as its creator needs it: only the secret on stdout, so a script
/// can capture it, and how to use it on stderr. Only a token just created
/// carries its secret.
impl Render for Token {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        let t = self;
        writeln!(out, "{}", t.token.as_deref().unwrap_or(""))?;
        eprintln!(
            "token {}: {}{}; on each destination run: courier agent --server HOST:PORT --token TOKEN",
            t.id,
            match &t.expires_at {
                Some(e) => format!("valid until {e}"),
                None => "never expires".into(),
            },
            if t.auto_approve {
                ", agents approved at once"
            } else {
                ", agents wait for 'courier dest approve'"
            }
        );
        Ok(())
    }
}

impl Render for Vec<Token> {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        let rows: Vec<Vec<String>> = self
            .iter()
            .map(|t| {
                vec![
                    t.id.to_string(),
                    if t.revoked { "revoked" } else { "active" }.into(),
                    t.expires_at.clone().unwrap_or_else(|| "never".into()),
                    if t.auto_approve { "yes" } else { "no" }.into(),
                    t.uses.to_string(),
                ]
            })
            .collect();
        table(
            out,
            &["ID", "STATE", "EXPIRES", "AUTO-APPROVE", "USES"],
            &rows,
        )
    }
}

impl Render for Destination {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        let d = self;
        let rows = [
            ("name", d.name.clone()),
            ("status", d.status.to_string()),
            ("os", d.os.clone().unwrap_or_default()),
            ("hostname", d.hostname.clone().unwrap_or_default()),
            ("agent", d.agent_version.clone().unwrap_or_default()),
            (
                "last seen",
                d.last_seen.clone().unwrap_or_else(|| "-".into()),
            ),
            ("enrolled", d.enrolled_at.clone()),
            (
                "certificate",
                match &d.cert_expires_at {
                    Some(t) => format!("valid until {t}"),
                    None => "no expiry (signed before certificates expired)".into(),
                },
            ),
            ("unfinished", d.running_work.to_string()),
        ];
        for (k, v) in rows {
            writeln!(out, "{k:<11} {v}")?;
        }
        if let Some(software) = &d.software {
            writeln!(out, "software    {} programs", software.len())?;
            if !software.is_empty() {
                let rows: Vec<Vec<String>> = software
                    .iter()
                    .map(|s| {
                        vec![
                            format!("  {}", printable(&s.name)),
                            printable(s.version.as_deref().unwrap_or("-")).into_owned(),
                            s.source.clone(),
                            printable(s.publisher.as_deref().unwrap_or("-")).into_owned(),
                        ]
                    })
                    .collect();
                table(out, &["  NAME", "VERSION", "SOURCE", "PUBLISHER"], &rows)?;
            }
        }
        Ok(())
    }
}

impl Render for Vec<SoftwareTitle> {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        if self.is_empty() {
            writeln!(
                out,
                "no software listed (agents send their inventory once they are approved)"
            )?;
            return Ok(());
        }
        let mut rows = Vec::new();
        for t in self {
            for v in &t.versions {
                rows.push(vec![
                    printable(&t.name).into_owned(),
                    printable(v.version.as_deref().unwrap_or("-")).into_owned(),
                    v.destinations.len().to_string(),
                    v.destinations.join(", "),
                ]);
            }
        }
        table(out, &["NAME", "VERSION", "COUNT", "DESTINATIONS"], &rows)
    }
}

impl Render for Policy {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        let p = self;
        writeln!(out, "policy {} '{}': {}", p.id, p.name, p.kind)?;
        let rule = match p.kind {
            crate::task::PolicyKind::Mandatory => format!(
                "{} required{}",
                p.software.as_deref().unwrap_or_default(),
                p.min_version
                    .as_deref()
                    .map(|v| format!(", {v} or later"))
                    .unwrap_or_default()
            ),
            crate::task::PolicyKind::Prohibited => format!(
                "programs matching '{}' prohibited",
                p.software.as_deref().unwrap_or_default()
            ),
            crate::task::PolicyKind::Update => format!(
                "update '{}' on every destination",
                p.software.as_deref().unwrap_or_default()
            ),
        };
        writeln!(out, "rule        {rule}")?;
        if let Some(pkg) = p.package {
            writeln!(out, "package     {pkg}")?;
        }
        writeln!(
            out,
            "enforced    {}",
            match (p.enforce, p.task) {
                (true, Some(t)) => format!("yes, by task {t}"),
                (true, None) => "yes (no countermeasure needed yet)".into(),
                (false, _) => "no: violations are shown, nothing is done".into(),
            }
        )?;
        if p.violations.is_empty() {
            writeln!(out, "violations  none")?;
        } else {
            writeln!(out, "violations  {}", p.violations.len())?;
            let rows: Vec<Vec<String>> = p
                .violations
                .iter()
                .map(|v| vec![format!("  {}", v.destination), v.reason.clone()])
                .collect();
            table(out, &["  DESTINATION", "WHY"], &rows)?;
        }
        Ok(())
    }
}

impl Render for Vec<Policy> {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        if self.is_empty() {
            writeln!(
                out,
                "no policies (add one: courier policy add --prohibited PATTERN --enforce)"
            )?;
            return Ok(());
        }
        let rows: Vec<Vec<String>> = self
            .iter()
            .map(|p| {
                vec![
                    p.id.to_string(),
                    p.name.clone(),
                    p.kind.to_string(),
                    p.software.clone().unwrap_or_default(),
                    if p.enforce { "yes" } else { "no" }.into(),
                    p.violations.len().to_string(),
                    p.task.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        table(
            out,
            &[
                "ID",
                "NAME",
                "KIND",
                "SOFTWARE",
                "ENFORCED",
                "VIOLATING",
                "TASK",
            ],
            &rows,
        )
    }
}

impl Render for Vec<Destination> {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        if self.is_empty() {
            writeln!(
                out,
                "no destinations (enrol agents with a token: courier token create)"
            )?;
            return Ok(());
        }
        let rows: Vec<Vec<String>> = self
            .iter()
            .map(|d| {
                vec![
                    d.name.clone(),
                    d.status.to_string(),
                    d.os.clone().unwrap_or_default(),
                    d.last_seen.clone().unwrap_or_else(|| "-".into()),
                    d.running_work.to_string(),
                ]
            })
            .collect();
        table(out, &["NAME", "STATUS", "OS", "LAST SEEN", "WORK"], &rows)
    }
}

/// A task with every destination's state, and the end of the output of each
/// failed one: what an admin needs to see why.
impl Render for Task {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        let t = self;
        let what = match (&t.software, &t.policy) {
            (Some(s), Some(_)) => format!("uninstall of programs matching '{s}'"),
            (Some(s), None) => format!(
                "uninstall of '{s}'{} from the inventory",
                t.software_version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default()
            ),
            (None, _) => format!(
                "{} of package {} '{}'",
                t.kind,
                t.package
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "(deleted)".into()),
                t.package_name
            ),
        };
        writeln!(out, "task {} '{}': {what}, {}", t.id, t.name, t.status)?;
        if let Some(p) = t.policy {
            writeln!(
                out,
                "countermeasure of policy {p} (courier policy show {p})"
            )?;
        }
        if let Some(s) = &t.start_at {
            writeln!(out, "starts {s}")?;
        }
        if let Some(why) = &t.paused_reason {
            writeln!(out, "paused: {why} (courier task resume {})", t.id)?;
        }
        if !t.rings.is_empty() {
            let rings: Vec<String> = t
                .rings
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let failed = if r.failed > 0 {
                        format!(", {} failed", r.failed)
                    } else {
                        String::new()
                    };
                    format!(
                        "{} ({} destinations, {}{failed})",
                        i + 1,
                        r.size,
                        r.state.as_str()
                    )
                })
                .collect();
            let gate = t
                .gate
                .as_deref()
                .map(|g| format!("; gate {g}"))
                .unwrap_or_default();
            writeln!(out, "rings {}{gate}", rings.join(" → "))?;
        }
        let rows: Vec<Vec<String>> = t
            .destinations
            .iter()
            .map(|d| {
                vec![
                    d.name.clone(),
                    match &d.stuck {
                        Some(_) => format!("{} (stuck)", d.status),
                        None => d.status.to_string(),
                    },
                    d.attempt.to_string(),
                    d.exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    match (&d.meaning, &d.message) {
                        _ if d.stuck.is_some() => d
                            .stuck
                            .as_ref()
                            .map(|s| s.reason.clone())
                            .unwrap_or_default(),
                        // The message already tells the code's meaning.
                        (Some(m), Some(msg)) if msg.contains(m.as_str()) => msg.clone(),
                        (m, msg) => [m.clone(), msg.clone()]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(" — "),
                    },
                ]
            })
            .collect();
        table(
            out,
            &["DESTINATION", "STATUS", "ATTEMPT", "EXIT", "MESSAGE"],
            &rows,
        )?;
        for d in t
            .destinations
            .iter()
            .filter(|d| d.status == WorkState::Failed)
        {
            if let Some(o) = d.output.as_deref().filter(|o| !o.trim().is_empty()) {
                writeln!(out, "\n--- output of {} (last lines) ---", d.name)?;
                let lines: Vec<&str> = o.lines().collect();
                for l in &lines[lines.len().saturating_sub(20)..] {
                    writeln!(out, "{l}")?;
                }
            }
        }
        Ok(())
    }
}

impl Render for TaskDestination {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        let d = self;
        writeln!(out, "destination {}: {}", d.name, d.status)?;
        writeln!(out, "attempt    {} ({} retries)", d.attempt, d.retries)?;
        if let Some(c) = d.exit_code {
            writeln!(out, "exit code  {c}")?;
        }
        for (what, v) in [("meaning", &d.meaning), ("message", &d.message)] {
            if let Some(v) = v {
                writeln!(out, "{what:<10} {v}")?;
            }
        }
        if let Some(det) = d.detection {
            writeln!(out, "detection  {}", det.as_str())?;
        }
        if d.has_log {
            writeln!(out, "log        kept (courier task log TASK {})", d.name)?;
        }
        if let Some(o) = d.output.as_deref().filter(|o| !o.trim().is_empty()) {
            writeln!(out, "\n--- output (last 16 KiB) ---\n{}", o.trim_end())?;
        }
        Ok(())
    }
}

impl Render for Vec<Task> {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        if self.is_empty() {
            writeln!(
                out,
                "no tasks (create one with: courier task create --package ID --to NAME)"
            )?;
            return Ok(());
        }
        let rows: Vec<Vec<String>> = self
            .iter()
            .map(|t| {
                let c = &t.counts;
                vec![
                    t.id.to_string(),
                    t.name.clone(),
                    match t.class {
                        TaskClass::Countermeasure => format!("{} (policy)", t.kind),
                        TaskClass::Admin => t.kind.to_string(),
                    },
                    t.status.to_string(),
                    format!(
                        "{} ok, {} failed, {} running, {} waiting",
                        c.succeeded,
                        c.failed,
                        c.transferring + c.installing,
                        c.waiting
                    ),
                ]
            })
            .collect();
        table(
            out,
            &["ID", "NAME", "TYPE", "STATUS", "DESTINATIONS"],
            &rows,
        )
    }
}

/// One event per line in both forms: `courier log --follow` prints events
/// as they come, and a reader parses each line as it arrives.
impl Render for Event {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        let e = self;
        writeln!(
            out,
            "{}  {:<5}  {:<16}  {:<12}  {}",
            e.at,
            e.level.as_str(),
            e.kind,
            e.subject,
            e.message
        )?;
        Ok(())
    }

    fn json(&self, out: &mut dyn Write) -> Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        writeln!(out)?;
        Ok(())
    }
}

impl Render for Status {
    fn text(&self, out: &mut dyn Write) -> Result<()> {
        let s = self;
        match &s.listen {
            Some(l) => writeln!(out, "server     running, agents connect to {l}")?,
            None => writeln!(
                out,
                "server     not running for this data dir (courier serve)"
            )?,
        }
        writeln!(
            out,
            "agents     {} online, {} offline, {} pending, {} in all",
            s.online, s.offline, s.pending, s.total
        )?;
        writeln!(
            out,
            "tasks      {} running, {} destinations at work",
            s.running_tasks, s.unfinished
        )?;
        if s.stuck > 0 {
            writeln!(
                out,
                "stuck      {} destination{} not moving (courier triage)",
                s.stuck,
                if s.stuck == 1 { "" } else { "s" }
            )?;
        }
        // Bytes served are counted by a running server only.
        if s.listen.is_some() {
            writeln!(out, "served     {} since start", human_size(s.bytes_served))?;
        }
        Ok(())
    }
}

/// Prints rows as left-aligned columns sized to their content.
pub(super) fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    writeln!(out, "{}", line(&header))?;
    for r in rows {
        writeln!(out, "{}", line(r))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(printable("pc-1\tok\n"), "pc-1\tok\n");
        assert_eq!(
            printable("a\u{1b}]0;owned\u{7}b\u{1b}[2J\u{9b}c"),
            "a\\u{1b}]0;owned\\u{7}b\\u{1b}[2J\\u{9b}c"
        );
    }
}
