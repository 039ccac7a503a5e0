//! Group commit for reference tokens: every issuance waits for its token to be durable, but
//! concurrent issuances share one transaction (one fsync). One writer task drains the queue:
//! while a commit is in flight, new tokens pile up and go together in the next one, so the
//! batch size grows with the load and throughput with it — never answering early.

use tokio::sync::{mpsc, oneshot};

use crate::{Store, StoreError, TokenRecord};

/// Most tokens committed in one transaction.
const MAX_BATCH: usize = 512;

type Job = (TokenRecord, oneshot::Sender<Result<(), String>>);

/// A handle to the writer task. Cheap to clone; the task ends when every handle is dropped.
#[derive(Clone, Debug)]
pub struct TokenWriter {
    queue: mpsc::Sender<Job>,
}

impl TokenWriter {
    /// Starts the writer task for `store`.
    pub fn spawn(store: Store) -> Self {
        let (queue, mut rx) = mpsc::channel::<Job>(MAX_BATCH * 8);
        tokio::spawn(async move {
            let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let records: Vec<TokenRecord> = batch.iter().map(|(r, _)| r.clone()).collect();
                let result = store.insert_tokens(&records).await.map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(error = %e, tokens = records.len(), "reference token batch failed");
                }
                for (_, ack) in batch.drain(..) {
                    let _ = ack.send(result.clone());
                }
            }
        });
        Self { queue }
    }

    /// Stores `token` and returns once it is committed.
    pub async fn insert(&self, token: TokenRecord) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.queue.send((token, ack)).await.map_err(|_| StoreError::Write("token writer stopped".into()))?;
        done.await.map_err(|_| StoreError::Write("token writer stopped".into()))?.map_err(StoreError::Write)
    }
}
