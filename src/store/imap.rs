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

use super::fingerprint::message_id_hash;
use super::namespace::FolderRoot;
use super::{Body, MailboxInfo, OwnChanges, Scan, ScanMode, Store, TransferMode, Upload};

mod transfer;
use crate::imap::commands::{FetchItems, QresyncParams};
use crate::imap::types::{expand_ranges, uid_set, AppendMessage};
use crate::imap::{utf7, ConnectOptions, Session};
use crate::state::SideState;
use crate::sync::plan::{normalize_flags, Fingerprint, FlagAction, Flags, NewMessage};

/// Most UIDs expanded from one VANISHED or COPYUID reply.
const MAX_EXPAND: usize = 10_000_000;

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

    async fn fetch_new(&mut self, from_uid: u32) -> anyhow::Result<Vec<NewMessage>> {
        let mut out = Vec::new();
        let items = FetchItems {
            flags: true,
            internaldate: true,
            size: true,
            message_id: true,
            ..Default::default()
        };
        self.session
            .uid_fetch(
                &format!("{}:*", from_uid.max(1)),
                items,
                None,
                false,
                &mut |m| {
                    // `N:*` also returns the last message when N is past it: filter.
                    if m.uid >= from_uid {
                        out.push(NewMessage {
                            uid: m.uid,
                            fp: fingerprint_of(&m),
                            flags: normalize_flags(m.flags.unwrap_or_default()),
                        });
                    }
                    Ok(())
                },
            )
            .await?;
        // A server may repeat a FETCH response (an unsolicited one for the same message).
        out.sort_by_key(|m| m.uid);
        out.dedup_by_key(|m| m.uid);
        Ok(out)
    }

    /// Selects a mailbox and reads what changed since `saved`, by the cheapest means the
    /// server offers: QRESYNC (one SELECT), CONDSTORE (`CHANGEDSINCE`, expunges by UID
    /// count and, when the count does not add up, `UID SEARCH`), or neither (a full sync
    /// lists every UID and flag; a quick one reads only new messages and the UID set).
    async fn scan(
        &mut self,
        name: &str,
        saved: &SideState,
        known: &[u32],
        mode: ScanMode,
        read_only: bool,
    ) -> anyhow::Result<Scan> {
        let raw = self.raw(name);
        let use_qresync =
            self.session.qresync && saved.uidvalidity != 0 && saved.highestmodseq != 0;
        let qparams = use_qresync.then(|| QresyncParams {
            uidvalidity: saved.uidvalidity,
            modseq: saved.highestmodseq,
            known_uids: Some(uid_set(known)),
        });
        self.opened = None;
        let info = self
            .session
            .select(&raw, read_only, qparams.as_ref())
            .await
            .with_context(|| format!("cannot open mailbox {}", self.spell(name)))?;
        self.opened = Some(raw.clone());
        self.claimed.clear();
        let uidvalidity = info
            .uidvalidity
            .ok_or_else(|| anyhow::anyhow!("the server sent no UIDVALIDITY for {name:?}"))?;
        self.uidvalidity = uidvalidity;
        let mut uidnext = info.uidnext;
        if uidnext.is_none() {
            // Some servers leave UIDNEXT out of SELECT but answer STATUS (Winmail Pro,
            // https://github.com/modern-email/defects/issues/43; the fix chatmail made,
            // https://github.com/chatmail/core/pull/4842). Without either, 0: the new
            // messages are then found from the saved UIDNEXT on.
            uidnext = match self.session.status(&raw).await {
                Ok(st) => st.uidnext,
                Err(crate::imap::ImapError::Command { .. }) => None,
                Err(e) => return Err(e.into()),
            };
        }
        let mut scan = Scan {
            status: SideState {
                uidvalidity,
                uidnext: uidnext.unwrap_or(0),
                highestmodseq: info.highestmodseq.unwrap_or(0),
                messages: info.exists,
            },
            ..Default::default()
        };
        if saved.uidvalidity != 0
            && saved.highestmodseq > scan.status.highestmodseq
            && scan.status.highestmodseq != 0
            && saved.uidvalidity == uidvalidity
        {
            anyhow::bail!(
                "HIGHESTMODSEQ of {name:?} went backwards ({} < {}): the server's state is inconsistent; stopping this mailbox",
                scan.status.highestmodseq,
                saved.highestmodseq
            );
        }
        let ch = &mut scan.changes;
        if saved.uidvalidity != 0 && saved.uidvalidity != uidvalidity {
            ch.uidvalidity_changed = true;
        }
        if saved.uidvalidity == 0 || ch.uidvalidity_changed {
            ch.new = self.fetch_new(1).await?;
            if scan.status.uidnext == 0 {
                scan.status.uidnext = ch.new.last().map(|m| m.uid + 1).unwrap_or(1);
            }
            return Ok(scan);
        }
        let since = saved.uidnext.max(1);
        if scan.status.uidnext != 0 && scan.status.uidnext < saved.uidnext {
            anyhow::bail!(
                "UIDNEXT of {name:?} went backwards ({} < {}) without a UIDVALIDITY change: stopping this mailbox",
                scan.status.uidnext,
                saved.uidnext
            );
        }
        let known_set: HashSet<u32> = known.iter().copied().collect();
        if scan.status.uidnext == 0 || scan.status.uidnext > since {
            ch.new = self.fetch_new(since).await?;
        }
        let new_uids: HashSet<u32> = ch.new.iter().map(|m| m.uid).collect();
        let old_known = known_set.iter().filter(|u| **u < since).count();
        if use_qresync && info.highestmodseq.is_some() {
            let gone = expand_ranges(&info.vanished, MAX_EXPAND)
                .ok_or_else(|| anyhow::anyhow!("the server reported an absurd VANISHED range"))?;
            ch.vanished = gone.into_iter().filter(|u| known_set.contains(u)).collect();
            for m in info.changed {
                if m.uid < since {
                    if let Some(f) = m.flags {
                        ch.flags.insert(m.uid, (normalize_flags(f), m.modseq));
                    }
                }
            }
            return Ok(scan);
        }
        if since > 1 {
            let condstore =
                self.session.condstore && saved.highestmodseq != 0 && info.highestmodseq.is_some();
            let range = format!("1:{}", since - 1);
            let mut present: Option<HashSet<u32>> = None;
            if condstore {
                if scan.status.highestmodseq != saved.highestmodseq {
                    let items = FetchItems {
                        flags: true,
                        modseq: true,
                        ..Default::default()
                    };
                    let flags = &mut ch.flags;
                    self.session
                        .uid_fetch(&range, items, Some(saved.highestmodseq), false, &mut |m| {
                            if m.uid < since {
                                if let Some(f) = m.flags {
                                    flags.insert(m.uid, (normalize_flags(f), m.modseq));
                                }
                            }
                            Ok(())
                        })
                        .await?;
                }
            } else if mode == ScanMode::Full {
                let items = FetchItems {
                    flags: true,
                    ..Default::default()
                };
                let mut seen = HashSet::new();
                let flags = &mut ch.flags;
                self.session
                    .uid_fetch(&range, items, None, false, &mut |m| {
                        if m.uid < since {
                            seen.insert(m.uid);
                            if known_set.contains(&m.uid) {
                                if let Some(f) = m.flags {
                                    flags.insert(m.uid, (normalize_flags(f), None));
                                }
                            }
                        }
                        Ok(())
                    })
                    .await?;
                present = Some(seen);
            } else {
                ch.flags_unknown = true;
            }
            if present.is_none() {
                // Nothing vanished if the count adds up; else ask for the UID list.
                let expected = old_known + new_uids.len();
                if scan.status.messages as usize != expected
                    || known_set
                        .iter()
                        .any(|u| *u >= since && !new_uids.contains(u))
                {
                    present = Some(self.session.uid_search(&range).await?.into_iter().collect());
                }
            }
            if let Some(p) = present {
                ch.vanished = known_set
                    .iter()
                    .copied()
                    .filter(|u| !p.contains(u) && !new_uids.contains(u))
                    .collect();
            }
        }
        Ok(scan)
    }

    /// Without UIDPLUS: finds the UIDs of `uploads` (those still `None` in `uids`) among
    /// the messages at or above [`Self::append_floor`] by their fingerprint (Message-ID
    /// with date or size; size and date without one), without changing any message. A
    /// message is only identified when the candidates are unambiguous: as many unclaimed
    /// matches as uploads of that identity, matched by no other upload. Anything else stays
    /// `None`, so the engine keeps the copy pending and the next run re-detects it among
    /// the new messages (at or above the UIDNEXT recorded before the APPEND).
    async fn find_appended(
        &mut self,
        uploads: &[Upload<'_>],
        uids: &mut [Option<u32>],
    ) -> anyhow::Result<()> {
        let floor = self.append_floor.max(1);
        let items = FetchItems {
            internaldate: true,
            size: true,
            message_id: true,
            ..Default::default()
        };
        let mut found: Vec<(u32, Fingerprint)> = Vec::new();
        let claimed = &self.claimed;
        self.session
            .uid_fetch(&format!("{floor}:*"), items, None, false, &mut |m| {
                // `N:*` returns the last message even below N: filter.
                if m.uid >= floor && !claimed.contains(&m.uid) {
                    found.push((m.uid, fingerprint_of(&m)));
                }
                Ok(())
            })
            .await?;
        found.sort_by_key(|(u, _)| *u);
        found.dedup_by_key(|(u, _)| *u);
        for (i, uid) in identify_appends(uploads, uids, &found) {
            uids[i] = Some(uid);
        }
        Ok(())
    }
}

