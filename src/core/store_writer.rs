//! Applies the presence engine's store operations in order, off the router loop (PRES-14).
//!
//! A failed write is never dropped: it is logged at error level with the key it concerns and
//! retried (with backoff) until it succeeds, and the operations after it wait, so the file
//! never holds a newer state overtaken by an older one. The engine's memory stays correct
//! meanwhile; only a crash during an outage can lose what was not yet written, and the log
//! says exactly what.

use crate::presence::subscription::StoreOp;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info};

/// Runs until every sender is dropped and the queue is empty.
pub async fn run(store: Arc<dyn Store>, mut ops: mpsc::UnboundedReceiver<StoreOp>) {
    while let Some(op) = ops.recv().await {
        let mut backoff = Duration::from_millis(100);
        let mut failures = 0u32;
        loop {
            match apply(store.as_ref(), &op).await {
                Ok(()) => {
                    if failures > 0 {
                        info!(op = %describe(&op), failures, "store write succeeded after retries");
                    }
                    break;
                }
                Err(e) => {
                    failures += 1;
                    error!(op = %describe(&op), error = %e, failures, "store write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
    store.close().await;
}

async fn apply(store: &dyn Store, op: &StoreOp) -> crate::store::Result<()> {
    match op {
        StoreOp::PutAuth(a) => store.upsert_authorization(a).await,
        StoreOp::DeleteAuth(k) => store.delete_authorization(k).await.map(|_| ()),
        StoreOp::PutDialog(d) => store.upsert_dialog(d).await,
        StoreOp::DeleteDialog(k) => store.delete_dialog(k).await.map(|_| ()),
    }
}

fn describe(op: &StoreOp) -> String {
    match op {
        StoreOp::PutAuth(a) => format!("put authorization {} = {}", a.key, a.state.as_str()),
        StoreOp::DeleteAuth(k) => format!("delete authorization {k}"),
        StoreOp::PutDialog(d) => format!("put dialog {} {}", d.key.call_id, d.auth),
        StoreOp::DeleteDialog(k) => format!("delete dialog {}", k.call_id),
    }
}
