//! TLS verification against dovecot, on implicit TLS and STARTTLS: a certificate for
//! another host name and an untrusted self-signed one fail before any credential is sent
//! (dovecot logs no login); a CA file or a matching SHA-256 pin (certificate or public key)
//! connects; a wrong pin fails; the minimum TLS version is honoured.

use std::time::Duration;

use openssl::ssl::{SslAcceptor, SslMethod, SslVersion};
use tokio::io::AsyncReadExt;
use twinbox::imap::transport::{tls, TlsOptions, TlsVersion};
use twinbox::imap::ConnectOptions;
use twinbox::testbed::{Dovecot, DovecotOptions, TestPki};

use crate::imap_support::{connect, imaps, start, starttls, TIMEOUT};

/// A dovecot serving `pki`'s server certificate instead of its own.
fn dovecot_with_cert(pki: &TestPki) -> (Dovecot, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, pki.server_cert_pem().expect("pem")).expect("write cert");
    std::fs::write(&key, pki.server_key_pem().expect("pem")).expect("write key");
    let extra = format!(
        "ssl_cert = <{}\nssl_key = <{}\n",
        cert.display(),
        key.display()
    );
    let dc = start(DovecotOptions::default().extra_config(extra));
    (dc, dir)
}

/// Both TLS modes of a dovecot with these TLS options.
fn both_modes(dc: &Dovecot, tls: &TlsOptions) -> Vec<(&'static str, ConnectOptions)> {
    let mut a = imaps(dc);
    a.tls = tls.clone();
    let mut b = starttls(dc);
    b.tls = tls.clone();
    vec![("imaps", a), ("STARTTLS", b)]
}

/// Connecting must fail with an error containing `needle`.
async fn refused(opts: &ConnectOptions, mode: &str, needle: &str) {
    match twinbox::imap::Session::connect(opts).await {
        Ok(_) => panic!("{mode}: connected, but must be refused"),
        Err(e) => {
            let text = format!("{e:#}");
            assert!(text.contains(needle), "{mode}: {text}");
        }
    }
}

