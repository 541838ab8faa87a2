//! The client against a scripted fake server, for what dovecot will not do: STARTTLS
//! downgrades (not advertised, refused, PREAUTH instead, injected responses), plaintext
//! LOGIN to a non-loopback host, malformed responses, a connection dropped mid-literal and
//! absurd literal sizes. Each ends in a clear error (no panic), with no credential sent
//! where it must not be.

use std::time::Duration;

use twinbox::imap::commands::FetchItems;
use twinbox::imap::{ConnectOptions, ImapError, Security, Session};

use crate::fake::{FakeReport, FakeServer, Step};
use crate::imap_support::{non_loopback_address, with_login, PASSWORD};

const WAIT: Duration = Duration::from_secs(20);
/// base64 of "\0alice\0secret", the AUTHENTICATE PLAIN initial response.
const PLAIN_IR: &str = "AGFsaWNlAHNlY3JldA==";

fn opts(port: u16, security: Security) -> ConnectOptions {
    let mut o = with_login(ConnectOptions::tcp("127.0.0.1", port, security));
    o.timeout = Duration::from_secs(10);
    o
}

/// Connecting must fail with an error containing `needle`; returns the error text.
async fn refused(o: &ConnectOptions, needle: &str) -> String {
    match Session::connect(o).await {
        Ok(_) => panic!("connected, but must be refused ({needle})"),
        Err(e) => {
            let text = format!("{e:#}");
            assert!(text.contains(needle), "{text}");
            text
        }
    }
}

/// Neither a login command nor the password (plain or base64) reached the server.
fn no_credentials(report: &FakeReport) {
    assert!(!report.saw_command("LOGIN"), "{report:?}");
    assert!(!report.saw_command("AUTHENTICATE"), "{report:?}");
    for s in &report.sessions {
        let text = String::from_utf8_lossy(&s.received);
        assert!(
            !text.contains(PASSWORD) && !text.contains(PLAIN_IR),
            "credentials sent: {text}"
        );
    }
}

#[tokio::test]
async fn imap_starttls_not_advertised_aborts_before_credentials() {
    let (port, server) = FakeServer::start(vec![
        Step::line("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] no tls here"),
        // The client re-reads CAPABILITY before giving up.
        Step::expect_cmd("CAPABILITY"),
        Step::line("* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR"),
        Step::tagged("OK done"),
        Step::ExpectClosed,
    ]);
    refused(&opts(port, Security::StartTls), "does not offer it").await;
    let report = server.wait(WAIT);
    report.assert_ok();
    no_credentials(&report);
}

#[tokio::test]
async fn imap_starttls_refused_aborts_before_credentials() {
    let (port, server) = FakeServer::start(vec![
        Step::line("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN SASL-IR] fake"),
        Step::expect_cmd("STARTTLS"),
        Step::tagged("NO TLS is broken today"),
        Step::ExpectClosed,
    ]);
    let text = refused(
        &opts(port, Security::StartTls),
        "refusing to continue unencrypted",
    )
    .await;
    assert!(text.contains("TLS is broken today"), "{text}");
    let report = server.wait(WAIT);
    report.assert_ok();
    no_credentials(&report);
}

#[tokio::test]
async fn imap_preauth_greeting_where_starttls_required_is_refused() {
    let (port, server) = FakeServer::start(vec![
        Step::line("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome, no need for TLS"),
        Step::ExpectClosed,
    ]);
    refused(&opts(port, Security::StartTls), "PREAUTH").await;
    let report = server.wait(WAIT);
    report.assert_ok();
    assert!(report.commands().is_empty(), "{report:?}");
}

