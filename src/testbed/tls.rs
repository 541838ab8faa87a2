//! A throw-away PKI for tests: a CA and a server certificate for 127.0.0.1, ::1 and localhost
//! (or for other names, or self-signed, to test what a client must refuse).

use anyhow::{Context, Result};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use sha2::{Digest, Sha256};

/// A CA and a server certificate signed by it, all in memory.
pub struct TestPki {
    /// The CA certificate (trust anchor for clients).
    pub ca_cert: X509,
    /// The server certificate (CN=localhost; SAN DNS:localhost, IP:127.0.0.1, IP:::1).
    pub server_cert: X509,
    /// The server's private key.
    pub server_key: PKey<Private>,
}

fn new_key() -> Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

fn random_serial() -> Result<openssl::asn1::Asn1Integer> {
    let mut bn = BigNum::new()?;
    bn.rand(126, MsbOption::MAYBE_ZERO, false)?;
    Ok(bn.to_asn1_integer()?)
}

impl TestPki {
    /// Generates a fresh CA (valid from yesterday for 30 days) and a server certificate.
    pub fn generate() -> Result<TestPki> {
        Self::generate_for(&["localhost"], &["127.0.0.1", "::1"])
    }

    /// Like [`Self::generate`], with a server certificate naming exactly these DNS names
    /// (the first is also its CN) and IP addresses.
    pub fn generate_for(dns: &[&str], ips: &[&str]) -> Result<TestPki> {
        Self::generate_inner(dns, ips, false).context("generating test certificates")
    }

    /// A self-signed server certificate (no CA: `ca_cert` is the server certificate itself)
    /// for localhost, 127.0.0.1 and ::1, as a server set up without a CA presents.
    pub fn self_signed() -> Result<TestPki> {
        Self::generate_inner(&["localhost"], &["127.0.0.1", "::1"], true)
            .context("generating a self-signed test certificate")
    }

    fn generate_inner(dns: &[&str], ips: &[&str], self_signed: bool) -> Result<TestPki> {
        // Backdated by a day against clock skew between processes and containers.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let not_before = Asn1Time::from_unix(i64::try_from(now)? - 86_400)?;
        let not_after = Asn1Time::days_from_now(30)?;

        // CA
        let ca_key = new_key()?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, "twinbox test CA")?;
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "twinbox testbed")?;
        let ca_name = name.build();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        b.set_serial_number(random_serial()?.as_ref())?;
        b.set_subject_name(&ca_name)?;
        b.set_issuer_name(&ca_name)?;
        b.set_pubkey(&ca_key)?;
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        b.sign(&ca_key, MessageDigest::sha256())?;
        let ca_cert = b.build();

        // Server
        let server_key = new_key()?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, dns.first().copied().unwrap_or("server"))?;
        let server_name = name.build();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        b.set_serial_number(random_serial()?.as_ref())?;
        b.set_subject_name(&server_name)?;
        if self_signed {
            b.set_issuer_name(&server_name)?;
        } else {
            b.set_issuer_name(ca_cert.subject_name())?;
        }
        b.set_pubkey(&server_key)?;
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        b.append_extension(BasicConstraints::new().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_agreement()
                .build()?,
        )?;
        b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        let mut san = SubjectAlternativeName::new();
        for d in dns {
            san.dns(d);
        }
        for ip in ips {
            san.ip(ip);
        }
        let issuer = (!self_signed).then_some(ca_cert.as_ref());
        let san = san.build(&b.x509v3_context(issuer, None))?;
        b.append_extension(san)?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(issuer, None))?;
        b.append_extension(ski)?;
        if !self_signed {
            let aki = AuthorityKeyIdentifier::new()
                .keyid(false)
                .build(&b.x509v3_context(issuer, None))?;
            b.append_extension(aki)?;
        }
        if self_signed {
            b.sign(&server_key, MessageDigest::sha256())?;
        } else {
            b.sign(&ca_key, MessageDigest::sha256())?;
        }
        let server_cert = b.build();

        Ok(TestPki {
            ca_cert: if self_signed {
                server_cert.clone()
            } else {
                ca_cert
            },
            server_cert,
            server_key,
        })
    }

    /// The CA certificate as PEM.
    pub fn ca_pem(&self) -> Result<Vec<u8>> {
        Ok(self.ca_cert.to_pem()?)
    }

    /// The server certificate as PEM.
    pub fn server_cert_pem(&self) -> Result<Vec<u8>> {
        Ok(self.server_cert.to_pem()?)
    }

    /// The server key as PKCS#8 PEM.
    pub fn server_key_pem(&self) -> Result<Vec<u8>> {
        Ok(self.server_key.private_key_to_pem_pkcs8()?)
    }

    /// SHA-256 of the server certificate (DER), lowercase hex without colons.
    pub fn cert_fingerprint_sha256(&self) -> Result<String> {
        Ok(hex(&Sha256::digest(self.server_cert.to_der()?)))
    }

    /// SHA-256 of the server's SubjectPublicKeyInfo (DER), lowercase hex without colons.
    pub fn pubkey_fingerprint_sha256(&self) -> Result<String> {
        Ok(hex(&Sha256::digest(
            self.server_cert.public_key()?.public_key_to_der()?,
        )))
    }
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
