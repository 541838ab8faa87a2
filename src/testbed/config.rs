//! Options for a dovecot instance and the generator of its configuration text.
//!
//! [`render_config`] is the one place dovecot configuration is written: the private test
//! instances ([`super::Dovecot`]) and the docker image both call it, with different
//! [`ConfigPaths`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The capabilities dovecot 2.3 advertises after login by default, in its order, without
/// COMPRESS=DEFLATE (which the `imap_zlib` plugin appends by itself).
pub const DOVECOT_DEFAULT_CAPABILITIES: &[&str] = &[
    "IMAP4rev1",
    "SASL-IR",
    "LOGIN-REFERRALS",
    "ID",
    "ENABLE",
    "IDLE",
    "SORT",
    "SORT=DISPLAY",
    "THREAD=REFERENCES",
    "THREAD=REFS",
    "THREAD=ORDEREDSUBJECT",
    "MULTIAPPEND",
    "URL-PARTIAL",
    "CATENATE",
    "UNSELECT",
    "CHILDREN",
    "NAMESPACE",
    "UIDPLUS",
    "LIST-EXTENDED",
    "I18NLEVEL=1",
    "CONDSTORE",
    "QRESYNC",
    "ESEARCH",
    "ESORT",
    "SEARCHRES",
    "WITHIN",
    "CONTEXT=SEARCH",
    "LIST-STATUS",
    "BINARY",
    "MOVE",
    "SNIPPET=FUZZY",
    "PREVIEW=FUZZY",
    "PREVIEW",
    "STATUS=SIZE",
    "SAVEDATE",
    "LITERAL+",
    "NOTIFY",
];

/// Dovecot's default capability list minus the named capabilities (case-insensitive), as an
/// `imap_capability` value. Only the advertisement changes: dovecot still accepts the
/// commands, so a test checks that the client does not use what was not advertised.
pub fn capabilities_without(remove: &[&str]) -> String {
    DOVECOT_DEFAULT_CAPABILITIES
        .iter()
        .filter(|c| !remove.iter().any(|r| r.eq_ignore_ascii_case(c)))
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The "IMAP4rev1 without CONDSTORE/QRESYNC" tier: everything dovecot offers except those two.
pub fn capabilities_without_condstore() -> String {
    capabilities_without(&["CONDSTORE", "QRESYNC"])
}

/// A bare IMAP4rev1 server (no UIDPLUS, LITERAL+, MOVE, CONDSTORE, ...), like Courier-IMAP
/// without configuration. COMPRESS=DEFLATE is still appended when compression is enabled.
pub const CAPABILITIES_BARE_IMAP4REV1: &str = "IMAP4rev1";

/// A mail account of the test server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    /// Login name (also the name of its home directory).
    pub name: String,
    /// Plaintext password.
    pub password: String,
}

impl TestUser {
    /// A user with that name and password.
    pub fn new(name: impl Into<String>, password: impl Into<String>) -> Self {
        TestUser {
            name: name.into(),
            password: password.into(),
        }
    }
}

/// How mailboxes are laid out on disk (and so the natural hierarchy separator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MailLayout {
    /// `maildir:~/Maildir:LAYOUT=fs`: a folder `a/b` is the directory `Maildir/a/b`;
    /// separator `/`.
    #[default]
    Fs,
    /// Classic Maildir++ (`maildir:~/Maildir`): a folder `a.b` is `Maildir/.a.b`;
    /// separator `.`.
    MaildirPlusPlus,
}

impl MailLayout {
    /// The `mail_location` value for this layout.
    pub fn mail_location(self) -> &'static str {
        match self {
            MailLayout::Fs => "maildir:~/Maildir:LAYOUT=fs",
            MailLayout::MaildirPlusPlus => "maildir:~/Maildir",
        }
    }

    /// The hierarchy separator that goes with the layout.
    pub fn natural_separator(self) -> char {
        match self {
            MailLayout::Fs => '/',
            MailLayout::MaildirPlusPlus => '.',
        }
    }
}

