//! From [`RawConfig`] to [`Config`]: `[general]`, accounts, `[mbnames]`, and the checks
//! that span sections (references, shared repositories, name translation).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::error::{ConfigError, ErrorKind, Origin, Place};
use super::folders::{FolderFilter, FolderMapping, NameTrans};
use super::ini::{RawConfig, RawSection};
use super::model::{
    Account, Config, General, Mbnames, QuickSync, Repository, RepositoryKind, Since, Ui,
};
use super::reader::{
    check_options, classify, Kind, Reader, ACCOUNT, GENERAL, MBNAMES, UNSUPPORTED_ACCOUNT,
    UNSUPPORTED_GENERAL, UNSUPPORTED_MBNAMES,
};
use super::repository::{build_repository, Built};
use super::value::{
    parse_list, parse_size, parse_string_literal, suggest, Date, Env, SIZE_EXPECTED,
};

/// Default `socktimeout`.
pub const DEFAULT_SOCKTIMEOUT: Duration = Duration::from_secs(120);

/// Validates `raw` and builds the typed configuration.
pub fn build(raw: &RawConfig, env: &Env) -> Result<Config, ConfigError> {
    let mut general_section = None;
    let mut mbnames_section = None;
    let mut account_sections: Vec<(&str, &RawSection)> = Vec::new();
    let mut repository_sections: Vec<(&str, &RawSection)> = Vec::new();
    for section in &raw.sections {
        let list = match classify(&section.name).map_err(|k| section.place().error(k))? {
            Kind::General => {
                general_section = Some(section);
                continue;
            }
            Kind::Mbnames => {
                mbnames_section = Some(section);
                continue;
            }
            Kind::Defaults => continue,
            Kind::Account(name) => (name, &mut account_sections),
            Kind::Repository(name) => (name, &mut repository_sections),
        };
        let (name, sections) = list;
        if let Some((_, first)) = sections.iter().find(|(n, _)| *n == name) {
            return Err(section.place().error(ErrorKind::DuplicateSection {
                first: first.origin.line().unwrap_or(0),
                second: section.origin.line().unwrap_or(0),
            }));
        }
        sections.push((name, section));
    }
    let reader = |section| Reader { raw, section, env };

    if let Some(s) = general_section {
        check_options(s, &[GENERAL], &[UNSUPPORTED_GENERAL], false)?;
    }
    for (_, s) in &account_sections {
        check_options(s, &[ACCOUNT], &[UNSUPPORTED_ACCOUNT], false)?;
    }
    if let Some(s) = mbnames_section {
        check_options(s, &[MBNAMES], &[UNSUPPORTED_MBNAMES], false)?;
    }

    let empty = RawSection {
        name: "general".to_string(),
        origin: Origin::Default,
        entries: Vec::new(),
    };
    let general_reader = reader(general_section.unwrap_or(&empty));
    let mut general = build_general(&general_reader)?;

    let mut repositories = BTreeMap::new();
    let mut nametrans_places = BTreeMap::new();
    for (name, section) in &repository_sections {
        let Built {
            repository,
            nametrans_place,
        } = build_repository(&reader(section), name)?;
        if let Some(p) = nametrans_place {
            nametrans_places.insert(name.to_string(), p);
        }
        repositories.insert(name.to_string(), repository);
    }
    check_shared_roots(&repository_sections, &repositories)?;

    let mut all_accounts = Vec::new();
    for (name, section) in &account_sections {
        all_accounts.push(build_account(
            &reader(section),
            name,
            &repositories,
            &nametrans_places,
        )?);
    }
    check_shared_locals(&all_accounts)?;

    let accounts = match general_reader.list("accounts")? {
        None => {
            general.accounts = all_accounts.iter().map(|a| a.name.clone()).collect();
            all_accounts
        }
        Some((names, v)) => {
            let mut chosen = Vec::new();
            for name in &names {
                if chosen.iter().any(|a: &Account| &a.name == name) {
                    return Err(v.invalid("a list of distinct account names"));
                }
                let Some(account) = all_accounts.iter().find(|a| &a.name == name) else {
                    let hint = suggest(name, all_accounts.iter().map(|a| a.name.as_str()))
                        .map(|s| format!("; did you mean '{s}'?"))
                        .unwrap_or_default();
                    return Err(v.error(ErrorKind::Reference(format!(
                        "account '{name}' has no [Account {name}] section{hint}"
                    ))));
                };
                chosen.push(account.clone());
            }
            general.accounts = names;
            chosen
        }
    };
    if accounts.is_empty() {
        return Err(Place::at(Origin::File {
            path: raw.source.clone(),
            line: 0,
        })
        .error(ErrorKind::Missing(
            "no account to sync: add an [Account NAME] section (and list it in [general] accounts)"
                .to_string(),
        )));
    }
    let mbnames = match mbnames_section {
        Some(s) => build_mbnames(&reader(s))?,
        None => None,
    };
    let inert = Config::find_inert(&repositories);
    Ok(Config {
        general,
        accounts,
        repositories,
        mbnames,
        inert,
    })
}

