//! The pure planning step: from the saved records and both sides' changes, compute what to
//! do. No I/O; both sides are handled by the same code, indexed by [`Side`].

use std::collections::{BTreeSet, HashMap, HashSet};

/// A side of a mailbox pair, indexing `[T; 2]` arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The local repository (offlineimap's "local", mbsync's "near").
    Local = 0,
    /// The remote repository (offlineimap's "remote", mbsync's "far").
    Remote = 1,
}

impl Side {
    /// Both sides, local first.
    pub const BOTH: [Side; 2] = [Side::Local, Side::Remote];
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Local => Side::Remote,
            Side::Remote => Side::Local,
        }
    }
    /// Array index.
    pub fn i(self) -> usize {
        self as usize
    }
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Side::Local => "local",
            Side::Remote => "remote",
        }
    }
}

/// A set of flags and keywords, canonical spelling (system flags capitalised as in RFC 3501).
pub type Flags = BTreeSet<String>;

/// Normalises flags: system flags to canonical case, `\Recent` dropped.
pub fn normalize_flags<S: AsRef<str>>(flags: impl IntoIterator<Item = S>) -> Flags {
    flags
        .into_iter()
        .filter_map(|f| {
            let f = f.as_ref();
            if let Some(rest) = f.strip_prefix('\\') {
                let canon = match rest.to_ascii_lowercase().as_str() {
                    "seen" => "\\Seen",
                    "answered" => "\\Answered",
                    "flagged" => "\\Flagged",
                    "deleted" => "\\Deleted",
                    "draft" => "\\Draft",
                    "recent" => return None,
                    _ => return Some(f.to_string()),
                };
                Some(canon.to_string())
            } else {
                Some(f.to_string())
            }
        })
        .collect()
}

/// What identifies a message cheaply on any server: a hash of its Message-ID (if any),
/// its size and its INTERNALDATE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// 63-bit hash of the Message-ID header value; 0 when there is none.
    pub msgid: i64,
    /// RFC822.SIZE.
    pub size: u32,
    /// INTERNALDATE, seconds since the epoch.
    pub date: i64,
}

impl Fingerprint {
    /// The key messages are grouped by when re-matching: the Message-ID hash when there is
    /// one, else the date.
    pub fn key(&self) -> (i64, i64) {
        if self.msgid != 0 {
            (self.msgid, 0)
        } else {
            (0, self.date)
        }
    }

    /// Whether two fingerprints designate the same message. A message we appended keeps
    /// its Message-ID and date; its size may change on servers that rewrite messages, so
    /// size counts only when there is no Message-ID.
    pub fn matches(&self, other: &Fingerprint) -> bool {
        if self.msgid != 0 || other.msgid != 0 {
            // A server may not keep the INTERNALDATE we asked for, or may rewrite the
            // message: the Message-ID plus either of them identifies it.
            self.msgid == other.msgid && (self.date == other.date || self.size == other.size)
        } else {
            self.size == other.size && self.date == other.date
        }
    }
}

/// One saved record: a message known on one or both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Database row id (opaque to the planner).
    pub id: i64,
    /// UID on each side; `None` on the target side while a copy is pending.
    pub uid: [Option<u32>; 2],
    /// Flags both sides had at the last sync.
    pub flags: Flags,
    /// Identity of the message.
    pub fp: Fingerprint,
    /// For a pending copy: the target's UIDNEXT before the APPEND; the copy, if it landed,
    /// has a UID at or above it.
    pub pending_since: Option<u32>,
}

/// A message that appeared on a side since the last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// UID.
    pub uid: u32,
    /// Flags.
    pub flags: Flags,
    /// Identity.
    pub fp: Fingerprint,
}

/// What changed on one side since the last sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideChanges {
    /// Messages with UIDs at or above the saved UIDNEXT (or all, after a UIDVALIDITY change).
    pub new: Vec<NewMessage>,
    /// Current flags of known messages whose flags may have changed (with the MODSEQ seen,
    /// if any). With a full listing this holds every known message still present.
    pub flags: HashMap<u32, (Flags, Option<u64>)>,
    /// Known UIDs that are gone.
    pub vanished: HashSet<u32>,
    /// The side's UIDVALIDITY changed: saved UIDs of this side mean nothing any more.
    pub uidvalidity_changed: bool,
    /// Remote flag changes were not read (quick sync): never infer a flag removal.
    pub flags_unknown: bool,
}