/// What a dovecot test instance looks like. `Default` gives two users (`alice`/`secret`,
/// `bob`/`secret`), TLS, COMPRESS, the command log and the `/` separator.
#[derive(Debug, Clone)]
pub struct DovecotOptions {
    /// Accounts (passwd-file passdb and userdb).
    pub users: Vec<TestUser>,
    /// When set, written as `imap_capability = ...`: what is advertised after login (see
    /// [`capabilities_without_condstore`], [`CAPABILITIES_BARE_IMAP4REV1`]).
    pub capabilities: Option<String>,
    /// COMPRESS=DEFLATE (the `zlib` and `imap_zlib` plugins).
    pub compress: bool,
    /// TLS: a per-instance CA and server certificate, `ssl = yes`, an imaps listener and
    /// STARTTLS on the plain listener. Off: `ssl = no`, no imaps port.
    pub tls: bool,
    /// On-disk layout of the personal namespace.
    pub layout: MailLayout,
    /// Hierarchy separator of the personal namespace (default: the layout's own).
    pub separator: Option<char>,
    /// Prefix of the personal namespace, e.g. `INBOX.` (default: empty).
    pub prefix: String,
    /// Log each session's client input to `~/rawlog` (`rawlog_dir`); read it back with
    /// [`super::Dovecot::commands_seen`].
    pub command_log: bool,
    /// The `mail_log` plugin: one log line per save, expunge, flag change, etc.
    pub mail_log: bool,
    /// `mail_fsync`: off (`never`) by default, which is faster and fine for throw-away mail.
    pub fsync: bool,
    /// Appended verbatim at the end of the configuration.
    pub extra_config: String,
}

impl Default for DovecotOptions {
    fn default() -> Self {
        DovecotOptions {
            users: vec![
                TestUser::new("alice", "secret"),
                TestUser::new("bob", "secret"),
            ],
            capabilities: None,
            compress: true,
            tls: true,
            layout: MailLayout::Fs,
            separator: None,
            prefix: String::new(),
            command_log: true,
            mail_log: true,
            fsync: false,
            extra_config: String::new(),
        }
    }
}

impl DovecotOptions {
    /// Replaces the user list.
    pub fn users(mut self, users: Vec<TestUser>) -> Self {
        self.users = users;
        self
    }

    /// Adds a user.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push(TestUser::new(name, password));
        self
    }

    /// Sets the advertised capabilities (`imap_capability`).
    pub fn capabilities(mut self, caps: impl Into<String>) -> Self {
        self.capabilities = Some(caps.into());
        self
    }

    /// Advertises everything but CONDSTORE and QRESYNC.
    pub fn without_condstore(self) -> Self {
        self.capabilities(capabilities_without_condstore())
    }

    /// Enables or disables COMPRESS=DEFLATE.
    pub fn compress(mut self, on: bool) -> Self {
        self.compress = on;
        self
    }

    /// Enables or disables TLS (imaps and STARTTLS).
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Sets the on-disk layout.
    pub fn layout(mut self, layout: MailLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Sets the hierarchy separator.
    pub fn separator(mut self, sep: char) -> Self {
        self.separator = Some(sep);
        self
    }

    /// Sets the namespace prefix (end it with the separator, e.g. `INBOX.`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Enables or disables the per-session command log.
    pub fn command_log(mut self, on: bool) -> Self {
        self.command_log = on;
        self
    }

    /// Enables or disables the `mail_log` plugin.
    pub fn mail_log(mut self, on: bool) -> Self {
        self.mail_log = on;
        self
    }

    /// Enables or disables fsync.
    pub fn fsync(mut self, on: bool) -> Self {
        self.fsync = on;
        self
    }

    /// Appends raw configuration text.
    pub fn extra_config(mut self, text: impl Into<String>) -> Self {
        self.extra_config.push_str(&text.into());
        self.extra_config.push('\n');
        self
    }

    /// The effective hierarchy separator.
    pub fn effective_separator(&self) -> char {
        self.separator
            .unwrap_or_else(|| self.layout.natural_separator())
    }
}