fn build_general(r: &Reader<'_>) -> Result<General, ConfigError> {
    let metadata = match r.path("metadata")? {
        Some(p) => p,
        None => default_metadata(r.env).ok_or_else(|| {
            Place::option(Origin::Default, "general", "metadata").error(ErrorKind::Missing(
                "no default: $HOME is not set; give the directory for twinbox's state".to_string(),
            ))
        })?,
    };
    let ui = match r.list("ui")? {
        None => vec![Ui::Tty, Ui::Basic],
        Some((items, v)) => {
            let mut out = Vec::new();
            for item in &items {
                let last = item.rsplit('.').next().unwrap_or(item).to_ascii_lowercase();
                out.push(match last.as_str() {
                    "ttyui" | "tty" | "blinkenlights" => Ui::Tty,
                    "basic" => Ui::Basic,
                    "quiet" => Ui::Quiet,
                    "machineui" | "machine" => Ui::Machine,
                    _ => {
                        return Err(
                            v.invalid("user interfaces among TTYUI, Basic, Quiet, MachineUI")
                        )
                    }
                });
            }
            if out.is_empty() {
                return Err(v.invalid("user interfaces among TTYUI, Basic, Quiet, MachineUI"));
            }
            out
        }
    };
    let socktimeout = match r.number("socktimeout", 0, 86_400, "a number of seconds")? {
        None => Some(DEFAULT_SOCKTIMEOUT),
        Some(0) => None,
        Some(s) => Some(Duration::from_secs(s)),
    };
    Ok(General {
        accounts: Vec::new(),
        maxsyncaccounts: r
            .number("maxsyncaccounts", 1, 64, "a number of accounts")?
            .unwrap_or(1) as usize,
        metadata,
        ui,
        fsync: r.flag("fsync", true)?,
        socktimeout,
        ignore_readonly: r.flag("ignore-readonly", false)?,
    })
}

/// `$XDG_DATA_HOME/twinbox`, else `~/.local/share/twinbox`.
pub fn default_metadata(env: &Env) -> Option<PathBuf> {
    match env.var("XDG_DATA_HOME") {
        Some(dir) => Some(PathBuf::from(dir).join("twinbox")),
        None => env.home().map(|h| h.join(".local/share/twinbox")),
    }
}

