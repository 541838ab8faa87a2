//! Modified UTF-7 (RFC 3501 §5.1.3), the encoding of IMAP mailbox names.

use base64::alphabet::Alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

fn engine() -> GeneralPurpose {
    // Modified BASE64: ',' instead of '/', no padding.
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
            .unwrap_or(base64::alphabet::STANDARD);
    GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    )
}

/// Encodes a UTF-8 mailbox name into modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&engine().encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes a modified UTF-7 mailbox name; `None` if it is not valid modified UTF-7.
pub fn decode(raw: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'&' {
            let end = raw[i + 1..].iter().position(|&c| c == b'-')? + i + 1;
            let chunk = &raw[i + 1..end];
            if chunk.is_empty() {
                out.push('&');
            } else {
                let bytes = engine().decode(chunk).ok()?;
                if bytes.len() % 2 != 0 {
                    return None;
                }
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|p| u16::from_be_bytes([p[0], p[1]]))
                    .collect();
                out.push_str(&String::from_utf16(&units).ok()?);
            }
            i = end + 1;
        } else if (0x20..=0x7e).contains(&b) {
            out.push(b as char);
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

/// Decodes a mailbox name as sent by a server: modified UTF-7, or UTF-8 as-is when it is not
/// valid modified UTF-7 (servers with UTF8=ACCEPT, or broken ones).
pub fn decode_lossy(raw: &[u8]) -> String {
    decode(raw).unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples() {
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(),
            Some("~peter/mail/台北/日本語")
        );
        assert_eq!(encode("A&B"), "A&-B");
        assert_eq!(decode(b"A&-B").as_deref(), Some("A&B"));
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
    }

    #[test]
    fn invalid_is_none() {
        assert_eq!(decode(b"&Jjo"), None);
        assert_eq!(decode("é".as_bytes()), None);
        assert_eq!(decode_lossy("é".as_bytes()), "é");
    }

    proptest::proptest! {
        #[test]
        fn round_trip(s in "\\PC{0,30}") {
            let enc = encode(&s);
            proptest::prop_assert!(enc.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            proptest::prop_assert_eq!(decode(enc.as_bytes()), Some(s));
        }
    }
}
