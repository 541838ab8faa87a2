//! The native Maildir store: twinbox reads and writes a Maildir tree itself, behind the same
//! [`Store`] interface as an IMAP server, so the sync engine treats both alike.
//!
//! - Layout ([`layout`]): one Maildir per folder, nested (`sep = /`) or Maildir++
//!   (`sep = .`), INBOX at the root or in `INBOX/`.
//! - Flags live in file names (`:2,` + sorted letters), keywords in dovecot's format
//!   ([`keywords`]); `\Recent` is never stored. Mail in `new/` is synced like any other
//!   and stays there until a flag change moves it to `cur/` (as mbsync does).
//! - UIDs come from a per-repository map in the metadata directory ([`uidmap`]), keyed by
//!   each file's unique part, so a mail reader's rename (a flag change) keeps the UID.
//! - Every change seen or made bumps a per-folder counter reported as HIGHESTMODSEQ: the
//!   store [tracks changes](Store::tracks_changes), and a folder whose `cur/` and `new/`
//!   stamps did not move is reported from the map without being read ([`scan`]).
//! - Writes are crash-safe: `tmp/`, fsync, rename, fsync of the directory, then the map.
//!   A message's content is never rewritten: LF-only files are served with CRLF.
//! - A file a mail reader moves to another folder keeps its unique part but UIDs are per
//!   folder: the sync sees it leave one folder and arrive in the other, so it is
//!   expunged there and uploaded here on the other side (nothing lost or duplicated; not
//!   a server-side MOVE).

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;

use super::{Body, MailboxInfo, OwnChanges, Scan, ScanMode, Store, TransferMode, Upload};
use crate::imap::types::InternalDate;
use crate::state::SideState;
use crate::sync::plan::{FlagAction, NewMessage};

mod admin;
pub mod body;
pub mod dovecot;
pub mod filename;
pub mod keywords;
pub mod layout;
pub mod scan;
mod transfer;
pub mod uidmap;
mod write;

pub use layout::{Inbox, Layout};
use scan::Folder;
use uidmap::UidMap;

/// How to open a native Maildir store.
#[derive(Debug, Clone)]
pub struct MaildirOptions {
    /// The tree's shape.
    pub layout: Layout,
    /// fsync files and directories after writing.
    pub fsync: bool,
    /// The UID map database.
    pub map_path: PathBuf,
    /// Counts folders read in full (for tests and benchmarks).
    pub reads: Arc<AtomicU64>,
    /// Keyword letters fixed by the configuration (`customflag_x = keyword`); the others
    /// come from each folder's `dovecot-keywords`.
    pub customflags: std::collections::BTreeMap<char, String>,
    /// `--dry-run`: change nothing on disk, the UID map included (a scratch copy of the
    /// map takes the UIDs that reading assigns), and create no root directory.
    pub dry_run: bool,
}

impl MaildirOptions {
    /// Options with fsync on and a fresh read counter.
    pub fn new(layout: Layout, map_path: PathBuf) -> Self {
        MaildirOptions {
            layout,
            fsync: true,
            map_path,
            reads: Arc::new(AtomicU64::new(0)),
            customflags: Default::default(),
            dry_run: false,
        }
    }
}

/// A Maildir tree as a mail store.
pub struct MaildirStore {
    opts: MaildirOptions,
    map: UidMap,
    open: Option<Folder>,
    /// The scratch copy of the map in a dry run (removed when the store goes).
    _scratch: Option<tempfile::TempPath>,
}

fn status_of(f: &Folder) -> SideState {
    row_status(&f.row)
}

fn row_status(row: &uidmap::FolderRow) -> SideState {
    SideState {
        uidvalidity: row.uidvalidity,
        uidnext: row.uidnext,
        highestmodseq: row.modseq,
        messages: row.messages,
    }
}

