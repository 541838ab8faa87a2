//! The INI layer: offlineimap's Python `ConfigParser` dialect, parsed without Python.
//!
//! - `[section]` headers (section names are case-sensitive; `[DEFAULT]` is special);
//! - `option = value` or `option: value` (the first `=` or `:` splits; option names are
//!   case-insensitive and stored in lower case; surrounding whitespace is trimmed);
//! - whole-line comments starting with `#` or `;` (possibly indented). There are no inline
//!   comments: `remotepass = a#b` is the password `a#b`;
//! - continuation lines: a line starting with whitespace continues the previous option's
//!   value (joined with a newline); blank lines inside such a value are kept;
//! - `%(name)s` interpolation from the same section, then `[DEFAULT]`; `%%` is a literal `%`.
//!
//! Every value remembers its file and line. Duplicate sections and duplicate options in a
//! section are errors (offlineimap silently kept the last one).

use std::path::Path;
use std::sync::Arc;

use super::error::{ConfigError, ErrorKind, Origin, Place};
use super::value::{suggest, Env};

/// How deep `%(name)s` references may nest (as in Python's `ConfigParser`).
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// One `option = value` entry, not yet interpolated.
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// The option name in lower case.
    pub key: String,
    /// The value as written (continuation lines joined with `\n`), before interpolation.
    pub value: String,
    /// Where the option was given.
    pub origin: Origin,
}

/// One `[section]` with its entries in file order.
#[derive(Debug, Clone)]
pub struct RawSection {
    /// The section name as written between the brackets (trimmed).
    pub name: String,
    /// Where the header was.
    pub origin: Origin,
    /// The entries in file order.
    pub entries: Vec<RawEntry>,
}

impl RawSection {
    /// The entry for `key` (lower case), if given in this section.
    pub fn entry(&self, key: &str) -> Option<&RawEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// A [`Place`] naming this section.
    pub fn place(&self) -> Place {
        Place::section(self.origin.clone(), &self.name)
    }
}

/// A parsed configuration file: sections and raw values, before any typing.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    /// The file name as shown in messages.
    pub source: Arc<str>,
    /// The sections in file order (including `[DEFAULT]`, if present).
    pub sections: Vec<RawSection>,
}

/// An interpolated value with its place, ready to be typed.
#[derive(Debug, Clone)]
pub struct Value {
    /// The text after `%(name)s` interpolation.
    pub text: String,
    /// Where it came from (file line or `-k`, section, option).
    pub place: Place,
}

impl Value {
    /// An "expected ..., got '...'" error at this value.
    pub fn invalid(&self, expected: impl Into<String>) -> ConfigError {
        self.place.error(ErrorKind::InvalidValue {
            expected: expected.into(),
            got: self.text.clone(),
        })
    }

    /// An error of `kind` at this value.
    pub fn error(&self, kind: ErrorKind) -> ConfigError {
        self.place.error(kind)
    }
}

