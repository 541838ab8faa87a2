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

/// Flags changed on both sides since the last sync: three-way merge against the flags of
/// the last sync (added on either side: added; removed on either side and not added on
/// the other: removed).
pub fn flag_conflicts_merge<L: MailSide>(bed: &SyncBed<L>) {
    let base = sample_messages(31, 3);
    bed.remote
        .seed("INBOX", &base, &["\\Seen", "$Old"])
        .expect("seed");
    bed.sync();
    let h: Vec<String> = base.iter().map(|m| sha(m)).collect();
    let (l, r): (&dyn MailSide, &dyn MailSide) = (&bed.local, &bed.remote);
    // 0: local removes \Seen and adds \Flagged; remote adds $Work.
    l.remove_flags("INBOX", &h[0], &["\\Seen"]).expect("flags");
    l.add_flags("INBOX", &h[0], &["\\Flagged"]).expect("flags");
    r.add_flags("INBOX", &h[0], &["$Work"]).expect("flags");
    // 1: both add the same flag; remote also removes $Old.
    l.add_flags("INBOX", &h[1], &["\\Answered"]).expect("flags");
    r.add_flags("INBOX", &h[1], &["\\Answered"]).expect("flags");
    r.remove_flags("INBOX", &h[1], &["$Old"]).expect("flags");
    // 2: local removes \Seen, remote removes \Seen and $Old.
    l.remove_flags("INBOX", &h[2], &["\\Seen"]).expect("flags");
    r.remove_flags("INBOX", &h[2], &["\\Seen", "$Old"])
        .expect("flags");
    bed.sync();
    let snap = bed.assert_converged();
    let mut want = vec![
        msg(&base[0], &["$Old", "$Work", "\\Flagged"]),
        msg(&base[1], &["\\Answered", "\\Seen"]),
        msg(&base[2], &[]),
    ];
    want.sort();
    assert_eq!(snap["INBOX"], want);
}

#[test]
fn flag_conflicts_are_merged_three_way() {
    flag_conflicts_merge(&SyncBed::imap());
}

/// Expunged on one side while its flags changed on the other: the expunge wins (the
/// documented default, `Policy::expunge_wins`), in both directions.
pub fn expunge_beats_flag_change<L: MailSide>(bed: &SyncBed<L>) {
    let base = sample_messages(41, 3);
    bed.remote.seed("INBOX", &base, &[]).expect("seed");
    bed.sync();
    let h: Vec<String> = base.iter().map(|m| sha(m)).collect();
    let (l, r): (&dyn MailSide, &dyn MailSide) = (&bed.local, &bed.remote);
    l.expunge("INBOX", &h[0]).expect("expunge");
    r.add_flags("INBOX", &h[0], &["\\Flagged"]).expect("flags");
    r.expunge("INBOX", &h[1]).expect("expunge");
    l.add_flags("INBOX", &h[1], &["\\Seen", "$Keep"])
        .expect("flags");
    let run = bed.sync();
    assert_eq!(run.summary().expunged, 2, "{run}");
    let snap = bed.assert_converged();
    assert_eq!(snap["INBOX"], vec![msg(&base[2], &[])]);
}

#[test]
fn expunge_wins_over_flag_change() {
    expunge_beats_flag_change(&SyncBed::imap());
}

/// The same message stored on both sides before the first sync (e.g. a user who copied
/// mail by hand): it is paired by Message-ID and size (not by INTERNALDATE, which differs),
/// not copied twice, and its flags are the union of both. The outcome is stable on the
/// next run. (Several messages with one Message-ID and size on a side are not paired:
/// each is copied, so nothing is lost.)
pub fn same_message_on_both_sides_before_first_sync<L: MailSide>(bed: &SyncBed<L>) {
    let m = sample_messages(51, 3);
    bed.local
        .append("INBOX", &m[0], &["\\Seen"])
        .expect("append");
    // Stored a moment apart, so the two copies' INTERNALDATEs differ.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    bed.remote
        .append("INBOX", &m[0], &["\\Flagged"])
        .expect("append");
    bed.local.append("INBOX", &m[1], &[]).expect("append");
    bed.remote.append("INBOX", &m[2], &[]).expect("append");
    let run = bed.sync();
    let s = run.summary();
    assert_eq!((s.to_local, s.to_remote), (1, 1), "{run}");
    let snap = bed.assert_converged();
    let mut want = vec![
        msg(&m[0], &["\\Flagged", "\\Seen"]),
        msg(&m[1], &[]),
        msg(&m[2], &[]),
    ];
    want.sort();
    assert_eq!(snap["INBOX"], want);
}

