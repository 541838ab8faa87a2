//! Moves and copies between mailboxes replayed server-side (issue #11), on real dovecot:
//! a message moved or copied on one side is moved (`UID MOVE`, or `UID COPY` + `\Deleted` +
//! `UID EXPUNGE` without MOVE) or copied (`UID COPY`) on the other side, and no message body
//! crosses the wire (the server's command log shows no body fetch); ambiguous fingerprints
//! and messages without Message-ID fall back to ordinary transfer; an abort at every step
//! of a move converges with each message exactly once.

use crate::support::sync::{msg, sha, ImapSide, MailSide, Snapshot, SyncBed};
use twinbox::testbed::{capabilities_without, sample_messages, DovecotOptions};

/// Commands that read a whole message.
fn body_fetches(cmds: &[String]) -> Vec<String> {
    cmds.iter()
        .filter(|c| {
            let u = c.to_ascii_uppercase();
            u.contains("FETCH")
                && (u.contains("BODY.PEEK[]") || u.contains("BODY[]") || u.contains("BINARY"))
        })
        .cloned()
        .collect()
}

/// Commands seen by `side` after the first `skip`.
fn commands_after(side: &ImapSide, skip: usize) -> Vec<String> {
    side.commands_seen()
        .expect("command log")
        .into_iter()
        .skip(skip)
        .collect()
}

fn count(side: &ImapSide) -> usize {
    side.commands_seen().expect("command log").len()
}

/// INBOX (6), Archive (2) on the remote side, synced.
fn synced(bed: &SyncBed<ImapSide>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let inbox = sample_messages(201, 6);
    let archive = sample_messages(202, 2);
    bed.remote.seed("INBOX", &inbox, &[]).expect("seed");
    bed.remote
        .seed("Archive", &archive, &["\\Seen"])
        .expect("seed");
    bed.sync();
    bed.assert_converged();
    (inbox, archive)
}

fn move_on(side: &ImapSide, from: &str, raw: &[u8], to: &str) {
    let uid = side.uid_of(from, &sha(raw)).expect("uid");
    side.dovecot
        .move_message(&side.user, &side.native(from), uid, &side.native(to))
        .expect("doveadm move");
}

/// Moves on both sides (one into a mailbox created on the remote side since the last sync,
/// with a flag change on the way) are replayed on the other side with UID MOVE; nothing is
/// copied and no body is fetched.
#[test]
fn moves_on_either_side_are_replayed_without_transfer() {
    let bed = SyncBed::imap();
    let (inbox, archive) = synced(&bed);
    bed.remote.create_mailbox("Filed").expect("create");
    move_on(&bed.remote, "INBOX", &inbox[0], "Archive");
    move_on(&bed.remote, "INBOX", &inbox[1], "Archive");
    move_on(&bed.remote, "INBOX", &inbox[2], "Filed");
    bed.remote
        .add_flags("Archive", &sha(&inbox[0]), &["\\Seen"])
        .expect("flags");
    move_on(&bed.local, "Archive", &archive[0], "INBOX");
    let dry = bed.run_with(&["--dry-run"], &[]);
    assert!(dry.ok(), "{dry}");
    let listed = format!("{}{}", dry.stdout, dry.stderr);
    // Listed as moves; the one into Filed is not: a dry run creates no folder to move into.
    assert_eq!(listed.matches("move message UID").count(), 3, "{dry}");
    // ... and only as moves: no copy into Archive or INBOX, no expunge but the one of the
    // message whose move (into the folder not created yet) is not replayed.
    assert!(!listed.contains("Archive: copy"), "{dry}");
    assert!(!listed.contains("INBOX: copy"), "{dry}");
    assert_eq!(listed.matches(": expunge ").count(), 1, "{dry}");
    assert!(
        listed.contains("INBOX: expunge 1 message(s) on the local side"),
        "{dry}"
    );
    let (r0, l0) = (count(&bed.remote), count(&bed.local));
    let run = bed.sync();
    let s = run.summary();
    assert_eq!(
        (s.to_local, s.to_remote),
        (0, 0),
        "moves were transferred:\n{run}"
    );
    assert!(run.stdout.contains("moved 4"), "{run}");
    let (rc, lc) = (
        commands_after(&bed.remote, r0),
        commands_after(&bed.local, l0),
    );
    assert!(body_fetches(&rc).is_empty(), "{:?}", body_fetches(&rc));
    assert!(body_fetches(&lc).is_empty(), "{:?}", body_fetches(&lc));
    assert!(lc.iter().any(|c| c.contains("UID MOVE")), "{lc:?}");
    assert!(rc.iter().any(|c| c.contains("UID MOVE")), "{rc:?}");
    let snap = bed.assert_converged();
    assert_eq!(snap["INBOX"].len(), 4);
    assert_eq!(snap["Archive"].len(), 3);
    assert_eq!(snap["Filed"], vec![msg(&inbox[2], &[])]);
    assert!(snap["Archive"].contains(&msg(&inbox[0], &["\\Seen"])));
}

