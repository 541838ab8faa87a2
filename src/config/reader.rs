//! Section kinds, their option tables, and a typed reader over one raw section.
//!
//! Every option twinbox accepts is listed here, per kind of section; an option not listed
//! is an error with a "did you mean" hint, never silently ignored. Options offlineimap has
//! and twinbox deliberately lacks (mostly Python hooks) get a specific message instead.

use std::path::PathBuf;

use super::command::CommandSpec;
use super::error::{ConfigError, ErrorKind, Place};
use super::ini::{RawConfig, RawSection, Value};
use super::value::{parse_bool, parse_list, suggest, Env, BOOL_EXPECTED};

/// The kind of a section, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind<'a> {
    General,
    Mbnames,
    Defaults,
    Account(&'a str),
    Repository(&'a str),
}

/// Classifies a section header.
pub(crate) fn classify(name: &str) -> Result<Kind<'_>, ErrorKind> {
    match name {
        "general" => return Ok(Kind::General),
        "mbnames" => return Ok(Kind::Mbnames),
        "DEFAULT" => return Ok(Kind::Defaults),
        _ => {}
    }
    if let Some(rest) = name
        .strip_prefix("Account ")
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        return Ok(Kind::Account(rest));
    }
    if let Some(rest) = name
        .strip_prefix("Repository ")
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        return Ok(Kind::Repository(rest));
    }
    if name.to_ascii_lowercase().starts_with("ui.") {
        return Err(ErrorKind::Unsupported(
            "offlineimap's [ui.*] sections; choose the interface with [general] ui".to_string(),
        ));
    }
    let suggestion = match name.split_once(char::is_whitespace) {
        Some((word, rest)) => {
            suggest(word, ["Account", "Repository"]).map(|k| format!("[{k} {}]", rest.trim()))
        }
        None => suggest(name, ["general", "mbnames", "DEFAULT"])
            .map(|s| format!("[{s}]"))
            .or_else(|| suggest(name, ["Account", "Repository"]).map(|k| format!("[{k} NAME]"))),
    };
    Err(ErrorKind::UnknownSection { suggestion })
}

/// Options of `[general]`.
pub(crate) const GENERAL: &[&str] = &[
    "accounts",
    "maxsyncaccounts",
    "metadata",
    "ui",
    "fsync",
    "socktimeout",
    "ignore-readonly",
];

/// Options of `[Account NAME]`.
pub(crate) const ACCOUNT: &[&str] = &[
    "localrepository",
    "remoterepository",
    "autorefresh",
    "quick",
    "presynchook",
    "postsynchook",
    "maxage",
    "startdate",
    "maxsize",
    "utf8foldernames",
    "synclabels",
    "maildir-windows-compatible",
    "status_backend",
];

/// Options of every `[Repository NAME]`.
pub(crate) const REPOSITORY: &[&str] = &[
    "type",
    "folderfilter",
    "folderincludes",
    "nametrans",
    "createfolders",
    "readonly",
    "sync_deletes",
];

/// Options of IMAP (and Gmail) repositories, besides [`REPOSITORY`].
pub(crate) const IMAP: &[&str] = &[
    "remotehost",
    "remoteport",
    "remoteuser",
    "remote_identity",
    "remotepass",
    "remotepassfile",
    "remotepasscmd",
    "ssl",
    "starttls",
    "sslcacertfile",
    "cert_fingerprint",
    "ssl_version",
    "tls_level",
    "auth_mechanisms",
    "preauthtunnel",
    "transporttunnel",
    "ssh_host",
    "ssh_user",
    "ssh_port",
    "ssh_identity",
    "ssh_command",
    "ssh_options",
    "usecompression",
    "disable_extensions",
    "sendid",
    "maxconnections",
    "holdconnectionopen",
    "keepalive",
    "expunge",
    "idlefolders",
    "reference",
    "namespaces",
    "singlethreadperfolder",
    "maxmessagesize",
    "subscribedonly",
    "retrycount",
    "ipv6",
];

