//! End-to-end sync scenarios against real dovecot accounts, through the real binary.
//!
//! Each scenario is a function generic over the local side ([`MailSide`]), so the Maildir
//! stores run the same scenarios; the `#[test]`s here run them with an IMAP local side.

use crate::support::sync::{msg, sha, MailSide, SyncBed};
use twinbox::testbed::sample_messages;

/// A populated side synced into an empty one: every mailbox and message arrives once,
/// with its flags.
pub fn first_sync_populated_to_empty<L: MailSide>(bed: &SyncBed<L>, from_local: bool) {
    let src: &dyn MailSide = if from_local { &bed.local } else { &bed.remote };
    let inbox = sample_messages(11, 6);
    let sub = sample_messages(12, 4);
    src.seed("INBOX", &inbox[..3], &[]).expect("seed");
    src.seed("INBOX", &inbox[3..], &["\\Seen", "$Label1"])
        .expect("seed");
    src.seed("Archive/2024", &sub, &["\\Answered"])
        .expect("seed");
    let r = bed.sync();
    let s = r.summary();
    let (to_local, to_remote) = if from_local { (0, 10) } else { (10, 0) };
    assert_eq!((s.to_local, s.to_remote), (to_local, to_remote), "{r}");
    let snap = bed.assert_converged();
    let mut want_inbox: Vec<_> = inbox[..3].iter().map(|m| msg(m, &[])).collect();
    want_inbox.extend(inbox[3..].iter().map(|m| msg(m, &["\\Seen", "$Label1"])));
    want_inbox.sort();
    assert_eq!(snap["INBOX"], want_inbox);
    let mut want_sub: Vec<_> = sub.iter().map(|m| msg(m, &["\\Answered"])).collect();
    want_sub.sort();
    assert_eq!(snap["Archive/2024"], want_sub);
}

#[test]
fn first_sync_remote_to_empty_local() {
    first_sync_populated_to_empty(&SyncBed::imap(), false);
}

#[test]
fn first_sync_local_to_empty_remote() {
    first_sync_populated_to_empty(&SyncBed::imap(), true);
}

/// New mail, flag changes and expunges on each side and on both at once.
pub fn changes_on_both_sides<L: MailSide>(bed: &SyncBed<L>) {
    let base = sample_messages(21, 8);
    bed.remote.seed("INBOX", &base, &[]).expect("seed");
    bed.sync();
    bed.assert_same();
    let h: Vec<String> = base.iter().map(|m| sha(m)).collect();
    let (l, r): (&dyn MailSide, &dyn MailSide) = (&bed.local, &bed.remote);
    // New on each side.
    let new = sample_messages(22, 2);
    l.append("INBOX", &new[0], &["\\Flagged"]).expect("append");
    r.append("INBOX", &new[1], &[]).expect("append");
    // Flags on each side.
    l.add_flags("INBOX", &h[0], &["\\Seen"]).expect("flags");
    r.add_flags("INBOX", &h[1], &["$Work"]).expect("flags");
    // Expunges on each side and the same message on both.
    l.expunge("INBOX", &h[2]).expect("expunge");
    r.expunge("INBOX", &h[3]).expect("expunge");
    l.expunge("INBOX", &h[4]).expect("expunge");
    r.expunge("INBOX", &h[4]).expect("expunge");
    let run = bed.sync();
    let s = run.summary();
    assert_eq!((s.to_local, s.to_remote), (1, 1), "{run}");
    let snap = bed.assert_converged();
    let mut want = vec![
        msg(&base[0], &["\\Seen"]),
        msg(&base[1], &["$Work"]),
        msg(&base[5], &[]),
        msg(&base[6], &[]),
        msg(&base[7], &[]),
        msg(&new[0], &["\\Flagged"]),
        msg(&new[1], &[]),
    ];
    want.sort();
    assert_eq!(snap["INBOX"], want);
}

#[test]
fn new_flags_expunges_on_each_side_and_both() {
    changes_on_both_sides(&SyncBed::imap());
}
