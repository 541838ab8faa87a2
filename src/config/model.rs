//! The typed configuration: what the rest of twinbox reads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::imap::transport::{SshOptions, TlsOptions};

use super::command::CommandSpec;
use super::error::{ConfigError, ErrorKind, Place};
use super::folders::{FolderFilter, FolderMapping, NameTrans};
use super::password::{self, PasswordContext, PasswordSource, Secret};
use super::value::{Date, Env};

/// A whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[general]`.
    pub general: General,
    /// The accounts to sync, in `[general] accounts` order (all `[Account]` sections, in
    /// file order, when that option is absent).
    pub accounts: Vec<Account>,
    /// Every `[Repository NAME]` section, by name.
    pub repositories: BTreeMap<String, Repository>,
    /// `[mbnames]`, when present and enabled.
    pub mbnames: Option<Mbnames>,
    /// Options accepted for compatibility that have no effect in this build, one line
    /// each (`[Repository X] reference: ...`), to be shown as warnings.
    pub inert: Vec<String>,
}

impl Config {
    /// Lists the options of `repositories` that are set but have no effect yet.
    pub(crate) fn find_inert(repositories: &BTreeMap<String, Repository>) -> Vec<String> {
        let mut out = Vec::new();
        for (name, r) in repositories {
            let RepositoryKind::Imap(i) = &r.kind else {
                continue;
            };
            let mut note = |opt: &str| {
                out.push(format!(
                    "[Repository {name}] {opt}: accepted but not supported yet by this build; it has no effect"
                ))
            };
            if i.subscribedonly {
                note("subscribedonly");
            }
            if i.ipv6.is_some() {
                note("ipv6");
            }
            if i.remote_identity.is_some() {
                note("remote_identity");
            }
        }
        out
    }

    /// The account called `name`.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The repository called `name`.
    pub fn repository(&self, name: &str) -> Option<&Repository> {
        self.repositories.get(name)
    }

    /// Whether writes to `repository` are fsync'ed: its own `fsync`, else `[general] fsync`.
    pub fn fsync_for(&self, repository: &Repository) -> bool {
        match &repository.kind {
            RepositoryKind::Maildir(m) => m.fsync.unwrap_or(self.general.fsync),
            RepositoryKind::Imap(_) => self.general.fsync,
        }
    }

    /// Whether the local Maildir of `account` uses UTF-8 folder names (rather than IMAP's
    /// modified UTF-7): the repository's `utf8foldernames`, else the account's, else yes.
    pub fn utf8_folder_names(&self, account: &Account) -> bool {
        let repo = self
            .repositories
            .get(&account.local_repository)
            .and_then(|r| match &r.kind {
                RepositoryKind::Maildir(m) => m.utf8foldernames,
                RepositoryKind::Imap(_) => None,
            });
        repo.or(account.utf8foldernames).unwrap_or(true)
    }
}

/// How twinbox reports progress (`ui`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ui {
    /// `TTYUI` (also chosen for offlineimap's `Blinkenlights`): status lines for a terminal.
    Tty,
    /// `Basic`: plain log lines, for cron and systemd.
    Basic,
    /// `Quiet`: errors and serious warnings only.
    Quiet,
    /// `MachineUI`: machine-readable lines.
    Machine,
}

/// `[general]`.
#[derive(Debug, Clone)]
pub struct General {
    /// `accounts`: the accounts to sync, in order.
    pub accounts: Vec<String>,
    /// `maxsyncaccounts`: accounts synced at the same time (default 1).
    pub maxsyncaccounts: usize,
    /// `metadata`: where twinbox keeps its state (default `$XDG_DATA_HOME/twinbox`, i.e.
    /// `~/.local/share/twinbox`).
    pub metadata: PathBuf,
    /// `ui`: user interfaces in order of preference (default `[TTYUI, Basic]`: TTYUI on a terminal, else Basic).
    pub ui: Vec<Ui>,
    /// `fsync`: whether to fsync files and directories at the points that matter
    /// (default yes).
    pub fsync: bool,
    /// `socktimeout`: how long a network read or write may wait (default 120 s; `0`
    /// disables it: `None`).
    pub socktimeout: Option<Duration>,
    /// `ignore-readonly`: do not warn about changes that a read-only IMAP folder refuses.
    pub ignore_readonly: bool,
}

