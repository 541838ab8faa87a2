//! The tier matrix: the core sync scenarios of [`crate::sync_scenarios`] against a dovecot
//! advertising fewer extensions (QRESYNC; CONDSTORE only; neither; and without UIDPLUS,
//! LIST-STATUS, LITERAL+, MULTIAPPEND, MOVE, ESEARCH), with the same end results, and the
//! proof from dovecot's rawlog that the client never used what was not advertised.
//!
//! dovecot still implements what `imap_capability` hides, so a client that used a hidden
//! extension would work here and fail on a real server: only the rawlog check catches it.

use std::sync::Arc;

use crate::support::sync::{msg, start_dovecot, ImapSide, MailSide, SyncBed};
use crate::sync_scenarios as sc;
use twinbox::testbed::{capabilities_without, sample_messages, Dovecot, DovecotOptions, TestUser};

/// What a test server advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Everything dovecot offers (QRESYNC, LIST-STATUS, LITERAL+, MULTIAPPEND, ...).
    Qresync,
    /// CONDSTORE without QRESYNC (Gmail).
    CondstoreOnly,
    /// Neither CONDSTORE nor QRESYNC (Exchange, many hosting providers).
    Neither,
    /// No UIDPLUS: no APPENDUID, no UID EXPUNGE.
    NoUidplus,
    /// No LIST-STATUS: LIST, then STATUS per mailbox.
    NoListStatus,
    /// No LITERAL+: synchronising literals.
    NoLiteralPlus,
    /// No MULTIAPPEND: one APPEND per message.
    NoMultiappend,
    /// A bare IMAP4rev1 server: none of the above, nor MOVE or ESEARCH.
    Bare,
}

impl Tier {
    /// Every tier (the benchmark's `--tier all`).
    pub const ALL: [Tier; 8] = [
        Tier::Qresync,
        Tier::CondstoreOnly,
        Tier::Neither,
        Tier::NoUidplus,
        Tier::NoListStatus,
        Tier::NoLiteralPlus,
        Tier::NoMultiappend,
        Tier::Bare,
    ];

    /// The capabilities this tier hides.
    pub fn removed(self) -> &'static [&'static str] {
        match self {
            Tier::Qresync => &[],
            Tier::CondstoreOnly => &["QRESYNC"],
            Tier::Neither => &["CONDSTORE", "QRESYNC"],
            Tier::NoUidplus => &["UIDPLUS"],
            Tier::NoListStatus => &["LIST-STATUS"],
            Tier::NoLiteralPlus => &["LITERAL+"],
            Tier::NoMultiappend => &["MULTIAPPEND"],
            Tier::Bare => &[
                "CONDSTORE",
                "QRESYNC",
                "UIDPLUS",
                "LIST-STATUS",
                "LITERAL+",
                "MULTIAPPEND",
                "MOVE",
                "ESEARCH",
            ],
        }
    }

    /// Whether the server keeps modseqs the client may use.
    pub fn condstore(self) -> bool {
        !self.removed().contains(&"CONDSTORE")
    }

    /// A short name (for `--tier` and reports).
    pub fn name(self) -> &'static str {
        match self {
            Tier::Qresync => "qresync",
            Tier::CondstoreOnly => "condstore",
            Tier::Neither => "neither",
            Tier::NoUidplus => "no-uidplus",
            Tier::NoListStatus => "no-list-status",
            Tier::NoLiteralPlus => "no-literal-plus",
            Tier::NoMultiappend => "no-multiappend",
            Tier::Bare => "bare",
        }
    }

    /// Dovecot options advertising this tier (plain loopback, no compression, command log
    /// on), with `users`.
    pub fn options(self, users: &[String]) -> DovecotOptions {
        let mut o = DovecotOptions::default()
            .tls(false)
            .compress(false)
            .users(users.iter().map(|u| TestUser::new(u, "secret")).collect());
        if self != Tier::Qresync {
            o = o.capabilities(capabilities_without(self.removed()));
        }
        o
    }
}

/// The extension syntax in one client command that needs one of `removed`, if any.
pub fn violation(cmd: &str, removed: &[&str]) -> Option<&'static str> {
    let up = cmd.to_ascii_uppercase();
    let words: Vec<&str> = up.split_ascii_whitespace().collect();
    let verb = |i: usize| words.get(i).copied().unwrap_or("");
    let is_uid = verb(1) == "UID";
    let name = if is_uid { verb(2) } else { verb(1) };
    let gone = |c: &str| removed.iter().any(|r| r.eq_ignore_ascii_case(c));
    let literals = literal_announcements(&up);
    if gone("CONDSTORE") {
        for w in [
            "CHANGEDSINCE",
            "UNCHANGEDSINCE",
            "MODSEQ",
            "(CONDSTORE)",
            "CONDSTORE",
        ] {
            if up.contains(w) {
                return Some("CONDSTORE");
            }
        }
    }
    if gone("QRESYNC") && (up.contains("QRESYNC") || up.contains("VANISHED")) {
        return Some("QRESYNC");
    }
    if gone("LIST-STATUS") && name == "LIST" && up.contains(" RETURN ") {
        return Some("LIST-STATUS");
    }
    if gone("LITERAL+") && literals.iter().any(|(_, plus)| *plus) {
        return Some("LITERAL+");
    }
    if gone("MULTIAPPEND") && name == "APPEND" && literals.len() > 1 {
        return Some("MULTIAPPEND");
    }
    if gone("UIDPLUS") && is_uid && name == "EXPUNGE" {
        return Some("UIDPLUS");
    }
    if gone("MOVE") && name == "MOVE" {
        return Some("MOVE");
    }
    if gone("ESEARCH") && name == "SEARCH" && verb(if is_uid { 3 } else { 2 }) == "RETURN" {
        return Some("ESEARCH");
    }
    None
}

