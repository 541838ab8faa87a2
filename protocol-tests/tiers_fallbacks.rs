//! The fallback paths, each proven on a dovecot advertising less than it implements:
//! quick versus full sync without CONDSTORE (offlineimap's semantics), expunges found by
//! UID arithmetic with CONDSTORE only, and appends without UIDPLUS interrupted at every
//! step.

use crate::support::sync::{msg, sha, start_dovecot, ImapSide, MailSide, Msg, SyncBed};
use crate::tiers::{assert_only_advertised, Tier};
use twinbox::testbed::{sample_messages, DovecotOptions};

fn users() -> Vec<String> {
    vec!["alice".to_string(), "bob".to_string()]
}

fn sorted(mut v: Vec<Msg>) -> Vec<Msg> {
    v.sort();
    v
}

/// Without CONDSTORE a quick sync (`-q`) copies new mail both ways, propagates expunges
/// and pushes local flag changes, but does not see a remote flag change (it reads no
/// flags); the next full sync applies it. Quick never loses or duplicates a message.
#[test]
fn quick_skips_remote_flag_changes_and_full_applies_them() {
    let mut bed = SyncBed::imap_pair(
        Tier::Neither.options(&users()),
        DovecotOptions::default().tls(false).compress(false),
    );
    bed.noop_opens_nothing = false;
    let base = sample_messages(201, 6);
    let work = sample_messages(202, 3);
    bed.remote.seed("INBOX", &base, &[]).expect("seed");
    bed.remote.seed("Work", &work, &["\\Seen"]).expect("seed");
    bed.sync();
    bed.assert_converged();
    let h: Vec<String> = base.iter().map(|m| sha(m)).collect();
    let (l, r): (&dyn MailSide, &dyn MailSide) = (&bed.local, &bed.remote);
    // Remote flag changes: one in a mailbox that also gets new mail and an expunge (so it
    // is opened), one in a mailbox with nothing else changed.
    r.add_flags("INBOX", &h[0], &["\\Flagged"]).expect("flags");
    r.remove_flags("Work", &sha(&work[0]), &["\\Seen"])
        .expect("flags");
    // Local flag change (the local side has CONDSTORE): pushed even by a quick sync.
    l.add_flags("INBOX", &h[1], &["\\Seen"]).expect("flags");
    // The same message changed on the remote side too: quick must not undo it.
    r.add_flags("INBOX", &h[1], &["$R"]).expect("flags");
    // Remote: one expunged and one new, so the message count does not move.
    r.expunge("INBOX", &h[2]).expect("expunge");
    let new = sample_messages(203, 2);
    r.append("INBOX", &new[0], &[]).expect("append");
    l.append("INBOX", &new[1], &["\\Answered"]).expect("append");

    let want_inbox = |remote_seen: bool| {
        sorted(vec![
            msg(&base[0], if remote_seen { &["\\Flagged"] } else { &[] }),
            msg(
                &base[1],
                if remote_seen {
                    &["$R", "\\Seen"]
                } else {
                    &["\\Seen"]
                },
            ),
            msg(&base[3], &[]),
            msg(&base[4], &[]),
            msg(&base[5], &[]),
            msg(&new[0], &[]),
            msg(&new[1], &["\\Answered"]),
        ])
    };
    let want_work = |cleared: bool| {
        sorted(
            work.iter()
                .enumerate()
                .map(|(i, m)| msg(m, if i == 0 && cleared { &[] } else { &["\\Seen"] }))
                .collect(),
        )
    };
    for round in 0..2 {
        let q = bed.run_with(&["-q"], &[]);
        assert!(q.ok(), "quick run {round} failed:\n{q}");
        let s = q.summary();
        if round == 0 {
            assert_eq!((s.to_local, s.to_remote, s.expunged), (1, 1, 1), "{q}");
        } else {
            assert_eq!(s.changes(), 0, "a second quick run changed something:\n{q}");
        }
        let (ls, rs) = bed.snapshots();
        assert_eq!(ls["INBOX"], want_inbox(false), "local INBOX after quick");
        assert_eq!(rs["INBOX"], want_inbox(true), "remote INBOX after quick");
        assert_eq!(ls["Work"], want_work(false), "local Work after quick");
        assert_eq!(rs["Work"], want_work(true), "remote Work after quick");
    }
    let full = bed.sync();
    assert_eq!(full.summary().flags, 3, "{full}");
    let snap = bed.assert_converged();
    assert_eq!(snap["INBOX"], want_inbox(true));
    assert_eq!(snap["Work"], want_work(true));
}

/// The commands of `user` logged since the first `from` of them.
fn since(bed: &SyncBed<ImapSide>, user: &str, from: usize) -> (Vec<String>, usize) {
    let all = bed.remote.dovecot.commands_seen(user).expect("command log");
    let n = all.len();
    (all.into_iter().skip(from).collect(), n)
}

fn uid_searches(cmds: &[String]) -> usize {
    cmds.iter()
        .filter(|c| c.to_ascii_uppercase().contains(" UID SEARCH "))
        .count()
}

