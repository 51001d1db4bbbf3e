//! `bench store`: destination state transitions per second through the
//! server's write path (the writer: identity lookup, rules, SQLite, group
//! commit), from many agents reporting at once, and the time from a
//! report's submission to its acknowledgement (after its commit).
//!
//! Each round runs three stores side by side: group commit with
//! `synchronous=FULL` (what the server runs: an acknowledged report
//! survives a power loss), group commit with `NORMAL` (survives a crash of
//! the process, not of the machine), and the reference: a commit per
//! report with `FULL`, as before group commit. A fourth runs group commit
//! with `FULL` on a task rolled out in rings (`--rings 1,50%,100%`: one
//! canary, half, the rest), whose every finished report also asks
//! whether a ring has ended; its reference is the same store without
//! rings. (Its agents report whatever their ring: the cost per report is
//! what it measures.)
//! Each store's `task create` (with its pre-flight over every
//! destination) is timed too.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use courier::api::{AddPackage, CreateTask};
use courier::datadir::DataDir;
use courier::proto::{Report, ReportStatus};
use courier::server::{Core, limits};
use courier::service::Service;

use crate::{flag, median, quantile, row};

struct Mode {
    name: &'static str,
    sync: &'static str,
    batch: usize,
    rings: Option<&'static str>,
}

const MODES: [Mode; 4] = [
    Mode {
        name: "group_full",
        sync: "FULL",
        batch: 1024,
        rings: None,
    },
    Mode {
        name: "group_normal",
        sync: "NORMAL",
        batch: 1024,
        rings: None,
    },
    Mode {
        name: "single_full",
        sync: "FULL",
        batch: 1,
        rings: None,
    },
    Mode {
        name: "group_full_rings",
        sync: "FULL",
        batch: 1024,
        rings: Some("1,50%,100%"),
    },
];

pub async fn main(args: &[String]) -> Result<()> {
    let n: usize = flag(args, "--destinations").unwrap_or("20000").parse()?;
    let clients: usize = flag(args, "--clients").unwrap_or("1000").parse()?;
    let rounds: usize = flag(args, "--rounds").unwrap_or("3").parse()?;
    let mut rate = vec![Vec::new(); MODES.len()];
    let mut p99 = vec![Vec::new(); MODES.len()];
    let mut create = Vec::new();
    for round in 1..=rounds {
        for (i, mode) in MODES.iter().enumerate() {
            // The reference commits one report at a time: a smaller store
            // keeps its run short, the rate does not depend on the size.
            let size = if mode.batch == 1 { n.min(2000) } else { n };
            let (r, p, c) = run(mode, size, clients).await?;
            eprintln!(
                "store round {round} {}: {size} destinations, task created in {c:.0} ms, {r:.0} transitions/s, p99 {p:.1} ms",
                mode.name
            );
            if i == 0 {
                create.push(c);
            }
            rate[i].push(r);
            p99[i].push(p);
        }
    }
    let reference = median(&mut rate[2]);
    let ref_p99 = median(&mut p99[2]);
    row(
        "transitions_per_second",
        median(&mut rate[0]),
        "1/s",
        Some(reference),
    );
    row("ack_p99_ms", median(&mut p99[0]), "ms", Some(ref_p99));
    row(
        "transitions_per_second_normal",
        median(&mut rate[1]),
        "1/s",
        Some(reference),
    );
    row(
        "ack_p99_ms_normal",
        median(&mut p99[1]),
        "ms",
        Some(ref_p99),
    );
    let plain = median(&mut rate[0]);
    row(
        "transitions_per_second_rings",
        median(&mut rate[3]),
        "1/s",
        Some(plain),
    );
    row("ack_p99_ms_rings", median(&mut p99[3]), "ms", None);
    row("task_create_ms", median(&mut create), "ms", None);
    row("task_create_destinations", n as f64, "count", None);
    Ok(())
}

