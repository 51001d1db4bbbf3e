//! The console's link to the server: a thread that owns the admin-API
//! connection, refreshes what the screen shows and carries out actions.
//! The UI thread never waits on it; results come back as messages.

use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use crate::api::{ApiError, Client, ErrorKind, FromResponse, Request, Response, TaskChanges};
use crate::model::{
    Destination, Event, Failure, Package, Policy, SoftwareTitle, Status, Task, TaskDestination,
};
use crate::package::Inspection;

/// What the UI asks of the backend.
#[derive(Debug)]
pub enum Command {
    /// Fetch a fresh snapshot: lists, status, new events, and the open
    /// task's rows or the triage list when shown. `since`: the revision
    /// of the task's rows the console holds, so only what changed after
    /// it comes (None: the whole task). `fleet`: the destinations list
    /// too (a big fleet's is fetched only when needed).
    Refresh {
        task: Option<i64>,
        since: Option<i64>,
        triage: bool,
        fleet: bool,
        /// What one view shows besides: policies, titles, an inventory.
        extra: Extra,
    },
    /// A change; `done` is the line to show when it succeeds.
    Act { request: Request, done: String },
    /// A change a form submits: the answer goes back to the form
    /// (`Message::Answer`), which stays open on a refusal.
    Submit { request: Request, done: String },
    /// One destination's output, for the output pane; later refreshes
    /// bring it again (live output) until `Unwatch`.
    Output { task: i64, name: String },
    /// The output pane closed: refreshes stop bringing its destination.
    Unwatch,
    /// A look at a file the package form is to register.
    Inspect { path: String },
    /// The pre-flight of the task the form would create.
    Plan { request: crate::api::CreateTask },
}

/// What a refresh brings for one view besides the lists every view
/// shares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    /// The security policies, with their violations.
    pub policies: bool,
    /// The titles across the fleet's inventories.
    pub software: bool,
    /// This destination in detail, its inventory with it.
    pub inventory: Option<String>,
}

/// What comes back.
#[derive(Debug)]
pub enum Message {
    Snapshot(Box<Snapshot>),
    Done(Result<String, String>),
    /// A change worked, with warnings (destinations a task refused): the
    /// line says both.
    Warned(String),
    /// The answer to a `Submit`: the line to show, or the error.
    Answer(Result<String, ApiError>),
    Output(Result<Box<(i64, TaskDestination)>, String>),
    /// The server went away (or came back); the text says which.
    Link(Result<(), String>),
    Inspected(Inspected),
    /// The answer to a `Plan`: for the request it was asked for.
    Planned(
        crate::api::CreateTask,
        Result<Box<crate::model::Plan>, String>,
    ),
}

/// What a look at a file found, for the package form.
#[derive(Debug)]
pub struct Inspected {
    /// The path as the form gave it.
    pub path: String,
    pub look: Look,
}

#[derive(Debug)]
pub enum Look {
    Missing,
    /// Too big for a quick look; registration measures it.
    TooBig,
    Found(Box<Inspection>),
    Refused(String),
}

/// Files bigger than this are not looked into before registration.
const LOOK_LIMIT: u64 = 256 << 20;

/// Looks at a file: its properties for an MSI, its framework for an EXE,
/// its entries for a ZIP. Reading a ZIP can take seconds, so the console
/// calls this on a worker thread, never on the UI thread.
pub fn inspect(path: &str) -> Inspected {
    let p = Path::new(path);
    let look = match std::fs::metadata(p) {
        Err(_) => Look::Missing,
        Ok(md) if md.len() > LOOK_LIMIT => Look::TooBig,
        Ok(_) => match crate::package::inspect(p, &std::env::temp_dir()) {
            Ok(i) => Look::Found(Box::new(i)),
            Err(e) => Look::Refused(e.to_string()),
        },
    };
    Inspected {
        path: path.to_string(),
        look,
    }
}

/// Runs `inspect` on a thread of its own; the answer comes as a message.
fn inspect_on_worker(path: String, tx: &Sender<Message>) {
    let worker_tx = tx.clone();
    let asked = path.clone();
    let spawned = std::thread::Builder::new()
        .name("console-inspect".into())
        .spawn(move || {
            let _ = worker_tx.send(Message::Inspected(inspect(&asked)));
        });
    if let Err(e) = spawned {
        let _ = tx.send(Message::Inspected(Inspected {
            path,
            look: Look::Refused(format!("cannot look at the file: {e}")),
        }));
    }
}

