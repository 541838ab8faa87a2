//! Hooks into a running sync: progress events for user interfaces, and a stop token for
//! graceful shutdown ("finish the current mailbox, commit the state, stop").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::engine::{Counts, SyncOptions};

/// Something that happened during a sync, as user interfaces see it.
#[derive(Debug, Clone)]
pub enum SyncEvent {
    /// Both sides were listed: `mailboxes` will be synced (the others are unchanged).
    AccountStart {
        /// Account name.
        account: String,
        /// Mailboxes to open.
        mailboxes: usize,
    },
    /// A mailbox sync begins.
    MailboxStart {
        /// Account name.
        account: String,
        /// Mailbox (separator-neutral remote name).
        mailbox: String,
    },
    /// The plan of a mailbox is known: what will be copied.
    MailboxPlanned {
        /// Account name.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// Messages to copy (both directions).
        messages: u64,
        /// Bytes to copy (both directions).
        bytes: u64,
    },
    /// A batch of messages was copied and recorded.
    Copied {
        /// Account name.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// `"local"` or `"remote"`: the side the messages went to.
        to: &'static str,
        /// Messages in this batch.
        messages: u64,
        /// Bytes in this batch.
        bytes: u64,
    },
    /// Messages were moved or copied server-side (replaying a move or copy made on the other
    /// side), and recorded; no body crossed the wire.
    Transferred {
        /// Account name.
        account: String,
        /// Target mailbox.
        mailbox: String,
        /// Source mailbox.
        from: String,
        /// `"local"` or `"remote"`: the side the command ran on.
        on: &'static str,
        /// A move (the source lost them) rather than a copy.
        moved: bool,
        /// Messages moved or copied.
        messages: u64,
    },
    /// A mailbox sync ended, successfully when `error` is `None`.
    MailboxEnd {
        /// Account name.
        account: String,
        /// Mailbox.
        mailbox: String,
        /// What was done in it.
        counts: Counts,
        /// Why it failed.
        error: Option<String>,
    },
}

/// Receives [`SyncEvent`]s; called from the sync's tasks, so it must be quick.
pub trait SyncObserver: Send + Sync + std::fmt::Debug {
    /// Called for each event.
    fn event(&self, e: &SyncEvent);
}

/// A shared flag asking a running sync to stop at the next safe point: between mailboxes,
/// and between copy batches (whatever was copied is recorded; the mailbox is re-examined
/// on the next run).
#[derive(Debug, Clone, Default)]
pub struct StopToken(Arc<AtomicBool>);

impl StopToken {
    /// A token not yet stopped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the sync to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl SyncOptions {
    /// Hands an event to the observer, if any (the event is built only then).
    pub(crate) fn emit(&self, e: impl FnOnce() -> SyncEvent) {
        if let Some(o) = &self.observer {
            o.event(&e());
        }
    }

    /// Whether a stop was requested.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(StopToken::is_stopped)
    }
}
