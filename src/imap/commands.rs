//! High-level IMAP commands on a [`Session`], returning plain types from [`super::types`].

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use imap_types::command::{CommandBody, FetchModifier, SelectParameter};
use imap_types::core::{AString, Vec1};
use imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_types::flag::{Flag, FlagFetch};
use imap_types::mailbox::Mailbox;
use imap_types::response::{Code, Data, Response, Status};
use imap_types::search::SearchKey;
use imap_types::sequence::SequenceSet;
use imap_types::status::{StatusDataItem, StatusDataItemName};

use super::error::ImapError;
use super::session::{Session, Untagged};
use super::spool::Spools;
use super::types::{FetchedMessage, InternalDate, ListedMailbox, MailboxStatus, UidRange};
use super::utf7;

/// What to fetch for each message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchItems {
    /// FLAGS.
    pub flags: bool,
    /// MODSEQ (only if the server has CONDSTORE).
    pub modseq: bool,
    /// INTERNALDATE.
    pub internaldate: bool,
    /// RFC822.SIZE.
    pub size: bool,
    /// `BODY.PEEK[]`, the whole message.
    pub body: bool,
    /// `BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]`.
    pub message_id: bool,
    /// `BODY.PEEK[HEADER]`, the whole header block.
    pub header: bool,
}

/// The QRESYNC parameters of a SELECT (RFC 7162 §3.2.5).
#[derive(Debug, Clone)]
pub struct QresyncParams {
    /// UIDVALIDITY last seen.
    pub uidvalidity: u32,
    /// HIGHESTMODSEQ last seen.
    pub modseq: u64,
    /// UIDs known to the client (a sequence-set string), to bound the VANISHED reply.
    pub known_uids: Option<String>,
}

/// What SELECT/EXAMINE reported.
#[derive(Debug, Clone, Default)]
pub struct SelectInfo {
    /// EXISTS.
    pub exists: u32,
    /// UIDVALIDITY.
    pub uidvalidity: Option<u32>,
    /// UIDNEXT.
    pub uidnext: Option<u32>,
    /// HIGHESTMODSEQ (None with NOMODSEQ or without CONDSTORE).
    pub highestmodseq: Option<u64>,
    /// The server keeps no modseqs for this mailbox.
    pub nomodseq: bool,
    /// Whether it was opened read-only.
    pub read_only: bool,
    /// PERMANENTFLAGS, if sent; contains `\*` when new keywords may be created.
    pub permanent_flags: Option<Vec<String>>,
    /// VANISHED (EARLIER) ranges from a QRESYNC select.
    pub vanished: Vec<UidRange>,
    /// Changed messages reported by a QRESYNC select.
    pub changed: Vec<FetchedMessage>,
}

/// Result of a UID STORE.
#[derive(Debug, Clone, Default)]
pub struct StoreResult {
    /// UIDs not stored because they changed since the UNCHANGEDSINCE modseq (MODIFIED code).
    pub modified: Vec<u32>,
    /// FETCH responses the server sent back (new flags and modseqs).
    pub fetched: Vec<FetchedMessage>,
}

/// COPYUID / APPENDUID data: destination UIDVALIDITY and UIDs in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidMapping {
    /// Destination mailbox UIDVALIDITY.
    pub uidvalidity: u32,
    /// Source UIDs (COPYUID only; empty for APPENDUID).
    pub source: Vec<u32>,
    /// Destination UIDs.
    pub destination: Vec<u32>,
}

/// Why IDLE returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdleEvent {
    /// The mailbox changed (EXISTS, EXPUNGE, FETCH, VANISHED).
    Changed,
    /// The wait ran out with no change.
    Timeout,
}

pub(crate) fn mailbox(raw: &[u8]) -> Result<Mailbox<'_>, ImapError> {
    Mailbox::try_from(raw).map_err(|_| {
        ImapError::Protocol(format!(
            "mailbox name {:?} cannot be sent",
            String::from_utf8_lossy(raw)
        ))
    })
}

pub(crate) fn seqset(set: &str) -> Result<SequenceSet, ImapError> {
    SequenceSet::try_from(set).map_err(|_| ImapError::Protocol(format!("invalid UID set {set:?}")))
}

fn mailbox_raw(m: &Mailbox<'_>) -> Vec<u8> {
    match m {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(o) => o.as_ref().to_vec(),
    }
}

