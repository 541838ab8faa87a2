//! Mailbox names that try to escape the native Maildir's root (`localfolders`): `../`,
//! `a/../../b`, absolute paths, `.`/`..` levels, control characters, NUL, `cur`/`new`/`tmp`
//! levels, modified UTF-7 spelling `..`, over-long names. Some are real mailboxes on the
//! remote dovecot (those dovecot lets `doveadm mailbox create` make); the rest are
//! announced by [`Liar`] as extra `* LIST` lines in front of the same dovecot. Each must
//! be refused (that mailbox fails, the ordinary one beside it syncs) or stored inside the
//! root; the assertion walks the file system around the root: nothing named `pwned`
//! appears outside it.

use std::path::{Path, PathBuf};

use twinbox::testbed::sample_messages;

use crate::maildir_bed::Engine;
use crate::maildir_side::maildir_bed;
use crate::support::liar::Liar;
use crate::support::sync::{msg, MailSide};

/// Names tried as real mailboxes on the remote dovecot.
const REAL: &[&str] = &[
    "../pwned-r1",
    "a/../../pwned-r2",
    "/pwned-r3",
    "..",
    "a/./pwned-r4",
    "pwned-r5\tx",
    "pwned-r6\u{1}x",
    "&AC4ALg-/&AC4ALg-/pwned-r7",
    "pwned-r8/cur",
    "~/pwned-r9",
    "a..pwned-r10",
];

/// Names announced by the liar only; `(name, as a literal)`.
fn announced() -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = [
        "../pwned-l1",
        "../../pwned-l2",
        "../../../../../../../../../../tmp/pwned-l3",
        "a/../../../pwned-l4",
        "/tmp/pwned-l5",
        "/pwned-l6",
        ".",
        "..",
        "a/./../pwned-l7",
        "pwned-l8\u{1b}[2J",
        "pwned-l9/new",
        "&AC4ALg-/&AC4ALg-/pwned-l10",
        "&AC8-tmp&AC8-pwned-l11",
        "a\\..\\..\\pwned-l12",
    ]
    .iter()
    .map(|s| (s.to_string(), false))
    .collect();
    v.push(("pwned-l13\nx".into(), true));
    v.push(("pwned-l14\rx".into(), true));
    v.push((format!("pwned-l16{}", "x".repeat(300)), false));
    v.push((
        format!("{}/", "d".repeat(200)).repeat(30) + "pwned-l17",
        false,
    ));
    v
}

/// A `* LIST` line for `name` (quoted, or as a literal).
fn list_line(name: &str, literal: bool) -> String {
    if literal {
        format!(
            "* LIST (\\HasNoChildren) \"/\" {{{}}}\r\n{name}",
            name.len()
        )
    } else {
        let q = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("* LIST (\\HasNoChildren) \"/\" \"{q}\"")
    }
}