/// CONDSTORE without QRESYNC (Gmail's tier): flag changes come from `CHANGEDSINCE`; the
/// UID list is asked for only when the message count shows something was expunged.
#[test]
fn condstore_only_lists_uids_only_after_an_expunge() {
    let dv = start_dovecot(Tier::CondstoreOnly.options(&users()));
    let bed = SyncBed::new(ImapSide::new(dv.clone(), "alice"), ImapSide::new(dv, "bob"));
    let base = sample_messages(221, 5);
    let work = sample_messages(222, 3);
    bed.remote.seed("INBOX", &base, &[]).expect("seed");
    bed.remote.seed("Work", &work, &[]).expect("seed");
    bed.sync();
    bed.assert_converged();
    let (_, mut seen) = since(&bed, "alice", 0);
    // A flag change and a new message: CHANGEDSINCE, no UID SEARCH.
    bed.remote
        .add_flags("INBOX", &sha(&base[0]), &["\\Flagged"])
        .expect("flags");
    bed.remote
        .append("INBOX", &sample_messages(223, 1)[0], &[])
        .expect("append");
    bed.sync();
    let (cmds, n) = since(&bed, "alice", seen);
    seen = n;
    assert!(
        cmds.iter().any(|c| c.contains("CHANGEDSINCE")),
        "no CHANGEDSINCE: {cmds:#?}"
    );
    assert_eq!(uid_searches(&cmds), 0, "{cmds:#?}");
    bed.assert_converged();
    let (_, n) = since(&bed, "alice", seen);
    seen = n;
    // An expunge: the count shows it, one UID SEARCH finds which.
    bed.remote.expunge("Work", &sha(&work[1])).expect("expunge");
    let run = bed.sync();
    assert_eq!(run.summary().expunged, 1, "{run}");
    let (cmds, _) = since(&bed, "alice", seen);
    assert_eq!(uid_searches(&cmds), 1, "{cmds:#?}");
    let snap = bed.assert_converged();
    assert_eq!(
        snap["Work"],
        sorted(vec![msg(&work[0], &[]), msg(&work[2], &[])])
    );
    assert_only_advertised(&bed.remote.dovecot, "alice", Tier::CondstoreOnly.removed());
}

/// Without UIDPLUS, an abort at every step of a sync that appends on both sides, each
/// followed by a clean run, ends with every message once on each side: an append whose
/// UID was not recorded is found again by its identity, never copied twice.
#[test]
fn no_uidplus_interrupted_at_every_step_neither_loses_nor_duplicates() {
    let dv = start_dovecot(Tier::NoUidplus.options(&users()));
    let bed = SyncBed::new(ImapSide::new(dv.clone(), "alice"), ImapSide::new(dv, "bob"));
    let rm = sample_messages(231, 5);
    let lm = sample_messages(232, 3);
    let sent = sample_messages(233, 2);
    let old = sample_messages(234, 2);
    // A first sync, so the checkpoint holds the metadata too.
    bed.remote.seed("INBOX", &old, &[]).expect("seed");
    bed.sync();
    bed.remote.seed("INBOX", &rm[..3], &[]).expect("seed");
    bed.remote
        .seed("INBOX", &rm[3..], &["\\Seen"])
        .expect("seed");
    bed.local.seed("INBOX", &lm, &["\\Flagged"]).expect("seed");
    bed.local.seed("Sent", &sent, &["\\Seen"]).expect("seed");
    let mut want_inbox: Vec<Msg> = old.iter().map(|m| msg(m, &[])).collect();
    want_inbox.extend(rm[..3].iter().map(|m| msg(m, &[])));
    want_inbox.extend(rm[3..].iter().map(|m| msg(m, &["\\Seen"])));
    want_inbox.extend(lm.iter().map(|m| msg(m, &["\\Flagged"])));
    let want_inbox = sorted(want_inbox);
    let want_sent = sorted(sent.iter().map(|m| msg(m, &["\\Seen"])).collect());
    bed.checkpoint("start");
    let mut n = 1;
    let mut aborted_after_append = 0;
    loop {
        bed.restore("start");
        let run = bed.run_with(&["-1"], &[("TWINBOX_FAULT_AFTER", &n.to_string())]);
        let aborted = run.code.is_none() && run.stderr.contains("fault injected");
        if !aborted {
            assert!(run.ok(), "step {n}: run failed:\n{run}");
            break;
        }
        if run.stderr.contains("(appended)") {
            aborted_after_append += 1;
        }
        let clean = bed.run_with(&["-1"], &[]);
        assert!(clean.ok(), "step {n}: the clean run failed:\n{clean}");
        let snap = bed.assert_converged();
        assert_eq!(snap["INBOX"], want_inbox, "step {n}");
        assert_eq!(snap["Sent"], want_sent, "step {n}");
        n += 1;
        assert!(n < 200, "the sync never completed");
    }
    assert!(
        aborted_after_append >= 2,
        "no abort between an APPEND and its record"
    );
    let snap = bed.assert_converged();
    assert_eq!(snap["INBOX"], want_inbox);
    assert_only_advertised(&bed.remote.dovecot, "alice", Tier::NoUidplus.removed());
    assert_only_advertised(&bed.remote.dovecot, "bob", Tier::NoUidplus.removed());
}
