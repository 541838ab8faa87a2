//! The IMAP store: picks the cheapest way to learn changes from what the server offers,
//! per side, from the capabilities it advertises (minus `-k`/configuration overrides).
//! It never uses an extension the server did not advertise (`protocol-tests/tiers.rs`
//! checks dovecot's rawlog for each tier).
//!
//! - **QRESYNC**: one `SELECT ... (QRESYNC ...)` reports changed flags and VANISHED UIDs.
//! - **CONDSTORE only** (Gmail): flags changed since the saved HIGHESTMODSEQ with
//!   `UID FETCH 1:n (FLAGS) (CHANGEDSINCE m)`; expunges from the message count: when
//!   MESSAGES equals the known UIDs still expected plus the new ones, nothing was removed
//!   and no UID list is read; otherwise one `UID SEARCH UID 1:n` gives the UIDs present.
//!   (ESEARCH would shorten that reply, but imap-codec cannot parse `* ESEARCH`, so it is
//!   not used.)
//! - **Neither** (Exchange, many hosts), offlineimap's semantics: a *full* sync lists every
//!   UID and its flags in each mailbox; a *quick* sync (`-q`, or `quick = N`) reads only
//!   the status and the new messages, and the UID list when the count shows an expunge.
//!   What quick can miss, exactly: **flag changes (keywords and `\Deleted` marks
//!   included) made on a side without CONDSTORE**. A mailbox whose UIDVALIDITY, UIDNEXT
//!   and MESSAGES are unchanged on that side is not opened there at all; one that is
//!   opened has its flags not read (the planner infers no removal from that side).
//!   New messages, expunges and UIDVALIDITY changes are always seen (they move UIDNEXT or
//!   MESSAGES), so quick never loses or duplicates a message; flag changes on the other
//!   side (one with CONDSTORE, or a Maildir) are still pushed, as `+FLAGS`/`-FLAGS` of
//!   just what changed, so they never undo the missed change. The next full sync applies
//!   what quick skipped, three-way merged as usual.
//! - **Without UIDPLUS**: an appended message's UID is found without changing the message
//!   (no added header): its identity (Message-ID with date or size; size and date without
//!   one) among UIDs at or above the UIDNEXT seen before the APPEND, and only when the
//!   match is unambiguous; otherwise nothing is recorded and the pending copy is re-matched
//!   among the new messages of the next run. Expunges use `UID EXPUNGE` only with UIDPLUS;
//!   without it a plain EXPUNGE is sent only when no other message is marked `\Deleted`.
//!   An APPENDUID is trusted only from a server advertising UIDPLUS and only when it names
//!   the mailbox's UIDVALIDITY.
//! - Without LIST-STATUS: LIST, then one STATUS per mailbox, pipelined. Without LITERAL+:
//!   synchronising literals. Without MULTIAPPEND: one APPEND per message, each sent as soon
//!   as the server's continuation for its literal allows, without waiting for the previous
//!   one to complete.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use async_trait::async_trait;
use imap_types::flag::StoreType;

use super::namespace::FolderRoot;
use super::{Body, BodyData, MailboxInfo, OwnChanges, Scan, ScanMode, Store, TransferMode, Upload};

mod transfer;
use crate::imap::commands::FetchItems;
use crate::imap::types::{expand_ranges, uid_set, AppendMessage};
use crate::imap::{utf7, ConnectOptions, Session};
use crate::state::SideState;
use crate::sync::plan::{normalize_flags, FlagAction, Flags, NewMessage};

/// What is read of each new message: its flags and identity.
const NEW_ITEMS: FetchItems = FetchItems {
    flags: true,
    modseq: false,
    internaldate: true,
    size: true,
    body: false,
    message_id: true,
    header: false,
};

