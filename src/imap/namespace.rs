//! NAMESPACE (RFC 2342): where a server keeps personal, other users' and shared folders,
//! with `LIST "" ""` as the fallback for the hierarchy delimiter.

use imap_types::command::CommandBody;
use imap_types::extensions::namespace::Namespace;
use imap_types::response::Data;

use super::commands::quoted;
use super::session::Untagged;
use super::{utf7, ImapError, Session};

/// Which namespace classes a repository syncs (`namespaces = personal, shared, other`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NamespaceChoice {
    /// Other users' folders (`other`).
    pub other: bool,
    /// Shared folders (`shared`).
    pub shared: bool,
}

impl NamespaceChoice {
    /// Parses `personal, shared, other` (personal is always synced and may be omitted).
    pub fn parse(s: &str) -> Result<NamespaceChoice, String> {
        let mut c = NamespaceChoice::default();
        for w in s.split([',', ' ']).map(str::trim).filter(|w| !w.is_empty()) {
            match w.to_ascii_lowercase().as_str() {
                "personal" => {}
                "shared" => c.shared = true,
                "other" | "others" | "other users" => c.other = true,
                _ => {
                    return Err(format!(
                        "unknown namespace {w:?}: expected personal, shared or other"
                    ))
                }
            }
        }
        Ok(c)
    }
}

/// One namespace: a prefix (UTF-8, decoded from modified UTF-7) and its delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceEntry {
    /// The prefix, e.g. `INBOX.`, `""`, `#shared/`, `Other Users/`.
    pub prefix: String,
    /// The hierarchy delimiter inside it.
    pub delimiter: Option<char>,
}

/// The three namespace classes a server reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// The user's own folders.
    pub personal: Vec<NamespaceEntry>,
    /// Other users' folders.
    pub other: Vec<NamespaceEntry>,
    /// Shared folders.
    pub shared: Vec<NamespaceEntry>,
    /// Whether these came from a NAMESPACE reply (else from `LIST "" ""`).
    pub advertised: bool,
}

impl Namespaces {
    /// One line for `--info` and `probe`: `personal "INBOX." "."; other ...; shared ...`.
    pub fn describe(&self) -> String {
        let one = |v: &[NamespaceEntry]| {
            if v.is_empty() {
                "NIL".to_string()
            } else {
                v.iter()
                    .map(|e| match e.delimiter {
                        Some(d) => format!("{:?} {:?}", e.prefix, d.to_string()),
                        None => format!("{:?} NIL", e.prefix),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        format!(
            "personal {}; other users {}; shared {}{}",
            one(&self.personal),
            one(&self.other),
            one(&self.shared),
            if self.advertised {
                ""
            } else {
                " (no NAMESPACE: delimiter from LIST \"\" \"\")"
            }
        )
    }
}

fn entries(v: &[Namespace<'_>]) -> Vec<NamespaceEntry> {
    v.iter()
        .map(|n| {
            let raw = n.prefix.clone().into_inner();
            NamespaceEntry {
                prefix: utf7::decode_lossy(&raw),
                delimiter: n.delimiter.map(|d| d.inner()),
            }
        })
        .collect()
}

impl Session {
    /// Asks NAMESPACE; if the server refuses it (or its answer does not parse), one
    /// personal namespace with an empty prefix and the delimiter `LIST "" ""` reports.
    ///
    /// NAMESPACE is sent even when not advertised: Courier-IMAP answers it without listing
    /// it among its capabilities, and a server without it just answers BAD.
    pub async fn namespaces(&mut self) -> Result<Namespaces, ImapError> {
        {
            let p = self.send(CommandBody::Namespace, "NAMESPACE").await?;
            let mut found: Option<Namespaces> = None;
            let c = self
                .finish(p, &mut |u| {
                    if let Untagged::Data(Data::Namespace {
                        personal,
                        other,
                        shared,
                    }) = u
                    {
                        found = Some(Namespaces {
                            personal: entries(&personal),
                            other: entries(&other),
                            shared: entries(&shared),
                            advertised: true,
                        });
                    }
                    Ok(())
                })
                .await?;
            if let (Ok(_), Some(ns)) = (c.ok("NAMESPACE"), found) {
                return Ok(ns);
            }
        }
        let delimiter = self.root_delimiter().await?;
        Ok(Namespaces {
            personal: vec![NamespaceEntry {
                prefix: String::new(),
                delimiter,
            }],
            ..Default::default()
        })
    }

    /// The hierarchy delimiter from `LIST "" ""` (RFC 3501 6.3.8).
    pub async fn root_delimiter(&mut self) -> Result<Option<char>, ImapError> {
        let text = format!(
            "LIST {} {}",
            String::from_utf8_lossy(&quoted(b"")),
            String::from_utf8_lossy(&quoted(b""))
        );
        let p = self.raw_command("LIST", &text);
        let mut delimiter = None;
        self.finish(p, &mut |u| {
            if let Untagged::Data(Data::List { delimiter: d, .. }) = u {
                delimiter = d.map(|d| d.inner());
            }
            Ok(())
        })
        .await?
        .ok("LIST")?;
        Ok(delimiter)
    }
}
