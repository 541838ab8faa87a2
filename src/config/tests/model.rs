//! The typed model: defaults, interpolation, and each repository type.

use std::path::PathBuf;
use std::time::Duration;

use crate::imap::transport::TlsVersion;

use super::*;

/// The brief's minimal IMAP↔IMAP configuration.
const TWO_IMAP: &str = "[general]
accounts = Test
metadata = ~/.local/share/twinbox

[Account Test]
localrepository = TestLocal
remoterepository = TestRemote

[Repository TestRemote]
type = IMAP
remotehost = 127.0.0.1
remoteport = 10143
ssl = no
starttls = no
remoteuser = alice
remotepass = secret

[Repository TestLocal]
type = IMAP
remotehost = 127.0.0.1
remoteport = 10143
ssl = no
starttls = no
remoteuser = bob
remotepass = secret
";

#[test]
fn minimal_imap_to_imap_config() {
    let c = parse(TWO_IMAP).unwrap();
    assert_eq!(c.general.accounts, ["Test"]);
    assert_eq!(
        c.general.metadata,
        PathBuf::from("/home/t/.local/share/twinbox")
    );
    assert_eq!(c.accounts.len(), 1);
    let a = &c.accounts[0];
    assert_eq!(
        (a.local_repository.as_str(), a.remote_repository.as_str()),
        ("TestLocal", "TestRemote")
    );
    assert_eq!(c.repositories.len(), 2);
    for (name, user) in [("TestRemote", "alice"), ("TestLocal", "bob")] {
        let i = imap(&c, name);
        assert_eq!(i.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(i.port, 10143);
        assert_eq!(i.security, Security::Plain);
        assert_eq!(i.user.as_deref(), Some(user));
        assert!(i.tunnel.is_none());
        let pw = i.resolve_password_with(&no_netrc()).unwrap();
        assert_eq!(pw.expose(), "secret");
    }
    assert!(c.mbnames.is_none());
}

fn no_netrc() -> PasswordContext {
    PasswordContext {
        netrc_files: vec![],
        allow_prompt: false,
    }
}

#[test]
fn defaults() {
    let c = parse(BASE).unwrap();
    let g = &c.general;
    assert_eq!(g.maxsyncaccounts, 1);
    assert!(g.fsync);
    assert_eq!(g.ui, [Ui::Tty, Ui::Basic]);
    assert_eq!(g.socktimeout, Some(DEFAULT_SOCKTIMEOUT));
    assert_eq!(g.metadata, PathBuf::from("/home/t/.local/share/twinbox"));
    let a = &c.accounts[0];
    assert_eq!(a.autorefresh, None);
    assert_eq!(a.quick, QuickSync::Never);
    assert_eq!(a.since, None);
    assert!(c.utf8_folder_names(a));
    let r = imap(&c, "Remote");
    assert_eq!((r.security, r.port), (Security::Tls, 993));
    assert_eq!(
        r.auth_mechanisms,
        [AuthMechanism::Plain, AuthMechanism::Login]
    );
    assert_eq!(r.tls.min_version, TlsVersion::Tls12);
    assert_eq!(r.maxconnections, 1);
    assert_eq!(r.maxmessagesize, 256 << 20);
    assert_eq!(r.compression, None);
    assert!(r.expunge && !r.holdconnectionopen && !r.gmail);
    let repo = &c.repositories["Remote"];
    assert!(repo.createfolders && repo.sync_deletes && !repo.readonly);
    let m = maildir(&c, "Local");
    assert_eq!(m.root, PathBuf::from("/home/t/Mail"));
    assert_eq!(m.sep, '/');
    assert_eq!(m.engine, MaildirEngine::Native);
    assert_eq!(m.inbox, InboxLayout::Folder);
    assert!(c.fsync_for(&c.repositories["Local"]));
    let xdg = Config::parse_str(
        BASE,
        "x",
        &Env::with_vars([("HOME", "/h"), ("XDG_DATA_HOME", "/d")]),
    )
    .unwrap();
    assert_eq!(xdg.general.metadata, PathBuf::from("/d/twinbox"));
}

#[test]
fn security_choices() {
    let sec = |extra: &str| {
        let c = parse(&base_with(extra)).unwrap();
        let i = imap(&c, "Remote");
        (i.security, i.port)
    };
    assert_eq!(sec("ssl = no"), (Security::StartTls, 143));
    assert_eq!(sec("starttls = yes"), (Security::StartTls, 143));
    assert_eq!(sec("ssl = no\nstarttls = no"), (Security::Plain, 143));
    assert_eq!(
        sec("ssl = on\nstarttls = off\nremoteport = 1993"),
        (Security::Tls, 1993)
    );
    let c = parse(&base_with(
        "transporttunnel = openssl s_client -quiet -connect imap.example.org:993",
    ))
    .unwrap();
    let i = imap(&c, "Remote");
    assert_eq!(i.security, Security::Plain);
    assert!(matches!(&i.tunnel, Some(Tunnel::Transport(c)) if c.argv()[0] == "openssl"));
}

#[test]
fn interpolation_and_continuations() {
    let text = "[DEFAULT]
mailhost = imap.example.org
root = ~/Mail

[general]
accounts = Test

[Account Test]
localrepository = Local
remoterepository = Remote

[Repository Local]
type = Maildir
localfolders = %(root)s/%(sub)s
sub = work
; a comment inside the section
";
    // `sub` is not a Maildir option: interpolation variables belong in [DEFAULT].
    assert!(err(text).contains("option 'sub': unknown option"));
    let text = text
        .replace("sub = work\n", "")
        .replace("root = ~/Mail", "root = ~/Mail\nsub = work");
    let text = format!(
        "{text}
[Repository Remote]
type = IMAP
remotehost = %(mailhost)s
remoteuser = alice
remotepass = 100%%
folderfilter = INBOX,
    Sent

    # comments and blank lines inside a value
    Drafts
",
    );
    let c = parse(&text).unwrap();
    assert_eq!(
        maildir(&c, "Local").root,
        PathBuf::from("/home/t/Mail/work")
    );
    let r = imap(&c, "Remote");
    assert_eq!(r.host.as_deref(), Some("imap.example.org"));
    assert_eq!(
        r.resolve_password_with(&no_netrc()).unwrap().expose(),
        "100%"
    );
    let f = &c.repositories["Remote"].folderfilter;
    assert!(f.accepts("INBOX") && f.accepts("Sent") && f.accepts("Drafts") && !f.accepts("Trash"));
}

#[test]
fn default_section_gives_option_defaults() {
    let text = format!(
        "[DEFAULT]\nremoteuser = shared\nfsync = no\n\n{}",
        BASE.replace("remoteuser = alice\n", "")
    );
    let c = parse(&text).unwrap();
    assert_eq!(imap(&c, "Remote").user.as_deref(), Some("shared"));
    assert_eq!(maildir(&c, "Local").fsync, Some(false));
    assert!(
        !c.general.fsync,
        "[DEFAULT] applies to [general] too, as in ConfigParser"
    );
}

#[test]
fn byte_order_mark_and_crlf_are_accepted() {
    let text = format!("\u{feff}{}", BASE.replace('\n', "\r\n"));
    let c = parse(&text).unwrap();
    assert_eq!(imap(&c, "Remote").host.as_deref(), Some("imap.example.org"));
}

#[test]
fn comments_are_whole_lines_only() {
    let c = parse(&BASE.replace("remotepass = hunter2", "remotepass = a#b ;c")).unwrap();
    assert_eq!(
        imap(&c, "Remote")
            .resolve_password_with(&no_netrc())
            .unwrap()
            .expose(),
        "a#b ;c"
    );
}

#[test]
fn accounts_order_and_all_accounts() {
    let text = format!(
        "{BASE}
[Account Second]
localrepository = Local2
remoterepository = Remote

[Repository Local2]
type = Maildir
localfolders = ~/Mail2
"
    );
    let c = parse(&text.replace("accounts = Test", "accounts = Second, Test")).unwrap();
    let names: Vec<&str> = c.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["Second", "Test"]);
    let c = parse(&text.replace("accounts = Test\n", "")).unwrap();
    let names: Vec<&str> = c.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["Test", "Second"]);
    assert_eq!(c.general.accounts, ["Test", "Second"]);
    let shared = text.replace("localrepository = Local2", "localrepository = Local");
    assert!(err(&shared).contains("already the local repository of account 'Test'"));
    let same_dir = text.replace("~/Mail2", "~/Mail");
    assert!(err(&same_dir).contains("[Repository Local] already uses this directory"));
}