/// Without MOVE advertised, a move is replayed as UID COPY + UID STORE \Deleted + UID
/// EXPUNGE.
#[test]
fn without_move_the_fallback_is_copy_store_expunge() {
    let bed = SyncBed::imap_pair(
        DovecotOptions::default().tls(false),
        DovecotOptions::default()
            .tls(false)
            .capabilities(capabilities_without(&["MOVE"])),
    );
    let (inbox, _) = synced(&bed);
    move_on(&bed.remote, "INBOX", &inbox[3], "Archive");
    move_on(&bed.remote, "INBOX", &inbox[4], "Archive");
    let l0 = count(&bed.local);
    let run = bed.sync();
    assert_eq!(run.summary().to_local, 0, "{run}");
    let lc = commands_after(&bed.local, l0);
    assert!(body_fetches(&lc).is_empty(), "{lc:?}");
    assert!(!lc.iter().any(|c| c.contains("UID MOVE")), "{lc:?}");
    assert!(lc.iter().any(|c| c.contains("UID COPY")), "{lc:?}");
    assert!(lc.iter().any(|c| c.contains("UID EXPUNGE")), "{lc:?}");
    let snap = bed.assert_converged();
    assert_eq!(snap["Archive"].len(), 4);
}

/// A message copied to another mailbox is copied there on the other side with UID COPY.
#[test]
fn copies_are_replayed_server_side() {
    let bed = SyncBed::imap();
    let (inbox, _) = synced(&bed);
    let uid = bed.remote.uid_of("INBOX", &sha(&inbox[5])).expect("uid");
    bed.remote
        .dovecot
        .doveadm(&[
            "copy",
            "-u",
            "alice",
            &bed.remote.native("Archive"),
            "mailbox",
            "INBOX",
            "uid",
            &uid.to_string(),
        ])
        .expect("doveadm copy");
    let r0 = count(&bed.remote);
    let run = bed.sync();
    assert_eq!(run.summary().to_local, 0, "{run}");
    assert!(run.stdout.contains("copied 1 server-side"), "{run}");
    assert!(body_fetches(&commands_after(&bed.remote, r0)).is_empty());
    let snap = bed.assert_converged();
    assert_eq!(snap["INBOX"].len(), 6);
    assert_eq!(snap["Archive"].len(), 3);
}

/// Two different messages with one Message-ID, both moved: no guess, they are transferred
/// the ordinary way, exactly once each. A message without Message-ID moved too is matched
/// by size and date, confirmed by its header block, and moved.
#[test]
fn ambiguous_moves_fall_back_to_transfer() {
    let bed = SyncBed::imap();
    let twin_a = b"Message-ID: <same@x>\r\nSubject: a\r\n\r\nfirst\r\n".to_vec();
    let twin_b = b"Message-ID: <same@x>\r\nSubject: b\r\n\r\nsecond\r\n".to_vec();
    let anon = b"Subject: no id\r\n\r\nanonymous\r\n".to_vec();
    bed.remote
        .seed(
            "INBOX",
            &[twin_a.clone(), twin_b.clone(), anon.clone()],
            &[],
        )
        .expect("seed");
    bed.remote.create_mailbox("Archive").expect("create");
    bed.sync();
    bed.assert_converged();
    for m in [&twin_a, &twin_b, &anon] {
        move_on(&bed.remote, "INBOX", m, "Archive");
    }
    let r0 = count(&bed.remote);
    let run = bed.sync();
    let s = run.summary();
    assert_eq!((s.to_local, s.expunged), (2, 2), "{run}");
    assert!(run.stdout.contains("moved 1"), "{run}");
    let rc = commands_after(&bed.remote, r0);
    assert!(rc.iter().any(|c| c.contains("BODY.PEEK[HEADER]")), "{rc:?}");
    let snap = bed.assert_converged();
    assert!(snap["INBOX"].is_empty());
    let mut want = vec![msg(&twin_a, &[]), msg(&twin_b, &[]), msg(&anon, &[])];
    want.sort();
    assert_eq!(snap["Archive"], want);
}

