//! The store through its trait, on a temporary Maildir: UIDs survive renames, changes are
//! reported since a saved state, writes are recorded, unchanged folders are not read.

use std::sync::atomic::Ordering;

use super::*;
use crate::store::{OwnChanges, ScanMode, Store, Upload};
use crate::sync::plan::{Fingerprint, FlagAction, Flags};

fn flags(v: &[&str]) -> Flags {
    v.iter().map(|s| s.to_string()).collect()
}

fn store(dir: &std::path::Path) -> MaildirStore {
    let layout = Layout {
        root: dir.join("mail"),
        sep: '/',
        inbox: Inbox::Root,
        utf8: true,
    };
    let mut o = MaildirOptions::new(layout, dir.join("meta/map.db"));
    o.fsync = false;
    MaildirStore::open_store(&o).expect("open store")
}

const MSG: &[u8] = b"Message-ID: <a@b>\nSubject: x\n\nbody\n";

#[tokio::test]
async fn uids_follow_files_through_renames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = store(dir.path());
    s.create("INBOX").await.expect("create");
    s.create("Work/2024").await.expect("create");
    let root = dir.path().join("mail");
    std::fs::write(root.join("new/100.a.host"), MSG).expect("deliver");
    let list = s.list().await.expect("list");
    let names: Vec<&str> = list.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["INBOX", "Work/2024"]);
    let none = crate::state::SideState::default();
    let scan = s
        .open("INBOX", &none, &[], ScanMode::Full, false)
        .await
        .expect("open");
    assert_eq!(scan.changes.new.len(), 1);
    let m = &scan.changes.new[0];
    assert_eq!((m.uid, m.flags.is_empty()), (1, true));
    assert_eq!(m.fp.size as usize, MSG.len() + 4, "size counts CRLF");
    // Served with CRLF.
    let mut got = Vec::new();
    s.fetch(&[1], &mut |b| {
        got = b.data.to_vec()?;
        Ok(())
    })
    .await
    .expect("fetch");
    assert!(got.starts_with(b"Message-ID: <a@b>\r\n"));
    // We append one (flagged, with a keyword), and set flags on the delivered one.
    let f = flags(&["\\Seen", "$Label1"]);
    let up = Upload {
        data: crate::store::BodyRef::Bytes(b"Message-ID: <c@d>\r\n\r\nhi\r\n"),
        flags: &f,
        internaldate: None,
        fp: Fingerprint::default(),
    };
    let uids = s.append(&[up]).await.expect("append");
    assert_eq!(uids, [Some(2)]);
    let failed = s
        .set_flags(
            &[FlagAction {
                side: crate::sync::plan::Side::Local,
                uid: 1,
                add: flags(&["\\Flagged"]),
                remove: Flags::new(),
                target: flags(&["\\Flagged"]),
                modseq: None,
            }],
            Some(scan.status.highestmodseq),
        )
        .await
        .expect("flags");
    assert!(failed.is_empty());
    assert!(
        root.join("cur/100.a.host:2,F").exists(),
        "moved to cur/ with its flag"
    );
    let ours = OwnChanges {
        appended: vec![(2, f.clone())],
        flagged: vec![(1, flags(&["\\Flagged"]))],
        ..Default::default()
    };
    let saved = s
        .settle("INBOX", &scan.status, &ours)
        .await
        .expect("settle");
    assert_eq!(saved.uidnext, 3);
    assert!(std::fs::read_to_string(root.join("dovecot-keywords"))
        .expect("keywords")
        .contains("$Label1"));
    // A mail reader marks the first one seen (rename): same UID, a flag change.
    std::fs::rename(
        root.join("cur/100.a.host:2,F"),
        root.join("cur/100.a.host:2,FS"),
    )
    .expect("rename");
    let scan2 = s
        .open("INBOX", &saved, &[1, 2], ScanMode::Full, false)
        .await
        .expect("open");
    assert!(scan2.changes.new.is_empty());
    assert!(scan2.changes.vanished.is_empty());
    assert_eq!(
        scan2.changes.flags.get(&1).map(|(f, _)| f.clone()),
        Some(flags(&["\\Flagged", "\\Seen"]))
    );
    assert!(!scan2.changes.flags.contains_key(&2));
    // Renamed again behind our back: a flag change on the old name fails cleanly, and
    // an expunge still finds the file.
    std::fs::rename(
        root.join("cur/100.a.host:2,FS"),
        root.join("cur/100.a.host:2,S"),
    )
    .expect("rename");
    let failed = s
        .set_flags(
            &[FlagAction {
                side: crate::sync::plan::Side::Local,
                uid: 1,
                add: flags(&["\\Answered"]),
                remove: Flags::new(),
                target: flags(&["\\Answered"]),
                modseq: None,
            }],
            None,
        )
        .await
        .expect("flags");
    assert_eq!(failed, [1]);
    s.expunge(&[1]).await.expect("expunge");
    assert!(!root.join("cur/100.a.host:2,S").exists());
}

#[tokio::test]
async fn unchanged_folders_are_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = store(dir.path());
    s.create("INBOX").await.expect("create");
    let root = dir.path().join("mail");
    std::fs::write(root.join("new/100.a.host"), MSG).expect("deliver");
    // Age the directory stamps past the window in which they are not trusted.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
    for d in ["cur", "new"] {
        std::fs::File::open(root.join(d))
            .and_then(|f| f.set_modified(old))
            .expect("age");
    }
    let first = s.list().await.expect("list");
    let reads = s.opts.reads.load(Ordering::Relaxed);
    let again = s.list().await.expect("list");
    assert_eq!(
        s.opts.reads.load(Ordering::Relaxed),
        reads,
        "no second read"
    );
    assert_eq!(first, again);
    std::fs::write(root.join("new/200.b.host"), MSG).expect("deliver");
    let third = s.list().await.expect("list");
    assert_eq!(s.opts.reads.load(Ordering::Relaxed), reads + 1);
    let (a, b) = (
        first[0].status.unwrap_or_default(),
        third[0].status.unwrap_or_default(),
    );
    assert_eq!((b.messages, b.uidnext), (a.messages + 1, a.uidnext + 1));
    assert!(b.highestmodseq > a.highestmodseq);
}
