//! Passwords: the [`Secret`] type that never prints, the sources a password can come from,
//! and their lazy resolution.
//!
//! Sources, in the order offlineimap documents them: `remotepass` (in the file),
//! `remotepassfile` (first line of a file), `remotepasscmd` (first line of a command's
//! standard output — twinbox's stand-in for offlineimap's Python `remotepasseval` and
//! mbsync's `PassCmd`), and when none is configured `~/.netrc` (then `/etc/netrc`) by host
//! and user, and as a last resort a prompt on the terminal with echo off.

use std::fmt;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::Stdio;

use super::command::CommandSpec;
use super::error::{ConfigError, ErrorKind, Place};
use super::value::Env;

/// A password (or other secret). `Debug` and `Display` print `<redacted>`; the text is
/// only reachable through [`Secret::expose`], and is overwritten when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret text, for the one place that needs it (the LOGIN/AUTHENTICATE command).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(std::mem::take(&mut self.0).into_bytes());
    }
}

/// Best-effort overwrite of a buffer that held a secret.
fn wipe(mut bytes: Vec<u8>) {
    bytes.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&bytes);
}

/// Where an IMAP repository's password comes from.
#[derive(Debug, Clone)]
pub enum PasswordSource {
    /// `remotepass`: written in the configuration.
    Inline(Secret),
    /// `remotepassfile`: the first line of this file.
    File(PathBuf),
    /// `remotepasscmd`: the first line of this command's standard output.
    Command(CommandSpec),
    /// Nothing configured: `~/.netrc` / `/etc/netrc`, then a terminal prompt.
    NetrcOrPrompt,
    /// The connection needs no login (`preauthtunnel`, ssh transport).
    NotNeeded,
}

/// What password resolution may consult besides the configuration.
#[derive(Debug, Clone)]
pub struct PasswordContext {
    /// netrc files to search, in order (the first that exists is used).
    pub netrc_files: Vec<PathBuf>,
    /// Whether a terminal prompt is allowed as a last resort.
    pub allow_prompt: bool,
}

impl PasswordContext {
    /// `~/.netrc` then `/etc/netrc`; prompting when standard input is a terminal.
    pub fn from_env(env: &Env) -> PasswordContext {
        let mut netrc_files = Vec::new();
        if let Some(home) = env.home() {
            netrc_files.push(home.join(".netrc"));
        }
        netrc_files.push(PathBuf::from("/etc/netrc"));
        PasswordContext {
            netrc_files,
            allow_prompt: std::io::stdin().is_terminal(),
        }
    }

    /// The netrc entry for `host` and `user` from the first existing netrc file.
    pub fn netrc_entry(
        &self,
        host: &str,
        user: Option<&str>,
    ) -> Result<Option<NetrcEntry>, String> {
        for path in &self.netrc_files {
            match std::fs::read_to_string(path) {
                Ok(text) => return Ok(netrc_lookup(&text, host, user)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            }
        }
        Ok(None)
    }
}

/// The login and password a netrc file gives for a machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetrcEntry {
    /// `login`, if given.
    pub login: Option<String>,
    /// `password`, if given.
    pub password: Option<Secret>,
}

/// Finds the entry for `host` (and `user`, when known) in netrc text (see netrc(5)):
/// the first `machine HOST` entry whose login is `user` or absent, else the `default`
/// entry. `macdef` bodies are skipped; tokens may be double-quoted.
pub fn netrc_lookup(text: &str, host: &str, user: Option<&str>) -> Option<NetrcEntry> {
    let tokens = netrc_tokens(text);
    let mut entries: Vec<(Option<String>, NetrcEntry)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].as_str() {
            "machine" => {
                entries.push((tokens.get(i + 1).cloned(), NetrcEntry::default()));
                i += 2;
            }
            "default" => {
                entries.push((None, NetrcEntry::default()));
                i += 1;
            }
            key @ ("login" | "password" | "account") => {
                let value = tokens.get(i + 1).cloned();
                if let (Some((_, entry)), Some(value)) = (entries.last_mut(), value) {
                    match key {
                        "login" => entry.login = Some(value),
                        "password" => entry.password = Some(Secret::new(value)),
                        _ => {}
                    }
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    let fits = |e: &NetrcEntry| match (user, &e.login) {
        (Some(u), Some(l)) => u == l,
        _ => true,
    };
    let found = entries
        .iter()
        .find(|(m, e)| m.as_deref() == Some(host) && fits(e))
        .or_else(|| entries.iter().find(|(m, e)| m.is_none() && fits(e)));
    found.map(|(_, e)| e.clone())
}

fn netrc_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut chars = line.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let Some(&first) = chars.peek() else { break };
            let mut token = String::new();
            if first == '"' {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => token.extend(chars.next()),
                        c => token.push(c),
                    }
                }
            } else if first == '#' && tokens.last().is_none_or(|t: &String| t != "password") {
                break;
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    token.push(c);
                    chars.next();
                }
            }
            let macdef = token == "macdef";
            tokens.push(token);
            if macdef {
                // The macro body runs up to the next empty line.
                for body in lines.by_ref() {
                    if body.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
        }
    }
    tokens
}

