//! The pre-flight: before a task starts, what will happen on each
//! destination and why, from what the server knows of it (status, last
//! contact, operating system, free space its agent reported, inventory).
//!
//! Invariant: pure; the service gathers the facts.

use serde::{Deserialize, Serialize};

use super::detect::Rule;
use super::policy::{Program, compare_versions};
use super::{Action, DestStatus};
use crate::clock::UnixTime;

/// What will happen on one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It will install (distribute, uninstall) as soon as it can.
    Run,
    /// Its inventory shows the detection rules already hold (or, for an
    /// uninstall, do not): it will end at once without running anything.
    AlreadyDone,
    /// Offline: it will run when the agent is back.
    Offline,
    /// Waiting for approval: it will run once approved.
    Pending,
    /// It will fail: the package does not fit its system.
    Unfit,
    /// It will fail: not enough free space where the content goes.
    LacksDisk,
}

impl Verdict {
    /// Whether the destination would run the package at all (now or
    /// once it is back or approved).
    pub fn would_run(self) -> bool {
        matches!(self, Verdict::Run | Verdict::Offline | Verdict::Pending)
    }
}

/// Free space on one volume of a destination, as its agent reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Free<'a> {
    pub path: &'a str,
    pub free: u64,
    /// The agent's data dir: cache and work dirs.
    pub cache: bool,
}

/// What is known of a destination.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub status: DestStatus,
    pub os: Option<&'a str>,
    pub last_seen: Option<UnixTime>,
    /// Empty when its agent reported none.
    pub disks: &'a [Free<'a>],
    /// Its inventory; None when it sent none yet.
    pub programs: Option<&'a [Program<'a>]>,
}

/// What the task asks of every destination.
#[derive(Debug, Clone, Copy)]
pub struct Work<'a> {
    pub action: Action,
    /// The package runs only on Windows (an MSI, an EXE's command).
    pub windows_only: bool,
    /// Where a distribution places the content.
    pub folder: Option<&'a str>,
    /// Bytes of the content, and of a ZIP's entries unpacked.
    pub size: u64,
    pub unzipped: Option<u64>,
    pub detect: &'a [String],
    pub force: bool,
}

/// The verdict for one destination and why, in words.
pub fn judge(t: &Target, w: &Work, now: UnixTime) -> (Verdict, String) {
    let os = t.os.unwrap_or("");
    if !os.is_empty() {
        if w.windows_only && os != "windows" {
            return (
                Verdict::Unfit,
                format!("runs {os}: a Windows installer will fail there"),
            );
        }
        if let Some(folder) = w.folder
            && is_windows_path(folder) != (os == "windows")
        {
            return (
                Verdict::Unfit,
                format!("runs {os}: the folder '{folder}' is a path of the other system"),
            );
        }
    }
    if !w.force
        && let Some(programs) = t.programs
        && let Some(detected) = detected_by_inventory(w.detect, programs)
        && super::detect::already_done(w.action, detected)
    {
        let why = match w.action {
            Action::Uninstall => "not installed, as its inventory shows: nothing to uninstall",
            _ => "already installed, as its inventory shows",
        };
        return (Verdict::AlreadyDone, why.into());
    }
    if let Some((short, on)) = lacks_disk(t.disks, w) {
        let stale = match (t.status, t.last_seen) {
            (DestStatus::Offline, Some(seen)) => format!(
                " (as it reported before going offline {} ago)",
                super::stuck::age(now - seen)
            ),
            _ => String::new(),
        };
        return (
            Verdict::LacksDisk,
            format!(
                "lacks {} of disk on {on}{stale}",
                humansize::format_size(short, humansize::BINARY)
            ),
        );
    }
    match t.status {
        DestStatus::Pending => (
            Verdict::Pending,
            "waiting for approval: it gets its work once approved".into(),
        ),
        DestStatus::Offline => {
            let since = t
                .last_seen
                .map(|s| format!(" for {}", super::stuck::age(now - s)))
                .unwrap_or_default();
            (
                Verdict::Offline,
                format!("offline{since}: it runs when its agent is back"),
            )
        }
        _ => (Verdict::Run, "will run".into()),
    }
}

