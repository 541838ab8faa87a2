//! Where an IMAP store's folders live: the personal namespace's prefix (or the configured
//! `reference`) is trimmed from every name the server lists and put back on every name
//! twinbox sends, so `INBOX.Lists.rust` on Courier and `Lists/rust` on dovecot are the
//! same folder. Other users' and shared namespaces are left out unless chosen.

pub use crate::imap::namespace::NamespaceChoice;
use crate::imap::namespace::{NamespaceEntry, Namespaces};

/// Which class a server name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Personal,
    Other,
    Shared,
}

/// The mapping between a server's full mailbox names and twinbox's namespace-relative
/// names (still in the server's delimiter; the engine makes them separator-neutral).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderRoot {
    /// The server's namespaces, as reported.
    pub namespaces: Namespaces,
    /// The prefix trimmed from personal folders: the namespace prefix or the reference.
    pub root: String,
    /// The personal hierarchy delimiter.
    pub delimiter: Option<char>,
    /// Namespace classes synced besides the personal one.
    pub choice: NamespaceChoice,
}

impl FolderRoot {
    /// Builds the mapping. `reference` (offlineimap's option) replaces the root: a full
    /// server path when it starts with the personal prefix (or that prefix is empty), else
    /// a path inside the personal namespace. A missing trailing delimiter is added.
    pub fn new(namespaces: Namespaces, reference: Option<&str>, choice: NamespaceChoice) -> Self {
        let personal = namespaces
            .personal
            .first()
            .cloned()
            .unwrap_or(NamespaceEntry {
                prefix: String::new(),
                delimiter: None,
            });
        let delimiter = personal.delimiter;
        let mut root = personal.prefix.clone();
        if let Some(r) = reference.filter(|r| !r.is_empty()) {
            let full = personal.prefix.is_empty() || starts_with_ci_inbox(r, &personal.prefix);
            let mut r = if full {
                r.to_string()
            } else {
                format!("{}{r}", personal.prefix)
            };
            if let Some(d) = delimiter {
                if !r.ends_with(d) {
                    r.push(d);
                }
            }
            root = r;
        }
        FolderRoot {
            namespaces,
            root,
            delimiter,
            choice,
        }
    }

    /// The class of a full server name: the namespace with the longest matching prefix.
    fn class(&self, name: &str) -> (Class, usize) {
        let mut best = (Class::Personal, 0usize, false);
        let all = [
            (Class::Personal, &self.namespaces.personal),
            (Class::Other, &self.namespaces.other),
            (Class::Shared, &self.namespaces.shared),
        ];
        for (class, list) in all {
            for e in list.iter() {
                let p = &e.prefix;
                let matches = starts_with_ci_inbox(name, p)
                    || p.strip_suffix(|c| Some(c) == e.delimiter)
                        .is_some_and(|bare| !bare.is_empty() && name == bare);
                if matches && (!best.2 || p.len() > best.1) {
                    best = (class, p.len(), true);
                }
            }
        }
        (best.0, best.1)
    }

