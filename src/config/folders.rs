//! Folder selection (`folderfilter`, `folderincludes`) and name translation (`nametrans`)
//! without Python, and the round-trip check that makes translation loops impossible.
//!
//! **folderfilter** is a list of rules (list syntax: comma/whitespace separated, quotes for
//! names with spaces). A rule is a folder name (exact match) or `re:REGEX` (the regex must
//! match the whole name); a leading `!` makes it an exclude rule. A folder is selected when
//! it matches no exclude rule and, if there are include rules, matches at least one.
//!
//! **nametrans** is a list of sed-style substitutions `s/REGEX/REPLACEMENT/FLAGS`, applied in
//! order, each to the result of the previous one. Any punctuation character may replace `/`
//! as the delimiter (`s|^INBOX/||`); `\` + delimiter stands for the delimiter itself. Rules
//! are separated by newlines (a multi-line value), `,` or `;`. In the replacement, `$1`,
//! `${1}` and `\1` insert groups, `$$` is a literal `$`, `\\` a literal backslash. Flags:
//! `g` replaces every match (default: the first), `i` ignores case, `q` stops after this
//! rule if it matched (so `s/^INBOX$/INBOX/q` protects INBOX from later rules).
//!
//! On a remote repository `nametrans` maps remote names to local names; on a local
//! repository it maps local names to remote names. When only one side has rules, the other
//! direction is derived if every rule has a simple invertible form (a literal prefix,
//! suffix, whole name or substring replaced by a literal); otherwise both must be given.

use std::collections::BTreeMap;
use std::fmt;

use regex::{Captures, Regex, RegexBuilder};

/// One folderfilter rule.
#[derive(Debug, Clone)]
pub struct FilterRule {
    /// Whether the rule excludes (`!`) rather than includes.
    pub exclude: bool,
    pattern: Pattern,
}

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Regex(Regex),
}

impl FilterRule {
    fn matches(&self, name: &str) -> bool {
        match &self.pattern {
            Pattern::Exact(n) => n == name,
            Pattern::Regex(r) => r.is_match(name),
        }
    }
}

/// Which folders of a repository take part (`folderfilter`). The default selects all.
#[derive(Debug, Clone, Default)]
pub struct FolderFilter {
    rules: Vec<FilterRule>,
}

impl FolderFilter {
    /// Builds a filter from rule items (already split, e.g. by [`super::value::parse_list`]).
    pub fn from_items<S: AsRef<str>>(items: &[S]) -> Result<FolderFilter, String> {
        let mut rules = Vec::new();
        for item in items {
            let item = item.as_ref();
            let (exclude, body) = match item.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, item),
            };
            let pattern = match body.strip_prefix("re:") {
                Some(re) => Pattern::Regex(
                    Regex::new(&format!("^(?:{re})$"))
                        .map_err(|e| format!("bad regex in rule '{item}': {}", one_line(&e)))?,
                ),
                None if body.is_empty() => return Err(format!("empty rule '{item}'")),
                None => Pattern::Exact(body.to_string()),
            };
            rules.push(FilterRule { exclude, pattern });
        }
        Ok(FolderFilter { rules })
    }

    /// Whether there are no rules (everything is selected).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the folder `name` is selected.
    pub fn accepts(&self, name: &str) -> bool {
        let mut has_include = false;
        let mut included = false;
        for rule in &self.rules {
            if rule.exclude {
                if rule.matches(name) {
                    return false;
                }
            } else {
                has_include = true;
                included = included || rule.matches(name);
            }
        }
        !has_include || included
    }
}

/// A regex error on one line, for messages.
fn one_line(e: &regex::Error) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Group(usize),
}

/// One `s/REGEX/REPLACEMENT/FLAGS` rule.
#[derive(Debug, Clone)]
pub struct SubstRule {
    text: String,
    pattern: String,
    regex: Regex,
    replacement: Vec<Part>,
    global: bool,
    icase: bool,
    stop: bool,
}

impl SubstRule {
    fn new(pattern: String, replacement: Vec<Part>, flags: &str) -> Result<SubstRule, String> {
        let (global, icase, stop) = (
            flags.contains('g'),
            flags.contains('i'),
            flags.contains('q'),
        );
        let regex = RegexBuilder::new(&pattern)
            .case_insensitive(icase)
            .build()
            .map_err(|e| format!("bad regex '{pattern}': {}", one_line(&e)))?;
        for part in &replacement {
            if let Part::Group(n) = part {
                if *n >= regex.captures_len() {
                    return Err(format!(
                        "the replacement refers to group {n} but '{pattern}' has {} group(s)",
                        regex.captures_len() - 1
                    ));
                }
            }
        }
        let mut rule = SubstRule {
            text: String::new(),
            pattern,
            regex,
            replacement,
            global,
            icase,
            stop,
        };
        rule.text = rule.render(flags);
        Ok(rule)
    }