/// Every path under `dir` (not following symlinks) whose name contains `pwned`, except
/// under `skip`.
fn pwned_under(dir: &Path, skip: &[PathBuf], out: &mut Vec<PathBuf>) {
    if skip.iter().any(|s| dir.starts_with(s)) {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy().contains("pwned")
            && !skip.iter().any(|s| p.starts_with(s))
        {
            out.push(p.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            pwned_under(&p, skip, out);
        }
    }
}

fn traversal(sep: char) {
    let bed = maildir_bed(Engine::Native, sep);
    let liar = Liar::start(bed.remote.dovecot.imap_port());
    let good = sample_messages(901, 2);
    bed.remote.seed("Good", &good, &["\\Seen"]).expect("seed");
    let mut real = Vec::new();
    for name in REAL {
        if bed.remote.dovecot.create_mailbox("alice", name).is_ok() {
            real.push(*name);
        }
    }
    eprintln!(
        "dovecot created {} of {} hostile names: {real:?}",
        real.len(),
        REAL.len()
    );
    let names = announced();
    let inject: Vec<String> = names.iter().map(|(n, l)| list_line(n, *l)).collect();
    liar.lie(move |_, line| {
        (line.starts_with("* LIST ") && line.contains("INBOX"))
            .then(|| format!("{line}\r\n{}", inject.join("\r\n")))
    });
    // The liar sits in front of the remote; the bed's config is rewritten to use it.
    let text = std::fs::read_to_string(bed.config_path()).expect("config");
    let from = format!("remoteport = {}", bed.remote.dovecot.imap_port());
    std::fs::write(
        bed.config_path(),
        text.replacen(&from, &format!("remoteport = {}", liar.port()), 1),
    )
    .expect("config");
    let r = bed.run();
    assert!(liar.lies() > 0, "no LIST was rewritten:\n{r}");
    assert!(!r.stderr.contains("panicked"), "{r}");
    assert_eq!(
        bed.local.messages("Good").expect("good"),
        {
            let mut v: Vec<_> = good.iter().map(|m| msg(m, &["\\Seen"])).collect();
            v.sort();
            v
        },
        "the ordinary mailbox did not sync:\n{r}"
    );
    let root = bed.local.root();
    let dv_root = bed
        .remote
        .dovecot
        .home_dir("alice")
        .parent()
        .and_then(Path::parent)
        .expect("dovecot dir")
        .to_path_buf();
    let alice_home = bed.remote.dovecot.home_dir("alice");
    let mut found = Vec::new();
    pwned_under(&dv_root, &[root.clone(), alice_home.clone()], &mut found);
    pwned_under(bed.dir.path(), &[], &mut found);
    for top in [Path::new("/"), Path::new("/tmp")] {
        if let Ok(rd) = std::fs::read_dir(top) {
            found.extend(
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().contains("pwned"))
                    .map(|e| e.path()),
            );
        }
    }
    assert!(
        found.is_empty(),
        "written outside the Maildir root: {found:?}\n{r}"
    );
    // Inside the root: no control character and no `.`/`..` in any name.
    let mut inside = Vec::new();
    pwned_under(&root, &[], &mut inside);
    for p in &inside {
        let rel = p.strip_prefix(&root).expect("under root");
        for c in rel.components() {
            let s = c.as_os_str().to_string_lossy();
            assert!(
                !s.chars().any(char::is_control) && s != "." && s != "..",
                "unsafe name inside the root: {p:?}"
            );
        }
    }
    eprintln!(
        "{} hostile names ({} real, {} announced): none written outside the root; inside: {inside:?}",
        real.len() + names.len(),
        real.len(),
        names.len()
    );
    // Each refused mailbox is named as failed.
    let text = format!("{}{}", r.stdout, r.stderr);
    for n in ["pwned-l1", "pwned-l6", "pwned-l16"] {
        assert!(text.contains(n), "{n} not reported:\n{r}");
    }
    // NUL cannot be in an IMAP string at all: the listing is refused as malformed (the
    // run fails with a clear error) and nothing is written.
    let nul = list_line("pwn\0ed-l15", true);
    liar.lie(move |_, line| {
        (line.starts_with("* LIST ") && line.contains("INBOX")).then(|| format!("{line}\r\n{nul}"))
    });
    let r = bed.run();
    assert!(!r.ok() && r.stderr.contains("malformed response"), "{r}");
    assert!(!r.stderr.contains("panicked"), "{r}");
    let mut found = Vec::new();
    pwned_under(&dv_root, &[alice_home], &mut found);
    assert!(
        found
            .iter()
            .all(|p| p.starts_with(&root) && !p.to_string_lossy().contains("ed-l15")),
        "{found:?}"
    );
}

#[test]
fn traversal_names_stay_inside_the_maildir_nested() {
    traversal('/');
}

#[test]
fn traversal_names_stay_inside_the_maildir_plusplus() {
    traversal('.');
}