fn aborted(run: &crate::support::sync::RunOutcome) -> bool {
    run.code.is_none() && run.stderr.contains("fault injected")
}

fn abort_at_every_step(bed: SyncBed<ImapSide>) {
    let (inbox, archive) = synced(&bed);
    bed.remote.create_mailbox("Filed").expect("create");
    move_on(&bed.remote, "INBOX", &inbox[0], "Archive");
    move_on(&bed.remote, "INBOX", &inbox[1], "Filed");
    move_on(&bed.local, "Archive", &archive[1], "INBOX");
    let want: Snapshot = {
        let mut s = bed.remote.snapshot().expect("snapshot");
        // The local move lands on the remote side too.
        let m = msg(&archive[1], &["\\Seen"]);
        s.entry("Archive".into()).or_default().retain(|x| *x != m);
        s.entry("INBOX".into()).or_default().push(m);
        for v in s.values_mut() {
            v.sort();
        }
        s
    };
    bed.checkpoint("moved");
    let mut n = 1;
    loop {
        bed.restore("moved");
        let n_s = n.to_string();
        let run = bed.run_with(&["-1"], &[("TWINBOX_FAULT_AFTER", &n_s)]);
        if run.ok() {
            assert!(n > 5, "suspiciously few steps ({n}):\n{run}");
            assert_eq!(bed.assert_converged(), want);
            break;
        }
        assert!(aborted(&run), "step {n}: not the injected fault:\n{run}");
        let again = bed.run_with(&["-1"], &[]);
        assert!(
            again.ok(),
            "step {n}: the run after the crash failed:\n{again}"
        );
        let got = bed.assert_converged();
        assert_eq!(
            got, want,
            "step {n}: differs from the uninterrupted sync\n{run}\n{again}"
        );
        n += 1;
        assert!(n < 200, "no run completed");
    }
    eprintln!("interrupted at each of {} steps", n - 1);
}

/// An abort at every step of a sync replaying moves (UID MOVE), then a clean run: each
/// message exactly once, as the uninterrupted sync leaves it.
#[test]
fn abort_at_every_step_of_a_move_converges() {
    abort_at_every_step(SyncBed::imap());
}

/// The same with the COPY + STORE + EXPUNGE fallback (more steps between the servers).
#[test]
fn abort_at_every_step_of_a_fallback_move_converges() {
    let caps = capabilities_without(&["MOVE"]);
    abort_at_every_step(SyncBed::imap_pair(
        DovecotOptions::default()
            .tls(false)
            .capabilities(caps.clone()),
        DovecotOptions::default().tls(false).capabilities(caps),
    ));
}