/// The new messages (UID at or above `from_uid`) among `got`, by UID, once each.
fn new_messages(from_uid: u32, got: Vec<crate::imap::types::FetchedMessage>) -> Vec<NewMessage> {
    // `N:*` also returns the last message when N is past it (RFC 3501 6.4.8), and Office
    // 365 has been seen answering `1620:*` with UID 1619
    // (https://github.com/mjs/imapclient/issues/441): filter.
    let mut out: Vec<NewMessage> = got
        .into_iter()
        .filter(|m| m.uid >= from_uid)
        .map(|m| NewMessage {
            uid: m.uid,
            fp: fingerprint_of(&m),
            flags: normalize_flags(m.flags.unwrap_or_default()),
        })
        .collect();
    // A server may repeat a FETCH response (an unsolicited one for the same message).
    out.sort_by_key(|m| m.uid);
    out.dedup_by_key(|m| m.uid);
    out
}

/// Most UIDs expanded from one VANISHED or COPYUID reply.
const MAX_EXPAND: usize = 10_000_000;

mod append;
mod lies;
mod scan;

pub use lies::{Lie, ServerLie};

use append::fingerprint_of;

/// A mail store on an IMAP server.
pub struct ImapStore {
    session: Session,
    label: String,
    opened: Option<Vec<u8>>,
    /// UIDVALIDITY of the open mailbox (an APPENDUID naming another is not trusted).
    uidvalidity: u32,
    /// Without APPENDUID: UIDs at or above this in the open mailbox may be our appends.
    append_floor: u32,
    /// UIDs of the open mailbox this session identified as its own appends.
    claimed: HashSet<u32>,
    root: FolderRoot,
    /// UIDNEXT of each mailbox (server name) as the last listing reported it: a scan of a
    /// mailbox that grew fetches its new messages in the SELECT's round trip.
    listed: HashMap<Vec<u8>, u32>,
}

impl ImapStore {
    /// Connects and authenticates.
    pub async fn connect(opts: &ConnectOptions) -> anyhow::Result<ImapStore> {
        let mut session = Session::connect(opts).await?;
        let namespaces = session
            .namespaces()
            .await
            .context("reading the server's namespaces")?;
        let root = FolderRoot::new(namespaces, opts.reference.as_deref(), opts.namespaces);
        tracing::debug!(target: "twinbox::imap", "{}: {}", opts.label, root.describe().join("; "));
        Ok(ImapStore {
            session,
            label: opts.label.clone(),
            opened: None,
            uidvalidity: 0,
            append_floor: 0,
            claimed: HashSet::new(),
            root,
            listed: HashMap::new(),
        })
    }

    /// How this server's names map to twinbox's (namespaces, root, delimiter).
    pub fn folder_root(&self) -> &FolderRoot {
        &self.root
    }

    /// The underlying session (for counters and capabilities).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The server's name (modified UTF-7) of a namespace-relative name.
    fn raw(&self, name: &str) -> Vec<u8> {
        if name.eq_ignore_ascii_case("INBOX") {
            return b"INBOX".to_vec();
        }
        utf7::encode(&self.root.to_server(name)).into_bytes()
    }

    /// "`name` (`server spelling`)" for error messages.
    fn spell(&self, name: &str) -> String {
        let full = self.root.to_server(name);
        if full == name {
            format!("{name:?}")
        } else {
            format!("{name:?} (on the server {full:?})")
        }
    }

    fn opened(&self) -> anyhow::Result<&[u8]> {
        self.opened
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("internal: no mailbox open"))
    }

    /// Without APPENDUID, UIDs at or above the scan's UIDNEXT may be our appends.
    fn set_append_floor(&mut self, scan: &Scan, known: &[u32]) {
        self.append_floor = if scan.status.uidnext != 0 {
            scan.status.uidnext
        } else {
            // No UIDNEXT from the server: above every UID we know of.
            let top_known = known.iter().copied().max().unwrap_or(0);
            let top_new = scan.changes.new.iter().map(|m| m.uid).max().unwrap_or(0);
            top_known.max(top_new).saturating_add(1)
        };
    }

    async fn fetch_new(&mut self, from_uid: u32) -> anyhow::Result<Vec<NewMessage>> {
        let mut got = Vec::new();
        self.session
            .uid_fetch(
                &format!("{}:*", from_uid.max(1)),
                NEW_ITEMS,
                None,
                false,
                &mut |m| {
                    got.push(m);
                    Ok(())
                },
            )
            .await?;
        Ok(new_messages(from_uid, got))
    }
}

