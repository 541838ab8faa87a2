//! The native Maildir store on the local side, through the real binary: first sync both
//! ways, changes on each side, conflicts, the no-op resync, nested and non-ASCII folders,
//! mail readers' renames and moves, LF-only files. dovecot (doveadm) reads bob's Maildir
//! as the independent check of what twinbox wrote.

use twinbox::testbed::sample_messages;

use super::maildir_bed::{copied, folders_read, Bed, Engine, LOCAL, REMOTE};

/// Seeds alice (remote) and bob (local, via dovecot writing his Maildir) with different
/// mail in overlapping folders.
pub fn seed(bed: &Bed, sep: char) -> Vec<String> {
    let nested = format!("Lists{sep}rust");
    let archive = format!("Archive{sep}2024");
    let dv = &bed.dv;
    dv.seed_mailbox(REMOTE, "INBOX", &sample_messages(1, 8), &[])
        .expect("seed");
    dv.seed_mailbox(REMOTE, &nested, &sample_messages(2, 5), &[])
        .expect("seed");
    dv.seed_mailbox(REMOTE, "Entwürfe", &sample_messages(3, 3), &[])
        .expect("seed");
    dv.add_flags(REMOTE, "INBOX", 1, &["\\Seen", "$Label1"])
        .expect("flags");
    dv.add_flags(REMOTE, "INBOX", 2, &["\\Flagged", "\\Answered"])
        .expect("flags");
    dv.seed_mailbox(LOCAL, "INBOX", &sample_messages(4, 4), &[])
        .expect("seed");
    dv.seed_mailbox(LOCAL, &archive, &sample_messages(5, 2), &[])
        .expect("seed");
    dv.add_flags(LOCAL, "INBOX", 1, &["\\Seen", "Work"])
        .expect("flags");
    bed.fix_owner();
    vec!["INBOX".to_string(), nested, "Entwürfe".to_string(), archive]
}

fn first_sync(sep: char) {
    let bed = Bed::new(Engine::Native, sep);
    // Several workers, each with its own store (and UID map connection).
    let conf = std::fs::read_to_string(&bed.conf).expect("conf");
    std::fs::write(&bed.conf, format!("{conf}maxconnections = 3\n")).expect("conf");
    let folders = seed(&bed, sep);
    let out = bed.sync();
    assert_eq!(copied(&out), (16, 6), "{out}");
    let names: Vec<&str> = folders.iter().map(String::as_str).collect();
    bed.assert_same(&names);
    // Nothing to do the second time.
    let out = bed.sync();
    assert_eq!(copied(&out), (0, 0), "{out}");
    bed.assert_same(&names);
    assert_eq!(bed.messages(LOCAL, "INBOX").len(), 12);
}

#[test]
fn maildir_native_first_sync_nested() {
    first_sync('/');
}

#[test]
fn maildir_native_first_sync_maildirplusplus() {
    first_sync('.');
}

#[test]
fn maildir_native_noop_resync_reads_no_folder() {
    let bed = Bed::new(Engine::Native, '/');
    seed(&bed, '/');
    bed.sync();
    // Directory stamps younger than two seconds are not trusted: let them age.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    bed.sync();
    let out = bed.sync();
    assert_eq!(folders_read(&out), Some(0), "{out}");
    assert!(out.contains("(0 opened)"), "{out}");
}

#[test]
fn maildir_native_dry_run_changes_nothing() {
    let bed = Bed::new(Engine::Native, '/');
    seed(&bed, '/');
    let before = bed.messages(LOCAL, "INBOX");
    let out = bed.command().arg("--dry-run").output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("would "), "{text}");
    bed.fix_owner();
    assert_eq!(bed.messages(LOCAL, "INBOX"), before);
    assert!(!bed.maildir.join("Lists").exists(), "no folder created");
    let out = bed.sync();
    assert_eq!(copied(&out), (16, 6), "{out}");
}
