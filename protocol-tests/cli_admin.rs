//! `twinbox check`, `rename`, `delete` and `--info` through the real binary.

use twinbox::testbed::sample_messages;

use crate::cli_util::{expect_code, text, Bed};

fn synced_bed() -> Bed {
    let bed = Bed::new();
    bed.dv
        .seed_mailbox("alice", "INBOX", &sample_messages(11, 4), &[])
        .expect("seed");
    bed.dv
        .seed_mailbox(
            "alice",
            "Projects/old",
            &sample_messages(12, 3),
            &["\\Seen"],
        )
        .expect("seed");
    bed.write_conf("", "", "");
    expect_code(&bed.run(&[]), 0);
    bed
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn state_bytes(bed: &Bed) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(bed.meta())
        .expect("meta")
        .map(|e| {
            let p = e.expect("entry").path();
            (
                p.display().to_string(),
                std::fs::read(&p).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn check_reports_consistency_and_inconsistencies_without_changing_anything() {
    let bed = synced_bed();
    let o = bed.run(&["check"]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("T: consistent"), "{}", text(&o));

    // Ordinary changes since the last sync are pending work, not inconsistencies.
    let uid = bed.dv.list_messages("alice", "INBOX").expect("list")[0].uid;
    bed.dv
        .add_flags("alice", "INBOX", uid, &["\\Flagged"])
        .expect("flag");
    bed.dv
        .append("bob", "INBOX", &sample_messages(13, 1)[0], &[])
        .expect("append");
    let o = bed.run(&["check"]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("pending"), "{}", text(&o));

    // Break the state: forget one record, point another at a UID that does not exist.
    {
        let db = rusqlite::Connection::open(bed.state()).expect("open state");
        let mb: i64 = db
            .query_row(
                "SELECT id FROM mailbox WHERE name = 'Projects/old'",
                [],
                |r| r.get(0),
            )
            .expect("mailbox");
        let ids: Vec<i64> = {
            let mut st = db
                .prepare("SELECT id FROM message WHERE mailbox = ?1 ORDER BY id")
                .expect("prepare");
            st.query_map([mb], |r| r.get(0))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows")
        };
        db.execute("DELETE FROM message WHERE id = ?1", [ids[0]])
            .expect("delete");
        db.execute("UPDATE message SET r_uid = 999 WHERE id = ?1", [ids[1]])
            .expect("update");
    }
    let mail = (bed.everything("alice"), bed.everything("bob"));
    let state = state_bytes(&bed);
    let o = bed.run(&["check"]);
    expect_code(&o, 1);
    let out = stdout(&o);
    assert!(out.contains("remote UID 999 is mapped"), "{}", text(&o));
    assert!(out.contains("is not in the state"), "{}", text(&o));
    assert!(out.contains("Projects/old: INCONSISTENT"), "{}", text(&o));
    assert!(!out.contains("INBOX: INCONSISTENT"), "{}", text(&o));
    assert_eq!((bed.everything("alice"), bed.everything("bob")), mail);
    assert_eq!(
        state_bytes(&bed),
        state,
        "check changes nothing in the state"
    );
}

#[test]
fn rename_moves_the_folder_on_both_sides_and_in_the_state() {
    let bed = synced_bed();
    let before = bed.snapshot("alice", "Projects/old");
    let o = bed.run(&["rename", "Projects/old", "Archive/projects"]);
    expect_code(&o, 0);
    for user in ["alice", "bob"] {
        let boxes = bed.dv.mailboxes(user).expect("mailboxes");
        assert!(
            boxes.iter().any(|m| m == "Archive/projects"),
            "{user}: {boxes:?}"
        );
        assert!(
            !boxes.iter().any(|m| m == "Projects/old"),
            "{user}: {boxes:?}"
        );
        assert_eq!(bed.snapshot(user, "Archive/projects"), before);
    }
    // The next sync copies nothing and is consistent.
    let o = bed.run(&[]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("copied 0 to local / 0 to remote"),
        "{}",
        text(&o)
    );
    assert_eq!(bed.snapshot("bob", "Archive/projects"), before);
    expect_code(&bed.run(&["check"]), 0);

    // Renaming onto an existing folder is refused; so is INBOX.
    let o = bed.run(&["rename", "Archive/projects", "INBOX"]);
    expect_code(&o, 2);
    let o = bed.run(&["rename", "Nope", "Other"]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("no \"Nope\""), "{}", text(&o));
}

#[test]
fn delete_needs_yes_then_removes_both_sides_and_the_state() {
    let bed = synced_bed();
    let o = bed.run(&["delete", "Projects/old"]);
    expect_code(&o, 1);
    assert!(stdout(&o).contains("would delete"), "{}", text(&o));
    for user in ["alice", "bob"] {
        assert_eq!(bed.snapshot(user, "Projects/old").len(), 3);
    }
    let o = bed.run(&["delete", "Projects/old", "--yes"]);
    expect_code(&o, 0);
    for user in ["alice", "bob"] {
        let boxes = bed.dv.mailboxes(user).expect("mailboxes");
        assert!(
            !boxes.iter().any(|m| m == "Projects/old"),
            "{user}: {boxes:?}"
        );
    }
    let names: Vec<String> = {
        let db = rusqlite::Connection::open(bed.state()).expect("open state");
        let mut st = db.prepare("SELECT name FROM mailbox").expect("prepare");
        st.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert!(!names.iter().any(|n| n == "Projects/old"), "{names:?}");
    // A sync afterwards does not bring it back.
    expect_code(&bed.run(&[]), 0);
    for user in ["alice", "bob"] {
        let boxes = bed.dv.mailboxes(user).expect("mailboxes");
        assert!(
            !boxes.iter().any(|m| m == "Projects/old"),
            "{user}: {boxes:?}"
        );
    }
    expect_code(&bed.run(&["delete", "INBOX", "--yes"]), 2);
}

#[test]
fn info_shows_repositories_capabilities_and_translated_folders() {
    let bed = Bed::new();
    bed.dv
        .seed_mailbox("alice", "INBOX", &sample_messages(14, 1), &[])
        .expect("seed");
    bed.dv
        .seed_mailbox("alice", "Trash", &sample_messages(15, 1), &[])
        .expect("seed");
    bed.write_conf("", "", "nametrans = s/^Lists/L/\nfolderfilter = !Trash");
    bed.dv
        .seed_mailbox("alice", "Lists/rust", &sample_messages(16, 1), &[])
        .expect("seed");
    let o = bed.run(&["--info"]);
    expect_code(&o, 0);
    let out = stdout(&o);
    for want in [
        "[Account T]",
        "local repository Local",
        "remote repository Remote",
        "127.0.0.1:",
        "password: remotepass (in the configuration)",
        "capabilities: ",
        "IMAP4REV1",
        "INBOX -> INBOX",
        "Lists/rust -> L/rust",
        "Trash -> Trash  [excluded by folderfilter",
    ] {
        assert!(out.contains(want), "missing {want:?}\n{}", text(&o));
    }
    assert!(!out.contains("secret"), "never a password\n{}", text(&o));
    // --info changes nothing: no state, nothing created.
    assert!(!bed.meta().exists());
    assert!(bed.dv.mailboxes("bob").expect("mailboxes").len() <= 1);
}

#[test]
fn rename_and_delete_with_a_maildir_local_side() {
    let bed = Bed::new();
    bed.dv
        .seed_mailbox(
            "alice",
            "Projects/old",
            &sample_messages(17, 3),
            &["\\Seen"],
        )
        .expect("seed");
    bed.dv
        .seed_mailbox("alice", "Projects/old/sub", &sample_messages(18, 1), &[])
        .expect("seed");
    let mail = bed.home.path().join("Mail");
    bed.write_raw(&format!(
        "[general]\nmetadata = {}\n\n[Account T]\nlocalrepository = Local\nremoterepository = Remote\n\n[Repository Local]\ntype = Maildir\nlocalfolders = {}\n\n{}",
        bed.meta().display(),
        mail.display(),
        bed.repo("Remote", "alice", "")
    ));
    expect_code(&bed.run(&[]), 0);
    let count = |dir: &std::path::Path| {
        ["cur", "new"]
            .iter()
            .map(|s| {
                std::fs::read_dir(dir.join(s))
                    .map(|d| d.count())
                    .unwrap_or(0)
            })
            .sum::<usize>()
    };
    assert_eq!(count(&mail.join("Projects/old")), 3);
    assert_eq!(count(&mail.join("Projects/old/sub")), 1);

    let o = bed.run(&["rename", "Projects/old", "Archive/2024"]);
    expect_code(&o, 0);
    assert!(!mail.join("Projects/old/cur").exists(), "{}", text(&o));
    assert_eq!(count(&mail.join("Archive/2024")), 3);
    assert_eq!(
        count(&mail.join("Archive/2024/sub")),
        1,
        "subfolders move along"
    );
    let remote = bed.dv.mailboxes("alice").expect("mailboxes");
    assert!(remote.iter().any(|m| m == "Archive/2024/sub"), "{remote:?}");
    // Nothing is copied again, and the state agrees with both sides.
    let o = bed.run(&[]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("copied 0 to local / 0 to remote"),
        "{}",
        text(&o)
    );
    assert_eq!(count(&mail.join("Archive/2024")), 3);
    expect_code(&bed.run(&["check"]), 0);

    let o = bed.run(&["delete", "Archive/2024", "--yes"]);
    expect_code(&o, 0);
    assert!(!mail.join("Archive/2024/cur").exists(), "{}", text(&o));
    assert_eq!(
        count(&mail.join("Archive/2024/sub")),
        1,
        "the subfolder stays"
    );
    expect_code(&bed.run(&[]), 0);
    assert!(!mail.join("Archive/2024/cur").exists(), "not recreated");
}