/// `quick`: how often a quick sync replaces a full one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuickSync {
    /// `0` (default): always full.
    Never,
    /// `-1`: always quick.
    Always,
    /// `N`: N quick syncs between two full ones (with `autorefresh`).
    Between(u32),
}

/// The age limit of an account (`maxage` or `startdate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Messages of the last N days (`maxage = N`).
    Days(u32),
    /// Messages from this date on (`maxage = YYYY-MM-DD` or `startdate`).
    Date(Date),
}

/// `[Account NAME]`: a pair of repositories synced together.
#[derive(Debug, Clone)]
pub struct Account {
    /// The account name (the section name without `Account `).
    pub name: String,
    /// `localrepository`: the local repository's name.
    pub local_repository: String,
    /// `remoterepository`: the remote repository's name.
    pub remote_repository: String,
    /// `autorefresh`: sync again after this long (given in minutes); `None` syncs once.
    pub autorefresh: Option<Duration>,
    /// `quick`.
    pub quick: QuickSync,
    /// `presynchook`: run before each sync of the account.
    pub presynchook: Option<CommandSpec>,
    /// `postsynchook`: run after each sync of the account.
    pub postsynchook: Option<CommandSpec>,
    /// `maxage` / `startdate`: ignore older messages.
    pub since: Option<Since>,
    /// `maxsize`: ignore bigger messages (bytes).
    pub maxsize: Option<u64>,
    /// `utf8foldernames`, if given (see [`Config::utf8_folder_names`]).
    pub utf8foldernames: Option<bool>,
    /// Folder selection and translation, from both repositories' options.
    pub folders: FolderMapping,
    /// The section header, for messages.
    pub place: Place,
}

/// `[Repository NAME]`.
#[derive(Debug, Clone)]
pub struct Repository {
    /// The repository name (the section name without `Repository `).
    pub name: String,
    /// IMAP or Maildir, with the options of that type.
    pub kind: RepositoryKind,
    /// `readonly`: never modify this repository (default no).
    pub readonly: bool,
    /// `createfolders`: create folders here that the other side has (default yes).
    pub createfolders: bool,
    /// `sync_deletes`: propagate deletions made here to the other side (default yes).
    pub sync_deletes: bool,
    /// `folderfilter` (on this repository's own names).
    pub folderfilter: FolderFilter,
    /// `folderincludes`: folders to sync even if not listed.
    pub folderincludes: Vec<String>,
    /// `nametrans` as given (this side's names → the other side's).
    pub nametrans: Option<NameTrans>,
    /// The section header, for messages.
    pub place: Place,
}

/// A repository's type and type-specific options.
#[derive(Debug, Clone)]
pub enum RepositoryKind {
    /// `type = IMAP` (or `Gmail`).
    Imap(Box<ImapRepository>),
    /// `type = Maildir`.
    Maildir(MaildirRepository),
}

/// How the connection to an IMAP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`ssl = yes`, the default; port 993).
    Tls,
    /// Plain connection upgraded with STARTTLS, which is then required (port 143).
    StartTls,
    /// No TLS (`ssl = no`, `starttls = no`), or a tunnel that provides its own security.
    Plain,
}

/// A SASL mechanism, in `auth_mechanisms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMechanism {
    /// `AUTHENTICATE PLAIN` (with SASL-IR when offered).
    Plain,
    /// The `LOGIN` command.
    Login,
}

