//! The console on a big, busy task, for real: seeds a data dir with one
//! task of N destinations, starts the server core on it as the console
//! does (standalone), and drives an `App` with the console's own backend
//! thread over the admin socket, counting every byte on the socket.
//!
//! Prints one line per figure, `ROW metric value unit [reference]`, for
//! `bench/console.sh`:
//! - `first_frame_ms`: from starting the server to the first frame drawn
//!   with the server's data (Tasks view); `first_detail_ms`: opening the
//!   task until its rows are drawn (the one whole fetch);
//! - each tick, CHANGES rows change (progress, some state changes) in
//!   the store, then one refresh runs as the console's once-a-second one:
//!   `bytes_per_refresh` (both directions) against the whole task as the
//!   console fetched it before (reference), `update_ms` (p99 of
//!   `App::message` with the changes), `frame_ms` (p99 of the detail view's
//!   frames, the selection moving).
//!
//! `cargo run --release --example console_bench -- ROWS TICKS [CHANGES]`
//! (CHANGES: rows changed per tick, 1% of ROWS unless given).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use courier::api::{AddPackage, Client, CreateTask, Request};
use courier::clock::Clock;
use courier::console::app::App;
use courier::console::backend::{self, Command, Message};
use courier::console::draw;
use courier::console::theme::Theme;
use courier::datadir::DataDir;
use courier::model::Task;
use courier::server::{InProcess, Options};
use courier::service::Service;
use courier::store::destinations::{self, Host};
use courier::task::DestStatus;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The admin socket, counting bytes both ways.
struct Counted {
    s: UnixStream,
    n: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.s.read(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.s.write(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.s.flush()
    }
}

fn counted_client(socket: &Path, n: &Arc<AtomicU64>) -> Result<Client> {
    let s = UnixStream::connect(socket).with_context(|| format!("{}", socket.display()))?;
    Ok(Client::remote(Box::new(Counted { s, n: n.clone() })))
}

/// One package and `rows` online destinations, with one task to all.
fn seed(data: &DataDir, rows: usize) -> Result<()> {
    let mut svc = Service::open(data.clone(), Clock::system())?;
    let file = data.root().join("hello.txt");
    std::fs::write(&file, "hello\n")?;
    let pkg = svc.add_package(AddPackage {
        path: file,
        name: Some("hello".into()),
        // Windows destinations: a Windows folder, as the pre-flight asks.
        folder: Some("C:\\Hello".into()),
        ..AddPackage::default()
    })?;
    let now = svc.clock().now();
    let c = svc.store().conn();
    c.execute_batch("BEGIN")?;
    for i in 0..rows {
        let name = format!("pc-{i:06}");
        let host = Host {
            os: "windows",
            hostname: &name,
            agent_version: "0.1.0",
            command_timeout: None,
            disks: None,
        };
        destinations::insert(
            c,
            &name,
            DestStatus::Online,
            host,
            &format!("fp-{i}"),
            1,
            now,
        )?;
    }
    c.execute_batch("COMMIT")?;
    svc.create_task(CreateTask {
        package: Some(pkg.id),
        all: true,
        name: Some("Roll out hello to every branch".into()),
        ..CreateTask::default()
    })?;
    Ok(())
}

fn key(app: &mut App, code: KeyCode) {
    app.key(KeyEvent::new(code, KeyModifiers::NONE));
}

/// Sends what the app asks of the backend (or a refresh when it asks
/// nothing), applies the snapshots that come back and says how long
/// applying the last one took.
fn cycle(app: &mut App, tx: &Sender<Command>, rx: &Receiver<Message>) -> Result<Duration> {
    let mut out: Vec<Command> = app.outbox.drain(..).collect();
    if !out.iter().any(|c| matches!(c, Command::Refresh { .. })) {
        out.push(app.refresh());
    }
    let mut waiting = out
        .iter()
        .filter(|c| matches!(c, Command::Refresh { .. }))
        .count();
    for c in out {
        tx.send(c)?;
    }
    let mut took = Duration::ZERO;
    while waiting > 0 {
        match rx.recv_timeout(Duration::from_secs(120))? {
            m @ Message::Snapshot(_) => {
                waiting -= 1;
                let t = Instant::now();
                app.message(m);
                took = t.elapsed();
            }
            Message::Link(Err(e)) => bail!("link: {e}"),
            Message::Done(Err(e)) => bail!("{e}"),
            _ => {}
        }
    }
    app.outbox.clear();
    Ok(took)
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let k = ((v.len() as f64 * 0.99).ceil() as usize).clamp(1, v.len());
    v[k - 1]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `n` rows change: most move their download gauge, some start or
/// finish, as progress and final reports would.
fn churn(db: &rusqlite::Connection, rows: usize, n: usize, tick: usize) -> Result<usize> {
    let tx = db.unchecked_transaction()?;
    {
        let mut st = tx.prepare(
            "UPDATE task_destinations SET
                status = CASE WHEN ?2 % 10 = 0 THEN 'installing' ELSE 'transferring' END,
                transferred = transferred + 1048576, updated_at = updated_at + 1
             WHERE task_id = 1 AND destination_id = ?1",
        )?;
        for k in 0..n {
            // A different spread of rows each tick.
            let id = ((k * 7919 + tick * 104_729) % rows) + 1;
            st.execute(rusqlite::params![id as i64, (k + tick) as i64])?;
        }
    }
    tx.commit()?;
    Ok(n)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let ticks: usize = args.next().map_or(Ok(10), |a| a.parse())?;
    let changes: usize = args.next().map_or(Ok(rows / 100), |a| a.parse())?;
    let root = std::env::temp_dir().join(format!("courier-console-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let data = DataDir::open(root.clone())?;
    let seeded = Instant::now();
    seed(&data, rows)?;
    eprintln!(
        "console_bench: {rows} destinations seeded in {:.1} s ({} build)",
        seeded.elapsed().as_secs_f64(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    // Start to first frame, as `courier console` on this data dir.
    let start = Instant::now();
    let opts = Options {
        listen: "127.0.0.1:0".parse()?,
        max_transfers: None,
        bandwidth: None,
        max_polls: None,
        checkin_secs: 30,
        stall_secs: 300,
        announce: false,
    };
    let server = InProcess::start(data.clone(), opts)?;
    let socket = data.admin_endpoint();
    let bytes = Arc::new(AtomicU64::new(0));
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
    let (msg_tx, msg_rx) = std::sync::mpsc::channel();
    let backend = {
        let (socket, bytes) = (socket.clone(), bytes.clone());
        std::thread::spawn(move || {
            backend::run(move || counted_client(&socket, &bytes), cmd_rx, msg_tx)
        })
    };
    let mut app = App::new(Theme::load("default")?, false, "● standalone".into(), true);
    let mut term = Terminal::new(TestBackend::new(200, 60))?;
    cycle(&mut app, &cmd_tx, &msg_rx)?;
    term.draw(|f| draw::draw(f, &app))?;
    let first = start.elapsed();
    println!("ROW first_frame_ms {:.1} ms", ms(first));
    let first_bytes = bytes.load(Ordering::Relaxed);

    // The next second's refresh brings the destinations list (once, then
    // every 30 s while no view shows it).
    cycle(&mut app, &cmd_tx, &msg_rx)?;

    // Open the task: its rows come whole, once.
    let t = Instant::now();
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Enter);
    let before = bytes.load(Ordering::Relaxed);
    cycle(&mut app, &cmd_tx, &msg_rx)?;
    term.draw(|f| draw::draw(f, &app))?;
    let held = app.data.task.as_ref().map_or(0, |t| t.destinations.len());
    if held != rows {
        bail!("the detail holds {held} rows, not {rows}");
    }
    println!("ROW first_detail_ms {:.1} ms", ms(t.elapsed()));
    let open_bytes = bytes.load(Ordering::Relaxed) - before;

    // The reference: the whole task as the console fetched it every
    // second while busy, bytes and time of the call.
    let old = Arc::new(AtomicU64::new(0));
    let mut c = counted_client(&socket, &old)?;
    let mut old_ms = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let task: Task = c.call_as(Request::TaskBrief { id: 1 })?;
        old_ms.push(ms(t.elapsed()));
        drop(task);
    }
    let old_bytes = old.load(Ordering::Relaxed) / 3;
    let fleet = Arc::new(AtomicU64::new(0));
    let mut c = counted_client(&socket, &fleet)?;
    let _: Vec<courier::model::Destination> = c.call_as(Request::DestList)?;
    let fleet_bytes = fleet.load(Ordering::Relaxed);

    // Busy: CHANGES rows change, then the once-a-second refresh.
    let db = rusqlite::Connection::open(data.db_path())?;
    db.busy_timeout(Duration::from_secs(10))?;
    let (mut per_tick, mut updates, mut frames, mut refresh_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut changed = 0;
    for tick in 0..ticks {
        if tick == ticks / 2 {
            // Half the ticks sorted by state: changed rows move.
            key(&mut app, KeyCode::Char('s'));
            key(&mut app, KeyCode::Char('s'));
        }
        changed = churn(&db, rows, changes, tick)?;
        let before = bytes.load(Ordering::Relaxed);
        let t = Instant::now();
        let took = cycle(&mut app, &cmd_tx, &msg_rx)?;
        refresh_ms.push(ms(t.elapsed()));
        per_tick.push((bytes.load(Ordering::Relaxed) - before) as f64);
        updates.push(ms(took));
        for _ in 0..20 {
            key(&mut app, KeyCode::Char('j'));
            let t = Instant::now();
            term.draw(|f| draw::draw(f, &app))?;
            frames.push(ms(t.elapsed()));
        }
    }
    let held = app.data.task.as_ref().map_or(0, |t| t.destinations.len());
    if held != rows {
        bail!("after the updates the detail holds {held} rows, not {rows}");
    }
    println!("ROW frame_ms {:.3} ms", p99(frames));
    eprintln!("updates (ms): {updates:.2?}");
    println!("ROW update_median_ms {:.3} ms", median(updates.clone()));
    println!("ROW update_ms {:.3} ms", p99(updates));
    println!(
        "ROW bytes_per_refresh {:.0} bytes {old_bytes}",
        median(per_tick)
    );
    println!(
        "ROW refresh_ms {:.1} ms {:.1}",
        median(refresh_ms),
        median(old_ms)
    );
    println!("ROW rows_changed_per_refresh {changed} rows");
    println!("ROW first_snapshot_bytes {first_bytes} bytes");
    println!("ROW open_task_bytes {open_bytes} bytes");
    println!("ROW fleet_list_bytes {fleet_bytes} bytes");

    drop(cmd_tx);
    let _ = backend.join();
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