/// Whether the rules hold by the inventory alone: Some when every rule is
/// one an inventory answers (`msi:`, `dpkg:`, `rpm:`), else None (the
/// agent finds out).
fn detected_by_inventory(rules: &[String], programs: &[Program]) -> Option<bool> {
    if rules.is_empty() {
        return None;
    }
    let mut all = true;
    for r in rules {
        let holds = match r.parse::<Rule>().ok()? {
            Rule::Msi { product_code } => programs.iter().any(|p| {
                p.product_code
                    .is_some_and(|c| c.eq_ignore_ascii_case(&product_code))
            }),
            Rule::Dpkg { name, min_version } => {
                package_holds(programs, "dpkg", &name, &min_version)
            }
            Rule::Rpm { name, min_version } => package_holds(programs, "rpm", &name, &min_version),
            _ => return None,
        };
        all &= holds;
    }
    Some(all)
}

fn package_holds(programs: &[Program], source: &str, name: &str, min: &Option<String>) -> bool {
    programs.iter().any(|p| {
        p.source == source
            && p.name == name
            && match (min, p.version) {
                (None, _) => true,
                (Some(m), Some(v)) => compare_versions(v, m).is_ge(),
                (Some(_), None) => false,
            }
    })
}

/// How many bytes short, and on which volume, when the content does not
/// fit: the cache takes the content, the work dir (same volume) a ZIP's
/// entries; a distribution's folder takes the file or the entries.
fn lacks_disk(disks: &[Free], w: &Work) -> Option<(u64, String)> {
    let cache = disks.iter().find(|d| d.cache)?;
    let volumes: Vec<&Free> = disks.iter().filter(|d| !d.cache).collect();
    let cache_volume = volume_of(&volumes, cache.path);
    let placed = w.unzipped.unwrap_or(w.size);
    let mut needs: Vec<(String, u64, u64)> = vec![(
        cache_volume.map_or(cache.path, |v| v.path).to_string(),
        cache.free,
        w.size
            + match (w.action, w.unzipped) {
                (Action::Distribute, _) | (_, None) => 0,
                (_, Some(u)) => u,
            },
    )];
    if w.action == Action::Distribute
        && let Some(folder) = w.folder
        && let Some(v) = volume_of(&volumes, folder)
    {
        match needs.iter_mut().find(|(p, _, _)| p == v.path) {
            Some(same) => same.2 += placed,
            None => needs.push((v.path.to_string(), v.free, placed)),
        }
    }
    needs
        .into_iter()
        .find(|(_, free, need)| need > free)
        .map(|(on, free, need)| (need - free, on))
}

/// The volume a path is on: the longest mount point it starts with.
fn volume_of<'a>(volumes: &[&'a Free<'a>], path: &str) -> Option<&'a Free<'a>> {
    let windows = is_windows_path(path);
    let norm = |p: &str| {
        if windows {
            p.replace('/', "\\").to_ascii_lowercase()
        } else {
            p.to_string()
        }
    };
    let path = norm(path);
    volumes
        .iter()
        .copied()
        .filter(|v| {
            let root = norm(v.path);
            let sep = if windows { '\\' } else { '/' };
            path == root
                || (path.starts_with(&root)
                    && (root.ends_with(sep) || path[root.len()..].starts_with(sep)))
        })
        .max_by_key(|v| v.path.len())
}

fn is_windows_path(p: &str) -> bool {
    !p.starts_with('/')
}

