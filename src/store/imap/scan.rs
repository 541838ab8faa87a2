//! Reading what changed in a mailbox since the last sync, by tier (see the parent module).

use std::collections::HashSet;

use anyhow::Context;

use super::lies::{lie, Lie};
use super::{new_messages, ImapStore, MAX_EXPAND, NEW_ITEMS};
use crate::imap::commands::{FetchItems, QresyncParams};
use crate::imap::types::{expand_ranges, uid_set};
use crate::state::SideState;
use crate::store::{Scan, ScanMode};
use crate::sync::plan::normalize_flags;

impl ImapStore {
    /// Selects a mailbox and reads what changed since `saved`, by the cheapest means the
    /// server offers: QRESYNC (one SELECT), CONDSTORE (`CHANGEDSINCE`, expunges by UID
    /// count and, when the count does not add up, `UID SEARCH`), or neither (a full sync
    /// lists every UID and flag; a quick one reads only new messages and the UID set).
    pub(super) async fn scan(
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
        // Where the new messages start if the mailbox is the one we know; when the listing
        // says it grew (or there is none), they are fetched in the SELECT's round trip.
        let guess = if saved.uidvalidity == 0 {
            1
        } else {
            saved.uidnext.max(1)
        };
        let grew =
            saved.uidvalidity == 0 || self.listed.get(&raw).is_none_or(|u| *u == 0 || *u > guess);
        // EXISTS and EXPUNGE responses after these marks announce changes made after the
        // SELECT.
        let (info, mut prefetched, (exists_mark, expunge_mark)) = if grew {
            let (info, got, marks) = self
                .session
                .select_and_fetch(&raw, read_only, qparams.as_ref(), guess, NEW_ITEMS)
                .await
                .with_context(|| format!("cannot open mailbox {}", self.spell(name)))?;
            (info, Some(got), marks)
        } else {
            let info = self
                .session
                .select(&raw, read_only, qparams.as_ref())
                .await
                .with_context(|| format!("cannot open mailbox {}", self.spell(name)))?;
            let marks = (self.session.exists_seen, self.session.expunges_seen);
            (info, None, marks)
        };
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
            return Err(lie(
                name,
                Lie::ModseqBackwards {
                    saved: saved.highestmodseq,
                    now: scan.status.highestmodseq,
                },
            ));
        }
        // UIDs at or above the SELECT's UIDNEXT exist only if an EXISTS announced them.
        let uidnext_seen = scan.status.uidnext;
        let unannounced = |uid: u32, exists_now: u64| {
            (uidnext_seen != 0 && uid >= uidnext_seen && exists_now == exists_mark).then(|| {
                lie(
                    name,
                    Lie::UnannouncedUid {
                        uid,
                        uidnext: uidnext_seen,
                    },
                )
            })
        };
        // The changes a QRESYNC SELECT reports come with its own UIDNEXT.
        if let Some(e) = info
            .changed
            .iter()
            .find_map(|m| unannounced(m.uid, exists_mark))
        {
            return Err(e);
        }
        let ch = &mut scan.changes;
        if saved.uidvalidity != 0 && saved.uidvalidity != uidvalidity {
            ch.uidvalidity_changed = true;
        }
        if ch.uidvalidity_changed {
            // Fetched from the old UIDNEXT on: not the whole new mailbox.
            prefetched = None;
        }
        if saved.uidvalidity == 0 || ch.uidvalidity_changed {
            ch.new = match prefetched {
                Some(got) => new_messages(1, got),
                None => self.fetch_new(1).await?,
            };
            let now = self.session.exists_seen;
            if let Some(e) = ch.new.iter().find_map(|m| unannounced(m.uid, now)) {
                return Err(e);
            }
            if scan.status.uidnext == 0 {
                scan.status.uidnext = ch.new.last().map(|m| m.uid + 1).unwrap_or(1);
            }
            return Ok(scan);
        }
        let since = saved.uidnext.max(1);
        if scan.status.uidnext != 0 && scan.status.uidnext < saved.uidnext {
            return Err(lie(
                name,
                Lie::UidnextBackwards {
                    saved: saved.uidnext,
                    now: scan.status.uidnext,
                },
            ));
        }
        let known_set: HashSet<u32> = known.iter().copied().collect();
        if scan.status.uidnext == 0 || scan.status.uidnext > since {
            ch.new = match prefetched {
                Some(got) if guess == since => new_messages(since, got),
                _ => self.fetch_new(since).await?,
            };
            let now = self.session.exists_seen;
            if let Some(e) = ch.new.iter().find_map(|m| unannounced(m.uid, now)) {
                return Err(e);
            }
        }
        let new_uids: HashSet<u32> = ch.new.iter().map(|m| m.uid).collect();
        let old_known = known_set.iter().filter(|u| **u < since).count();
        if use_qresync && info.highestmodseq.is_some() {
            let gone = expand_ranges(&info.vanished, MAX_EXPAND)
                .ok_or_else(|| anyhow::anyhow!("the server reported an absurd VANISHED range"))?;
            if let Some(&uid) = gone
                .iter()
                .find(|u| uidnext_seen != 0 && **u >= uidnext_seen)
            {
                return Err(lie(
                    name,
                    Lie::VanishedBeyondUidnext {
                        uid,
                        uidnext: uidnext_seen,
                    },
                ));
            }
            ch.vanished = gone.into_iter().filter(|u| known_set.contains(u)).collect();
            self.check_vanished(name, &ch.vanished, &info, &known_set, &new_uids)
                .await?;
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
                // A complete listing must hold EXISTS messages, unless the server announced
                // an arrival or an expunge since the SELECT.
                let listed = p.iter().filter(|u| **u < since).count() + new_uids.len();
                if self.session.exists_seen == exists_mark
                    && self.session.expunges_seen == expunge_mark
                    && listed != scan.status.messages as usize
                {
                    return Err(lie(
                        name,
                        Lie::ListingMismatch {
                            listed,
                            exists: scan.status.messages,
                        },
                    ));
                }
                ch.vanished = known_set
                    .iter()
                    .copied()
                    .filter(|u| !p.contains(u) && !new_uids.contains(u))
                    .collect();
            }
        }
        Ok(scan)
    }
}

impl ImapStore {
    /// The VANISHED rules of [`super::lies`]: no vanished UID may be fetched in the same
    /// scan, and when the count does not add up, none may still be found by `UID SEARCH`.
    async fn check_vanished(
        &mut self,
        name: &str,
        vanished: &HashSet<u32>,
        info: &crate::imap::commands::SelectInfo,
        known: &HashSet<u32>,
        new: &HashSet<u32>,
    ) -> anyhow::Result<()> {
        if vanished.is_empty() {
            return Ok(());
        }
        let gone = vanished;
        if let Some(uid) = info
            .changed
            .iter()
            .map(|m| m.uid)
            .chain(new.iter().copied())
            .find(|u| gone.contains(u))
        {
            return Err(lie(name, Lie::VanishedButPresent { uid }));
        }
        let expected = known.union(new).count().saturating_sub(gone.len());
        if info.exists as usize > expected {
            let mut v: Vec<u32> = vanished.iter().copied().collect();
            v.sort_unstable();
            let still = self.session.uid_search(&uid_set(&v)).await?;
            if let Some(&uid) = still.iter().find(|u| gone.contains(u)) {
                return Err(lie(name, Lie::VanishedButPresent { uid }));
            }
        }
        Ok(())
    }
}
