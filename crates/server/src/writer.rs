//! Group commit: every booking write goes through one task that gathers what
//! is waiting into one transaction and one fsync, then answers each caller.
//! A caller is answered only after the commit, so an acknowledged booking is
//! on disk.

use crate::availability::Availability;
use pasaporte_store::{Store, StoreError, WriteError, WriteOp, WriteOutcome};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most writes in one transaction: large enough to amortise the fsync at a
/// slot release's peak, small enough that a batch commits in milliseconds.
pub const BATCH_MAX: usize = 512;
/// Writes waiting for the writer; past this, callers wait (back-pressure).
pub const QUEUE_MAX: usize = 8192;

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<WriteOutcome, WriteError>>,
}

/// A handle to the writer task.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(store: Store, availability: Arc<Availability>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(run(store, availability, rx));
        Self { tx }
    }

    /// Submits one write and waits until it is committed (or refused).
    pub async fn submit(&self, op: WriteOp) -> Result<WriteOutcome, WriteError> {
        let (reply, rx) = oneshot::channel();
        let gone = || WriteError::Store(StoreError::Unavailable("the writer has stopped".into()));
        self.tx.send(Job { op, reply }).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }
}

async fn run(store: Store, availability: Arc<Availability>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(BATCH_MAX);
    while rx.recv_many(&mut jobs, BATCH_MAX).await > 0 {
        let ops: Vec<WriteOp> = jobs.iter().map(|j| j.op.clone()).collect();
        match store.apply_batch(&ops).await {
            Ok(results) => {
                for (job, result) in jobs.drain(..).zip(results) {
                    if let Ok(outcome) = &result {
                        availability.apply(&job.op, outcome);
                    }
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                // The batch did not commit (a deadlock with another server, a
                // lost connection): try each write alone so one bad neighbour
                // cannot fail the rest.
                tracing::warn!(error = %e, batch = jobs.len(), "batch failed; retrying one by one");
                for job in jobs.drain(..) {
                    let result = match store.apply_batch(std::slice::from_ref(&job.op)).await {
                        Ok(mut r) => r.pop().unwrap_or(Err(WriteError::Store(StoreError::Other(
                            "empty result".into(),
                        )))),
                        Err(e) => Err(WriteError::Store(e)),
                    };
                    if let Ok(outcome) = &result {
                        availability.apply(&job.op, outcome);
                    }
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}