impl MaildirStore {
    /// Opens the store (creating the root directory and the map as needed).
    pub fn open_store(opts: &MaildirOptions) -> anyhow::Result<MaildirStore> {
        let root = &opts.layout.root;
        if opts.dry_run {
            let scratch = admin::scratch_copy(&opts.map_path)?;
            let map = UidMap::open(&scratch, root, false)?;
            return Ok(MaildirStore {
                opts: opts.clone(),
                map,
                open: None,
                _scratch: Some(scratch),
            });
        }
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create the Maildir root {}", root.display()))?;
        let map = UidMap::open(&opts.map_path, root, opts.fsync)?;
        Ok(MaildirStore {
            opts: opts.clone(),
            map,
            open: None,
            _scratch: None,
        })
    }

    fn folder_mut(&mut self) -> anyhow::Result<&mut Folder> {
        self.open
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("internal: no Maildir folder open"))
    }

    /// A folder's status: from the map alone when its stamps prove it unchanged (no
    /// message rows loaded, no directory read), else after reading it.
    fn status(&self, name: &str) -> anyhow::Result<SideState> {
        let dir = self.opts.layout.path(name)?;
        if let Some(row) = self.map.folder(name)? {
            if scan::unchanged(&row, &dir) {
                return Ok(row_status(&row));
            }
        }
        let (f, _) = self.load_fresh(name)?;
        Ok(status_of(&f))
    }

    /// Loads a folder and reads it from disk unless its stamps prove it unchanged;
    /// returns it and whether reading found changes.
    fn load_fresh(&self, name: &str) -> anyhow::Result<(Folder, bool)> {
        let dir = self.opts.layout.path(name)?;
        if !layout::is_maildir(&dir) {
            anyhow::bail!("no Maildir folder {name:?} ({} has no cur/)", dir.display());
        }
        let mut f = Folder::load(&self.map, name, dir, &self.opts.customflags)?;
        let mut changed = false;
        if !scan::unchanged(&f.row, &f.dir) {
            changed = scan::rescan(&self.map, &mut f, &self.opts.reads)?;
        }
        Ok((f, changed))
    }
}

#[async_trait]
impl Store for MaildirStore {
    fn describe(&self) -> String {
        format!("maildir {}", self.opts.layout.root.display())
    }

    fn tracks_changes(&self) -> bool {
        true
    }

