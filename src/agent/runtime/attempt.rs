//! One attempt of the worker: fetch the content, then place it or run the
//! command, and say how it went as a final report.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::inflight;
use super::{Agent, OUTPUT_TAIL, attempt_key};
use crate::agent::detect;
use crate::agent::exec::{self, OnStart, RunSpec};
use crate::agent::fetch::{FetchError, Fetcher};
use crate::agent::place::{self, Limits};
use crate::proto::{Action, Assignment, PackageRef, Report, ReportStatus, Work};
use crate::task::detect::{self as task_detect, Detection};
use crate::task::outcome::{self as exitcodes, Verdict as Outcome};

/// Why a cancelled attempt ended; the report is not sent (the server has
/// dropped the attempt), the message is for whoever reads it in a test.
const CANCELLED: &str = "cancelled";

/// Sends progress now, best effort: the final report is what counts.
pub(super) async fn progress(
    agent: &Agent,
    a: &Assignment,
    status: ReportStatus,
    transferred: u64,
    output: Option<String>,
) {
    let r = Report {
        status,
        output,
        ..report_for(a, transferred)
    };
    let _ = agent
        .client()
        .post(format!("{}/v1/report", agent.base))
        .json(&r)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
}

/// A report on attempt `a`, failed until something says otherwise.
fn report_for(a: &Assignment, transferred: u64) -> Report {
    Report {
        task_id: a.task_id,
        attempt: a.attempt,
        status: ReportStatus::Failed,
        exit_code: None,
        message: None,
        output: None,
        transferred,
        retry: false,
        reboot_required: false,
        detection: None,
        log: None,
    }
}

/// One attempt: fetch, then place or run; the outcome as a final report.
/// Once `stop` is cancelled it ends promptly: a download is dropped, a
/// placement or extraction stops between entries and removes what it
/// staged, a command's whole tree is killed; the blocking part is waited
/// for, so nothing of this attempt still runs when it returns.
pub(super) async fn perform(
    agent: &Arc<Agent>,
    a: &Assignment,
    stop: &CancellationToken,
) -> Report {
    let mut r = report_for(a, 0);
    let pkg = match &a.work {
        Work::Package(p) => p,
        // A removal the destination's own inventory reported: no content.
        Work::Removal(rm) => {
            progress(agent, a, ReportStatus::Installing, 0, None).await;
            let run = Run {
                command: rm.command.clone(),
                success_codes: &rm.success_codes,
                content: None,
            };
            let r = run_command(agent, a, run, r, stop).await;
            return with_installer_log(agent, a, r);
        }
    };
    if crate::task::rules::needs_windows(a.action, pkg.format, pkg.command.as_deref())
        && !cfg!(windows)
    {
        r.message = Some(format!(
            "cannot run a Windows installer ({}) on {}: send it to Windows destinations",
            pkg.format,
            std::env::consts::OS
        ));
        return r;
    }
    // Nothing to do when the software already is as the action would
    // leave it: decided before anything is downloaded.
    let detecting = !pkg.detect.is_empty() && a.action != Action::Distribute;
    if detecting && !a.force {
        let found = detect::evaluate(&pkg.detect).await;
        if task_detect::already_done(a.action, found.detected) {
            r.status = ReportStatus::Succeeded;
            r.detection = Some(Detection::AlreadyDone);
            r.message = (!found.detected).then_some(found.why);
            return r;
        }
    }
    progress(agent, a, ReportStatus::Transferring, 0, None).await;
    let cache = agent.data.join("cache");
    let client = agent.client();
    let fetcher = Fetcher {
        client: &client,
        base: &agent.base,
        cache: &cache,
    };
    // The download reports its progress through a watch; a side task turns
    // it into a progress report a second, so the console can show a gauge.
    let (seen_tx, mut seen_rx) = tokio::sync::watch::channel(0u64);
    let ticker = {
        let agent = agent.clone();
        let a = a.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                if seen_rx.has_changed().unwrap_or(false) {
                    let n = *seen_rx.borrow_and_update();
                    progress(&agent, &a, ReportStatus::Transferring, n, None).await;
                }
            }
        })
    };
    let fetching = fetcher.ensure(pkg, |_verified, transferred| {
        let _ = seen_tx.send(transferred);
    });
    let fetched = tokio::select! {
        f = fetching => Some(f),
        () = stop.cancelled() => None,
    };
    ticker.abort();
    let Some(fetched) = fetched else {
        r.message = Some(CANCELLED.into());
        return r;
    };
    if stop.is_cancelled() {
        r.message = Some(CANCELLED.into());
        return r;
    }
    let fetched = match fetched {
        Ok(f) => f,
        Err((e, transferred)) => {
            r.retry = matches!(e, FetchError::Transient(_));
            r.message = Some(format!("download failed: {e}"));
            r.transferred = transferred;
            return r;
        }
    };
    r.transferred = fetched.transferred;
    if fetched.resumed_from > 0 && fetched.resumed_from < pkg.size {
        tracing::info!(from = fetched.resumed_from, "download resumed");
    }
    progress(
        agent,
        a,
        ReportStatus::Installing,
        fetched.transferred,
        None,
    )
    .await;
    if a.action == Action::Distribute {
        return distribute(pkg, &fetched.path, r, stop).await;
    }
    let Some(command) = pkg.command.clone() else {
        r.message = Some(match a.action {
            Action::Uninstall => "the package has no uninstall command".into(),
            _ => "the package has no install command".into(),
        });
        return r;
    };
    let run = Run {
        command,
        success_codes: &pkg.success_codes,
        content: Some((pkg, &fetched.path)),
    };
    let mut r = run_command(agent, a, run, r, stop).await;
    // The exit code is checked against what is really there; a restart
    // the installer asked for may be what makes it detectable, so then
    // the exit code stands.
    if detecting && r.exit_code.is_some() && !r.retry && !r.reboot_required {
        let found = detect::evaluate(&pkg.detect).await;
        let succeeded = r.status == ReportStatus::Succeeded;
        let d = task_detect::after_run(a.action, succeeded, found.detected);
        r.detection = Some(d);
        match d {
            Detection::NotDone => {
                r.status = ReportStatus::Failed;
                r.message = (!found.detected).then_some(found.why);
            }
            Detection::DoneDespiteExit => {
                r.status = ReportStatus::Succeeded;
                r.message = (!found.detected).then_some(found.why);
            }
            Detection::Verified | Detection::AlreadyDone => {}
        }
    }
    with_installer_log(agent, a, r)
}

