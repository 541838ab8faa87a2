//! Message identity from headers: the Message-ID hash every store computes the same way.

use sha2::{Digest, Sha256};

/// Extracts the Message-ID value from a header block (or a whole message) and hashes it to
/// a non-zero 63-bit integer; 0 when there is no Message-ID.
pub fn message_id_hash(raw: &[u8]) -> i64 {
    match message_id(raw) {
        Some(id) if !id.is_empty() => {
            let d = Sha256::digest(&id);
            let mut b = [0u8; 8];
            b.copy_from_slice(&d[..8]);
            let v = (u64::from_be_bytes(b) >> 1) as i64;
            if v == 0 {
                1
            } else {
                v
            }
        }
        _ => 0,
    }
}

/// The unfolded, trimmed value of the first Message-ID header in the header block.
pub fn message_id(raw: &[u8]) -> Option<Vec<u8>> {
    let mut lines = raw.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // end of headers
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if !line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"message-id")
        {
            continue;
        }
        let mut value = line[colon + 1..].to_vec();
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|&b| b == b' ' || b == b'\t') {
                let n = next.strip_suffix(b"\r").unwrap_or(next);
                value.push(b' ');
                value.extend_from_slice(n);
                lines.next();
            } else {
                break;
            }
        }
        let v: Vec<u8> = value.trim_ascii().to_vec();
        return Some(v);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_hash_from_fetch_and_body() {
        let full =
            b"From: a\r\nMessage-ID:\r\n <abc@x>\r\nSubject: s\r\n\r\nbody Message-ID: <no>\r\n";
        let fetched = b"Message-Id: <abc@x>\r\n\r\n";
        assert_eq!(message_id(full).as_deref(), Some(&b"<abc@x>"[..]));
        assert_eq!(message_id_hash(full), message_id_hash(fetched));
        assert_ne!(message_id_hash(full), 0);
        assert_eq!(message_id_hash(b"From: a\r\n\r\nMessage-ID: <x>\r\n"), 0);
        assert_eq!(
            message_id_hash(b"From: a\nMessage-ID: <l@f>\n\n"),
            message_id_hash(b"Message-ID: <l@f>\r\n\r\n")
        );
    }
}
