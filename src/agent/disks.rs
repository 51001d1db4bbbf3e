//! Free space where the agent writes: its data dir (content cache and work
//! dirs) and every mounted volume (Unix) or drive (Windows), so the server
//! can tell before a task starts whether a package fits (`task plan`).

use std::path::Path;

use crate::proto::Disk;

/// Free space of the data dir's volume (`cache`) and of every volume.
pub fn free_space(data: &Path) -> Vec<Disk> {
    let mut out = Vec::new();
    if let Some(free) = free_bytes(data) {
        out.push(Disk {
            path: data.display().to_string(),
            free,
            cache: true,
        });
    }
    for root in volumes() {
        if let Some(free) = free_bytes(Path::new(&root)) {
            out.push(Disk {
                path: root,
                free,
                cache: false,
            });
        }
    }
    out
}

/// Whether free space moved enough since `last` was sent to be worth
/// sending again: another set of volumes, or one whose free space changed
/// by more than 64 MiB and 1 %. (Every poll would otherwise write a row's
/// worth of numbers that say the same.)
pub fn moved(last: &[Disk], now: &[Disk]) -> bool {
    last.len() != now.len()
        || last.iter().zip(now).any(|(a, b)| {
            let diff = a.free.abs_diff(b.free);
            a.path != b.path
                || a.cache != b.cache
                || (diff > 64 << 20 && diff > a.free.max(b.free) / 100)
        })
}

/// Filesystems that hold no files an installer writes.
#[cfg(unix)]
const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "devpts",
    "devtmpfs",
    "cgroup",
    "cgroup2",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "autofs",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "binfmt_misc",
    "nsfs",
    "efivarfs",
    "rpc_pipefs",
];

#[cfg(unix)]
fn volumes() -> Vec<String> {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return vec!["/".into()];
    };
    let mut out: Vec<String> = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, point, kind) = (f.next()?, f.next()?, f.next()?);
            (!PSEUDO.contains(&kind) && point.starts_with('/'))
                // /proc/mounts escapes spaces and tabs as octal.
                .then(|| point.replace("\\040", " ").replace("\\011", "\t"))
        })
        .collect();
    out.sort();
    out.dedup();
    // A host with thousands of mounts (containers) sends the first ones.
    out.truncate(crate::proto::MAX_DISKS - 1);
    out
}

#[cfg(unix)]
fn free_bytes(path: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some((s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64))
}

#[cfg(windows)]
fn volumes() -> Vec<String> {
    crate::win::volumes::drives()
}

#[cfg(windows)]
fn free_bytes(path: &Path) -> Option<u64> {
    crate::win::volumes::free_bytes(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_sent_again_only_when_it_moved() {
        let d = |path: &str, free: u64| Disk {
            path: path.into(),
            free,
            cache: false,
        };
        const GIB: u64 = 1 << 30;
        let last = [d("/", 100 * GIB)];
        assert!(moved(&[], &last));
        assert!(!moved(&last, &[d("/", 100 * GIB - (500 << 20))]));
        assert!(moved(&last, &[d("/", 98 * GIB)]));
        // Small volumes: 64 MiB is the least that counts.
        assert!(!moved(&[d("/boot", 60 << 20)], &[d("/boot", 1 << 20)]));
        assert!(moved(&last, &[d("/", 100 * GIB), d("/mnt", GIB)]));
        assert!(moved(&last, &[d("/srv", 100 * GIB)]));
    }

    #[test]
    fn the_data_dir_and_the_root_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let disks = free_space(dir.path());
        assert!(disks[0].cache, "{disks:?}");
        assert_eq!(disks[0].path, dir.path().display().to_string());
        assert!(disks[0].free > 0);
        #[cfg(unix)]
        assert!(disks.iter().any(|d| d.path == "/" && !d.cache), "{disks:?}");
    }
}