/// How to settle conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// When a message is expunged on one side and its flags changed on the other: true
    /// (default) expunges it; false keeps it and copies it back.
    pub expunge_wins: bool,
    /// Pair identical messages (same Message-ID and size, unique on both sides) found on
    /// both sides with no record, instead of copying each both ways. The INTERNALDATE is
    /// not compared: the same message stored by hand on each side gets the date of its
    /// storing. The pair's flags become the union of both sides' flags.
    pub pair_unrecorded: bool,
    /// Propagate expunges at all (offlineimap's `expunge`-like switch).
    pub propagate_expunge: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            expunge_wins: true,
            pair_unrecorded: true,
            propagate_expunge: true,
        }
    }
}

/// Copy a message to the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyAction {
    /// Side the message is on.
    pub from: Side,
    /// UID there.
    pub uid: u32,
    /// Flags to give the copy.
    pub flags: Flags,
    /// Identity (saved with the pending record).
    pub fp: Fingerprint,
    /// Existing record to reuse (a pending copy that never landed), if any.
    pub record: Option<i64>,
}

/// Change a message's flags on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagAction {
    /// Side to change.
    pub side: Side,
    /// UID there.
    pub uid: u32,
    /// Flags to add.
    pub add: Flags,
    /// Flags to remove.
    pub remove: Flags,
    /// The flags the message has once this action is done (stores that can replace a
    /// message's flags atomically, with UNCHANGEDSINCE, set exactly these).
    pub target: Flags,
    /// MODSEQ the message had when read, for UNCHANGEDSINCE.
    pub modseq: Option<u64>,
}

/// A change to the saved records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordChange {
    /// Delete a record (the message is gone from both sides).
    Delete(i64),
    /// Set a record's UIDs, flags and identity (resolving a pending copy, re-mapping after
    /// a UIDVALIDITY change, or a merged flag set), clearing any pending mark.
    Update {
        /// Record id.
        id: i64,
        /// UIDs.
        uid: [Option<u32>; 2],
        /// Flags.
        flags: Flags,
    },
    /// A new record for a message found on both sides (paired); its base flags are those
    /// both sides share until the flag actions that complete it succeed.
    Insert {
        /// UIDs.
        uid: [u32; 2],
        /// Flags.
        flags: Flags,
        /// Identity.
        fp: Fingerprint,
    },
}

/// Everything to do for one mailbox pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Messages to copy.
    pub copies: Vec<CopyAction>,
    /// Flag changes, with the UIDs `[local, remote]` of the record whose base flags become
    /// the given set once every flag action of that record succeeded.
    pub flags: Vec<(FlagAction, [u32; 2], Flags)>,
    /// UIDs to expunge per side, with the record each one belongs to.
    pub expunges: [Vec<(u32, i64)>; 2],
    /// Record changes that need no server action (apply right away).
    pub records: Vec<RecordChange>,
    /// Human-readable notes (merges, conflicts) for the log.
    pub notes: Vec<String>,
}

impl Plan {
    /// Whether the plan does nothing at all.
    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
            && self.flags.is_empty()
            && self.expunges.iter().all(Vec::is_empty)
            && self.records.is_empty()
    }
}

/// Three-way flag merge against the base: a flag added on either side is added; a flag
/// removed on either side (and, by construction, not added on the other) is removed.
pub fn merge_flags(base: &Flags, a: &Flags, b: &Flags) -> Flags {
    let mut out: Flags = base
        .iter()
        .filter(|f| a.contains(*f) && b.contains(*f))
        .cloned()
        .collect();
    out.extend(a.difference(base).cloned());
    out.extend(b.difference(base).cloned());
    out
}

