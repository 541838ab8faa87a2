//! Configuration in offlineimap's shape, without Python.
//!
//! The file keeps offlineimap's sections and option names (`[general]`, `[Account NAME]`,
//! `[Repository NAME]`, `[mbnames]`, `[DEFAULT]`), its INI dialect and `%(name)s`
//! interpolation ([`ini`]). What offlineimap expressed in Python has a declarative form:
//! passwords come from `remotepasscmd` ([`password`]), folder selection and renaming from
//! `folderfilter` rules and sed-style `nametrans` substitutions ([`folders`]). Unknown options
//! and sections are errors with a "did you mean" hint; every error names the file, the line,
//! the section and the option ([`ConfigError`]). `conf/twinbox.conf` documents every option.
//!
//! Loading: [`default_config_path`] finds the file (`-c` overrides it), [`RawConfig::read`]
//! parses it, [`apply_override`] applies `-k` overrides, [`Config::from_raw`] validates and
//! types it; [`Config::load`] does all of that.
//!
//! `[DEFAULT]` holds variables for interpolation; where one of its names is an option of a
//! section, it also serves as that option's default there (Python `ConfigParser` semantics).

use std::path::{Path, PathBuf};

mod build;
pub mod command;
pub mod error;
pub mod folders;
pub mod ini;
mod model;
pub mod password;
mod reader;
mod repository;
pub mod value;

#[cfg(test)]
mod tests;

pub use build::{default_metadata, DEFAULT_SOCKTIMEOUT};
pub use command::CommandSpec;
pub use error::{ConfigError, ErrorKind, Origin, Place};
pub use folders::{FolderFilter, FolderMapping, FolderNameError, FolderPair, NameTrans, Side};
pub use ini::{apply_override, RawConfig, RawEntry, RawSection};
pub use model::{
    Account, AuthMechanism, Config, General, ImapRepository, InboxLayout, MaildirEngine,
    MaildirRepository, Mbnames, QuickSync, Repository, RepositoryKind, Security, Since, Tunnel, Ui,
};
pub use password::{PasswordContext, PasswordSource, Secret};
pub use reader::{option_support, Support};
pub use repository::{
    DEFAULT_DOVECOT_IMAP, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_SSH_COMMAND, GMAIL_HOST,
};
pub use value::{Date, Env};

impl Config {
    /// Reads the file at `path`, applies the `-k` `overrides` in order, and validates the
    /// result against the process environment.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
        let env = Env::from_process();
        let mut raw = RawConfig::read(path, &env)?;
        for spec in overrides {
            apply_override(&mut raw, spec)?;
        }
        Config::from_raw(&raw, &env)
    }

    /// Validates a parsed file (after overrides) and builds the typed configuration.
    pub fn from_raw(raw: &RawConfig, env: &Env) -> Result<Config, ConfigError> {
        build::build(raw, env)
    }

    /// Parses and validates configuration text; `source` names it in messages.
    pub fn parse_str(text: &str, source: &str, env: &Env) -> Result<Config, ConfigError> {
        Config::from_raw(&RawConfig::parse(text, source)?, env)
    }
}

/// The places a configuration file is looked for, in order:
/// `$XDG_CONFIG_HOME/twinbox/config` (or `~/.config/twinbox/config`), then `~/.twinboxrc`.
pub fn config_path_candidates(env: &Env) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    match (env.var("XDG_CONFIG_HOME"), env.home()) {
        (Some(xdg), _) => paths.push(PathBuf::from(xdg).join("twinbox/config")),
        (None, Some(home)) => paths.push(home.join(".config/twinbox/config")),
        (None, None) => {}
    }
    if let Some(home) = env.home() {
        paths.push(home.join(".twinboxrc"));
    }
    paths
}

/// The configuration file to use: `explicit` (from `-c`) if given, else the first existing
/// file of [`config_path_candidates`].
pub fn default_config_path(explicit: Option<&Path>, env: &Env) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let candidates = config_path_candidates(env);
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| env.abbreviate(p)).collect();
    Err(
        Place::at(Origin::Program).error(ErrorKind::NotFound(format!(
            "no configuration file: tried {} (use -c FILE to name one)",
            if tried.is_empty() {
                "nothing ($HOME is not set)".to_string()
            } else {
                tried.join(" and ")
            }
        ))),
    )
}