/// How the byte stream to the IMAP server is obtained, when not a direct TCP connection.
#[derive(Debug, Clone)]
pub enum Tunnel {
    /// `preauthtunnel`: a command speaking IMAP on stdin/stdout, already logged in.
    Preauth(CommandSpec),
    /// `transporttunnel`: a command carrying the IMAP stream; login still happens.
    Transport(CommandSpec),
    /// `ssh_*` options: an IMAP command run over ssh in the PREAUTH state.
    Ssh(SshOptions),
}

/// The options of an IMAP repository.
#[derive(Debug, Clone)]
pub struct ImapRepository {
    /// `remotehost` (`imap.gmail.com` for `type = Gmail`); `None` with a preauth tunnel or
    /// ssh, and possibly with a transport tunnel.
    pub host: Option<String>,
    /// `remoteport` (default 993 with `ssl`, else 143).
    pub port: u16,
    /// `remoteuser`; when absent, the netrc entry for the host may give it.
    pub user: Option<String>,
    /// `remote_identity`: the SASL authorisation identity (PLAIN only).
    pub remote_identity: Option<String>,
    /// Where the password comes from; see [`ImapRepository::resolve_password`].
    pub password: PasswordSource,
    /// `ssl` / `starttls`.
    pub security: Security,
    /// `sslcacertfile`, `cert_fingerprint`, `tls_level` / `ssl_version`.
    pub tls: TlsOptions,
    /// `auth_mechanisms`, in order of preference (default PLAIN, LOGIN).
    pub auth_mechanisms: Vec<AuthMechanism>,
    /// `preauthtunnel`, `transporttunnel` or the `ssh_*` options.
    pub tunnel: Option<Tunnel>,
    /// `usecompression`: COMPRESS=DEFLATE. `None` (unset): compress over the network but
    /// not over loopback or local tunnels.
    pub compression: Option<bool>,
    /// `disable_extensions`: capabilities to ignore although the server advertises them
    /// (a server that breaks them), upper case, e.g. `QRESYNC, CONDSTORE` (mbsync's
    /// `DisableExtensions`). `-k "Repository NAME:disable_extensions=..."` sets it for one run.
    pub disable_extensions: Vec<String>,
    /// `sendid`: identify twinbox to the server with ID (RFC 2971) when offered (default
    /// no: it costs a round trip per connection; some providers ask clients to send it).
    pub send_id: bool,
    /// `maxconnections`: connections used to sync folders in parallel (default 1; IDLE
    /// connections for `idlefolders` come on top).
    pub maxconnections: usize,
    /// `holdconnectionopen`: keep connections open between `autorefresh` syncs.
    pub holdconnectionopen: bool,
    /// `keepalive`: NOOP interval while holding connections open.
    pub keepalive: Option<Duration>,
    /// `expunge`: expunge messages deleted by the sync (default yes).
    pub expunge: bool,
    /// `idlefolders`: folders watched with IDLE between syncs.
    pub idlefolders: Vec<String>,
    /// `reference`: the LIST reference (folder root) on the server.
    pub reference: Option<String>,
    /// `namespaces`: namespace classes synced besides the personal one (`personal, shared,
    /// other`; default personal only).
    pub namespaces: crate::imap::namespace::NamespaceChoice,
    /// `singlethreadperfolder`: never use more than one connection for one folder.
    pub singlethreadperfolder: bool,
    /// `maxmessagesize`: the largest literal accepted from the server (default 256 MiB).
    pub maxmessagesize: u64,
    /// `subscribedonly`: only sync subscribed folders (LSUB).
    pub subscribedonly: bool,
    /// `retrycount`: attempts at a failing message download (default 2).
    pub retrycount: u32,
    /// `ipv6`: `Some(true)` IPv6 only, `Some(false)` IPv4 only, `None` either.
    pub ipv6: Option<bool>,
    /// Whether the type was `Gmail`.
    pub gmail: bool,
    pub(crate) password_place: Place,
    pub(crate) user_place: Place,
}

