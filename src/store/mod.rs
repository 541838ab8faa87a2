//! One interface for a mail store (an IMAP server, a Maildir), used by the sync engine for
//! both sides alike.

use async_trait::async_trait;

pub use crate::imap::spool::{BodyData, BodyRef};
use crate::imap::types::InternalDate;
use crate::state::SideState;
use crate::sync::plan::{Fingerprint, FlagAction, Flags, SideChanges};

pub mod fingerprint;
pub mod imap;
pub mod maildir;
pub mod namespace;

/// A mailbox as a store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// The store's own name for it, in UTF-8 (levels joined by `delimiter`).
    pub name: String,
    /// The hierarchy delimiter, if any.
    pub delimiter: Option<char>,
    /// Whether it can hold messages.
    pub selectable: bool,
    /// Current status, when the listing included it.
    pub status: Option<SideState>,
}

/// How thoroughly to look for changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanMode {
    /// Every change, including flag changes (a full listing where there is no CONDSTORE).
    Full,
    /// offlineimap's quick sync: skip reading flag changes where that needs a full listing.
    Quick,
}

/// What a store found when opening a mailbox for sync.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// The mailbox's status when opened.
    pub status: SideState,
    /// Changes since the saved state.
    pub changes: SideChanges,
}

/// A message read for copying.
#[derive(Debug, Clone)]
pub struct Body {
    /// UID in the source.
    pub uid: u32,
    /// The raw message: in memory, or in a spool file when large.
    pub data: BodyData,
    /// Its INTERNALDATE, if the store has one.
    pub internaldate: Option<InternalDate>,
}

/// A message to store, with the flags and date it must get.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    /// The raw message (in memory or spooled).
    pub data: BodyRef<'a>,
    /// Flags.
    pub flags: &'a Flags,
    /// INTERNALDATE.
    pub internaldate: Option<InternalDate>,
    /// Its identity (for stores that must find it again).
    pub fp: Fingerprint,
}

/// What this side itself changed in the open mailbox (to tell our writes from others').
#[derive(Debug, Clone, Default)]
pub struct OwnChanges {
    /// UIDs we appended, with the flags they got.
    pub appended: Vec<(u32, Flags)>,
    /// UIDs whose flags we set, with the flags they should now have.
    pub flagged: Vec<(u32, Flags)>,
    /// UIDs we expunged.
    pub expunged: Vec<u32>,
    /// Appends whose UID the store could not report.
    pub unknown_appends: usize,
}

impl OwnChanges {
    /// Whether we changed nothing.
    pub fn is_empty(&self) -> bool {
        self.appended.is_empty()
            && self.flagged.is_empty()
            && self.expunged.is_empty()
            && self.unknown_appends == 0
    }
}

/// What [`Store::transfer`] does with the source messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    /// Move them: they leave the source mailbox.
    Move,
    /// Copy them: the source keeps them.
    Copy,
}

/// A mail store connection.
#[async_trait]
pub trait Store: Send {
    /// A short description for logs (`imap alice@host`, `maildir ~/Mail`).
    fn describe(&self) -> String;

    /// Whether the store keeps modification sequences, so an unchanged HIGHESTMODSEQ (with
    /// UIDNEXT and MESSAGES) proves the mailbox unchanged.
    fn tracks_changes(&self) -> bool;

    /// Lists all mailboxes with their status, in as few round trips as the store allows.
    async fn list(&mut self) -> anyhow::Result<Vec<MailboxInfo>>;

    /// Creates a mailbox (with parents as needed).
    async fn create(&mut self, name: &str) -> anyhow::Result<()>;

    /// Opens a mailbox and reports what changed since `saved` (`known` are the UIDs the
    /// saved records hold for this side). `read_only` opens it without changing anything.
    async fn open(
        &mut self,
        name: &str,
        saved: &SideState,
        known: &[u32],
        mode: ScanMode,
        read_only: bool,
    ) -> anyhow::Result<Scan>;

    /// Reads whole messages from the open mailbox, handing each to `sink` as it arrives.
    async fn fetch(
        &mut self,
        uids: &[u32],
        sink: &mut (dyn FnMut(Body) -> anyhow::Result<()> + Send),
    ) -> anyhow::Result<()>;

