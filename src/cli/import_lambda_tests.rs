//! Tests of the lambda translation.

use super::*;

#[test]
fn filters() {
    let t = |s: &str| folderfilter(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(t("lambda f: f not in ['Trash', 'Spam']"), "!Trash, !Spam");
    assert_eq!(
        t("lambda folder: folder in [\n 'INBOX', 'Drafts', 'Sent', 'archiv']"),
        "INBOX, Drafts, Sent, archiv"
    );
    assert_eq!(
        t("lambda folder: folder.startswith('MyLabel')"),
        "re:MyLabel.*"
    );
    assert_eq!(
        t("lambda folder: folder.startswith('[Gmail]/All Mail')"),
        "'re:\\[Gmail\\]/All Mail.*'"
    );
    assert_eq!(
        t("lambda f: f != 'Junk' and not f.startswith('Old')"),
        "!Junk, !re:Old.*"
    );
    assert_eq!(
        t("lambda f: f.startswith('Lists') and f not in ['Lists/old']"),
        "re:Lists.*, !Lists/old"
    );
    assert_eq!(
        t("lambda f: f in ['INBOX'] or re.search('^work', f)"),
        "INBOX, re:.*(?:^work).*"
    );
    assert_eq!(
        t("lambda accountname, foldername: foldername not in ['Trash']"),
        "!Trash"
    );
    assert_eq!(t("lambda f: True"), "");
    assert!(folderfilter("lambda f: len(f) < 10").is_err());
    assert!(folderfilter("my_filter").is_err());
    assert!(folderfilter("lambda a, f: a == 'x' and f == 'y'").is_err());
}

#[test]
fn nametrans_forms() {
    let t = |s: &str| nametrans(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(
        t("lambda f: re.sub('^INBOX\\.', '', f)"),
        vec!["s/^INBOX\\.//g"]
    );
    assert_eq!(t("lambda x: 'INBOX.' + x"), vec!["s/^/INBOX./"]);
    assert_eq!(t("lambda f: f.replace('.', '/')"), vec!["s|\\.|/|g"]);
    assert_eq!(
        t("lambda folder: folder if folder in ['INBOX', 'Drafts', 'Sent'] \\\n else re.sub(r'^', r'GMX.', folder)"),
        vec!["s/^INBOX$/INBOX/q", "s/^Drafts$/Drafts/q", "s/^Sent$/Sent/q", "s/^/GMX./g"]
    );
    assert_eq!(
        t("lambda f: re.sub(r'^\\[Gmail\\]/(.*)$', r'gmail.\\1', re.sub('^INBOX$', 'inbox', f))"),
        vec!["s/^INBOX$/inbox/g", "s|^\\[Gmail\\]/(.*)$|gmail.${1}|g"]
    );
    assert_eq!(
        t("lambda f: 'acc1' if f == 'INBOX' else 'acc1.' + f"),
        vec!["s/^INBOX$/acc1/q", "s/^/acc1./"]
    );
    assert_eq!(
        t("lambda f: re.sub('^x', 'y', f) if f not in ['INBOX'] else f"),
        vec!["s/^INBOX$/INBOX/q", "s/^x/y/g"]
    );
    assert!(nametrans("oimaptransfolder_acc1").is_err());
    assert!(nametrans("lambda f: f.lower()").is_err());
}

#[test]
fn passeval_commands() {
    assert_eq!(
        passeval_command("os.popen('pass show mail/x').read().strip()").as_deref(),
        Some("pass show mail/x")
    );
    assert_eq!(
        passeval_command(
            "subprocess.check_output(['pass', 'show', 'my mail']).strip().decode('utf-8')"
        )
        .as_deref(),
        Some("pass show 'my mail'")
    );
    assert_eq!(
        passeval_command("subprocess.check_output('gpg -dq ~/.p.gpg', shell=True).strip()")
            .as_deref(),
        Some("gpg -dq ~/.p.gpg")
    );
    assert_eq!(passeval_command("get_password('imap.a.net')"), None);
    assert_eq!(passeval_command("keyring.get_password('x', 'y')"), None);
}