    /// The rule written back in `s/.../.../` form.
    fn render(&self, flags: &str) -> String {
        let mut repl = String::new();
        for part in &self.replacement {
            match part {
                Part::Literal(l) => repl.push_str(
                    &l.replace('\\', "\\\\")
                        .replace('$', "$$")
                        .replace('/', "\\/"),
                ),
                Part::Group(n) => repl.push_str(&format!("${{{n}}}")),
            }
        }
        format!("s/{}/{repl}/{flags}", self.pattern.replace('/', "\\/"))
    }

    fn apply(&self, name: &str) -> Option<String> {
        if !self.regex.is_match(name) {
            return None;
        }
        let expand = |caps: &Captures| {
            let mut out = String::new();
            for part in &self.replacement {
                match part {
                    Part::Literal(l) => out.push_str(l),
                    Part::Group(n) => out.push_str(caps.get(*n).map_or("", |m| m.as_str())),
                }
            }
            out
        };
        Some(if self.global {
            self.regex.replace_all(name, expand).into_owned()
        } else {
            self.regex.replace(name, expand).into_owned()
        })
    }

    /// The inverse rule, when this one replaces a literal by a literal (a `q` rule only
    /// when it replaces a whole name).
    fn invert(&self) -> Option<SubstRule> {
        if self.icase {
            return None;
        }
        let (start, end, from) = literal_pattern(&self.pattern)?;
        if self.stop && !(start && end) {
            return None;
        }
        let to = match self.replacement.as_slice() {
            [] => String::new(),
            [Part::Literal(l)] => l.clone(),
            _ => return None,
        };
        if !start && !end && (from.is_empty() || to.is_empty()) {
            return None;
        }
        let pattern = format!(
            "{}{}{}",
            if start { "^" } else { "" },
            regex::escape(&to),
            if end { "$" } else { "" }
        );
        let replacement = if from.is_empty() {
            vec![]
        } else {
            vec![Part::Literal(from)]
        };
        let flags = format!(
            "{}{}",
            if self.global { "g" } else { "" },
            if self.stop { "q" } else { "" }
        );
        SubstRule::new(pattern, replacement, &flags).ok()
    }
}

/// Splits a regex into optional `^`, a literal, and optional `$`, if it is that simple.
fn literal_pattern(pattern: &str) -> Option<(bool, bool, String)> {
    let (start, body) = match pattern.strip_prefix('^') {
        Some(b) => (true, b),
        None => (false, pattern),
    };
    let mut literal = String::new();
    let mut end = false;
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if end {
            return None;
        }
        match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() || e == ' ' => literal.push(e),
                _ => return None,
            },
            '$' => end = true,
            '.' | '[' | ']' | '(' | ')' | '{' | '}' | '*' | '+' | '?' | '|' | '^' => return None,
            c => literal.push(c),
        }
    }
    Some((start, end, literal))
}

/// Ordered substitution rules translating folder names (`nametrans`).
#[derive(Debug, Clone, Default)]
pub struct NameTrans {
    rules: Vec<SubstRule>,
}

