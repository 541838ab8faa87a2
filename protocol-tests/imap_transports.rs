//! Every transport against a real dovecot, each with and without COMPRESS=DEFLATE: plain
//! TCP, implicit TLS, STARTTLS, a PREAUTH tunnel, a transport tunnel (`openssl s_client`)
//! and ssh through a loopback sshd. Each session lists mailboxes with STATUS (values equal
//! doveadm's) and fetches INBOX (bytes equal what was seeded); the compressed session moves
//! fewer bytes through the transport than the uncompressed one doing the same work.

use twinbox::imap::transport::SshOptions;
use twinbox::imap::{Compression, ConnectOptions, Endpoint};
use twinbox::testbed::{Dovecot, DovecotOptions, Sshd};

use crate::imap_support::{
    check_fetch, check_list_status, connect, imaps, plain, preauth_tunnel, seed, start, starttls,
    with_login, Seeded, TIMEOUT,
};

/// Connects with `compress`, checks LIST-STATUS and the fetched bytes, logs out; returns
/// the transport's (received, sent) bytes.
async fn exercise(
    dc: &Dovecot,
    seeded: &Seeded,
    opts: &ConnectOptions,
    compress: bool,
    encrypted: bool,
) -> (u64, u64) {
    let mut o = opts.clone();
    o.compress = if compress {
        Compression::Always
    } else {
        Compression::Never
    };
    let mut s = connect(&o).await;
    assert_eq!(s.compressed, compress, "compression active");
    assert_eq!(s.encrypted, encrypted, "encryption reported");
    assert!(s.qresync && s.condstore, "QRESYNC enabled");
    check_list_status(&mut s, dc).await;
    check_fetch(&mut s, dc, seeded).await;
    let bytes = s.transport_bytes();
    s.logout().await.expect("LOGOUT");
    bytes
}

/// The same work without and with compression: compression must save bytes overall and
/// on the received side (the few short commands sent grow a little with each deflate
/// flush, so the sent side alone is not compared).
async fn with_and_without_compression(
    dc: &Dovecot,
    seeded: &Seeded,
    opts: &ConnectOptions,
    encrypted: bool,
) {
    let (in_plain, out_plain) = exercise(dc, seeded, opts, false, encrypted).await;
    let (in_z, out_z) = exercise(dc, seeded, opts, true, encrypted).await;
    assert!(
        in_z < in_plain,
        "compressed session received {in_z} bytes, uncompressed {in_plain}"
    );
    assert!(
        in_z + out_z < in_plain + out_plain,
        "compressed session moved {} bytes, uncompressed {}",
        in_z + out_z,
        in_plain + out_plain
    );
}

/// Whether the default (`Compression::Auto`) compresses on this connection.
async fn auto_compresses(opts: &ConnectOptions) -> bool {
    let mut o = opts.clone();
    o.compress = Compression::Auto;
    let s = connect(&o).await;
    let on = s.compressed;
    s.logout().await.expect("LOGOUT");
    on
}

fn setup() -> (Dovecot, Seeded) {
    let dc = start(DovecotOptions::default());
    let seeded = seed(&dc, 12);
    (dc, seeded)
}

#[tokio::test]
async fn imap_plain_tcp_with_and_without_compression() {
    let (dc, seeded) = setup();
    with_and_without_compression(&dc, &seeded, &plain(&dc), false).await;
    // Loopback: not worth compressing by default.
    assert!(!auto_compresses(&plain(&dc)).await);
}

#[tokio::test]
async fn imap_implicit_tls_with_and_without_compression() {
    let (dc, seeded) = setup();
    with_and_without_compression(&dc, &seeded, &imaps(&dc), true).await;
}

#[tokio::test]
async fn imap_starttls_with_and_without_compression() {
    let (dc, seeded) = setup();
    with_and_without_compression(&dc, &seeded, &starttls(&dc), true).await;
}

#[tokio::test]
async fn imap_preauth_tunnel_with_and_without_compression() {
    let (dc, seeded) = setup();
    with_and_without_compression(&dc, &seeded, &preauth_tunnel(&dc), false).await;
    // A local command: not compressed by default.
    assert!(!auto_compresses(&preauth_tunnel(&dc)).await);
    // The tunnel never logged in over the network listener.
    assert!(
        !dc.log_contents().contains("Login: user=<alice>"),
        "{}",
        dc.log_contents()
    );
}

