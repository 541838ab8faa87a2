//! The dovecot engine on the local side (dovecot's imap binary as a PREAUTH tunnel on
//! bob's Maildir, run as the Maildir's owner since the tests run as root), and the
//! cross-checks between the native engine and dovecot on the same Maildir.

use twinbox::testbed::sample_messages;

use super::maildir_bed::{copied, Bed, Engine, LOCAL, REMOTE};
use super::maildir_native::seed;

fn first_sync(sep: char) {
    let bed = Bed::new(Engine::Dovecot, sep);
    let folders = seed(&bed, sep);
    let out = bed.sync();
    assert_eq!(copied(&out), (16, 6), "{out}");
    let names: Vec<&str> = folders.iter().map(String::as_str).collect();
    bed.assert_same(&names);
    let out = bed.sync();
    assert_eq!(copied(&out), (0, 0), "{out}");
    assert!(out.contains("(0 opened)"), "{out}");
    bed.assert_same(&names);
    assert_eq!(bed.messages(LOCAL, "INBOX").len(), 12);
}

#[test]
fn maildir_dovecot_first_sync_nested() {
    first_sync('/');
}

#[test]
fn maildir_dovecot_first_sync_maildirplusplus() {
    first_sync('.');
}

/// What dovecot shows of a Maildir twinbox wrote natively is what the remote has,
/// keywords included; switching the same Maildir to the dovecot engine then finds
/// everything in place (re-matched, nothing copied), and back.
#[test]
fn maildir_native_written_maildir_read_by_dovecot() {
    let bed = Bed::new(Engine::Native, '/');
    let folders = seed(&bed, '/');
    let names: Vec<&str> = folders.iter().map(String::as_str).collect();
    bed.dv
        .add_flags(REMOTE, "INBOX", 3, &["$Important", "Project-X", "\\Draft"])
        .expect("flags");
    bed.sync();
    bed.assert_same(&names);
    let kw = std::fs::read_to_string(bed.maildir.join("dovecot-keywords")).expect("keywords");
    assert!(kw.contains("Project-X") && kw.contains("$Label1"), "{kw}");
    // Switch engines on the same Maildir.
    let conf = std::fs::read_to_string(&bed.conf).expect("conf");
    std::fs::write(
        &bed.conf,
        conf.replace("maildir_engine = native", "maildir_engine = dovecot"),
    )
    .expect("conf");
    let out = bed.sync();
    assert_eq!(copied(&out), (0, 0), "{out}");
    bed.assert_same(&names);
    // A change through dovecot, then back to the native engine.
    bed.dv
        .add_flags(LOCAL, "INBOX", 1, &["\\Flagged"])
        .expect("flags");
    bed.fix_owner();
    std::fs::write(&bed.conf, conf).expect("conf");
    let out = bed.sync();
    assert_eq!(copied(&out), (0, 0), "{out}");
    bed.assert_same(&names);
}

/// A Maildir folder has 26 keyword letters. Past them, keywords live in twinbox's map
/// only: the remote keeps all of them and nothing flip-flops between runs.
#[test]
fn maildir_native_more_than_26_keywords() {
    let bed = Bed::new(Engine::Native, '/');
    bed.dv
        .seed_mailbox(REMOTE, "INBOX", &sample_messages(7, 2), &[])
        .expect("seed");
    let many: Vec<String> = (0..30).map(|i| format!("kw{i:02}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    bed.dv.add_flags(REMOTE, "INBOX", 1, &refs).expect("flags");
    let out = bed.sync();
    assert_eq!(copied(&out), (2, 0), "{out}");
    let local = bed.messages(LOCAL, "INBOX");
    let most = local.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
    assert_eq!(most, 26, "dovecot sees the 26 lettered keywords: {local:?}");
    // A flag change elsewhere on the message; the 4 unlettered keywords stay.
    bed.dv
        .add_flags(REMOTE, "INBOX", 1, &["\\Seen"])
        .expect("flags");
    let out = bed.sync();
    assert!(out.contains("1 flag changes"), "{out}");
    let remote = bed.messages(REMOTE, "INBOX");
    assert!(remote.iter().any(|(_, f)| f.len() == 31), "{remote:?}");
    let out = bed.sync();
    assert!(out.contains("0 flag changes"), "{out}");
    assert_eq!(copied(&out), (0, 0), "{out}");
}

/// Without dovecot's imap binary, or (as root) on a root-owned Maildir, the run stops
/// with a clear message and exit status 2.
#[test]
fn maildir_dovecot_engine_errors_are_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |extra: &str, root: &std::path::Path| {
        let conf = dir.path().join("c.conf");
        std::fs::write(
            &conf,
            format!(
                "[general]\naccounts = T\nmetadata = {}\n\n[Account T]\nlocalrepository = L\nremoterepository = R\n\n\
                 [Repository L]\ntype = Maildir\nlocalfolders = {}\nmaildir_engine = dovecot\n{extra}\n\
                 [Repository R]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = 9\nssl = no\nstarttls = no\nremoteuser = x\nremotepass = y\n",
                dir.path().join("meta").display(),
                root.display()
            ),
        )
        .expect("conf");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_twinbox"))
            .arg("-c")
            .arg(&conf)
            .output()
            .expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = write(
        "dovecot_imap_path = /nonexistent/imap\n",
        &dir.path().join("m1"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("/nonexistent/imap") && err.contains("dovecot-imapd"),
        "{err}"
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let (code, err) = write("", &dir.path().join("m2"));
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("refuses to access mail as root"), "{err}");
    }
}
