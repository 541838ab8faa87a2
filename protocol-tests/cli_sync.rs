//! The sync through the real binary: maxage/maxsize, readonly, expunge = no, hooks,
//! [mbnames], and --dry-run leaving both servers and the state byte-identical.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use twinbox::testbed::sample_messages;

use crate::cli_util::{expect_code, text, Bed};

/// A small message with a unique Message-ID and roughly `size` bytes.
fn message(tag: &str, size: usize) -> Vec<u8> {
    let mut m = format!(
        "Message-ID: <{tag}@cli.test>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nFrom: a@cli.test\r\nSubject: {tag}\r\n\r\n"
    );
    while m.len() < size {
        m.push_str("lorem ipsum dolor sit amet, consectetur adipiscing elit\r\n");
    }
    m.into_bytes()
}

/// Sets the mtime (dovecot's INTERNALDATE for Maildir) of every message file of a mailbox.
fn age_mailbox(bed: &Bed, user: &str, mailbox: &str, to: SystemTime) {
    let out = bed
        .dv
        .doveadm(&["mailbox", "path", "-u", user, mailbox])
        .expect("mailbox path");
    let dir = PathBuf::from(String::from_utf8_lossy(&out).trim());
    for sub in ["cur", "new"] {
        for e in std::fs::read_dir(dir.join(sub)).expect("read maildir") {
            let f = std::fs::File::options()
                .write(true)
                .open(e.expect("entry").path())
                .expect("open message file");
            f.set_modified(to).expect("set mtime");
        }
    }
}

#[test]
fn maxage_and_maxsize_copy_only_what_they_allow_and_never_expunge() {
    let bed = Bed::new();
    let old: Vec<Vec<u8>> = (0..3).map(|i| message(&format!("old{i}"), 2_000)).collect();
    bed.dv
        .seed_mailbox("alice", "INBOX", &old, &[])
        .expect("seed");
    age_mailbox(
        &bed,
        "alice",
        "INBOX",
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800), // 2020-01-01
    );
    let fresh: Vec<Vec<u8>> = (0..3).map(|i| message(&format!("new{i}"), 3_000)).collect();
    let big: Vec<Vec<u8>> = (0..2)
        .map(|i| message(&format!("big{i}"), 80_000))
        .collect();
    bed.dv
        .seed_mailbox("alice", "INBOX", &fresh, &["\\Seen"])
        .expect("seed");
    bed.dv
        .seed_mailbox("alice", "INBOX", &big, &[])
        .expect("seed");
    let local_big = message("localbig", 90_000);
    let local_small = message("localsmall", 1_000);
    bed.dv
        .seed_mailbox("bob", "INBOX", &[local_big, local_small.clone()], &[])
        .expect("seed");
    bed.write_conf("maxage = 30\nmaxsize = 50k", "", "");

    let o = bed.run(&["-o"]);
    expect_code(&o, 0);
    let remote_before = bed.snapshot("alice", "INBOX");
    let bob: Vec<String> = bed
        .snapshot("bob", "INBOX")
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    let want: Vec<String> = fresh
        .iter()
        .chain([&local_small])
        .map(|m| twinbox::testbed::message_sha256_hex(m))
        .chain([twinbox::testbed::message_sha256_hex(&message(
            "localbig", 90_000,
        ))])
        .collect();
    let mut want = want;
    want.sort();
    assert_eq!(
        bob,
        want,
        "local: the 3 recent small ones plus its own two\n{}",
        text(&o)
    );
    assert_eq!(
        remote_before.len(),
        8 + 1,
        "remote got only the small local message"
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("maxage/startdate or bigger than maxsize")
            || String::from_utf8_lossy(&o.stderr)
                .contains("maxage/startdate or bigger than maxsize"),
        "the skipped messages are reported\n{}",
        text(&o)
    );

    // A second run changes nothing: the filtered messages are neither copied nor expunged.
    let o = bed.run(&["-o"]);
    expect_code(&o, 0);
    assert_eq!(bed.snapshot("alice", "INBOX"), remote_before);
    assert_eq!(bed.snapshot("bob", "INBOX").len(), 5);
    // And check counts them as left alone, not as inconsistencies.
    let c = bed.run(&["check"]);
    expect_code(&c, 0);
}

