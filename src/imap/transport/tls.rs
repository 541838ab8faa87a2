//! TLS (implicit, and the upgrade step of STARTTLS) with certificate verification and pinning.
//!
//! Verification is on by default: the chain must lead to a trusted CA and the certificate
//! must name the host (DNS name, or IP address for IP literals). Trust comes from the system
//! store, or, when [`TlsOptions::ca_file`] is set, from that file *instead* (a private CA then
//! vouches only for its own servers, and a public CA cannot vouch for them). Pinned
//! [`TlsOptions::fingerprints`] replace both checks: a match is required and sufficient.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use openssl::ssl::{SslConnector, SslMethod, SslRef, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509NameRef, X509Ref, X509StoreContextRef, X509};
use tokio_openssl::SslStream;

use super::{tcp, BoxStream, TlsOptions, TlsVersion, Transport};

/// Hint appended to certificate errors, naming the settings that let a user trust a server.
const TRUST_HINT: &str = "use sslcacertfile or cert_fingerprint to trust it";

/// Runs a TLS client handshake over `stream` and returns the encrypted stream.
///
/// `host` is the name the user configured: it is sent as SNI (unless an IP literal) and the
/// certificate must match it (an IP literal must appear as an IP SAN). Used right after a
/// TCP connect for implicit TLS and after `STARTTLS`'s OK. Applies no timeout of its own:
/// wrap the call in one. Nothing is sent over the returned stream before the certificate
/// has been accepted, so a failed pin check leaks nothing.
pub async fn wrap(stream: BoxStream, host: &str, opts: &TlsOptions) -> anyhow::Result<BoxStream> {
    let pins = parse_pins(&opts.fingerprints)?;
    let pinning = !pins.is_empty();
    let hs = handshake(stream, host, opts, pinning).await?;
    if pinning {
        let fps = leaf_fingerprints(hs.stream.ssl())?;
        if !pins
            .iter()
            .any(|p| *p == fps.cert_hex || *p == fps.spki_hex)
        {
            bail!(
                "TLS certificate of {host} does not match cert_fingerprint (expected {}): \
                 the server presented {fps}",
                pins.iter()
                    .map(|p| format_hex(p))
                    .collect::<Vec<_>>()
                    .join(" or ")
            );
        }
        tracing::debug!(host, "TLS certificate matches a pinned fingerprint");
    }
    tracing::debug!(
        host,
        version = hs.stream.ssl().version_str(),
        cipher = hs.stream.ssl().current_cipher().map(|c| c.name()),
        "TLS established"
    );
    Ok(Box::new(hs.stream))
}

/// Connects over TCP and runs the TLS handshake (implicit TLS, `imaps`), all within `timeout`.
///
/// `remote_network` is as for [`tcp::connect`]; `encrypted` is true.
pub async fn connect(
    host: &str,
    port: u16,
    timeout: Duration,
    opts: &TlsOptions,
) -> anyhow::Result<Transport> {
    let work = async {
        let (tcp, remote_network) = tcp::connect_stream(host, port, timeout).await?;
        let stream = wrap(Box::new(tcp), host, opts).await?;
        anyhow::Ok(Transport::new(stream, remote_network, true))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| anyhow!("TLS connection to {host} port {port} timed out after {timeout:?}"))?
}

/// SHA-256 fingerprints of a certificate, in the colon-separated upper-case hex form of
/// `openssl x509 -fingerprint -sha256` (any form is accepted back in `cert_fingerprint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFingerprints {
    /// Of the whole DER certificate (changes at each renewal).
    pub cert: String,
    /// Of the DER SubjectPublicKeyInfo (stable across renewals that keep the key).
    pub spki: String,
    cert_hex: String,
    spki_hex: String,
}

impl fmt::Display for CertFingerprints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "certificate sha256:{} (public key sha256:{})",
            self.cert, self.spki
        )
    }
}