/// IMAP <-> native Maildir: a move on the server is a rename between Maildir folders, a
/// move by a mail reader in the Maildir is a UID MOVE on the server; nothing is copied,
/// both sides agree, and a second run changes nothing.
#[test]
fn moves_between_imap_and_native_maildir() {
    use crate::maildir_bed::{copied, Bed, Engine, LOCAL, REMOTE};
    let bed = Bed::new(Engine::Native, '/');
    let mut msgs = sample_messages(301, 5);
    // A message without Message-ID: matched by size and date, confirmed by its header
    // block read from the server and from the Maildir.
    msgs.push(b"Subject: no id\r\n\r\nanonymous\r\n".to_vec());
    bed.dv
        .seed_mailbox(REMOTE, "INBOX", &msgs, &["\\Seen"])
        .expect("seed");
    bed.dv.create_mailbox(REMOTE, "Archive").expect("create");
    bed.sync();
    bed.assert_same(&["INBOX", "Archive"]);
    // Remote: three messages filed into Archive.
    for uid in [1, 2, 6] {
        bed.dv
            .move_message(REMOTE, "INBOX", uid, "Archive")
            .expect("move");
    }
    // Local: a mail reader files the message with the fifth body into Archive.
    let five = crate::maildir_bed::hash(&msgs[4]);
    let file = bed
        .files(&bed.maildir)
        .into_iter()
        .find(|p| {
            std::fs::read(p)
                .map(|d| crate::maildir_bed::hash(&d) == five)
                .unwrap_or(false)
        })
        .expect("the fifth message's file");
    let name = file.file_name().expect("name").to_owned();
    std::fs::rename(&file, bed.maildir.join("Archive/cur").join(name)).expect("rename");
    bed.fix_owner();
    let out = bed.sync();
    assert_eq!(copied(&out), (0, 0), "moves were transferred:\n{out}");
    assert!(out.contains("moved 4"), "{out}");
    bed.assert_same(&["INBOX", "Archive"]);
    assert_eq!(bed.messages(LOCAL, "Archive").len(), 4);
    assert_eq!(bed.messages(LOCAL, "INBOX").len(), 2);
    let again = bed.sync();
    assert_eq!(copied(&again), (0, 0), "{again}");
    assert!(again.contains("0 expunged"), "{again}");
    bed.assert_same(&["INBOX", "Archive"]);
}

/// A user files every message of a folder into Archive, then deletes the folder, on one
/// side. The moves are replayed on the other side (the messages end up in Archive exactly
/// once on both sides, nothing is copied); the deleted folder is handled as any deleted
/// folder (kept on the other side with a notice, never recreated), now without the filed
/// messages: no duplicate survives in it.
fn move_out_of_a_deleted_mailbox(delete_local: bool) {
    let bed = SyncBed::imap();
    let old = sample_messages(203, 3);
    bed.remote.seed("Old", &old, &[]).expect("seed");
    let (_, archive) = synced(&bed);
    let (gone, kept) = if delete_local {
        (&bed.local, &bed.remote)
    } else {
        (&bed.remote, &bed.local)
    };
    for m in &old {
        move_on(gone, "Old", m, "Archive");
    }
    gone.delete_mailbox("Old").expect("delete");
    let run = bed.sync();
    assert!(run.ok(), "{run}");
    let s = run.summary();
    assert_eq!((s.to_local, s.to_remote), (0, 0), "transferred:\n{run}");
    assert!(run.stdout.contains("moved 3"), "{run}");
    let side = if delete_local { "local" } else { "remote" };
    assert!(
        run.stderr
            .contains(&format!("Old: deleted on the {side} side")),
        "no notice:\n{run}"
    );
    for _ in 0..2 {
        let (l, r) = bed.snapshots();
        assert_eq!(l["Archive"], r["Archive"]);
        assert_eq!(l["INBOX"], r["INBOX"]);
        let mut want: Vec<_> = archive.iter().map(|m| msg(m, &["\\Seen"])).collect();
        want.extend(old.iter().map(|m| msg(m, &[])));
        want.sort();
        assert_eq!(r["Archive"], want);
        assert!(!gone.mailboxes().expect("list").contains(&"Old".to_string()));
        assert_eq!(kept.messages("Old").expect("messages"), vec![]);
        // A second run changes nothing.
        let again = bed.sync();
        assert_eq!(again.summary().changes(), 0, "{again}");
    }
}

#[test]
fn a_move_out_of_a_mailbox_deleted_on_the_remote_side() {
    move_out_of_a_deleted_mailbox(false);
}

#[test]
fn a_move_out_of_a_mailbox_deleted_on_the_local_side() {
    move_out_of_a_deleted_mailbox(true);
}