/// One line for the whole plan: "2 will install, 1 already installed,
/// 1 lacks disk, 3 offline (longest 4 days)".
pub fn summary(action: Action, rows: &[(Verdict, Option<UnixTime>)], now: UnixTime) -> String {
    let count = |v: Verdict| rows.iter().filter(|(x, _)| *x == v).count();
    let verb = match action {
        Action::Install => "will install",
        Action::Distribute => "will receive the files",
        Action::Uninstall => "will uninstall",
    };
    let done = match action {
        Action::Uninstall => "not installed",
        _ => "already installed",
    };
    let mut parts = vec![format!("{} {verb}", count(Verdict::Run))];
    for (v, what) in [
        (Verdict::AlreadyDone, done),
        (Verdict::Pending, "waiting for approval"),
        (Verdict::Unfit, "do not fit the package"),
        (Verdict::LacksDisk, "lack disk space"),
    ] {
        let n = count(v);
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let offline: Vec<UnixTime> = rows
        .iter()
        .filter(|(v, _)| *v == Verdict::Offline)
        .map(|(_, seen)| seen.unwrap_or(now))
        .collect();
    if let Some(oldest) = offline.iter().min() {
        parts.push(format!(
            "{} offline (longest {})",
            offline.len(),
            super::stuck::age(now - oldest)
        ));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_900_000_000;
    const MIB: u64 = 1 << 20;

    fn target<'a>(disks: &'a [Free<'a>], programs: Option<&'a [Program<'a>]>) -> Target<'a> {
        Target {
            status: DestStatus::Online,
            os: Some("linux"),
            last_seen: Some(NOW),
            disks,
            programs,
        }
    }

    fn work(detect: &[String]) -> Work<'_> {
        Work {
            action: Action::Install,
            windows_only: false,
            folder: None,
            size: 10 * MIB,
            unzipped: Some(30 * MIB),
            detect,
            force: false,
        }
    }

    #[test]
    fn disk_space_is_checked_where_the_content_goes() {
        let disks = [
            Free {
                path: "/var/lib/courier",
                free: 100 * MIB,
                cache: true,
            },
            Free {
                path: "/",
                free: 100 * MIB,
                cache: false,
            },
            Free {
                path: "/mnt/small",
                free: MIB,
                cache: false,
            },
        ];
        assert_eq!(
            judge(&target(&disks, None), &work(&[]), NOW).0,
            Verdict::Run
        );
        let big = Work {
            size: 80 * MIB,
            ..work(&[])
        };
        let (v, why) = judge(&target(&disks, None), &big, NOW);
        assert_eq!(v, Verdict::LacksDisk);
        assert_eq!(why, "lacks 10 MiB of disk on /");
        let dist = Work {
            action: Action::Distribute,
            folder: Some("/mnt/small/app"),
            unzipped: None,
            ..work(&[])
        };
        let (v, why) = judge(&target(&disks, None), &dist, NOW);
        assert_eq!(v, Verdict::LacksDisk);
        assert_eq!(why, "lacks 9 MiB of disk on /mnt/small");
        // /mnt/smaller is not on /mnt/small.
        let other = Work {
            folder: Some("/mnt/smaller"),
            ..dist
        };
        assert_eq!(judge(&target(&disks, None), &other, NOW).0, Verdict::Run);
        // No report: nothing to judge by.
        assert_eq!(judge(&target(&[], None), &big, NOW).0, Verdict::Run);
    }

    #[test]
    fn the_inventory_answers_package_and_msi_rules() {
        let programs = [Program {
            name: "hello",
            version: Some("2.1"),
            source: "dpkg",
            product_code: None,
            uninstall: None,
            quiet: true,
        }];
        let t = target(&[], Some(&programs));
        let has = ["dpkg:hello>=2.0".to_string()];
        assert_eq!(judge(&t, &work(&has), NOW).0, Verdict::AlreadyDone);
        let newer = ["dpkg:hello>=3".to_string()];
        assert_eq!(judge(&t, &work(&newer), NOW).0, Verdict::Run);
        // A rule the inventory cannot answer leaves it to the agent.
        let mixed = ["dpkg:hello".to_string(), "file:/opt/x".to_string()];
        assert_eq!(judge(&t, &work(&mixed), NOW).0, Verdict::Run);
        let forced = Work {
            force: true,
            ..work(&has)
        };
        assert_eq!(judge(&t, &forced, NOW).0, Verdict::Run);
        let uninstall = Work {
            action: Action::Uninstall,
            ..work(&newer)
        };
        assert_eq!(judge(&t, &uninstall, NOW).0, Verdict::AlreadyDone);
    }

    #[test]
    fn a_summary_counts_each_verdict() {
        let rows = [
            (Verdict::Run, None),
            (Verdict::Run, None),
            (Verdict::AlreadyDone, None),
            (Verdict::LacksDisk, None),
            (Verdict::Offline, Some(NOW - 4 * 86_400)),
            (Verdict::Offline, Some(NOW - 60)),
        ];
        assert_eq!(
            summary(Action::Install, &rows, NOW),
            "2 will install, 1 already installed, 1 lack disk space, 2 offline (longest 4 days)"
        );
        let (v, why) = judge(
            &Target {
                status: DestStatus::Offline,
                last_seen: Some(NOW - 3 * 3600),
                ..target(&[], None)
            },
            &work(&[]),
            NOW,
        );
        assert_eq!(v, Verdict::Offline);
        assert_eq!(
            why,
            "offline for 3 h 00 min: it runs when its agent is back"
        );
        let windows = Work {
            windows_only: true,
            ..work(&[])
        };
        assert_eq!(judge(&target(&[], None), &windows, NOW).0, Verdict::Unfit);
    }
}