/// How many logins dovecot logged, after every connection so far has ended.
fn logins(dc: &Dovecot, connections: usize) -> usize {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let log = dc.log_contents();
        let ended = log.matches("Disconnected").count() + log.matches("Logged out").count();
        if ended >= connections || std::time::Instant::now() > deadline {
            return log.matches("Login: user=<alice>").count();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn connects(opts: &ConnectOptions, mode: &str) {
    let s = connect(opts).await;
    assert!(s.encrypted, "{mode}: not encrypted");
    s.logout().await.expect("LOGOUT");
}

#[tokio::test]
async fn imap_tls_certificate_for_another_host_fails_before_login() {
    let pki = TestPki::generate_for(&["mail.example.test"], &[]).expect("pki");
    let (dc, dir) = dovecot_with_cert(&pki);
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem().expect("pem")).expect("write CA");
    let trusted = TlsOptions {
        ca_file: Some(ca),
        ..Default::default()
    };
    // Trusted CA, wrong name: refused in both modes, by IP address and by host name.
    for (mode, o) in both_modes(&dc, &trusted) {
        refused(&o, mode, "IP address mismatch").await;
    }
    let mut by_name = imaps(&dc);
    by_name.tls = trusted.clone();
    by_name.endpoint = twinbox::imap::Endpoint::Tcp {
        host: "localhost".into(),
        port: dc.imaps_port().expect("TLS on"),
        security: twinbox::imap::Security::Tls,
    };
    refused(&by_name, "imaps by name", "hostname mismatch").await;
    assert_eq!(logins(&dc, 3), 0, "{}", dc.log_contents());
    // The same certificate pinned: accepted (a pin replaces the CA and name checks).
    let pinned = TlsOptions {
        fingerprints: vec![pki.cert_fingerprint_sha256().expect("fp")],
        ..Default::default()
    };
    for (mode, o) in both_modes(&dc, &pinned) {
        connects(&o, mode).await;
    }
    assert_eq!(logins(&dc, 5), 2, "{}", dc.log_contents());
}

#[tokio::test]
async fn imap_tls_untrusted_self_signed_fails_and_pins_decide() {
    let pki = TestPki::self_signed().expect("pki");
    let (dc, _dir) = dovecot_with_cert(&pki);
    let cert_pin = pki.cert_fingerprint_sha256().expect("fp");
    let key_pin = pki.pubkey_fingerprint_sha256().expect("fp");
    assert_ne!(cert_pin, key_pin);

    // No CA file: the system store does not vouch for it.
    for (mode, o) in both_modes(&dc, &TlsOptions::default()) {
        refused(&o, mode, "self-signed certificate").await;
    }
    // A pin for another certificate: refused, naming what the server presented.
    let other = TestPki::self_signed().expect("pki");
    let wrong = TlsOptions {
        fingerprints: vec![other.cert_fingerprint_sha256().expect("fp")],
        ..Default::default()
    };
    for (mode, o) in both_modes(&dc, &wrong) {
        refused(&o, mode, "does not match cert_fingerprint").await;
    }
    assert_eq!(logins(&dc, 4), 0, "{}", dc.log_contents());

    // The certificate's pin, in openssl's colon form, and the public key's pin, prefixed.
    let colon = cert_pin
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    for pin in [colon, format!("sha256:{key_pin}")] {
        let tls = TlsOptions {
            fingerprints: vec![pin],
            ..Default::default()
        };
        for (mode, o) in both_modes(&dc, &tls) {
            connects(&o, mode).await;
        }
    }
    assert_eq!(logins(&dc, 8), 4, "{}", dc.log_contents());
}

#[tokio::test]
async fn imap_tls_ca_file_connects_and_default_store_refuses() {
    let dc = start(DovecotOptions::default());
    for (mode, o) in both_modes(&dc, &TlsOptions::default()) {
        refused(&o, mode, "unable to get local issuer certificate").await;
    }
    assert_eq!(logins(&dc, 2), 0, "{}", dc.log_contents());
    // With sslcacertfile (and TLS 1.3 required, which dovecot offers).
    let tls = TlsOptions {
        ca_file: dc.ca_cert_path().map(Into::into),
        min_version: TlsVersion::Tls13,
        ..Default::default()
    };
    for (mode, o) in both_modes(&dc, &tls) {
        connects(&o, mode).await;
    }
    assert_eq!(logins(&dc, 4), 2, "{}", dc.log_contents());
}

/// A TLS 1.2-only server: a client requiring TLS 1.3 refuses it in the handshake, before
/// reading the greeting; with the default minimum (1.2) it connects.
#[tokio::test]
async fn imap_tls_minimum_version_is_honoured() {
    let pki = TestPki::generate().expect("pki");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem().expect("pem")).expect("write CA");
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("acceptor");
    b.set_private_key(&pki.server_key).expect("key");
    b.set_certificate(&pki.server_cert).expect("cert");
    b.set_max_proto_version(Some(SslVersion::TLS1_2))
        .expect("max version");
    let acceptor = b.build();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let mut handshakes = Vec::new();
        for _ in 0..2 {
            let Ok((tcp, _)) = listener.accept() else {
                break;
            };
            let _ = tcp.set_read_timeout(Some(TIMEOUT));
            match acceptor.accept(tcp) {
                Ok(mut s) => {
                    use std::io::Write;
                    let _ = s.write_all(b"* OK tls12 only\r\n");
                    let _ = s.flush();
                    handshakes.push(true);
                    // Keep the stream until the client is done.
                    let mut buf = [0u8; 64];
                    let _ = std::io::Read::read(&mut s, &mut buf);
                }
                Err(_) => handshakes.push(false),
            }
        }
        handshakes
    });
    let mut opts = TlsOptions {
        ca_file: Some(ca),
        min_version: TlsVersion::Tls13,
        ..Default::default()
    };
    let err = tls::connect("127.0.0.1", port, TIMEOUT, &opts)
        .await
        .expect_err("TLS 1.2 server accepted with tls_level 1.3");
    let text = format!("{err:#}");
    assert!(text.to_ascii_lowercase().contains("version"), "{text}");
    opts.min_version = TlsVersion::Tls12;
    let mut t = tls::connect("127.0.0.1", port, TIMEOUT, &opts)
        .await
        .unwrap_or_else(|e| panic!("TLS 1.2 with the default minimum: {e:#}"));
    let mut greeting = [0u8; 17];
    t.stream.read_exact(&mut greeting).await.expect("greeting");
    assert_eq!(&greeting, b"* OK tls12 only\r\n");
    t.close().await;
    assert_eq!(server.join().expect("server thread"), vec![false, true]);
}
