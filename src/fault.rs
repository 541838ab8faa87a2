//! Hidden test hooks at each step (state commit or server change) of a sync, to prove that
//! a crash at any step, or a change made by someone else between two steps, converges on
//! the next run.
//!
//! - `TWINBOX_FAULT_AFTER=N` aborts the process at the N-th step.
//! - `TWINBOX_HOOK_AT=N` with `TWINBOX_HOOK_CMD=COMMAND` runs `sh -c COMMAND` at the N-th
//!   step and waits for it (e.g. a `doveadm save` racing the sync), then goes on.
//!
//! - `TWINBOX_CRASH_GRACE_MS=N` replaces the wait after an interrupted run (see
//!   [`crash_grace`]), e.g. 0 in tests whose interruptions leave no command in flight.
//!
//! Unset (the normal case) they cost one relaxed atomic load per step.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

static LIMIT: OnceLock<i64> = OnceLock::new();
static HOOK: OnceLock<Option<(i64, String)>> = OnceLock::new();
static COUNT: AtomicI64 = AtomicI64::new(0);

fn limit() -> i64 {
    *LIMIT.get_or_init(|| {
        std::env::var("TWINBOX_FAULT_AFTER")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    })
}

fn hook() -> &'static Option<(i64, String)> {
    HOOK.get_or_init(|| {
        let at = std::env::var("TWINBOX_HOOK_AT").ok()?.parse().ok()?;
        let cmd = std::env::var("TWINBOX_HOOK_CMD").ok()?;
        Some((at, cmd))
    })
}

/// Marks a step; aborts the process, or runs the hook command, when its step is reached.
pub fn step(what: &str) {
    let l = limit();
    let h = hook();
    if l < 0 && h.is_none() {
        return;
    }
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some((at, cmd)) = h {
        if n == *at {
            eprintln!("twinbox: running the test hook at step {n} ({what})");
            match std::process::Command::new("sh").arg("-c").arg(cmd).status() {
                Ok(s) if s.success() => {}
                Ok(s) => eprintln!("twinbox: the test hook failed ({s})"),
                Err(e) => eprintln!("twinbox: cannot run the test hook: {e}"),
            }
        }
    }
    if l >= 0 && n >= l {
        eprintln!("twinbox: fault injected after step {n} ({what})");
        std::process::abort();
    }
}

/// Steps taken so far (for tests that count them).
pub fn steps() -> i64 {
    COUNT.load(Ordering::SeqCst)
}

/// How long after the last state write of an interrupted run a new run waits before it
/// looks for that run's copies: 3 s, or `TWINBOX_CRASH_GRACE_MS`.
pub fn crash_grace() -> std::time::Duration {
    std::env::var("TWINBOX_CRASH_GRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(std::time::Duration::from_millis)
        .unwrap_or(std::time::Duration::from_secs(3))
}