#[test]
fn readonly_remote_is_never_written() {
    let bed = Bed::new();
    bed.dv
        .seed_mailbox("alice", "INBOX", &sample_messages(3, 4), &[])
        .expect("seed");
    bed.write_conf("", "", "readonly = yes");
    let o = bed.run(&[]);
    expect_code(&o, 0);
    assert_eq!(bed.snapshot("bob", "INBOX"), bed.snapshot("alice", "INBOX"));
    let remote = bed.everything("alice");

    // Local changes of every kind.
    let uids: Vec<u32> = bed
        .dv
        .list_messages("bob", "INBOX")
        .expect("list")
        .iter()
        .map(|m| m.uid)
        .collect();
    bed.dv
        .add_flags("bob", "INBOX", uids[0], &["\\Flagged"])
        .expect("flag");
    bed.dv.expunge("bob", "INBOX", uids[1]).expect("expunge");
    bed.dv
        .append("bob", "INBOX", &message("mine", 500), &[])
        .expect("append");
    bed.dv
        .seed_mailbox("bob", "Local only", &[message("lo", 500)], &[])
        .expect("seed");
    let o = bed.run(&[]);
    expect_code(&o, 0);
    assert_eq!(
        bed.everything("alice"),
        remote,
        "the read-only side is untouched\n{}",
        text(&o)
    );
    // The local side keeps its own changes.
    assert_eq!(bed.snapshot("bob", "INBOX").len(), 4);
    // Remote changes still come down.
    bed.dv
        .append("alice", "INBOX", &message("fromremote", 700), &[])
        .expect("append");
    let o = bed.run(&[]);
    expect_code(&o, 0);
    assert_eq!(bed.snapshot("bob", "INBOX").len(), 5, "{}", text(&o));
}

#[test]
fn expunge_no_marks_messages_deleted_instead() {
    let bed = Bed::new();
    bed.dv
        .seed_mailbox("alice", "INBOX", &sample_messages(4, 3), &[])
        .expect("seed");
    bed.write_conf("", "", "expunge = no");
    expect_code(&bed.run(&[]), 0);
    let uid = bed.dv.list_messages("bob", "INBOX").expect("list")[0].uid;
    bed.dv.expunge("bob", "INBOX", uid).expect("expunge");
    let o = bed.run(&[]);
    expect_code(&o, 0);
    let remote = bed.dv.list_messages("alice", "INBOX").expect("list");
    assert_eq!(
        remote.len(),
        3,
        "nothing expunged on the remote side\n{}",
        text(&o)
    );
    let deleted = remote
        .iter()
        .filter(|m| m.flags.iter().any(|f| f == "\\Deleted"))
        .count();
    assert_eq!(
        deleted, 1,
        "the message deleted locally is marked \\Deleted"
    );
    // Nothing comes back to the local side.
    expect_code(&bed.run(&[]), 0);
    assert_eq!(bed.snapshot("bob", "INBOX").len(), 2);
}

#[test]
fn hooks_run_with_the_account_and_a_failing_presynchook_skips_it() {
    let bed = Bed::new();
    bed.dv
        .seed_mailbox("alice", "INBOX", &sample_messages(5, 2), &[])
        .expect("seed");
    let log = bed.home.path().join("hooks.log");
    bed.write_conf(
        &format!(
            "presynchook = echo \"pre $TWINBOX_ACCOUNT $TWINBOX_REMOTE_REPOSITORY\" >> {0}\npostsynchook = echo \"post $TWINBOX_ACCOUNT $TWINBOX_SYNC_STATUS\" >> {0}",
            log.display()
        ),
        "",
        "",
    );
    let o = bed.run(&[]);
    expect_code(&o, 0);
    let got = std::fs::read_to_string(&log).expect("hook log");
    assert_eq!(got, "pre T Remote\npost T ok\n");
    assert_eq!(bed.snapshot("bob", "INBOX").len(), 2);

    // A dry run runs no hook, and says it would.
    let o = bed.run(&["--dry-run"]);
    expect_code(&o, 0);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("would run presynchook `echo"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read_to_string(&log).expect("hook log"), got);

    // A failing presynchook skips the account with a clear error.
    bed.dv
        .append("alice", "INBOX", &message("later", 500), &[])
        .expect("append");
    bed.write_conf("presynchook = false", "", "");
    let o = bed.run(&[]);
    expect_code(&o, 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("presynchook") && err.contains("false"),
        "{}",
        text(&o)
    );
    assert_eq!(
        bed.snapshot("bob", "INBOX").len(),
        2,
        "the account was not synced"
    );
}

