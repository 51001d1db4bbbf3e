//! The one writer: a thread that owns the [`Service`] and runs every
//! request against it, in arrival order, with group commit.
//!
//! Requests queue on a channel. The writer takes what is queued (up to
//! [`MAX_BATCH`]), opens one transaction, runs each request inside its own
//! savepoint, commits once, and only then answers them all: an answer is
//! never sent for a change that could still be lost, and a thousand reports
//! that arrive together cost one commit (one WAL sync) instead of a
//! thousand. While a batch commits, the next one queues.
//!
//! A request that panics is rolled back to its savepoint and answered with
//! an internal error; the others in its batch are unaffected.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use anyhow::{Result, anyhow};
use tokio::sync::oneshot;

use crate::api::ApiError;
use crate::model::DestinationId;
use crate::service::Service;

/// Requests committed together at most.
pub const MAX_BATCH: usize = 1024;

/// Sends the answer of a request that ran, once its batch is committed or
/// failed to commit.
type Deliver = Box<dyn FnOnce(Option<&anyhow::Error>) + Send>;

/// A request as the writer runs it: whether it panicked, and how to answer.
type Job = Box<dyn FnOnce(&mut Service) -> (bool, Deliver) + Send>;

/// The queue in front of the writer thread (or of a reader: see
/// [`Writer::start_reader`]).
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread; `wake` is called after each commit with
    /// the destinations whose work changed.
    pub fn start(
        svc: Service,
        max_batch: usize,
        wake: impl Fn(&[DestinationId]) + Send + 'static,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Job>();
        let max_batch = max_batch.max(1);
        std::thread::Builder::new()
            .name("courier-writer".into())
            .spawn(move || run(svc, rx, max_batch, wake))?;
        Ok(Writer { jobs: tx })
    }

    /// A thread that answers read-only requests on a service of its own
    /// (its own SQLite connection): in WAL mode it reads the last commit
    /// while the writer writes, so a console's refresh over a big task
    /// does not hold up agents' reports. No transaction is opened: each
    /// statement reads the latest commit.
    pub fn start_reader(svc: Service) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("courier-reader".into())
            .spawn(move || {
                let mut svc = svc;
                while let Ok(job) = rx.recv() {
                    let (panicked, deliver) = job(&mut svc);
                    if panicked {
                        svc.store_mut().recover();
                    }
                    deliver(None);
                }
            })?;
        Ok(Writer { jobs: tx })
    }

    /// Runs `f` on the service and answers after its batch commits.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Service) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |svc| {
            let (out, panicked) = match catch_unwind(AssertUnwindSafe(|| f(svc))) {
                Ok(out) => (out, false),
                Err(payload) => (Err(ApiError::from_panic(payload.as_ref()).into()), true),
            };
            let deliver: Deliver = Box::new(move |commit: Option<&anyhow::Error>| {
                let _ = tx.send(match commit {
                    // Each job of the batch gets the one commit error: a
                    // full disk stays recognisable (`api::disk_full`).
                    Some(e) if crate::api::disk_full(e) => Err(anyhow::Error::new(
                        std::io::Error::from(std::io::ErrorKind::StorageFull),
                    )
                    .context(format!("not saved: {e:#}"))),
                    Some(e) => Err(anyhow!("not saved: {e:#}")),
                    None => out,
                });
            });
            (panicked, deliver)
        });
        self.jobs
            .send(job)
            .map_err(|_| anyhow!("the server is stopping"))?;
        rx.await.map_err(|_| anyhow!("the server is stopping"))?
    }
}

fn run(
    mut svc: Service,
    rx: mpsc::Receiver<Job>,
    max_batch: usize,
    wake: impl Fn(&[DestinationId]),
) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        // A transaction left open (it should not be) is rolled back first.
        let began = svc.store().begin_batch().or_else(|_| {
            svc.store_mut().recover();
            svc.store().begin_batch()
        });
        let mut answers = Vec::with_capacity(batch.len());
        for job in batch.drain(..) {
            // Outside a transaction a savepoint would begin one: without
            // a batch, each request commits its own writes.
            let point = match &began {
                Ok(()) => svc.store().savepoint(),
                Err(_) => Err(anyhow!("no batch")),
            };
            let (panicked, deliver) = job(&mut svc);
            match point {
                Ok(()) => svc.store().end_savepoint(panicked),
                // Without a savepoint (the batch did not begin), a
                // panicking request may have left a transaction open.
                Err(_) if panicked => svc.store_mut().recover(),
                Err(_) => {}
            }
            answers.push(deliver);
        }
        let committed = match began {
            Ok(()) => svc.store().commit_batch(),
            Err(e) => Err(e),
        };
        let wakeups = svc.take_wakeups();
        match committed {
            Ok(()) => {
                for d in answers {
                    d(None);
                }
            }
            Err(e) => {
                tracing::error!("commit: {e:#}");
                svc.store_mut().recover();
                for d in answers {
                    d(Some(&e));
                }
            }
        }
        wake(&wakeups);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datadir::DataDir;

    fn count(svc: &mut Service) -> Result<i64> {
        Ok(svc
            .store()
            .conn()
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))?)
    }

    #[tokio::test]
    async fn requests_queued_together_commit_together_and_a_panic_drops_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path().join("data")).unwrap();
        let svc = Service::open(data, crate::clock::Clock::manual(1_800_000_000)).unwrap();
        let db = dir.path().join("data").join("courier.db");
        let w = Writer::start(svc, MAX_BATCH, |_| {}).unwrap();
        // Held up by the first request, the next ones queue behind it and
        // run as one batch.
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let first = w.call(move |svc| {
            svc.log_server_start("127.0.0.1:1")?;
            go_rx.recv().ok();
            Ok(())
        });
        let second = w.call(|svc| -> Result<()> {
            svc.log_server_start("127.0.0.1:2")?;
            panic!("rule bug")
        });
        let third = w.call(|svc| svc.log_server_start("127.0.0.1:3"));
        let db2 = db.clone();
        let check = async move {
            // Written but not committed (nor answered): another
            // connection sees nothing yet.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let other = rusqlite::Connection::open(&db2).unwrap();
            let n: i64 = other
                .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 0);
            go_tx.send(()).unwrap();
        };
        let (a, b, c, ()) = tokio::join!(first, second, third, check);
        a.unwrap();
        let e = b.unwrap_err();
        assert!(format!("{e:#}").contains("rule bug"), "{e:#}");
        c.unwrap();
        // The panicking request's event is gone, the others' are kept.
        assert_eq!(w.call(count).await.unwrap(), 2);
        let other = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = other
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }
}