#[test]
fn same_message_added_on_both_sides_is_paired() {
    same_message_on_both_sides_before_first_sync(&SyncBed::imap());
}

fn selects(cmds: &[String]) -> usize {
    cmds.iter()
        .filter(|c| {
            let mut w = c.split_ascii_whitespace();
            let verb = w.nth(1).unwrap_or("").to_ascii_uppercase();
            verb == "SELECT" || verb == "EXAMINE"
        })
        .count()
}

/// A resync with nothing changed selects no mailbox on either server (dovecot's command
/// log is the witness).
#[test]
fn noop_resync_selects_no_mailbox() {
    let bed = SyncBed::imap();
    for (i, f) in ["INBOX", "Lists/rust", "Archive/2024"].iter().enumerate() {
        bed.remote
            .seed(f, &sample_messages(60 + i as u64, 5), &[])
            .expect("seed");
    }
    bed.local
        .seed("Drafts", &sample_messages(65, 2), &["\\Draft"])
        .expect("seed");
    bed.sync();
    bed.assert_same();
    let before = [
        selects(&bed.remote.commands_seen().expect("log")),
        selects(&bed.local.commands_seen().expect("log")),
    ];
    assert!(
        before[0] > 0 && before[1] > 0,
        "the command log saw no SELECT"
    );
    let run = bed.sync();
    assert_eq!(run.summary().opened, 0, "{run}");
    // INBOX, Drafts, Lists, Lists/rust, Archive, Archive/2024.
    assert_eq!(run.summary().mailboxes, 6, "{run}");
    // The sessions' logs are complete once they logged out.
    let after = [
        selects(&bed.remote.commands_seen().expect("log")),
        selects(&bed.local.commands_seen().expect("log")),
    ];
    assert_eq!(before, after, "a no-op resync selected mailboxes");
    bed.assert_converged();
}

/// UIDVALIDITY changes on one side (or both): the messages are re-matched, nothing is
/// copied again, lost or duplicated, and changes made meanwhile still propagate.
fn uidvalidity_change(local: bool, remote: bool) {
    let bed = SyncBed::imap();
    let base = sample_messages(71, 6);
    bed.remote.seed("INBOX", &base, &[]).expect("seed");
    bed.sync();
    let h: Vec<String> = base.iter().map(|m| sha(m)).collect();
    if remote {
        let v = bed.remote.uidvalidity("INBOX").expect("status");
        bed.remote
            .set_uidvalidity("INBOX", v + 1000)
            .expect("reset");
    }
    if local {
        let v = bed.local.uidvalidity("INBOX").expect("status");
        bed.local.set_uidvalidity("INBOX", v + 2000).expect("reset");
    }
    // Traffic on both sides meanwhile.
    let new = sample_messages(72, 2);
    bed.remote.append("INBOX", &new[0], &[]).expect("append");
    bed.local
        .append("INBOX", &new[1], &["\\Seen"])
        .expect("append");
    bed.remote
        .add_flags("INBOX", &h[0], &["\\Flagged"])
        .expect("flags");
    bed.local.expunge("INBOX", &h[1]).expect("expunge");
    let run = bed.sync();
    let s = run.summary();
    // A message expunged on a side whose UIDVALIDITY changed cannot be told from one the
    // reset lost: it is restored from the other side (never deleted there).
    let restored = u64::from(local);
    assert_eq!((s.to_local, s.to_remote), (1 + restored, 1), "{run}");
    let snap = bed.assert_converged();
    let mut want: Vec<_> = base[2..].iter().map(|m| msg(m, &[])).collect();
    want.push(msg(&new[0], &[]));
    want.push(msg(&new[1], &["\\Seen"]));
    want.push(msg(&base[0], &["\\Flagged"]));
    if local {
        want.push(msg(&base[1], &[]));
    }
    want.sort();
    assert_eq!(snap["INBOX"], want);
}

