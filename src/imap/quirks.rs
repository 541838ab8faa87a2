//! Known deviations of real servers from the IMAP grammar, patched before a response that
//! imap-codec rejects is given up on. Only tried after a decoding failure, so a compliant
//! server costs nothing.
//!
//! - `INTERNALDATE NIL` in a FETCH response (Zarafa 7,
//!   <https://github.com/thunderbird/thunderbird-android/issues/1819>): the item is dropped,
//!   the message then has no date (it is identified by Message-ID and size).

use imap_codec::decode::Decoder;
use imap_codec::ResponseCodec;
use imap_types::response::Response;
use imap_types::IntoStatic;

/// The items removed from an untagged FETCH response, outside literal data.
const DROPPED: &[&[u8]] = &[b" INTERNALDATE NIL", b"INTERNALDATE NIL "];

/// Decodes `msg` (one whole response, literals included) after patching the known
/// deviations; `None` if nothing applied or it still does not parse.
pub(crate) fn lenient_decode(msg: &[u8]) -> Option<Response<'static>> {
    if !msg.starts_with(b"* ") {
        return None;
    }
    let patched = drop_outside_literals(msg, DROPPED)?;
    ResponseCodec::default()
        .decode(&patched)
        .ok()
        .map(|(_, r)| r.into_static())
}

/// `msg` with every occurrence of `items` outside literal data removed; `None` when there
/// was none.
fn drop_outside_literals(msg: &[u8], items: &[&[u8]]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(msg.len());
    let mut i = 0;
    let mut changed = false;
    'scan: while i < msg.len() {
        for it in items {
            if msg.len() - i >= it.len() && msg[i..i + it.len()].eq_ignore_ascii_case(it) {
                i += it.len();
                changed = true;
                continue 'scan;
            }
        }
        // `{n}\r\n` or `{n+}\r\n`: copy the announcement and the n bytes unchanged.
        if msg[i] == b'{' {
            let rest = &msg[i + 1..];
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let mut end = digits;
            if rest.get(end) == Some(&b'+') || rest.get(end) == Some(&b'-') {
                end += 1;
            }
            if digits > 0 && rest.get(end..end + 3) == Some(b"}\r\n") {
                let n: usize = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
                let stop = (i + 1 + end + 3 + n).min(msg.len());
                out.extend_from_slice(&msg[i..stop]);
                i = stop;
                continue;
            }
        }
        out.push(msg[i]);
        i += 1;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_types::fetch::MessageDataItem;
    use imap_types::response::Data;

    #[test]
    fn internaldate_nil_is_dropped_outside_literals() {
        let msg = b"* 1 FETCH (UID 7 INTERNALDATE NIL BODY[HEADER.FIELDS (MESSAGE-ID)] {27}\r\nX: INTERNALDATE NIL yes\r\n\r\n)\r\n";
        let r = lenient_decode(msg).expect("decodes once patched");
        let Response::Data(Data::Fetch { items, .. }) = r else {
            panic!("not a FETCH: {r:?}");
        };
        let body = items.as_ref().iter().find_map(|i| match i {
            MessageDataItem::BodyExt { data, .. } => data.0.as_ref().map(|d| d.as_ref().to_vec()),
            _ => None,
        });
        // The literal is untouched.
        assert_eq!(
            body.as_deref(),
            Some(&b"X: INTERNALDATE NIL yes\r\n\r\n"[..])
        );
        let first = b"* 2 FETCH (INTERNALDATE NIL UID 9)\r\n";
        assert!(lenient_decode(first).is_some());
        assert!(lenient_decode(b"* 2 FETCH (UID 9 FOO)\r\n").is_none());
        assert!(lenient_decode(b"a1 OK INTERNALDATE NIL\r\n").is_none());
    }
}
