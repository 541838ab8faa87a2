//! Configuration errors, each naming where the offending text came from.

use std::fmt;
use std::sync::Arc;

/// Where a configuration value (or section) came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of a configuration file. `line` is 1-based; 0 means the file as a whole.
    File {
        /// The file's name as shown to the user (`$HOME` abbreviated to `~`).
        path: Arc<str>,
        /// 1-based line number, or 0 for the whole file.
        line: usize,
    },
    /// A `-k [SECTION:]OPTION=VALUE` command-line override.
    Override,
    /// A built-in default value.
    Default,
    /// twinbox itself (e.g. looking for the configuration file).
    Program,
}

impl Origin {
    /// The line number, when the origin is a line of a file.
    pub fn line(&self) -> Option<usize> {
        match self {
            Origin::File { line, .. } if *line > 0 => Some(*line),
            _ => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line: 0 } => write!(f, "{path}"),
            Origin::File { path, line } => write!(f, "{path}:{line}"),
            Origin::Override => f.write_str("-k"),
            Origin::Default => f.write_str("built-in default"),
            Origin::Program => f.write_str("twinbox"),
        }
    }
}

/// Where an error points: a file line (or `-k`), and the section and option concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file and line, or `-k`.
    pub origin: Origin,
    /// The section, e.g. `Repository Remote`.
    pub section: Option<String>,
    /// The option, e.g. `remoteport`.
    pub option: Option<String>,
}

impl Place {
    /// A place with only an origin.
    pub fn at(origin: Origin) -> Place {
        Place {
            origin,
            section: None,
            option: None,
        }
    }

    /// A place naming a section.
    pub fn section(origin: Origin, section: &str) -> Place {
        Place {
            origin,
            section: Some(section.to_string()),
            option: None,
        }
    }

    /// A place naming a section and an option.
    pub fn option(origin: Origin, section: &str, option: &str) -> Place {
        Place {
            origin,
            section: Some(section.to_string()),
            option: Some(option.to_string()),
        }
    }

    /// Builds an error of `kind` at this place.
    pub fn error(&self, kind: ErrorKind) -> ConfigError {
        ConfigError {
            place: Box::new(self.clone()),
            kind,
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.origin)?;
        match (&self.section, &self.option) {
            (Some(s), Some(o)) => write!(f, "[{s}] option '{o}': "),
            (Some(s), None) => write!(f, "[{s}]: "),
            (None, Some(o)) => write!(f, "option '{o}': "),
            (None, None) => Ok(()),
        }
    }
}

/// What is wrong, without the place (see [`ConfigError`]).
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("cannot read the configuration: {0}")]
    Io(std::io::Error),
    /// A line is neither a section header, an option, a comment nor a continuation.
    #[error("{0}")]
    Syntax(String),
    /// An option twinbox does not know in this kind of section.
    #[error("unknown option{}{}", did_you_mean(.suggestion), note_text(.note))]
    UnknownOption {
        /// A known option with a similar name.
        suggestion: Option<String>,
        /// Why the option is not known here (e.g. it belongs to another section kind).
        note: Option<String>,
    },
    /// A section whose name is not `general`, `mbnames`, `DEFAULT`, `Account NAME` or
    /// `Repository NAME`.
    #[error("unknown kind of section; expected [general], [mbnames], [DEFAULT], [Account NAME] or [Repository NAME]{}", did_you_mean(.suggestion))]
    UnknownSection {
        /// A valid header with a similar spelling.
        suggestion: Option<String>,
    },
    /// The same option twice in one section.
    #[error("given twice in this section, at lines {first} and {second}")]
    DuplicateOption {
        /// Line of the first occurrence.
        first: usize,
        /// Line of the second occurrence.
        second: usize,
    },
    /// The same section header twice.
    #[error("section given twice, at lines {first} and {second}")]
    DuplicateSection {
        /// Line of the first header.
        first: usize,
        /// Line of the second header.
        second: usize,
    },
    /// A value of the wrong form.
    #[error("expected {expected}, got '{got}'")]
    InvalidValue {
        /// What a valid value looks like.
        expected: String,
        /// The value given (never a password).
        got: String,
    },
    /// A required option is absent.
    #[error("missing; {0}")]
    Missing(String),
    /// An option (or value) offlineimap has and twinbox deliberately does not.
    #[error("not supported in twinbox: {0}")]
    Unsupported(String),
    /// A `%(name)s` reference that cannot be expanded.
    #[error("{0}")]
    Interpolation(String),
    /// Options that cannot be used together.
    #[error("{0}")]
    Conflict(String),
    /// A name that refers to nothing (an account or repository without a section).
    #[error("{0}")]
    Reference(String),
    /// A password (or user name) could not be obtained.
    #[error("{0}")]
    Password(String),
    /// A `nametrans` or `folderfilter` problem found when loading.
    #[error("{0}")]
    Folders(String),
    /// No configuration file was found.
    #[error("{0}")]
    NotFound(String),
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("; did you mean '{s}'?"),
        None => String::new(),
    }
}

fn note_text(note: &Option<String>) -> String {
    match note {
        Some(n) => format!(" ({n})"),
        None => String::new(),
    }
}

/// A configuration error: where ([`Place`]) and what ([`ErrorKind`]).
///
/// Displays as `FILE:LINE: [SECTION] option 'NAME': MESSAGE` (or `-k: ...` for overrides).
#[derive(Debug, thiserror::Error)]
#[error("{place}{kind}")]
pub struct ConfigError {
    /// Where the error is (boxed to keep `Result`s small).
    pub place: Box<Place>,
    /// What the error is.
    pub kind: ErrorKind,
}

impl ConfigError {
    /// An error about a file as a whole (e.g. it cannot be read).
    pub fn file(path: &str, kind: ErrorKind) -> ConfigError {
        Place::at(Origin::File {
            path: Arc::from(path),
            line: 0,
        })
        .error(kind)
    }
}