#[derive(Debug, Default)]
pub struct Snapshot {
    pub status: Status,
    pub packages: Vec<Package>,
    pub tasks: Vec<Task>,
    pub destinations: Vec<Destination>,
    /// The destinations list was not fetched this time: keep the last.
    pub fleet_skipped: bool,
    /// Events newer than the last snapshot's.
    pub events: Vec<Event>,
    /// The open task with all its rows.
    pub task: Option<Task>,
    /// Or the open task with only the rows changed since the revision
    /// the refresh named.
    pub task_changes: Option<Task>,
    /// The revision of the rows in `task` or `task_changes`.
    pub task_rev: Option<i64>,
    pub failures: Option<Vec<Failure>>,
    /// The destination the output pane shows, fetched again.
    pub output: Option<(i64, TaskDestination)>,
    /// The policies, when the refresh asked for them (`Extra`).
    pub policies: Option<Vec<Policy>>,
    /// The fleet's titles, when asked for.
    pub software: Option<Vec<SoftwareTitle>>,
    /// The destination asked for in detail, with its inventory.
    pub inventory: Option<Destination>,
}

fn get<T: FromResponse>(c: &mut Client, r: Request) -> Result<T, ApiError> {
    T::from_response(c.call(r)?)
}

/// Runs the backend until the UI hangs up. `connect` (re)opens the link.
pub fn run(
    mut connect: impl FnMut() -> anyhow::Result<Client>,
    rx: Receiver<Command>,
    tx: Sender<Message>,
) {
    let mut client: Option<Client> = None;
    let mut last_event = 0i64;
    let mut first = true;
    // The destination whose output the pane shows, refreshed with the rest.
    let mut watched: Option<(i64, String)> = None;
    while let Ok(cmd) = rx.recv() {
        // A look at a file needs no server, and must not hold up the
        // refreshes behind it.
        if let Command::Inspect { path } = cmd {
            inspect_on_worker(path, &tx);
            continue;
        }
        if let Command::Unwatch = cmd {
            watched = None;
            continue;
        }
        if client.is_none() {
            match connect() {
                Ok(c) => {
                    client = Some(c);
                    let _ = tx.send(Message::Link(Ok(())));
                }
                Err(e) => {
                    let _ = tx.send(Message::Link(Err(format!("{e:#}"))));
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else {
            // A form waits for its answer: tell it the link is down.
            if let Command::Submit { .. } = cmd {
                let _ = tx.send(Message::Answer(Err(ApiError::link_lost(
                    "the server is unreachable",
                ))));
            }
            continue;
        };
        let submitted = matches!(cmd, Command::Submit { .. });
        let result: Result<(), ApiError> = match cmd {
            Command::Refresh {
                task,
                since,
                triage,
                fleet,
                extra,
            } => {
                let snap = (|| -> Result<Snapshot, ApiError> {
                    // The first snapshot brings the last 500 events, later
                    // ones only what is new.
                    let events: Vec<Event> = if first {
                        get(
                            c,
                            Request::Events {
                                after: 0,
                                limit: 500,
                                tail: Some(500),
                            },
                        )?
                    } else {
                        get(
                            c,
                            Request::Events {
                                after: last_event,
                                limit: 1000,
                                tail: None,
                            },
                        )?
                    };
                    let open = match task {
                        Some(id) => get::<TaskChanges>(c, Request::TaskChanges { id, since }).ok(),
                        None => None,
                    };
                    let task_rev = open.as_ref().map(|o| o.rev);
                    let (task, task_changes) = match open {
                        Some(o) if o.whole => (Some(o.task), None),
                        Some(o) => (None, Some(o.task)),
                        None => (None, None),
                    };
                    Ok(Snapshot {
                        status: get(c, Request::Status)?,
                        packages: get(c, Request::PackageList { all: false })?,
                        tasks: get(c, Request::TaskSummaries)?,
                        destinations: if fleet {
                            get(c, Request::DestList)?
                        } else {
                            Vec::new()
                        },
                        fleet_skipped: !fleet,
                        task,
                        task_changes,
                        task_rev,
                        failures: if triage {
                            Some(get(c, Request::Failures)?)
                        } else {
                            None
                        },
                        output: match &watched {
                            Some((id, name)) => get(
                                c,
                                Request::TaskDestination {
                                    id: *id,
                                    name: name.clone(),
                                },
                            )
                            .ok()
                            .map(|d| (*id, d)),
                            None => None,
                        },
                        policies: if extra.policies {
                            Some(get(c, Request::PolicyList)?)
                        } else {
                            None
                        },
                        software: if extra.software {
                            Some(get(c, Request::SoftwareList { name: None })?)
                        } else {
                            None
                        },
                        // A destination deleted meanwhile is no error.
                        inventory: match extra.inventory {
                            Some(name) => get(c, Request::DestShow { name }).ok(),
                            None => None,
                        },
                        events,
                    })
                })();
                match snap {
                    Ok(s) => {
                        first = false;
                        if let Some(e) = s.events.last() {
                            last_event = e.id;
                        }
                        let _ = tx.send(Message::Snapshot(Box::new(s)));
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Command::Act { request, done } | Command::Submit { request, done } => {
                // "{id}" in the line becomes the id of what was made; a
                // task's warnings follow it.
                let mut warned = false;
                let r = c.call(request).map(|v| {
                    let mut line = match v.id() {
                        Some(id) => done.replace("{id}", &id.to_string()),
                        None => done,
                    };
                    if let Response::Task(t) = &v
                        && !t.warnings.is_empty()
                    {
                        warned = true;
                        line.push_str(&format!(" ▲ {}", t.warnings.join(" · ")));
                    }
                    line
                });
                let lost = matches!(&r, Err(e) if e.kind == ErrorKind::LinkLost);
                let _ = tx.send(match &r {
                    _ if submitted => Message::Answer(r.clone()),
                    Ok(line) if warned => Message::Warned(line.clone()),
                    _ => Message::Done(r.clone().map_err(|e| e.message)),
                });
                match r {
                    Err(e) if lost => Err(e),
                    _ => Ok(()),
                }
            }
            Command::Output { task, name } => {
                watched = Some((task, name.clone()));
                let r = get::<TaskDestination>(c, Request::TaskDestination { id: task, name });
                let _ = tx.send(Message::Output(
                    r.map(|d| Box::new((task, d))).map_err(|e| e.message),
                ));
                Ok(())
            }
            Command::Plan { request } => {
                let r = get::<crate::model::Plan>(c, Request::TaskPlan(request.clone()));
                let lost = matches!(&r, Err(e) if e.kind == ErrorKind::LinkLost);
                let _ = tx.send(Message::Planned(
                    request,
                    r.clone().map(Box::new).map_err(|e| e.message),
                ));
                match r {
                    Err(e) if lost => Err(e),
                    _ => Ok(()),
                }
            }
            // Answered above, without the server.
            Command::Inspect { .. } | Command::Unwatch => Ok(()),
        };
        match result {
            Err(e) if e.kind == ErrorKind::LinkLost => {
                client = None;
                let _ = tx.send(Message::Link(Err(e.message)));
            }
            Err(e) => {
                let _ = tx.send(Message::Done(Err(format!("refresh failed: {}", e.message))));
            }
            Ok(()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that knows one destination of task 1 and refuses changes.
    struct Fake;

    impl crate::api::Handler for Fake {
        fn handle(&mut self, req: Request) -> Result<crate::api::Response, ApiError> {
            Ok(match req {
                Request::Status => Status::default().into(),
                Request::PackageList { .. } => Vec::<Package>::new().into(),
                Request::TaskSummaries => Vec::<Task>::new().into(),
                Request::DestList => Vec::<Destination>::new().into(),
                Request::Events { .. } => Vec::<Event>::new().into(),
                Request::TaskDestination { id: 1, name } => TaskDestination {
                    name,
                    status: crate::task::WorkState::Installing,
                    exit_code: None,
                    message: None,
                    meaning: None,
                    attempt: 1,
                    retries: 0,
                    transferred: 0,
                    reboot_required: false,
                    output: Some("step 1\n".into()),
                    updated_at: "2025-06-01T09:00:00Z".into(),
                    started_at: None,
                    elapsed_secs: None,
                    command: None,
                    detection: None,
                    has_log: false,
                    log: None,
                    state_since: None,
                    stuck: None,
                }
                .into(),
                Request::PolicyList => Vec::<Policy>::new().into(),
                Request::TaskCreate(_) => {
                    let mut t: Task = serde_json::from_value(serde_json::json!({
                        "id": 5, "name": "t", "type": "uninstall", "class": "admin",
                        "status": "running", "package": null, "package_name": "7-Zip",
                        "start_at": null, "window": null, "created_at": "",
                        "completed_at": null, "destinations": [],
                        "counts": {"waiting": 1, "transferring": 0, "installing": 0,
                                   "succeeded": 0, "failed": 0, "cancelled": 0},
                    }))
                    .unwrap();
                    t.warnings = vec!["pc-2: no quiet uninstall command".into()];
                    t.into()
                }
                _ => return Err(ApiError::refused("no")),
            })
        }
    }

    /// A refresh brings what its view asked for besides; a task made with
    /// warnings is answered with them.
    #[test]
    fn extras_come_when_asked_and_warnings_are_told() {
        let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
        let (msg_tx, msg_rx) = std::sync::mpsc::channel();
        let backend = std::thread::spawn(move || {
            run(|| Ok(Client::local(Box::new(Fake))), cmd_rx, msg_tx);
        });
        let next = || loop {
            match msg_rx.recv_timeout(Duration::from_secs(60)).unwrap() {
                Message::Link(_) => continue,
                m => return m,
            }
        };
        for policies in [false, true] {
            cmd_tx
                .send(Command::Refresh {
                    task: None,
                    since: None,
                    triage: false,
                    fleet: false,
                    extra: Extra {
                        policies,
                        // Not known to the server: no inventory, no error.
                        inventory: Some("gone".into()),
                        ..Extra::default()
                    },
                })
                .unwrap();
            match next() {
                Message::Snapshot(s) => {
                    assert_eq!(s.policies.is_some(), policies);
                    assert!(s.software.is_none() && s.inventory.is_none());
                }
                other => panic!("not a snapshot: {other:?}"),
            }
        }
        cmd_tx
            .send(Command::Act {
                request: Request::TaskCreate(crate::api::CreateTask::default()),
                done: "created task {id}".into(),
            })
            .unwrap();
        match next() {
            Message::Warned(line) => {
                assert_eq!(line, "created task 5 ▲ pc-2: no quiet uninstall command")
            }
            other => panic!("not warned: {other:?}"),
        }
        drop(cmd_tx);
        backend.join().unwrap();
    }

    /// Once its output is asked for, a destination comes with every
    /// refresh until unwatched; a form's request is answered to the form.
    #[test]
    fn the_output_pane_is_refreshed_until_unwatched() {
        let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
        let (msg_tx, msg_rx) = std::sync::mpsc::channel();
        let backend = std::thread::spawn(move || {
            run(|| Ok(Client::local(Box::new(Fake))), cmd_rx, msg_tx);
        });
        let next = || loop {
            match msg_rx.recv_timeout(Duration::from_secs(60)).unwrap() {
                Message::Link(_) => continue,
                m => return m,
            }
        };
        let refresh = || Command::Refresh {
            task: None,
            since: None,
            triage: false,
            fleet: true,
            extra: Extra::default(),
        };
        cmd_tx.send(refresh()).unwrap();
        assert!(matches!(next(), Message::Snapshot(s) if s.output.is_none()));
        cmd_tx
            .send(Command::Output {
                task: 1,
                name: "pc-1".into(),
            })
            .unwrap();
        assert!(matches!(next(), Message::Output(Ok(b)) if b.0 == 1));
        cmd_tx.send(refresh()).unwrap();
        match next() {
            Message::Snapshot(s) => {
                let (task, d) = s.output.expect("the watched destination");
                assert_eq!((task, d.name.as_str()), (1, "pc-1"));
                assert_eq!(d.output.as_deref(), Some("step 1\n"));
            }
            other => panic!("not a snapshot: {other:?}"),
        }
        cmd_tx.send(Command::Unwatch).unwrap();
        cmd_tx.send(refresh()).unwrap();
        assert!(matches!(next(), Message::Snapshot(s) if s.output.is_none()));
        cmd_tx
            .send(Command::Submit {
                request: Request::TaskRm { id: 1 },
                done: "deleted".into(),
            })
            .unwrap();
        assert!(matches!(
            next(),
            Message::Answer(Err(e)) if e.kind == ErrorKind::Refused
        ));
        drop(cmd_tx);
        backend.join().unwrap();
    }

    /// A look at a file is answered even with no server to talk to.
    #[test]
    fn inspection_needs_no_server() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, "hello\n").unwrap();
        let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
        let (msg_tx, msg_rx) = std::sync::mpsc::channel();
        let backend = std::thread::spawn(move || {
            run(|| anyhow::bail!("no server"), cmd_rx, msg_tx);
        });
        for path in [file.display().to_string(), "/nowhere/x.msi".to_string()] {
            cmd_tx.send(Command::Inspect { path }).unwrap();
        }
        let mut looks = Vec::new();
        for _ in 0..2 {
            match msg_rx.recv_timeout(Duration::from_secs(60)).unwrap() {
                Message::Inspected(i) => looks.push(i),
                other => panic!("not an inspection: {other:?}"),
            }
        }
        let look = |p: &str| &looks.iter().find(|i| i.path == p).unwrap().look;
        assert!(matches!(look("/nowhere/x.msi"), Look::Missing), "{looks:?}");
        assert!(
            matches!(look(&file.display().to_string()), Look::Found(i) if i.installer.is_none()),
            "{looks:?}"
        );
        drop(cmd_tx);
        backend.join().unwrap();
    }
}