/// Which accounts the dovecot services run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAccounts {
    /// Started as root: dovecot's own `dovecot`/`dovenull` users and chrooted login processes
    /// (the Debian defaults).
    System,
    /// Started as an ordinary user: every service runs as this user and group, without chroot.
    Unprivileged {
        /// User name for `default_internal_user` and `default_login_user`.
        user: String,
        /// Group name for `default_internal_group`.
        group: String,
    },
}

/// Where things are and which ports to listen on: the machine-specific half of a config.
#[derive(Debug, Clone)]
pub struct ConfigPaths {
    /// `instance_name` (process titles, and `doveadm -i`).
    pub instance_name: String,
    /// `listen` address.
    pub listen: String,
    /// Plain IMAP (and STARTTLS) port.
    pub imap_port: u16,
    /// Implicit-TLS port (used only when TLS is on).
    pub imaps_port: u16,
    /// `base_dir`: sockets and pid file.
    pub base_dir: PathBuf,
    /// `state_dir`.
    pub state_dir: PathBuf,
    /// `log_path` (a file, or `/dev/stderr` in a container).
    pub log_path: PathBuf,
    /// The passwd-file with users, uids and homes (see [`render_passwd`]).
    pub passwd_file: PathBuf,
    /// PEM server certificate (chain).
    pub ssl_cert: PathBuf,
    /// PEM private key.
    pub ssl_key: PathBuf,
    /// `ssl_dh` parameters file, if any.
    pub ssl_dh: Option<PathBuf>,
    /// Service accounts.
    pub accounts: ServiceAccounts,
}

/// The Debian location of dovecot's DH parameters, used when present.
pub const DEBIAN_DH_PARAMS: &str = "/usr/share/dovecot/dh.pem";

fn push_path(out: &mut String, key: &str, path: &Path) {
    let _ = writeln!(out, "{key} = {}", path.display());
}

