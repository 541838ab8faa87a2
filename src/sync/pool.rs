//! Connections kept open between syncs (`holdconnectionopen`), with `keepalive` NOOPs.

use std::sync::Mutex;

use crate::store::Store;

/// A pair of connections: local and remote.
pub type StorePair = [Box<dyn Store>; 2];

/// Idle connection pairs of one account, reused by the next sync.
#[derive(Default)]
pub struct ConnectionPool {
    idle: Mutex<Vec<StorePair>>,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.idle.lock().map(|v| v.len()).unwrap_or(0);
        f.debug_struct("ConnectionPool").field("idle", &n).finish()
    }
}

impl ConnectionPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes an idle pair that still answers, closing the ones that do not.
    pub async fn take(&self) -> Option<StorePair> {
        loop {
            let mut pair = self.idle.lock().ok()?.pop()?;
            let (a, b) = {
                let [x, y] = &mut pair;
                tokio::join!(x.noop(), y.noop())
            };
            if a.is_ok() && b.is_ok() {
                return Some(pair);
            }
            tracing::info!(target: "twinbox::sync", "a held connection went away; opening a new one");
            close(pair).await;
        }
    }

    /// Keeps a pair for the next sync.
    pub fn put(&self, pair: StorePair) {
        if let Ok(mut v) = self.idle.lock() {
            v.push(pair);
        }
    }

    /// Sends a NOOP on every idle pair (`keepalive`), dropping the ones that fail.
    pub async fn keepalive(&self) {
        let pairs: Vec<StorePair> = match self.idle.lock() {
            Ok(mut v) => v.drain(..).collect(),
            Err(_) => return,
        };
        for mut pair in pairs {
            let (a, b) = {
                let [x, y] = &mut pair;
                tokio::join!(x.noop(), y.noop())
            };
            if a.is_ok() && b.is_ok() {
                self.put(pair);
            } else {
                close(pair).await;
            }
        }
    }

    /// Drops every idle pair without a word to the servers (after a suspend, when the
    /// connections are most likely dead and a LOGOUT would only wait for a timeout).
    pub fn discard(&self) {
        if let Ok(mut v) = self.idle.lock() {
            v.clear();
        }
    }

    /// Logs out of every idle pair.
    pub async fn close_all(&self) {
        let pairs: Vec<StorePair> = match self.idle.lock() {
            Ok(mut v) => v.drain(..).collect(),
            Err(_) => return,
        };
        for p in pairs {
            close(p).await;
        }
    }
}

/// After a sync: keeps a pair that finished cleanly for the next sync when connections
/// are held, else logs out.
pub(crate) async fn release(pool: &Option<std::sync::Arc<ConnectionPool>>, pair: StorePair) {
    match pool {
        Some(p) => p.put(pair),
        None => close(pair).await,
    }
}

async fn close(pair: StorePair) {
    let [a, b] = pair;
    let _ = tokio::join!(a.close(), b.close());
}
