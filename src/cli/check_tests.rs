//! Tests of `check`'s comparison (no I/O).

use std::collections::{HashMap, HashSet};

use super::*;
use crate::state::{MailboxRow, SideState};
use crate::store::Scan;
use crate::sync::filter::MessageFilter;
use crate::sync::plan::{Fingerprint, Flags, NewMessage, Record, SideChanges};

fn fp(n: i64) -> Fingerprint {
    Fingerprint {
        msgid: n,
        size: 100,
        date: 1_700_000_000,
    }
}

fn flags(f: &[&str]) -> Flags {
    f.iter().map(|s| s.to_string()).collect()
}

fn msg(uid: u32, id: i64, f: &[&str]) -> NewMessage {
    NewMessage {
        uid,
        flags: flags(f),
        fp: fp(id),
    }
}

fn status() -> SideState {
    SideState {
        uidvalidity: 7,
        uidnext: 10,
        highestmodseq: 5,
        messages: 2,
    }
}

fn row() -> MailboxRow {
    MailboxRow {
        id: 1,
        name: "INBOX".into(),
        sides: [status(), status()],
    }
}

fn record(id: i64, l: Option<u32>, r: Option<u32>) -> Record {
    Record {
        id,
        uid: [l, r],
        flags: Flags::new(),
        fp: fp(id),
        pending_since: None,
    }
}

/// A side: everything now, and what changed since the saved state.
fn side(all: Vec<NewMessage>, since: SideChanges) -> (Scan, Scan) {
    (
        Scan {
            status: status(),
            changes: SideChanges {
                new: all,
                ..Default::default()
            },
        },
        Scan {
            status: status(),
            changes: since,
        },
    )
}

fn run(records: &[Record], l: (Scan, Scan), r: (Scan, Scan), filter: MessageFilter) -> Findings {
    let mut f = Findings::default();
    compare(&row(), records, [&l, &r], filter, false, &mut f);
    f
}

#[test]
fn consistent_pairs_report_nothing() {
    let recs = [record(1, Some(1), Some(1)), record(2, Some(2), Some(3))];
    let l = side(vec![msg(1, 1, &[]), msg(2, 2, &[])], SideChanges::default());
    let r = side(vec![msg(1, 1, &[]), msg(3, 2, &[])], SideChanges::default());
    let f = run(&recs, l, r, MessageFilter::default());
    assert_eq!(f, Findings::default());
}

#[test]
fn missing_unmapped_mismatched_and_drifting_are_problems() {
    let recs = [
        record(1, Some(1), Some(1)), // remote UID 1 missing
        record(2, Some(2), Some(2)), // remote UID 2 is another message
        record(3, Some(3), Some(3)), // flags drift
    ];
    let l = side(
        vec![
            msg(1, 1, &[]),
            msg(2, 2, &[]),
            msg(3, 3, &["\\Seen"]),
            msg(4, 4, &[]),
        ],
        SideChanges::default(),
    );
    let r = side(
        vec![msg(2, 99, &[]), msg(3, 3, &[])],
        SideChanges::default(),
    );
    let f = run(&recs, l, r, MessageFilter::default());
    let all = f.problems.join("\n");
    assert_eq!(f.problems.len(), 4, "{all}");
    assert!(all.contains("remote UID 1 is mapped"), "{all}");
    assert!(all.contains("remote UID 2 is not the message"), "{all}");
    assert!(
        all.contains("flags differ: local UID 3 (\\Seen) / remote UID 3 ()"),
        "{all}"
    );
    assert!(all.contains("local UID 4 is not in the state"), "{all}");
}

#[test]
fn reported_changes_and_new_mail_are_pending_not_problems() {
    let recs = [record(1, Some(1), Some(1)), record(2, Some(2), Some(2))];
    let mut changed = HashMap::new();
    changed.insert(1, (flags(&["\\Seen"]), Some(6)));
    let l = side(
        vec![msg(1, 1, &["\\Seen"]), msg(2, 2, &[]), msg(12, 12, &[])],
        SideChanges {
            flags: changed,
            new: vec![msg(12, 12, &[])],
            ..Default::default()
        },
    );
    let r = side(
        vec![msg(1, 1, &[])],
        SideChanges {
            vanished: HashSet::from([2]),
            ..Default::default()
        },
    );
    let f = run(&recs, l, r, MessageFilter::default());
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    assert_eq!(f.pending.len(), 3, "{:?}", f.pending);
}

#[test]
fn filtered_messages_and_uidvalidity_changes_are_not_problems() {
    let l = side(vec![msg(4, 4, &[])], SideChanges::default());
    let r = side(vec![], SideChanges::default());
    let old = MessageFilter {
        min_date: Some(1_800_000_000),
        max_size: None,
    };
    let f = run(&[], l, r, old);
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    assert!(f.pending[0].contains("left alone"), "{:?}", f.pending);

    let recs = [record(1, Some(1), Some(1))];
    let mut l = side(vec![msg(50, 1, &[])], SideChanges::default());
    l.0.status.uidvalidity = 8;
    let r = side(vec![msg(1, 1, &[])], SideChanges::default());
    let f = run(&recs, l, r, MessageFilter::default());
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    assert!(
        f.pending[0].contains("UIDVALIDITY changed"),
        "{:?}",
        f.pending
    );
}
