//! Maildir file names: the unique part, the `:2,` info with its flag letters, and new
//! unique names for the messages we write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::sync::plan::Flags;

use super::keywords::Keywords;

/// The system flags with a Maildir letter, in letter order. `P` (passed) has no IMAP
/// flag: dovecot does not map it either, so it is kept on disk but not synced.
const SYSTEM: [(char, &str); 5] = [
    ('D', "\\Draft"),
    ('F', "\\Flagged"),
    ('R', "\\Answered"),
    ('S', "\\Seen"),
    ('T', "\\Deleted"),
];

/// A file name split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName<'a> {
    /// Everything before the `:` (the message's identity; it never changes).
    pub unique: &'a str,
    /// The flag letters after `:2,` (empty without an info part).
    pub letters: &'a str,
    /// Whether the name has an info part at all.
    pub has_info: bool,
}

/// Splits a file name. Names with an experimental (`:1,`) or unknown info keep their
/// letters out of the flags but their unique part still identifies them.
pub fn parse(name: &str) -> ParsedName<'_> {
    match name.split_once(':') {
        Some((unique, info)) => ParsedName {
            unique,
            letters: info.strip_prefix("2,").unwrap_or(""),
            has_info: true,
        },
        None => ParsedName {
            unique: name,
            letters: "",
            has_info: false,
        },
    }
}

/// The IMAP flags that the letters of a name stand for (keywords through `keywords`;
/// letters without a keyword are ignored).
pub fn flags_of(letters: &str, keywords: &Keywords) -> Flags {
    let mut f = Flags::new();
    for c in letters.chars() {
        if let Some((_, name)) = SYSTEM.iter().find(|(l, _)| *l == c) {
            f.insert((*name).to_string());
        } else if c.is_ascii_lowercase() {
            if let Some(k) = keywords.name(c) {
                f.insert(k.to_string());
            }
        }
    }
    f
}

/// The letters for `flags`, sorted as the Maildir spec asks. `keep` holds letters of the
/// old name that stand for nothing we know (e.g. `P`, or a keyword letter without a
/// name) and are kept. Keywords without a letter are returned in the second value.
pub fn letters_for(flags: &Flags, keywords: &Keywords, keep: &str) -> (String, Vec<String>) {
    let mut letters: Vec<char> = Vec::new();
    let mut unplaced = Vec::new();
    for f in flags {
        if let Some((l, _)) = SYSTEM.iter().find(|(_, n)| n == f) {
            letters.push(*l);
        } else if f.starts_with('\\') {
            // Another system flag (none exist today): nothing to store it as.
            unplaced.push(f.clone());
        } else {
            match keywords.letter(f) {
                Some(l) => letters.push(l),
                None => unplaced.push(f.clone()),
            }
        }
    }
    for c in keep.chars() {
        let known = SYSTEM.iter().any(|(l, _)| *l == c)
            || (c.is_ascii_lowercase() && keywords.name(c).is_some());
        if !known && c.is_ascii_alphabetic() {
            letters.push(c);
        }
    }
    letters.sort_unstable();
    letters.dedup();
    (letters.into_iter().collect(), unplaced)
}

/// The full name for a unique part and letters.
pub fn compose(unique: &str, letters: &str) -> String {
    format!("{unique}:2,{letters}")
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let raw = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "localhost".to_string()
    };
    // The spec: `/` becomes \057 and `:` becomes \072.
    raw.replace('/', "\\057").replace(':', "\\072")
}

/// A new unique part in the usual form `SECS.M<usec>P<pid>Q<n>.HOST,S=<size>,W=<crlf size>`
/// (the `S=`/`W=` fields let dovecot skip reading the file for its sizes).
pub fn new_unique(size: usize, crlf_size: usize) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let q = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{}P{}Q{}.{},S={size},W={crlf_size}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        q,
        hostname()
    )
}

/// The `W=` (size with CRLF line ends) field of a unique part, if present.
pub fn virtual_size(unique: &str) -> Option<u64> {
    unique
        .split(',')
        .skip(1)
        .find_map(|f| f.strip_prefix("W="))
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_compose() {
        let p = parse("123.M1P2.host,S=10,W=12:2,FRSa");
        assert_eq!(p.unique, "123.M1P2.host,S=10,W=12");
        assert_eq!(p.letters, "FRSa");
        assert_eq!(virtual_size(p.unique), Some(12));
        let p = parse("123.abc");
        assert_eq!((p.unique, p.letters, p.has_info), ("123.abc", "", false));
        let mut kw = Keywords::default();
        kw.assign("$Label1");
        let f = flags_of("FRSaP", &kw);
        let want: Flags = ["\\Flagged", "\\Answered", "\\Seen", "$Label1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(f, want);
        let (letters, unplaced) = letters_for(&f, &kw, "FRSaPz");
        assert_eq!(letters, "FPRSaz");
        assert!(unplaced.is_empty());
        assert_eq!(compose("u", &letters), "u:2,FPRSaz");
    }
}
