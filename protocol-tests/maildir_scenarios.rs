//! The core scenarios on a Maildir local side, for both engines: changes on each side
//! (doveadm, a mail reader's rename, a move between folders, an LF-only file from another
//! program), conflicts, and interrupting the native writer at every step.

use std::path::{Path, PathBuf};

use twinbox::testbed::sample_messages;

use super::maildir_bed::{copied, hash, Bed, Engine, LOCAL, REMOTE};
use super::maildir_native::seed;

/// The directory of a local folder (INBOX at the root).
pub fn folder_dir(bed: &Bed, sep: char, folder: &str) -> PathBuf {
    if folder == "INBOX" {
        return bed.maildir.clone();
    }
    if sep == '/' {
        bed.maildir.join(folder)
    } else {
        bed.maildir.join(format!(".{folder}"))
    }
}

/// The first file in `dir/cur` (sorted), for mail-reader style changes.
fn a_file(dir: &Path) -> PathBuf {
    bed_files(dir)
        .into_iter()
        .find(|p| p.parent().is_some_and(|d| d.ends_with("cur")))
        .expect("a file in cur/")
}

fn bed_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in ["cur", "new"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                v.push(e.path());
            }
        }
    }
    v.sort();
    v
}

/// An LF-only message, as procmail or a script would write it.
const LF_MESSAGE: &[u8] = b"From: script@example.test\nTo: bob@example.test\nSubject: written with LF only\nMessage-ID: <lf-only@example.test>\nDate: Tue, 14 Nov 2023 10:00:00 +0000\n\nline one\nline two\n";

/// Changes on both sides after a first sync; returns the folders.
fn change_both_sides(bed: &Bed, sep: char) -> Vec<String> {
    let folders = seed(bed, sep);
    bed.sync();
    let dv = &bed.dv;
    let nested = &folders[1];
    let archive = &folders[3];
    // Remote: a flag, an expunge, a new message.
    dv.add_flags(REMOTE, "INBOX", 3, &["\\Flagged"])
        .expect("flag");
    dv.expunge(REMOTE, "INBOX", 4).expect("expunge");
    dv.append(
        REMOTE,
        nested,
        &sample_messages(20, 1).concat(),
        &["\\Seen"],
    )
    .expect("append");
    // Local, through dovecot: a flag removed, an expunge, a new message.
    let inbox = dv.list_messages(LOCAL, "INBOX").expect("list");
    dv.remove_flags(LOCAL, "INBOX", inbox[0].uid, &["\\Seen"])
        .expect("flags");
    dv.expunge(LOCAL, "INBOX", inbox[1].uid).expect("expunge");
    dv.append(LOCAL, "Entwürfe", &sample_messages(21, 1).concat(), &[])
        .expect("append");
    bed.fix_owner();
    // Local, as a mail reader: a rename that adds \Seen (and \Flagged), a move to
    // another folder, and an LF-only file dropped into new/.
    let inbox_dir = folder_dir(bed, sep, "INBOX");
    let file = a_file(&inbox_dir);
    let name = file.file_name().and_then(|n| n.to_str()).expect("name");
    let (unique, info) = name.split_once(":2,").unwrap_or((name, ""));
    let mut letters: Vec<char> = info.chars().chain(['S', 'F']).collect();
    letters.sort_unstable();
    letters.dedup();
    let renamed = file.with_file_name(format!(
        "{unique}:2,{}",
        letters.into_iter().collect::<String>()
    ));
    std::fs::rename(&file, &renamed).expect("rename");
    // Keyword letters mean something only with the folder's own dovecot-keywords: move a
    // file without any (a moved letter has no name in the new folder; dovecot shows it as
    // `unknown-N`, twinbox keeps it on disk and ignores it).
    let moving = bed_files(&inbox_dir)
        .into_iter()
        .find(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            p.parent().is_some_and(|d| d.ends_with("cur"))
                && *p != renamed
                && !n
                    .split_once(":2,")
                    .is_some_and(|(_, i)| i.chars().any(|c| c.is_ascii_lowercase()))
        })
        .expect("a file without keywords");
    let moved_hash = hash(&std::fs::read(&moving).expect("read"));
    let dest = folder_dir(bed, sep, archive)
        .join("cur")
        .join(moving.file_name().expect("name"));
    std::fs::rename(&moving, &dest).expect("move");
    std::fs::write(
        inbox_dir.join("new").join("1700000000.lfonly.example"),
        LF_MESSAGE,
    )
    .expect("write LF file");
    bed.fix_owner();
    let out = bed.sync();
    bed.assert_same(&folders.iter().map(String::as_str).collect::<Vec<_>>());
    // One new remote message down; up: dovecot's new message and the LF file. The mail
    // reader's rename is a flag change, not a new message; the move is replayed on the
    // server (UID MOVE, issue #11), not uploaded.
    assert_eq!(copied(&out), (1, 2), "{out}");
    assert!(out.contains("moved 1"), "{out}");
    // The moved message is in the archive on both sides, once, and not in INBOX.
    for user in [LOCAL, REMOTE] {
        let inbox = bed.messages(user, "INBOX");
        assert!(
            !inbox.iter().any(|(h, _)| *h == moved_hash),
            "{user}: {out}"
        );
        let arch = bed.messages(user, archive);
        assert_eq!(
            arch.iter().filter(|(h, _)| *h == moved_hash).count(),
            1,
            "{user}: {out}"
        );
    }
    // The LF-only message arrived once with CRLF and was not rewritten on disk.
    let lf_hash = hash(LF_MESSAGE);
    let remote = bed.messages(REMOTE, "INBOX");
    assert_eq!(remote.iter().filter(|(h, _)| *h == lf_hash).count(), 1);
    let on_disk = bed_files(&inbox_dir)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("lfonly"))
        .expect("the LF file is still there");
    assert_eq!(std::fs::read(on_disk).expect("read"), LF_MESSAGE);
    // And nothing moves on the next run.
    let out = bed.sync();
    assert_eq!(copied(&out), (0, 0), "{out}");
    bed.assert_same(&folders.iter().map(String::as_str).collect::<Vec<_>>());
    folders
}