/// Options of Maildir repositories, besides [`REPOSITORY`] and `customflag_[a-z]`.
pub(crate) const MAILDIR: &[&str] = &[
    "localfolders",
    "sep",
    "maildir_engine",
    "dovecot_imap_path",
    "fsync",
    "utf8foldernames",
    "inbox",
    "restoreatime",
    "utime_from_header",
    "filename_use_mail_timestamp",
];

/// Options of `[mbnames]`.
pub(crate) const MBNAMES: &[&str] = &[
    "enabled",
    "filename",
    "header",
    "peritem",
    "sep",
    "footer",
    "incremental",
    "folderfilter",
];

const PYTHON_PASS: &str =
    "Python evaluation; use remotepasscmd = COMMAND (the first line it prints is the password)";

/// offlineimap options twinbox refuses, by table, with the reason.
pub(crate) const UNSUPPORTED_GENERAL: &[(&str, &str)] = &[(
    "pythonfile",
    "Python helper files; use remotepasscmd for passwords and twinbox's folderfilter and nametrans rules",
)];

/// See [`UNSUPPORTED_GENERAL`].
pub(crate) const UNSUPPORTED_ACCOUNT: &[(&str, &str)] = &[
    ("labelsheader", "Gmail label synchronisation"),
    ("ignorelabels", "Gmail label synchronisation"),
    (
        "filterheaders",
        "changing message headers (twinbox never alters messages)",
    ),
    (
        "proxy",
        "SOCKS/HTTP proxies; use a transporttunnel such as 'nc -X 5 -x PROXY:1080 HOST 993'",
    ),
    ("authproxy", "SOCKS/HTTP proxies; use a transporttunnel"),
];

/// See [`UNSUPPORTED_GENERAL`].
pub(crate) const UNSUPPORTED_REPOSITORY: &[(&str, &str)] = &[
    (
        "foldersort",
        "Python folder sorting; folders are synced in name order",
    ),
    (
        "dynamic_folderfilter",
        "not needed: folder rules are applied to the folder list of every sync; remove it",
    ),
    (
        "startdate",
        "startdate goes in the [Account] section in twinbox",
    ),
    ("maxage", "maxage goes in the [Account] section"),
    (
        "remotehosteval",
        "Python evaluation; write remotehost (%(name)s interpolation works)",
    ),
    ("remoteporteval", "Python evaluation; write remoteport"),
    (
        "remoteusereval",
        "Python evaluation; write remoteuser, or leave it out to take the login from ~/.netrc, \
         and use remotepasscmd for the password",
    ),
    ("remotepasseval", PYTHON_PASS),
    ("sslclientcert", "TLS client certificates"),
    ("sslclientkey", "TLS client certificates"),
    ("oauth2_client_id", "OAuth2 (XOAUTH2)"),
    ("oauth2_client_secret", "OAuth2 (XOAUTH2)"),
    ("oauth2_client_id_eval", "OAuth2 (XOAUTH2)"),
    ("oauth2_client_secret_eval", "OAuth2 (XOAUTH2)"),
    ("oauth2_access_token", "OAuth2 (XOAUTH2)"),
    ("oauth2_access_token_eval", "OAuth2 (XOAUTH2)"),
    ("oauth2_refresh_token", "OAuth2 (XOAUTH2)"),
    ("oauth2_refresh_token_eval", "OAuth2 (XOAUTH2)"),
    ("oauth2_request_url", "OAuth2 (XOAUTH2)"),
    (
        "decodefoldernames",
        "decodefoldernames; use utf8foldernames",
    ),
    (
        "newmail_hook",
        "Python hooks; use postsynchook in the [Account] section",
    ),
    ("copy_ignore_eval", "Python evaluation"),
    ("trashfolder", "Gmail trash/spam folder handling"),
    ("spamfolder", "Gmail trash/spam folder handling"),
];