#[async_trait]
impl Store for ImapStore {
    fn describe(&self) -> String {
        format!("imap {}", self.label)
    }

    fn tracks_changes(&self) -> bool {
        self.session.condstore
    }

    async fn list(&mut self) -> anyhow::Result<Vec<MailboxInfo>> {
        let mut list = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for pattern in self.root.list_patterns() {
            for m in self.session.list("", &pattern, true).await? {
                if seen.insert(m.raw.clone()) {
                    list.push(m);
                }
            }
        }
        self.listed = list
            .iter()
            .filter_map(|m| Some((m.raw.clone(), m.status.as_ref()?.uidnext?)))
            .collect();
        let root = &self.root;
        Ok(list
            .into_iter()
            .filter_map(|m| {
                let selectable = m.selectable();
                let name = root.to_relative(&m.name)?;
                Some(MailboxInfo {
                    status: m.status.map(|s| SideState {
                        uidvalidity: s.uidvalidity.unwrap_or(0),
                        uidnext: s.uidnext.unwrap_or(0),
                        highestmodseq: s.highestmodseq.unwrap_or(0),
                        messages: s.messages.unwrap_or(0),
                    }),
                    name,
                    delimiter: m.delimiter,
                    selectable,
                })
            })
            .collect())
    }

    async fn create(&mut self, name: &str) -> anyhow::Result<()> {
        self.root.check_creatable(name)?;
        let raw = self.raw(name);
        let first = match self.session.create(&raw).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // Some servers want the parents first: create them (an existing one just answers
        // NO), then try again; report the first refusal if that fails too.
        let parents = match self.root.delimiter {
            Some(d) if name.contains(d) => {
                let parts: Vec<&str> = name.split(d).collect();
                (1..parts.len())
                    .map(|n| parts[..n].join(&d.to_string()))
                    .collect::<Vec<_>>()
            }
            _ => Vec::new(),
        };
        if parents.is_empty() || !matches!(first, crate::imap::ImapError::Command { .. }) {
            return Err(anyhow::Error::new(first))
                .with_context(|| format!("cannot create mailbox {}", self.spell(name)));
        }
        for p in parents {
            let raw = self.raw(&p);
            if let Err(e) = self.session.create(&raw).await {
                if !matches!(e, crate::imap::ImapError::Command { .. }) {
                    return Err(e.into());
                }
            }
        }
        if self.session.create(&raw).await.is_err() {
            return Err(anyhow::Error::new(first))
                .with_context(|| format!("cannot create mailbox {}", self.spell(name)));
        }
        Ok(())
    }

    async fn open(
        &mut self,
        name: &str,
        saved: &SideState,
        known: &[u32],
        mode: ScanMode,
        read_only: bool,
    ) -> anyhow::Result<Scan> {
        let scan = self.scan(name, saved, known, mode, read_only).await?;
        self.set_append_floor(&scan, known);
        Ok(scan)
    }

