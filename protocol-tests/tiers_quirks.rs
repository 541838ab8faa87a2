//! Real-world server quirks, reproduced by a rewriting relay in front of a real dovecot
//! (dovecot itself is too well-behaved), each with the core scenarios run through it:
//!
//! - flags in odd case, `\Recent` everywhere and every FETCH response sent twice;
//! - no APPENDUID although UIDPLUS is advertised (ProtonMail Bridge:
//!   <https://github.com/ProtonMail/proton-bridge/issues/170>), or APPENDUID with its two
//!   numbers swapped (DavMail: <https://github.com/mguessan/davmail/issues/315>);
//! - no UIDNEXT in the SELECT response (Winmail Pro:
//!   <https://github.com/modern-email/defects/issues/43>);
//! - modification sequences at and above 2^63 (RFC 4551 allowed 64-bit modseqs; RFC 7162
//!   narrowed them to 63 bits, and the state database stores them in a signed column).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::sync::{msg, ImapSide, MailSide, SyncBed};
use crate::sync_scenarios as sc;
use crate::tiers::Tier;

/// Rewrites one protocol line (CRLF included, literal data excluded).
type Rewrite = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// A relay from a loopback port to `upstream` that rewrites each line in each direction.
struct QuirkRelay {
    port: u16,
}

impl QuirkRelay {
    fn start(upstream: u16, to_server: Rewrite, to_client: Rewrite) -> QuirkRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("relay address").port();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                let (a, b) = (to_server.clone(), to_client.clone());
                std::thread::spawn(move || pump(client, s2, a));
                std::thread::spawn(move || pump(server, c2, b));
            }
        });
        QuirkRelay { port }
    }
}

/// The size of a literal announced at the end of a line, if any.
fn literal_len(line: &str) -> Option<usize> {
    let l = line.trim_end_matches(['\r', '\n']).strip_suffix('}')?;
    let open = l.rfind('{')?;
    l[open + 1..].trim_end_matches(['+', '-']).parse().ok()
}

