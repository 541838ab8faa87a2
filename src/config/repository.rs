//! Building `[Repository NAME]` sections: IMAP (and Gmail) and Maildir.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::imap::transport::{SshOptions, TlsOptions, TlsVersion};

use super::error::{ConfigError, ErrorKind, Place};
use super::folders::{FolderFilter, NameTrans};
use super::ini::Value;
use super::model::{
    AuthMechanism, ImapRepository, InboxLayout, MaildirEngine, MaildirRepository, Repository,
    RepositoryKind, Security, Tunnel,
};
use super::password::{PasswordSource, Secret};
use super::reader::{
    check_options, is_customflag, Reader, IMAP, MAILDIR, REPOSITORY, UNSUPPORTED_REPOSITORY,
};
use super::value::{parse_size, SIZE_EXPECTED};

/// Default `maxmessagesize`: 256 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 256 << 20;
/// Default `ssh_command`: dovecot's IMAP binary, which starts in the PREAUTH state.
pub const DEFAULT_SSH_COMMAND: &str = "/usr/lib/dovecot/imap";
/// Default `dovecot_imap_path`.
pub const DEFAULT_DOVECOT_IMAP: &str = "/usr/lib/dovecot/imap";
/// The host of `type = Gmail` repositories.
pub const GMAIL_HOST: &str = "imap.gmail.com";