impl RawConfig {
    /// Reads and parses the file at `path`; messages show it with `~` for `$HOME`.
    pub fn read(path: &Path, env: &Env) -> Result<RawConfig, ConfigError> {
        let shown = env.abbreviate(path);
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::file(&shown, ErrorKind::Io(e)))?;
        RawConfig::parse(&text, &shown)
    }

    /// Parses configuration text; `source` names it in messages.
    pub fn parse(text: &str, source: &str) -> Result<RawConfig, ConfigError> {
        Parser {
            config: RawConfig {
                source: Arc::from(source),
                sections: Vec::new(),
            },
            open: None,
        }
        .run(text)
    }

    /// The section called `name`, if present.
    pub fn section(&self, name: &str) -> Option<&RawSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The `[DEFAULT]` section, if present.
    pub fn defaults(&self) -> Option<&RawSection> {
        self.section("DEFAULT")
    }

    /// The raw entry for `key` in `section`, falling back to `[DEFAULT]`.
    pub fn lookup<'a>(
        &'a self,
        section: &'a RawSection,
        key: &str,
    ) -> Option<(&'a RawSection, &'a RawEntry)> {
        if let Some(e) = section.entry(key) {
            return Some((section, e));
        }
        let defaults = self.defaults()?;
        defaults.entry(key).map(|e| (defaults, e))
    }

    /// The value of `key` in `section` (or `[DEFAULT]`), interpolated.
    pub fn get(&self, section: &RawSection, key: &str) -> Result<Option<Value>, ConfigError> {
        let Some((home, entry)) = self.lookup(section, key) else {
            return Ok(None);
        };
        let place = Place::option(entry.origin.clone(), &home.name, key);
        let text = self
            .interpolate(section, &entry.value, 0)
            .map_err(|m| place.error(ErrorKind::Interpolation(m)))?;
        Ok(Some(Value { text, place }))
    }

    /// The value of `key` in `section` (or `[DEFAULT]`) without interpolation, for options
    /// whose `%(...)s` are placeholders of their own (`[mbnames] peritem`).
    pub fn get_raw(&self, section: &RawSection, key: &str) -> Option<Value> {
        let (home, entry) = self.lookup(section, key)?;
        Some(Value {
            text: entry.value.clone(),
            place: Place::option(entry.origin.clone(), &home.name, key),
        })
    }

    fn interpolate(
        &self,
        section: &RawSection,
        value: &str,
        depth: usize,
    ) -> Result<String, String> {
        if !value.contains('%') {
            return Ok(value.to_string());
        }
        if depth >= MAX_INTERPOLATION_DEPTH {
            return Err(format!(
                "'%(...)s' references nest more than {MAX_INTERPOLATION_DEPTH} deep (a loop?)"
            ));
        }
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(pos) = rest.find('%') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(r) = after.strip_prefix('%') {
                out.push('%');
                rest = r;
            } else if let Some(r) = after.strip_prefix('(') {
                let close = r.find(')').ok_or_else(|| {
                    "unterminated '%(' reference; write '%%' for a literal '%'".to_string()
                })?;
                let name = r[..close].trim().to_ascii_lowercase();
                let r = r[close + 1..].strip_prefix('s').ok_or_else(|| {
                    format!("'%({name})' must be followed by 's', as in '%({name})s'")
                })?;
                let (_, entry) = self.lookup(section, &name).ok_or_else(|| {
                    format!(
                        "'%({name})s' refers to an option '{name}' that is in neither [{}] nor [DEFAULT]",
                        section.name
                    )
                })?;
                out.push_str(&self.interpolate(section, &entry.value, depth + 1)?);
                rest = r;
            } else {
                return Err(
                    "'%' must be followed by '%' or '(': write '%%' for a literal '%'".to_string(),
                );
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// An option being read, possibly continued on the following lines.
struct OpenOption {
    lines: Vec<String>,
    pending_blank: usize,
}

struct Parser {
    config: RawConfig,
    open: Option<OpenOption>,
}

impl Parser {
    fn origin(&self, line: usize) -> Origin {
        Origin::File {
            path: self.config.source.clone(),
            line,
        }
    }

    fn close_option(&mut self) {
        if let Some(open) = self.open.take() {
            if let Some(entry) = self
                .config
                .sections
                .last_mut()
                .and_then(|s| s.entries.last_mut())
            {
                entry.value = open.lines.join("\n").trim_end().to_string();
            }
        }
    }

    fn run(mut self, text: &str) -> Result<RawConfig, ConfigError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw_line) in text.lines().enumerate() {
            let lineno = index + 1;
            let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
            let stripped = line.trim();
            if stripped.starts_with('#') || stripped.starts_with(';') {
                continue;
            }
            if stripped.is_empty() {
                if let Some(open) = &mut self.open {
                    open.pending_blank += 1;
                }
                continue;
            }
            let indented = line.starts_with(|c: char| c.is_whitespace());
            if indented {
                if let Some(open) = &mut self.open {
                    for _ in 0..open.pending_blank {
                        open.lines.push(String::new());
                    }
                    open.pending_blank = 0;
                    open.lines.push(stripped.to_string());
                    continue;
                }
            }
            self.close_option();
            if stripped.starts_with('[') {
                self.header(stripped, lineno)?;
            } else {
                self.option(stripped, lineno)?;
            }
        }
        self.close_option();
        Ok(self.config)
    }

    fn header(&mut self, stripped: &str, lineno: usize) -> Result<(), ConfigError> {
        let origin = self.origin(lineno);
        let name = stripped
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Place::at(origin.clone()).error(ErrorKind::Syntax(format!(
                    "a section header must be '[NAME]', got '{}'",
                    shorten(stripped)
                )))
            })?;
        if let Some(first) = self.config.section(name) {
            return Err(
                Place::section(origin, name).error(ErrorKind::DuplicateSection {
                    first: first.origin.line().unwrap_or(0),
                    second: lineno,
                }),
            );
        }
        self.config.sections.push(RawSection {
            name: name.to_string(),
            origin,
            entries: Vec::new(),
        });
        Ok(())
    }

    fn option(&mut self, stripped: &str, lineno: usize) -> Result<(), ConfigError> {
        let origin = self.origin(lineno);
        let Some(split) = stripped.find(['=', ':']) else {
            let mut place = Place::at(origin);
            place.section = self.config.sections.last().map(|s| s.name.clone());
            return Err(place.error(ErrorKind::Syntax(format!(
                "expected 'option = value' or a [section] header, got '{}' \
                 (a continuation line must start with whitespace)",
                shorten(stripped)
            ))));
        };
        let key = stripped[..split].trim().to_ascii_lowercase();
        let value = stripped[split + 1..].trim().to_string();
        let Some(section) = self.config.sections.last_mut() else {
            return Err(Place::at(origin).error(ErrorKind::Syntax(
                "option outside any section; the file must start with a section header such as [general]"
                    .to_string(),
            )));
        };
        if key.is_empty() {
            return Err(
                Place::section(origin, &section.name).error(ErrorKind::Syntax(
                    "an option name is missing before '=' or ':'".to_string(),
                )),
            );
        }
        if let Some(first) = section.entry(&key) {
            return Err(Place::option(origin, &section.name, &key).error(
                ErrorKind::DuplicateOption {
                    first: first.origin.line().unwrap_or(0),
                    second: lineno,
                },
            ));
        }
        section.entries.push(RawEntry {
            key,
            value: value.clone(),
            origin,
        });
        self.open = Some(OpenOption {
            lines: vec![value],
            pending_blank: 0,
        });
        Ok(())
    }
}