    async fn fetch(
        &mut self,
        uids: &[u32],
        sink: &mut (dyn FnMut(Body) -> anyhow::Result<()> + Send),
    ) -> anyhow::Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        let items = FetchItems {
            internaldate: true,
            body: true,
            ..Default::default()
        };
        let mut err = None;
        let mut missing: HashSet<u32> = uids.iter().copied().collect();
        self.session
            .uid_fetch(&uid_set(uids), items, None, false, &mut |m| {
                // No content (`BODY[] NIL`, or no FETCH at all: Exchange does both for a
                // message it cannot convert, https://github.com/OfflineIMAP/offlineimap/issues/62)
                // is never stored as an empty message: the copy stays pending.
                let data = match (m.body, m.body_spool) {
                    (_, Some(sp)) => Some(BodyData::Spool(sp)),
                    (Some(b), None) => Some(BodyData::Memory(b)),
                    (None, None) => None,
                };
                if let Some(data) = data.filter(|d| !d.is_empty()) {
                    missing.remove(&m.uid);
                    if err.is_none() {
                        if let Err(e) = sink(Body {
                            uid: m.uid,
                            data,
                            internaldate: m.internaldate,
                        }) {
                            err = Some(e);
                        }
                    }
                }
                Ok(())
            })
            .await?;
        if !missing.is_empty() {
            let mut v: Vec<u32> = missing.into_iter().collect();
            v.sort_unstable();
            tracing::warn!(
                "{}: the server returned no content for UID {} (expunged meanwhile, or a message it cannot deliver): not copied this run",
                self.label,
                uid_set(&v)
            );
        }
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn append(&mut self, messages: &[Upload<'_>]) -> anyhow::Result<Vec<Option<u32>>> {
        let raw = self.opened()?.to_vec();
        let flag_vecs: Vec<Vec<String>> = messages
            .iter()
            .map(|m| m.flags.iter().cloned().collect())
            .collect();
        let batch: Vec<AppendMessage<'_>> = messages
            .iter()
            .zip(&flag_vecs)
            .map(|(m, f)| AppendMessage {
                flags: f,
                internaldate: m.internaldate,
                body: m.data,
            })
            .collect();
        let res = self.session.append(&raw, &batch).await?;
        // APPENDUID is trusted only from a server that advertises UIDPLUS (dovecot sends it
        // regardless; a server that does not claim UIDPLUS gives no promise about it).
        // An APPENDUID naming another UIDVALIDITY is wrong (DavMail sent the two numbers
        // swapped: https://github.com/mguessan/davmail/issues/315): look the message up.
        let uidplus = self.session.has("UIDPLUS");
        let uidvalidity = self.uidvalidity;
        let mut uids: Vec<Option<u32>> = res
            .into_iter()
            .map(|r| {
                r.filter(|(v, _)| uidplus && *v == uidvalidity)
                    .map(|(_, uid)| uid)
            })
            .collect();
        if uids.iter().any(Option::is_none) {
            // No APPENDUID (no UIDPLUS, or a server that omits it): look the messages up.
            self.find_appended(messages, &mut uids).await?;
        }
        for u in uids.iter().flatten() {
            self.claimed.insert(*u);
            self.append_floor = self.append_floor.max(u.saturating_add(1));
        }
        Ok(uids)
    }

    async fn set_flags(
        &mut self,
        actions: &[FlagAction],
        unchanged_since: Option<u64>,
    ) -> anyhow::Result<Vec<u32>> {
        let mut failed = Vec::new();
        if unchanged_since.is_some() && self.session.condstore {
            // One atomic `FLAGS (target)` per message set, guarded by UNCHANGEDSINCE: a
            // `-FLAGS` then `+FLAGS` pair would fail its second half on the MODSEQ our
            // first half produced.
            let mut groups: HashMap<Vec<String>, Vec<u32>> = HashMap::new();
            // Only a change that both adds and removes needs the replacement; a pure
            // addition or removal is one `+FLAGS`/`-FLAGS` below and cannot undo a flag
            // another client set meanwhile.
            for a in actions {
                if !a.add.is_empty() && !a.remove.is_empty() {
                    groups
                        .entry(a.target.iter().cloned().collect())
                        .or_default()
                        .push(a.uid);
                }
            }
            for (flags, uids) in groups {
                let r = self
                    .session
                    .uid_store(
                        &uid_set(&uids),
                        StoreType::Replace,
                        &flags,
                        unchanged_since,
                        true,
                    )
                    .await?;
                failed.extend(r.modified);
            }
        }
        let replace_done = unchanged_since.is_some() && self.session.condstore;
        // Group UIDs that get the same change into one command each.
        let mut groups: HashMap<(bool, Vec<String>), Vec<u32>> = HashMap::new();
        for a in actions {
            if replace_done && !a.add.is_empty() && !a.remove.is_empty() {
                continue;
            }
            if !a.add.is_empty() {
                groups
                    .entry((true, a.add.iter().cloned().collect()))
                    .or_default()
                    .push(a.uid);
            }
            if !a.remove.is_empty() {
                groups
                    .entry((false, a.remove.iter().cloned().collect()))
                    .or_default()
                    .push(a.uid);
            }
        }
        for ((add, flags), uids) in groups {
            let kind = if add {
                StoreType::Add
            } else {
                StoreType::Remove
            };
            let r = self
                .session
                .uid_store(&uid_set(&uids), kind, &flags, unchanged_since, true)
                .await?;
            failed.extend(r.modified);
        }
        failed.sort_unstable();
        failed.dedup();
        Ok(failed)
    }

    async fn expunge(&mut self, uids: &[u32]) -> anyhow::Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        // Not pipelined with the UID EXPUNGE: dovecot runs the two in parallel and can
        // expunge before the STORE's \Deleted is visible to it (seen in sync_crash.rs).
        self.session
            .uid_store(&set, StoreType::Add, &["\\Deleted".to_string()], None, true)
            .await?;
        if self.session.has("UIDPLUS") {
            self.session.uid_expunge(&set).await?;
        } else {
            // Without UIDPLUS an EXPUNGE removes every \Deleted message: only do it when
            // ours are the only ones.
            let deleted = self.session.uid_search_raw("DELETED").await?;
            let ours: HashSet<u32> = uids.iter().copied().collect();
            if deleted.iter().all(|u| ours.contains(u)) {
                self.session.expunge_all().await?;
            } else {
                tracing::warn!(
                    "{}: server lacks UIDPLUS and other messages are marked \\Deleted: marked {} message(s) deleted without expunging",
                    self.label,
                    uids.len()
                );
            }
        }
        Ok(())
    }