/// `transporttunnel`: a command that reaches the server (here `openssl s_client` to the
/// imaps port, verifying it) and greets OK; the client then logs in through it.
#[tokio::test]
async fn imap_transport_tunnel_with_and_without_compression() {
    let (dc, seeded) = setup();
    let ca = dc.ca_cert_path().expect("TLS on").display().to_string();
    let port = dc.imaps_port().expect("TLS on");
    let command = format!(
        "exec openssl s_client -quiet -nocommands -verify_return_error -CAfile '{ca}' \
         -verify_ip 127.0.0.1 -connect 127.0.0.1:{port}"
    );
    let opts = with_login(ConnectOptions::new(Endpoint::Tunnel {
        command,
        preauth: false,
    }));
    with_and_without_compression(&dc, &seeded, &opts, false).await;
    // Both sessions logged in, through the imaps listener.
    dc.wait_for_log("Logged out", TIMEOUT)
        .expect("sessions ended");
    let logins = dc
        .log_contents()
        .lines()
        .filter(|l| l.contains("imap-login: Info: Login: user=<alice>") && l.contains("TLS"))
        .count();
    assert_eq!(logins, 2, "{}", dc.log_contents());
}

/// ssh to a loopback sshd, running dovecot's imap binary there as a PREAUTH tunnel.
#[tokio::test]
async fn imap_ssh_with_and_without_compression() {
    let (dc, seeded) = setup();
    let sshd = Sshd::start().unwrap_or_else(|e| panic!("sshd should start: {e:#}"));
    let mut opts = ConnectOptions::new(Endpoint::Ssh(SshOptions {
        host: "127.0.0.1".into(),
        user: Some(sshd.user().to_string()),
        port: Some(sshd.port()),
        identity: Some(sshd.user_key()),
        options: vec![
            "StrictHostKeyChecking=no".into(),
            format!("UserKnownHostsFile={}", sshd.known_hosts().display()),
            "LogLevel=ERROR".into(),
        ],
        command: dc.preauth_tunnel_command(crate::imap_support::USER),
    }));
    opts.timeout = TIMEOUT;
    // ssh counts as a network connection: compression is on by default.
    assert!(auto_compresses(&opts).await);
    with_and_without_compression(&dc, &seeded, &opts, true).await;
    assert!(sshd.log().contains("Accepted publickey"), "{}", sshd.log());
}

/// A message of about `size` bytes: headers and a base64 body of pseudo-random bytes.
fn big_message(seed: u64, size: usize) -> Vec<u8> {
    use base64::Engine;
    let mut rng = twinbox::testbed::SampleRng::new(seed);
    let raw: Vec<u8> = (0..size * 3 / 4).map(|_| rng.next_u64() as u8).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    let mut m = format!(
        "From: a@example.test\r\nTo: b@example.test\r\nSubject: big {seed}\r\n\
         Message-ID: <big-{seed}@example.test>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    for line in b64.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// Megabytes both ways through COMPRESS=DEFLATE over TLS: a MULTIAPPEND of large messages
/// lands intact (doveadm's hashes) and fetches back byte for byte.
#[tokio::test]
async fn imap_large_messages_through_compression_both_ways() {
    use twinbox::imap::commands::FetchItems;
    use twinbox::imap::types::AppendMessage;
    use twinbox::testbed::message_sha256_hex;

    let dc = start(DovecotOptions::default());
    let bodies: Vec<Vec<u8>> = (1..=3).map(|i| big_message(i, 1_500_000)).collect();
    let mut o = imaps(&dc);
    o.compress = Compression::Always;
    let mut s = connect(&o).await;
    assert!(s.compressed);
    let messages: Vec<AppendMessage> = bodies
        .iter()
        .map(|b| AppendMessage {
            flags: &[],
            internaldate: None,
            body: b.into(),
        })
        .collect();
    let uids = s.append(b"INBOX", &messages).await.expect("APPEND");
    assert!(uids.iter().all(Option::is_some), "{uids:?}");
    let stored = dc
        .list_messages(crate::imap_support::USER, "INBOX")
        .expect("list");
    let hashes: Vec<&str> = stored
        .iter()
        .map(|m| m.sha256_of_body_hex.as_str())
        .collect();
    let want: Vec<String> = bodies.iter().map(|b| message_sha256_hex(b)).collect();
    assert_eq!(hashes, want);

    s.select(b"INBOX", true, None).await.expect("EXAMINE");
    let mut got = Vec::new();
    let items = FetchItems {
        body: true,
        ..Default::default()
    };
    s.uid_fetch("1:*", items, None, false, &mut |m| {
        got.push(m);
        Ok(())
    })
    .await
    .expect("UID FETCH");
    got.sort_by_key(|m| m.uid);
    assert_eq!(got.len(), bodies.len());
    for (m, b) in got.iter().zip(&bodies) {
        // Over 1 MiB: spooled to a file, not held in memory.
        assert!(m.body.is_none() && m.body_spool.is_some(), "UID {}", m.uid);
        let got = m.body_bytes().expect("read the spool");
        assert!(got.as_deref() == Some(b.as_slice()), "UID {}", m.uid);
    }
    let (received, sent) = s.transport_bytes();
    let total: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    // base64 of random bytes compresses to about 3/4 of its size.
    assert!(
        sent < total && received < total,
        "{sent} {received} {total}"
    );
    s.logout().await.expect("LOGOUT");
}
