//! Folder names that mean the same on every server (issue 12): a dovecot with a prefixed
//! inbox namespace (`INBOX.`, `.`), Cyrus IMAP 3.6 (`altnamespace: no`, `.`) and
//! Courier-IMAP 5 over a PREAUTH tunnel (bare IMAP4rev1, `INBOX.`, `.`), each synced with a
//! plain dovecot (`/`, no prefix) in both directions, through the real binary. Messages are
//! compared by content hash and flags; folder names are checked as each server spells them.

use std::sync::Arc;

use twinbox::imap::{ConnectOptions, Endpoint, Password, Security};
use twinbox::testbed::{sample_messages, Courier, Cyrus, CyrusOptions, DovecotOptions};

use crate::namespaces_side::NsSide;
use crate::support::sync::{
    compare, msg, render, sha, start_dovecot, ImapSide, MailSide, Snapshot, SyncBed,
};

/// Drops empty mailboxes that are parents of others: hierarchy nodes some servers make
/// real mailboxes (Cyrus creates `INBOX.Lists` with `INBOX.Lists.rust`), others not.
fn without_empty_parents(s: &Snapshot) -> Snapshot {
    s.iter()
        .filter(|(name, msgs)| {
            let prefix = format!("{name}/");
            !(msgs.is_empty() && s.keys().any(|k| k.starts_with(&prefix)))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn assert_same<L: MailSide>(bed: &SyncBed<L>) -> Snapshot {
    let (l, r) = bed.snapshots();
    let (l, r) = (without_empty_parents(&l), without_empty_parents(&r));
    if let Err(e) = compare(&l, &r) {
        panic!(
            "sides differ: {e}\nlocal ({}): {}\nremote ({}): {}",
            bed.local.describe(),
            render(&l),
            bed.remote.describe(),
            render(&r)
        );
    }
    r
}

/// Same content on both sides, and a second run changes nothing (a server without
/// CONDSTORE is opened again on every full run, so only the changes are counted).
fn assert_converged<L: MailSide>(bed: &SyncBed<L>) -> Snapshot {
    let before = assert_same(bed);
    let again = bed.sync();
    assert_eq!(
        again.summary().changes(),
        0,
        "second run changed something:\n{again}"
    );
    let after = assert_same(bed);
    assert_eq!(before, after, "the sides changed on a no-op run");
    after
}

/// The whole scenario. `local` is the server under test; `spelled` lists its full
/// mailbox names; `prefix`/`sep` are how it must spell them.
fn scenario(bed: &SyncBed<NsSide>, prefix: &str, sep: char) {
    let local = &bed.local;
    let remote = &bed.remote;
    let a = sample_messages(1201, 6);
    let b = sample_messages(1202, 6);
    // 1. Both sides populated: nested folders, non-ASCII names, INBOX.
    local.seed("INBOX", &a[..2], &["\\Seen"]).expect("seed");
    local.seed("Lists/rust", &a[2..4], &[]).expect("seed");
    local
        .seed("Café/Ünïcode", &a[4..5], &["\\Flagged"])
        .expect("seed");
    remote.seed("INBOX", &b[..1], &[]).expect("seed");
    remote
        .seed("Archive/2024", &b[1..3], &["\\Answered"])
        .expect("seed");
    remote.seed("Привет", &b[3..4], &[]).expect("seed");
    let r = bed.sync();
    assert_eq!((r.summary().to_local, r.summary().to_remote), (4, 5), "{r}");
    let snap = assert_converged(bed);
    assert_eq!(
        snap["INBOX"],
        {
            let mut v = vec![
                msg(&a[0], &["\\Seen"]),
                msg(&a[1], &["\\Seen"]),
                msg(&b[0], &[]),
            ];
            v.sort();
            v
        },
        "INBOX"
    );
    assert_eq!(snap["Café/Ünïcode"], vec![msg(&a[4], &["\\Flagged"])]);
    // Spelled as each server wants: under the prefix there, without it on dovecot.
    let names = local.server_names().expect("list");
    for want in ["Lists.rust", "Archive.2024", "Café.Ünïcode", "Привет"] {
        let full = format!("{prefix}{}", want.replace('.', &sep.to_string()));
        assert!(
            names.contains(&full),
            "{full:?} missing on {}: {names:?}",
            local.label
        );
    }
    assert!(names.contains(&"INBOX".to_string()), "{names:?}");
    let plain = remote.mailboxes().expect("list");
    assert!(
        !plain.iter().any(|n| n.starts_with("INBOX/")),
        "the prefix leaked into the plain dovecot: {plain:?}"
    );
    for want in ["Lists/rust", "Café/Ünïcode", "Archive/2024", "Привет"] {
        assert!(
            plain.contains(&want.to_string()),
            "{want:?} missing: {plain:?}"
        );
    }

    // 2. Changes on both sides: flags, new mail, a new folder on each side.
    local
        .add_flags("Archive/2024", &sha(&b[1]), &["\\Seen"])
        .expect("flag");
    remote
        .remove_flags("INBOX", &sha(&a[0]), &["\\Seen"])
        .expect("flag");
    local.seed("New/Local", &a[5..6], &[]).expect("seed");
    remote
        .seed("New/Remote", &b[4..5], &["\\Draft"])
        .expect("seed");
    remote.seed("Lists/rust", &b[5..6], &[]).expect("seed");
    local.expunge("Lists/rust", &sha(&a[2])).expect("expunge");
    remote.expunge("Привет", &sha(&b[3])).expect("expunge");
    let r = bed.sync();
    assert_eq!((r.summary().to_local, r.summary().to_remote), (2, 1), "{r}");
    assert_eq!(r.summary().expunged, 2, "{r}");
    let snap = assert_converged(bed);
    assert_eq!(snap["New/Local"], vec![msg(&a[5], &[])]);
    assert_eq!(snap["New/Remote"], vec![msg(&b[4], &["\\Draft"])]);
    assert_eq!(snap["Lists/rust"].len(), 2);
    assert!(snap["Привет"].is_empty());
    let names = local.server_names().expect("list");
    assert!(
        names.contains(&format!("{prefix}New{sep}Remote")),
        "created under the prefix: {names:?}"
    );

    // 3. Rename and delete with twinbox's own commands (names as twinbox sees them).
    let out = bed
        .command()
        .args(["rename", "Archive/2024", "Archive/Old"])
        .output()
        .expect("rename");
    assert!(
        out.status.success(),
        "rename: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bed
        .command()
        .args(["delete", "--yes", "New/Local"])
        .output()
        .expect("delete");
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap = assert_converged(bed);
    assert!(snap.contains_key("Archive/Old") && !snap.contains_key("Archive/2024"));
    assert!(!snap.contains_key("New/Local"), "{}", render(&snap));
    let names = local.server_names().expect("list");
    assert!(
        names.contains(&format!("{prefix}Archive{sep}Old")),
        "renamed there too: {names:?}"
    );
    assert!(
        !names.contains(&format!("{prefix}New{sep}Local")),
        "{names:?}"
    );
}

pub(crate) fn plain_remote() -> ImapSide {
    ImapSide::new(start_dovecot(DovecotOptions::default().tls(false)), "alice")
}

pub(crate) fn login(host: &str, port: u16, user: &str, pass: &str) -> (ConnectOptions, String) {
    let mut o = ConnectOptions::tcp(host, port, Security::Plain);
    o.user = Some(user.into());
    o.password = Some(Password::new(pass));
    let repo = format!(
        "type = IMAP\nremotehost = {host}\nremoteport = {port}\nssl = no\nstarttls = no\nremoteuser = {user}\nremotepass = {pass}\n"
    );
    (o, repo)
}

#[test]
fn namespaces_dovecot_prefixed_inbox_namespace() {
    let dv = start_dovecot(
        DovecotOptions::default()
            .tls(false)
            .separator('.')
            .prefix("INBOX."),
    );
    let (opts, repo) = login(dv.host(), dv.imap_port(), "bob", "secret");
    let side = NsSide {
        opts,
        prefix: "INBOX.".into(),
        sep: '.',
        repo,
        label: format!("dovecot INBOX. on port {}", dv.imap_port()),
    };
    let bed = SyncBed::new(plain_remote(), side);
    scenario(&bed, "INBOX.", '.');

    // An offlineimap-era nametrans that adds the prefix itself is refused with a hint.
    let text = std::fs::read_to_string(bed.config_path()).expect("config");
    let text = text.replace(
        "[Repository Remote]\n",
        "[Repository Remote]\nnametrans = s/^INBOX$/INBOX/q, s/^/INBOX./\n",
    );
    std::fs::write(bed.config_path(), text).expect("config");
    let r = bed.run();
    assert!(!r.ok(), "{r}");
    assert!(
        r.stderr
            .contains("namespace prefix \"INBOX.\" is already trimmed"),
        "{r}"
    );
    drop(dv);
}

#[test]
fn namespaces_cyrus_without_altnamespace() {
    let cy = Arc::new(Cyrus::start(CyrusOptions::default()).expect("Cyrus should start"));
    let (opts, repo) = login(cy.host(), cy.port(), "alice", "any");
    let side = NsSide {
        opts,
        prefix: cy.prefix(),
        sep: cy.separator(),
        repo,
        label: format!("cyrus on port {}", cy.port()),
    };
    let bed = SyncBed::new(plain_remote(), side);
    scenario(&bed, "INBOX.", '.');

    // A name Cyrus cannot hold (its separator inside a level): that folder fails with
    // both spellings named, the others go on.
    let m = sample_messages(1203, 2);
    bed.remote.seed("v1.2", &m[..1], &[]).expect("seed");
    // ... and a character it rejects (dovecot takes it).
    bed.remote.seed("Bang!", &m[..1], &[]).expect("seed");
    bed.remote.seed("Lists/rust", &m[1..], &[]).expect("seed");
    let r = bed.run();
    assert!(!r.ok(), "the uncreatable folder must be reported:\n{r}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("\"v1.2\" on the remote side") && all.contains("\"INBOX.v1.2\""),
        "the message names the folder on both sides:\n{r}"
    );
    assert!(
        all.contains("\"Bang!\" (on the server \"INBOX.Bang!\")")
            && all.contains("Invalid mailbox name"),
        "the refusal names both spellings and the server's reason:\n{r}"
    );
    let snap = bed.local.snapshot().expect("snapshot");
    assert_eq!(
        snap["Lists/rust"].len(),
        3,
        "the run went on: {}",
        render(&snap)
    );
}

/// Cyrus with `altnamespace: yes` and `unixhierarchysep: yes`: no prefix, `/`, other users
/// and shared folders under their own prefixes (left out).
#[test]
fn namespaces_cyrus_altnamespace_unix_separator() {
    let cy = Cyrus::start(CyrusOptions {
        altnamespace: true,
        unixhierarchysep: true,
    })
    .expect("Cyrus should start");
    let (opts, repo) = login(cy.host(), cy.port(), "alice", "any");
    let side = NsSide {
        opts,
        prefix: cy.prefix(),
        sep: cy.separator(),
        repo,
        label: format!("cyrus (altnamespace) on port {}", cy.port()),
    };
    let bed = SyncBed::new(plain_remote(), side);
    scenario(&bed, "", '/');
}

#[test]
fn namespaces_courier_preauth_bare_imap4rev1() {
    let co = Courier::start().expect("Courier should be available");
    let mut opts = ConnectOptions::new(Endpoint::Tunnel {
        command: co.tunnel_command(),
        preauth: true,
    });
    opts.label = "courier".into();
    let repo = format!(
        "type = IMAP\npreauthtunnel = {}\n",
        co.tunnel_command().replace('%', "%%")
    );
    let side = NsSide {
        opts,
        prefix: "INBOX.".into(),
        sep: '.',
        repo,
        label: format!("courier in {}", co.home().display()),
    };
    let bed = SyncBed::new(plain_remote(), side);
    scenario(&bed, "INBOX.", '.');
    // On disk as Maildir++ under the prefix's folders.
    assert!(co.home().join("Maildir/.Lists.rust/cur").is_dir());
    assert!(co.home().join("Maildir/.New.Remote").is_dir());
}

/// `reference = Mail` on a plain dovecot: only folders under `Mail/` are synced, with the
/// prefix trimmed (and put back on creation); INBOX is synced too; a `nametrans` and
/// `folderfilter` see the trimmed names.
#[test]
fn namespaces_reference_trims_its_prefix() {
    let dv = start_dovecot(DovecotOptions::default().tls(false));
    let (opts, repo) = login(dv.host(), dv.imap_port(), "bob", "secret");
    let under = NsSide {
        opts: opts.clone(),
        prefix: "Mail/".into(),
        sep: '/',
        repo: format!("{repo}reference = Mail\n"),
        label: "dovecot bob under Mail/".into(),
    };
    let whole = NsSide {
        opts,
        prefix: String::new(),
        sep: '/',
        repo: String::new(),
        label: "dovecot bob".into(),
    };
    let bed = SyncBed::new(plain_remote(), under);
    let m = sample_messages(1204, 5);
    bed.local.seed("INBOX", &m[..1], &[]).expect("seed");
    bed.local.seed("Lists/rust", &m[1..2], &[]).expect("seed");
    whole.seed("Outside", &m[2..3], &[]).expect("seed");
    bed.remote.seed("Archive", &m[3..4], &[]).expect("seed");
    let r = bed.sync();
    assert_eq!((r.summary().to_local, r.summary().to_remote), (1, 2), "{r}");
    let snap = assert_converged(&bed);
    assert_eq!(
        snap.keys().cloned().collect::<Vec<_>>(),
        ["Archive", "INBOX", "Lists/rust"],
        "{}",
        render(&snap)
    );
    let names = whole.server_names().expect("list");
    assert!(names.contains(&"Mail/Archive".to_string()), "{names:?}");
    assert!(names.contains(&"Outside".to_string()), "{names:?}");
    drop(bed);

    // A nametrans sees the trimmed names: `^Lists/` matches `Mail/Lists/rust`.
    let dv = start_dovecot(DovecotOptions::default().tls(false));
    let (opts, repo) = login(dv.host(), dv.imap_port(), "bob", "secret");
    let under = NsSide {
        opts,
        prefix: "Mail/".into(),
        sep: '/',
        repo: format!("{repo}reference = Mail\nnametrans = s/^Lists\\//L\\//\n"),
        label: "dovecot bob under Mail/ with nametrans".into(),
    };
    let bed = SyncBed::new(plain_remote(), under);
    bed.local.seed("Lists/rust", &m[4..5], &[]).expect("seed");
    let r = bed.sync();
    assert_eq!(r.summary().to_remote, 1, "{r}");
    let names = bed.remote.mailboxes().expect("list");
    assert!(
        names.contains(&"L/rust".to_string()) && !names.iter().any(|n| n.contains("Lists")),
        "{names:?}\n{r}"
    );
    let r = bed.sync();
    assert_eq!(r.summary().changes(), 0, "{r}");
}

/// A dovecot with a public namespace (`Public/`): its folders stay out of the sync until
/// the repository says `namespaces = personal, shared`, then arrive under their full name,
/// beside (never inside) the personal tree.
#[test]
fn namespaces_shared_folders_only_when_chosen() {
    let public = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        public.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let mut o = DovecotOptions::default().tls(false);
    o.extra_config = format!(
        "namespace public {{\n  type = public\n  separator = /\n  prefix = Public/\n  \
         location = maildir:{}:LAYOUT=fs\n  list = yes\n  subscriptions = no\n}}\n",
        public.path().display()
    );
    let dv = start_dovecot(o);
    let (opts, repo) = login(dv.host(), dv.imap_port(), "bob", "secret");
    let local = NsSide {
        opts,
        prefix: String::new(),
        sep: '/',
        repo,
        label: "dovecot bob with Public/".into(),
    };
    let m = sample_messages(1205, 3);
    local
        .seed("Public/news", &m[..1], &[])
        .expect("seed public");
    local.seed("Lists/x", &m[1..2], &[]).expect("seed");
    let bed = SyncBed::new(plain_remote(), local);
    bed.remote.seed("Archive", &m[2..3], &[]).expect("seed");
    let r = bed.sync();
    assert_eq!((r.summary().to_local, r.summary().to_remote), (1, 1), "{r}");
    let plain = bed.remote.mailboxes().expect("list");
    assert!(plain.contains(&"Lists/x".to_string()), "{plain:?}");
    assert!(!plain.iter().any(|n| n.starts_with("Public")), "{plain:?}");
    let names = bed.local.server_names().expect("list");
    assert!(names.contains(&"Archive".to_string()), "{names:?}");

    let text = std::fs::read_to_string(bed.config_path()).expect("config");
    let text = text.replace(
        "[Repository Local]\n",
        "[Repository Local]\nnamespaces = personal, shared\n",
    );
    std::fs::write(bed.config_path(), text).expect("config");
    let r = bed.sync();
    assert_eq!((r.summary().to_local, r.summary().to_remote), (0, 1), "{r}");
    let snap = assert_converged(&bed);
    assert_eq!(snap["Public/news"], vec![msg(&m[0], &[])]);
    // The shared folder was not put into the personal tree on the local server.
    let names = bed.local.server_names().expect("list");
    assert_eq!(
        names
            .iter()
            .filter(|n| n.contains("news"))
            .collect::<Vec<_>>(),
        ["Public/news"],
        "{names:?}"
    );
}

/// A server that refuses NAMESPACE: the delimiter comes from `LIST "" ""` and the personal
/// namespace has no prefix. Also: a NAMESPACE reply with all three classes is read.
#[tokio::test]
async fn namespaces_fallback_to_list_delimiter_and_full_reply() {
    use crate::fake::{FakeServer, Step};
    let login = || {
        vec![
            Step::line("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake"),
            Step::expect_cmd("AUTHENTICATE"),
            Step::tagged("OK [CAPABILITY IMAP4rev1] logged in"),
        ]
    };
    let mut script = login();
    script.extend([
        Step::expect_cmd("NAMESPACE"),
        Step::tagged("BAD unknown command"),
        Step::expect_cmd("LIST"),
        Step::line("* LIST (\\Noselect) \".\" \"\""),
        Step::tagged("OK listed"),
    ]);
    let (port, server) = FakeServer::start(script);
    let o =
        crate::imap_support::with_login(ConnectOptions::tcp("127.0.0.1", port, Security::Plain));
    let mut s = twinbox::imap::Session::connect(&o).await.expect("connect");
    let ns = match s.namespaces().await {
        Ok(ns) => ns,
        Err(e) => panic!("namespaces: {e}: {:?}", server.finish()),
    };
    assert!(!ns.advertised);
    assert_eq!(ns.personal.len(), 1);
    assert_eq!(ns.personal[0].prefix, "");
    assert_eq!(ns.personal[0].delimiter, Some('.'));
    drop(s);
    let report = server.finish();
    report.assert_ok();
    let sent: Vec<&str> = report.sessions[0]
        .commands
        .iter()
        .map(|c| c.text.as_str())
        .collect();
    assert!(
        sent.iter().any(|c| c.ends_with(" LIST \"\" \"\"")),
        "{sent:?}"
    );

    let mut script = login();
    script.extend([
        Step::expect_cmd("NAMESPACE"),
        Step::line(
            "* NAMESPACE ((\"INBOX.\" \".\")) ((\"user.\" \".\")) ((\"\" \".\")(\"#news.\" \".\"))",
        ),
        Step::tagged("OK done"),
    ]);
    let (port, server) = FakeServer::start(script);
    let o =
        crate::imap_support::with_login(ConnectOptions::tcp("127.0.0.1", port, Security::Plain));
    let mut s = twinbox::imap::Session::connect(&o).await.expect("connect");
    let ns = s.namespaces().await.expect("namespaces");
    assert!(ns.advertised);
    assert_eq!(ns.personal[0].prefix, "INBOX.");
    assert_eq!(ns.other[0].prefix, "user.");
    let shared: Vec<&str> = ns.shared.iter().map(|e| e.prefix.as_str()).collect();
    assert_eq!(shared, ["", "#news."]);
    drop(s);
    server.finish().assert_ok();
}