#[test]
fn uidvalidity_change_on_remote() {
    uidvalidity_change(false, true);
}

#[test]
fn uidvalidity_change_on_local() {
    uidvalidity_change(true, false);
}

#[test]
fn uidvalidity_change_on_both_sides() {
    uidvalidity_change(true, true);
}

/// Mailboxes created on either side, nested and with non-ASCII names (modified UTF-7 on
/// the wire), appear on the other side with their messages.
pub fn mailboxes_created_on_either_side<L: MailSide>(bed: &SyncBed<L>) {
    bed.remote
        .seed("INBOX", &sample_messages(81, 1), &[])
        .expect("seed");
    bed.sync();
    let a = sample_messages(82, 2);
    let b = sample_messages(83, 2);
    bed.remote.seed("Lists/rust/日本語", &a, &[]).expect("seed");
    bed.local
        .seed("Entwürfe/Übersicht & Co", &b, &["\\Seen"])
        .expect("seed");
    bed.local.create_mailbox("Leer/Tief/Unten").expect("create");
    bed.sync();
    let snap = bed.assert_converged();
    for name in [
        "Lists/rust/日本語",
        "Entwürfe/Übersicht & Co",
        "Leer/Tief/Unten",
        "Lists",
        "Entwürfe",
    ] {
        assert!(snap.contains_key(name), "no {name} in {:?}", snap.keys());
    }
    let mut want: Vec<_> = a.iter().map(|m| msg(m, &[])).collect();
    want.sort();
    assert_eq!(snap["Lists/rust/日本語"], want);
    let mut want: Vec<_> = b.iter().map(|m| msg(m, &["\\Seen"])).collect();
    want.sort();
    assert_eq!(snap["Entwürfe/Übersicht & Co"], want);
}

#[test]
fn mailboxes_created_on_either_side_nested_and_non_ascii() {
    mailboxes_created_on_either_side(&SyncBed::imap());
}

/// A `/` server on one side and a `.` server on the other: hierarchy is translated.
#[test]
fn slash_and_dot_delimiters() {
    use twinbox::testbed::{DovecotOptions, MailLayout};
    let bed = SyncBed::imap_pair(
        DovecotOptions::default().tls(false),
        DovecotOptions::default()
            .tls(false)
            .layout(MailLayout::MaildirPlusPlus),
    );
    assert_eq!(bed.local.dovecot.separator(), '.');
    assert_eq!(bed.remote.dovecot.separator(), '/');
    mailboxes_created_on_either_side(&bed);
    // On the local server the hierarchy is spelt with dots.
    let native = bed.local.dovecot.mailboxes("bob").expect("list");
    assert!(
        native.iter().any(|m| m == "Lists.rust.日本語"),
        "{native:?}"
    );
}

/// A 30 MB message crosses intact (content hash equal on both sides).
#[test]
fn thirty_megabyte_message() {
    let bed = SyncBed::imap();
    let mut big = b"From: big@example.test\r\nTo: you@example.test\r\nSubject: big\r\nMessage-ID: <big-30mb@example.test>\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    while big.len() < 30 * 1024 * 1024 {
        for _ in 0..76 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            big.push(alphabet[(x % 64) as usize]);
        }
        big.extend_from_slice(b"\r\n");
    }
    bed.remote
        .append("INBOX", &big, &["\\Seen"])
        .expect("append");
    let small = sample_messages(91, 2);
    bed.local.seed("INBOX", &small, &[]).expect("seed");
    let (run, rss) = bed.sync_measured();
    // A figure for the notes, not a threshold.
    eprintln!("30 MB message: twinbox peak RSS {rss:?} kB");
    let s = run.summary();
    assert_eq!((s.to_local, s.to_remote), (1, 2), "{run}");
    let snap = bed.assert_converged();
    assert!(snap["INBOX"].contains(&msg(&big, &["\\Seen"])));
}