#[test]
fn maildir_native_changes_on_both_sides() {
    let bed = Bed::new(Engine::Native, '/');
    change_both_sides(&bed, '/');
}

#[test]
fn maildir_native_changes_on_both_sides_maildirplusplus() {
    let bed = Bed::new(Engine::Native, '.');
    change_both_sides(&bed, '.');
}

#[test]
fn maildir_dovecot_changes_on_both_sides() {
    let bed = Bed::new(Engine::Dovecot, '/');
    change_both_sides(&bed, '/');
}

fn conflicts(engine: Engine) {
    let bed = Bed::new(engine, '/');
    let folders = seed(&bed, '/');
    bed.sync();
    let dv = &bed.dv;
    // Same message: \Flagged added remotely, \Seen removed locally: both kept (merge).
    dv.add_flags(REMOTE, "INBOX", 1, &["\\Flagged"])
        .expect("flag");
    let body = dv.fetch_message(REMOTE, "INBOX", 1).expect("fetch");
    let local = dv.list_messages(LOCAL, "INBOX").expect("list");
    let twin = local
        .iter()
        .find(|m| m.sha256_of_body_hex == hash(&body))
        .expect("synced copy");
    dv.remove_flags(LOCAL, "INBOX", twin.uid, &["\\Seen"])
        .expect("flags");
    // Expunged remotely while flagged locally: the expunge wins.
    let gone = dv.fetch_message(REMOTE, "INBOX", 5).expect("fetch");
    dv.expunge(REMOTE, "INBOX", 5).expect("expunge");
    let twin5 = local
        .iter()
        .find(|m| m.sha256_of_body_hex == hash(&gone))
        .expect("synced copy");
    dv.add_flags(LOCAL, "INBOX", twin5.uid, &["\\Answered"])
        .expect("flags");
    bed.fix_owner();
    bed.sync();
    bed.assert_same(&folders.iter().map(String::as_str).collect::<Vec<_>>());
    let merged = bed.flags_by_hash(REMOTE, "INBOX");
    assert_eq!(
        merged.get(&hash(&body)).cloned(),
        Some(vec!["$Label1".to_string(), "\\Flagged".to_string()])
    );
    assert!(!merged.contains_key(&hash(&gone)));
}

#[test]
fn maildir_native_conflicts() {
    conflicts(Engine::Native);
}

#[test]
fn maildir_dovecot_conflicts() {
    conflicts(Engine::Dovecot);
}

/// Runs syncs that abort after step 1, 2, 3, ... (each run going one step further than
/// the last before dying) until one completes; returns how many runs were cut short.
fn sync_with_faults(bed: &Bed) -> u32 {
    for n in 1..500 {
        let out = bed.run_output(Some(n));
        if out.status.success() {
            return n - 1;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("fault injected"),
            "run {n} failed otherwise: {err}"
        );
    }
    panic!("the sync never completed");
}

#[test]
fn maildir_native_interrupted_at_every_step() {
    interrupted_at_every_step(Engine::Native);
}

#[test]
fn maildir_dovecot_interrupted_at_every_step() {
    interrupted_at_every_step(Engine::Dovecot);
}

