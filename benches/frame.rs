//! Console frame time: how long `draw` takes with 100,000 task-destination
//! rows, and what a data update (a snapshot that refilters every list)
//! costs. The design's target is under 5 ms a frame (`docs/PERFORMANCE.md`
//! has the figures and how to rerun).
//!
//! `cargo bench --bench frame` (release profile). No harness and no
//! criterion: each case runs a fixed number of iterations after a warm-up
//! and prints mean, median, p99 and max in milliseconds.
//! `FRAME_BENCH_FRAMES=N` changes the number of frames (default 200).

use std::hint::black_box;
use std::time::{Duration, Instant};

use courier::console::app::App;
use courier::console::backend::{Message, Snapshot};
use courier::console::draw;
use courier::console::theme::Theme;
use courier::model::{
    Counts, Destination, Event, Failure, Kind, Level, Package, Status, Task, TaskDestination,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const ROWS: usize = 100_000;
const TASKS: usize = 10_000;
const WIDTH: u16 = 200;
const HEIGHT: u16 = 60;
const TARGET_MS: f64 = 5.0;

const WHEN: &str = "2025-06-01T09:00:00Z";

fn package() -> Package {
    Package {
        id: 1,
        name: "Courier Hello".into(),
        version: Some("1.0.0".into()),
        kind: Kind::Install,
        format: "msi".parse().unwrap(),
        size: 256 << 20,
        hash: "0".repeat(64),
        sha256: "1".repeat(64),
        install_command: Some(r#"msiexec /i "hello.msi" /qn /norestart"#.into()),
        uninstall_command: Some("msiexec /x {6F1E3D4C-1B2A-4C5D-9E8F-0A1B2C3D4E5F} /qn".into()),
        folder: None,
        success_codes: vec![0, 3010, 1641],
        file_name: "hello.msi".into(),
        installer: None,
        product_code: None,
        unzipped_size: None,
        entries: None,
        created_at: WHEN.into(),
        updated_at: WHEN.into(),
        detect: Vec::new(),
    }
}

/// Row `i` of the big task: most succeeded, some failed with the usual
/// exit codes, some still moving (with a progress gauge).
fn row(i: usize) -> TaskDestination {
    let (status, code, meaning, message) = match i % 20 {
        0 => (
            "failed",
            Some(1603),
            Some("fatal error during installation (see the Windows Installer log)"),
            Some("exit 1603: Product: Courier Hello -- Installation failed."),
        ),
        1 => (
            "failed",
            Some(1618),
            Some("another installation is in progress; retry later"),
            Some("exit 1618: gave up after 3 tries"),
        ),
        2 => ("transferring", None, None, None),
        3 => ("installing", None, None, None),
        4 => ("waiting", None, None, None),
        5 => (
            "succeeded",
            Some(3010),
            Some("success; a restart is required to complete the installation"),
            None,
        ),
        _ => ("succeeded", Some(0), Some("success"), None),
    };
    TaskDestination {
        name: format!("pc-{i:06}"),
        status: status.parse().unwrap(),
        exit_code: code,
        message: message.map(str::to_string),
        meaning: meaning.map(str::to_string),
        attempt: 1,
        retries: 0,
        transferred: ((i as u64 * 7919) % 256) << 20,
        reboot_required: code == Some(3010),
        output: None,
        updated_at: WHEN.into(),
        started_at: None,
        elapsed_secs: None,
        command: None,
        detection: None,
        has_log: false,
        log: None,
        state_since: None,
        stuck: None,
    }
}

fn big_task() -> Task {
    let destinations: Vec<TaskDestination> = (0..ROWS).map(row).collect();
    let mut counts = Counts::default();
    for d in &destinations {
        match d.status.as_str() {
            "failed" => counts.failed += 1,
            "transferring" => counts.transferring += 1,
            "installing" => counts.installing += 1,
            "waiting" => counts.waiting += 1,
            _ => counts.succeeded += 1,
        }
    }
    Task {
        id: 1,
        name: "Roll out Courier Hello 1.0 to every branch office".into(),
        kind: "install".parse().unwrap(),
        class: "admin".parse().unwrap(),
        status: "running".parse().unwrap(),
        package: Some(1),
        package_name: "Courier Hello".into(),
        software: None,
        software_version: None,
        policy: None,
        start_at: None,
        window: None,
        created_at: WHEN.into(),
        completed_at: None,
        counts,
        destinations,
        warnings: Vec::new(),
        force: false,
        rings: Vec::new(),
        gate: None,
        paused_reason: None,
    }
}

/// The Tasks list: summaries (no rows), as the backend sends them.
fn task_list(big: &Task) -> Vec<Task> {
    let mut v = Vec::with_capacity(TASKS);
    let mut first = big.clone();
    first.destinations = Vec::new();
    v.push(first);
    for i in 1..TASKS {
        let mut t = v[0].clone();
        t.id = i as i64 + 1;
        t.name = format!("Nightly patch run {i:05}");
        t.status = ["completed", "failed", "running", "scheduled"][i % 4]
            .parse()
            .unwrap();
        t.counts = Counts {
            succeeded: (i % 50) as u64,
            failed: (i % 3) as u64,
            waiting: (i % 7) as u64,
            ..Counts::default()
        };
        v.push(t);
    }
    v
}

fn destinations() -> Vec<Destination> {
    (0..200)
        .map(|i| Destination {
            software: None,
            id: i,
            name: format!("pc-{i:06}"),
            status: ["online", "offline", "pending", "rejected"][i as usize % 4]
                .parse()
                .unwrap(),
            os: Some("windows".into()),
            hostname: Some(format!("pc-{i:06}.corp.example")),
            agent_version: Some("0.1.0".into()),
            last_seen: Some(WHEN.into()),
            enrolled_at: WHEN.into(),
            running_work: 1,
            moving_to: None,
            cert_expires_at: None,
        })
        .collect()
}

fn events() -> Vec<Event> {
    (0..500)
        .map(|i| Event {
            id: i,
            at: WHEN.into(),
            level: [Level::Info, Level::Warn, Level::Error][i as usize % 3],
            kind: "task.destination".into(),
            subject: "task 1".into(),
            message: format!("'Roll out Courier Hello 1.0' on pc-{i:06}: succeeded, exit 0"),
        })
        .collect()
}

/// The failed rows of the big task, as the triage view gets them.
fn failures(big: &Task) -> Vec<Failure> {
    big.destinations
        .iter()
        .filter(|d| d.status == courier::task::WorkState::Failed)
        .map(|d| Failure {
            task_id: big.id,
            task_name: big.name.clone(),
            destination: d.name.clone(),
            exit_code: d.exit_code,
            meaning: d.meaning.clone(),
            message: d.message.clone(),
            attempt: d.attempt,
            updated_at: d.updated_at.clone(),
            os: Some("windows".into()),
            said: d.message.clone(),
            action: None,
            detection: None,
            has_log: false,
            stuck: None,
        })
        .collect()
}

fn status() -> Status {
    Status {
        listen: Some("10.0.0.5:7443".into()),
        online: 100,
        offline: 50,
        pending: 25,
        total: 200,
        running_tasks: 2_500,
        unfinished: 15_000,
        bytes_served: 0,
        stuck: 0,
    }
}

struct Data {
    big: Task,
    list: Vec<Task>,
    dests: Vec<Destination>,
    events: Vec<Event>,
    failures: Vec<Failure>,
}

impl Data {
    fn snapshot(&self, task: bool, failures: bool) -> Snapshot {
        Snapshot {
            status: status(),
            packages: vec![package()],
            tasks: self.list.clone(),
            destinations: self.dests.clone(),
            fleet_skipped: false,
            events: Vec::new(),
            task: task.then(|| self.big.clone()),
            task_changes: None,
            task_rev: None,
            failures: failures.then(|| self.failures.clone()),
            output: None,
            policies: None,
            software: None,
            inventory: None,
        }
    }
}

fn key(app: &mut App, code: KeyCode) {
    app.key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn frames() -> usize {
    std::env::var("FRAME_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

struct Stats {
    mean: f64,
    median: f64,
    p99: f64,
    max: f64,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    let n = ms.len();
    let pick = |q: f64| ms[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
    Stats {
        mean: ms.iter().sum::<f64>() / n as f64,
        median: pick(0.5),
        p99: pick(0.99),
        max: ms[n - 1],
    }
}

fn report(name: &str, n: usize, s: &Stats, target: Option<f64>) {
    let verdict = match target {
        Some(t) if s.p99 < t => format!("  (target < {t} ms: met)"),
        Some(t) => format!("  (target < {t} ms: NOT met)"),
        None => String::new(),
    };
    println!(
        "{name:<52} n={n:<4} mean {:>8.3}  median {:>8.3}  p99 {:>8.3}  max {:>8.3} ms{verdict}",
        s.mean, s.median, s.p99, s.max
    );
}

/// Draws `n` frames after a warm-up, calling `between` (outside the timing)
/// before each, as a user pressing keys between frames would.
fn bench_frames(
    name: &str,
    app: &mut App,
    n: usize,
    mut between: impl FnMut(&mut App, usize),
) -> Stats {
    let mut term = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).expect("terminal");
    for _ in 0..10 {
        term.draw(|f| draw::draw(f, app)).expect("draw");
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        between(app, i);
        let t = Instant::now();
        term.draw(|f| draw::draw(f, black_box(&*app)))
            .expect("draw");
        samples.push(t.elapsed());
    }
    let s = stats(samples);
    report(name, n, &s, Some(TARGET_MS));
    s
}

/// Times `app.message(snapshot)`; building the snapshot is not timed.
fn bench_update(name: &str, app: &mut App, n: usize, make: impl Fn() -> Snapshot) {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let snap = make();
        let t = Instant::now();
        app.message(Message::Snapshot(Box::new(snap)));
        samples.push(t.elapsed());
        app.outbox.clear();
    }
    report(name, n, &stats(samples), None);
}

fn main() {
    let n = frames();
    let updates = (n / 10).clamp(5, 30);
    let built = Instant::now();
    let big = big_task();
    let data = Data {
        list: task_list(&big),
        failures: failures(&big),
        dests: destinations(),
        events: events(),
        big,
    };
    println!(
        "courier console frame bench: {ROWS} task-destination rows, {TASKS} tasks, \
         {WIDTH}x{HEIGHT}, {} build (data built in {:.1} s)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        built.elapsed().as_secs_f64()
    );

    let mut app = App::new(
        Theme::load("default").expect("theme"),
        false,
        "● attached".into(),
        false,
    );
    app.message(Message::Snapshot(Box::new(Snapshot {
        events: data.events.clone(),
        ..data.snapshot(false, false)
    })));

    // Tasks list of 10,000 tasks, scrolling down one row a frame.
    key(&mut app, KeyCode::Char('2'));
    bench_frames(
        "tasks list, 10,000 tasks, j each frame",
        &mut app,
        n,
        |a, _| key(a, KeyCode::Char('j')),
    );

    // Open task 1 and receive its 100,000 rows.
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Enter);
    app.message(Message::Snapshot(Box::new(data.snapshot(true, false))));
    app.outbox.clear();
    bench_frames(
        "task detail, 100,000 rows, top, still",
        &mut app,
        n,
        |_, _| {},
    );
    bench_frames(
        "task detail, 100,000 rows, j each frame",
        &mut app,
        n,
        |a, _| key(a, KeyCode::Char('j')),
    );
    key(&mut app, KeyCode::End);
    bench_frames(
        "task detail, 100,000 rows, at the end, k each frame",
        &mut app,
        n,
        |a, _| key(a, KeyCode::Char('k')),
    );
    bench_frames(
        "task detail, 100,000 rows, PgDn/PgUp each frame",
        &mut app,
        n,
        |a, i| {
            let k = if i % 2 == 0 {
                KeyCode::PageUp
            } else {
                KeyCode::PageDown
            };
            key(a, k)
        },
    );

    // Data updates: the whole snapshot as the backend delivers it every
    // second while task 1 is open; every list is refiltered.
    key(&mut app, KeyCode::Char('g'));
    bench_update(
        "update: snapshot with 100,000 rows + 10,000 tasks",
        &mut app,
        updates,
        || data.snapshot(true, false),
    );
    // The same with a filter typed in the task detail.
    key(&mut app, KeyCode::Char('/'));
    for c in "pc-0420".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let visible = app
        .list(courier::console::app::View::TaskDetail)
        .visible
        .len();
    bench_update(
        &format!("update: same, filter /pc-0420 ({visible} rows match)"),
        &mut app,
        updates,
        || data.snapshot(true, false),
    );
    bench_frames("task detail, filtered, still", &mut app, n, |_, _| {});
    key(&mut app, KeyCode::Esc);

    // Typing a filter: every key refilters 100,000 rows.
    let mut samples = Vec::new();
    for round in 0..(updates / 5).max(2) {
        key(&mut app, KeyCode::Char('/'));
        for c in format!("pc-0{}", round % 10).chars() {
            let t = Instant::now();
            key(&mut app, KeyCode::Char(c));
            samples.push(t.elapsed());
        }
        key(&mut app, KeyCode::Esc);
    }
    let len = samples.len();
    report(
        "filter keystroke over 100,000 rows",
        len,
        &stats(samples),
        None,
    );

    // Off the UI thread but on the same machine: the backend thread
    // decodes the open task's rows from JSON at every refresh (each second).
    let json = serde_json::to_vec(&data.big).expect("encode");
    let mut samples = Vec::new();
    for _ in 0..updates {
        let t = Instant::now();
        let task: Task = serde_json::from_slice(black_box(&json)).expect("decode");
        samples.push(t.elapsed());
        drop(black_box(task));
    }
    report(
        &format!(
            "backend: decode the open task ({:.1} MB of JSON)",
            json.len() as f64 / 1e6
        ),
        updates,
        &stats(samples),
        None,
    );

    // Triage: 10,000 failed destinations in two groups, one open.
    key(&mut app, KeyCode::Char('!'));
    bench_update(
        &format!(
            "update: snapshot + {} failures (regroup)",
            data.failures.len()
        ),
        &mut app,
        updates,
        || data.snapshot(false, true),
    );
    key(&mut app, KeyCode::Enter);
    bench_frames(
        "triage, one group open, j each frame",
        &mut app,
        n,
        |a, _| key(a, KeyCode::Char('j')),
    );
}