/// Fingerprints (certificate and public key) of a DER certificate, e.g. for `twinbox probe`.
pub fn fingerprints_of(cert_der: &[u8]) -> anyhow::Result<CertFingerprints> {
    let cert = X509::from_der(cert_der).context("not a DER certificate")?;
    fingerprints_of_x509(&cert)
}

fn fingerprints_of_x509(cert: &X509Ref) -> anyhow::Result<CertFingerprints> {
    let der = cert.to_der()?;
    let spki = cert
        .public_key()
        .context("certificate has an unreadable public key")?
        .public_key_to_der()?;
    let cert_hex = hex(&openssl::sha::sha256(&der));
    let spki_hex = hex(&openssl::sha::sha256(&spki));
    Ok(CertFingerprints {
        cert: format_hex(&cert_hex),
        spki: format_hex(&spki_hex),
        cert_hex,
        spki_hex,
    })
}

/// One certificate of the chain a server presented.
#[derive(Debug, Clone)]
pub struct PresentedCert {
    /// Subject distinguished name, e.g. `CN=mail.example.org`.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Start of validity, as OpenSSL prints it.
    pub not_before: String,
    /// End of validity, as OpenSSL prints it.
    pub not_after: String,
    /// Its fingerprints, for `cert_fingerprint`.
    pub fingerprints: CertFingerprints,
}

/// What a TLS handshake showed, for `twinbox probe`: see [`inspect`].
#[derive(Debug, Clone)]
pub struct TlsReport {
    /// Negotiated protocol, e.g. `TLSv1.3`.
    pub protocol: String,
    /// Negotiated cipher suite.
    pub cipher: String,
    /// The chain as presented, server certificate first.
    pub chain: Vec<PresentedCert>,
    /// Why the certificate would be refused by CA and host name checks (empty: it passes).
    pub verify_errors: Vec<String>,
    /// With pins configured: whether the server certificate matches one.
    pub pin_matched: Option<bool>,
}

impl TlsReport {
    /// Whether [`wrap`] with the same options would accept this server.
    pub fn accepted(&self) -> bool {
        self.pin_matched.unwrap_or(self.verify_errors.is_empty())
    }
}

/// Runs a handshake that accepts any certificate and reports what was presented and how
/// `opts` would judge it. The stream is then dropped: use it to diagnose, never to talk.
pub async fn inspect(
    stream: BoxStream,
    host: &str,
    opts: &TlsOptions,
) -> anyhow::Result<TlsReport> {
    let pins = parse_pins(&opts.fingerprints)?;
    let hs = handshake(stream, host, opts, true).await?;
    let ssl = hs.stream.ssl();
    let mut chain = Vec::new();
    if let Some(stack) = ssl.peer_cert_chain() {
        for cert in stack {
            chain.push(PresentedCert {
                subject: name_to_string(cert.subject_name()),
                issuer: name_to_string(cert.issuer_name()),
                not_before: cert.not_before().to_string(),
                not_after: cert.not_after().to_string(),
                fingerprints: fingerprints_of_x509(cert)?,
            });
        }
    }
    let pin_matched = if pins.is_empty() {
        None
    } else {
        let fps = leaf_fingerprints(ssl)?;
        Some(
            pins.iter()
                .any(|p| *p == fps.cert_hex || *p == fps.spki_hex),
        )
    };
    let verify_errors = hs
        .capture
        .lock()
        .map(|c| c.errors.clone())
        .unwrap_or_default();
    Ok(TlsReport {
        protocol: ssl.version_str().to_string(),
        cipher: ssl
            .current_cipher()
            .map(|c| c.name().to_string())
            .unwrap_or_default(),
        chain,
        verify_errors,
        pin_matched,
    })
}

/// What the verify callback saw.
#[derive(Default)]
struct Capture {
    /// The server's certificate, DER.
    leaf: Option<Vec<u8>>,
    /// Distinct verification errors, in order.
    errors: Vec<String>,
}

struct Handshake {
    stream: SslStream<BoxStream>,
    capture: Arc<Mutex<Capture>>,
}