    async fn settle(
        &mut self,
        name: &str,
        opened: &SideState,
        ours: &OwnChanges,
    ) -> anyhow::Result<SideState> {
        if ours.is_empty() {
            return Ok(*opened);
        }
        if ours.unknown_appends > 0 {
            return Ok(*opened);
        }
        let raw = self.raw(name);
        // STATUS, then (once it has answered) the changes since the open. Not pipelined:
        // dovecot runs independent pipelined commands in parallel (a pipelined UID STORE
        // and UID EXPUNGE were seen to interleave), and the fetch must see every change
        // up to the STATUS snapshot.
        let now = self.session.status(&raw).await?;
        let now = SideState {
            uidvalidity: now.uidvalidity.unwrap_or(0),
            uidnext: now.uidnext.unwrap_or(0),
            highestmodseq: now.highestmodseq.unwrap_or(0),
            messages: now.messages.unwrap_or(0),
        };
        if now.uidvalidity != opened.uidvalidity || now.uidnext == 0 {
            return Ok(*opened);
        }
        let mut expected: HashMap<u32, &Flags> = HashMap::new();
        for (u, f) in ours.appended.iter().chain(ours.flagged.iter()) {
            expected.insert(*u, f);
        }
        let mut explained = true;
        if self.session.condstore && opened.highestmodseq != 0 && now.highestmodseq != 0 {
            let items = FetchItems {
                flags: true,
                modseq: true,
                ..Default::default()
            };
            let qresync = self.session.qresync;
            let gone = self
                .session
                .uid_fetch(
                    "1:*",
                    items,
                    Some(opened.highestmodseq),
                    qresync,
                    &mut |m| {
                        if m.modseq.is_some_and(|ms| ms > now.highestmodseq) {
                            return Ok(()); // after the snapshot: the next run sees it
                        }
                        let f = normalize_flags(m.flags.unwrap_or_default());
                        if expected.get(&m.uid).is_none_or(|e| **e != f) {
                            explained = false;
                        }
                        Ok(())
                    },
                )
                .await?;
            let ours_gone: HashSet<u32> = ours.expunged.iter().copied().collect();
            let gone = expand_ranges(&gone, MAX_EXPAND).unwrap_or_default();
            if gone.iter().any(|u| !ours_gone.contains(u)) {
                explained = false;
            }
            if !qresync && !ours.expunged.is_empty() {
                // Without VANISHED we cannot tell our expunges from others': keep the
                // count check of the next run honest by not advancing.
                explained = explained
                    && now.messages as usize + ours.expunged.len() >= opened.messages as usize;
            }
        } else {
            let appended: HashSet<u32> = ours.appended.iter().map(|(u, _)| *u).collect();
            let from = opened.uidnext.max(1);
            self.session
                .uid_fetch(
                    &format!("{from}:*"),
                    FetchItems::default(),
                    None,
                    false,
                    &mut |m| {
                        if m.uid >= from && !appended.contains(&m.uid) {
                            explained = false;
                        }
                        Ok(())
                    },
                )
                .await?;
            let expected_count =
                opened.messages as i64 + ours.appended.len() as i64 - ours.expunged.len() as i64;
            if now.messages as i64 != expected_count {
                explained = false;
            }
        }
        Ok(if explained { now } else { *opened })
    }