/// Where the Windows Installer's log of this task's attempt goes: beside
/// the agent's own log, so it outlives the work dir.
fn installer_log(agent: &Agent, a: &Assignment) -> std::path::PathBuf {
    agent
        .data
        .join("msi-logs")
        .join(format!("task-{}.log", a.task_id))
}

/// A failed attempt carries the end of its installer's log, when the
/// command wrote one (msiexec, through `exec::with_msi_log`).
fn with_installer_log(agent: &Agent, a: &Assignment, mut r: Report) -> Report {
    if r.status == ReportStatus::Failed {
        r.log = exec::log_tail(&installer_log(agent, a), crate::proto::LOG_TAIL);
    }
    r
}

async fn distribute(
    pkg: &PackageRef,
    content: &Path,
    mut r: Report,
    stop: &CancellationToken,
) -> Report {
    let Some(folder) = pkg.folder.clone() else {
        r.message = Some("the package has no destination folder".into());
        return r;
    };
    // A folder of the other family (C:\Data on Linux) would be taken
    // as relative to the agent's working directory: refuse instead.
    if !Path::new(&folder).is_absolute() {
        r.message = Some(format!(
            "folder '{folder}' is not an absolute path on {}: give the package a folder for this system",
            std::env::consts::OS
        ));
        return r;
    }
    let (content, name, zip, stop) = (
        content.to_path_buf(),
        pkg.file_name.clone(),
        pkg.format == crate::task::Format::Zip,
        stop.clone(),
    );
    let placed = tokio::task::spawn_blocking(move || {
        let folder = Path::new(&folder);
        let stop = || stop.is_cancelled();
        if zip {
            place::distribute_zip(&content, folder, &Limits::default(), &stop)
                .map(|s| (s.files, s.bytes))
        } else {
            place::distribute_file(&content, folder, &name, false, &stop).map(|_| (1, 0))
        }
    })
    .await;
    match placed {
        Ok(Ok((files, _))) => {
            r.status = ReportStatus::Succeeded;
            r.message = Some(format!(
                "placed {files} file{} in {}",
                if files == 1 { "" } else { "s" },
                pkg.folder.as_deref().unwrap_or("")
            ));
        }
        Ok(Err(e)) => r.message = Some(e.to_string()),
        Err(e) => r.message = Some(format!("placement crashed: {e}")),
    }
    r
}

/// A command to run for an attempt, in a work dir of its own holding the
/// package's content (unzipped, or the file) when there is one.
struct Run<'a> {
    command: String,
    success_codes: &'a [i64],
    content: Option<(&'a PackageRef, &'a Path)>,
}