impl ImapRepository {
    /// The password, from its source: `remotepass`, `remotepassfile`, `remotepasscmd`,
    /// else netrc, else a terminal prompt. Blocking (a command or a prompt may take a
    /// while): call it from a blocking context. Errors point at the option concerned.
    pub fn resolve_password(&self) -> Result<Secret, ConfigError> {
        self.resolve_password_with(&PasswordContext::from_env(&Env::from_process()))
    }

    /// [`Self::resolve_password`] with an explicit netrc list and prompt policy.
    pub fn resolve_password_with(&self, ctx: &PasswordContext) -> Result<Secret, ConfigError> {
        password::resolve(
            &self.password,
            self.host.as_deref(),
            self.user.as_deref(),
            &self.password_place,
            ctx,
        )
    }

    /// The user name: `remoteuser`, else the login of the netrc entry for the host.
    pub fn resolve_user(&self, ctx: &PasswordContext) -> Result<String, ConfigError> {
        if let Some(user) = &self.user {
            return Ok(user.clone());
        }
        let fail = |m: String| self.user_place.error(ErrorKind::Password(m));
        let login = match &self.host {
            Some(host) => ctx
                .netrc_entry(host, None)
                .map_err(fail)?
                .and_then(|e| e.login),
            None => None,
        };
        login.ok_or_else(|| {
            fail("no remoteuser given and no netrc entry with a login for this host".to_string())
        })
    }
}

/// How a local Maildir is read and written (`maildir_engine`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaildirEngine {
    /// twinbox's own Maildir code (default).
    Native,
    /// dovecot's `imap` binary run as a PREAUTH process on the Maildir.
    Dovecot {
        /// `dovecot_imap_path` (default `/usr/lib/dovecot/imap`).
        imap_path: PathBuf,
    },
}

/// Where INBOX lives in a Maildir tree (`inbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxLayout {
    /// `inbox = folder` (default, as offlineimap): `localfolders/INBOX/{cur,new,tmp}`.
    Folder,
    /// `inbox = root` (as dovecot and mbsync's Maildir++): `localfolders/{cur,new,tmp}`.
    Root,
}

/// The options of a Maildir repository.
#[derive(Debug, Clone)]
pub struct MaildirRepository {
    /// `localfolders`: the root directory.
    pub root: PathBuf,
    /// `sep`: the folder hierarchy separator on disk, `/` (default: nested directories)
    /// or `.` (Maildir++ style `.Lists.rust`).
    pub sep: char,
    /// `maildir_engine` / `dovecot_imap_path`.
    pub engine: MaildirEngine,
    /// `fsync`, overriding `[general] fsync` when given.
    pub fsync: Option<bool>,
    /// `utf8foldernames`, when given (see [`Config::utf8_folder_names`]).
    pub utf8foldernames: Option<bool>,
    /// `inbox`.
    pub inbox: InboxLayout,
    /// `customflag_[a-z]`: keyword for each Maildir flag letter.
    pub customflags: BTreeMap<char, String>,
}

/// `[mbnames]`: a file listing the synced folders for mail readers such as mutt.
#[derive(Debug, Clone)]
pub struct Mbnames {
    /// `filename`: the file written.
    pub filename: PathBuf,
    /// `header` (default `mailboxes `).
    pub header: String,
    /// `peritem`, with `%(accountname)s`, `%(foldername)s`, `%(localfolders)s`
    /// (default `+%(accountname)s/%(foldername)s`).
    pub peritem: String,
    /// `sep` between items (default a space).
    pub sep: String,
    /// `footer` (default a newline).
    pub footer: String,
    /// `incremental`: rewrite the file after each account rather than once at the end.
    pub incremental: bool,
    /// `folderfilter` on local (translated) folder names.
    pub folderfilter: FolderFilter,
}

impl Mbnames {
    /// One `peritem` with its placeholders filled in.
    pub fn render_item(&self, account: &str, folder: &str, localfolders: &str) -> String {
        self.peritem
            .replace("%(accountname)s", account)
            .replace("%(foldername)s", folder)
            .replace("%(localfolders)s", localfolders)
    }
}