impl NameTrans {
    /// Parses rules (see the module documentation for the syntax).
    pub fn parse(text: &str) -> Result<NameTrans, String> {
        let mut rules = Vec::new();
        let mut chars = text.trim().chars().peekable();
        loop {
            while chars
                .peek()
                .is_some_and(|c| c.is_whitespace() || *c == ',' || *c == ';')
            {
                chars.next();
            }
            let Some(c) = chars.next() else { break };
            let delim = match (c, chars.next()) {
                ('s', Some(d)) if d.is_ascii_punctuation() && d != '\\' => d,
                _ => {
                    let rest: String = std::iter::once(c).chain(chars.take(20)).collect();
                    return Err(format!(
                        "expected a rule 's/REGEX/REPLACEMENT/', got '{rest}…'"
                    ));
                }
            };
            let mut pattern = String::new();
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "unterminated rule: missing '{delim}' after the regex"
                        ))
                    }
                    Some(c) if c == delim => break,
                    Some('\\') => match chars.next() {
                        Some(c) if c == delim => pattern.push_str(&regex::escape(&c.to_string())),
                        Some(c) => {
                            pattern.push('\\');
                            pattern.push(c);
                        }
                        None => return Err("unterminated rule after '\\'".to_string()),
                    },
                    Some(c) => pattern.push(c),
                }
            }
            let replacement = parse_replacement(&mut chars, delim)?;
            let mut flags = String::new();
            while let Some(&c) = chars.peek() {
                if !c.is_alphanumeric() {
                    break;
                }
                if !matches!(c, 'g' | 'i' | 'q') {
                    return Err(format!("unknown flag '{c}' (known: g, i, q)"));
                }
                flags.push(c);
                chars.next();
            }
            if chars
                .peek()
                .is_some_and(|c| !(c.is_whitespace() || *c == ',' || *c == ';'))
            {
                return Err("rules must be separated by a newline, ',' or ';'".to_string());
            }
            rules.push(SubstRule::new(pattern, replacement, &flags)?);
        }
        Ok(NameTrans { rules })
    }

    /// Whether there are no rules (names are unchanged).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Translates a folder name.
    pub fn apply(&self, name: &str) -> String {
        let mut current = name.to_string();
        for rule in &self.rules {
            if let Some(next) = rule.apply(&current) {
                current = next;
                if rule.stop {
                    break;
                }
            }
        }
        current
    }

    /// The reverse translation, when every rule has a simple invertible form; otherwise
    /// the text of the first rule that has none. Leading whole-name `q` rules (guards such
    /// as `s/^INBOX$/INBOX/q`) stay guards at the front of the reverse translation; the
    /// other rules are reversed in reverse order. (The round-trip check still refuses any
    /// folder name the result does not translate back.)
    pub fn invert(&self) -> Result<NameTrans, String> {
        let guards = self.rules.iter().take_while(|r| r.stop).count();
        if let Some(late) = self.rules[guards..].iter().find(|r| r.stop) {
            return Err(late.text.clone());
        }
        let mut rules = Vec::with_capacity(self.rules.len());
        for rule in self.rules[..guards]
            .iter()
            .chain(self.rules[guards..].iter().rev())
        {
            rules.push(rule.invert().ok_or_else(|| rule.text.clone())?);
        }
        Ok(NameTrans { rules })
    }
}

impl fmt::Display for NameTrans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<&str> = self.rules.iter().map(|r| r.text.as_str()).collect();
        f.write_str(&texts.join("; "))
    }
}

fn parse_replacement(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    delim: char,
) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let push_group = |parts: &mut Vec<Part>, literal: &mut String, n: usize| {
        if !literal.is_empty() {
            parts.push(Part::Literal(std::mem::take(literal)));
        }
        parts.push(Part::Group(n));
    };
    loop {
        match chars.next() {
            None => return Err(format!("unterminated rule: missing '{delim}' after the replacement")),
            Some(c) if c == delim => break,
            Some('\\') => match chars.next() {
                Some(d) if d.is_ascii_digit() => push_group(&mut parts, &mut literal, d as usize - '0' as usize),
                Some(c) if c == delim || c == '\\' || c == '$' => literal.push(c),
                Some(c) => {
                    return Err(format!(
                        "unknown escape '\\{c}' in the replacement (it is literal text apart from $1, \\1, $$ and \\\\)"
                    ))
                }
                None => return Err("unterminated rule after '\\'".to_string()),
            },
            Some('$') => {
                let mut digits = String::new();
                if chars.peek() == Some(&'$') {
                    chars.next();
                    literal.push('$');
                    continue;
                }
                let braced = chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if braced && chars.next() != Some('}') {
                    return Err("'${' must be followed by a group number and '}'".to_string());
                }
                let n = digits
                    .parse()
                    .map_err(|_| "'$' must be followed by a group number; write '$$' for a literal '$'".to_string())?;
                push_group(&mut parts, &mut literal, n);
            }
            Some(c) => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

/// Which side of an account a folder name is spelled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The remote repository.
    Remote,
    /// The local repository.
    Local,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Remote => Side::Local,
            Side::Local => Side::Remote,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Remote => "remote",
            Side::Local => "local",
        })
    }
}

/// A folder-name translation that does not round-trip: syncing it would create folders
/// over and over (offlineimap's nametrans loop).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FolderNameError {
    /// Translating a name there and back gives another name.
    #[error(
        "{side} folder '{folder}' becomes {other} '{there}', which translates back to '{back}', \
         not '{folder}': make the two nametrans directions agree (or exclude the folder)",
        other = side.other()
    )]
    RoundTrip {
        /// The side that lists the folder.
        side: Side,
        /// The folder name as listed.
        folder: String,
        /// Its translation on the other side.
        there: String,
        /// That translation translated back.
        back: String,
    },
    /// Two folders of one side translate to the same name on the other side.
    #[error(
        "{side} folders '{first}' and '{second}' both become {other} '{target}': nametrans must \
         give different folders different names",
        other = side.other()
    )]
    Collision {
        /// The side that lists both folders.
        side: Side,
        /// One folder.
        first: String,
        /// The other folder.
        second: String,
        /// The name they share on the other side.
        target: String,
    },
}

