//! Parsers for option values: booleans, numbers, sizes, dates, lists, paths, and the
//! environment they are expanded against. They return a description of what was
//! expected on failure; the caller adds the place.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variables the configuration is expanded against (`~`, `$VAR`,
/// `$XDG_CONFIG_HOME`, ...). A snapshot, so that tests can inject their own.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// A snapshot of the process environment.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment holding exactly `vars`.
    pub fn with_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of a variable; empty values count as unset.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The home directory (`$HOME`).
    pub fn home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }

    /// `path` with the home directory shown as `~`, for messages.
    pub fn abbreviate(&self, path: &Path) -> String {
        if let Some(home) = self.home() {
            if let Ok(rest) = path.strip_prefix(&home) {
                if rest.as_os_str().is_empty() {
                    return "~".to_string();
                }
                return format!("~/{}", rest.display());
            }
        }
        path.display().to_string()
    }

    /// Expands a leading `~` or `~/` to `$HOME`, then `$VAR` and `${VAR}` (offlineimap's
    /// order: tilde first, then variables). `~user` is refused.
    pub fn expand_path(&self, text: &str) -> Result<PathBuf, String> {
        let tilded = if text == "~" || text.starts_with("~/") {
            let home = self
                .var("HOME")
                .ok_or_else(|| "'~' cannot be expanded: $HOME is not set".to_string())?;
            format!("{home}{}", &text[1..])
        } else if text.starts_with('~') {
            return Err("'~user' paths are not supported; write the full path".to_string());
        } else {
            text.to_string()
        };
        Ok(PathBuf::from(self.expand_vars(&tilded)?))
    }

    fn expand_vars(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                let end = braced
                    .find('}')
                    .ok_or_else(|| "unterminated '${' in path".to_string())?;
                (&braced[..end], end + 2)
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            if name.is_empty() {
                out.push('$');
                rest = after;
                continue;
            }
            let value = self
                .var(name)
                .ok_or_else(|| format!("environment variable ${name} is not set"))?;
            out.push_str(value);
            rest = &after[consumed..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Parses a boolean: yes/no, true/false, on/off, 1/0, case-insensitive.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// What [`parse_bool`] accepts, for messages.
pub const BOOL_EXPECTED: &str = "yes or no (also true/false, on/off, 1/0)";

/// Parses a byte count, optionally with a binary suffix: `k`/`K`/`KiB` (1024), `M`/`MiB`,
/// `G`/`GiB`, with an optional trailing `B`.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits_end == 0 {
        return None;
    }
    let number: u64 = t[..digits_end].parse().ok()?;
    let unit = t[digits_end..].trim().to_ascii_lowercase();
    let factor: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// What [`parse_size`] accepts, for messages.
pub const SIZE_EXPECTED: &str = "a size in bytes, optionally with a suffix k, M or G (×1024)";

/// A calendar date (for `maxage` and `startdate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year, e.g. 2024.
    pub year: u16,
    /// Month, 1-12.
    pub month: u8,
    /// Day of the month, 1-31.
    pub day: u8,
}

impl Date {
    /// Parses `YYYY-MM-DD`, checking that the day exists.
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.trim().split('-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        if !(y.chars().chain(m.chars()).chain(d.chars())).all(|c| c.is_ascii_digit()) {
            return None;
        }
        let (year, month, day): (u16, u8, u8) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (year >= 1900 && (1..=days).contains(&day)).then_some(Date { year, month, day })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Splits a list value into items.
///
/// Items are separated by commas and/or whitespace (newlines included). An item may be
/// quoted, wholly or in part: `'...'` is literal, `"..."` knows the escapes `\"` and `\\`;
/// outside quotes a backslash is an ordinary character (handy for regexes). A value written
/// as a Python list of strings, `['INBOX', 'Sent Mail']`, is accepted as well.
pub fn parse_list(text: &str) -> Result<Vec<String>, String> {
    let mut body = text.trim();
    if let Some(inner) = body.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
        let t = inner.trim_start();
        if t.is_empty() || t.starts_with('\'') || t.starts_with('"') {
            body = inner;
        }
    }
    let mut items = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut item = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == ',' {
                break;
            }
            chars.next();
            match c {
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => item.push(c),
                        None => return Err("unterminated ' quote".to_string()),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => item.push(c),
                            Some(c) => {
                                item.push('\\');
                                item.push(c);
                            }
                            None => return Err("unterminated \" quote".to_string()),
                        },
                        Some(c) => item.push(c),
                        None => return Err("unterminated \" quote".to_string()),
                    }
                },
                c => item.push(c),
            }
        }
        items.push(item);
    }
    Ok(items)
}