#[test]
fn account_options() {
    let text = BASE.replace(
        "remoterepository = Remote",
        "remoterepository = Remote
autorefresh = 0.5
quick = 10
presynchook = imapfilter -c x.lua
postsynchook = notmuch new && notify-send done
maxage = 2015-04-01
maxsize = 2M
utf8foldernames = no
status_backend = sqlite",
    );
    let c = parse(&text).unwrap();
    let a = &c.accounts[0];
    assert_eq!(a.autorefresh, Some(Duration::from_secs(30)));
    assert_eq!(a.quick, QuickSync::Between(10));
    assert_eq!(
        a.presynchook.as_ref().unwrap().argv(),
        ["imapfilter", "-c", "x.lua"]
    );
    assert!(a.postsynchook.as_ref().unwrap().uses_shell());
    assert_eq!(
        a.since,
        Some(Since::Date(Date::parse("2015-04-01").unwrap()))
    );
    assert_eq!(a.maxsize, Some(2 << 20));
    assert!(!c.utf8_folder_names(a));
    let days = parse(&BASE.replace(
        "remoterepository = Remote",
        "remoterepository = Remote\nmaxage = 30",
    ))
    .unwrap();
    assert_eq!(days.accounts[0].since, Some(Since::Days(30)));
    let both = BASE.replace(
        "remoterepository = Remote",
        "remoterepository = Remote\nmaxage = 3\nstartdate = 2020-01-01",
    );
    assert!(err(&both).contains("maxage and startdate"));
    let plain = BASE.replace(
        "remoterepository = Remote",
        "remoterepository = Remote\nstatus_backend = plain",
    );
    assert!(err(&plain).contains("not supported in twinbox: status backends"));
}

