//! Copies an interrupted run had sent and the server stored only after the next run had
//! looked (kill -9 with an APPEND fully sent: the server still completes it, possibly
//! after the rerun's scan). The rerun, having re-sent those copies and recorded its own,
//! removes the late ones so no message is kept twice.

use std::collections::HashSet;

use anyhow::Context;

use super::plan::{Fingerprint, NewMessage, Record, Side};
use crate::store::{OwnChanges, Scan, Store};

/// After re-sending copies an earlier run had already sent (`again`: identity and the
/// target's UIDNEXT before that earlier attempt), finds on the target side the messages
/// that earlier attempt stored only after this run had looked (a killed client's APPEND
/// the server completed late) and expunges them: the copies this run just made are the
/// recorded ones. A message counts as such a late copy only when it is unknown to this run
/// (not in the records, not seen by its scan, not appended by it), has a UID at or above
/// the earlier attempt's UIDNEXT, and matches a re-sent message; at most as many as were
/// re-sent per identity. Returns the UIDs expunged.
pub(super) async fn remove_late_copies(
    store: &mut dyn Store,
    again: &[(Fingerprint, u32)],
    scan: &Scan,
    records: &[Record],
    to: Side,
    ours: &OwnChanges,
) -> anyhow::Result<Vec<u32>> {
    // Appends of this run whose UID is unknown could be mistaken for late copies: leave
    // them all to the next run's re-matching then.
    if ours.unknown_appends > 0 {
        return Ok(Vec::new());
    }
    let Some(from) = again.iter().map(|(_, since)| *since).min() else {
        return Ok(Vec::new());
    };
    let Some(arrived) = store
        .arrivals_since(from.max(1))
        .await
        .with_context(|| format!("looking for late copies on the {} side", to.name()))?
    else {
        return Ok(Vec::new());
    };
    let mut seen: HashSet<u32> = records.iter().filter_map(|r| r.uid[to.i()]).collect();
    seen.extend(scan.changes.new.iter().map(|m| m.uid));
    seen.extend(ours.appended.iter().map(|(u, _)| *u));
    let late = match_late_copies(again, &arrived, &seen);
    if !late.is_empty() {
        crate::fault::step("expunge late copies");
        store
            .expunge(&late)
            .await
            .with_context(|| format!("expunging late copies on the {} side", to.name()))?;
        crate::fault::step("expunged late copies");
    }
    Ok(late)
}

/// The pure part of [`remove_late_copies`]: the UIDs of `arrived` messages not in `seen`
/// that are late copies of the re-sent messages `again`, each used once.
fn match_late_copies(
    again: &[(Fingerprint, u32)],
    arrived: &[NewMessage],
    seen: &HashSet<u32>,
) -> Vec<u32> {
    let mut cands: Vec<&NewMessage> = arrived.iter().filter(|m| !seen.contains(&m.uid)).collect();
    cands.sort_by_key(|m| m.uid);
    let mut out = Vec::new();
    for (fp, since) in again {
        if let Some(pos) = cands
            .iter()
            .position(|m| m.uid >= *since && fp.matches(&m.fp))
        {
            out.push(cands.remove(pos).uid);
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(msgid: i64, size: u32, date: i64) -> Fingerprint {
        Fingerprint { msgid, size, date }
    }

    fn msg(uid: u32, f: Fingerprint) -> NewMessage {
        NewMessage {
            uid,
            flags: Default::default(),
            fp: f,
        }
    }

    #[test]
    fn only_unseen_matching_arrivals_at_or_above_the_earlier_attempt_are_late_copies() {
        let a = fp(11, 100, 5);
        let b = fp(22, 200, 6);
        let again = [(a, 3), (b, 3)];
        // 1-2 below the earlier attempt's UIDNEXT; 3 seen by the scan; 5-6 our appends.
        let arrived = [
            msg(1, a),
            msg(3, a),
            msg(5, a),
            msg(6, b),
            msg(7, a),
            msg(8, b),
            msg(9, fp(33, 1, 1)),
        ];
        let seen: HashSet<u32> = [3, 5, 6].into_iter().collect();
        assert_eq!(match_late_copies(&again, &arrived, &seen), vec![7, 8]);
        // One re-sent copy of `a`: only one late copy of it is removed, the lowest.
        let more = [msg(7, a), msg(10, a)];
        assert_eq!(
            match_late_copies(&[(a, 3)], &more, &HashSet::new()),
            vec![7]
        );
        // Nothing arrived: nothing removed.
        assert!(match_late_copies(&again, &[], &seen).is_empty());
    }
}
