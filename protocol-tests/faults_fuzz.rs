//! Fuzzing the response path: arbitrary server byte streams, built from plausible IMAP
//! pieces (tagged completions with guessed tags, untagged data, FETCH with literals,
//! literals announcing absurd sizes, continuation requests, BYE) or raw random bytes, sent
//! by a scripted server over a real loopback TCP connection before its answer to each
//! command, to a session that logs in, lists, selects, fetches and logs out. The property: the client
//! never panics, and every step ends (error or not) instead of hanging. The message size
//! bound (`max_message_size` 1 MiB here) keeps absurd literal announcements from being
//! allocated.
//!
//! CI runs `TWINBOX_FUZZ_CASES` cases per property (default 300); set it higher by hand:
//! `TWINBOX_FUZZ_CASES=20000 cargo test --test protocol faults_fuzz -- --nocapture`.
//! Failing inputs are shrunk and printed by proptest. Each property prints its executions
//! and how many sessions got past login, LIST, SELECT and FETCH.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use twinbox::imap::commands::{FetchItems, QresyncParams};
use twinbox::imap::{ConnectOptions, Password, Security, Session};

use crate::faults_support::env_count;

/// Executions, then sessions that got past login, LIST, SELECT, FETCH (per property; the
/// two properties run in parallel, so each resets and reads them under [`SERIAL`]).
static DEPTH: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
static SERIAL: Mutex<()> = Mutex::new(());

