//! Tests of the configuration layer as a whole (unit tests of the parts sit beside them).

use super::*;

mod conf_files;
mod errors;
mod folders;
mod model;
mod overrides;
mod passwords;
mod paths;

/// The test environment: a fixed home directory.
fn env() -> Env {
    Env::with_vars([("HOME", "/home/t")])
}

/// Parses `text` as if it were `~/.config/twinbox/config`.
fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse_str(text, "~/.config/twinbox/config", &env())
}

/// The error message `text` yields.
fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("expected an error from:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Lines 1-16: one account, a Maildir local and an IMAP remote; append to extend the
/// `[Repository Remote]` section from line 17 on.
const BASE: &str = "[general]
accounts = Test

[Account Test]
localrepository = Local
remoterepository = Remote

[Repository Local]
type = Maildir
localfolders = ~/Mail

[Repository Remote]
type = IMAP
remotehost = imap.example.org
remoteuser = alice
remotepass = hunter2
";

/// [`BASE`] with `extra` lines appended (the first at line 17).
fn base_with(extra: &str) -> String {
    format!("{BASE}{extra}\n")
}

/// The IMAP options of repository `name`.
fn imap<'a>(config: &'a Config, name: &str) -> &'a ImapRepository {
    match &config.repositories[name].kind {
        RepositoryKind::Imap(i) => i,
        RepositoryKind::Maildir(_) => panic!("{name} is a Maildir"),
    }
}

/// The Maildir options of repository `name`.
fn maildir<'a>(config: &'a Config, name: &str) -> &'a MaildirRepository {
    match &config.repositories[name].kind {
        RepositoryKind::Maildir(m) => m,
        RepositoryKind::Imap(_) => panic!("{name} is IMAP"),
    }
}
