//! A hidden test hook that aborts the process after the N-th step (state commit or server
//! change), to prove that a crash at any step converges on the next run.
//!
//! Set `TWINBOX_FAULT_AFTER=N` in the environment; unset (the normal case) it costs one
//! relaxed atomic load per step.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

static LIMIT: OnceLock<i64> = OnceLock::new();
static COUNT: AtomicI64 = AtomicI64::new(0);

fn limit() -> i64 {
    *LIMIT.get_or_init(|| {
        std::env::var("TWINBOX_FAULT_AFTER")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    })
}

/// Marks a step; aborts the process when the configured step is reached.
pub fn step(what: &str) {
    let l = limit();
    if l < 0 {
        return;
    }
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    if n >= l {
        eprintln!("twinbox: fault injected after step {n} ({what})");
        std::process::abort();
    }
}

/// Steps taken so far (for tests that count them).
pub fn steps() -> i64 {
    COUNT.load(Ordering::SeqCst)
}
