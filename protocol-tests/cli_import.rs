//! `twinbox import-config` through the real binary: the offlineimap manual's use cases, a
//! typical rc, and an imported configuration that then syncs a real dovecot.

use std::process::Output;

use twinbox::testbed::sample_messages;

use crate::cli_util::{expect_code, text, twinbox_cmd, Bed};

fn import(home: &std::path::Path, rc: &str, extra: &[&str]) -> Output {
    let path = home.join("offlineimaprc");
    std::fs::write(&path, rc).expect("write rc");
    twinbox_cmd(home)
        .arg("import-config")
        .arg(&path)
        .args(extra)
        .output()
        .expect("run twinbox")
}

const GMAIL_TO_IMAP: &str = "[general]
accounts = G

[Account G]
localrepository = TheOtherImap
remoterepository = Gmailserver-foo

[Repository Gmailserver-foo]
#This is the remote repository
type = Gmail
remotepass = XXX
remoteuser = XXX
# The below will put all GMAIL folders as sub-folders of the 'local' INBOX,
# assuming that your path separator on 'local' is a dot.
nametrans = lambda x: 'INBOX.' + x
folderfilter = lambda folder: folder.startswith('[Gmail]/All Mail')

[Repository TheOtherImap]
#This is the 'local' repository
type = IMAP
remotehost = imap.example.org
remotepass = XXX
remoteuser = XXX
";

const TWO_IMAP: &str = "[general]
accounts = acc1, acc2
maxsyncaccounts = 2
ui = ttyui
pythonfile=~/bin/offlineimap-helpers.py
socktimeout = 90

[Account acc1]
localrepository = acc1local
remoterepository = acc1remote
autorefresh = 2

[Account acc2]
localrepository = acc2local
remoterepository = acc2remote
autorefresh = 4

[Repository acc1local]
type = Maildir
localfolders = ~/Mail/acc1

[Repository acc2local]
type = Maildir
localfolders = ~/Mail/acc2

[Repository acc1remote]
type = IMAP
remotehost = imap.acc1.com
remoteusereval = get_username(\"imap.acc1.net\")
remotepasseval = get_password(\"imap.acc1.net\")
nametrans = oimaptransfolder_acc1
ssl = yes
maxconnections = 2
# Folders to get:
folderfilter = lambda foldername: foldername in [
             'INBOX', 'Drafts', 'Sent', 'archiv']

[Repository acc2remote]
type = IMAP
remotehost = imap.acc2.net
remoteusereval = get_username(\"imap.acc2.net\")
remotepasseval = get_password(\"imap.acc2.net\")
nametrans = oimaptransfolder_acc2
ssl = yes
maxconnections = 2
";

const GMX: &str = "[general]
accounts = gmx
[Account gmx]
localrepository = local
remoterepository = remote
[Repository local]
type = Maildir
localfolders = ~/Mail/gmx
[Repository remote]
type = IMAP
remotehost = imap.gmx.net
remoteuser = me
nametrans: lambda folder: folder if folder in ['INBOX', 'Drafts', 'Sent'] \\
                          else re.sub(r'^', r'GMX.', folder)
";

#[test]
fn manual_use_cases_translate() {
    let home = tempfile::tempdir().expect("tempdir");
    let o = import(home.path(), GMAIL_TO_IMAP, &[]);
    expect_code(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("nametrans = s/^/INBOX./\n"), "{}", text(&o));
    assert!(
        out.contains("folderfilter = 're:\\[Gmail\\]/All Mail.*'"),
        "{}",
        text(&o)
    );

    let o = import(home.path(), GMX, &[]);
    // The guards and the prefix translate, and twinbox derives the reverse rules.
    expect_code(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("nametrans = s/^INBOX$/INBOX/q\n    s/^Drafts$/Drafts/q\n    s/^Sent$/Sent/q\n    s/^/GMX./g\n"),
        "{}",
        text(&o)
    );

    let o = import(home.path(), TWO_IMAP, &[]);
    expect_code(&o, 1);
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "[general] pythonfile",
        "[Repository acc1remote] remoteusereval",
        "[Repository acc1remote] remotepasseval",
        "[Repository acc2remote] nametrans",
        "oimaptransfolder_acc2",
    ] {
        assert!(err.contains(want), "missing {want:?}\n{}", text(&o));
    }
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("folderfilter = INBOX, Drafts, Sent, archiv\n"),
        "{}",
        text(&o)
    );
    assert!(out.contains("maxsyncaccounts = 2\n") && out.contains("autorefresh = 4\n"));
}

#[test]
fn imported_config_syncs() {
    let bed = Bed::new();
    for f in ["INBOX", "Lists/rust", "Trash"] {
        bed.dv
            .seed_mailbox("alice", f, &sample_messages(21, 2), &[])
            .expect("seed");
    }
    let rc = format!(
        "[general]\naccounts = Mine\n\n[Account Mine]\nlocalrepository = Here\nremoterepository = There\nstatus_backend = sqlite\n\n[Repository There]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {port}\nssl = no\nstarttls = no\nremoteuser = alice\nremotepassfile = {home}/pass\nfolderfilter = lambda f: f not in ['Trash']\nnametrans = lambda f: re.sub('^Lists/', 'L/', f)\n\n[Repository Here]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {port}\nssl = no\nstarttls = no\nremoteuser = bob\nremotepass = secret\n",
        port = bed.dv.imap_port(),
        home = bed.home.path().display()
    );
    std::fs::write(bed.home.path().join("pass"), "secret\n").expect("pass");
    let out = bed.home.path().join("twinbox.conf");
    let o = import(bed.home.path(), &rc, &["-o", &out.display().to_string()]);
    expect_code(&o, 0);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out)
        .expect("output")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let o = bed.run(&[]);
    expect_code(&o, 0);
    let boxes = bed.dv.mailboxes("bob").expect("mailboxes");
    assert!(
        boxes.iter().any(|m| m == "L/rust"),
        "{boxes:?}\n{}",
        text(&o)
    );
    assert!(!boxes.iter().any(|m| m == "Trash"), "{boxes:?}");
    assert_eq!(
        bed.snapshot("bob", "L/rust"),
        bed.snapshot("alice", "Lists/rust")
    );
}

#[test]
fn a_typical_gmail_and_work_rc_translates_except_python_and_sha1() {
    let home = tempfile::tempdir().expect("tempdir");
    let rc = include_str!("data/gmail-work.offlineimaprc");
    let o = import(home.path(), rc, &[]);
    expect_code(&o, 1);
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("not translated"))
        .collect();
    assert_eq!(lines.len(), 3, "{}", text(&o));
    for want in ["remotepasseval", "realdelete", "cert_fingerprint"] {
        assert!(err.contains(want), "{want}\n{}", text(&o));
    }
    assert!(
        !err.contains("needs editing"),
        "the result validates\n{}",
        text(&o)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "nametrans = s|^drafts$|[Gmail]/Drafts|q\n    s|^sent$|[Gmail]/Sent Mail|q\n",
        "folderfilter = '![Gmail]/All Mail', '![Gmail]/Spam', '![Gmail]/Trash'\n",
        "auth_mechanisms = PLAIN, LOGIN\n",
        "folderfilter = re:INBOX.*\n",
        "nametrans = s/^INBOX\\.//g\n",
        "type = Maildir\n",
    ] {
        assert!(out.contains(want), "missing {want:?}\n{}", text(&o));
    }
}