fn build_account(
    r: &Reader<'_>,
    name: &str,
    repositories: &BTreeMap<String, Repository>,
    nametrans_places: &BTreeMap<String, Place>,
) -> Result<Account, ConfigError> {
    let mut refs = Vec::new();
    for key in ["localrepository", "remoterepository"] {
        let v = r.required(
            key,
            "an account needs a localrepository and a remoterepository",
        )?;
        let wanted = v.text.trim();
        if !repositories.contains_key(wanted) {
            let hint = suggest(wanted, repositories.keys().map(String::as_str))
                .map(|s| format!("; did you mean '{s}'?"))
                .unwrap_or_default();
            return Err(v.error(ErrorKind::Reference(format!(
                "there is no [Repository {wanted}] section{hint}"
            ))));
        }
        refs.push((wanted.to_string(), v));
    }
    let (local, _) = refs.remove(0);
    let (remote, remote_v) = refs.remove(0);
    if local == remote {
        return Err(remote_v.error(ErrorKind::Conflict(
            "the local and remote repositories must differ".to_string(),
        )));
    }
    let remote_repo = &repositories[&remote];
    let local_repo = &repositories[&local];
    if let RepositoryKind::Maildir(_) = remote_repo.kind {
        return Err(remote_v.error(ErrorKind::Conflict(format!(
            "[Repository {remote}] is a Maildir; the remote repository must be of type IMAP or Gmail"
        ))));
    }

    let autorefresh = r
        .parse(
            "autorefresh",
            "a number of minutes, such as 5 or 0.5",
            |t| {
                t.parse::<f64>()
                    .ok()
                    .filter(|m| m.is_finite() && *m > 0.0 && *m <= 525_600.0)
            },
        )?
        .map(|m| Duration::from_secs_f64(m * 60.0));
    let quick = r
        .parse(
            "quick",
            "0 (never), -1 (always) or a number of quick syncs",
            |t| match t.parse::<i64>().ok()? {
                0 => Some(QuickSync::Never),
                -1 => Some(QuickSync::Always),
                n if n > 0 => u32::try_from(n).ok().map(QuickSync::Between),
                _ => None,
            },
        )?
        .unwrap_or(QuickSync::Never);
    let maxage = r.parse(
        "maxage",
        "a number of days or a date YYYY-MM-DD",
        |t| match t.parse::<u32>() {
            Ok(days) if days > 0 => Some(Since::Days(days)),
            Ok(_) => None,
            Err(_) => Date::parse(t).map(Since::Date),
        },
    )?;
    let startdate = r.parse("startdate", "a date YYYY-MM-DD", Date::parse)?;
    let since = match (maxage, startdate) {
        (Some(_), Some(_)) => {
            return Err(r.place_of("startdate").error(ErrorKind::Conflict(
                "maxage and startdate cannot both be given".to_string(),
            )))
        }
        (m, s) => m.or(s.map(Since::Date)),
    };
    r.off_only("synclabels", "Gmail label synchronisation")?;
    r.off_only(
        "maildir-windows-compatible",
        "Windows-compatible Maildir file names",
    )?;
    if let Some(v) = r.get("status_backend")? {
        if !v.text.trim().eq_ignore_ascii_case("sqlite") {
            return Err(v.error(ErrorKind::Unsupported(
                "status backends other than sqlite (twinbox always keeps its state in SQLite)"
                    .to_string(),
            )));
        }
    }

    let folders = folder_mapping(remote_repo, local_repo, nametrans_places)?;
    let account = Account {
        name: name.to_string(),
        local_repository: local,
        remote_repository: remote,
        autorefresh,
        quick,
        presynchook: r.command("presynchook")?,
        postsynchook: r.command("postsynchook")?,
        since,
        maxsize: r.parse("maxsize", SIZE_EXPECTED, |t| {
            parse_size(t).filter(|n| *n > 0)
        })?,
        utf8foldernames: r.bool("utf8foldernames")?,
        folders,
        place: r.section.place(),
    };
    account
        .folders
        .check_round_trip(&remote_repo.folderincludes, &local_repo.folderincludes)
        .map_err(|e| {
            account
                .place
                .error(ErrorKind::Folders(format!("folderincludes: {e}")))
        })?;
    Ok(account)
}

/// Pairs the two repositories' folder options, deriving a missing nametrans direction.
fn folder_mapping(
    remote: &Repository,
    local: &Repository,
    places: &BTreeMap<String, Place>,
) -> Result<FolderMapping, ConfigError> {
    let derive = |from: &Repository, to: &Repository, nt: &NameTrans| {
        nt.invert().map_err(|rule| {
            let place = places
                .get(&from.name)
                .cloned()
                .unwrap_or_else(|| from.place.clone());
            place.error(ErrorKind::Folders(format!(
                "the rule '{rule}' cannot be reversed automatically; give [Repository {}] a \
                 nametrans translating its names back",
                to.name
            )))
        })
    };
    let (remote_to_local, local_to_remote) = match (&remote.nametrans, &local.nametrans) {
        (None, None) => (NameTrans::default(), NameTrans::default()),
        (Some(r), Some(l)) => (r.clone(), l.clone()),
        (Some(r), None) => (r.clone(), derive(remote, local, r)?),
        (None, Some(l)) => (derive(local, remote, l)?, l.clone()),
    };
    Ok(FolderMapping {
        remote_to_local,
        local_to_remote,
        remote_filter: remote.folderfilter.clone(),
        local_filter: local.folderfilter.clone(),
        remote_includes: remote.folderincludes.clone(),
        local_includes: local.folderincludes.clone(),
    })
}