/// The first 60 characters of a line, for messages.
fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(60).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// Applies a `-k [SECTION:]OPTION=VALUE` override (offlineimap's syntax).
///
/// Without a section the option goes to `[general]`. Underscores in the section name stand
/// for spaces (`Account_Personal` is `[Account Personal]`); a section whose own name has
/// underscores matches too. The section must exist, except `[general]`, `[mbnames]` and
/// `[DEFAULT]`, which are created if needed. The value replaces any value from the file and
/// is validated like a file line when the configuration is built; its errors say `-k`.
pub fn apply_override(raw: &mut RawConfig, spec: &str) -> Result<(), ConfigError> {
    let err = |section: Option<&str>, msg: String| {
        let mut place = Place::at(Origin::Override);
        place.section = section.map(str::to_string);
        place.error(ErrorKind::Syntax(msg))
    };
    let Some((lhs, value)) = spec.split_once('=') else {
        return Err(err(
            None,
            format!("expected [SECTION:]OPTION=VALUE, got '{}'", shorten(spec)),
        ));
    };
    let (section_spec, key) = match lhs.rsplit_once(':') {
        Some((s, k)) => (s.trim(), k.trim()),
        None => ("general", lhs.trim()),
    };
    let key = key.to_ascii_lowercase();
    if key.is_empty() || section_spec.is_empty() {
        return Err(err(
            None,
            format!("expected [SECTION:]OPTION=VALUE, got '{}'", shorten(spec)),
        ));
    }
    let wanted = section_spec.replace(' ', "_");
    let matches: Vec<usize> = raw
        .sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.name.replace(' ', "_") == wanted)
        .map(|(i, _)| i)
        .collect();
    let index = match matches.as_slice() {
        [i] => *i,
        [] if matches!(section_spec, "general" | "mbnames" | "DEFAULT") => {
            raw.sections.push(RawSection {
                name: section_spec.to_string(),
                origin: Origin::Override,
                entries: Vec::new(),
            });
            raw.sections.len() - 1
        }
        [] => {
            let names: Vec<String> = raw
                .sections
                .iter()
                .map(|s| s.name.replace(' ', "_"))
                .collect();
            let hint = suggest(&wanted, names.iter().map(String::as_str))
                .map(|s| format!("; did you mean '{s}'?"))
                .unwrap_or_default();
            return Err(err(
                None,
                format!(
                    "no section [{}] in the configuration{hint}",
                    section_spec.replace('_', " ")
                ),
            ));
        }
        _ => {
            return Err(err(
                None,
                format!("section name '{section_spec}' is ambiguous: several sections match it"),
            ))
        }
    };
    let section = &mut raw.sections[index];
    let value = value.trim().to_string();
    match section.entries.iter_mut().find(|e| e.key == key) {
        Some(entry) => {
            entry.value = value;
            entry.origin = Origin::Override;
        }
        None => section.entries.push(RawEntry {
            key,
            value,
            origin: Origin::Override,
        }),
    }
    Ok(())
}