    /// The relative name of a listed server name, or `None` when it is outside what is
    /// synced (another namespace not chosen, outside the reference, the root itself).
    pub fn to_relative(&self, name: &str) -> Option<String> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Some("INBOX".to_string());
        }
        match self.class(name).0 {
            Class::Other if self.choice.other => return Some(name.to_string()),
            Class::Shared if self.choice.shared => return Some(name.to_string()),
            Class::Other | Class::Shared => return None,
            Class::Personal => {}
        }
        if self.root.is_empty() {
            return Some(name.to_string());
        }
        if starts_with_ci_inbox(name, &self.root) && name.len() > self.root.len() {
            return name.get(self.root.len()..).map(str::to_string);
        }
        None
    }

    /// The full server name of a relative name.
    pub fn to_server(&self, relative: &str) -> String {
        if relative.eq_ignore_ascii_case("INBOX") {
            return "INBOX".to_string();
        }
        let (class, len) = self.class(relative);
        let other_chosen = match class {
            Class::Other => self.choice.other && len > 0,
            Class::Shared => self.choice.shared && len > 0,
            Class::Personal => false,
        };
        if other_chosen {
            return relative.to_string();
        }
        format!("{}{relative}", self.root)
    }

    /// Refuses a name whose server spelling would not list back as itself: it would land
    /// in another namespace (a personal `shared/x` where `shared/` is the shared prefix).
    pub fn check_creatable(&self, relative: &str) -> anyhow::Result<()> {
        let full = self.to_server(relative);
        if self.to_relative(&full).as_deref() != Some(relative) {
            anyhow::bail!(
                "folder {relative:?} cannot be created here: as {full:?} it would fall in another of the server's namespaces ({})",
                self.namespaces.describe()
            );
        }
        Ok(())
    }

    /// The LIST patterns (reference `""`) that cover what is synced, in as few commands as
    /// possible: `*` when the root is empty, `INBOX*` for an `INBOX.` root (INBOX and its
    /// subtree in one command, without other users' folders), else the root's subtree and
    /// INBOX; plus the chosen other namespaces.
    pub fn list_patterns(&self) -> Vec<String> {
        let ns = &self.namespaces;
        let mut extra: Vec<&str> = Vec::new();
        if self.choice.other {
            extra.extend(ns.other.iter().map(|e| e.prefix.as_str()));
        }
        if self.choice.shared {
            extra.extend(ns.shared.iter().map(|e| e.prefix.as_str()));
        }
        if self.root.is_empty() || extra.iter().any(|p| p.is_empty()) {
            return vec!["*".to_string()];
        }
        let mut v = if inbox_head(&self.root) {
            vec!["INBOX*".to_string()]
        } else {
            vec![format!("{}*", self.root), "INBOX".to_string()]
        };
        v.extend(extra.iter().map(|p| format!("{p}*")));
        v
    }

    /// Lines for `--info` and `probe`.
    pub fn describe(&self) -> Vec<String> {
        let mut v = vec![format!("namespaces: {}", self.namespaces.describe())];
        v.push(format!(
            "folder root: {:?} (trimmed from names), delimiter {}",
            self.root,
            self.delimiter
                .map(|d| format!("{:?}", d.to_string()))
                .unwrap_or_else(|| "NIL".into())
        ));
        if self.choice.other || self.choice.shared {
            v.push(format!(
                "also synced, under their full names: {}{}",
                if self.choice.shared { "shared " } else { "" },
                if self.choice.other { "other users" } else { "" }
            ));
        }
        v
    }
}

/// `name` starts with `prefix`, comparing a leading `INBOX` case-insensitively (RFC 3501
/// makes INBOX case-insensitive, and servers answer `Inbox.`/`INBOX.` alike).
fn starts_with_ci_inbox(name: &str, prefix: &str) -> bool {
    if inbox_head(prefix) {
        inbox_head(name) && name.get(5..prefix.len()) == prefix.get(5..)
    } else {
        name.starts_with(prefix)
    }
}