/// A mailbox deleted on one side after a sync is neither recreated there nor deleted on
/// the other side: the run says so and keeps the messages; a second run does the same.
pub fn mailbox_deleted_on_one_side<L: MailSide>(bed: &SyncBed<L>, delete_local: bool) {
    let msgs = sample_messages(111, 3);
    bed.remote.seed("Old/Box", &msgs, &[]).expect("seed");
    bed.remote
        .seed("INBOX", &sample_messages(112, 1), &[])
        .expect("seed");
    bed.sync();
    bed.assert_same();
    let (gone, kept): (&dyn MailSide, &dyn MailSide) = if delete_local {
        (&bed.local, &bed.remote)
    } else {
        (&bed.remote, &bed.local)
    };
    gone.delete_mailbox("Old/Box").expect("delete");
    for _ in 0..2 {
        let run = bed.sync();
        let side = if delete_local { "local" } else { "remote" };
        assert!(
            run.stderr
                .contains(&format!("Old/Box: deleted on the {side} side")),
            "no notice:\n{run}"
        );
        assert!(!gone
            .mailboxes()
            .expect("list")
            .contains(&"Old/Box".to_string()));
        let mut want: Vec<_> = msgs.iter().map(|m| msg(m, &[])).collect();
        want.sort();
        assert_eq!(kept.messages("Old/Box").expect("messages"), want);
    }
}

#[test]
fn mailbox_deleted_on_remote_is_kept_locally_with_a_notice() {
    mailbox_deleted_on_one_side(&SyncBed::imap(), false);
}

#[test]
fn mailbox_deleted_on_local_is_kept_remotely_with_a_notice() {
    mailbox_deleted_on_one_side(&SyncBed::imap(), true);
}

/// Servers without CONDSTORE/QRESYNC (offlineimap's semantics: full listings): the same
/// scenarios converge, flag changes included.
fn bed_without_condstore() -> SyncBed<crate::support::sync::ImapSide> {
    use twinbox::testbed::DovecotOptions;
    let mut bed = SyncBed::imap_pair(
        DovecotOptions::default().tls(false).without_condstore(),
        DovecotOptions::default().tls(false).without_condstore(),
    );
    bed.noop_opens_nothing = false;
    bed
}

#[test]
fn without_condstore_changes_on_both_sides() {
    changes_on_both_sides(&bed_without_condstore());
}

#[test]
fn without_condstore_flag_conflicts() {
    flag_conflicts_merge(&bed_without_condstore());
}

#[test]
fn without_condstore_expunge_beats_flags() {
    expunge_beats_flag_change(&bed_without_condstore());
}

/// offlineimap's quick sync (`-q`) on servers without CONDSTORE: new mail and expunges
/// propagate, flag changes wait for the next full sync and are never reverted meanwhile.
#[test]
fn quick_sync_without_condstore_defers_flags_and_loses_none() {
    let bed = bed_without_condstore();
    let base = sample_messages(121, 4);
    bed.remote.seed("INBOX", &base, &[]).expect("seed");
    bed.sync();
    let h: Vec<String> = base.iter().map(|m| sha(m)).collect();
    let new = sample_messages(122, 1);
    bed.remote
        .add_flags("INBOX", &h[0], &["\\Flagged"])
        .expect("flags");
    bed.remote.expunge("INBOX", &h[1]).expect("expunge");
    bed.remote.append("INBOX", &new[0], &[]).expect("append");
    bed.local
        .add_flags("INBOX", &h[2], &["\\Seen"])
        .expect("flags");
    let quick = bed.run_with(&["-q"], &[]);
    assert!(quick.ok(), "{quick}");
    let (l, r) = bed.snapshots();
    let mut want_l = vec![
        msg(&base[0], &[]),
        msg(&base[2], &["\\Seen"]),
        msg(&base[3], &[]),
        msg(&new[0], &[]),
    ];
    want_l.sort();
    assert_eq!(l["INBOX"], want_l, "local after -q\n{quick}");
    let mut want_r = vec![
        msg(&base[0], &["\\Flagged"]),
        msg(&base[2], &[]),
        msg(&base[3], &[]),
        msg(&new[0], &[]),
    ];
    want_r.sort();
    assert_eq!(r["INBOX"], want_r, "remote after -q\n{quick}");
    bed.sync();
    let snap = bed.assert_converged();
    let mut want = vec![
        msg(&base[0], &["\\Flagged"]),
        msg(&base[2], &["\\Seen"]),
        msg(&base[3], &[]),
        msg(&new[0], &[]),
    ];
    want.sort();
    assert_eq!(snap["INBOX"], want);
}
