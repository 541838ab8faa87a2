//! The shipped `conf/` files parse, document every option, and their examples are valid.

use std::collections::BTreeSet;

use super::super::reader::{ACCOUNT, GENERAL, IMAP, MAILDIR, MBNAMES, REPOSITORY};
use super::*;

const FULL: &str = include_str!("../../../conf/twinbox.conf");
const MINIMAL: &str = include_str!("../../../conf/twinbox.conf.minimal");

#[test]
fn minimal_file_parses() {
    let c = Config::parse_str(MINIMAL, "twinbox.conf.minimal", &env()).unwrap();
    assert_eq!(c.accounts.len(), 1);
    let remote = imap(&c, &c.accounts[0].remote_repository);
    assert_eq!((remote.security, remote.port), (Security::Tls, 993));
    assert!(
        matches!(&remote.password, PasswordSource::Command(c) if c.argv() == ["pass", "show", "mail/example.org"])
    );
    assert_eq!(
        maildir(&c, &c.accounts[0].local_repository).root,
        std::path::PathBuf::from("/home/t/Mail/Personal")
    );
}

#[test]
fn full_file_parses_as_shipped() {
    let c = Config::parse_str(FULL, "twinbox.conf", &env()).unwrap();
    assert_eq!(c.accounts.len(), 1);
    assert!(imap(&c, "GmailExample").gmail);
}

#[test]
fn full_file_documents_every_option() {
    let documented: BTreeSet<&str> = FULL
        .lines()
        .filter_map(|l| {
            l.strip_prefix('#')
                .unwrap_or(l)
                .split_once(" = ")
                .map(|(k, _)| k)
        })
        .collect();
    for table in [GENERAL, ACCOUNT, REPOSITORY, IMAP, MAILDIR, MBNAMES] {
        for option in table {
            assert!(
                documented.contains(option),
                "conf/twinbox.conf does not document '{option}'"
            );
        }
    }
    assert!(documented.contains("customflag_a"));
}

/// Options whose commented examples cannot all be enabled at once: alternatives to an
/// active option, tunnels (they exclude remoteport and passwords), and files that may not
/// exist on the test machine.
const LEFT_COMMENTED: &[&str] = &[
    "startdate",
    "remotepass",
    "remotepassfile",
    "preauthtunnel",
    "transporttunnel",
    "ssh_host",
    "ssh_user",
    "ssh_port",
    "ssh_identity",
    "ssh_command",
    "ssh_options",
    "sslcacertfile",
    "dovecot_imap_path",
];

/// The full file with every commented-out `#option = value` enabled (the first of several
/// alternatives, and continuation lines with it), except [`LEFT_COMMENTED`].
fn uncommented() -> String {
    let mut out = String::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut continuing = false;
    for line in FULL.lines() {
        if line.starts_with('[') {
            seen.clear();
        }
        if let Some((key, _)) = line.split_once(" = ").filter(|(k, _)| !k.starts_with('#')) {
            seen.insert(key.to_string());
        }
        let body = line.strip_prefix('#').unwrap_or("");
        if continuing && body.starts_with("  ") && !body.trim().is_empty() {
            out.push_str(body);
            out.push('\n');
            continue;
        }
        continuing = false;
        let key = body.split_once(" = ").map(|(k, _)| k);
        if let Some(key) = key.filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        }) {
            if !LEFT_COMMENTED.contains(&key) && seen.insert(key.to_string()) {
                out.push_str(body);
                out.push('\n');
                continuing = true;
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn full_file_examples_are_valid() {
    let text = uncommented();
    let c = Config::parse_str(&text, "twinbox.conf (uncommented)", &env())
        .unwrap_or_else(|e| panic!("{e}"));
    let a = &c.accounts[0];
    assert!(a.autorefresh.is_some() && a.presynchook.is_some() && a.maxsize.is_some());
    let remote = imap(&c, "PersonalRemote");
    assert_eq!(remote.tls.fingerprints.len(), 1);
    assert!(remote.keepalive.is_some() && !remote.idlefolders.is_empty());
    let m = maildir(&c, "PersonalLocal");
    assert_eq!(m.customflags.len(), 2);
    assert!(c.mbnames.is_none(), "the example keeps mbnames disabled");
    // The example nametrans pair round-trips (names are already namespace-relative).
    let f = &a.folders;
    assert_eq!(f.to_local("Sent Items"), "Sent");
    assert_eq!(f.to_remote("Sent"), "Sent Items");
    assert_eq!(f.to_local("Lists/rust"), "Lists/rust");
    f.check_round_trip(
        &[
            "INBOX".to_string(),
            "Sent Items".to_string(),
            "a/b".to_string(),
        ],
        &["INBOX".to_string(), "Drafts".to_string(), "x/y".to_string()],
    )
    .unwrap();
    assert!(
        text.lines()
            .filter(|l| l.starts_with("nametrans = "))
            .count()
            == 2
    );
}