/// Copies `from` to `to` line by line through `rw`, passing literal data unchanged.
fn pump(from: TcpStream, mut to: TcpStream, rw: Rewrite) {
    let mut r = BufReader::new(from);
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        raw.clear();
        match r.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&raw).into_owned();
        let out = if line.is_ascii() {
            rw(&line)
        } else {
            line.clone()
        };
        if to.write_all(out.as_bytes()).is_err() {
            break;
        }
        let mut left = literal_len(&line).unwrap_or(0);
        // A rewrite that removed the literal's announcement drops its data too.
        let drop = literal_len(&out).is_none();
        while left > 0 {
            let n = match r.read(&mut buf[..left.min(64 * 1024)]) {
                Ok(0) | Err(_) => 0,
                Ok(n) => n,
            };
            if n == 0 || (!drop && to.write_all(&buf[..n]).is_err()) {
                left = 0;
                break;
            }
            left -= n;
        }
        if left > 0 {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn same() -> Rewrite {
    Arc::new(|l: &str| l.to_string())
}

fn re(p: &str) -> regex::Regex {
    regex::Regex::new(p).expect("regex")
}

/// A bed whose local side (`bob`) is reached through a relay with these rewrites.
fn bed_through(to_server: Rewrite, to_client: Rewrite) -> (SyncBed<ImapSide>, QuirkRelay) {
    let dv = crate::support::sync::start_dovecot(
        Tier::Qresync.options(&["alice".to_string(), "bob".to_string()]),
    );
    let bed = SyncBed::new(ImapSide::new(dv.clone(), "alice"), ImapSide::new(dv, "bob"));
    let relay = QuirkRelay::start(bed.local.dovecot.imap_port(), to_server, to_client);
    // Both repositories name the same server: the local one is written second.
    let text = std::fs::read_to_string(bed.config_path()).expect("read config");
    let from = format!("remoteport = {}", bed.local.dovecot.imap_port());
    let at = text.rfind(&from).expect("local repository port");
    let text = format!(
        "{}remoteport = {}{}",
        &text[..at],
        relay.port,
        &text[at + from.len()..]
    );
    std::fs::write(bed.config_path(), text).expect("write config");
    (bed, relay)
}

/// The scenarios every quirk runs.
fn scenarios(make: impl Fn() -> (SyncBed<ImapSide>, QuirkRelay)) {
    let (bed, _r) = make();
    sc::first_sync_populated_to_empty(&bed, true);
    let (bed, _r) = make();
    sc::changes_on_both_sides(&bed);
    let (bed, _r) = make();
    sc::flag_conflicts_merge(&bed);
    let (bed, _r) = make();
    sc::expunge_beats_flag_change(&bed);
}

/// `\SEEN`, `\flagged`, `\Recent` in every FLAGS list and each FETCH response twice
/// (servers repeat unsolicited FETCH responses for messages just stored).
#[test]
fn odd_flag_case_recent_and_repeated_fetch_responses() {
    let to_client: Rewrite = Arc::new(|l: &str| {
        if !l.starts_with("* ") || !l.contains(" FETCH (") {
            return l.to_string();
        }
        let mut out = l
            .replace("\\Seen", "\\SEEN")
            .replace("\\Flagged", "\\flagged")
            .replace("\\Answered", "\\ANSWERED")
            .replace("FLAGS (", "FLAGS (\\Recent ")
            .replace("(\\Recent )", "(\\Recent)");
        if literal_len(l).is_none() {
            out = format!("{out}{out}");
        }
        out
    });
    scenarios(|| bed_through(same(), to_client.clone()));
}

/// UIDPLUS advertised but the APPEND reply carries no APPENDUID: the appended messages
/// are found by their identity in the same run (the no-op rerun opens nothing).
#[test]
fn appenduid_missing_despite_uidplus() {
    let strip = re(r"\[APPENDUID [0-9]+ [0-9:,]+\] ?");
    let to_client: Rewrite = Arc::new(move |l: &str| strip.replace(l, "").into_owned());
    scenarios(|| bed_through(same(), to_client.clone()));
}

/// APPENDUID with UIDVALIDITY and UID swapped: not trusted (its UIDVALIDITY is not the
/// mailbox's), the messages are found by identity instead.
#[test]
fn appenduid_with_swapped_numbers_is_not_trusted() {
    let swap = re(r"\[APPENDUID ([0-9]+) ([0-9]+)\]");
    let to_client: Rewrite =
        Arc::new(move |l: &str| swap.replace(l, "[APPENDUID ${2} ${1}]").into_owned());
    scenarios(|| bed_through(same(), to_client.clone()));
}

/// SELECT without `[UIDNEXT n]`: the store asks STATUS for it.
#[test]
fn select_without_uidnext() {
    let to_client: Rewrite = Arc::new(|l: &str| {
        if l.starts_with("* OK [UIDNEXT ") {
            String::new()
        } else {
            l.to_string()
        }
    });
    scenarios(|| bed_through(same(), to_client.clone()));
}

const OFFSET: u64 = 1 << 63;

/// Every modseq the client sees is dovecot's plus 2^63 (and every modseq it sends is
/// translated back): the 64-bit range round-trips through the state database.
#[test]
fn modseqs_at_and_above_two_to_the_63() {
    let up = re(r"(HIGHESTMODSEQ |MODSEQ \()([0-9]+)");
    let to_client: Rewrite = Arc::new(move |l: &str| {
        up.replace_all(l, |c: &regex::Captures| {
            let n: u64 = c[2].parse().expect("modseq");
            format!("{}{}", &c[1], n + OFFSET)
        })
        .into_owned()
    });
    let down = re(r"(CHANGEDSINCE |UNCHANGEDSINCE |QRESYNC \([0-9]+ )([0-9]+)");
    let to_server: Rewrite = Arc::new(move |l: &str| {
        down.replace_all(l, |c: &regex::Captures| {
            let n: u64 = c[2].parse().expect("modseq");
            format!("{}{}", &c[1], n.saturating_sub(OFFSET).max(1))
        })
        .into_owned()
    });
    scenarios(|| bed_through(to_server.clone(), to_client.clone()));
}

/// `INTERNALDATE NIL` in FETCH responses (Zarafa:
/// <https://github.com/thunderbird/thunderbird-android/issues/1819>): the messages are
/// still identified (Message-ID and size) and copied, without a date.
#[test]
fn internaldate_nil() {
    let date = re(r#"INTERNALDATE "[^"]*""#);
    let to_client: Rewrite = Arc::new(move |l: &str| {
        if l.starts_with("* ") && l.contains(" FETCH (") {
            date.replace_all(l, "INTERNALDATE NIL").into_owned()
        } else {
            l.to_string()
        }
    });
    scenarios(|| bed_through(same(), to_client.clone()));
}

/// `BODY[] NIL` for every message (Exchange, for messages it cannot convert:
/// <https://github.com/imapsync/imapsync/issues/79>): nothing is copied (never an empty
/// message), the run says so, and once the server delivers them they are copied once.
#[test]
fn body_nil_is_not_copied_as_an_empty_message() {
    let broken = Arc::new(AtomicBool::new(true));
    let is_broken = broken.clone();
    let body = re(r"BODY\[\] \{[0-9]+\}\r\n$");
    let to_client: Rewrite = Arc::new(move |l: &str| {
        if is_broken.load(Ordering::SeqCst) && l.starts_with("* ") && body.is_match(l) {
            // The literal's data is dropped by the relay; its `)` line follows.
            body.replace(l, "BODY[] NIL").into_owned()
        } else {
            l.to_string()
        }
    });
    let (bed, _relay) = bed_through(same(), to_client);
    let m = twinbox::testbed::sample_messages(241, 4);
    bed.local.seed("INBOX", &m, &["\\Seen"]).expect("seed");
    let first = bed.run();
    assert_eq!(first.summary().to_remote, 0, "{first}");
    assert!(first.stderr.contains("no content"), "{first}");
    assert!(
        bed.remote.messages("INBOX").unwrap_or_default().is_empty(),
        "something was stored on the remote side"
    );
    broken.store(false, Ordering::SeqCst);
    let second = bed.sync();
    assert_eq!(second.summary().to_remote, 4, "{second}");
    let snap = bed.assert_converged();
    let mut want: Vec<_> = m.iter().map(|x| msg(x, &["\\Seen"])).collect();
    want.sort();
    assert_eq!(snap["INBOX"], want);
}