    async fn arrivals_since(&mut self, from: u32) -> anyhow::Result<Option<Vec<NewMessage>>> {
        // A FETCH only sees the messages the session was told of: a NOOP first makes the
        // server announce what other sessions stored since our last command.
        self.session.noop().await?;
        Ok(Some(self.fetch_new(from).await?))
    }

    async fn noop(&mut self) -> anyhow::Result<()> {
        self.session.noop().await?;
        Ok(())
    }

    async fn close(self: Box<Self>) -> anyhow::Result<()> {
        self.session.logout().await?;
        Ok(())
    }

    async fn rename(&mut self, from: &str, to: &str) -> anyhow::Result<()> {
        self.root.check_creatable(to)?;
        let (a, b) = (self.raw(from), self.raw(to));
        self.session.rename(&a, &b).await.with_context(|| {
            format!(
                "cannot rename mailbox {} to {}",
                self.spell(from),
                self.spell(to)
            )
        })
    }

    async fn delete(&mut self, name: &str) -> anyhow::Result<()> {
        let raw = self.raw(name);
        self.session
            .delete(&raw)
            .await
            .with_context(|| format!("cannot delete mailbox {}", self.spell(name)))
    }

    fn can_transfer(&self) -> bool {
        self.transfer_supported()
    }

    fn can_reselect(&self) -> bool {
        true
    }

    async fn headers(
        &mut self,
        mailbox: &str,
        uids: &[u32],
    ) -> anyhow::Result<HashMap<u32, Vec<u8>>> {
        self.header_blocks(mailbox, uids).await
    }

    async fn reselect(
        &mut self,
        name: &str,
        scanned: &SideState,
        read_only: bool,
    ) -> anyhow::Result<()> {
        self.reselect_mailbox(name, scanned, read_only).await
    }

    async fn transfer(
        &mut self,
        from: &str,
        uids: &[u32],
        to: &str,
        mode: TransferMode,
    ) -> anyhow::Result<Vec<Option<u32>>> {
        self.transfer_uids(from, uids, to, mode).await
    }

    fn details(&self) -> Vec<String> {
        let s = &self.session;
        let mut v = vec![
            format!(
                "capabilities: {}",
                s.capabilities().iter().collect::<Vec<_>>().join(" ")
            ),
            format!(
                "encrypted: {}, compressed: {}, CONDSTORE: {}, QRESYNC: {}",
                yes(s.encrypted),
                yes(s.compressed),
                yes(s.condstore),
                yes(s.qresync)
            ),
        ];
        v.extend(self.root.describe());
        v
    }

    fn server_name(&self, name: &str) -> String {
        self.root.to_server(name)
    }

    fn delimiter(&self) -> Option<Option<char>> {
        Some(self.root.delimiter)
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
