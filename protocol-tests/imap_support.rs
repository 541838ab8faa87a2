//! Helpers shared by the `imap_*` protocol tests: connection options for each transport of
//! a test dovecot, seeding, and checks of what a session reports against doveadm.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use twinbox::imap::commands::FetchItems;
use twinbox::imap::{ConnectOptions, Endpoint, Password, Security, Session};
use twinbox::testbed::{normalize_crlf, sample_messages, Dovecot, DovecotOptions};

/// The account the tests log in as.
pub const USER: &str = "alice";
/// Its password (DovecotOptions' default users).
pub const PASSWORD: &str = "secret";
/// Per-read timeout of test sessions: generous, only a bound on a hang.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Starts a dovecot or fails the test with the reason.
pub fn start(opts: DovecotOptions) -> Dovecot {
    Dovecot::start(opts).unwrap_or_else(|e| panic!("dovecot should start: {e:#}"))
}

/// Adds the test account's credentials and the test timeout.
pub fn with_login(mut o: ConnectOptions) -> ConnectOptions {
    o.user = Some(USER.into());
    o.password = Some(Password::new(PASSWORD));
    o.timeout = TIMEOUT;
    o
}

/// Plain TCP to the IMAP port.
pub fn plain(dc: &Dovecot) -> ConnectOptions {
    with_login(ConnectOptions::tcp(
        dc.host(),
        dc.imap_port(),
        Security::Plain,
    ))
}

/// Implicit TLS to the imaps port, trusting the instance's CA.
pub fn imaps(dc: &Dovecot) -> ConnectOptions {
    let port = dc.imaps_port().expect("TLS is on");
    let mut o = with_login(ConnectOptions::tcp(dc.host(), port, Security::Tls));
    o.tls.ca_file = dc.ca_cert_path().map(Into::into);
    o
}

/// STARTTLS on the IMAP port, trusting the instance's CA.
pub fn starttls(dc: &Dovecot) -> ConnectOptions {
    let mut o = with_login(ConnectOptions::tcp(
        dc.host(),
        dc.imap_port(),
        Security::StartTls,
    ));
    o.tls.ca_file = dc.ca_cert_path().map(Into::into);
    o
}

/// dovecot's imap binary as a PREAUTH tunnel (`preauthtunnel`).
pub fn preauth_tunnel(dc: &Dovecot) -> ConnectOptions {
    let mut o = ConnectOptions::new(Endpoint::Tunnel {
        command: dc.preauth_tunnel_command(USER),
        preauth: true,
    });
    o.timeout = TIMEOUT;
    o
}

/// Connects or fails the test with the whole error chain.
pub async fn connect(opts: &ConnectOptions) -> Session {
    Session::connect(opts)
        .await
        .unwrap_or_else(|e| panic!("connect with {:?}: {e:#}", opts.endpoint))
}

/// Messages seeded into INBOX (in UID order) and a second mailbox.
pub struct Seeded {
    /// INBOX's messages as delivered, in UID order.
    pub inbox: Vec<Vec<u8>>,
    /// INBOX's UIDs.
    pub uids: Vec<u32>,
    /// The second mailbox (full name).
    pub other: String,
}

/// Seeds INBOX with `n` sample messages and `Archive<sep>2025` with three.
pub fn seed(dc: &Dovecot, n: usize) -> Seeded {
    let inbox = sample_messages(42, n);
    let uids = dc
        .seed_mailbox(USER, "INBOX", &inbox, &[])
        .expect("seed INBOX");
    let other = format!("Archive{}2025", dc.separator());
    dc.seed_mailbox(USER, &other, &sample_messages(7, 3), &["\\Seen"])
        .expect("seed the second mailbox");
    Seeded { inbox, uids, other }
}

/// LIST "" "*" with STATUS: every mailbox doveadm knows is listed, and each selectable
/// one's MESSAGES, UIDNEXT, UIDVALIDITY and HIGHESTMODSEQ equal doveadm's.
pub async fn check_list_status(s: &mut Session, dc: &Dovecot) {
    let listed = s.list("", "*", true).await.expect("LIST with STATUS");
    let names: BTreeSet<String> = listed.iter().map(|m| m.name.clone()).collect();
    let expected: BTreeSet<String> = dc
        .mailboxes(USER)
        .expect("doveadm mailbox list")
        .into_iter()
        .collect();
    assert_eq!(names, expected, "listed mailboxes");
    for m in listed.iter().filter(|m| m.selectable()) {
        let st = m
            .status
            .unwrap_or_else(|| panic!("no STATUS for {}", m.name));
        let want = dc.mailbox_status(USER, &m.name).expect("doveadm status");
        assert_eq!(st.messages, Some(want.messages), "MESSAGES of {}", m.name);
        assert_eq!(st.uidnext, Some(want.uidnext), "UIDNEXT of {}", m.name);
        assert_eq!(
            st.uidvalidity,
            Some(want.uidvalidity),
            "UIDVALIDITY of {}",
            m.name
        );
        if s.condstore {
            assert_eq!(
                st.highestmodseq,
                Some(want.highestmodseq),
                "HIGHESTMODSEQ of {}",
                m.name
            );
        }
    }
}

/// Fetches every INBOX message with `BODY.PEEK[]`: the bytes equal what was seeded (CRLF)
/// and what doveadm serves.
pub async fn check_fetch(s: &mut Session, dc: &Dovecot, seeded: &Seeded) {
    s.select(b"INBOX", true, None).await.expect("EXAMINE INBOX");
    let mut got = Vec::new();
    let items = FetchItems {
        body: true,
        size: true,
        ..Default::default()
    };
    s.uid_fetch("1:*", items, None, false, &mut |m| {
        got.push(m);
        Ok(())
    })
    .await
    .expect("UID FETCH bodies");
    got.sort_by_key(|m| m.uid);
    assert_eq!(
        got.iter().map(|m| m.uid).collect::<Vec<_>>(),
        seeded.uids,
        "UIDs fetched"
    );
    for (m, raw) in got.iter().zip(&seeded.inbox) {
        let body = m.body.as_deref().expect("body fetched");
        let want = normalize_crlf(raw);
        assert!(body == want.as_slice(), "UID {}: bytes differ", m.uid);
        let served = dc
            .fetch_message(USER, "INBOX", m.uid)
            .expect("doveadm fetch");
        assert!(
            body == served.as_slice(),
            "UID {}: differs from doveadm",
            m.uid
        );
        assert_eq!(m.size.map(|n| n as usize), Some(want.len()));
    }
}

/// A non-loopback address of this machine (the source address of the default route), if
/// it has one.
pub fn non_loopback_address() -> Option<std::net::IpAddr> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // Connecting a UDP socket sends nothing; it only picks the route and source address.
    sock.connect("192.0.2.1:9")
        .or_else(|_| sock.connect("8.8.8.8:53"))
        .ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}