/// A repository plus where its `nametrans` was given (for derivation errors).
pub(crate) struct Built {
    pub repository: Repository,
    pub nametrans_place: Option<Place>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Type {
    Imap,
    Gmail,
    Maildir,
}

/// Builds one repository section.
pub(crate) fn build_repository(r: &Reader<'_>, name: &str) -> Result<Built, ConfigError> {
    let type_value = r.required(
        "type",
        "every repository needs 'type = IMAP' or 'type = Maildir'",
    )?;
    let ty = match type_value.text.trim().to_ascii_lowercase().as_str() {
        "imap" => Type::Imap,
        "gmail" => Type::Gmail,
        "maildir" => Type::Maildir,
        "gmailmaildir" => {
            return Err(type_value.error(ErrorKind::Unsupported(
                "GmailMaildir (Gmail label synchronisation); use type = Maildir".to_string(),
            )))
        }
        _ => return Err(type_value.invalid("IMAP, Gmail or Maildir")),
    };
    let customflags = ty == Type::Maildir;
    let specific: &[&str] = if customflags { MAILDIR } else { IMAP };
    check_options(
        r.section,
        &[REPOSITORY, specific],
        &[UNSUPPORTED_REPOSITORY],
        customflags,
    )?;

    let folderfilter = match r.get("folderfilter")? {
        None => FolderFilter::default(),
        Some(v) => {
            python_check(&v, "folderfilter = INBOX, 'Sent Mail', !re:Archive/.*")?;
            let items = super::value::parse_list(&v.text)
                .map_err(|m| v.invalid(format!("a list of rules ({m})")))?;
            FolderFilter::from_items(&items).map_err(|m| v.error(ErrorKind::Folders(m)))?
        }
    };
    let folderincludes = r
        .list("folderincludes")?
        .map(|(l, _)| l)
        .unwrap_or_default();
    let (nametrans, nametrans_place) = match r.get("nametrans")? {
        None => (None, None),
        Some(v) => {
            python_check(&v, "nametrans = s/^INBOX\\.//")?;
            let nt = NameTrans::parse(&v.text).map_err(|m| v.error(ErrorKind::Folders(m)))?;
            (Some(nt), Some(v.place))
        }
    };
    let kind = match ty {
        Type::Maildir => RepositoryKind::Maildir(build_maildir(r)?),
        Type::Imap | Type::Gmail => {
            RepositoryKind::Imap(Box::new(build_imap(r, ty == Type::Gmail)?))
        }
    };
    let repository = Repository {
        name: name.to_string(),
        kind,
        readonly: r.flag("readonly", false)?,
        createfolders: r.flag("createfolders", true)?,
        sync_deletes: r.flag("sync_deletes", true)?,
        folderfilter,
        folderincludes,
        nametrans,
        place: r.section.place(),
    };
    Ok(Built {
        repository,
        nametrans_place,
    })
}

/// Refuses offlineimap's Python lambdas with a pointer to the rule syntax.
fn python_check(v: &Value, example: &str) -> Result<(), ConfigError> {
    if v.text.trim_start().starts_with("lambda") {
        return Err(v.error(ErrorKind::Unsupported(format!(
            "Python expressions; write twinbox rules instead, e.g. '{example}'"
        ))));
    }
    Ok(())
}

fn build_maildir(r: &Reader<'_>) -> Result<MaildirRepository, ConfigError> {
    let root = match r.path("localfolders")? {
        Some(p) => p,
        None => {
            return Err(r.place_of("localfolders").error(ErrorKind::Missing(
                "a Maildir repository needs its root directory".to_string(),
            )))
        }
    };
    let sep = r
        .parse("sep", "'/' or '.'", |t| match t {
            "/" => Some('/'),
            "." => Some('.'),
            _ => None,
        })?
        .unwrap_or('/');
    let dovecot = r
        .parse("maildir_engine", "native or dovecot", |t| {
            match t.to_ascii_lowercase().as_str() {
                "native" => Some(false),
                "dovecot" => Some(true),
                _ => None,
            }
        })?
        .unwrap_or(false);
    let imap_path = r.path("dovecot_imap_path")?;
    let engine = match (dovecot, imap_path) {
        (true, path) => MaildirEngine::Dovecot {
            imap_path: path.unwrap_or_else(|| PathBuf::from(DEFAULT_DOVECOT_IMAP)),
        },
        (false, None) => MaildirEngine::Native,
        (false, Some(_)) => {
            return Err(r.place_of("dovecot_imap_path").error(ErrorKind::Conflict(
                "dovecot_imap_path is used only with maildir_engine = dovecot".to_string(),
            )))
        }
    };
    let inbox = r
        .parse("inbox", "root or folder", |t| {
            match t.to_ascii_lowercase().as_str() {
                "root" => Some(InboxLayout::Root),
                "folder" => Some(InboxLayout::Folder),
                _ => None,
            }
        })?
        .unwrap_or(InboxLayout::Folder);
    r.off_only("restoreatime", "restoring folder access times")?;
    r.off_only(
        "utime_from_header",
        "setting file times from the Date header",
    )?;
    r.off_only(
        "filename_use_mail_timestamp",
        "naming files after the Date header",
    )?;
    let mut customflags = BTreeMap::new();
    for entry in r.section.entries.iter().filter(|e| is_customflag(&e.key)) {
        let v = r.required(&entry.key, "")?;
        let keyword = v.text.trim();
        if keyword.is_empty() || keyword.contains(char::is_whitespace) || keyword.starts_with('\\')
        {
            return Err(v.invalid("an IMAP keyword (no spaces, not a \\System flag)"));
        }
        let letter = entry.key.chars().last().unwrap_or('a');
        customflags.insert(letter, keyword.to_string());
    }
    Ok(MaildirRepository {
        root,
        sep,
        engine,
        fsync: r.bool("fsync")?,
        utf8foldernames: r.bool("utf8foldernames")?,
        inbox,
        customflags,
    })
}

fn build_imap(r: &Reader<'_>, gmail: bool) -> Result<ImapRepository, ConfigError> {
    let preauth = r.command("preauthtunnel")?;
    let transport = r.command("transporttunnel")?;
    let ssh_host = r.string("ssh_host")?;
    let tunnels = [
        ("preauthtunnel", preauth.is_some()),
        ("transporttunnel", transport.is_some()),
        ("ssh_host", ssh_host.is_some()),
    ];
    let chosen: Vec<&str> = tunnels.iter().filter(|t| t.1).map(|t| t.0).collect();
    if let [first, second, ..] = chosen.as_slice() {
        return Err(r.place_of(second).error(ErrorKind::Conflict(format!(
            "{first} and {second} cannot both be used: choose one way to reach the server"
        ))));
    }
    if ssh_host.is_none() {
        for key in [
            "ssh_user",
            "ssh_port",
            "ssh_identity",
            "ssh_command",
            "ssh_options",
        ] {
            if let Some(v) = r.get(key)? {
                return Err(v.error(ErrorKind::Conflict(format!(
                    "{key} is used only together with ssh_host"
                ))));
            }
        }
    }
    let tunnel = match (preauth, transport, ssh_host) {
        (Some(c), _, _) => Some(Tunnel::Preauth(c)),
        (_, Some(c), _) => Some(Tunnel::Transport(c)),
        (_, _, Some(host)) => Some(Tunnel::Ssh(SshOptions {
            host,
            user: r.string("ssh_user")?,
            port: r
                .number("ssh_port", 1, 65535, "a port number")?
                .map(|p| p as u16),
            identity: r.path("ssh_identity")?,
            options: r.list("ssh_options")?.map(|(l, _)| l).unwrap_or_default(),
            command: r
                .string("ssh_command")?
                .unwrap_or_else(|| DEFAULT_SSH_COMMAND.to_string()),
        })),
        _ => None,
    };
    let preauthenticated = matches!(tunnel, Some(Tunnel::Preauth(_) | Tunnel::Ssh(_)));
    let direct = tunnel.is_none();

    let host = r
        .string("remotehost")?
        .or_else(|| gmail.then(|| GMAIL_HOST.to_string()));
    let ssl = r.bool("ssl")?;
    let starttls = r.bool("starttls")?;
    let security = if preauthenticated {
        for key in ["ssl", "starttls"] {
            if r.bool(key)? == Some(true) {
                return Err(r.place_of(key).error(ErrorKind::Conflict(format!(
                    "{key} does not apply to a preauthtunnel or ssh connection"
                ))));
            }
        }
        Security::Plain
    } else {
        match (ssl, starttls) {
            (Some(true), Some(true)) => {
                let at = r
                    .get("starttls")?
                    .map(|v| v.place)
                    .unwrap_or_else(|| r.place_of("starttls"));
                return Err(at.error(ErrorKind::Conflict(
                    "ssl = yes and starttls = yes cannot both be set: choose TLS from the first byte \
                     (ssl, port 993) or STARTTLS on a plain connection (starttls, port 143)"
                        .to_string(),
                )));
            }
            (_, Some(true)) => Security::StartTls,
            (Some(true), _) => Security::Tls,
            (None, _) if direct => Security::Tls,
            (_, Some(false)) => Security::Plain,
            (_, None) if direct => Security::StartTls,
            (_, None) => Security::Plain,
        }
    };
    if host.is_none() && (direct || security != Security::Plain) {
        let why = if direct {
            "the IMAP server's host name is needed (or a preauthtunnel, transporttunnel or ssh_host)"
        } else {
            "the host name is needed to check the server's certificate over the tunnel"
        };
        return Err(r
            .place_of("remotehost")
            .error(ErrorKind::Missing(why.to_string())));
    }
    let port = match r.number("remoteport", 1, 65535, "a port number")? {
        Some(_) if !direct => {
            return Err(r.place_of("remoteport").error(ErrorKind::Conflict(
                "remoteport does not apply when a tunnel or ssh reaches the server".to_string(),
            )))
        }
        Some(p) => p as u16,
        None if security == Security::Tls => 993,
        None => 143,
    };

    let user = r.string("remoteuser")?;
    if gmail && user.is_none() {
        return Err(r.place_of("remoteuser").error(ErrorKind::Missing(
            "a Gmail repository needs the account's address".to_string(),
        )));
    }
    let user_place = r
        .get("remoteuser")?
        .map(|v| v.place)
        .unwrap_or_else(|| r.section.place());
    let (password, password_place) = password_source(r, preauthenticated)?;

    let tls = tls_options(r)?;
    let auth_mechanisms = match r.list("auth_mechanisms")? {
        None => vec![AuthMechanism::Plain, AuthMechanism::Login],
        Some((items, v)) => {
            let mut out = Vec::new();
            for item in items {
                out.push(match item.to_ascii_uppercase().as_str() {
                    "PLAIN" => AuthMechanism::Plain,
                    "LOGIN" => AuthMechanism::Login,
                    "CRAM-MD5" | "GSSAPI" | "XOAUTH2" | "OAUTHBEARER" | "EXTERNAL"
                    | "SCRAM-SHA-1" | "SCRAM-SHA-256" | "DIGEST-MD5" | "NTLM" => {
                        return Err(v.error(ErrorKind::Unsupported(format!(
                            "the {item} mechanism (twinbox supports PLAIN and LOGIN)"
                        ))))
                    }
                    _ => return Err(v.invalid("a list of SASL mechanisms: PLAIN, LOGIN")),
                });
            }
            if out.is_empty() {
                return Err(v.invalid("a list of SASL mechanisms: PLAIN, LOGIN"));
            }
            out
        }
    };
    let seconds = |key: &str| -> Result<Option<Duration>, ConfigError> {
        Ok(r.number(key, 1, 86_400, "a number of seconds")?
            .map(Duration::from_secs))
    };
    Ok(ImapRepository {
        host,
        port,
        user,
        remote_identity: r.string("remote_identity")?,
        password,
        security,
        tls,
        auth_mechanisms,
        tunnel,
        compression: r.bool("usecompression")?,
        disable_extensions: r
            .list("disable_extensions")?
            .map(|(l, _)| l.iter().map(|c| c.trim().to_ascii_uppercase()).collect())
            .unwrap_or_default(),
        send_id: r.flag("sendid", false)?,
        maxconnections: r
            .number("maxconnections", 1, 64, "a number of connections")?
            .unwrap_or(1) as usize,
        holdconnectionopen: r.flag("holdconnectionopen", false)?,
        keepalive: seconds("keepalive")?,
        expunge: r.flag("expunge", true)?,
        idlefolders: r.list("idlefolders")?.map(|(l, _)| l).unwrap_or_default(),
        reference: r.string("reference")?,
        namespaces: match r.get("namespaces")? {
            None => Default::default(),
            Some(v) => crate::imap::namespace::NamespaceChoice::parse(&v.text)
                .map_err(|_| v.invalid("a list of namespaces: personal, shared, other"))?,
        },
        singlethreadperfolder: r.flag("singlethreadperfolder", false)?,
        maxmessagesize: r
            .parse("maxmessagesize", SIZE_EXPECTED, |t| {
                parse_size(t).filter(|n| *n >= 1024)
            })?
            .unwrap_or(DEFAULT_MAX_MESSAGE_SIZE),
        subscribedonly: r.flag("subscribedonly", false)?,
        retrycount: r
            .number("retrycount", 0, 100, "a number of attempts")?
            .unwrap_or(2) as u32,
        ipv6: r.bool("ipv6")?,
        gmail,
        password_place,
        user_place,
    })
}

/// The password source and the place its errors point at.
fn password_source(
    r: &Reader<'_>,
    preauthenticated: bool,
) -> Result<(PasswordSource, Place), ConfigError> {
    let mut given: Vec<Value> = Vec::new();
    for key in ["remotepass", "remotepassfile", "remotepasscmd"] {
        if let Some(v) = r.get(key)? {
            given.push(v);
        }
    }
    let name = |v: &Value| v.place.option.clone().unwrap_or_default();
    match given.as_slice() {
        [] if preauthenticated => Ok((PasswordSource::NotNeeded, r.section.place())),
        [] => Ok((PasswordSource::NetrcOrPrompt, r.section.place())),
        [v] if preauthenticated => Err(v.error(ErrorKind::Conflict(
            "a preauthtunnel or ssh connection is already logged in: no password is used"
                .to_string(),
        ))),
        [v] => {
            let source = match name(v).as_str() {
                "remotepass" => PasswordSource::Inline(Secret::new(v.text.clone())),
                "remotepassfile" => PasswordSource::File(
                    r.path("remotepassfile")?
                        .ok_or_else(|| v.invalid("the path of a file holding the password"))?,
                ),
                _ => PasswordSource::Command(
                    r.command("remotepasscmd")?
                        .ok_or_else(|| v.invalid("a command printing the password"))?,
                ),
            };
            Ok((source, v.place.clone()))
        }
        [first, second, ..] => Err(second.error(ErrorKind::Conflict(format!(
            "{} and {} cannot both be given: choose one password source",
            name(first),
            name(second)
        )))),
    }
}

fn tls_options(r: &Reader<'_>) -> Result<TlsOptions, ConfigError> {
    let ca_file = match r.get("sslcacertfile")? {
        Some(v) if v.text.trim() == "OS-DEFAULT" => None,
        Some(_) => {
            let path = r.path("sslcacertfile")?;
            if let Some(p) = &path {
                if !p.is_file() {
                    let v = r.required("sslcacertfile", "")?;
                    return Err(
                        v.invalid("an existing PEM file of CA certificates (or OS-DEFAULT)")
                    );
                }
            }
            path
        }
        None => None,
    };
    let mut fingerprints = Vec::new();
    if let Some((items, v)) = r.list("cert_fingerprint")? {
        for item in items {
            let hex: String = item
                .chars()
                .filter(|c| *c != ':')
                .collect::<String>()
                .to_ascii_lowercase();
            if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(
                    v.invalid("SHA-256 fingerprints in hex (colons allowed), separated by commas")
                );
            }
            if hex.len() != 64 {
                return Err(v.error(ErrorKind::Unsupported(format!(
                    "a {}-digit fingerprint: twinbox checks SHA-256 fingerprints (64 hex digits; \
                     'openssl x509 -noout -fingerprint -sha256')",
                    hex.len()
                ))));
            }
            fingerprints.push(hex);
        }
    }
    let mut min_version = TlsVersion::Tls12;
    for key in ["tls_level", "ssl_version"] {
        if let Some(v) = r.get(key)? {
            let version = match v
                .text
                .trim()
                .to_ascii_lowercase()
                .replace(['.', 'v'], "_")
                .as_str()
            {
                "tls1_2" | "tls_1_2" | "tls_secure" | "tls_no_ssl" | "tls_compat" | "ssl23" => {
                    TlsVersion::Tls12
                }
                "tls1_3" | "tls_1_3" => TlsVersion::Tls13,
                "tls1" | "tls1_0" | "tls1_1" | "tls_1_0" | "tls_1_1" | "ssl2" | "ssl3" => {
                    return Err(v.error(ErrorKind::Unsupported(
                        "TLS versions before 1.2; use tls1.2 (the default) or tls1.3".to_string(),
                    )))
                }
                _ => return Err(v.invalid("tls1.2 or tls1.3 (the minimum TLS version)")),
            };
            if version == TlsVersion::Tls13 {
                min_version = TlsVersion::Tls13;
            }
        }
    }
    Ok(TlsOptions {
        ca_file,
        fingerprints,
        min_version,
    })
}