/// `{n}` / `{n+}` announcements in a command line: (size, non-synchronising).
fn literal_announcements(cmd: &str) -> Vec<(usize, bool)> {
    let re = regex::Regex::new(r"\{(\d+)(\+?)\}").expect("literal regex");
    re.captures_iter(cmd)
        .filter_map(|c| Some((c.get(1)?.as_str().parse().ok()?, !c[2].is_empty())))
        .collect()
}

/// Asserts no command `user` sent to `dv` uses an extension of `removed`; returns the
/// commands.
pub fn assert_only_advertised(dv: &Dovecot, user: &str, removed: &[&str]) -> Vec<String> {
    let cmds = dv.commands_seen(user).expect("command log");
    assert!(!cmds.is_empty(), "the command log of {user} is empty");
    let bad: Vec<String> = cmds
        .iter()
        .filter_map(|c| violation(c, removed).map(|x| format!("{x}: {c}")))
        .collect();
    assert!(
        bad.is_empty(),
        "{user} used extensions the server did not advertise:\n{}",
        bad.join("\n")
    );
    cmds
}

type Scenario = fn(&SyncBed<ImapSide>);

/// The core scenarios, each on a fresh pair of accounts.
const SCENARIOS: &[(&str, Scenario)] = &[
    ("first sync remote to empty local", |b| {
        sc::first_sync_populated_to_empty(b, false)
    }),
    ("first sync local to empty remote", |b| {
        sc::first_sync_populated_to_empty(b, true)
    }),
    ("changes on both sides", sc::changes_on_both_sides),
    ("flag conflicts", sc::flag_conflicts_merge),
    ("expunge beats flag change", sc::expunge_beats_flag_change),
    ("same message on both sides", same_message_on_both_sides),
    ("mailboxes created", sc::mailboxes_created_on_either_side),
];

/// Sets the mtime (dovecot's INTERNALDATE for Maildir) of every message file of a mailbox.
fn pin_dates(side: &ImapSide, mailbox: &str, to: std::time::SystemTime) {
    let out = side
        .dovecot
        .doveadm(&["mailbox", "path", "-u", &side.user, mailbox])
        .expect("mailbox path");
    let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out).trim());
    for sub in ["cur", "new"] {
        for e in std::fs::read_dir(dir.join(sub)).expect("read maildir") {
            std::fs::File::options()
                .write(true)
                .open(e.expect("entry").path())
                .and_then(|f| f.set_modified(to))
                .expect("set mtime");
        }
    }
}

/// [`sc::same_message_on_both_sides_before_first_sync`], with the copies' INTERNALDATEs
/// made equal first: pairing needs the same date, and two doveadm deliveries on a loaded
/// machine can fall on different seconds (that scenario flakes then).
fn same_message_on_both_sides(bed: &SyncBed<ImapSide>) {
    let m = sample_messages(51, 3);
    bed.local
        .append("INBOX", &m[0], &["\\Seen"])
        .expect("append");
    bed.remote
        .append("INBOX", &m[0], &["\\Flagged"])
        .expect("append");
    bed.local.append("INBOX", &m[1], &[]).expect("append");
    bed.remote.append("INBOX", &m[2], &[]).expect("append");
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    pin_dates(&bed.local, "INBOX", when);
    pin_dates(&bed.remote, "INBOX", when);
    let run = bed.sync();
    let s = run.summary();
    assert_eq!((s.to_local, s.to_remote), (1, 1), "{run}");
    let snap = bed.assert_converged();
    let mut want = vec![
        msg(&m[0], &["\\Flagged", "\\Seen"]),
        msg(&m[1], &[]),
        msg(&m[2], &[]),
    ];
    want.sort();
    assert_eq!(snap["INBOX"], want);
}