/// Runs a password command: standard error goes to the user's terminal, standard output
/// is read (never logged) and its first line is the password.
pub fn run_password_command(cmd: &CommandSpec) -> Result<Secret, String> {
    let output = cmd
        .to_command()
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run `{cmd}`: {e}"))?;
    let stdout = output.stdout;
    if !output.status.success() {
        wipe(stdout);
        return Err(format!(
            "`{cmd}` failed ({}); its error output, if any, is above",
            output.status
        ));
    }
    first_line(stdout).ok_or_else(|| format!("`{cmd}` printed no password on its first line"))
}

/// Reads the first line of a password file.
pub fn read_password_file(path: &std::path::Path) -> Result<Secret, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    first_line(bytes).ok_or_else(|| format!("{} has no password on its first line", path.display()))
}

/// The first line of `bytes` (without `\r\n`) as a secret, if it is non-empty UTF-8.
fn first_line(bytes: Vec<u8>) -> Option<Secret> {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let mut line = &bytes[..end];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    let result = std::str::from_utf8(line)
        .ok()
        .filter(|s| !s.is_empty())
        .map(Secret::new);
    wipe(bytes);
    result
}

/// Asks for a password on the controlling terminal, with echo off.
pub fn prompt_password(prompt: &str) -> std::io::Result<Secret> {
    use std::os::fd::AsRawFd;

    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let fd = tty.as_raw_fd();
    let mut term = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: `fd` is an open descriptor of the terminal and `term` is valid for writes.
    if unsafe { libc::tcgetattr(fd, term.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: tcgetattr succeeded, so it initialised `term`.
    let original = unsafe { term.assume_init() };
    let mut silent = original;
    silent.c_lflag &= !libc::ECHO;
    silent.c_lflag |= libc::ECHONL;

    struct Restore(i32, libc::termios);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores settings read from the same open descriptor.
            unsafe { libc::tcsetattr(self.0, libc::TCSANOW, &self.1) };
        }
    }
    // SAFETY: `fd` is open and `silent` is a valid termios value.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &silent) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let _restore = Restore(fd, original);
    (&tty).write_all(prompt.as_bytes())?;
    (&tty).flush()?;
    let mut line = String::new();
    BufReader::new(&tty).read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    wipe(line.into_bytes());
    Ok(Secret::new(password))
}

/// Resolves a password from `source`; `place` is the option errors point at.
pub(crate) fn resolve(
    source: &PasswordSource,
    host: Option<&str>,
    user: Option<&str>,
    place: &Place,
    ctx: &PasswordContext,
) -> Result<Secret, ConfigError> {
    let fail = |m: String| place.error(ErrorKind::Password(m));
    match source {
        PasswordSource::Inline(secret) => Ok(secret.clone()),
        PasswordSource::File(path) => read_password_file(path).map_err(fail),
        PasswordSource::Command(cmd) => run_password_command(cmd).map_err(fail),
        PasswordSource::NotNeeded => Err(fail(
            "this repository logs in through a tunnel and uses no password".to_string(),
        )),
        PasswordSource::NetrcOrPrompt => {
            if let Some(host) = host {
                if let Some(entry) = ctx.netrc_entry(host, user).map_err(fail)? {
                    if let Some(password) = entry.password {
                        return Ok(password);
                    }
                }
            }
            if !ctx.allow_prompt {
                return Err(fail(
                    "no password configured and no terminal to ask on: set remotepass, \
                     remotepassfile or remotepasscmd, or add the host to ~/.netrc"
                        .to_string(),
                ));
            }
            let who = match (user, host) {
                (Some(u), Some(h)) => format!("{u}@{h}"),
                (None, Some(h)) => h.to_string(),
                (Some(u), None) => u.to_string(),
                (None, None) => "the IMAP server".to_string(),
            };
            prompt_password(&format!("Password for {who}: "))
                .map_err(|e| fail(format!("cannot ask for the password on the terminal: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.to_string(), "<redacted>");
        assert_eq!(
            format!("{:?}", PasswordSource::Inline(s.clone())),
            "Inline(Secret(<redacted>))"
        );
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn netrc() {
        let text = "machine imap.a.org login alice password p1\n\
                    # a comment\n\
                    machine imap.a.org\n  login bob\n  password \"p 2\"\n\
                    macdef init\ncd /pub\n\n\
                    default login anon password dflt\n";
        let e = netrc_lookup(text, "imap.a.org", Some("bob")).unwrap();
        assert_eq!(e.login.as_deref(), Some("bob"));
        assert_eq!(e.password.unwrap().expose(), "p 2");
        let e = netrc_lookup(text, "imap.a.org", None).unwrap();
        assert_eq!(e.login.as_deref(), Some("alice"));
        let e = netrc_lookup(text, "other.org", None).unwrap();
        assert_eq!(e.password.unwrap().expose(), "dflt");
        assert_eq!(netrc_lookup("machine x login y", "z", None), None);
    }

    #[test]
    fn first_lines() {
        assert_eq!(
            first_line(b"pw\r\nsecond\n".to_vec()).unwrap().expose(),
            "pw"
        );
        assert!(first_line(b"\nsecond".to_vec()).is_none());
        assert!(first_line(vec![0xff, b'\n']).is_none());
    }
}
