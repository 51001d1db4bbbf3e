//! Removing a task stops its extraction on the agent.

use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

use super::{Dest, files_under, script_package, wait_task};
use crate::procs::{DEADLINE, Server, create_task, dest, task_id, wait_until};

/// Entries of the archive: each one is written and synced on its own, so
/// placing them all takes tens of seconds, far longer than a cancellation.
const ENTRIES: usize = 30_000;

/// A ZIP of `ENTRIES` small files in folders of a thousand.
fn many_small_files(path: &std::path::Path) {
    let f = fs::File::create(path).unwrap();
    let mut w = zip::ZipWriter::new(f);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..ENTRIES {
        w.start_file(format!("d{}/f{i}.txt", i / 1000), opts)
            .unwrap();
        w.write_all(format!("file {i}\n").as_bytes()).unwrap();
    }
    w.finish().unwrap();
}

/// `courier task rm` while the agent places a ZIP of many small files:
/// the placement stops within seconds, what it had staged is removed (the
/// folder is as it was), nothing is renamed into place, and the agent's
/// next install starts only once the old placement is gone.
#[test]
fn removing_a_task_stops_its_extraction_and_cleans_up() {
    let s = Server::start();
    let (_, token) = s.token(true);
    let d = Dest::enrolled(&s, &token, "cx-01", &[]);
    let place = tempfile::tempdir().unwrap();
    let folder = place.path().join("target");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("kept.txt"), "was here before").unwrap();

    let zip = s.input("many.zip");
    many_small_files(&zip);
    let pkg = s.json(&[
        "package",
        "add",
        zip.to_str().unwrap(),
        "--folder",
        folder.to_str().unwrap(),
        "--json",
    ]);
    let t = create_task(&s, &pkg, "cx-01", &[]);
    let id = task_id(&t);
    wait_until(
        DEADLINE,
        "the agent to be placing files",
        || (files_under(&folder).len() > 200).then_some(()),
        || d.diagnostics(),
    );
    s.ok(&["task", "rm", &id.to_string()]);
    let removed = Instant::now();

    // The next install, queued at once: it sees what is in the folder when
    // it starts.
    let marks = tempfile::tempdir().unwrap();
    let seen = marks.path().join("seen");
    let count = format!(
        "find '{}' | wc -l > '{}'\n",
        folder.display(),
        seen.display()
    );
    let next = script_package(&s, "count.sh", &count, "sh count.sh");
    let n = task_id(&create_task(&s, &next, "cx-01", &[]));

    let before = || vec!["kept.txt".to_string()];
    wait_until(
        DEADLINE,
        "the placement to stop and remove what it staged",
        || (files_under(&folder) == before()).then_some(()),
        || {
            let now = files_under(&folder);
            format!(
                "{} names in the folder, {} s after the task was removed\n{}",
                now.len(),
                removed.elapsed().as_secs(),
                d.diagnostics()
            )
        },
    );
    let stopped_in = removed.elapsed();
    // It stays that way: nothing renamed into place later.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(files_under(&folder), before(), "{}", d.diagnostics());
    assert!(
        stopped_in < Duration::from_secs(15),
        "the placement took {stopped_in:?} to stop"
    );

    let t = wait_task(&s, n, &d, "the next install to end", |t| {
        dest(t, "cx-01")["status"] == "succeeded"
    });
    // `find` lists the folder and kept.txt: no staged file, no folder made
    // by the cancelled placement, was there when the next install ran.
    let seen = fs::read_to_string(&seen).unwrap();
    assert_eq!(seen.trim(), "2", "{t:#}");
}