/// `s` begins with `INBOX` in any case (byte-safe on any UTF-8).
fn inbox_head(s: &str) -> bool {
    s.get(..5).is_some_and(|h| h.eq_ignore_ascii_case("INBOX"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(p: &[(&str, char)], o: &[(&str, char)], s: &[(&str, char)]) -> Namespaces {
        let e = |v: &[(&str, char)]| {
            v.iter()
                .map(|(p, d)| NamespaceEntry {
                    prefix: p.to_string(),
                    delimiter: Some(*d),
                })
                .collect()
        };
        Namespaces {
            personal: e(p),
            other: e(o),
            shared: e(s),
            advertised: true,
        }
    }

    #[test]
    fn courier_prefix_is_trimmed_and_inbox_stays() {
        let r = FolderRoot::new(
            ns(&[("INBOX.", '.')], &[], &[("#shared.", '.')]),
            None,
            NamespaceChoice::default(),
        );
        assert_eq!(r.to_relative("INBOX").as_deref(), Some("INBOX"));
        assert_eq!(
            r.to_relative("INBOX.Lists.rust").as_deref(),
            Some("Lists.rust")
        );
        assert_eq!(r.to_relative("#shared.x"), None);
        assert_eq!(r.to_server("Lists.rust"), "INBOX.Lists.rust");
        assert_eq!(r.to_server("INBOX"), "INBOX");
        assert_eq!(r.to_server("Sent"), "INBOX.Sent");
    }

    #[test]
    fn cyrus_without_altnamespace_hides_shared_and_other_users() {
        let n = ns(&[("INBOX.", '.')], &[("user.", '.')], &[("", '.')]);
        let r = FolderRoot::new(n.clone(), None, NamespaceChoice::default());
        assert_eq!(r.to_relative("INBOX.Sent").as_deref(), Some("Sent"));
        assert_eq!(r.to_relative("user.bob.Sent"), None);
        assert_eq!(r.to_relative("public"), None);
        let r = FolderRoot::new(n, None, NamespaceChoice::parse("personal, shared").unwrap());
        assert_eq!(r.to_relative("public").as_deref(), Some("public"));
        assert_eq!(r.to_relative("user.bob.Sent"), None);
        // A personal name is never mistaken for a shared one.
        assert_eq!(r.to_server("Sent"), "INBOX.Sent");
    }

    #[test]
    fn dovecot_plain_with_shared_namespace() {
        let n = ns(&[("", '/')], &[], &[("shared/", '/')]);
        let r = FolderRoot::new(n.clone(), None, NamespaceChoice::default());
        assert_eq!(r.to_relative("Lists/rust").as_deref(), Some("Lists/rust"));
        assert_eq!(r.to_relative("shared/bob/x"), None);
        assert_eq!(r.to_relative("shared"), None);
        let r = FolderRoot::new(n, None, NamespaceChoice::parse("shared").unwrap());
        assert_eq!(
            r.to_relative("shared/bob/x").as_deref(),
            Some("shared/bob/x")
        );
        assert_eq!(r.to_server("shared/bob/x"), "shared/bob/x");
    }

    #[test]
    fn reference_trims_its_prefix() {
        let r = FolderRoot::new(
            ns(&[("", '/')], &[], &[]),
            Some("Mail"),
            NamespaceChoice::default(),
        );
        assert_eq!(r.root, "Mail/");
        assert_eq!(r.to_relative("Mail/foo/bar").as_deref(), Some("foo/bar"));
        assert_eq!(r.to_relative("Mail/"), None);
        assert_eq!(r.to_relative("other"), None);
        assert_eq!(r.to_relative("INBOX").as_deref(), Some("INBOX"));
        assert_eq!(r.to_server("foo/bar"), "Mail/foo/bar");
        // Inside a prefixed namespace: relative to it, or given in full.
        let n = ns(&[("INBOX.", '.')], &[], &[]);
        let a = FolderRoot::new(n.clone(), Some("Archive"), NamespaceChoice::default());
        let b = FolderRoot::new(n, Some("INBOX.Archive."), NamespaceChoice::default());
        assert_eq!(a.root, "INBOX.Archive.");
        assert_eq!(b.root, "INBOX.Archive.");
        assert_eq!(a.to_relative("INBOX.Archive.2020").as_deref(), Some("2020"));
    }

    #[test]
    fn list_patterns_take_one_command_where_possible() {
        let p = |n: Namespaces, r: Option<&str>, c: &str| {
            FolderRoot::new(n, r, NamespaceChoice::parse(c).unwrap()).list_patterns()
        };
        let cyrus = ns(&[("INBOX.", '.')], &[("user.", '.')], &[("", '.')]);
        assert_eq!(p(cyrus.clone(), None, ""), ["INBOX*"]);
        assert_eq!(p(cyrus, None, "shared"), ["*"]);
        let plain = ns(&[("", '/')], &[], &[("shared/", '/')]);
        assert_eq!(p(plain.clone(), None, ""), ["*"]);
        assert_eq!(
            p(plain, Some("Mail"), "shared"),
            ["Mail/*", "INBOX", "shared/*"]
        );
    }

    #[test]
    fn odd_prefixes_do_not_panic() {
        let r = FolderRoot::new(
            ns(&[("INBOé.", '.')], &[("Inbo", '.')], &[("é", '/')]),
            Some("ü"),
            NamespaceChoice::parse("shared, other").unwrap(),
        );
        for n in ["INBOé.x", "Inbox", "é", "ü.x", "INBO", "", "INBOXé"] {
            let _ = r.to_relative(n);
            let _ = r.to_server(n);
        }
        let _ = r.list_patterns();
    }

    proptest::proptest! {
        /// Every personal name twinbox may create lists back as itself, or is refused.
        #[test]
        fn created_names_list_back(name in "[a-zA-Z#é./ ]{1,12}", which in 0usize..4) {
            let n = [
                ns(&[("INBOX.", '.')], &[], &[("#shared.", '.'), ("shared.", '.')]),
                ns(&[("INBOX.", '.')], &[("user.", '.')], &[("", '.')]),
                ns(&[("", '/')], &[], &[("shared/", '/')]),
                ns(&[("", '/')], &[("Other Users/", '/')], &[("Shared Folders/", '/')]),
            ][which].clone();
            let r = FolderRoot::new(n, None, NamespaceChoice::default());
            proptest::prop_assume!(!name.eq_ignore_ascii_case("INBOX"));
            if r.check_creatable(&name).is_ok() {
                proptest::prop_assert_eq!(r.to_relative(&r.to_server(&name)), Some(name.clone()));
            } else {
                proptest::prop_assert!(name.starts_with("shared/") || name.starts_with("Shared Folders/") || name.starts_with("Other Users/") || name.eq_ignore_ascii_case("shared") || r.to_server(&name).len() == r.root.len());
            }
        }
    }

    #[test]
    fn choice_parses_and_rejects() {
        assert_eq!(
            NamespaceChoice::parse("personal, shared"),
            Ok(NamespaceChoice {
                other: false,
                shared: true
            })
        );
        assert!(NamespaceChoice::parse("public").is_err());
    }
}