/// Two Maildir repositories on one directory would mix their state (the manual's
/// "sharing a maildir with multiple IMAP servers" pitfall).
fn check_shared_roots(
    sections: &[(&str, &RawSection)],
    repositories: &BTreeMap<String, Repository>,
) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<&PathBuf, &str> = BTreeMap::new();
    for (name, section) in sections {
        if let Some(RepositoryKind::Maildir(m)) = repositories.get(*name).map(|r| &r.kind) {
            if let Some(first) = seen.insert(&m.root, name) {
                let origin = section
                    .entry("localfolders")
                    .map(|e| e.origin.clone())
                    .unwrap_or_else(|| section.origin.clone());
                return Err(Place::option(origin, &section.name, "localfolders").error(ErrorKind::Conflict(
                    format!("[Repository {first}] already uses this directory; give each repository its own"),
                )));
            }
        }
    }
    Ok(())
}

/// Two accounts syncing into one local repository would fight over it.
fn check_shared_locals(accounts: &[Account]) -> Result<(), ConfigError> {
    for (i, a) in accounts.iter().enumerate() {
        if let Some(first) = accounts[..i]
            .iter()
            .find(|b| b.local_repository == a.local_repository)
        {
            let mut place = a.place.clone();
            place.option = Some("localrepository".to_string());
            return Err(place.error(ErrorKind::Conflict(format!(
                "[Repository {}] is already the local repository of account '{}'; give each account its own",
                a.local_repository, first.name
            ))));
        }
    }
    Ok(())
}

fn build_mbnames(r: &Reader<'_>) -> Result<Option<Mbnames>, ConfigError> {
    let enabled = r.flag("enabled", false)?;
    let literal = |key: &str, default: &str| -> Result<String, ConfigError> {
        match r.get(key)? {
            None => Ok(default.to_string()),
            Some(v) => {
                parse_string_literal(&v.text).map_err(|m| v.invalid(format!("a string ({m})")))
            }
        }
    };
    let header = literal("header", "mailboxes ")?;
    let sep = literal("sep", " ")?;
    let footer = literal("footer", "\n")?;
    let peritem = match r.raw.get_raw(r.section, "peritem") {
        None => "+%(accountname)s/%(foldername)s".to_string(),
        Some(v) => {
            let text =
                parse_string_literal(&v.text).map_err(|m| v.invalid(format!("a string ({m})")))?;
            check_peritem(&text).map_err(|m| v.error(ErrorKind::Interpolation(m)))?;
            text
        }
    };
    let folderfilter = match r.get("folderfilter")? {
        None => FolderFilter::default(),
        Some(v) => {
            let items =
                parse_list(&v.text).map_err(|m| v.invalid(format!("a list of rules ({m})")))?;
            FolderFilter::from_items(&items).map_err(|m| v.error(ErrorKind::Folders(m)))?
        }
    };
    let filename = r.path("filename")?;
    let incremental = r.flag("incremental", false)?;
    if !enabled {
        return Ok(None);
    }
    let filename = filename.ok_or_else(|| {
        r.place_of("filename").error(ErrorKind::Missing(
            "an enabled [mbnames] needs the file to write".to_string(),
        ))
    })?;
    Ok(Some(Mbnames {
        filename,
        header,
        peritem,
        sep,
        footer,
        incremental,
        folderfilter,
    }))
}

/// Checks that `peritem` uses only the placeholders twinbox fills in.
fn check_peritem(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(pos) = rest.find("%(") {
        let after = &rest[pos + 2..];
        let end = after.find(")s").ok_or("unterminated '%(' placeholder")?;
        let name = &after[..end];
        if !matches!(name, "accountname" | "foldername" | "localfolders") {
            return Err(format!(
                "unknown placeholder '%({name})s' (known: %(accountname)s, %(foldername)s, %(localfolders)s)"
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}