    async fn list(&mut self) -> anyhow::Result<Vec<MailboxInfo>> {
        let mut out = Vec::new();
        let reads_before = self.opts.reads.load(std::sync::atomic::Ordering::Relaxed);
        for (name, _) in self.opts.layout.list()? {
            // A folder that cannot be read is listed without status: the engine opens it,
            // and that one folder fails with the reason while the others sync.
            let status = match self.status(&name) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(target: "twinbox::maildir", "{name}: {e:#}");
                    None
                }
            };
            out.push(MailboxInfo {
                name,
                delimiter: Some(self.opts.layout.sep),
                selectable: true,
                status,
            });
        }
        let read = self.opts.reads.load(std::sync::atomic::Ordering::Relaxed) - reads_before;
        tracing::debug!(target: "twinbox::maildir", "{}: {} folders, {read} read (the rest unchanged on disk)", self.describe(), out.len());
        Ok(out)
    }

    async fn create(&mut self, name: &str) -> anyhow::Result<()> {
        self.opts
            .layout
            .create(name, self.opts.fsync)
            .with_context(|| format!("cannot create Maildir folder {name:?}"))?;
        Ok(())
    }

    async fn open(
        &mut self,
        name: &str,
        saved: &SideState,
        known: &[u32],
        _mode: ScanMode,
        _read_only: bool,
    ) -> anyhow::Result<Scan> {
        self.open = None;
        let (f, _) = self.load_fresh(name)?;
        let mut scan = Scan {
            status: status_of(&f),
            ..Default::default()
        };
        let ch = &mut scan.changes;
        let new_of = |m: &uidmap::MsgRow| NewMessage {
            uid: m.uid,
            flags: m.flags.clone(),
            fp: m.fp,
        };
        if saved.uidvalidity != f.row.uidvalidity {
            ch.uidvalidity_changed = saved.uidvalidity != 0;
            ch.new = f.msgs.values().map(new_of).collect();
            self.open = Some(f);
            return Ok(scan);
        }
        let since = saved.uidnext.max(1);
        ch.new = f.msgs.range(since..).map(|(_, m)| new_of(m)).collect();
        for u in known {
            match f.msgs.get(u) {
                None => {
                    ch.vanished.insert(*u);
                }
                Some(m)
                    if *u < since
                        && (saved.highestmodseq == 0 || m.modseq > saved.highestmodseq) =>
                {
                    ch.flags.insert(*u, (m.flags.clone(), Some(m.modseq)));
                }
                Some(_) => {}
            }
        }
        self.open = Some(f);
        Ok(scan)
    }

    async fn fetch(
        &mut self,
        uids: &[u32],
        sink: &mut (dyn FnMut(Body) -> anyhow::Result<()> + Send),
    ) -> anyhow::Result<()> {
        let reads = self.opts.reads.clone();
        for uid in uids {
            let data = {
                let f = self.folder_mut()?;
                let Some(m) = f.msgs.get(uid) else { continue };
                match body::read_body(&f.path_of(m)) {
                    Ok(d) => Some(d),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("cannot read {}", f.path_of(m).display()))
                    }
                }
            };
            let data = match data {
                Some(d) => d,
                None => {
                    // Renamed (or deleted) by someone else since the scan: look again.
                    let map = &self.map;
                    let f = self
                        .open
                        .as_mut()
                        .ok_or_else(|| anyhow::anyhow!("internal: no Maildir folder open"))?;
                    scan::rescan(map, f, &reads)?;
                    let Some(m) = f.msgs.get(uid) else { continue };
                    match body::read_body(&f.path_of(m)) {
                        Ok(d) => d,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => {
                            return Err(e)
                                .with_context(|| format!("cannot read {}", f.path_of(m).display()))
                        }
                    }
                }
            };
            let date = self
                .open
                .as_ref()
                .and_then(|f| f.msgs.get(uid))
                .map(|m| m.fp.date)
                .unwrap_or(0);
            sink(Body {
                uid: *uid,
                data,
                internaldate: Some(InternalDate {
                    unix: date,
                    offset: 0,
                }),
            })?;
        }
        Ok(())
    }

    async fn append(&mut self, messages: &[Upload<'_>]) -> anyhow::Result<Vec<Option<u32>>> {
        self.append_messages(messages)
    }

    async fn set_flags(
        &mut self,
        actions: &[FlagAction],
        unchanged_since: Option<u64>,
    ) -> anyhow::Result<Vec<u32>> {
        self.store_flags(actions, unchanged_since)
    }

    async fn expunge(&mut self, uids: &[u32]) -> anyhow::Result<()> {
        self.remove(uids)
    }

    async fn settle(
        &mut self,
        _name: &str,
        opened: &SideState,
        ours: &OwnChanges,
    ) -> anyhow::Result<SideState> {
        if ours.is_empty() {
            return Ok(*opened);
        }
        // Our writes moved the directory stamps: read the folder again now, so the next
        // run need not, and so changes by others meanwhile are not taken for ours.
        let reads = self.opts.reads.clone();
        let map = &self.map;
        let f = self
            .open
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("internal: no Maildir folder open"))?;
        let others = scan::rescan(map, f, &reads)?;
        Ok(if others { *opened } else { status_of(f) })
    }

    fn can_transfer(&self) -> bool {
        !self.opts.dry_run
    }

    async fn headers(
        &mut self,
        mailbox: &str,
        uids: &[u32],
    ) -> anyhow::Result<std::collections::HashMap<u32, Vec<u8>>> {
        self.header_blocks(mailbox, uids)
    }

    async fn transfer(
        &mut self,
        from: &str,
        uids: &[u32],
        to: &str,
        mode: TransferMode,
    ) -> anyhow::Result<Vec<Option<u32>>> {
        self.transfer_files(from, uids, to, mode)
    }

    async fn close(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }

    async fn rename(&mut self, from: &str, to: &str) -> anyhow::Result<()> {
        self.open = None;
        admin::rename(&self.opts.layout, &self.map, from, to, self.opts.fsync)
    }

    async fn delete(&mut self, name: &str) -> anyhow::Result<()> {
        self.open = None;
        admin::delete(&self.opts.layout, &self.map, name, self.opts.fsync)
    }
}

#[cfg(test)]
mod tests;