/// See [`UNSUPPORTED_GENERAL`].
pub(crate) const UNSUPPORTED_MBNAMES: &[(&str, &str)] = &[(
    "sort_keyfunc",
    "Python sorting; mailboxes are listed by account, then folder name",
)];

/// Whether `key` is a Maildir `customflag_[a-z]` option.
pub(crate) fn is_customflag(key: &str) -> bool {
    key.strip_prefix("customflag_")
        .is_some_and(|l| l.len() == 1 && l.chars().all(|c| c.is_ascii_lowercase()))
}

/// Where an option belongs, if it belongs somewhere other than `current`.
fn home_of(key: &str, current: &[&[&str]]) -> Option<&'static str> {
    let tables: [(&[&str], &str); 6] = [
        (GENERAL, "the [general] section"),
        (ACCOUNT, "[Account] sections"),
        (REPOSITORY, "[Repository] sections"),
        (IMAP, "IMAP repositories"),
        (MAILDIR, "Maildir repositories"),
        (MBNAMES, "the [mbnames] section"),
    ];
    tables
        .into_iter()
        .find(|(t, _)| t.contains(&key) && !current.iter().any(|c| std::ptr::eq(*c, *t)))
        .map(|(_, what)| what)
}

/// Rejects the options of `section` that are neither in `known` nor customflags (when
/// `customflags`), naming a likely intended option.
pub(crate) fn check_options(
    section: &RawSection,
    known: &[&[&str]],
    unsupported: &[&[(&str, &str)]],
    customflags: bool,
) -> Result<(), ConfigError> {
    for entry in &section.entries {
        let key = entry.key.as_str();
        if known.iter().any(|t| t.contains(&key)) || (customflags && is_customflag(key)) {
            continue;
        }
        let place = Place::option(entry.origin.clone(), &section.name, key);
        if let Some((_, why)) = unsupported
            .iter()
            .flat_map(|t| t.iter())
            .find(|(k, _)| *k == key)
        {
            return Err(place.error(ErrorKind::Unsupported(why.to_string())));
        }
        let note = home_of(key, known).map(|w| format!("it is an option of {w}"));
        let candidates = known.iter().flat_map(|t| t.iter().copied());
        let suggestion = if note.is_some() {
            None
        } else {
            suggest(key, candidates).map(str::to_string)
        };
        return Err(place.error(ErrorKind::UnknownOption { suggestion, note }));
    }
    Ok(())
}

/// Typed access to one section's options (with `[DEFAULT]` fallback and interpolation).
pub(crate) struct Reader<'a> {
    pub raw: &'a RawConfig,
    pub section: &'a RawSection,
    pub env: &'a Env,
}

impl<'a> Reader<'a> {
    /// The interpolated value of `key`, if given.
    pub fn get(&self, key: &str) -> Result<Option<Value>, ConfigError> {
        self.raw.get(self.section, key)
    }

    /// A place naming this section and `key`, at the section header (for missing options).
    pub fn place_of(&self, key: &str) -> Place {
        Place::option(self.section.origin.clone(), &self.section.name, key)
    }

    /// The value of a required option.
    pub fn required(&self, key: &str, why: &str) -> Result<Value, ConfigError> {
        self.get(key)?.ok_or_else(|| {
            self.place_of(key)
                .error(ErrorKind::Missing(why.to_string()))
        })
    }