/// Builds the client context from `opts` and runs the handshake. With `accept_all`, every
/// verification error is recorded but overridden (pinning decides later, or `inspect`
/// only reports); otherwise the first error aborts with a user-facing message.
async fn handshake(
    stream: BoxStream,
    host: &str,
    opts: &TlsOptions,
    accept_all: bool,
) -> anyhow::Result<Handshake> {
    let name = tcp::strip_brackets(host);
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    builder.set_min_proto_version(Some(match opts.min_version {
        TlsVersion::Tls12 => SslVersion::TLS1_2,
        TlsVersion::Tls13 => SslVersion::TLS1_3,
    }))?;
    if let Some(ca_file) = &opts.ca_file {
        let pem = std::fs::read(ca_file)
            .with_context(|| format!("cannot read sslcacertfile {}", ca_file.display()))?;
        let certs = X509::stack_from_pem(&pem).with_context(|| {
            format!(
                "sslcacertfile {} is not a PEM file of certificates",
                ca_file.display()
            )
        })?;
        if certs.is_empty() {
            bail!(
                "sslcacertfile {} holds no PEM certificate",
                ca_file.display()
            );
        }
        // Replaces the system store set by SslConnector::builder: trust this file only.
        let mut store = X509StoreBuilder::new()?;
        for cert in certs {
            store.add_cert(cert)?;
        }
        builder.set_cert_store(store.build());
    }
    let connector = builder.build();

    let capture = Arc::new(Mutex::new(Capture::default()));
    let mut config = connector.configure()?;
    let seen = Arc::clone(&capture);
    config.set_verify_callback(
        SslVerifyMode::PEER,
        move |preverify_ok, ctx: &mut X509StoreContextRef| {
            record(&seen, preverify_ok, ctx);
            preverify_ok || accept_all
        },
    );
    let ssl = config.into_ssl(name)?;
    let mut tls = SslStream::new(ssl, stream)?;
    if let Err(e) = Pin::new(&mut tls).connect().await {
        let (errors, leaf) = capture
            .lock()
            .map(|c| (c.errors.clone(), c.leaf.clone()))
            .unwrap_or_default();
        let verify = tls.ssl().verify_result();
        let reason = if let Some(first) = errors.first() {
            Some(first.clone())
        } else if verify.as_raw() != 0 {
            Some(verify.error_string().to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            let presented = leaf
                .and_then(|der| fingerprints_of(&der).ok())
                .map(|f| format!(" (it presented {f})"))
                .unwrap_or_default();
            bail!(
                "TLS certificate verification failed for {host}: {reason}{presented}; {TRUST_HINT}"
            );
        }
        let text = e.to_string();
        let hint = if text.contains("protocol version")
            || text.contains("unsupported protocol")
            || text.contains("no protocols available")
        {
            format!(
                " (the server offers no TLS version at or above the minimum {}; \
                 tls_level lowers it)",
                match opts.min_version {
                    TlsVersion::Tls12 => "TLS 1.2",
                    TlsVersion::Tls13 => "TLS 1.3",
                }
            )
        } else {
            String::new()
        };
        bail!("TLS handshake with {host} failed: {text}{hint}");
    }
    Ok(Handshake {
        stream: tls,
        capture,
    })
}

/// Verify-callback body: remember the server certificate and every distinct error.
fn record(capture: &Mutex<Capture>, preverify_ok: bool, ctx: &X509StoreContextRef) {
    let Ok(mut c) = capture.lock() else { return };
    if c.leaf.is_none() {
        let leaf = ctx
            .chain()
            .and_then(|chain| chain.iter().next())
            .or_else(|| ctx.current_cert().filter(|_| ctx.error_depth() == 0));
        c.leaf = leaf.and_then(|cert| cert.to_der().ok());
    }
    if !preverify_ok {
        let msg = ctx.error().error_string().to_string();
        let msg = match ctx.current_cert() {
            Some(cert) if ctx.error_depth() > 0 => {
                format!("{msg} (at {})", name_to_string(cert.subject_name()))
            }
            _ => msg,
        };
        if !c.errors.contains(&msg) {
            c.errors.push(msg);
        }
    }
}

fn leaf_fingerprints(ssl: &SslRef) -> anyhow::Result<CertFingerprints> {
    let cert = ssl
        .peer_certificate()
        .ok_or_else(|| anyhow!("the TLS server presented no certificate"))?;
    fingerprints_of_x509(&cert)
}

/// Normalises `cert_fingerprint` values to 64 lower-case hex digits: case-insensitive,
/// colons (and spaces) optional, optional `sha256:` prefix.
fn parse_pins(pins: &[String]) -> anyhow::Result<Vec<String>> {
    pins.iter()
        .map(|raw| {
            let trimmed = raw.trim();
            let body = match trimmed.get(..7) {
                Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => &trimmed[7..],
                _ => trimmed,
            };
            let hex: String = body
                .chars()
                .filter(|c| *c != ':' && !c.is_whitespace())
                .map(|c| c.to_ascii_lowercase())
                .collect();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                bail!("invalid cert_fingerprint {raw:?}: expected a SHA-256 fingerprint (64 hex digits, colons optional)");
            }
            Ok(hex)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `abcd…` → `AB:CD:…`.
fn format_hex(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

fn name_to_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_else(|_| "?".to_string());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::ssl::SslAcceptor;
    use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
    use openssl::x509::X509Name;
    use std::path::PathBuf;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const DAY: i64 = 86_400;

    fn key() -> PKey<Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    /// A certificate for `cn` with the given SANs, valid from `from` to `to` (seconds from
    /// now), signed by `issuer` (or self-signed).
    fn cert(
        cn: &str,
        sans: &[&str],
        is_ca: bool,
        key: &PKey<Private>,
        issuer: Option<(&X509, &PKey<Private>)>,
        from: i64,
        to: i64,
    ) -> X509 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut name = X509Name::builder().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let mut serial = BigNum::new().unwrap();
        serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name()))
            .unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(now + from).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_unix(now + to).unwrap())
            .unwrap();
        if is_ca {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .unwrap(),
            )
            .unwrap();
        }
        if !sans.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for s in sans {
                if s.parse::<std::net::IpAddr>().is_ok() {
                    san.ip(s);
                } else {
                    san.dns(s);
                }
            }
            let ext = san
                .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))
                .unwrap();
            b.append_extension(ext).unwrap();
        }
        let signer = issuer.map_or(key, |(_, k)| k);
        b.sign(signer, MessageDigest::sha256()).unwrap();
        b.build()
    }

    struct Pki {
        _dir: tempfile::TempDir,
        ca_file: PathBuf,
        other_ca_file: PathBuf,
        good: (X509, PKey<Private>),
        self_signed: (X509, PKey<Private>),
        expired: (X509, PKey<Private>),
        wrong_host: (X509, PKey<Private>),
    }

    fn pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = key();
        let ca = cert("Test CA", &[], true, &ca_key, None, -DAY, 10 * DAY);
        let other_key = key();
        let other = cert("Other CA", &[], true, &other_key, None, -DAY, 10 * DAY);
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.to_pem().unwrap()).unwrap();
        let other_ca_file = dir.path().join("other.pem");
        std::fs::write(&other_ca_file, other.to_pem().unwrap()).unwrap();
        let signed = |cn: &str, sans: &[&str], from, to| {
            let k = key();
            let c = cert(cn, sans, false, &k, Some((&ca, &ca_key)), from, to);
            (c, k)
        };
        let good = signed("localhost", &["localhost", "127.0.0.1"], -DAY, DAY);
        let expired = signed("localhost", &["localhost", "127.0.0.1"], -3 * DAY, -DAY);
        let wrong_host = signed("mail.example.test", &["mail.example.test"], -DAY, DAY);
        let ss_key = key();
        let ss = cert(
            "selfsigned.example",
            &["selfsigned.example"],
            false,
            &ss_key,
            None,
            -DAY,
            DAY,
        );
        Pki {
            _dir: dir,
            ca_file,
            other_ca_file,
            good,
            self_signed: (ss, ss_key),
            expired,
            wrong_host,
        }
    }

    /// A one-connection TLS echo server on 127.0.0.1; returns its port.
    async fn server(identity: &(X509, PKey<Private>), max: Option<SslVersion>) -> u16 {
        let mut acc = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        acc.set_certificate(&identity.0).unwrap();
        acc.set_private_key(&identity.1).unwrap();
        acc.set_max_proto_version(max).unwrap();
        let acc = acc.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let ssl = openssl::ssl::Ssl::new(acc.context()).unwrap();
            let mut s = SslStream::new(ssl, tcp).unwrap();
            if Pin::new(&mut s).accept().await.is_err() {
                return;
            }
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                let _ = s.flush().await;
            }
        });
        port
    }

    async fn try_connect(
        identity: &(X509, PKey<Private>),
        host: &str,
        opts: TlsOptions,
    ) -> anyhow::Result<Transport> {
        let port = server(identity, None).await;
        connect(host, port, Duration::from_secs(10), &opts).await
    }

    async fn echo(t: &mut Transport) {
        t.stream.write_all(b"a1 NOOP\r\n").await.unwrap();
        t.stream.flush().await.unwrap();
        let mut buf = [0u8; 9];
        t.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"a1 NOOP\r\n");
    }

    fn with_ca(path: &std::path::Path) -> TlsOptions {
        TlsOptions {
            ca_file: Some(path.to_path_buf()),
            ..TlsOptions::default()
        }
    }

    fn pinned(pins: &[String]) -> TlsOptions {
        TlsOptions {
            fingerprints: pins.to_vec(),
            ..TlsOptions::default()
        }
    }

    #[tokio::test]
    async fn trusted_ca_file_connects_by_ip_and_name() {
        let p = pki();
        for host in ["127.0.0.1", "localhost"] {
            let mut t = try_connect(&p.good, host, with_ca(&p.ca_file))
                .await
                .unwrap();
            assert!(t.encrypted);
            assert!(!t.remote_network);
            echo(&mut t).await;
        }
    }

    #[tokio::test]
    async fn untrusted_ca_is_refused() {
        let p = pki();
        // Our CA is neither in the system store nor in the given file.
        for opts in [TlsOptions::default(), with_ca(&p.other_ca_file)] {
            let err = try_connect(&p.good, "127.0.0.1", opts)
                .await
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("TLS certificate verification failed for 127.0.0.1: "),
                "{err}"
            );
            assert!(err.contains("local issuer certificate"), "{err}");
            assert!(err.contains(TRUST_HINT), "{err}");
            let fps = fingerprints_of(&p.good.0.to_der().unwrap()).unwrap();
            assert!(err.contains(&fps.cert), "{err}");
        }
    }

    #[tokio::test]
    async fn wrong_host_name_is_refused() {
        let p = pki();
        let err = try_connect(&p.wrong_host, "localhost", with_ca(&p.ca_file))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("hostname mismatch"), "{err}");
        // An IP literal is checked against IP SANs, not DNS names.
        let err = try_connect(&p.wrong_host, "127.0.0.1", with_ca(&p.ca_file))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("IP address mismatch"), "{err}");
    }

    #[tokio::test]
    async fn expired_is_refused() {
        let p = pki();
        let err = try_connect(&p.expired, "127.0.0.1", with_ca(&p.ca_file))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("certificate has expired"), "{err}");
    }

    #[tokio::test]
    async fn self_signed_is_refused_without_pin() {
        let p = pki();
        let err = try_connect(&p.self_signed, "127.0.0.1", TlsOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("self-signed certificate"), "{err}");
    }

    #[tokio::test]
    async fn pinned_fingerprints_accept_self_signed() {
        let p = pki();
        let fps = fingerprints_of(&p.self_signed.0.to_der().unwrap()).unwrap();
        let forms = [
            fps.cert.clone(),
            fps.cert.replace(':', "").to_lowercase(),
            format!("sha256:{}", fps.spki),
            format!("SHA256:{}", fps.spki.replace(':', "")),
        ];
        for pin in forms {
            // Pinning also skips the host name check: 127.0.0.1 is not in the cert.
            let mut t = try_connect(
                &p.self_signed,
                "127.0.0.1",
                pinned(std::slice::from_ref(&pin)),
            )
            .await
            .unwrap_or_else(|e| panic!("pin {pin}: {e}"));
            echo(&mut t).await;
        }
        // Any one of several pins suffices.
        let other = "00".repeat(32);
        let mut t = try_connect(&p.self_signed, "127.0.0.1", pinned(&[other, fps.spki]))
            .await
            .unwrap();
        echo(&mut t).await;
    }

    #[tokio::test]
    async fn wrong_pin_is_refused_showing_both_fingerprints() {
        let p = pki();
        let fps = fingerprints_of(&p.self_signed.0.to_der().unwrap()).unwrap();
        let wrong = "ab".repeat(32);
        let err = try_connect(&p.self_signed, "127.0.0.1", pinned(&[wrong]))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match cert_fingerprint"), "{err}");
        assert!(err.contains(&format_hex(&"ab".repeat(32))), "{err}");
        assert!(err.contains(&fps.cert), "{err}");
        assert!(err.contains(&fps.spki), "{err}");
        // A CA-signed certificate is refused too when the pin does not match.
        let err = try_connect(&p.good, "127.0.0.1", pinned(&["cd".repeat(32)]))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match cert_fingerprint"), "{err}");
    }

    #[tokio::test]
    async fn malformed_pin_is_a_config_error() {
        let p = pki();
        let err = try_connect(&p.self_signed, "127.0.0.1", pinned(&["xyz".into()]))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid cert_fingerprint"), "{err}");
    }

    #[tokio::test]
    async fn min_version_tls13_refuses_tls12_server() {
        let p = pki();
        let port = server(&p.good, Some(SslVersion::TLS1_2)).await;
        let opts = TlsOptions {
            min_version: TlsVersion::Tls13,
            ..with_ca(&p.ca_file)
        };
        let err = connect("127.0.0.1", port, Duration::from_secs(10), &opts)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("TLS handshake with 127.0.0.1 failed"),
            "{err}"
        );
        assert!(err.contains("TLS 1.3"), "{err}");
        // The same server is fine at the default minimum.
        let port = server(&p.good, Some(SslVersion::TLS1_2)).await;
        let mut t = connect(
            "127.0.0.1",
            port,
            Duration::from_secs(10),
            &with_ca(&p.ca_file),
        )
        .await
        .unwrap();
        echo(&mut t).await;
    }

    #[tokio::test]
    async fn inspect_reports_chain_and_verdict() {
        let p = pki();
        let port = server(&p.expired, None).await;
        let (tcp, _) = tcp::connect_stream("127.0.0.1", port, Duration::from_secs(10))
            .await
            .unwrap();
        let report = inspect(Box::new(tcp), "127.0.0.1", &with_ca(&p.ca_file))
            .await
            .unwrap();
        assert!(!report.accepted());
        assert_eq!(report.verify_errors, vec!["certificate has expired"]);
        assert_eq!(report.chain[0].subject, "CN=localhost");
        assert_eq!(report.chain[0].issuer, "CN=Test CA");
        assert_eq!(
            report.chain[0].fingerprints,
            fingerprints_of(&p.expired.0.to_der().unwrap()).unwrap()
        );
        assert_eq!(report.pin_matched, None);
    }

    #[test]
    fn fingerprint_forms() {
        let pins = parse_pins(&[
            format!("sha256:{}", format_hex(&"Ab".repeat(32))),
            " ".to_string() + &"AB".repeat(32),
        ])
        .unwrap();
        assert_eq!(pins, vec!["ab".repeat(32), "ab".repeat(32)]);
        assert!(parse_pins(&["ab".repeat(31)]).is_err());
        assert_eq!(format_hex("0aff"), "0A:FF");
    }
}
