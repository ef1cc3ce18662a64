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
    let m = crate::ops::metrics::get();
    while let Some(op) = ops.recv().await {
        m.set_queue("store", ops.len());
        let mut backoff = Duration::from_millis(100);
        let mut failures = 0u32;
        loop {
            let started = std::time::Instant::now();
            let result = apply(store.as_ref(), &op).await;
            m.store_write(started.elapsed());
            match result {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        AuthKey, AuthState, Authorization, Counts, Dialog, DialogKey, Direction, Filter,
        SqliteStore, StoreError,
    };
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A real store whose first `fail` authorization writes fail with "locked".
    #[derive(Debug)]
    struct Flaky {
        inner: SqliteStore,
        fail: AtomicU32,
    }

    #[async_trait]
    impl Store for Flaky {
        async fn upsert_authorization(&self, a: &Authorization) -> crate::store::Result<()> {
            if self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(StoreError::Locked {
                    path: "flaky".into(),
                });
            }
            self.inner.upsert_authorization(a).await
        }
        async fn get_authorization(
            &self,
            k: &AuthKey,
        ) -> crate::store::Result<Option<Authorization>> {
            self.inner.get_authorization(k).await
        }
        async fn delete_authorization(&self, k: &AuthKey) -> crate::store::Result<bool> {
            self.inner.delete_authorization(k).await
        }
        async fn list_authorizations(
            &self,
            f: &Filter,
            s: Option<AuthState>,
        ) -> crate::store::Result<Vec<Authorization>> {
            self.inner.list_authorizations(f, s).await
        }
        async fn upsert_dialog(&self, d: &Dialog) -> crate::store::Result<()> {
            self.inner.upsert_dialog(d).await
        }
        async fn get_dialog(&self, k: &DialogKey) -> crate::store::Result<Option<Dialog>> {
            self.inner.get_dialog(k).await
        }
        async fn delete_dialog(&self, k: &DialogKey) -> crate::store::Result<bool> {
            self.inner.delete_dialog(k).await
        }
        async fn list_dialogs(&self, f: &Filter) -> crate::store::Result<Vec<Dialog>> {
            self.inner.list_dialogs(f).await
        }
        async fn dialogs_expiring_before(&self, t: i64) -> crate::store::Result<Vec<Dialog>> {
            self.inner.dialogs_expiring_before(t).await
        }
        async fn next_local_cseq(
            &self,
            k: &DialogKey,
            t: i64,
        ) -> crate::store::Result<Option<u32>> {
            self.inner.next_local_cseq(k, t).await
        }
        async fn counts(&self, f: &Filter) -> crate::store::Result<Counts> {
            self.inner.counts(f).await
        }
        async fn close(&self) {
            self.inner.close().await
        }
    }

    fn auth(n: usize, state: AuthState) -> Authorization {
        Authorization {
            key: AuthKey::new(
                format!("u{n}@example.com"),
                "sip:romeo@example.net",
                Direction::XmppWatchesSip,
            ),
            state,
            updated_at: 1,
        }
    }

    /// PRES-14: a failed write is retried until it lands, and the writes behind it keep their
    /// order (a later change is never overtaken by an older one).
    #[tokio::test]
    async fn pres_14_failed_writes_are_retried_in_order_not_dropped() {
        let dir = std::env::temp_dir().join(format!("stox-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let inner = SqliteStore::open(&dir).await.unwrap();
        let check = SqliteStore::open(&dir).await.unwrap();
        let flaky = Arc::new(Flaky {
            inner,
            fail: AtomicU32::new(3),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(flaky.clone(), rx));
        tx.send(StoreOp::PutAuth(auth(1, AuthState::Pending)))
            .unwrap();
        tx.send(StoreOp::PutAuth(auth(1, AuthState::Subscribed)))
            .unwrap();
        tx.send(StoreOp::PutAuth(auth(2, AuthState::Subscribed)))
            .unwrap();
        drop(tx);
        // Three failures back off 100 + 200 + 400 ms. (Real time: sqlx's pool timeouts fire
        // at once under a paused clock.)
        task.await.unwrap();
        assert_eq!(flaky.fail.load(Ordering::SeqCst), 0);
        let got = check
            .list_authorizations(&Filter::all(), None)
            .await
            .unwrap();
        let states: Vec<_> = got
            .iter()
            .map(|a| (a.key.xmpp_jid.clone(), a.state))
            .collect();
        assert_eq!(
            states,
            vec![
                ("u1@example.com".to_string(), AuthState::Subscribed),
                ("u2@example.com".to_string(), AuthState::Subscribed)
            ]
        );
        check.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
