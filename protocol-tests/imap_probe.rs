//! `twinbox probe` run as the real binary against dovecot: it lists every mailbox with
//! MESSAGES, UIDNEXT, UIDVALIDITY and HIGHESTMODSEQ as doveadm reports them, from one
//! `LIST ... RETURN (STATUS ...)` command; its `-d imap` protocol log never shows the
//! password, whether it logs in with AUTHENTICATE PLAIN or with LOGIN.

use std::process::{Command, Output};

use base64::Engine;
use twinbox::testbed::{sample_messages, Dovecot, DovecotOptions};

use crate::fake::{FakeServer, Step};
use crate::imap_support::start;

const PROBE_USER: &str = "carol";
/// A password with a space and a quote: sent as a quoted string with escapes.
const PROBE_PASSWORD: &str = "Zq81 xy7\"probe";
const LIST_STATUS: &str =
    "LIST \"\" \"*\" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))";

fn dovecot() -> Dovecot {
    let dc = start(DovecotOptions::default().user(PROBE_USER, PROBE_PASSWORD));
    dc.seed_mailbox(PROBE_USER, "INBOX", &sample_messages(1, 4), &[])
        .expect("seed INBOX");
    let other = format!("Lists{}rust", dc.separator());
    dc.seed_mailbox(PROBE_USER, &other, &sample_messages(2, 2), &["\\Seen"])
        .expect("seed a folder");
    dc
}

fn probe(dc: &Dovecot) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_twinbox"))
        .args(["-d", "imap", "probe", "--host", dc.host(), "--port"])
        .arg(dc.imap_port().to_string())
        .args(["--user", PROBE_USER, "--password-env", "TWINBOX_PROBE_PW"])
        .env("TWINBOX_PROBE_PW", PROBE_PASSWORD)
        .env_remove("RUST_LOG")
        .output()
        .expect("run twinbox probe");
    assert!(
        out.status.success(),
        "probe failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Neither output shows the password, in any form it could take on the wire.
fn no_password(out: &Output) {
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(format!("\0{PROBE_USER}\0{PROBE_PASSWORD}"));
    for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(text);
        for secret in [PROBE_PASSWORD, "Zq81", "xy7", b64.as_str()] {
            assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
        }
    }
}

#[test]
fn imap_probe_lists_status_in_one_list_status_command() {
    let dc = dovecot();
    let out = probe(&dc);
    no_password(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("(1 command, "), "{stdout}");
    assert!(stdout.contains("LIST-STATUS"), "{stdout}");

    // Every mailbox, with doveadm's values: name messages uidnext uidvalidity hms delim.
    let mut seen = Vec::new();
    for line in stdout.lines().filter(|l| l.starts_with("  ")) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.first() == Some(&"mailbox") || cols.len() < 6 || cols[1] == "-" {
            continue;
        }
        let want = dc
            .mailbox_status(PROBE_USER, cols[0])
            .expect("doveadm status");
        let got: Vec<u64> = cols[1..5]
            .iter()
            .map(|c| c.parse().expect("a number"))
            .collect();
        assert_eq!(
            got,
            vec![
                u64::from(want.messages),
                u64::from(want.uidnext),
                u64::from(want.uidvalidity),
                want.highestmodseq
            ],
            "{line}"
        );
        seen.push(cols[0].to_string());
    }
    seen.sort();
    let mut expected = dc.mailboxes(PROBE_USER).expect("mailboxes");
    expected.retain(|m| m != "Lists");
    assert_eq!(seen, expected, "{stdout}");

    // The protocol log: one LIST-STATUS command, no STATUS, AUTHENTICATE redacted and
    // answered without a continuation (SASL-IR).
    let sent: Vec<&str> = stderr.lines().filter(|l| l.contains(" C: ")).collect();
    assert_eq!(
        sent.iter().filter(|l| l.contains(LIST_STATUS)).count(),
        1,
        "{stderr}"
    );
    assert!(!sent.iter().any(|l| l.contains(" STATUS ")), "{stderr}");
    assert!(
        sent.iter()
            .any(|l| l.ends_with("AUTHENTICATE PLAIN <redacted>")),
        "{stderr}"
    );
    assert!(!stderr.contains(" S: + "), "{stderr}");
    // Dovecot saw the same single command.
    dc.wait_for_log("Logged out", crate::imap_support::TIMEOUT)
        .expect("session ended");
    let cmds = dc.commands_seen(PROBE_USER).expect("rawlog");
    assert_eq!(
        cmds.iter().filter(|c| c.contains(" LIST ")).count(),
        1,
        "{cmds:?}"
    );
}

/// A server without AUTH=PLAIN (dovecot cannot be set up so: it then disables LOGIN too,
/// so this is the fake server): the probe logs in with LOGIN, and the log shows neither the
/// password nor its literal, though the server received both.
#[test]
fn imap_probe_login_is_redacted() {
    let password = "Zq81 xy7\"pröbe";
    let (port, server) = FakeServer::start(vec![
        Step::line("* OK [CAPABILITY IMAP4rev1] fake without AUTH=PLAIN"),
        Step::expect_cmd("LOGIN"),
        Step::tagged("OK [CAPABILITY IMAP4rev1] logged in"),
        Step::expect_cmd("LIST"),
        Step::line("* LIST () \"/\" INBOX"),
        Step::tagged("OK listed"),
        Step::expect_cmd("STATUS"),
        Step::line("* STATUS INBOX (MESSAGES 3 UIDNEXT 9 UIDVALIDITY 1234)"),
        Step::tagged("OK status"),
        Step::expect_cmd("LOGOUT"),
        Step::line("* BYE bye"),
        Step::tagged("OK done"),
        Step::ExpectClosed,
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_twinbox"))
        .args(["-d", "imap", "probe", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args(["--user", PROBE_USER, "--password-env", "TWINBOX_PROBE_PW"])
        .env("TWINBOX_PROBE_PW", password)
        .env_remove("RUST_LOG")
        .output()
        .expect("run twinbox probe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report = server.wait(std::time::Duration::from_secs(20));
    report.assert_ok();
    // The password went to the server (as a literal: it is not 7-bit)...
    let login = &report.commands()[0];
    assert!(login.is("LOGIN"), "{login:?}");
    assert!(
        login
            .literals
            .iter()
            .any(|l| l.as_slice() == password.as_bytes()),
        "{login:?}"
    );
    // ... and not to the log.
    for text in [&stdout, &stderr] {
        for secret in [password, "Zq81", "xy7", "pröbe"] {
            assert!(!text.contains(secret), "shows {secret:?}:\n{text}");
        }
    }
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(" C: ") && l.ends_with(" LOGIN <redacted>")),
        "{stderr}"
    );
    // Not even the password's length.
    assert!(!stderr.contains("literal bytes"), "{stderr}");
    assert!(stderr.contains("<redacted literal>"), "{stderr}");
    assert!(stdout.contains("INBOX"), "{stdout}");
    assert!(stdout.contains("1234"), "{stdout}");
}
