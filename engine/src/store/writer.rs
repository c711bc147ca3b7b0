//! A store's writer: commits run on a thread of their own, in the order they were
//! handed over, while the server's loop goes on with its waves.
//!
//! A server hands each commit over as a snapshot of records (nothing it holds is
//! borrowed), and learns from [`Writer::written`] when each is durable, one
//! [`Written`] per commit, in order. Commits that queue up while one is being written
//! go to the store as one transaction ([`Store::commit_parts`]): one `fsync` for all.
//!
//! Invariant: a commit is answered only once it and every commit handed over before it
//! are durable (or with the error that stopped them; after an error nothing more is
//! written). Dropping the writer waits for the commits already handed over.

use super::{SessionRecord, Store, StoreError};
use crate::service::session::Slot;
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

/// One commit: records to write and sessions to delete.
struct Job {
    upserts: Vec<(Slot, SessionRecord)>,
    deletes: Vec<Slot>,
}

/// A commit's outcome, in the order commits were handed over.
#[derive(Debug)]
pub struct Written {
    /// Durable, or why not.
    pub result: Result<(), StoreError>,
    /// Whether this commit began a transaction (the ones queued behind it were in it).
    pub transaction: bool,
    /// Microseconds the transaction took (on the commit that began it; else 0).
    pub micros: u64,
}

/// The writing thread of one share family's commits into a store.
pub struct Writer {
    jobs: Option<Sender<Job>>,
    written: Receiver<Written>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("queued", &self.jobs.as_ref().map_or(0, Sender::len)).finish()
    }
}

impl Writer {
    /// Starts the thread writing family `family`'s commits into `store`.
    pub fn spawn(store: Arc<Store>, family: u8) -> Result<Writer, StoreError> {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let (answer, written) = crossbeam_channel::unbounded();
        let path = store.path().to_path_buf();
        let thread = std::thread::Builder::new()
            .name(format!("store writer {family}"))
            .spawn(move || write_loop(&store, family, &queue, &answer))
            .map_err(|e| StoreError::Open { path, detail: format!("cannot start its writer thread: {e}") })?;
        Ok(Writer { jobs: Some(jobs), written, thread: Some(thread) })
    }

    /// Hands a commit over; never blocks (the caller bounds what is in flight).
    pub fn submit(&self, upserts: Vec<(Slot, SessionRecord)>, deletes: Vec<Slot>) {
        if let Some(jobs) = &self.jobs {
            // The thread ends only when `jobs` is dropped, or after an error it has
            // answered: a lost job then goes unanswered behind that error.
            let _ = jobs.send(Job { upserts, deletes });
        }
    }

    /// The outcomes of the commits handed over, in order.
    pub fn written(&self) -> &Receiver<Written> {
        &self.written
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(store: &Store, family: u8, queue: &Receiver<Job>, answer: &Sender<Written>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        jobs.extend(queue.try_iter());
        let t = Instant::now();
        let parts: Vec<_> = jobs.iter().map(|j| (j.upserts.as_slice(), j.deletes.as_slice())).collect();
        let result = store.commit_parts(family, &parts);
        let micros = t.elapsed().as_micros() as u64;
        let failed = result.is_err();
        for i in 0..jobs.len() {
            let written =
                Written { result: result.clone(), transaction: i == 0, micros: if i == 0 { micros } else { 0 } };
            if answer.send(written).is_err() {
                return;
            }
        }
        if failed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmsm_kernels::Party;

    fn record(steps: u64) -> SessionRecord {
        SessionRecord {
            machine: 1,
            group: 0,
            owner: 7,
            steps,
            state: steps * 3,
            prev_steps: steps.saturating_sub(1),
            prev: 1,
            created: 0,
            last_used: 5,
        }
    }

    #[test]
    fn commits_are_answered_in_order_and_land_in_order() {
        let dir = std::env::temp_dir().join(format!("pmsm-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Arc::new(Store::open(&dir.join("s0.redb"), Party::P0).unwrap());
        let writer = Writer::spawn(Arc::clone(&store), 0).unwrap();
        // The same session rewritten by 50 commits, one deleted by the last: the
        // store must hold the last record of each, whatever commits were merged.
        for steps in 1..=50u64 {
            let deletes = if steps == 50 { vec![9] } else { Vec::new() };
            writer.submit(vec![(3, record(steps)), (9, record(steps))], deletes);
        }
        let outcomes: Vec<Written> = (0..50).map(|_| writer.written().recv().unwrap()).collect();
        assert!(outcomes.iter().all(|w| w.result.is_ok()));
        assert!(outcomes[0].transaction);
        drop(writer);
        let held = store.load(0).unwrap();
        assert_eq!(held.len(), 1, "session 9 was deleted last");
        assert_eq!((held[0].0, held[0].1.steps), (3, 50));
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