#[test]
fn mbnames_lists_the_synced_folders() {
    let bed = Bed::new();
    for f in ["INBOX", "Lists/rust", "Archive", "Trash"] {
        bed.dv
            .seed_mailbox("alice", f, &[message(&format!("m-{f}"), 300)], &[])
            .expect("seed");
    }
    let out = bed.home.path().join("mailboxes");
    bed.write_raw(&format!(
        "[general]\nmetadata = {}\n\n[Account T]\nlocalrepository = Local\nremoterepository = Remote\n\n{}{}\n[mbnames]\nenabled = yes\nfilename = {}\nheader = \"mailboxes \"\nperitem = \"+%(accountname)s/%(foldername)s\"\nsep = \" \"\nfooter = \"\\n\"\nfolderfilter = !Trash\n",
        bed.meta().display(),
        bed.repo("Local", "bob", ""),
        bed.repo("Remote", "alice", ""),
        out.display()
    ));
    let o = bed.run(&[]);
    expect_code(&o, 0);
    let got = std::fs::read_to_string(&out).expect("mbnames file");
    assert_eq!(
        got,
        "mailboxes +T/Archive +T/INBOX +T/Lists/rust\n",
        "{}",
        text(&o)
    );
}

/// Every file under `dir` (path relative to it -> content), skipping dovecot's index and
/// cache files (which reading may refresh): the messages and their names (flags).
fn files(dir: &Path, skip_index: bool) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.expect("entry").path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if skip_index
                && (name.starts_with("dovecot")
                    || name == "rawlog"
                    || p.to_string_lossy().contains("/rawlog"))
            {
                continue;
            }
            let rel = p
                .strip_prefix(dir)
                .expect("prefix")
                .to_string_lossy()
                .to_string();
            out.insert(rel, std::fs::read(&p).unwrap_or_default());
        }
    }
    out
}

#[test]
fn dry_run_lists_everything_and_changes_nothing() {
    let bed = Bed::new();
    bed.dv
        .seed_mailbox("alice", "INBOX", &sample_messages(6, 5), &[])
        .expect("seed");
    bed.dv
        .seed_mailbox("alice", "Lists/rust", &sample_messages(7, 3), &[])
        .expect("seed");
    bed.write_conf("", "", "");
    expect_code(&bed.run(&[]), 0);
    // Changes everywhere: new messages both ways, flags, an expunge, a new folder.
    let remote = bed.dv.list_messages("alice", "INBOX").expect("list");
    bed.dv
        .add_flags("alice", "INBOX", remote[0].uid, &["\\Flagged"])
        .expect("flag");
    bed.dv
        .expunge("alice", "INBOX", remote[1].uid)
        .expect("expunge");
    bed.dv
        .append("bob", "INBOX", &message("up", 1_000), &[])
        .expect("append");
    bed.dv
        .append("alice", "INBOX", &message("down", 2_000), &[])
        .expect("append");
    bed.dv
        .seed_mailbox("alice", "New folder", &[message("nf", 400)], &[])
        .expect("seed");

    let homes = [bed.dv.home_dir("alice"), bed.dv.home_dir("bob")];
    let before_mail: Vec<_> = homes.iter().map(|h| files(h, true)).collect();
    let before_list = (bed.everything("alice"), bed.everything("bob"));
    let before_state = files(&bed.meta(), false);

    let o = bed.run(&["--dry-run"]);
    expect_code(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("create folder \"New folder\" on the local side"),
        "{}",
        text(&o)
    );
    let nf = format!(
        "New folder: copy 1 message(s), {} bytes, remote -> local",
        message("nf", 400).len()
    );
    assert!(out.contains(&nf), "{nf}\n{}", text(&o));
    assert!(
        out.contains("INBOX: copy 1 message(s)") && out.contains("remote -> local"),
        "{}",
        text(&o)
    );
    assert!(out.contains("local -> remote"), "{}", text(&o));
    assert!(out.contains("add (\\Flagged)"), "{}", text(&o));
    assert!(
        out.contains("expunge 1 message(s) on the local side"),
        "{}",
        text(&o)
    );

    assert_eq!(
        homes.iter().map(|h| files(h, true)).collect::<Vec<_>>(),
        before_mail
    );
    assert_eq!(
        (bed.everything("alice"), bed.everything("bob")),
        before_list
    );
    assert_eq!(
        files(&bed.meta(), false),
        before_state,
        "the state database is byte-identical"
    );

    // A dry run before the very first sync creates no state at all.
    let bed2 = Bed::new();
    bed2.dv
        .seed_mailbox("alice", "INBOX", &sample_messages(8, 2), &[])
        .expect("seed");
    bed2.write_conf("", "", "");
    let o = bed2.run(&["--dry-run"]);
    expect_code(&o, 0);
    assert!(
        !bed2.meta().exists(),
        "no metadata directory after a dry run"
    );
    assert!(bed2.snapshot("bob", "INBOX").is_empty());
}