/// The identity of a fetched message (it needs UID, RFC822.SIZE, INTERNALDATE and the
/// Message-ID header fetched).
fn fingerprint_of(m: &crate::imap::types::FetchedMessage) -> Fingerprint {
    Fingerprint {
        msgid: m.header_fields.as_deref().map(message_id_hash).unwrap_or(0),
        size: m.size.unwrap_or(0),
        // A server may answer INTERNALDATE NIL (seen from some Exchange versions): 0 then,
        // which only a size-and-date match would need.
        date: m.internaldate.map(|d| d.unix).unwrap_or(0),
    }
}

/// Pairs uploads without a UID (`None` in `uids`) with `found` messages (ascending UIDs):
/// the uploads of one identity get the matching messages in UID order (APPENDs complete in
/// the order sent), but only when there are exactly as many matches as such uploads and no
/// upload of another identity matches them too. Returns (upload index, UID) pairs.
fn identify_appends(
    uploads: &[Upload<'_>],
    uids: &[Option<u32>],
    found: &[(u32, Fingerprint)],
) -> Vec<(usize, u32)> {
    let mut groups: Vec<(Fingerprint, Vec<usize>)> = Vec::new();
    for (i, u) in uploads.iter().enumerate() {
        if uids.get(i).copied().flatten().is_some() {
            continue;
        }
        match groups.iter_mut().find(|(fp, _)| *fp == u.fp) {
            Some((_, v)) => v.push(i),
            None => groups.push((u.fp, vec![i])),
        }
    }
    let mut out = Vec::new();
    for (fp, idxs) in &groups {
        let cands: Vec<&(u32, Fingerprint)> = found.iter().filter(|(_, f)| fp.matches(f)).collect();
        let contested = cands
            .iter()
            .any(|(_, f)| groups.iter().any(|(o, _)| o != fp && o.matches(f)));
        if cands.len() != idxs.len() || contested {
            tracing::debug!(
                "{} upload(s) without APPENDUID: {} candidate(s), not identified this run",
                idxs.len(),
                cands.len()
            );
            continue;
        }
        out.extend(idxs.iter().zip(cands).map(|(i, (u, _))| (*i, *u)));
    }
    out
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
        let mut list = if self.root.root.is_empty() {
            self.session.list("", "*", true).await?
        } else {
            // Only the root's subtree (a `reference` on a server listing a whole home
            // directory), plus INBOX, which lives outside it.
            let pattern = format!("{}*", self.root.root);
            let mut l = self.session.list("", &pattern, true).await?;
            if !l.iter().any(|m| m.name.eq_ignore_ascii_case("INBOX")) {
                l.extend(self.session.list("", "INBOX", true).await?);
            }
            l
        };
        if self.root.choice.other || self.root.choice.shared {
            let mut seen: HashSet<Vec<u8>> = list.iter().map(|m| m.raw.clone()).collect();
            let ns = &self.root.namespaces;
            let mut extra = Vec::new();
            if self.root.choice.other {
                extra.extend(ns.other.iter().map(|e| e.prefix.clone()));
            }
            if self.root.choice.shared {
                extra.extend(ns.shared.iter().map(|e| e.prefix.clone()));
            }
            for prefix in extra.into_iter().filter(|p| !p.is_empty()) {
                for m in self.session.list("", &format!("{prefix}*"), true).await? {
                    if seen.insert(m.raw.clone()) {
                        list.push(m);
                    }
                }
            }
        }
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
        self.append_floor = if scan.status.uidnext != 0 {
            scan.status.uidnext
        } else {
            // No UIDNEXT from the server: above every UID we know of.
            let top_known = known.iter().copied().max().unwrap_or(0);
            let top_new = scan.changes.new.iter().map(|m| m.uid).max().unwrap_or(0);
            top_known.max(top_new).saturating_add(1)
        };
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
        self.session
            .uid_fetch(&uid_set(uids), items, None, false, &mut |m| {
                if let Some(data) = m.body {
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

    async fn noop(&mut self) -> anyhow::Result<()> {
        self.session.noop().await?;
        Ok(())
    }

    async fn close(self: Box<Self>) -> anyhow::Result<()> {
        self.session.logout().await?;
        Ok(())
    }

    async fn rename(&mut self, from: &str, to: &str) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(msgid: i64, size: u32, date: i64) -> Fingerprint {
        Fingerprint { msgid, size, date }
    }

    fn up(flags: &Flags, f: Fingerprint) -> Upload<'_> {
        Upload {
            data: b"",
            flags,
            internaldate: None,
            fp: f,
        }
    }

    #[test]
    fn appends_are_identified_only_when_unambiguous() {
        let flags = Flags::default();
        let a = fp(11, 100, 5);
        let b = fp(22, 200, 6);
        let c = fp(0, 300, 7);
        let uploads = [up(&flags, a), up(&flags, b), up(&flags, c)];
        // Each found once (b with another size: rewritten by the server), plus a stranger.
        let found = [(40, a), (41, fp(22, 210, 6)), (42, c), (43, fp(99, 1, 1))];
        let got = identify_appends(&uploads, &[None, None, None], &found);
        assert_eq!(got, vec![(0, 40), (1, 41), (2, 42)]);
        // Already known UIDs are left alone.
        let got = identify_appends(&uploads, &[Some(7), None, None], &found);
        assert_eq!(got, vec![(1, 41), (2, 42)]);
        // Two candidates for one upload (someone else stored the same message): no guess.
        let found2 = [(40, a), (41, a)];
        assert!(identify_appends(&uploads[..1], &[None], &found2).is_empty());
        // Not there (yet): nothing.
        assert!(identify_appends(&uploads[..1], &[None], &[]).is_empty());
        // Two identical uploads and two matches: in UID order.
        let twins = [up(&flags, a), up(&flags, a)];
        assert_eq!(
            identify_appends(&twins, &[None, None], &found2),
            vec![(0, 40), (1, 41)]
        );
        // A candidate two different uploads match: neither is identified by it.
        let loose = [up(&flags, fp(11, 100, 5)), up(&flags, fp(11, 100, 9))];
        assert!(identify_appends(&loose, &[None, None], &[(50, a)]).is_empty());
    }
}
