//! Tests of the framing layer: spooled literals.

use super::*;
use crate::imap::commands::fetched_from_spooled;
use crate::imap::spool::BodyData;
use imap_types::response::Data;
use tokio::io::AsyncWriteExt;

/// A wire whose server side gets `input` written in `piece`-byte writes.
fn wire_fed(input: Vec<u8>, piece: usize, max: u32, threshold: usize) -> Wire {
    let (client, mut server) = tokio::io::duplex(piece);
    tokio::spawn(async move {
        for p in input.chunks(piece) {
            if server.write_all(p).await.is_err() {
                return;
            }
        }
    });
    let mut w = Wire::new(Box::new(client), max, Duration::from_secs(10), "t".into());
    w.set_spool_threshold(threshold);
    w
}

fn fetch_response(body: &[u8]) -> Vec<u8> {
    let mut r = format!("* 1 FETCH (UID 5 BODY[] {{{}}}\r\n", body.len()).into_bytes();
    r.extend_from_slice(body);
    r.extend_from_slice(b" FLAGS (\\Seen))\r\n");
    r
}

async fn read_fetch(w: &mut Wire) -> crate::imap::FetchedMessage {
    let r = w.read_response(None).await.expect("response");
    let mut spools = w.take_spools();
    let Response::Data(Data::Fetch { seq, items }) = r else {
        panic!("not a FETCH: {r:?}");
    };
    let m = fetched_from_spooled(seq.get(), items.as_ref(), &mut spools);
    assert!(spools.is_empty(), "every spool claimed");
    m
}

#[tokio::test]
async fn large_literal_split_across_reads_is_spooled() {
    let big: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let at: Vec<u8> = vec![b'x'; 100];
    let mut input = fetch_response(&big);
    input.extend(fetch_response(&at));
    input.extend(fetch_response(&big[..101]));
    input.extend_from_slice(b"T1 OK done\r\n");
    // 7-byte reads split the announcement, the literal and the line after it.
    let mut w = wire_fed(input, 7, 1 << 20, 100);
    let m = read_fetch(&mut w).await;
    assert_eq!((m.uid, m.body.as_deref()), (5, None));
    assert_eq!(m.flags.as_deref(), Some(&["\\Seen".to_string()][..]));
    let sp = m.body_spool.expect("spooled");
    assert_eq!(BodyData::Spool(sp).to_vec().expect("read"), big);
    // Exactly at the threshold: in memory.
    let m = read_fetch(&mut w).await;
    assert_eq!(
        (m.body.as_deref(), m.body_spool.is_none()),
        (Some(&at[..]), true)
    );
    // One byte above: spooled.
    let m = read_fetch(&mut w).await;
    let sp = m.body_spool.expect("spooled");
    assert_eq!(BodyData::Spool(sp).to_vec().expect("read"), big[..101]);
    // The next message frames normally.
    let r = w.read_response(None).await.expect("tagged");
    assert!(matches!(r, Response::Status(_)), "{r:?}");
}

#[tokio::test]
async fn a_forged_placeholder_is_not_a_spool() {
    // A server sending a literal that looks like a placeholder gets it back as data.
    let mut w = wire_fed(
        fetch_response(b"twinbox-spool-0000000000000000-1"),
        64,
        1 << 20,
        1000,
    );
    let m = read_fetch(&mut w).await;
    assert!(m.body_spool.is_none());
    assert_eq!(
        m.body.as_deref(),
        Some(&b"twinbox-spool-0000000000000000-1"[..])
    );
}

#[tokio::test]
async fn spooled_literals_count_against_the_message_limit() {
    let big = vec![b'y'; 600];
    let mut input = b"* 1 FETCH (UID 5 BODY[] {600}\r\n".to_vec();
    input.extend_from_slice(&big);
    input.extend_from_slice(b" BODY[TEXT] {600}\r\n");
    input.extend_from_slice(&big);
    input.extend_from_slice(b")\r\n* 2 FETCH (UID 6 FLAGS ())\r\n");
    let mut w = wire_fed(input, 50, 1000, 100);
    let err = w.read_response(None).await.expect_err("over the limit");
    assert!(
        matches!(
            err,
            ImapError::TooLarge {
                size: 1200,
                limit: 1000
            }
        ),
        "{err}"
    );
    // The session goes on with the next response.
    let r = w.read_response(None).await.expect("next");
    assert!(matches!(r, Response::Data(Data::Fetch { .. })), "{r:?}");
}

