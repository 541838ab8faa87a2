//! Account and repository restrictions applied to a plan before it runs: `maxage` /
//! `startdate` and `maxsize` (messages outside them are not copied), `readonly` (nothing is
//! written to that side) and `expunge = no` (messages are marked `\Deleted`, not expunged).
//!
//! Pure, like the planner: a [`Restrictions`] rewrites a [`Plan`]. Nothing here ever causes
//! an expunge: a message outside the filter is only left where it is.

use std::collections::HashSet;

use super::plan::{Fingerprint, FlagAction, Flags, Plan, Record, RecordChange, Side};

/// Which messages an account copies (`maxage` / `startdate`, `maxsize`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageFilter {
    /// Messages whose INTERNALDATE (seconds since the epoch) is older are not copied.
    pub min_date: Option<i64>,
    /// Messages bigger than this (bytes) are not copied.
    pub max_size: Option<u64>,
}

impl MessageFilter {
    /// Whether a message with this identity may be copied. A message whose date is unknown
    /// (0) passes the age test.
    pub fn allows(&self, fp: &Fingerprint) -> bool {
        if let Some(min) = self.min_date {
            if fp.date != 0 && fp.date < min {
                return false;
            }
        }
        if let Some(max) = self.max_size {
            if u64::from(fp.size) > max {
                return false;
            }
        }
        true
    }

    /// Whether the filter lets everything through.
    pub fn is_open(&self) -> bool {
        self.min_date.is_none() && self.max_size.is_none()
    }
}

/// Everything that restricts what a plan may do, per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restrictions {
    /// `maxage` / `startdate` / `maxsize`.
    pub filter: MessageFilter,
    /// `readonly` per side (`[local, remote]`): never write there.
    pub read_only: [bool; 2],
    /// `expunge` per side: `false` marks messages `\Deleted` instead of expunging them.
    pub expunge: [bool; 2],
    /// `sync_deletes` per side: `false` keeps deletions made on that side from reaching
    /// the other side (the other side keeps its copy).
    pub sync_deletes: [bool; 2],
}

impl Default for Restrictions {
    fn default() -> Self {
        Restrictions {
            filter: MessageFilter::default(),
            read_only: [false, false],
            expunge: [true, true],
            sync_deletes: [true, true],
        }
    }
}

/// What [`Restrictions::apply`] left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restricted {
    /// Record keys (`[local UID, remote UID]`) whose flag actions were dropped: their base
    /// flags must not advance, so the difference is seen again on the next run.
    pub held_flags: HashSet<[u32; 2]>,
    /// Copies not made because of the message filter, per source side.
    pub filtered: [u64; 2],
    /// Actions dropped because their target side is read-only.
    pub read_only_skipped: u64,
    /// Notes for the log.
    pub notes: Vec<String>,
}

impl Restrictions {
    /// Whether these restrictions change nothing.
    pub fn is_none(&self) -> bool {
        self.filter.is_open()
            && self.read_only == [false, false]
            && self.expunge == [true, true]
            && self.sync_deletes == [true, true]
    }