/// Delivers `raw` into `mailbox` of `side` as a Maildir file whose mtime (dovecot's
/// INTERNALDATE for it) is `date`, so two messages can share size and date.
fn deliver_dated(side: &ImapSide, mailbox: &str, raw: &[u8], date: std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt;
    let out = side
        .dovecot
        .doveadm(&["mailbox", "path", "-u", &side.user, &side.native(mailbox)])
        .expect("mailbox path");
    let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out).trim());
    let owner = std::fs::metadata(dir.join("cur")).expect("cur");
    let base = format!("1700000000.Mdated{}.twinbox", sha(raw));
    let tmp = dir.join("tmp").join(&base);
    std::fs::write(&tmp, raw).expect("write");
    let f = std::fs::File::options()
        .write(true)
        .open(&tmp)
        .expect("open");
    f.set_modified(date).expect("mtime");
    drop(f);
    std::os::unix::fs::chown(&tmp, Some(owner.uid()), Some(owner.gid())).expect("chown");
    std::fs::rename(&tmp, dir.join("cur").join(format!("{base}:2,"))).expect("deliver");
}

/// A message without Message-ID expunged from INBOX and a different one (another header,
/// same size, same INTERNALDATE) new in Archive on the remote side: size and date match,
/// but the header blocks differ, so nothing is moved: the new message is transferred and
/// the old one expunged, as without move matching.
#[test]
fn a_size_and_date_match_with_another_header_is_not_a_move() {
    let bed = SyncBed::imap();
    let old = b"Subject: aaaa\r\n\r\nthe same body\r\n".to_vec();
    let new = b"Subject: bbbb\r\n\r\nthe same body\r\n".to_vec();
    let date = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    bed.remote.create_mailbox("Archive").expect("create");
    deliver_dated(&bed.remote, "INBOX", &old, date);
    bed.sync();
    bed.assert_converged();
    bed.remote.expunge("INBOX", &sha(&old)).expect("expunge");
    deliver_dated(&bed.remote, "Archive", &new, date);
    let r0 = count(&bed.remote);
    let run = bed.sync();
    let s = run.summary();
    assert_eq!((s.to_local, s.expunged), (1, 1), "{run}");
    assert!(!run.stdout.contains("moved"), "{run}");
    let rc = commands_after(&bed.remote, r0);
    assert!(rc.iter().any(|c| c.contains("BODY.PEEK[HEADER]")), "{rc:?}");
    let snap = bed.assert_converged();
    assert!(snap["INBOX"].is_empty());
    assert_eq!(snap["Archive"], vec![msg(&new, &[])]);
}

/// machineui reports replayed moves as `moved` events (not `copied`), and counts them in
/// `account_end`.
#[test]
fn machineui_reports_moves() {
    let bed = SyncBed::imap();
    let (inbox, _) = synced(&bed);
    move_on(&bed.remote, "INBOX", &inbox[0], "Archive");
    move_on(&bed.remote, "INBOX", &inbox[1], "Archive");
    let run = bed.run_with(&["-u", "machineui"], &[]);
    assert!(run.ok(), "{run}");
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        events.iter().filter(|e| e["event"] == kind).collect()
    };
    let moved = of("moved");
    assert_eq!(moved.len(), 1, "{run}");
    assert_eq!(moved[0]["mailbox"], "Archive");
    assert_eq!(moved[0]["from"], "INBOX");
    assert_eq!(moved[0]["on"], "local");
    assert_eq!(moved[0]["messages"], 2);
    assert!(of("copied").is_empty(), "{run}");
    let end = of("account_end");
    assert_eq!(end[0]["moved"], 2, "{run}");
    assert_eq!(end[0]["copied_to_local"], 0, "{run}");
    let snap = bed.assert_converged();
    assert_eq!(snap["Archive"].len(), 4);
}