async fn run_command(
    agent: &Arc<Agent>,
    a: &Assignment,
    run: Run<'_>,
    mut r: Report,
    stop: &CancellationToken,
) -> Report {
    let Run {
        command,
        success_codes,
        content,
    } = run;
    let work = agent.data.join("work").join(attempt_key(a));
    let _ = std::fs::remove_dir_all(&work);
    if let Err(e) = std::fs::create_dir_all(&work) {
        r.message = Some(format!("cannot make work dir {}: {e}", work.display()));
        r.retry = true;
        return r;
    }
    let content = content.map(|(pkg, path)| {
        (
            path.to_path_buf(),
            pkg.format == crate::task::Format::Zip,
            pkg.file_name.clone(),
        )
    });
    let (dir, unpack_stop) = (work.clone(), stop.clone());
    let unpacked = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let Some((src, zip, name)) = content else {
            return Ok(());
        };
        if zip {
            place::unzip_into(&src, &dir, &Limits::default(), &|| {
                unpack_stop.is_cancelled()
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
        } else {
            let dest = dir.join(Path::new(&name).file_name().unwrap_or_default());
            std::fs::hard_link(&src, &dest)
                .or_else(|_| std::fs::copy(&src, &dest).map(|_| ()))
                .map_err(|e| format!("cannot copy the package into the work dir: {e}"))
        }
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    if let Err(e) = unpacked {
        r.message = Some(e);
        let _ = std::fs::remove_dir_all(&work);
        return r;
    }
    // One Windows Installer log per task, this attempt's: an earlier
    // attempt's is removed so it is never sent as this one's.
    let log = installer_log(agent, a);
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::remove_file(&log);
    let command = exec::with_msi_log(&command, &log);
    // While the command runs, its output tail goes to the server as
    // progress (when it changed, at most every `exec::LIVE_EVERY`), so the
    // task shows what the installer is doing before it ends.
    let (live_tx, mut live_rx) = tokio::sync::watch::channel(String::new());
    let streamer = {
        let (agent, a, transferred) = (agent.clone(), a.clone(), r.transferred);
        tokio::spawn(async move {
            while live_rx.changed().await.is_ok() {
                let tail = live_rx.borrow_and_update().clone();
                progress(
                    &agent,
                    &a,
                    ReportStatus::Installing,
                    transferred,
                    Some(tail),
                )
                .await;
            }
        })
    };
    // On disk before the command starts, its process group before the
    // command's first step: after a crash the agent stops that group and
    // does not run this attempt again (`inflight`). The worker removes the
    // record once the report is saved.
    if let Err(e) = inflight::begin(&agent.data, a.task_id, a.attempt) {
        streamer.abort();
        let _ = std::fs::remove_dir_all(&work);
        r.message = Some(format!("cannot record the attempt before running it: {e}"));
        r.retry = true;
        return r;
    }
    let record = |pid: u32| inflight::started(&agent.data, a.task_id, a.attempt, pid);
    let running = exec::run(RunSpec {
        command: &command,
        cwd: &work,
        timeout: agent.command_timeout,
        tail_bytes: OUTPUT_TAIL,
        live: Some(&live_tx),
        on_start: Some(OnStart(&record)),
    });
    // Dropping the run on cancellation kills the command's whole tree.
    let outcome = tokio::select! {
        o = running => Some(o),
        () = stop.cancelled() => None,
    };
    streamer.abort();
    let Some(outcome) = outcome else {
        let _ = std::fs::remove_dir_all(&work);
        r.message = Some(CANCELLED.into());
        return r;
    };
    let _ = std::fs::remove_dir_all(&work);
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            r.message = Some(format!("cannot start the command: {e}"));
            return r;
        }
    };
    // Installers say why they failed on stderr; its last line is the
    // reason, else the last line of all output.
    let last_line = |s: &str| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().chars().take(200).collect::<String>())
    };
    let reason = last_line(&outcome.stderr).or_else(|| last_line(&outcome.output));
    r.output = Some(outcome.output);
    r.exit_code = outcome.exit_code;
    if outcome.timed_out {
        // What a killed process "exits" with says nothing about the
        // installation.
        r.exit_code = None;
        r.message = Some(format!(
            "timed out after {} s and was killed",
            agent.command_timeout.as_secs()
        ));
        return r;
    }
    let Some(code) = outcome.exit_code else {
        r.message = Some(format!(
            "killed by signal {}",
            outcome
                .signal
                .map(|s| s.to_string())
                .unwrap_or_else(|| "?".into())
        ));
        return r;
    };
    // The exit code travels on its own, with what the command last said;
    // the server tells the outcome from these (`task::Ending`).
    match exitcodes::classify(code, success_codes) {
        Outcome::Success => r.status = ReportStatus::Succeeded,
        Outcome::SuccessRebootRequired => {
            r.status = ReportStatus::Succeeded;
            r.reboot_required = true;
        }
        Outcome::RetryLater => {
            r.retry = true;
            r.message = reason;
        }
        // Without a known meaning, the last line the command printed is
        // usually the reason (an installer's "error: …").
        Outcome::Failure => r.message = reason,
    }
    r
}
