//! Finding the UIDs of appended messages when the server gives no (usable) APPENDUID.

use super::ImapStore;
use crate::imap::commands::FetchItems;
use crate::store::fingerprint::message_id_hash;
use crate::store::Upload;
use crate::sync::plan::Fingerprint;

impl ImapStore {
    /// Without UIDPLUS: finds the UIDs of `uploads` (those still `None` in `uids`) among
    /// the messages at or above [`Self::append_floor`] by their fingerprint (Message-ID
    /// with date or size; size and date without one), without changing any message. A
    /// message is only identified when the candidates are unambiguous: as many unclaimed
    /// matches as uploads of that identity, matched by no other upload. Anything else stays
    /// `None`, so the engine keeps the copy pending and the next run re-detects it among
    /// the new messages (at or above the UIDNEXT recorded before the APPEND).
    pub(super) async fn find_appended(
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
pub(super) fn fingerprint_of(m: &crate::imap::types::FetchedMessage) -> Fingerprint {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plan::Flags;

    fn fp(msgid: i64, size: u32, date: i64) -> Fingerprint {
        Fingerprint { msgid, size, date }
    }

    fn up(flags: &Flags, f: Fingerprint) -> Upload<'_> {
        Upload {
            data: crate::store::BodyRef::Bytes(b""),
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