/// Computes the plan for one mailbox pair.
pub fn plan(records: &[Record], changes: &[SideChanges; 2], policy: &Policy) -> Plan {
    let mut p = Plan::default();
    // Records whose UIDs on a side are void (UIDVALIDITY changed there).
    let mut records: Vec<Record> = records.to_vec();
    let mut unmatched_new: [Vec<&NewMessage>; 2] = [Vec::new(), Vec::new()];
    let mut touched: HashSet<i64> = HashSet::new();

    // 1. Match new messages on each side against records that lack a UID on that side:
    //    pending copies (crash between APPEND and recording it) and records voided by a
    //    UIDVALIDITY change.
    for side in Side::BOTH {
        let s = side.i();
        let ch = &changes[s];
        let known: HashSet<u32> = if ch.uidvalidity_changed {
            HashSet::new()
        } else {
            records.iter().filter_map(|r| r.uid[s]).collect()
        };
        if ch.uidvalidity_changed {
            for r in &mut records {
                if r.uid[s].is_some() {
                    r.uid[s] = None;
                    r.pending_since = Some(0);
                    touched.insert(r.id);
                }
            }
        }
        // Group records lacking a UID here and new messages by identity key. Messages with
        // the same key are interchangeable (same Message-ID and date): pair them in UID
        // order, so duplicates of one message are neither lost nor multiplied.
        let mut waiting: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
        for (idx, r) in records.iter().enumerate() {
            if r.uid[s].is_none() {
                waiting.entry(r.fp.key()).or_default().push(idx);
            }
        }
        for v in waiting.values_mut() {
            v.sort_by_key(|&i| (records[i].uid[side.other().i()], records[i].id));
        }
        let mut news: Vec<&NewMessage> =
            ch.new.iter().filter(|m| !known.contains(&m.uid)).collect();
        news.sort_by_key(|m| m.uid);
        for m in news {
            let key = m.fp.key();
            let found = waiting.get_mut(&key).and_then(|v| {
                let pos = v.iter().position(|&i| {
                    let r = &records[i];
                    r.fp.matches(&m.fp) && r.pending_since.is_none_or(|since| m.uid >= since)
                })?;
                Some(v.remove(pos))
            });
            match found {
                Some(i) => {
                    let r = &mut records[i];
                    r.uid[s] = Some(m.uid);
                    r.pending_since = None;
                    touched.insert(r.id);
                    p.notes.push(format!(
                        "{}: UID {} recognised as a copy already made (not copied again)",
                        side.name(),
                        m.uid
                    ));
                }
                None => unmatched_new[s].push(m),
            }
        }
    }

    // Current flags of a record on a side (None when the side has no such message now).
    let current =
        |r: &Record, side: Side, newflags: &HashMap<u32, Flags>| -> Option<(Flags, Option<u64>)> {
            let s = side.i();
            let uid = r.uid[s]?;
            if changes[s].vanished.contains(&uid) {
                return None;
            }
            if let Some((f, m)) = changes[s].flags.get(&uid) {
                return Some((f.clone(), *m));
            }
            if let Some(f) = newflags.get(&uid) {
                return Some((f.clone(), None));
            }
            Some((r.flags.clone(), None))
        };
    let newflags: [HashMap<u32, Flags>; 2] = [
        changes[0]
            .new
            .iter()
            .map(|m| (m.uid, m.flags.clone()))
            .collect(),
        changes[1]
            .new
            .iter()
            .map(|m| (m.uid, m.flags.clone()))
            .collect(),
    ];

    // 2. Records.
    for r in &records {
        let cur = [
            current(r, Side::Local, &newflags[0]),
            current(r, Side::Remote, &newflags[1]),
        ];
        let present = [r.uid[0].is_some(), r.uid[1].is_some()];
        let gone = [
            present[0] && cur[0].is_none(),
            present[1] && cur[1].is_none(),
        ];
        match (present, gone) {
            // Both sides have a UID.
            ([true, true], [false, false]) => {
                let (f0, m0) = cur[0].clone().unwrap_or_default();
                let (f1, m1) = cur[1].clone().unwrap_or_default();
                let merged = merge_flags(&r.flags, &f0, &f1);
                if f0 != r.flags && f1 != r.flags && f0 != f1 {
                    p.notes.push(format!(
                        "flags changed on both sides (local UID {}, remote UID {}): merged to {}",
                        r.uid[0].unwrap_or(0),
                        r.uid[1].unwrap_or(0),
                        fmt_flags(&merged)
                    ));
                }
                let touched_here = touched.contains(&r.id);
                let mut need_update = merged != r.flags || touched_here;
                for (side, (f, m)) in [(Side::Local, (&f0, m0)), (Side::Remote, (&f1, m1))] {
                    if *f != merged {
                        let uid = r.uid[side.i()].unwrap_or(0);
                        p.flags.push((
                            FlagAction {
                                side,
                                uid,
                                add: merged.difference(f).cloned().collect(),
                                remove: f.difference(&merged).cloned().collect(),
                                target: merged.clone(),
                                modseq: m,
                            },
                            [r.uid[0].unwrap_or(0), r.uid[1].unwrap_or(0)],
                            merged.clone(),
                        ));
                        // The flag action updates the base once every side succeeded.
                        need_update = touched_here;
                    }
                }
                if need_update {
                    let all_set = f0 == merged && f1 == merged;
                    p.records.push(RecordChange::Update {
                        id: r.id,
                        uid: r.uid,
                        flags: if all_set { merged } else { r.flags.clone() },
                    });
                }
            }
            // Gone from both sides.
            ([true, true], [true, true]) => p.records.push(RecordChange::Delete(r.id)),
            // Gone from one side.
            ([true, true], [g0, _]) => {
                let gone_side = if g0 { Side::Local } else { Side::Remote };
                let keep = gone_side.other();
                let (fk, _) = cur[keep.i()].clone().unwrap_or_default();
                if !policy.propagate_expunge {
                    // Keep it: copy it back to the side it vanished from.
                    p.copies.push(CopyAction {
                        from: keep,
                        uid: r.uid[keep.i()].unwrap_or(0),
                        flags: fk,
                        fp: r.fp,
                        record: Some(r.id),
                    });
                } else if fk != r.flags && !policy.expunge_wins {
                    p.notes.push(format!(
                        "expunged on {} but flags changed on {}: kept and copied back",
                        gone_side.name(),
                        keep.name()
                    ));
                    p.copies.push(CopyAction {
                        from: keep,
                        uid: r.uid[keep.i()].unwrap_or(0),
                        flags: fk,
                        fp: r.fp,
                        record: Some(r.id),
                    });
                } else {
                    if fk != r.flags {
                        p.notes.push(format!(
                            "expunged on {} while its flags changed on {}: the expunge wins",
                            gone_side.name(),
                            keep.name()
                        ));
                    }
                    p.expunges[keep.i()].push((r.uid[keep.i()].unwrap_or(0), r.id));
                }
            }
            // One side has no UID: a pending copy (or void after UIDVALIDITY change).
            ([true, false], _) | ([false, true], _) => {
                let have = if present[0] {
                    Side::Local
                } else {
                    Side::Remote
                };
                if cur[have.i()].is_none() {
                    // Source gone before the copy landed: nothing to do but forget it.
                    p.records.push(RecordChange::Delete(r.id));
                } else {
                    let (f, _) = cur[have.i()].clone().unwrap_or_default();
                    p.copies.push(CopyAction {
                        from: have,
                        uid: r.uid[have.i()].unwrap_or(0),
                        flags: f,
                        fp: r.fp,
                        record: Some(r.id),
                    });
                }
            }
            ([false, false], _) => p.records.push(RecordChange::Delete(r.id)),
        }
    }

    // 3. New messages without a record: pair identical ones, copy the rest.
    let mut paired: [HashSet<u32>; 2] = [HashSet::new(), HashSet::new()];
    if policy.pair_unrecorded && !unmatched_new[0].is_empty() && !unmatched_new[1].is_empty() {
        let index = |v: &Vec<&NewMessage>| {
            let mut m: HashMap<(i64, u32), Vec<u32>> = HashMap::new();
            for n in v.iter().filter(|n| n.fp.msgid != 0) {
                m.entry((n.fp.msgid, n.fp.size)).or_default().push(n.uid);
            }
            m
        };
        let i0 = index(&unmatched_new[0]);
        let i1 = index(&unmatched_new[1]);
        for m in &unmatched_new[0] {
            let key = (m.fp.msgid, m.fp.size);
            if let (Some(a), Some(b)) = (i0.get(&key), i1.get(&key)) {
                if a.len() == 1 && b.len() == 1 {
                    let other = unmatched_new[1].iter().find(|n| n.uid == b[0]);
                    if let Some(o) = other {
                        let flags: Flags = m.flags.union(&o.flags).cloned().collect();
                        let common: Flags = m.flags.intersection(&o.flags).cloned().collect();
                        for (side, f, uid) in [
                            (Side::Local, &m.flags, m.uid),
                            (Side::Remote, &o.flags, o.uid),
                        ] {
                            if *f != flags {
                                p.flags.push((
                                    FlagAction {
                                        side,
                                        uid,
                                        add: flags.difference(f).cloned().collect(),
                                        remove: Flags::new(),
                                        target: flags.clone(),
                                        modseq: None,
                                    },
                                    [m.uid, o.uid],
                                    flags.clone(),
                                ));
                            }
                        }
                        p.records.push(RecordChange::Insert {
                            uid: [m.uid, o.uid],
                            flags: common,
                            fp: m.fp,
                        });
                        paired[0].insert(m.uid);
                        paired[1].insert(o.uid);
                    }
                }
            }
        }
    }
    for side in Side::BOTH {
        for m in &unmatched_new[side.i()] {
            if paired[side.i()].contains(&m.uid) {
                continue;
            }
            p.copies.push(CopyAction {
                from: side,
                uid: m.uid,
                flags: m.flags.clone(),
                fp: m.fp,
                record: None,
            });
        }
    }
    p
}

/// Formats a flag set for logs.
pub fn fmt_flags(f: &Flags) -> String {
    let v: Vec<&str> = f.iter().map(String::as_str).collect();
    format!("({})", v.join(" "))
}

#[cfg(test)]
mod tests;