#[test]
fn createfolders_no_keeps_new_folders_off_that_side() {
    let bed = Bed::new();
    bed.dv
        .seed_mailbox("alice", "INBOX", &[message("in", 300)], &[])
        .expect("seed");
    bed.dv
        .seed_mailbox("alice", "Remote only", &[message("ro", 300)], &[])
        .expect("seed");
    bed.dv
        .seed_mailbox("bob", "Local only", &[message("lo", 300)], &[])
        .expect("seed");
    bed.write_conf("", "createfolders = no", "");
    let o = bed.run(&[]);
    expect_code(&o, 0);
    let bob = bed.dv.mailboxes("bob").expect("mailboxes");
    assert!(
        !bob.iter().any(|m| m == "Remote only"),
        "{bob:?}\n{}",
        text(&o)
    );
    let alice = bed.dv.mailboxes("alice").expect("mailboxes");
    assert!(
        alice.iter().any(|m| m == "Local only"),
        "the other side still gets folders"
    );
    assert_eq!(bed.snapshot("bob", "INBOX"), bed.snapshot("alice", "INBOX"));
}

#[test]
fn dry_run_with_a_maildir_local_side_changes_nothing() {
    let bed = Bed::new();
    bed.dv
        .seed_mailbox("alice", "INBOX", &sample_messages(9, 3), &[])
        .expect("seed");
    let mail = bed.home.path().join("Mail");
    bed.write_raw(&format!(
        "[general]\nmetadata = {}\n\n[Account T]\nlocalrepository = Local\nremoterepository = Remote\n\n[Repository Local]\ntype = Maildir\nlocalfolders = {}\n\n{}",
        bed.meta().display(),
        mail.display(),
        bed.repo("Remote", "alice", "")
    ));
    // Before any sync: no state, no Maildir, no UID map appear.
    let o = bed.run(&["--dry-run"]);
    expect_code(&o, 0);
    assert!(!bed.meta().exists(), "{}", text(&o));
    assert!(!mail.exists(), "{}", text(&o));

    expect_code(&bed.run(&[]), 0);
    // A message delivered locally (the map does not know it yet) and one remotely.
    let inbox = mail.join("INBOX");
    std::fs::write(
        inbox.join("new/1700000000.M1P1.host"),
        message("local-new", 700),
    )
    .expect("deliver");
    bed.dv
        .append("alice", "INBOX", &message("remote-new", 800), &[])
        .expect("append");
    let before = (files(&mail, false), files(&bed.meta(), false));
    let o = bed.run(&["--dry-run"]);
    expect_code(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("INBOX: copy 1 message(s)"), "{}", text(&o));
    assert_eq!(
        (files(&mail, false), files(&bed.meta(), false)),
        before,
        "Maildir, state and UID map byte-identical\n{}",
        text(&o)
    );
    // And the real sync afterwards does both copies.
    expect_code(&bed.run(&[]), 0);
    assert_eq!(bed.snapshot("alice", "INBOX").len(), 5);
}