    /// Rewrites `p` (planned from `records`) to obey the restrictions; returns what was
    /// left out.
    pub fn apply(&self, p: &mut Plan, records: &[Record]) -> Restricted {
        let mut out = Restricted::default();
        if self.is_none() {
            return out;
        }
        // Copies: never to a read-only side; new messages only if the filter takes them (a
        // pending copy, already under way, is finished whatever the filter says).
        p.copies.retain(|c| {
            if self.read_only[c.from.other().i()] {
                out.read_only_skipped += 1;
                return false;
            }
            if c.record.is_none() && !self.filter.allows(&c.fp) {
                out.filtered[c.from.i()] += 1;
                return false;
            }
            true
        });
        // Flags: never on a read-only side; the record keeps its old base flags.
        p.flags.retain(|(f, key, _)| {
            if self.read_only[f.side.i()] {
                out.held_flags.insert(*key);
                out.read_only_skipped += 1;
                false
            } else {
                true
            }
        });
        for s in Side::BOTH {
            let i = s.i();
            if p.expunges[i].is_empty() {
                continue;
            }
            if self.read_only[i] || !self.sync_deletes[s.other().i()] {
                // The message stays on this side; the pair is forgotten so that it is
                // neither copied back nor expunged later.
                let n = p.expunges[i].len();
                for (_, id) in std::mem::take(&mut p.expunges[i]) {
                    p.records.push(RecordChange::Delete(id));
                }
                let why = if self.read_only[i] {
                    out.read_only_skipped += n as u64;
                    "it is read-only"
                } else {
                    "sync_deletes is off"
                };
                out.notes.push(format!(
                    "{n} message(s) deleted on the {} side kept on the {} side ({why})",
                    s.other().name(),
                    s.name()
                ));
            } else if !self.expunge[i] {
                // `expunge = no`: mark the message \Deleted and forget the pair.
                let deleted: Flags = std::iter::once("\\Deleted".to_string()).collect();
                for (uid, id) in std::mem::take(&mut p.expunges[i]) {
                    // The flags it had at the last sync, plus \Deleted (a store that
                    // replaces flags atomically sets these; others add \Deleted only).
                    let mut target = records
                        .iter()
                        .find(|r| r.id == id)
                        .map(|r| r.flags.clone())
                        .unwrap_or_default();
                    target.extend(deleted.iter().cloned());
                    let key = match s {
                        Side::Local => [uid, 0],
                        Side::Remote => [0, uid],
                    };
                    p.flags.push((
                        FlagAction {
                            side: s,
                            uid,
                            add: deleted.clone(),
                            remove: Flags::new(),
                            target,
                            modseq: None,
                        },
                        key,
                        deleted.clone(),
                    ));
                    p.records.push(RecordChange::Delete(id));
                }
            }
        }
        for s in Side::BOTH {
            let n = out.filtered[s.i()];
            if n > 0 {
                out.notes.push(format!(
                    "{n} message(s) on the {} side not copied: older than maxage/startdate or bigger than maxsize",
                    s.name()
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::CopyAction;
    use super::*;

    fn fp(size: u32, date: i64) -> Fingerprint {
        Fingerprint {
            msgid: 7,
            size,
            date,
        }
    }

    fn copy(from: Side, uid: u32, f: Fingerprint, record: Option<i64>) -> CopyAction {
        CopyAction {
            from,
            uid,
            flags: Flags::new(),
            fp: f,
            record,
        }
    }

    fn flag(side: Side, uid: u32, key: [u32; 2]) -> (FlagAction, [u32; 2], Flags) {
        let seen: Flags = std::iter::once("\\Seen".to_string()).collect();
        (
            FlagAction {
                side,
                uid,
                add: seen.clone(),
                remove: Flags::new(),
                target: seen.clone(),
                modseq: None,
            },
            key,
            seen,
        )
    }

    #[test]
    fn filter_limits_new_copies_only() {
        let r = Restrictions {
            filter: MessageFilter {
                min_date: Some(1000),
                max_size: Some(100),
            },
            ..Default::default()
        };
        let mut p = Plan {
            copies: vec![
                copy(Side::Remote, 1, fp(50, 2000), None),  // fine
                copy(Side::Remote, 2, fp(500, 2000), None), // too big
                copy(Side::Local, 3, fp(50, 10), None),     // too old
                copy(Side::Local, 4, fp(50, 0), None),      // date unknown: copied
                copy(Side::Local, 5, fp(500, 10), Some(9)), // pending: finished
            ],
            ..Default::default()
        };
        let out = r.apply(&mut p, &[]);
        let uids: Vec<u32> = p.copies.iter().map(|c| c.uid).collect();
        assert_eq!(uids, vec![1, 4, 5]);
        assert_eq!(out.filtered, [1, 1]);
        assert!(p.expunges.iter().all(Vec::is_empty));
        assert!(p.records.is_empty(), "the filter never deletes anything");
    }

    #[test]
    fn read_only_side_is_never_written() {
        let r = Restrictions {
            read_only: [false, true],
            ..Default::default()
        };
        let mut p = Plan {
            copies: vec![
                copy(Side::Local, 1, fp(1, 1), None),
                copy(Side::Remote, 2, fp(1, 1), None),
            ],
            flags: vec![flag(Side::Remote, 5, [4, 5]), flag(Side::Local, 4, [4, 5])],
            expunges: [vec![(8, 80)], vec![(9, 90)]],
            ..Default::default()
        };
        let out = r.apply(&mut p, &[]);
        assert!(p.copies.iter().all(|c| c.from == Side::Remote));
        assert!(p.flags.iter().all(|(f, _, _)| f.side == Side::Local));
        assert!(out.held_flags.contains(&[4, 5]));
        assert_eq!(p.expunges[1], Vec::new());
        assert_eq!(p.expunges[0], vec![(8, 80)]);
        assert_eq!(p.records, vec![RecordChange::Delete(90)]);
        assert_eq!(out.read_only_skipped, 3);
    }

    #[test]
    fn expunge_no_marks_deleted() {
        let r = Restrictions {
            expunge: [true, false],
            ..Default::default()
        };
        let mut p = Plan {
            expunges: [vec![(8, 80)], vec![(9, 90)]],
            ..Default::default()
        };
        r.apply(&mut p, &[]);
        assert_eq!(p.expunges[0], vec![(8, 80)]);
        assert!(p.expunges[1].is_empty());
        assert_eq!(p.flags.len(), 1);
        let (f, key, _) = &p.flags[0];
        assert_eq!((f.side, f.uid, key), (Side::Remote, 9, &[0, 9]));
        assert!(f.add.contains("\\Deleted"));
        assert_eq!(p.records, vec![RecordChange::Delete(90)]);
    }

    #[test]
    fn sync_deletes_off_keeps_the_other_copy() {
        let r = Restrictions {
            sync_deletes: [false, true],
            ..Default::default()
        };
        // Deleted locally (so the remote copy is to go) and deleted remotely.
        let mut p = Plan {
            expunges: [vec![(8, 80)], vec![(9, 90)]],
            ..Default::default()
        };
        let out = r.apply(&mut p, &[]);
        assert_eq!(
            p.expunges[0],
            vec![(8, 80)],
            "remote deletions still propagate"
        );
        assert!(p.expunges[1].is_empty());
        assert_eq!(p.records, vec![RecordChange::Delete(90)]);
        assert_eq!(out.notes.len(), 1);
    }
}