    /// Stores messages in the open mailbox; returns each one's new UID where known.
    async fn append(&mut self, messages: &[Upload<'_>]) -> anyhow::Result<Vec<Option<u32>>>;

    /// Changes flags in the open mailbox (not if changed since `unchanged_since`); returns
    /// the UIDs that were not changed because they had changed meanwhile or are gone.
    async fn set_flags(
        &mut self,
        actions: &[FlagAction],
        unchanged_since: Option<u64>,
    ) -> anyhow::Result<Vec<u32>>;

    /// Removes messages from the open mailbox.
    async fn expunge(&mut self, uids: &[u32]) -> anyhow::Result<()>;

    /// After this run's changes, returns the state to save: the current status if every
    /// change since `opened` is one of `ours`, else `opened` (so the next run re-reads).
    async fn settle(
        &mut self,
        name: &str,
        opened: &SideState,
        ours: &OwnChanges,
    ) -> anyhow::Result<SideState>;

    /// Checks the connection is alive (IMAP NOOP); used on connections held between syncs.
    /// The messages of the open mailbox with UIDs at or above `from`, with their identity:
    /// lets the engine spot a copy an earlier, killed run had sent and the server stored
    /// only after this run looked (a killed client's fully sent APPEND may still be
    /// committed). `None`: this store has no such late arrivals (it is written in-process).
    async fn arrivals_since(
        &mut self,
        _from: u32,
    ) -> anyhow::Result<Option<Vec<crate::sync::plan::NewMessage>>> {
        Ok(None)
    }

    async fn noop(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Closes the connection.
    async fn close(self: Box<Self>) -> anyhow::Result<()>;

    /// Renames a mailbox (with its children).
    async fn rename(&mut self, from: &str, to: &str) -> anyhow::Result<()> {
        let _ = (from, to);
        anyhow::bail!("{}: renaming mailboxes is not supported", self.describe())
    }

    /// Deletes a mailbox.
    async fn delete(&mut self, name: &str) -> anyhow::Result<()> {
        let _ = name;
        anyhow::bail!("{}: deleting mailboxes is not supported", self.describe())
    }

    /// The hierarchy delimiter of the store's personal folders, when it knows it without a
    /// listing (`None`: take it from the listing).
    fn delimiter(&self) -> Option<Option<char>> {
        None
    }

    /// The store's own full spelling of a store name (for messages): the IMAP store puts
    /// back the namespace prefix it trims.
    fn server_name(&self, name: &str) -> String {
        name.to_string()
    }

    /// Whether [`Store::transfer`] works here (server-side moves and copies).
    fn can_transfer(&self) -> bool {
        false
    }

    /// Moves or copies messages between two mailboxes of this store without reading them
    /// (IMAP `UID MOVE`/`UID COPY`); returns each one's UID in `to` where known. Leaves no
    /// mailbox open.
    async fn transfer(
        &mut self,
        from: &str,
        uids: &[u32],
        to: &str,
        mode: TransferMode,
    ) -> anyhow::Result<Vec<Option<u32>>> {
        let _ = (from, uids, to, mode);
        anyhow::bail!("{}: server-side moves are not supported", self.describe())
    }

    /// The header blocks of messages of a mailbox, by UID (a message gone is absent), to
    /// tell apart messages without Message-ID before a server-side move. Leaves no mailbox
    /// open.
    async fn headers(
        &mut self,
        mailbox: &str,
        uids: &[u32],
    ) -> anyhow::Result<std::collections::HashMap<u32, Vec<u8>>> {
        let _ = (mailbox, uids);
        anyhow::bail!(
            "{}: reading header blocks is not supported",
            self.describe()
        )
    }

    /// Whether [`Store::reselect`] works here: a scan taken by [`Store::open`] (on this or
    /// another connection) can then be acted on after a plain re-selection.
    fn can_reselect(&self) -> bool {
        false
    }

    /// Selects a mailbox whose changes were read earlier by [`Store::open`] (status
    /// `scanned`), without reading them again, so the open-mailbox methods act on it; fails
    /// if its UIDVALIDITY is no longer `scanned`'s. Changes made since are left to
    /// [`Store::settle`] (which does not claim them) and so to the next run.
    async fn reselect(
        &mut self,
        name: &str,
        scanned: &SideState,
        read_only: bool,
    ) -> anyhow::Result<()> {
        let _ = (name, scanned, read_only);
        anyhow::bail!("{}: cannot re-select a mailbox", self.describe())
    }

    /// Lines describing the connection for `--info` (capabilities, security, ...).
    fn details(&self) -> Vec<String> {
        Vec::new()
    }
}