/// Renders a complete `dovecot.conf` (no includes) from options and paths.
pub fn render_config(opts: &DovecotOptions, paths: &ConfigPaths) -> String {
    let mut c = String::new();
    c.push_str("# Generated by twinbox::testbed::render_config. Test use only.\n");
    c.push_str("protocols = imap\n");
    let _ = writeln!(c, "instance_name = {}", paths.instance_name);
    let _ = writeln!(c, "listen = {}", paths.listen);
    push_path(&mut c, "base_dir", &paths.base_dir);
    push_path(&mut c, "state_dir", &paths.state_dir);
    push_path(&mut c, "log_path", &paths.log_path);
    c.push_str("verbose_proctitle = yes\n");
    c.push_str("disable_plaintext_auth = no\n");
    c.push_str("auth_mechanisms = plain login\n");
    c.push_str("auth_failure_delay = 0\n");
    c.push_str("mail_max_userip_connections = 200\n");
    c.push_str("imap_logout_format = in=%i out=%o\n");
    let _ = writeln!(
        c,
        "mail_fsync = {}",
        if opts.fsync { "optimized" } else { "never" }
    );
    if let ServiceAccounts::Unprivileged { user, group } = &paths.accounts {
        let _ = writeln!(c, "default_internal_user = {user}");
        let _ = writeln!(c, "default_internal_group = {group}");
        let _ = writeln!(c, "default_login_user = {user}");
        c.push_str("service anvil {\n  chroot =\n}\n");
    }

    // TLS
    if opts.tls {
        c.push_str("ssl = yes\n");
        let _ = writeln!(c, "ssl_cert = <{}", paths.ssl_cert.display());
        let _ = writeln!(c, "ssl_key = <{}", paths.ssl_key.display());
        if let Some(dh) = &paths.ssl_dh {
            let _ = writeln!(c, "ssl_dh = <{}", dh.display());
        }
        c.push_str("ssl_min_protocol = TLSv1.2\n");
    } else {
        c.push_str("ssl = no\n");
    }

    // Users
    let passwd = paths.passwd_file.display();
    let _ = write!(
        c,
        "passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {passwd}\n}}\n\
         userdb {{\n  driver = passwd-file\n  args = {passwd}\n}}\n"
    );

    // Mail
    let _ = writeln!(c, "mail_location = {}", opts.layout.mail_location());
    let _ = write!(
        c,
        "namespace inbox {{\n  inbox = yes\n  separator = {}\n  prefix = {}\n}}\n",
        opts.effective_separator(),
        opts.prefix
    );
    let mut plugins = Vec::new();
    let mut imap_plugins = Vec::new();
    if opts.compress {
        plugins.push("zlib");
        imap_plugins.push("imap_zlib");
    }
    if opts.mail_log {
        plugins.push("notify");
        plugins.push("mail_log");
        c.push_str(
            "plugin {\n  mail_log_events = save copy expunge flag_change mailbox_create \
             mailbox_delete mailbox_rename\n  mail_log_fields = uid box msgid size flags\n}\n",
        );
    }
    if !plugins.is_empty() {
        let _ = writeln!(c, "mail_plugins = $mail_plugins {}", plugins.join(" "));
    }
    c.push_str("protocol imap {\n");
    if !imap_plugins.is_empty() {
        let _ = writeln!(
            c,
            "  mail_plugins = $mail_plugins {}",
            imap_plugins.join(" ")
        );
    }
    if let Some(caps) = &opts.capabilities {
        let _ = writeln!(c, "  imap_capability = {caps}");
    }
    if opts.command_log {
        c.push_str("  rawlog_dir = %h/rawlog\n");
    }
    c.push_str("}\n");

    // Listeners
    c.push_str("service imap-login {\n");
    if matches!(paths.accounts, ServiceAccounts::Unprivileged { .. }) {
        c.push_str("  chroot =\n");
    }
    let _ = write!(
        c,
        "  inet_listener imap {{\n    address = {}\n    port = {}\n  }}\n",
        paths.listen, paths.imap_port
    );
    if opts.tls {
        let _ = write!(
            c,
            "  inet_listener imaps {{\n    address = {}\n    port = {}\n    ssl = yes\n  }}\n",
            paths.listen, paths.imaps_port
        );
    } else {
        c.push_str("  inet_listener imaps {\n    port = 0\n  }\n");
    }
    c.push_str("}\n");

    if !opts.extra_config.is_empty() {
        c.push_str("# extra_config\n");
        c.push_str(&opts.extra_config);
        if !opts.extra_config.ends_with('\n') {
            c.push('\n');
        }
    }
    c
}

/// Renders a passwd-file for the users: `name:{PLAIN}password:uid:gid::home_root/name::`.
pub fn render_passwd(users: &[TestUser], uid: u32, gid: u32, home_root: &Path) -> String {
    let mut s = String::new();
    for u in users {
        let _ = writeln!(
            s,
            "{}:{{PLAIN}}{}:{uid}:{gid}::{}::",
            u.name,
            u.password,
            home_root.join(&u.name).display()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_condstore_drops_only_those() {
        let caps = capabilities_without_condstore();
        assert!(caps.starts_with("IMAP4rev1 "));
        assert!(!caps.contains("CONDSTORE"));
        assert!(!caps.contains("QRESYNC"));
        assert!(caps.contains("UIDPLUS"));
    }

    #[test]
    fn config_mentions_ports_and_capabilities() {
        let opts = DovecotOptions::default().without_condstore();
        let paths = ConfigPaths {
            instance_name: "t".into(),
            listen: "127.0.0.1".into(),
            imap_port: 1143,
            imaps_port: 1993,
            base_dir: "/b".into(),
            state_dir: "/s".into(),
            log_path: "/l".into(),
            passwd_file: "/p".into(),
            ssl_cert: "/c".into(),
            ssl_key: "/k".into(),
            ssl_dh: None,
            accounts: ServiceAccounts::System,
        };
        let conf = render_config(&opts, &paths);
        assert!(conf.contains("port = 1143"));
        assert!(conf.contains("port = 1993"));
        assert!(conf.contains("imap_capability = IMAP4rev1 "));
        assert!(conf.contains("imap_zlib"));
        assert!(conf.contains("ssl_key = </k"));
    }
}