/// What a stream decodes to: per response, the FETCH's UID and body bytes (from
/// memory or read back from the spool), another response, or the error's kind.
async fn decode_all(input: Vec<u8>, piece: usize, threshold: usize) -> Vec<String> {
    let mut w = wire_fed(input, piece, 2048, threshold);
    let mut out = Vec::new();
    for _ in 0..64 {
        match w.read_response(None).await {
            Ok(Response::Data(Data::Fetch { seq, items })) => {
                let mut spools = w.take_spools();
                let m = fetched_from_spooled(seq.get(), items.as_ref(), &mut spools);
                let body = m.body_bytes().expect("spool");
                out.push(format!("fetch {} {:?}", m.uid, body));
            }
            Ok(r) => out.push(format!("{r:?}")),
            Err(ImapError::Closed) => break,
            Err(e) => out.push(format!("error {:?}", std::mem::discriminant(&e))),
        }
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Spooling changes nothing but where literal bytes are kept: any stream of FETCH
    /// responses (literals of any size, some over the message limit, some cut short)
    /// read in pieces of any size decodes the same with a tiny spool threshold as
    /// with none.
    #[test]
    fn spooling_decodes_like_memory(
        bodies in proptest::collection::vec(
            (proptest::collection::vec(1u8..=255, 0..300), 0u8..4), 1..6),
        piece in 1usize..40,
    ) {
        let mut input = Vec::new();
        for (i, (b, kind)) in bodies.iter().enumerate() {
            match kind {
                // Two literals in one response: together they may be over the limit.
                0 => {
                    input.extend(format!("* {} FETCH (UID {} BODY[] {{{}}}\r\n", i + 1, i + 1, b.len()).as_bytes());
                    input.extend(b);
                    input.extend(format!(" BODY[TEXT] {{{}}}\r\n", b.len() * 8).as_bytes());
                    input.extend(b.iter().cycle().take(b.len() * 8));
                    input.extend(b")\r\n");
                }
                1 => input.extend(b"* OK [UIDNEXT 9] x\r\n"),
                _ => input.extend(fetch_response(b)),
            }
        }
        input.extend(b"* 1 FETCH (UID 1 BODY[] {100}\r\nshort");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let spooled = rt.block_on(decode_all(input.clone(), piece, 16));
        let memory = rt.block_on(decode_all(input, piece, usize::MAX));
        proptest::prop_assert_eq!(spooled, memory);
    }
}

#[test]
fn announcements_as_the_fragmentizer_reads_them() {
    assert_eq!(
        trailing_announcement(b"* 1 FETCH (BODY[] {12}\r\n"),
        Some((18, 12))
    );
    assert_eq!(trailing_announcement(b"x {7+}\n"), Some((2, 7)));
    assert_eq!(trailing_announcement(b"x ~{0007}\r\n"), Some((3, 7)));
    assert_eq!(trailing_announcement(b"x {}\r\n"), None);
    assert_eq!(trailing_announcement(b"x {4294967296}\r\n"), None);
    assert_eq!(trailing_announcement(b"x {12}\r\r\n"), None);
    assert_eq!(trailing_announcement(b"x 12}\r\n"), None);
}

#[tokio::test]
async fn a_spooled_header_block_is_read_back() {
    let mut hdr = b"Message-ID: <h@x>\r\n".to_vec();
    hdr.extend(std::iter::repeat_n(b'X', 300));
    hdr.extend_from_slice(b"\r\n\r\n");
    let mut input = format!(
        "* 1 FETCH (UID 5 BODY[HEADER.FIELDS (MESSAGE-ID)] {{{}}}\r\n",
        hdr.len()
    )
    .into_bytes();
    input.extend_from_slice(&hdr);
    input.extend_from_slice(b")\r\n");
    let mut w = wire_fed(input, 13, 1 << 20, 100);
    let m = read_fetch(&mut w).await;
    assert_eq!(m.header_fields.as_deref(), Some(&hdr[..]));
    assert!(m.body.is_none() && m.body_spool.is_none());
}