/// One piece of a server stream.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let n = || 0u64..5_000_000_000u64;
    let tag = || (1u32..12).prop_map(|t| format!("T{t}"));
    prop_oneof![
        (tag(), prop_oneof![Just("OK"), Just("NO"), Just("BAD")], ".{0,20}").prop_map(
            |(t, s, x)| format!("{t} {s} {x}\r\n").into_bytes()
        ),
        (tag(), n()).prop_map(|(t, v)| format!("{t} OK [APPENDUID {v} {v}:{}] done\r\n", v / 3)
            .into_bytes()),
        n().prop_map(|v| format!("* {v} EXISTS\r\n").into_bytes()),
        Just(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN LITERAL+ CONDSTORE QRESYNC ENABLE UIDPLUS LIST-STATUS\r\n".to_vec()),
        Just(b"* ENABLED QRESYNC\r\n".to_vec()),
        ".{0,12}".prop_map(|m| format!("* LIST (\\HasNoChildren) \"/\" \"{m}\"\r\n").into_bytes()),
        (n(), n(), n()).prop_map(|(a, b, c)| format!(
            "* STATUS INBOX (MESSAGES {a} UIDNEXT {b} UIDVALIDITY {c} HIGHESTMODSEQ {a})\r\n"
        )
        .into_bytes()),
        (prop_oneof![Just("UIDVALIDITY"), Just("UIDNEXT"), Just("HIGHESTMODSEQ")], n())
            .prop_map(|(k, v)| format!("* OK [{k} {v}] x\r\n").into_bytes()),
        (n(), n(), proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(s, u, body)| {
            let mut v = format!(
                "* {s} FETCH (UID {u} FLAGS (\\Seen $X) MODSEQ ({u}) BODY[] {{{}}}\r\n",
                body.len()
            )
            .into_bytes();
            v.extend(body);
            v.extend(b")\r\n");
            v
        }),
        (n(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(len, body)| {
            // A literal announcing more (or less) than follows.
            let mut v = format!("* 1 FETCH (UID 1 BODY[] {{{len}}}\r\n").into_bytes();
            v.extend(body);
            v
        }),
        (n(), n()).prop_map(|(a, b)| format!("* VANISHED (EARLIER) {a}:{b}\r\n").into_bytes()),
        Just(b"+ go ahead\r\n".to_vec()),
        Just(b"* BYE going away\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

fn greeting() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR LITERAL+ CONDSTORE QRESYNC ENABLE UIDPLUS LIST-STATUS] fuzz\r\n".to_vec()),
        Just(b"* PREAUTH [CAPABILITY IMAP4rev1 CONDSTORE QRESYNC ENABLE] fuzz\r\n".to_vec()),
        Just(b"* OK fuzz\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

/// How long the scripted server waits for the client's next command before ending the
/// stream (a stall there means the client waits for something the noise swallowed).
const QUIET: Duration = Duration::from_millis(300);

/// A server's script: the greeting, then for each client command some pieces sent before
/// its tagged OK (or instead of it, when the flag is false).
type Script = (Vec<u8>, Vec<(Vec<u8>, bool)>);

fn script() -> impl Strategy<Value = Script> {
    (
        greeting(),
        proptest::collection::vec(
            (
                proptest::collection::vec(piece(), 0..4).prop_map(|v| v.concat()),
                proptest::bool::weighted(0.95),
            ),
            0..12,
        ),
    )
}

/// The size of a literal announced at the end of a command line, and whether it is
/// non-synchronising (`{n+}`).
fn announced(line: &[u8]) -> Option<(usize, bool)> {
    let l = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let (l, plus) = match l.strip_suffix(b"+") {
        Some(x) => (x, true),
        None => (l, false),
    };
    let open = l.iter().rposition(|&b| b == b'{')?;
    let n = std::str::from_utf8(&l[open + 1..]).ok()?.parse().ok()?;
    Some((n, plus))
}

/// Plays `script` to one client: the greeting, then for each command its pieces and
/// (unless told not to) its tagged OK; when the script runs out, plain OKs until the
/// client leaves, or the end of the stream if the script said so.
async fn serve(listener: tokio::net::TcpListener, script: Script) {
    use tokio::io::AsyncBufReadExt;
    let Ok((sock, _)) = listener.accept().await else {
        return;
    };
    let _ = sock.set_nodelay(true);
    let (rd, mut wr) = sock.into_split();
    let mut rd = tokio::io::BufReader::new(rd);
    let (greeting, mut replies) = script;
    replies.reverse();
    if wr.write_all(&greeting).await.is_err() {
        return;
    }
    loop {
        // One command: lines joined by literals.
        let mut first: Vec<u8> = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            // A client still waiting on a reply the noise broke (a partial line, a literal
            // never completed) sends nothing: end the stream so it sees EOF at once.
            match tokio::time::timeout(QUIET, rd.read_until(b'\n', &mut line)).await {
                Err(_) => {
                    let _ = wr.shutdown().await;
                    return;
                }
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
            }
            if first.is_empty() {
                first = line.clone();
            }
            match announced(&line) {
                Some((n, _)) if n > 16 * 1024 * 1024 => return,
                Some((n, plus)) => {
                    if !plus && wr.write_all(b"+ go\r\n").await.is_err() {
                        return;
                    }
                    let mut lit = vec![0u8; n];
                    if rd.read_exact(&mut lit).await.is_err() {
                        return;
                    }
                }
                None => break,
            }
        }
        let tag = first
            .split(|&b| b == b' ')
            .next()
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .unwrap_or_default();
        let (noise, complete) = replies.pop().unwrap_or((Vec::new(), true));
        let mut out = noise;
        if complete {
            out.extend(format!("{tag} OK done\r\n").into_bytes());
        }
        if wr.write_all(&out).await.is_err() {
            return;
        }
        if !complete {
            // A command never answered: end the stream here.
            let _ = wr.shutdown().await;
            return;
        }
    }
}

/// A session against the fuzzed stream: every step may fail, none may panic.
async fn client(port: u16) {
    let mut o = ConnectOptions::tcp("127.0.0.1", port, Security::Plain);
    o.user = Some("alice".into());
    o.password = Some(Password::new("secret"));
    o.timeout = Duration::from_secs(3);
    o.max_message_size = 1024 * 1024;
    o.allow_plaintext_login = true;
    DEPTH[0].fetch_add(1, Ordering::SeqCst);
    let Ok(mut s) = Session::connect(&o).await else {
        return;
    };
    DEPTH[1].fetch_add(1, Ordering::SeqCst);
    if s.list("", "*", true).await.is_ok() {
        DEPTH[2].fetch_add(1, Ordering::SeqCst);
    }
    let q = QresyncParams {
        uidvalidity: 7,
        modseq: 3,
        known_uids: Some("1:100".into()),
    };
    if s.select(b"INBOX", false, Some(&q)).await.is_ok() {
        DEPTH[3].fetch_add(1, Ordering::SeqCst);
        let items = FetchItems {
            flags: true,
            modseq: true,
            body: true,
            ..Default::default()
        };
        let mut sink = |_m: twinbox::imap::FetchedMessage| Ok(());
        if s.uid_fetch("1:*", items, Some(3), true, &mut sink)
            .await
            .is_ok()
        {
            DEPTH[4].fetch_add(1, Ordering::SeqCst);
        }
        let _ = s.noop().await;
    }
    let _ = s.logout().await;
}

fn run_case(script: Script) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(serve(listener, script));
        // Bounded: a hang is a failure, not a slow pass.
        let r = tokio::time::timeout(Duration::from_secs(60), client(port)).await;
        assert!(r.is_ok(), "the client hung on a fuzzed stream");
        let _ = server.await;
    });
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: env_count("TWINBOX_FUZZ_CASES", 300) as u32,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs `cases` inputs of `strategy`; prints executions and how deep the sessions got.
fn fuzz<S: Strategy<Value = Script>>(name: &str, strategy: S) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for c in &DEPTH {
        c.store(0, Ordering::SeqCst);
    }
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let r = runner.run(&strategy, |script| {
        run_case(script);
        // Long runs (`TWINBOX_FUZZ_CASES=20000`) show they are moving.
        let n = DEPTH[0].load(Ordering::SeqCst);
        if n.is_multiple_of(2000) {
            eprintln!("{name}: {n} executions so far");
        }
        Ok(())
    });
    if let Err(e) = r {
        panic!("{name}: {e}");
    }
    let d: Vec<u64> = DEPTH.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    eprintln!(
        "{name}: {} executions; logged in {}, listed {}, selected {}, fetched {}; no panic, no hang",
        d[0], d[1], d[2], d[3], d[4]
    );
    assert!(
        d[1] > 0,
        "{name}: no input got past login: the fuzzer tests nothing"
    );
}

#[test]
fn fuzz_session_survives_hostile_server_streams() {
    fuzz("structured streams", script());
}

#[test]
fn fuzz_session_survives_random_bytes() {
    let s = proptest::collection::vec(
        (
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::bool::weighted(0.9),
        ),
        0..12,
    )
    .prop_map(|mut replies| {
        // Most junk ends its line, so the tagged answer after it stays a line of its own.
        for (junk, _) in replies.iter_mut() {
            if junk.len() % 4 != 0 {
                junk.extend(b"\r\n");
            }
        }
        let greeting =
            b"* PREAUTH [CAPABILITY IMAP4rev1 CONDSTORE QRESYNC ENABLE LIST-STATUS] fuzz\r\n"
                .to_vec();
        (greeting, replies)
    });
    fuzz("random bytes", s);
}