/// At every step of a sync replaying moves (the move scan, the moves, the jobs that reuse
/// the move scan of the side that made the moves), another client saves a message on each
/// side, sets a flag and expunges a message on the remote side: nothing is lost or
/// duplicated, and the next run brings both sides to the same result.
#[test]
fn changes_during_a_move_sync_at_every_step() {
    let bed = SyncBed::imap();
    let (inbox, archive) = synced(&bed);
    let extra = sample_messages(204, 2);
    move_on(&bed.remote, "INBOX", &inbox[0], "Archive");
    move_on(&bed.remote, "INBOX", &inbox[1], "Archive");
    move_on(&bed.local, "Archive", &archive[1], "INBOX");
    let (x, y) = (bed.dir.path().join("x.eml"), bed.dir.path().join("y.eml"));
    std::fs::write(&x, &extra[0]).expect("write");
    std::fs::write(&y, &extra[1]).expect("write");
    let doveadm = |side: &ImapSide, args: String| {
        format!(
            "/usr/bin/doveadm -c '{}' {args}",
            side.dovecot.config_path().display()
        )
    };
    let (r, l) = (&bed.remote, &bed.local);
    let u3 = r.uid_of("INBOX", &sha(&inbox[3])).expect("uid");
    let u4 = r.uid_of("INBOX", &sha(&inbox[4])).expect("uid");
    let cmd = [
        doveadm(
            r,
            format!("save -u {} -m Archive < '{}'", r.user, x.display()),
        ),
        doveadm(
            l,
            format!("save -u {} -m INBOX < '{}'", l.user, y.display()),
        ),
        doveadm(
            r,
            format!("flags add -u {} '$Hook' mailbox INBOX uid {u3}", r.user),
        ),
        doveadm(r, format!("expunge -u {} mailbox INBOX uid {u4}", r.user)),
    ]
    .join(" && ");
    let want: Snapshot = {
        let mut s = bed.remote.snapshot().expect("snapshot");
        let moved = msg(&archive[1], &["\\Seen"]);
        let a = s.entry("Archive".into()).or_default();
        a.retain(|m| *m != moved);
        a.push(msg(&extra[0], &[]));
        let i = s.entry("INBOX".into()).or_default();
        i.push(moved);
        i.push(msg(&extra[1], &[]));
        i.retain(|m| m.sha256 != sha(&inbox[4]));
        for m in i.iter_mut().filter(|m| m.sha256 == sha(&inbox[3])) {
            m.flags.push("$Hook".into());
            m.flags.sort();
        }
        for v in s.values_mut() {
            v.sort();
        }
        s
    };
    bed.checkpoint("moved");
    let mut n = 1;
    loop {
        bed.restore("moved");
        let n_s = n.to_string();
        let run = bed.run_with(
            &["-1"],
            &[("TWINBOX_HOOK_AT", &n_s), ("TWINBOX_HOOK_CMD", &cmd)],
        );
        assert!(run.ok(), "step {n}: {run}");
        if !run.stderr.contains("running the test hook") {
            assert!(n > 3, "suspiciously few steps ({n}):\n{run}");
            break;
        }
        assert!(!run.stderr.contains("hook failed"), "{run}");
        let again = bed.sync();
        let got = bed.assert_converged();
        assert_eq!(got, want, "step {n}:\n{run}\n{again}");
        n += 1;
        assert!(n < 100, "no run completed");
    }
    eprintln!("changed behind the sync's back at each of {} steps", n - 1);
}

/// Cyrus IMAP 3.6 as the local side: moves made on the dovecot side are replayed there
/// with UID MOVE (Cyrus's COPYUID gives the new UIDs); nothing is copied and a second run
/// changes nothing.
#[test]
fn moves_are_replayed_on_cyrus() {
    use twinbox::testbed::{Cyrus, CyrusOptions};
    let cy = std::sync::Arc::new(Cyrus::start(CyrusOptions::default()).expect("Cyrus"));
    let (opts, repo) = crate::namespaces::login(cy.host(), cy.port(), "alice", "any");
    let side = crate::namespaces_side::NsSide {
        opts,
        prefix: cy.prefix(),
        sep: cy.separator(),
        repo,
        label: format!("cyrus on port {}", cy.port()),
    };
    let bed = SyncBed::new(crate::namespaces::plain_remote(), side);
    let inbox = sample_messages(205, 5);
    bed.remote.seed("INBOX", &inbox, &[]).expect("seed");
    bed.remote.create_mailbox("Archive").expect("create");
    bed.sync();
    bed.assert_converged();
    move_on(&bed.remote, "INBOX", &inbox[0], "Archive");
    move_on(&bed.remote, "INBOX", &inbox[1], "Archive");
    let run = bed.sync();
    let s = run.summary();
    assert_eq!((s.to_local, s.to_remote), (0, 0), "transferred:\n{run}");
    assert!(run.stdout.contains("moved 2"), "{run}");
    let snap = bed.assert_converged();
    assert_eq!(snap["INBOX"].len(), 3);
    let mut want = vec![msg(&inbox[0], &[]), msg(&inbox[1], &[])];
    want.sort();
    assert_eq!(snap["Archive"], want);
    drop(cy);
}