#[test]
fn gmail_tunnels_and_ssh() {
    let gmail = BASE.replace(
        "type = IMAP\nremotehost = imap.example.org\n",
        "type = Gmail\n",
    );
    let c = parse(&gmail).unwrap();
    let g = imap(&c, "Remote");
    assert!(g.gmail);
    assert_eq!(
        (g.host.as_deref(), g.port, g.security),
        (Some(GMAIL_HOST), 993, Security::Tls)
    );
    assert!(
        err(&gmail.replace("remoteuser = alice\n", "")).contains("option 'remoteuser': missing")
    );

    let preauth = BASE
        .replace(
            "remotehost = imap.example.org\n",
            "preauthtunnel = ssh -q host '/usr/bin/imapd ./Maildir'\n",
        )
        .replace("remotepass = hunter2\n", "");
    let c = parse(&preauth).unwrap();
    let p = imap(&c, "Remote");
    assert!(
        matches!(&p.tunnel, Some(Tunnel::Preauth(c)) if c.argv() == ["ssh", "-q", "host", "/usr/bin/imapd ./Maildir"])
    );
    assert!(matches!(p.password, PasswordSource::NotNeeded));
    let e = err(&format!("{preauth}remotepass = x\n"));
    assert!(
        e.contains("option 'remotepass'") && e.contains("already logged in"),
        "{e}"
    );

    let ssh = BASE
        .replace("remotehost = imap.example.org\n", "ssh_host = mail.example.org\nssh_port = 2222\nssh_identity = ~/.ssh/id_mail\nssh_options = StrictHostKeyChecking=no, 'UserKnownHostsFile=/tmp/known hosts'\n")
        .replace("remotepass = hunter2\n", "");
    let c = parse(&ssh).unwrap();
    let Some(Tunnel::Ssh(s)) = &imap(&c, "Remote").tunnel else {
        panic!("no ssh tunnel")
    };
    assert_eq!(s.host, "mail.example.org");
    assert_eq!(s.port, Some(2222));
    assert_eq!(s.identity, Some(PathBuf::from("/home/t/.ssh/id_mail")));
    assert_eq!(
        s.options,
        [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/tmp/known hosts"
        ]
    );
    assert_eq!(s.command, DEFAULT_SSH_COMMAND);
    assert!(err(&base_with("ssh_user = bob")).contains("used only together with ssh_host"));
}