/// Responses pipelined after STARTTLS's OK, before the handshake, are discarded: a forged
/// capability list and a forged completion of the next command change nothing.
#[tokio::test]
async fn imap_starttls_response_injection_is_discarded() {
    let (port, server) = FakeServer::start(vec![
        Step::line("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] fake"),
        Step::expect_cmd("STARTTLS"),
        Step::tagged_then(
            "OK Begin TLS",
            "* CAPABILITY IMAP4rev1 X-INJECTED LOGINDISABLED\r\n\
             T2 OK [CAPABILITY IMAP4rev1 X-INJECTED] forged\r\n",
        ),
        Step::StartTls,
        Step::expect_cmd("CAPABILITY"),
        Step::line("* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR"),
        Step::tagged("OK done"),
        Step::expect_cmd("AUTHENTICATE"),
        Step::tagged("OK [CAPABILITY IMAP4rev1 SASL-IR X-AFTER-LOGIN] logged in"),
        Step::expect_cmd("LOGOUT"),
        Step::line("* BYE bye"),
        Step::tagged("OK done"),
        Step::ExpectClosed,
    ]);
    let mut o = opts(port, Security::StartTls);
    o.tls.ca_file = Some(server.ca_cert_path().to_path_buf());
    let s = Session::connect(&o)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(s.encrypted);
    assert!(!s.has("X-INJECTED"), "{}", s.capabilities());
    assert!(s.has("X-AFTER-LOGIN"), "{}", s.capabilities());
    s.logout().await.expect("LOGOUT");
    let report = server.wait(WAIT);
    report.assert_ok();
    let names: Vec<String> = report.commands().iter().map(|c| c.text.clone()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

/// A password is not sent in the clear to a host off loopback unless explicitly allowed.
#[tokio::test]
async fn imap_plaintext_login_to_non_loopback_host_needs_permission() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("no non-loopback address on this machine: skipped");
        return;
    };
    let (port, server) = FakeServer::start_sessions_on(
        ip,
        vec![
            vec![
                Step::line("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] plain"),
                Step::ExpectClosed,
            ],
            vec![
                Step::line("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] plain"),
                Step::expect_cmd("AUTHENTICATE"),
                Step::tagged("OK [CAPABILITY IMAP4rev1] in"),
                Step::expect_cmd("LOGOUT"),
                Step::line("* BYE bye"),
                Step::tagged("OK done"),
                Step::ExpectClosed,
            ],
        ],
    );
    let mut o = with_login(ConnectOptions::tcp(&ip.to_string(), port, Security::Plain));
    o.timeout = Duration::from_secs(10);
    refused(&o, "refusing to send a password unencrypted").await;
    o.allow_plaintext_login = true;
    let s = Session::connect(&o)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    s.logout().await.expect("LOGOUT");
    let report = server.wait(WAIT);
    report.assert_ok();
    assert!(report.sessions[0].commands.is_empty(), "{report:?}");
    assert!(report.sessions[1].commands[0].text.contains(PLAIN_IR));
}

/// Greeting, AUTHENTICATE, then `rest`.
fn logged_in(rest: Vec<Step>) -> Vec<Step> {
    let mut v = vec![
        Step::line("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] fake"),
        Step::expect_cmd("AUTHENTICATE"),
        Step::tagged("OK [CAPABILITY IMAP4rev1 SASL-IR] in"),
    ];
    v.extend(rest);
    v
}

/// The process's peak virtual memory (VmPeak), in KiB.
fn vm_peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmPeak:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmPeak in /proc/self/status")
}

async fn fetch_one(s: &mut Session) -> Result<usize, ImapError> {
    let mut n = 0;
    let items = FetchItems {
        body: true,
        ..Default::default()
    };
    s.uid_fetch("1", items, None, false, &mut |_| {
        n += 1;
        Ok(())
    })
    .await?;
    Ok(n)
}

/// A malformed response fails the command with the offending text; the session goes on.
/// A malformed greeting (the wrong port) is named as such.
#[tokio::test]
async fn imap_malformed_responses_give_clear_errors() {
    let (port, server) = FakeServer::start_sessions(vec![
        logged_in(vec![
            Step::expect_cmd("LIST"),
            Step::raw("* LIST (\\HasNoChildren \"/\" INBOX\r\n"),
            Step::tagged("OK done"),
            Step::expect_cmd("NOOP"),
            Step::tagged("OK still here"),
            Step::ExpectClosed,
        ]),
        vec![
            Step::raw("HTTP/1.1 400 Bad Request\r\n\r\n"),
            Step::ExpectClosed,
        ],
    ]);
    let o = opts(port, Security::Plain);
    let mut s = Session::connect(&o)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    match s.list("", "*", false).await {
        Err(ImapError::Malformed(text)) => {
            assert!(text.contains("* LIST (\\HasNoChildren"), "{text}")
        }
        other => panic!("expected a malformed-response error, got {other:?}"),
    }
    s.noop().await.expect("the session goes on");
    drop(s);
    let text = refused(&o, "reading the server greeting").await;
    assert!(text.contains("HTTP/1.1 400"), "{text}");
    server.wait(WAIT).assert_ok();
}

#[tokio::test]
async fn imap_connection_dropped_mid_literal_is_named() {
    let (port, server) = FakeServer::start(logged_in(vec![
        Step::expect_cmd("UID FETCH"),
        Step::SendRawThenClose(b"* 1 FETCH (UID 1 BODY[] {100}\r\nFrom: a@b\r\n".to_vec()),
    ]));
    let mut s = Session::connect(&opts(port, Security::Plain))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let err = fetch_one(&mut s)
        .await
        .expect_err("the literal is cut short");
    let text = err.to_string();
    assert!(matches!(err, ImapError::Truncated(_)), "{text}");
    assert!(
        text.contains("89 bytes of a literal missing") && text.contains("BODY[] {100}"),
        "{text}"
    );
    server.wait(WAIT).assert_ok();
}