fn flag_to_string(f: &Flag<'_>) -> String {
    f.to_string()
}

pub(crate) fn parse_flag(s: &str) -> Result<Flag<'static>, ImapError> {
    use imap_types::IntoStatic;
    Flag::try_from(s)
        .map(IntoStatic::into_static)
        .map_err(|_| ImapError::Protocol(format!("invalid flag {s:?}")))
}

fn status_from_items(items: &[StatusDataItem]) -> MailboxStatus {
    let mut st = MailboxStatus::default();
    for i in items {
        match i {
            StatusDataItem::Messages(n) => st.messages = Some(*n),
            StatusDataItem::UidNext(n) => st.uidnext = Some(n.get()),
            StatusDataItem::UidValidity(n) => st.uidvalidity = Some(n.get()),
            StatusDataItem::Unseen(n) => st.unseen = Some(*n),
            StatusDataItem::HighestModSeq(n) => st.highestmodseq = Some(*n),
            _ => {}
        }
    }
    st
}

/// Converts a FETCH response.
pub fn fetched_from(seq: u32, items: &[MessageDataItem<'_>]) -> FetchedMessage {
    fetched_from_spooled(seq, items, &mut Spools::default())
}

/// Converts a FETCH response whose large literals were spooled: a `BODY[]` that is a
/// placeholder of `spools` becomes [`FetchedMessage::body_spool`].
pub fn fetched_from_spooled(
    seq: u32,
    items: &[MessageDataItem<'_>],
    spools: &mut Spools,
) -> FetchedMessage {
    let mut m = FetchedMessage {
        seq,
        ..Default::default()
    };
    for item in items {
        match item {
            MessageDataItem::Uid(u) => m.uid = u.get(),
            MessageDataItem::Flags(f) => {
                m.flags = Some(
                    f.iter()
                        .filter_map(|ff| match ff {
                            FlagFetch::Flag(fl) => Some(flag_to_string(fl)),
                            FlagFetch::Recent => None,
                        })
                        .collect(),
                )
            }
            MessageDataItem::ModSeq(n) => m.modseq = Some(n.get()),
            MessageDataItem::InternalDate(d) => m.internaldate = Some(InternalDate::from_imap(d)),
            MessageDataItem::Rfc822Size(n) => m.size = Some(*n),
            MessageDataItem::BodyExt { section, data, .. } => {
                // `BODY[] NIL`: Exchange answers so for a message it cannot convert
                // (https://github.com/imapsync/imapsync/issues/79): no body, not an empty one.
                let spooled = data.0.as_ref().and_then(|s| spools.take(s.as_ref()));
                let bytes = data.0.as_ref().map(|s| s.as_ref().to_vec());
                match section {
                    None if spooled.is_some() => m.body_spool = spooled,
                    None => m.body = bytes,
                    // A header block too large for memory: its start is enough.
                    Some(Section::HeaderFields(..)) => {
                        m.header_fields = match spooled {
                            Some(sp) => sp.head(4 << 20).ok(),
                            None => bytes,
                        }
                    }
                    Some(Section::Header(None)) => {
                        m.header = match spooled {
                            Some(sp) => sp.head(4 << 20).ok(),
                            None => bytes,
                        }
                    }
                    _ => {}
                }
            }
            MessageDataItem::Rfc822(data) => {
                match data.0.as_ref().and_then(|s| spools.take(s.as_ref())) {
                    Some(sp) => m.body_spool = Some(sp),
                    None => m.body = data.0.as_ref().map(|s| s.as_ref().to_vec()),
                }
            }
            _ => {}
        }
    }
    m
}

pub(crate) fn vanished_ranges(set: &SequenceSet) -> Vec<UidRange> {
    use imap_types::sequence::{SeqOrUid, Sequence};
    let v = |s: &SeqOrUid| match s {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => u32::MAX,
    };
    set.0
        .as_ref()
        .iter()
        .map(|s| match s {
            Sequence::Single(a) => (v(a), v(a)),
            Sequence::Range(a, b) => (v(a).min(v(b)), v(a).max(v(b))),
        })
        .collect()
}

fn uidset_list(set: &imap_types::extensions::uidplus::UidSet) -> Vec<u32> {
    use imap_types::extensions::uidplus::UidElement;
    let mut out = Vec::new();
    for e in set.0.as_ref() {
        match e {
            UidElement::Single(a) => out.push(a.get()),
            UidElement::Range(a, b) => {
                let (a, b) = (a.get().min(b.get()), a.get().max(b.get()));
                // Bounded: a server cannot make us allocate more than a million UIDs here.
                if b - a > 1_000_000 {
                    return Vec::new();
                }
                out.extend(a..=b);
            }
        }
    }
    out
}

/// Parses `APPENDUID <uidvalidity> <uid-set>` / `COPYUID <v> <src> <dst>` from a raw code
/// (imap-codec types APPENDUID with one UID only; MULTIAPPEND returns a set).
fn parse_uid_code(raw: &[u8]) -> Option<UidMapping> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut parts = text.split_ascii_whitespace();
    let name = parts.next()?.to_ascii_uppercase();
    let uidvalidity: u32 = parts.next()?.parse().ok()?;
    let parse_set = |s: &str| -> Option<Vec<u32>> {
        let mut out = Vec::new();
        for part in s.split(',') {
            match part.split_once(':') {
                Some((a, b)) => {
                    let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                    let (a, b) = (a.min(b), a.max(b));
                    if b - a > 1_000_000 {
                        return None;
                    }
                    out.extend(a..=b);
                }
                None => out.push(part.parse().ok()?),
            }
        }
        Some(out)
    };
    match name.as_str() {
        "APPENDUID" => Some(UidMapping {
            uidvalidity,
            source: Vec::new(),
            destination: parse_set(parts.next()?)?,
        }),
        "COPYUID" => Some(UidMapping {
            uidvalidity,
            source: parse_set(parts.next()?)?,
            destination: parse_set(parts.next()?)?,
        }),
        _ => None,
    }
}

pub(crate) fn uid_mapping(code: &Option<Code<'_>>) -> Option<UidMapping> {
    match code {
        Some(Code::AppendUid { uid_validity, uid }) => Some(UidMapping {
            uidvalidity: uid_validity.get(),
            source: Vec::new(),
            destination: vec![uid.get()],
        }),
        Some(Code::CopyUid {
            uid_validity,
            source,
            destination,
        }) => Some(UidMapping {
            uidvalidity: uid_validity.get(),
            source: uidset_list(source),
            destination: uidset_list(destination),
        }),
        Some(Code::Other(o)) => parse_uid_code(o.inner()),
        _ => None,
    }
}

/// Quotes a string for the wire (callers pass 7-bit text without CR/LF).
pub(crate) fn quoted(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

pub(crate) fn imap_date(d: InternalDate) -> Option<String> {
    let off = chrono::FixedOffset::east_opt(d.offset)?;
    let dt = chrono::DateTime::from_timestamp(d.unix, 0)?.with_timezone(&off);
    Some(dt.format("%d-%b-%Y %H:%M:%S %z").to_string())
}

impl Session {
    /// Lists mailboxes matching `pattern` under `reference`, with STATUS when `status` is
    /// set: one LIST-STATUS round trip where offered, else LIST then pipelined STATUS.
    pub async fn list(
        &mut self,
        reference: &str,
        pattern: &str,
        status: bool,
    ) -> Result<Vec<ListedMailbox>, ImapError> {
        let mut items = vec!["MESSAGES", "UIDNEXT", "UIDVALIDITY"];
        if self.condstore {
            items.push("HIGHESTMODSEQ");
        }
        let reference = utf7::encode(reference);
        let pattern = utf7::encode(pattern);
        let list_status = status && self.has("LIST-STATUS");
        let mut text = format!(
            "LIST {} {}",
            String::from_utf8_lossy(&quoted(reference.as_bytes())),
            String::from_utf8_lossy(&quoted(pattern.as_bytes()))
        );
        if list_status {
            text.push_str(&format!(" RETURN (STATUS ({}))", items.join(" ")));
        }
        let p = self.raw_command("LIST", &text);
        let mut listed: Vec<ListedMailbox> = Vec::new();
        let mut statuses: HashMap<Vec<u8>, MailboxStatus> = HashMap::new();
        self.finish(p, &mut |u| {
            match u {
                Untagged::Data(Data::List {
                    items,
                    delimiter,
                    mailbox,
                }) => {
                    let raw = mailbox_raw(&mailbox);
                    listed.push(ListedMailbox {
                        name: utf7::decode_lossy(&raw),
                        raw,
                        delimiter: delimiter.map(|d| d.inner()),
                        attributes: items.iter().map(|a| a.to_string()).collect(),
                        status: None,
                    });
                }
                Untagged::Data(Data::Status { mailbox, items }) => {
                    statuses.insert(mailbox_raw(&mailbox), status_from_items(&items));
                }
                _ => {}
            }
            Ok(())
        })
        .await?
        .ok("LIST")?;
        if status && !list_status {
            let names: Vec<StatusDataItemName> = {
                let mut v = vec![
                    StatusDataItemName::Messages,
                    StatusDataItemName::UidNext,
                    StatusDataItemName::UidValidity,
                ];
                if self.condstore {
                    v.push(StatusDataItemName::HighestModSeq);
                }
                v
            };
            let mut pending = Vec::new();
            for m in listed.iter().filter(|m| m.selectable()) {
                let body = CommandBody::Status {
                    mailbox: mailbox(&m.raw)?,
                    item_names: names.clone().into(),
                };
                pending.push(self.send(body, "STATUS").await?);
            }
            for p in pending {
                // A mailbox that vanished between LIST and STATUS just has no status.
                let _ = self
                    .finish(p, &mut |u| {
                        if let Untagged::Data(Data::Status { mailbox, items }) = u {
                            statuses.insert(mailbox_raw(&mailbox), status_from_items(&items));
                        }
                        Ok(())
                    })
                    .await?;
            }
        }
        if status {
            for m in &mut listed {
                m.status = statuses.remove(&m.raw);
            }
        }
        Ok(listed)
    }

    /// STATUS of one mailbox.
    pub async fn status(&mut self, raw: &[u8]) -> Result<MailboxStatus, ImapError> {
        let mut names = vec![
            StatusDataItemName::Messages,
            StatusDataItemName::UidNext,
            StatusDataItemName::UidValidity,
        ];
        if self.condstore {
            names.push(StatusDataItemName::HighestModSeq);
        }
        let body = CommandBody::Status {
            mailbox: mailbox(raw)?,
            item_names: names.into(),
        };
        let p = self.send(body, "STATUS").await?;
        let mut st = MailboxStatus::default();
        self.finish(p, &mut |u| {
            if let Untagged::Data(Data::Status { items, .. }) = u {
                st = status_from_items(&items);
            }
            Ok(())
        })
        .await?
        .ok("STATUS")?;
        Ok(st)
    }

    /// SELECT (or EXAMINE when `read_only`) a mailbox, with QRESYNC parameters when given
    /// and enabled, else with CONDSTORE when offered. The session's first one goes out
    /// pipelined behind `ENABLE QRESYNC` (one round trip for both).
    pub async fn select(
        &mut self,
        raw: &[u8],
        read_only: bool,
        qresync: Option<&QresyncParams>,
    ) -> Result<SelectInfo, ImapError> {
        let enable = self.queue_enable().await?;
        let with_qresync = qresync.is_some() && self.qresync;
        let mut p = self.send_select(raw, read_only, qresync).await?;
        if let Some(e) = enable {
            if !self.finish_enable(e).await? && (with_qresync || self.condstore) {
                // Sent as if QRESYNC were enabled, which the server did not grant: drain
                // it, then select again the CONDSTORE way.
                self.finish(p, &mut |_| Ok(())).await?;
                p = self.send_select(raw, read_only, qresync).await?;
            }
        }
        self.finish_select(p, raw, read_only).await
    }

    /// [`Self::select`] with `UID FETCH from:* items` pipelined right behind it: one round
    /// trip for a scan that expects new messages. The fetched messages are those of the
    /// mailbox as selected (a caller that finds another UIDVALIDITY than it knew must not
    /// take them for the old UIDs).
    pub async fn select_and_fetch(
        &mut self,
        raw: &[u8],
        read_only: bool,
        qresync: Option<&QresyncParams>,
        from: u32,
        items: FetchItems,
    ) -> Result<(SelectInfo, Vec<FetchedMessage>, (u64, u64)), ImapError> {
        let set = format!("{}:*", from.max(1));
        let enable = self.queue_enable().await?;
        let with_qresync = qresync.is_some() && self.qresync;
        let mut ps = self.send_select(raw, read_only, qresync).await?;
        let mut pf = self
            .send(self.fetch_body(&set, items, None, false)?, "UID FETCH")
            .await?;
        if let Some(e) = enable {
            if !self.finish_enable(e).await? && (with_qresync || self.condstore) {
                // As in `select`: again, the CONDSTORE way.
                self.finish(ps, &mut |_| Ok(())).await?;
                self.finish(pf, &mut |_| Ok(())).await?;
                ps = self.send_select(raw, read_only, qresync).await?;
                pf = self
                    .send(self.fetch_body(&set, items, None, false)?, "UID FETCH")
                    .await?;
            }
        }
        let info = match self.finish_select(ps, raw, read_only).await {
            Ok(i) => i,
            Err(e) => {
                // The fetch ran on no (or the old) mailbox: read its end, report the SELECT.
                self.finish(pf, &mut |_| Ok(())).await?;
                return Err(e);
            }
        };
        // EXISTS/EXPUNGE counts as the SELECT completed: what the fetch's answer announces
        // came after it.
        let marks = (self.exists_seen, self.expunges_seen);
        let mut got = Vec::new();
        self.finish(pf, &mut |u| {
            let m = match u {
                Untagged::Data(Data::Fetch { seq, items }) => {
                    fetched_from(seq.get(), items.as_ref())
                }
                Untagged::Spooled(Data::Fetch { seq, items }, mut spools) => {
                    fetched_from_spooled(seq.get(), items.as_ref(), &mut spools)
                }
                _ => return Ok(()),
            };
            if m.uid != 0 {
                got.push(m);
            }
            Ok(())
        })
        .await?
        .ok("UID FETCH")?;
        Ok((info, got, marks))
    }

    async fn send_select(
        &mut self,
        raw: &[u8],
        read_only: bool,
        qresync: Option<&QresyncParams>,
    ) -> Result<super::session::Pending, ImapError> {
        let mut parameters = Vec::new();
        match qresync {
            Some(q) if self.qresync => {
                if let (Some(v), Some(m)) =
                    (NonZeroU32::new(q.uidvalidity), NonZeroU64::new(q.modseq))
                {
                    parameters.push(SelectParameter::QResync {
                        uid_validity: v,
                        mod_sequence_value: m,
                        known_uids: match &q.known_uids {
                            Some(s) if !s.is_empty() => Some(seqset(s)?),
                            _ => None,
                        },
                        seq_match_data: None,
                    });
                } else {
                    parameters.push(SelectParameter::CondStore);
                }
            }
            _ if self.condstore && !self.qresync => parameters.push(SelectParameter::CondStore),
            _ => {}
        }
        let mb = mailbox(raw)?;
        let body = if read_only {
            CommandBody::Examine {
                mailbox: mb,
                parameters,
            }
        } else {
            CommandBody::Select {
                mailbox: mb,
                parameters,
            }
        };
        let name = if read_only { "EXAMINE" } else { "SELECT" };
        self.selected = None;
        self.send(body, name).await
    }

    async fn finish_select(
        &mut self,
        p: super::session::Pending,
        raw: &[u8],
        read_only: bool,
    ) -> Result<SelectInfo, ImapError> {
        let name = p.name;
        let mut info = SelectInfo::default();
        let c = self
            .finish(p, &mut |u| {
                match u {
                    Untagged::Data(Data::Exists(n)) => info.exists = n,
                    Untagged::Data(Data::Vanished { known_uids, .. }) => {
                        info.vanished.extend(vanished_ranges(&known_uids))
                    }
                    Untagged::Data(Data::Fetch { seq, items }) => {
                        let m = fetched_from(seq.get(), items.as_ref());
                        if m.uid != 0 {
                            info.changed.push(m);
                        }
                    }
                    Untagged::Status(body) => match body.code {
                        Some(Code::UidValidity(v)) => info.uidvalidity = Some(v.get()),
                        Some(Code::UidNext(v)) => info.uidnext = Some(v.get()),
                        Some(Code::HighestModSeq(v)) => info.highestmodseq = Some(v.get()),
                        Some(Code::NoModSeq) => info.nomodseq = true,
                        Some(Code::PermanentFlags(f)) => {
                            info.permanent_flags = Some(
                                f.iter()
                                    .map(|x| match x {
                                        imap_types::flag::FlagPerm::Flag(fl) => fl.to_string(),
                                        imap_types::flag::FlagPerm::Asterisk => "\\*".to_string(),
                                    })
                                    .collect(),
                            )
                        }
                        _ => {}
                    },
                    _ => {}
                }
                Ok(())
            })
            .await?
            .ok(name)?;
        info.read_only = read_only || matches!(c.code, Some(Code::ReadOnly));
        self.selected = Some(raw.to_vec());
        Ok(info)
    }

    /// The mailbox currently selected, if any.
    pub fn selected(&self) -> Option<&[u8]> {
        self.selected.as_deref()
    }

    /// The `UID FETCH` command of [`Self::uid_fetch`].
    fn fetch_body(
        &self,
        set: &str,
        items: FetchItems,
        changed_since: Option<u64>,
        vanished: bool,
    ) -> Result<CommandBody<'static>, ImapError> {
        let mut names = vec![MessageDataItemName::Uid];
        if items.flags {
            names.push(MessageDataItemName::Flags);
        }
        if items.modseq && self.condstore {
            names.push(MessageDataItemName::ModSeq);
        }
        if items.internaldate {
            names.push(MessageDataItemName::InternalDate);
        }
        if items.size {
            names.push(MessageDataItemName::Rfc822Size);
        }
        if items.message_id {
            let field = AString::try_from("MESSAGE-ID")
                .map_err(|_| ImapError::Protocol("internal: header field".into()))?;
            names.push(MessageDataItemName::BodyExt {
                section: Some(Section::HeaderFields(None, Vec1::from(field))),
                partial: None,
                peek: true,
            });
        }
        if items.header {
            names.push(MessageDataItemName::BodyExt {
                section: Some(Section::Header(None)),
                partial: None,
                peek: true,
            });
        }
        if items.body {
            names.push(MessageDataItemName::BodyExt {
                section: None,
                partial: None,
                peek: true,
            });
        }
        let mut modifiers = Vec::new();
        if let Some(m) = changed_since.and_then(NonZeroU64::new) {
            if self.condstore {
                modifiers.push(FetchModifier::ChangedSince(m));
                if vanished && self.qresync {
                    modifiers.push(FetchModifier::Vanished);
                }
            }
        }
        Ok(CommandBody::Fetch {
            sequence_set: seqset(set)?,
            macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(names),
            uid: true,
            modifiers,
        })
    }

    /// `UID FETCH set items [(CHANGEDSINCE n [VANISHED])]`: each message goes to `sink` as it
    /// arrives (bodies are not accumulated); returns VANISHED ranges.
    pub async fn uid_fetch(
        &mut self,
        set: &str,
        items: FetchItems,
        changed_since: Option<u64>,
        vanished: bool,
        sink: &mut (dyn FnMut(FetchedMessage) -> Result<(), ImapError> + Send),
    ) -> Result<Vec<UidRange>, ImapError> {
        let body = self.fetch_body(set, items, changed_since, vanished)?;
        let p = self.send(body, "UID FETCH").await?;
        let mut gone = Vec::new();
        self.finish(p, &mut |u| {
            match u {
                Untagged::Data(Data::Fetch { seq, items }) => {
                    let m = fetched_from(seq.get(), items.as_ref());
                    // Unsolicited flag updates without UID cannot be attributed: skip.
                    if m.uid != 0 {
                        sink(m)?;
                    }
                }
                Untagged::Spooled(Data::Fetch { seq, items }, mut spools) => {
                    let m = fetched_from_spooled(seq.get(), items.as_ref(), &mut spools);
                    if m.uid != 0 {
                        sink(m)?;
                    }
                }
                Untagged::Data(Data::Vanished { known_uids, .. }) => {
                    gone.extend(vanished_ranges(&known_uids))
                }
                _ => {}
            }
            Ok(())
        })
        .await?
        .ok("UID FETCH")?;
        Ok(gone)
    }

    /// `UID SEARCH` for all UIDs in `set` (e.g. `1:*`), ascending.
    pub async fn uid_search(&mut self, set: &str) -> Result<Vec<u32>, ImapError> {
        let body = CommandBody::Search {
            charset: None,
            criteria: Vec1::from(SearchKey::Uid(seqset(set)?)),
            uid: true,
        };
        let p = self.send(body, "UID SEARCH").await?;
        let mut out = Vec::new();
        self.finish(p, &mut |u| {
            if let Untagged::Data(Data::Search(v, ..)) = u {
                out.extend(v.iter().map(|n| n.get()));
            }
            Ok(())
        })
        .await?
        .ok("UID SEARCH")?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// NOOP; returns whether the selected mailbox reported a change.
    pub async fn noop(&mut self) -> Result<bool, ImapError> {
        let p = self.send(CommandBody::Noop, "NOOP").await?;
        let mut changed = false;
        self.finish(p, &mut |u| {
            if matches!(
                u,
                Untagged::Data(
                    Data::Exists(_) | Data::Expunge(_) | Data::Fetch { .. } | Data::Vanished { .. }
                ) | Untagged::Spooled(Data::Fetch { .. }, _)
            ) {
                changed = true;
            }
            Ok(())
        })
        .await?
        .ok("NOOP")?;
        Ok(changed)
    }

    /// IDLE on the selected mailbox until it changes or `wait` runs out, then DONE.
    pub async fn idle(&mut self, wait: Duration) -> Result<IdleEvent, ImapError> {
        if !self.has("IDLE") {
            return Err(ImapError::Protocol("the server does not offer IDLE".into()));
        }
        let p = self.raw_command("IDLE", "IDLE");
        self.flush().await?;
        // Wait for the continuation; a change reported before it (dovecot sends what
        // happened since the last command first) ends the IDLE at once.
        let mut changed_early = false;
        loop {
            match self.read_with_wait(self.wire.timeout).await? {
                Response::CommandContinuationRequest(_) => break,
                Response::Status(Status::Tagged(t)) => {
                    return Err(ImapError::Command {
                        command: "IDLE".into(),
                        status: format!("{:?}", t.body.kind),
                        text: t.body.text.to_string(),
                    })
                }
                Response::Data(
                    Data::Exists(_) | Data::Expunge(_) | Data::Fetch { .. } | Data::Vanished { .. },
                ) => changed_early = true,
                _ => {}
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        let event = loop {
            if changed_early {
                break IdleEvent::Changed;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break IdleEvent::Timeout;
            }
            match self.read_with_wait(left).await {
                Err(ImapError::Timeout(_)) => break IdleEvent::Timeout,
                Err(e) => return Err(e),
                Ok(Response::Data(
                    Data::Exists(_) | Data::Expunge(_) | Data::Fetch { .. } | Data::Vanished { .. },
                )) => break IdleEvent::Changed,
                Ok(_) => {}
            }
        };
        self.queue_raw(b"DONE\r\n");
        self.finish(p, &mut |_| Ok(())).await?.ok("IDLE")?;
        Ok(event)
    }
}

impl Session {
    /// `UID SEARCH <criteria>` with criteria as IMAP text (e.g. `DELETED`), ascending.
    pub async fn uid_search_raw(&mut self, criteria: &str) -> Result<Vec<u32>, ImapError> {
        let p = self.raw_command("UID SEARCH", &format!("UID SEARCH {criteria}"));
        let mut out = Vec::new();
        self.finish(p, &mut |u| {
            if let Untagged::Data(Data::Search(v, ..)) = u {
                out.extend(v.iter().map(|n| n.get()));
            }
            Ok(())
        })
        .await?
        .ok("UID SEARCH")?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multiappend_uid_range() {
        let m = parse_uid_code(b"APPENDUID 1700 4:7").expect("parse");
        assert_eq!(m.uidvalidity, 1700);
        assert_eq!(m.destination, vec![4, 5, 6, 7]);
        let c = parse_uid_code(b"COPYUID 9 1,3:4 10:12").expect("parse");
        assert_eq!(c.source, vec![1, 3, 4]);
        assert_eq!(c.destination, vec![10, 11, 12]);
        assert!(parse_uid_code(b"APPENDUID x 1").is_none());
        assert!(parse_uid_code(b"APPENDUID 1 1:4294967295").is_none());
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted(b"a\"b\\c"), b"\"a\\\"b\\\\c\"".to_vec());
    }

    #[test]
    fn date_format() {
        let d = InternalDate {
            unix: 0,
            offset: 3600,
        };
        assert_eq!(imap_date(d).as_deref(), Some("01-Jan-1970 01:00:00 +0100"));
    }
}