/// One folder as both sides name it, as paired by [`FolderMapping::pair`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPair {
    /// Its name on the remote repository.
    pub remote: String,
    /// Its name on the local repository.
    pub local: String,
    /// Whether the remote lists it (or names it in `folderincludes`).
    pub on_remote: bool,
    /// Whether the local side lists it (or names it in `folderincludes`).
    pub on_local: bool,
}

/// An account's folder selection and translation in both directions.
#[derive(Debug, Clone, Default)]
pub struct FolderMapping {
    /// Remote name → local name.
    pub remote_to_local: NameTrans,
    /// Local name → remote name.
    pub local_to_remote: NameTrans,
    /// The remote repository's `folderfilter` (on remote names).
    pub remote_filter: FolderFilter,
    /// The local repository's `folderfilter` (on local names).
    pub local_filter: FolderFilter,
    /// The remote repository's `folderincludes`.
    pub remote_includes: Vec<String>,
    /// The local repository's `folderincludes`.
    pub local_includes: Vec<String>,
}

impl FolderMapping {
    /// The local name of a remote folder.
    pub fn to_local(&self, remote: &str) -> String {
        self.remote_to_local.apply(remote)
    }

    /// The remote name of a local folder.
    pub fn to_remote(&self, local: &str) -> String {
        self.local_to_remote.apply(local)
    }

    /// Checks that every listed folder translates there and back to itself, and that no
    /// two folders of one side translate to the same name.
    pub fn check_round_trip(
        &self,
        remote: &[String],
        local: &[String],
    ) -> Result<(), FolderNameError> {
        check_side(
            Side::Remote,
            remote,
            |n| self.to_local(n),
            |n| self.to_remote(n),
        )?;
        check_side(
            Side::Local,
            local,
            |n| self.to_remote(n),
            |n| self.to_local(n),
        )
    }

    /// Selects and pairs the folders both sides list: a remote folder is taken if the remote
    /// `folderfilter` accepts it (or `folderincludes` names it) and its local name passes the
    /// local filter (or includes); the same from the local side. Names are checked with
    /// [`Self::check_round_trip`] first. Pairs come sorted by remote name.
    pub fn pair(
        &self,
        remote_listed: &[String],
        local_listed: &[String],
    ) -> Result<Vec<FolderPair>, FolderNameError> {
        let remote_ok =
            |n: &str| self.remote_filter.accepts(n) || self.remote_includes.iter().any(|i| i == n);
        let local_ok =
            |n: &str| self.local_filter.accepts(n) || self.local_includes.iter().any(|i| i == n);
        let mut remote: Vec<String> = remote_listed
            .iter()
            .chain(&self.remote_includes)
            .cloned()
            .collect();
        let mut local: Vec<String> = local_listed
            .iter()
            .chain(&self.local_includes)
            .cloned()
            .collect();
        remote.sort();
        remote.dedup();
        local.sort();
        local.dedup();
        remote.retain(|r| remote_ok(r) && local_ok(&self.to_local(r)));
        local.retain(|l| local_ok(l) && remote_ok(&self.to_remote(l)));
        self.check_round_trip(&remote, &local)?;
        let mut pairs: BTreeMap<String, FolderPair> = BTreeMap::new();
        for r in &remote {
            pairs.insert(
                r.clone(),
                FolderPair {
                    remote: r.clone(),
                    local: self.to_local(r),
                    on_remote: true,
                    on_local: false,
                },
            );
        }
        for l in &local {
            let r = self.to_remote(l);
            pairs
                .entry(r.clone())
                .or_insert_with(|| FolderPair {
                    remote: r,
                    local: l.clone(),
                    on_remote: false,
                    on_local: false,
                })
                .on_local = true;
        }
        Ok(pairs.into_values().collect())
    }
}

fn check_side(
    side: Side,
    names: &[String],
    there: impl Fn(&str) -> String,
    back: impl Fn(&str) -> String,
) -> Result<(), FolderNameError> {
    let translated: Vec<String> = names.iter().map(|n| there(n)).collect();
    let mut seen: BTreeMap<&str, &String> = BTreeMap::new();
    for (folder, t) in names.iter().zip(&translated) {
        match seen.get(t.as_str()) {
            Some(first) if *first != folder => {
                return Err(FolderNameError::Collision {
                    side,
                    first: (*first).clone(),
                    second: folder.clone(),
                    target: t.clone(),
                })
            }
            _ => {
                seen.insert(t, folder);
            }
        }
    }
    for (folder, t) in names.iter().zip(translated) {
        let b = back(&t);
        if &b != folder {
            return Err(FolderNameError::RoundTrip {
                side,
                folder: folder.clone(),
                there: t,
                back: b,
            });
        }
    }
    Ok(())
}