#[test]
fn tls_options() {
    let fp = "AB:".repeat(31) + "AB";
    let c = parse(&base_with(&format!(
        "cert_fingerprint = {fp}, {}\ntls_level = tls_secure\nssl_version = tls1.3\nsslcacertfile = OS-DEFAULT",
        "cd".repeat(32)
    )))
    .unwrap();
    let t = &imap(&c, "Remote").tls;
    assert_eq!(t.fingerprints, ["ab".repeat(32), "cd".repeat(32)]);
    assert_eq!(t.min_version, TlsVersion::Tls13);
    assert_eq!(t.ca_file, None);
    let e = err(&base_with("sslcacertfile = /nonexistent/ca.pem"));
    assert!(e.contains(":17:") && e.contains("existing PEM file"), "{e}");
}

#[test]
fn maildir_options() {
    let text = BASE.replace(
        "localfolders = ~/Mail",
        "localfolders = ~/Mail
sep = .
maildir_engine = dovecot
fsync = no
utf8foldernames = no
inbox = root
customflag_a = $Junk
restoreatime = no",
    );
    let c = parse(&text).unwrap();
    let m = maildir(&c, "Local");
    assert_eq!(m.sep, '.');
    assert_eq!(
        m.engine,
        MaildirEngine::Dovecot {
            imap_path: PathBuf::from(DEFAULT_DOVECOT_IMAP)
        }
    );
    assert_eq!(m.inbox, InboxLayout::Root);
    assert_eq!(m.customflags.get(&'a').map(String::as_str), Some("$Junk"));
    assert!(!c.fsync_for(&c.repositories["Local"]));
    assert!(!c.utf8_folder_names(&c.accounts[0]));
    let e = err(&BASE.replace(
        "localfolders = ~/Mail",
        "localfolders = ~/Mail\ndovecot_imap_path = /x",
    ));
    assert!(e.contains("only with maildir_engine = dovecot"), "{e}");
    let e = err(&BASE.replace("localfolders = ~/Mail", "localfolders = ~/Mail\nsep = :"));
    assert!(
        e.contains(":11: [Repository Local] option 'sep': expected '/' or '.'"),
        "{e}"
    );
}

#[test]
fn general_and_mbnames() {
    let text = BASE.replace(
        "accounts = Test",
        "accounts = Test
maxsyncaccounts = 2
ui = Curses.Blinkenlights, Noninteractive.Basic
fsync = false
socktimeout = 0
ignore-readonly = yes",
    ) + "
[mbnames]
enabled = yes
filename = ~/.mutt/mailboxes
header = \"mailboxes \"
peritem = \"+%(accountname)s/%(foldername)s\"
sep = \" \"
footer = \"\\n\"
folderfilter = !re:.*Trash
";
    let c = parse(&text).unwrap();
    assert_eq!(c.general.maxsyncaccounts, 2);
    assert_eq!(c.general.ui, [Ui::Tty, Ui::Basic]);
    assert!(!c.general.fsync && c.general.ignore_readonly);
    assert_eq!(c.general.socktimeout, None);
    let m = c.mbnames.as_ref().unwrap();
    assert_eq!(m.filename, PathBuf::from("/home/t/.mutt/mailboxes"));
    assert_eq!(
        (m.header.as_str(), m.sep.as_str(), m.footer.as_str()),
        ("mailboxes ", " ", "\n")
    );
    assert_eq!(m.render_item("Test", "INBOX", "/m"), "+Test/INBOX");
    assert!(!m.folderfilter.accepts("Old/Trash"));
    let e = err(&text.replace("%(foldername)s\"", "%(folder)s\""));
    assert!(
        e.contains("[mbnames] option 'peritem'") && e.contains("%(folder)s"),
        "{e}"
    );
    let disabled = text.replace("enabled = yes", "enabled = no");
    assert!(parse(&disabled).unwrap().mbnames.is_none());
}

#[test]
fn options_without_effect_are_listed_as_inert() {
    assert!(parse(BASE).unwrap().inert.is_empty());
    let c = parse(&base_with(
        "reference = Mail\nsubscribedonly = yes\nipv6 = no",
    ))
    .unwrap();
    // `reference` works (namespace-relative names); the other two are inert.
    assert_eq!(c.inert.len(), 2, "{:?}", c.inert);
    assert!(c.inert[0].contains("[Repository Remote] subscribedonly"));
    let c = parse(&base_with("subscribedonly = no")).unwrap();
    assert!(c.inert.is_empty());
}
