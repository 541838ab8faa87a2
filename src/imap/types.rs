//! Plain data types the IMAP session hands to its callers, free of imap-codec lifetimes.

use std::collections::BTreeSet;
use std::fmt;

use imap_types::response::Capability;

/// The capabilities a server advertised, as upper-case atoms (`IMAP4REV1`, `AUTH=PLAIN`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(BTreeSet<String>);

impl Capabilities {
    /// Builds the set from imap-types capabilities.
    pub fn from_imap<'a>(caps: impl IntoIterator<Item = &'a Capability<'a>>) -> Self {
        Capabilities(
            caps.into_iter()
                .map(|c| c.to_string().to_ascii_uppercase())
                .collect(),
        )
    }

    /// Builds the set from atoms (case-insensitive).
    pub fn from_atoms<S: AsRef<str>>(atoms: impl IntoIterator<Item = S>) -> Self {
        Capabilities(
            atoms
                .into_iter()
                .map(|a| a.as_ref().to_ascii_uppercase())
                .collect(),
        )
    }

    /// Whether the server advertised `name` (case-insensitive).
    pub fn has(&self, name: &str) -> bool {
        self.0.contains(&name.to_ascii_uppercase())
    }

    /// SASL mechanisms offered with `AUTH=`.
    pub fn auth_mechanisms(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|c| c.strip_prefix("AUTH=").map(str::to_string))
            .collect()
    }

    /// All advertised atoms, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Removes a capability, e.g. one the user disabled because the server breaks it.
    pub fn remove(&mut self, name: &str) {
        self.0.remove(&name.to_ascii_uppercase());
    }

    /// Whether the set is empty (not read yet).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<&str> = self.iter().collect();
        f.write_str(&v.join(" "))
    }
}

/// The STATUS of a mailbox (each item present only if the server returned it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    /// Number of messages.
    pub messages: Option<u32>,
    /// The UID the next message will get.
    pub uidnext: Option<u32>,
    /// The mailbox's UIDVALIDITY.
    pub uidvalidity: Option<u32>,
    /// The mailbox's HIGHESTMODSEQ (CONDSTORE).
    pub highestmodseq: Option<u64>,
    /// Number of unseen messages.
    pub unseen: Option<u32>,
}

/// A mailbox as returned by LIST (and LIST-STATUS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMailbox {
    /// The name decoded from modified UTF-7 to UTF-8.
    pub name: String,
    /// The name exactly as the server sent it (use this to address the mailbox).
    pub raw: Vec<u8>,
    /// The hierarchy delimiter, if the server has one.
    pub delimiter: Option<char>,
    /// Attributes such as `\Noselect`, `\HasChildren`, `\Sent`, as sent.
    pub attributes: Vec<String>,
    /// STATUS items, when asked for.
    pub status: Option<MailboxStatus>,
}

impl ListedMailbox {
    /// Whether the mailbox can be selected (no `\Noselect` / `\NonExistent`).
    pub fn selectable(&self) -> bool {
        !self.attributes.iter().any(|a| {
            a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
        })
    }
}

/// A message's INTERNALDATE: seconds since the epoch and the server's UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InternalDate {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix: i64,
    /// The zone offset the server reported, in seconds east of UTC.
    pub offset: i32,
}

impl InternalDate {
    /// Converts from the wire type.
    pub fn from_imap(d: &imap_types::datetime::DateTime) -> Self {
        let dt: &chrono::DateTime<chrono::FixedOffset> = d.as_ref();
        InternalDate {
            unix: dt.timestamp(),
            offset: dt.offset().local_minus_utc(),
        }
    }

    /// Converts to the wire type (None if out of IMAP's range).
    pub fn to_imap(self) -> Option<imap_types::datetime::DateTime> {
        let off = chrono::FixedOffset::east_opt(self.offset)
            .or_else(|| chrono::FixedOffset::east_opt(0))?;
        let dt = chrono::DateTime::from_timestamp(self.unix, 0)?.with_timezone(&off);
        imap_types::datetime::DateTime::try_from(dt).ok()
    }
}

/// What a UID FETCH returned for one message (fields absent unless asked for).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchedMessage {
    /// Message sequence number.
    pub seq: u32,
    /// UID.
    pub uid: u32,
    /// Flags and keywords (`\Seen`, `$Forwarded`, ...); `\Recent` is dropped.
    pub flags: Option<Vec<String>>,
    /// MODSEQ (CONDSTORE).
    pub modseq: Option<u64>,
    /// INTERNALDATE.
    pub internaldate: Option<InternalDate>,
    /// RFC822.SIZE.
    pub size: Option<u32>,
    /// The whole message (`BODY[]`), when small enough to hold in memory.
    pub body: Option<Vec<u8>>,
    /// The whole message when it was too large for memory (then `body` is `None`).
    pub body_spool: Option<super::spool::Spool>,
    /// Requested header fields (`BODY[HEADER.FIELDS (...)]`), raw.
    pub header_fields: Option<Vec<u8>>,
    /// The header block (`BODY[HEADER]`), raw.
    pub header: Option<Vec<u8>>,
}

impl FetchedMessage {
    /// The whole message's bytes (`BODY[]`), from memory or read back from its spool file.
    pub fn body_bytes(&self) -> std::io::Result<Option<Vec<u8>>> {
        match (&self.body, &self.body_spool) {
            (_, Some(sp)) => super::spool::BodyRef::Spool(sp).to_vec().map(Some),
            (Some(b), None) => Ok(Some(b.clone())),
            (None, None) => Ok(None),
        }
    }
}

/// A message to APPEND.
#[derive(Debug, Clone)]
pub struct AppendMessage<'a> {
    /// Flags to set (no `\Recent`).
    pub flags: &'a [String],
    /// INTERNALDATE to set, if known.
    pub internaldate: Option<InternalDate>,
    /// The raw message (CRLF line endings), in memory or spooled.
    pub body: super::spool::BodyRef<'a>,
}

/// A UID range, inclusive.
pub type UidRange = (u32, u32);

/// Compacts a sorted or unsorted list of UIDs into an IMAP sequence-set string (`1:4,7,9:10`).
pub fn uid_set(uids: &[u32]) -> String {
    let mut v: Vec<u32> = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// Expands inclusive ranges into UIDs, refusing more than `limit` of them.
pub fn expand_ranges(ranges: &[UidRange], limit: usize) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for &(a, b) in ranges {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        if out.len() + (b - a) as usize + 1 > limit {
            return None;
        }
        out.extend(a..=b);
    }
    Some(out)
}

/// Whether a flag is one IMAP lets a client store (not `\Recent`, not `\*`).
pub fn is_storable_flag(flag: &str) -> bool {
    !flag.eq_ignore_ascii_case("\\Recent") && flag != "\\*"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_set_compacts() {
        assert_eq!(uid_set(&[7, 1, 2, 3, 4, 9, 10, 4]), "1:4,7,9:10");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[5]), "5");
    }

    #[test]
    fn internaldate_round_trip() {
        let d = InternalDate {
            unix: 1_700_000_000,
            offset: 3600,
        };
        let w = d.to_imap().expect("in range");
        assert_eq!(InternalDate::from_imap(&w), d);
    }
}