/// Unquotes a string written as a Python string literal (`"mailboxes "`, `'\n'`), as
/// offlineimap's `[mbnames]` options are; a value without quotes is taken as it is.
pub fn parse_string_literal(text: &str) -> Result<String, String> {
    let t = text.trim();
    let quote = match t.chars().next() {
        Some(q @ ('"' | '\'')) => q,
        _ => return Ok(t.to_string()),
    };
    let inner = t
        .strip_prefix(quote)
        .and_then(|s| s.strip_suffix(quote))
        .filter(|_| t.len() >= 2)
        .ok_or_else(|| format!("unterminated {quote} quote"))?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some(c @ ('\\' | '\'' | '"')) => out.push(c),
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    Ok(out)
}

/// Edit distance between two strings, case-insensitive, counting a swap of two adjacent
/// characters as one edit (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate most similar to `word`, if any is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_list("a, b c,,d").unwrap(), ["a", "b", "c", "d"]);
        assert_eq!(
            parse_list("['INBOX', \"Sent Mail\"]").unwrap(),
            ["INBOX", "Sent Mail"]
        );
        assert_eq!(parse_list("[Gmail]/Sent").unwrap(), ["[Gmail]/Sent"]);
        assert_eq!(
            parse_list("!'Sent Mail' re:INBOX\\..*").unwrap(),
            ["!Sent Mail", "re:INBOX\\..*"]
        );
        assert!(parse_list("'open").is_err());
        assert!(parse_list("").unwrap().is_empty());
    }

    #[test]
    fn sizes_dates_bools() {
        assert_eq!(parse_size("2000000"), Some(2_000_000));
        assert_eq!(parse_size("10k"), Some(10240));
        assert_eq!(parse_size("256 MiB"), Some(256 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("5T"), None);
        assert_eq!(
            Date::parse("2024-02-29").map(|d| d.to_string()).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(Date::parse("2023-02-29"), None);
        assert_eq!(Date::parse("2023-2-1"), None);
        assert_eq!(parse_bool("On"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn paths_and_suggestions() {
        let env = Env::with_vars([("HOME", "/home/u"), ("MAIL", "/var/mail")]);
        assert_eq!(
            env.expand_path("~/Mail").unwrap(),
            PathBuf::from("/home/u/Mail")
        );
        assert_eq!(
            env.expand_path("${MAIL}/x$").unwrap(),
            PathBuf::from("/var/mail/x$")
        );
        assert!(env.expand_path("$NOPE/x").unwrap_err().contains("NOPE"));
        assert!(env.expand_path("~bob/x").is_err());
        assert_eq!(
            env.abbreviate(Path::new("/home/u/.config/t")),
            "~/.config/t"
        );
        assert_eq!(
            suggest("remtehost", ["remotehost", "remoteport"]),
            Some("remotehost")
        );
        assert_eq!(suggest("zzz", ["remotehost"]), None);
        assert_eq!(suggest("Tset", ["Test"]), Some("Test"));
        assert_eq!(
            parse_string_literal("\"mailboxes \"").unwrap(),
            "mailboxes "
        );
        assert_eq!(parse_string_literal("'\\n'").unwrap(), "\n");
    }
}