/// `{4294967295}` is refused by the size limit (nothing of that size is allocated), and a
/// message over a small configured limit fails alone: the session goes on.
#[tokio::test]
async fn imap_oversize_literals_fail_the_message_cleanly() {
    let mut huge = b"* 1 FETCH (UID 1 BODY[] {4294967295}\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 256 * 1024));
    let mut big = b"* 1 FETCH (UID 1 BODY[] {5000}\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'y', 5000));
    big.extend_from_slice(b")\r\n");
    let (port, server) = FakeServer::start_sessions(vec![
        logged_in(vec![
            Step::expect_cmd("UID FETCH"),
            Step::SendRawThenClose(huge),
        ]),
        logged_in(vec![
            Step::expect_cmd("UID FETCH"),
            Step::Send(big),
            Step::tagged("OK fetched"),
            Step::expect_cmd("NOOP"),
            Step::tagged("OK still here"),
            Step::ExpectClosed,
        ]),
    ]);
    let mut s = Session::connect(&opts(port, Security::Plain))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let peak_before = vm_peak_kib();
    let err = fetch_one(&mut s).await.expect_err("4 GiB literal");
    // Not even reserved: the process's peak address space did not grow by the 4 GiB
    // announced (other tests in the process, with their threads' stacks and malloc arenas,
    // add far less than the 3 GiB allowed here in that moment).
    let grown = vm_peak_kib().saturating_sub(peak_before);
    assert!(grown < 3 << 20, "VmPeak grew by {grown} KiB");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            ImapError::TooLarge {
                size: 4294967295,
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("maxmessagesize"), "{text}");
    drop(s);

    let mut o = opts(port, Security::Plain);
    o.max_message_size = 1000;
    let mut s = Session::connect(&o)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let err = fetch_one(&mut s).await.expect_err("over the limit");
    assert!(
        matches!(
            err,
            ImapError::TooLarge {
                size: 5000,
                limit: 1000
            }
        ),
        "{err}"
    );
    s.noop().await.expect("the session goes on");
    drop(s);
    server.wait(WAIT).assert_ok();
}

/// Without SASL-IR the PLAIN response follows the server's continuation; a NO names the
/// account and the server's reason.
#[tokio::test]
async fn imap_authenticate_without_sasl_ir_and_failed_login() {
    let (port, server) = FakeServer::start(vec![
        Step::line("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] no SASL-IR"),
        Step::expect_cmd("AUTHENTICATE"),
        Step::line("+ "),
        Step::expect_that("the PLAIN response alone", |t| t == PLAIN_IR),
        Step::tagged("NO [AUTHENTICATIONFAILED] wrong password"),
        Step::ExpectClosed,
    ]);
    let text = refused(
        &opts(port, Security::Plain),
        "authentication as alice failed (PLAIN)",
    )
    .await;
    assert!(text.contains("wrong password"), "{text}");
    let report = server.wait(WAIT);
    report.assert_ok();
    assert_eq!(report.commands()[0].text, "T1 AUTHENTICATE PLAIN");
}

/// A BYE greeting, a BYE in mid-session and a server that stops answering each give their
/// own error (the last after the configured timeout, not never).
#[tokio::test]
async fn imap_bye_and_silent_server_give_clear_errors() {
    let (port, server) = FakeServer::start_sessions(vec![
        vec![
            Step::line("* BYE too many connections from your address"),
            Step::ExpectClosed,
        ],
        logged_in(vec![
            Step::expect_cmd("NOOP"),
            Step::SendRawThenClose(b"* BYE server shutting down\r\n".to_vec()),
        ]),
        logged_in(vec![
            Step::expect_cmd("NOOP"),
            // No answer, ever.
            Step::ExpectClosed,
        ]),
    ]);
    let mut o = opts(port, Security::Plain);
    refused(&o, "refused the connection: too many connections").await;

    let mut s = Session::connect(&o)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    match s.noop().await {
        Err(ImapError::Bye(text)) => assert_eq!(text, "server shutting down"),
        other => panic!("expected BYE, got {other:?}"),
    }
    drop(s);

    o.timeout = Duration::from_millis(500);
    let mut s = Session::connect(&o)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let err = s.noop().await.expect_err("no answer");
    assert!(matches!(err, ImapError::Timeout(_)), "{err}");
    drop(s);
    server.wait(WAIT).assert_ok();
}

/// A completion forged before STARTTLS's OK for a tag the client has not used yet (its
/// future AUTHENTICATE) is not taken as that command's answer after the upgrade.
#[tokio::test]
async fn imap_forged_completion_before_starttls_is_ignored() {
    let (port, server) = FakeServer::start(vec![
        Step::line("* OK [CAPABILITY IMAP4rev1 STARTTLS] fake"),
        Step::expect_cmd("STARTTLS"),
        Step::raw("T3 OK [CAPABILITY IMAP4rev1 X-FORGED] forged login\r\n"),
        Step::tagged("OK Begin TLS"),
        Step::StartTls,
        Step::expect_cmd("CAPABILITY"),
        Step::line("* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR"),
        Step::tagged("OK done"),
        Step::expect_cmd("AUTHENTICATE"),
        Step::tagged("NO [AUTHENTICATIONFAILED] wrong password"),
        Step::ExpectClosed,
    ]);
    let mut o = opts(port, Security::StartTls);
    o.tls.ca_file = Some(server.ca_cert_path().to_path_buf());
    let text = refused(&o, "authentication as alice failed").await;
    assert!(text.contains("wrong password"), "{text}");
    server.wait(WAIT).assert_ok();
}