/// Runs every core scenario against a dovecot of this tier (both sides on it), then checks
/// every session's commands against the advertisement. Returns the server and all commands.
fn run_tier(tier: Tier) -> (Arc<Dovecot>, Vec<String>) {
    let users: Vec<String> = (0..SCENARIOS.len())
        .flat_map(|i| [format!("r{i}"), format!("l{i}")])
        .collect();
    let dv = start_dovecot(tier.options(&users));
    for (i, (what, scenario)) in SCENARIOS.iter().enumerate() {
        let mut bed = SyncBed::new(
            ImapSide::new(dv.clone(), &format!("r{i}")),
            ImapSide::new(dv.clone(), &format!("l{i}")),
        );
        bed.noop_opens_nothing = tier.condstore();
        eprintln!("tier {}: {what}", tier.name());
        scenario(&bed);
    }
    let mut all = Vec::new();
    for u in &users {
        all.extend(assert_only_advertised(&dv, u, tier.removed()));
    }
    (dv, all)
}

fn count(cmds: &[String], pred: impl Fn(&str) -> bool) -> usize {
    cmds.iter()
        .filter(|c| pred(&c.to_ascii_uppercase()))
        .count()
}

#[test]
fn tier_qresync() {
    let (_dv, cmds) = run_tier(Tier::Qresync);
    // The fast paths are really taken here, so the other tiers' checks mean something.
    assert!(count(&cmds, |c| c.contains("ENABLE QRESYNC")) > 0);
    assert!(count(&cmds, |c| c.contains(" RETURN (STATUS")) > 0);
    assert!(count(&cmds, |c| c.contains("+}")) > 0);
    assert!(count(&cmds, |c| c.contains("UID EXPUNGE")) > 0);
    assert!(
        count(&cmds, |c| c.contains(" APPEND ")
            && literal_announcements(c).len() > 1)
            > 0
    );
}

#[test]
fn tier_condstore_only() {
    let (_dv, cmds) = run_tier(Tier::CondstoreOnly);
    assert!(count(&cmds, |c| c.contains("CHANGEDSINCE")) > 0);
}

#[test]
fn tier_neither_condstore_nor_qresync() {
    run_tier(Tier::Neither);
}

#[test]
fn tier_no_uidplus() {
    run_tier(Tier::NoUidplus);
}

#[test]
fn tier_no_list_status() {
    let (_dv, cmds) = run_tier(Tier::NoListStatus);
    assert!(
        count(&cmds, |c| c.split_ascii_whitespace().nth(1)
            == Some("STATUS"))
            > 0
    );
}

#[test]
fn tier_no_literal_plus() {
    run_tier(Tier::NoLiteralPlus);
}

#[test]
fn tier_no_multiappend() {
    run_tier(Tier::NoMultiappend);
}

#[test]
fn tier_bare_imap4rev1() {
    run_tier(Tier::Bare);
}

#[test]
fn violation_detects_each_extension() {
    let all = Tier::Bare.removed();
    for (cmd, want) in [
        (
            "a1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5)",
            Some("CONDSTORE"),
        ),
        ("a1 SELECT INBOX (CONDSTORE)", Some("CONDSTORE")),
        (
            "a1 UID STORE 1 +FLAGS.SILENT (\\Seen) (UNCHANGEDSINCE 3)",
            Some("CONDSTORE"),
        ),
        ("a1 ENABLE QRESYNC", Some("QRESYNC")),
        (
            "a1 LIST \"\" \"*\" RETURN (STATUS (MESSAGES))",
            Some("LIST-STATUS"),
        ),
        ("a1 APPEND INBOX () {12+}", Some("LITERAL+")),
        ("a1 APPEND INBOX () {12} () {13}", Some("MULTIAPPEND")),
        ("a1 UID EXPUNGE 4", Some("UIDPLUS")),
        ("a1 UID MOVE 4 Trash", Some("MOVE")),
        ("a1 UID SEARCH RETURN (ALL) UID 1:*", Some("ESEARCH")),
        ("a1 APPEND INBOX () {12}", None),
        ("a1 UID SEARCH UID 1:*", None),
        ("a1 EXPUNGE", None),
    ] {
        assert_eq!(violation(cmd, all), want, "{cmd}");
    }
    assert_eq!(violation("a1 APPEND INBOX () {12+}", &[]), None);
}

/// `disable_extensions` in a repository: a server advertising everything is used as if it
/// lacked those (written in both repositories).
#[test]
fn disabled_extensions_are_not_used() {
    let users = ["alice".to_string(), "bob".to_string()];
    let dv = start_dovecot(Tier::Qresync.options(&users));
    let mut bed = SyncBed::new(
        ImapSide::new(dv.clone(), "alice"),
        ImapSide::new(dv.clone(), "bob"),
    );
    bed.noop_opens_nothing = false;
    let off = "QRESYNC, CONDSTORE, UIDPLUS, LITERAL+, MULTIAPPEND, LIST-STATUS";
    let text = std::fs::read_to_string(bed.config_path()).expect("read config");
    let text = text.replace(
        "remotepass = secret\n",
        &format!("remotepass = secret\ndisable_extensions = {off}\n"),
    );
    std::fs::write(bed.config_path(), text).expect("write config");
    sc::changes_on_both_sides(&bed);
    let removed: Vec<&str> = off.split(", ").collect();
    for u in &users {
        assert_only_advertised(&dv, u, &removed);
    }
}