/// One store: `n` destinations of one task, each reported by its agent as
/// transferring, installing and succeeded by `clients` concurrent agents.
/// Returns transitions per second, the p99 acknowledgement in ms and the
/// milliseconds `task create` took.
async fn run(mode: &Mode, n: usize, clients: usize) -> Result<(f64, f64, f64)> {
    let dir = tempfile::tempdir()?;
    let data = DataDir::open(dir.path().join("data"))?;
    let mut svc = Service::open(data, courier::clock::Clock::system())?;
    let Seeded {
        task,
        dests,
        create_ms,
    } = seed(&mut svc, dir.path(), n, mode.rings)?;
    svc.store()
        .conn()
        .pragma_update(None, "synchronous", mode.sync)?;
    let core = Core::with_batch(
        svc,
        limits::Limits::new(None, None),
        limits::Connections::new(None, 30),
        mode.batch,
    )?;
    let dests = Arc::new(dests);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (core, dests, next) = (core.clone(), dests.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((fp, attempt)) = dests.get(i).cloned() else {
                    return Ok::<_, anyhow::Error>(lat);
                };
                for status in [
                    ReportStatus::Transferring,
                    ReportStatus::Installing,
                    ReportStatus::Succeeded,
                ] {
                    let r = Report {
                        task_id: task,
                        attempt,
                        status,
                        exit_code: (status == ReportStatus::Succeeded).then_some(0),
                        message: None,
                        output: None,
                        transferred: 64,
                        retry: false,
                        reboot_required: false,
                        detection: None,
                        log: None,
                    };
                    let fp = fp.clone();
                    let t = Instant::now();
                    core.call(move |svc| {
                        let (dest, _) = svc.agent_identity(&fp)?.context("unknown agent")?;
                        svc.report(dest, &r)
                    })
                    .await?;
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }));
    }
    let mut lat = Vec::with_capacity(n * 3);
    for w in workers {
        lat.extend(w.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    let done: i64 = core
        .call(move |svc| {
            Ok(svc.store().conn().query_row(
                "SELECT count(*) FROM task_destinations WHERE task_id = ?1 AND status = 'succeeded'",
                [task],
                |r| r.get(0),
            )?)
        })
        .await?;
    if done as usize != n {
        bail!("{done} of {n} destinations succeeded");
    }
    Ok(((n * 3) as f64 / secs, quantile(&mut lat, 0.99), create_ms))
}

struct Seeded {
    task: i64,
    /// Each destination's certificate fingerprint and attempt.
    dests: Vec<(String, i64)>,
    /// How long the task's creation took.
    create_ms: f64,
}

/// `n` online destinations, a package, and a task to all of them. Returns
/// the task, each destination's (certificate fingerprint, attempt) and
/// the milliseconds the task's creation took.
fn seed(svc: &mut Service, dir: &std::path::Path, n: usize, rings: Option<&str>) -> Result<Seeded> {
    let now = svc.clock().now();
    svc.store_mut().write(|c| {
        let mut st = c.prepare(
            "INSERT INTO destinations (name, status, os, hostname, agent_version,
                 cert_fingerprint, last_seen, created_at)
             VALUES (?1, 'online', 'linux', ?1, 'bench', ?2, ?3, ?3)",
        )?;
        for i in 0..n {
            st.execute(rusqlite::params![
                format!("pc-{i:06}"),
                format!("fp-{i:06}"),
                now
            ])?;
        }
        Ok(())
    })?;
    let file = dir.join("payload.bin");
    std::fs::write(&file, [7u8; 64])?;
    let pkg = svc.add_package(AddPackage {
        path: file,
        name: Some("bench".into()),
        version: None,
        kind: None,
        install_command: Some("true".into()),
        uninstall_command: None,
        folder: None,
        success_codes: None,
        detect: None,
    })?;
    let t = Instant::now();
    let task = svc.create_task(CreateTask {
        force: false,
        package: Some(pkg.id),
        all: true,
        rings: rings.map(str::to_string),
        ..Default::default()
    })?;
    let create_ms = t.elapsed().as_secs_f64() * 1000.0;
    let mut st = svc.store().conn().prepare(
        "SELECT d.cert_fingerprint, td.attempt FROM task_destinations td
         JOIN destinations d ON d.id = td.destination_id WHERE td.task_id = ?1",
    )?;
    let dests = st
        .query_map([task.id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Seeded {
        task: task.id,
        dests,
        create_ms,
    })
}
