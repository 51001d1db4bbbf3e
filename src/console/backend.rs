//! The console's link to the server: a thread that owns the admin-API
//! connection, refreshes what the screen shows and carries out actions.
//! The UI thread never waits on it; results come back as messages.

use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use crate::api::{ApiError, Client, ErrorKind, FromResponse, Request};
use crate::model::{Destination, Event, Failure, Package, Status, Task, TaskDestination};

/// What the UI asks of the backend.
#[derive(Debug)]
pub enum Command {
    /// Fetch a fresh snapshot: lists, status, new events, and the open
    /// task's rows or the triage list when shown.
    Refresh { task: Option<i64>, triage: bool },
    /// A change; `done` is the line to show when it succeeds.
    Act { request: Request, done: String },
    /// One destination's output, for the output pane.
    Output { task: i64, name: String },
}

/// What comes back.
#[derive(Debug)]
pub enum Message {
    Snapshot(Box<Snapshot>),
    Done(Result<String, String>),
    Output(Result<(i64, TaskDestination), String>),
    /// The server went away (or came back); the text says which.
    Link(Result<(), String>),
}

#[derive(Debug, Default)]
pub struct Snapshot {
    pub status: Status,
    pub packages: Vec<Package>,
    pub tasks: Vec<Task>,
    pub destinations: Vec<Destination>,
    /// Events newer than the last snapshot's.
    pub events: Vec<Event>,
    pub task: Option<Task>,
    pub failures: Option<Vec<Failure>>,
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
    while let Ok(cmd) = rx.recv() {
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
        let Some(c) = client.as_mut() else { continue };
        let result: Result<(), ApiError> = match cmd {
            Command::Refresh { task, triage } => {
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
                    Ok(Snapshot {
                        status: get(c, Request::Status)?,
                        packages: get(c, Request::PackageList)?,
                        tasks: get(c, Request::TaskSummaries)?,
                        destinations: get(c, Request::DestList)?,
                        task: match task {
                            Some(id) => get(c, Request::TaskBrief { id }).ok(),
                            None => None,
                        },
                        failures: if triage {
                            Some(get(c, Request::Failures)?)
                        } else {
                            None
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
            Command::Act { request, done } => {
                // "{id}" in the line becomes the id of what was made.
                let r = c.call(request).map(|v| match v.id() {
                    Some(id) => done.replace("{id}", &id.to_string()),
                    None => done,
                });
                let lost = matches!(&r, Err(e) if e.kind == ErrorKind::LinkLost);
                let _ = tx.send(Message::Done(r.clone().map_err(|e| e.message)));
                match r {
                    Err(e) if lost => Err(e),
                    _ => Ok(()),
                }
            }
            Command::Output { task, name } => {
                let r = get::<TaskDestination>(c, Request::TaskDestination { id: task, name });
                let _ = tx.send(Message::Output(r.map(|d| (task, d)).map_err(|e| e.message)));
                Ok(())
            }
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