    /// A string option; an empty value counts as absent.
    pub fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.get(key)?.map(|v| v.text).filter(|t| !t.is_empty()))
    }

    /// A value converted by `parse`, which returns `None` for an invalid value.
    pub fn parse<T>(
        &self,
        key: &str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(key)? {
            None => Ok(None),
            Some(v) => parse(v.text.trim())
                .map(Some)
                .ok_or_else(|| v.invalid(expected)),
        }
    }

    /// A boolean option.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        self.parse(key, BOOL_EXPECTED, parse_bool)
    }

    /// A boolean option with a default.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        Ok(self.bool(key)?.unwrap_or(default))
    }

    /// An unsigned number within `min..=max`.
    pub fn number(
        &self,
        key: &str,
        min: u64,
        max: u64,
        what: &str,
    ) -> Result<Option<u64>, ConfigError> {
        let expected = format!("{what} ({min}-{max})");
        self.parse(key, &expected, |t| {
            t.parse::<u64>().ok().filter(|n| (min..=max).contains(n))
        })
    }

    /// A path option, with `~` and `$VAR` expanded.
    pub fn path(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        match self.get(key)? {
            Some(v) if !v.text.is_empty() => self
                .env
                .expand_path(&v.text)
                .map(Some)
                .map_err(|m| v.invalid(format!("a path ({m})"))),
            _ => Ok(None),
        }
    }

    /// A list option.
    pub fn list(&self, key: &str) -> Result<Option<(Vec<String>, Value)>, ConfigError> {
        match self.get(key)? {
            None => Ok(None),
            Some(v) => {
                let items = parse_list(&v.text).map_err(|m| v.invalid(format!("a list ({m})")))?;
                Ok(Some((items, v)))
            }
        }
    }

    /// A command option.
    pub fn command(&self, key: &str) -> Result<Option<CommandSpec>, ConfigError> {
        match self.get(key)? {
            Some(v) if !v.text.trim().is_empty() => CommandSpec::parse(&v.text)
                .map(Some)
                .map_err(|m| v.invalid(format!("a command ({m})"))),
            _ => Ok(None),
        }
    }

    /// An option twinbox accepts only when off (offlineimap features it lacks).
    pub fn off_only(&self, key: &str, what: &str) -> Result<(), ConfigError> {
        match (self.bool(key)?, self.get(key)?) {
            (Some(true), Some(v)) => Err(v.error(ErrorKind::Unsupported(format!(
                "{what}; remove the option or set it to no"
            )))),
            _ => Ok(()),
        }
    }
}

/// A table of refused options with reasons.
type Refused = &'static [(&'static str, &'static str)];

/// Whether twinbox takes an option, for `import-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Taken as it is.
    Known,
    /// An offlineimap option twinbox deliberately lacks, with the reason.
    Unsupported(&'static str),
    /// Not an option of this kind of section.
    Unknown,
}

/// What twinbox makes of option `key` in section `section` (`repo_type` is a repository's
/// `type`, lower case, when known).
pub fn option_support(section: &str, repo_type: Option<&str>, key: &str) -> Support {
    type Tables = (Vec<&'static [&'static str]>, Vec<Refused>);
    let (known, unsupported): Tables = match classify(section) {
        Ok(Kind::General) => (vec![GENERAL], vec![UNSUPPORTED_GENERAL]),
        Ok(Kind::Mbnames) => (vec![MBNAMES], vec![UNSUPPORTED_MBNAMES]),
        Ok(Kind::Account(_)) => (vec![ACCOUNT], vec![UNSUPPORTED_ACCOUNT]),
        Ok(Kind::Repository(_)) => {
            let extra: &[&str] = match repo_type {
                Some("maildir") | Some("gmailmaildir") => MAILDIR,
                _ => IMAP,
            };
            if extra == MAILDIR && is_customflag(key) {
                return Support::Known;
            }
            (vec![REPOSITORY, extra], vec![UNSUPPORTED_REPOSITORY])
        }
        Ok(Kind::Defaults) => return Support::Known,
        Err(_) => return Support::Unknown,
    };
    if known.iter().any(|t| t.contains(&key)) {
        return Support::Known;
    }
    match unsupported
        .iter()
        .flat_map(|t| t.iter())
        .find(|(k, _)| *k == key)
    {
        Some((_, why)) => Support::Unsupported(why),
        None => Support::Unknown,
    }
}