fn interrupted_at_every_step(engine: Engine) {
    let bed = Bed::new(engine, '/');
    let folders = seed(&bed, '/');
    let names: Vec<&str> = folders.iter().map(String::as_str).collect();
    // First sync, cut at every step in turn.
    let cut = sync_with_faults(&bed);
    assert!(cut >= 5, "only {cut} steps");
    let out = bed.sync();
    assert_eq!(copied(&out), (0, 0), "{out}");
    bed.assert_same(&names);
    assert_eq!(bed.messages(LOCAL, "INBOX").len(), 12);
    // Changes on both sides (flags, expunges, new mail), cut at every step again.
    let dv = &bed.dv;
    for uid in 1..=3 {
        dv.add_flags(REMOTE, "INBOX", uid, &["\\Deleted", "$Later"])
            .expect("flags");
    }
    dv.expunge(REMOTE, "INBOX", 6).expect("expunge");
    dv.seed_mailbox(REMOTE, &folders[1], &sample_messages(30, 4), &[])
        .expect("seed");
    let local = dv.list_messages(LOCAL, "INBOX").expect("list");
    for m in &local[..4] {
        dv.add_flags(LOCAL, "INBOX", m.uid, &["\\Answered"])
            .expect("flags");
    }
    dv.expunge(LOCAL, "INBOX", local[7].uid).expect("expunge");
    dv.seed_mailbox(LOCAL, "Entwürfe", &sample_messages(31, 3), &[])
        .expect("seed");
    bed.fix_owner();
    let cut = sync_with_faults(&bed);
    assert!(cut >= 5, "only {cut} steps");
    let out = bed.sync();
    assert_eq!(copied(&out), (0, 0), "{out}");
    bed.assert_same(&names);
    assert_eq!(bed.messages(LOCAL, "INBOX").len(), 10);
    assert_eq!(bed.messages(LOCAL, &folders[1]).len(), 9);
    assert_eq!(bed.messages(LOCAL, "Entwürfe").len(), 6);
}

/// A summary of the state and UID map, for failure messages.
fn dump(bed: &Bed) -> String {
    let meta = bed.dir.path().join("meta");
    let q = |db: &str, sql: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(meta.join(db))
            .arg(sql)
            .output();
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => format!("(sqlite3: {e})"),
        }
    };
    format!(
        "state: {} | pending: {} | map: {} | remote: {}\n",
        q("T.db", "SELECT count(*), min(l_uid), max(l_uid), min(r_uid), max(r_uid) FROM message;").trim(),
        q("T.db", "SELECT count(*), min(pending_since), max(pending_since), min(l_uid), max(l_uid), min(r_uid), max(r_uid) FROM message WHERE l_uid IS NULL OR r_uid IS NULL;").trim(),
        q("T.Local.uids.db", "SELECT uidvalidity, uidnext, modseq, messages FROM folder;").trim(),
        bed.dv.mailbox_status(REMOTE, "INBOX").map(|s| format!("{s:?}")).unwrap_or_default()
    )
}

#[test]
fn maildir_native_survives_kill_9() {
    let bed = Bed::new(Engine::Native, '/');
    let dv = &bed.dv;
    // Mail flows to the Maildir only, so the kills land in the native writer. (Killing
    // a run that uploads to IMAP is another matter: the server may still execute an
    // APPEND the dead client had fully sent, after the next run has re-sent it.)
    dv.seed_mailbox(REMOTE, "INBOX", &sample_messages(40, 400), &[])
        .expect("seed");
    for uid in (1..=400).step_by(25) {
        dv.add_flags(REMOTE, "INBOX", uid, &["\\Seen", "$Label2"])
            .expect("flags");
    }
    // Kill runs at different moments; each later run resumes. Every run's log is kept
    // for the failure message.
    let mut logs = String::new();
    for (i, delay_ms) in [30u64, 80, 150, 250, 400, 60, 120].into_iter().enumerate() {
        let log = bed.dir.path().join(format!("kill{i}.log"));
        let mut child = bed
            .command()
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::fs::File::create(log.with_extension("err")).expect("log"))
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        bed.fix_owner();
        for l in [log.clone(), log.with_extension("err")] {
            let text = std::fs::read_to_string(&l).unwrap_or_default();
            let keep: Vec<&str> = text
                .lines()
                .filter(|l| !l.contains("recognised as a copy"))
                .collect();
            logs.push_str(&format!(
                "--- run {i} (killed at {delay_ms} ms)\n{}\n",
                keep.join("\n")
            ));
        }
        logs.push_str(&dump(&bed));
    }
    let first = bed.sync();
    let out = bed.sync();
    assert_eq!(
        copied(&out),
        (0, 0),
        "{logs}\n--- first clean run:\n{first}\n--- second:\n{out}"
    );
    let n = [LOCAL, REMOTE].map(|u| bed.messages(u, "INBOX").len());
    assert_eq!(
        n,
        [400, 400],
        "{logs}\n--- first clean run:\n{first}\n--- second:\n{out}"
    );
    bed.assert_same(&["INBOX"]);
}

/// `inbox = folder` (the default): INBOX in `Maildir/INBOX/`, with both engines.
#[test]
fn maildir_native_inbox_folder() {
    inbox_folder(Engine::Native);
}

#[test]
fn maildir_dovecot_inbox_folder() {
    inbox_folder(Engine::Dovecot);
}

fn inbox_folder(engine: Engine) {
    let bed = Bed::with_inbox(engine, '/', true);
    let folders = seed(&bed, '/');
    let out = bed.sync();
    assert_eq!(copied(&out), (16, 6), "{out}");
    bed.assert_same(&folders.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(bed.maildir.join("INBOX").join("cur").is_dir());
    assert!(!bed.maildir.join("cur").exists(), "no Maildir at the root");
    let out = bed.sync();
    assert_eq!(copied(&out), (0, 0), "{out}");
}
