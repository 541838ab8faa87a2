//! The test bed itself works: dovecot starts, speaks IMAP, TLS verifies against the
//! generated CA, capability overrides take effect, the PREAUTH tunnel sees the same mail,
//! and the doveadm helpers report exactly what is on the server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use twinbox::testbed::{
    message_sha256_hex, sample_messages, Dovecot, DovecotOptions, MailLayout, TestPki,
};

const TIMEOUT: Duration = Duration::from_secs(20);

fn start(opts: DovecotOptions) -> Dovecot {
    Dovecot::start(opts).expect("dovecot should start (is dovecot-imapd installed?)")
}

/// Reads from `r` until the buffer ends with a line starting with `tag ` (or `*` greeting
/// when `tag` is `*`), returning everything read.
fn read_response(r: &mut impl Read, tag: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        assert!(Instant::now() < deadline, "timed out waiting for {tag}");
        let n = r.read(&mut byte).expect("read from server");
        assert!(
            n > 0,
            "EOF waiting for {tag}; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
        if buf.ends_with(b"\r\n") {
            let text = String::from_utf8_lossy(&buf);
            let last = text
                .trim_end_matches("\r\n")
                .rsplit("\r\n")
                .next()
                .unwrap_or("")
                .to_string();
            if last.starts_with(&format!("{tag} ")) {
                return text.into_owned();
            }
        }
    }
}

fn connect_plain(dc: &Dovecot) -> TcpStream {
    let s = TcpStream::connect((dc.host(), dc.imap_port())).expect("connect to imap port");
    s.set_read_timeout(Some(TIMEOUT)).expect("set timeout");
    s
}

fn tls_connector(ca: &std::path::Path) -> SslConnector {
    let mut b = SslConnector::builder(SslMethod::tls_client()).expect("ssl builder");
    b.set_ca_file(ca).expect("load CA file");
    b.set_verify(SslVerifyMode::PEER);
    b.build()
}

fn login_caps(dc: &Dovecot) -> String {
    let mut s = connect_plain(dc);
    read_response(&mut s, "*");
    s.write_all(b"a1 LOGIN alice secret\r\n").expect("write");
    let resp = read_response(&mut s, "a1");
    assert!(resp.contains("a1 OK"), "login failed: {resp}");
    s.write_all(b"a2 LOGOUT\r\n").expect("write");
    read_response(&mut s, "a2");
    resp
}

#[test]
fn dovecot_starts_and_greets_with_starttls() {
    let dc = start(DovecotOptions::default());
    assert_eq!(dc.host(), "127.0.0.1");
    assert!(dc.imaps_port().is_some());
    assert!(dc.config_path().exists());
    let mut s = connect_plain(&dc);
    let greeting = read_response(&mut s, "*");
    assert!(greeting.starts_with("* OK "), "greeting: {greeting}");
    assert!(greeting.contains("STARTTLS"), "no STARTTLS: {greeting}");
    assert!(dc.log_contents().contains("starting up"));
}

#[test]
fn imaps_and_starttls_verify_against_the_generated_ca() {
    let dc = start(DovecotOptions::default());
    let ca = dc.ca_cert_path().expect("TLS is on by default");
    let fingerprint = dc.cert_fingerprint_sha256().expect("fingerprint");
    assert_eq!(fingerprint.len(), 64);

    // Implicit TLS, verified by IP address and by name.
    for name in ["127.0.0.1", "localhost"] {
        let tcp = TcpStream::connect((dc.host(), dc.imaps_port().expect("imaps port")))
            .expect("connect imaps");
        tcp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut tls = tls_connector(ca)
            .connect(name, tcp)
            .unwrap_or_else(|e| panic!("TLS handshake verifying {name}: {e}"));
        let peer = tls.ssl().peer_certificate().expect("peer certificate");
        let digest = peer
            .digest(openssl::hash::MessageDigest::sha256())
            .expect("digest");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, fingerprint);
        let greeting = read_response(&mut tls, "*");
        assert!(greeting.starts_with("* OK "), "greeting: {greeting}");
    }

    // A different CA must not verify.
    let other = TestPki::generate().expect("pki");
    let dir = tempfile::tempdir().expect("tempdir");
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, other.ca_pem().expect("pem")).expect("write");
    let tcp = TcpStream::connect((dc.host(), dc.imaps_port().expect("imaps port")))
        .expect("connect imaps");
    assert!(
        tls_connector(&other_ca).connect("127.0.0.1", tcp).is_err(),
        "a foreign CA verified the server"
    );

    // STARTTLS on the plain port.
    let mut s = connect_plain(&dc);
    read_response(&mut s, "*");
    s.write_all(b"s1 STARTTLS\r\n").expect("write");
    let ok = read_response(&mut s, "s1");
    assert!(ok.contains("s1 OK"), "STARTTLS refused: {ok}");
    let mut tls = tls_connector(ca)
        .connect("127.0.0.1", s)
        .expect("TLS after STARTTLS");
    tls.write_all(b"s2 LOGIN alice secret\r\n").expect("write");
    let resp = read_response(&mut tls, "s2");
    assert!(resp.contains("s2 OK"), "login over STARTTLS: {resp}");
}

#[test]
fn capability_override_hides_condstore_and_qresync() {
    let plain = start(DovecotOptions::default());
    let caps = login_caps(&plain);
    assert!(
        caps.contains("QRESYNC") && caps.contains("CONDSTORE"),
        "{caps}"
    );
    assert!(caps.contains("COMPRESS=DEFLATE"), "{caps}");
    drop(plain);

    let dc = start(DovecotOptions::default().without_condstore());
    let mut s = connect_plain(&dc);
    let greeting = read_response(&mut s, "*");
    assert!(!greeting.contains("CONDSTORE") && !greeting.contains("QRESYNC"));
    let caps = login_caps(&dc);
    assert!(
        caps.contains("IMAP4rev1") && caps.contains("UIDPLUS"),
        "{caps}"
    );
    assert!(!caps.contains("CONDSTORE"), "CONDSTORE advertised: {caps}");
    assert!(!caps.contains("QRESYNC"), "QRESYNC advertised: {caps}");

    let mut t = Tunnel::spawn(&dc.preauth_tunnel_command("alice"));
    let greeting = read_response(&mut t.stdout, "*");
    assert!(greeting.starts_with("* PREAUTH"), "{greeting}");
    assert!(!greeting.contains("QRESYNC"), "{greeting}");
}

/// The PREAUTH tunnel as a child process with a watchdog.
struct Tunnel {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl Tunnel {
    fn spawn(command: &str) -> Tunnel {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the tunnel");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        Tunnel {
            child,
            stdin,
            stdout,
        }
    }

    fn command(&mut self, tag: &str, cmd: &str) -> String {
        write!(self.stdin, "{tag} {cmd}\r\n").expect("write to tunnel");
        self.stdin.flush().expect("flush");
        read_response(&mut self.stdout, tag)
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn preauth_tunnel_sees_appended_mail_and_commands_are_logged() {
    let dc = start(DovecotOptions::default());
    let msg = &sample_messages(1, 1)[0];
    let uid = dc
        .append("alice", "INBOX", msg, &["\\Seen", "$Important"])
        .expect("append");
    assert_eq!(uid, 1);

    let mut t = Tunnel::spawn(&dc.preauth_tunnel_command("alice"));
    let greeting = read_response(&mut t.stdout, "*");
    assert!(greeting.starts_with("* PREAUTH"), "{greeting}");
    let sel = t.command("t1", "SELECT INBOX");
    assert!(sel.contains("* 1 EXISTS"), "{sel}");
    let fetch = t.command("t2", "UID FETCH 1 (FLAGS RFC822.SIZE)");
    assert!(
        fetch.contains("\\Seen") && fetch.contains("$Important"),
        "{fetch}"
    );
    assert!(
        fetch.contains(&format!("RFC822.SIZE {}", msg.len())),
        "{fetch}"
    );
    let body = t.command("t3", "UID FETCH 1 BODY.PEEK[]");
    assert!(
        body.contains(&String::from_utf8_lossy(msg).into_owned()),
        "BODY[] differs from what was appended"
    );

    // COMPRESS, then a command inside the compressed stream: the command log decodes it.
    let ok = t.command("t4", "COMPRESS DEFLATE");
    assert!(ok.contains("t4 OK"), "{ok}");
    let mut z = flate2::Compress::new(flate2::Compression::fast(), false);
    let mut out = Vec::with_capacity(256);
    z.compress_vec(
        b"t5 NOOP\r\nt6 LOGOUT\r\n",
        &mut out,
        flate2::FlushCompress::Sync,
    )
    .expect("deflate");
    t.stdin.write_all(&out).expect("write");
    t.stdin.flush().expect("flush");
    let mut rest = Vec::new();
    t.stdout
        .read_to_end(&mut rest)
        .expect("read to EOF after LOGOUT");
    assert!(t.child.wait().expect("wait").success());

    let cmds = dc.commands_seen("alice").expect("commands");
    assert_eq!(
        cmds,
        vec![
            "t1 SELECT INBOX",
            "t2 UID FETCH 1 (FLAGS RFC822.SIZE)",
            "t3 UID FETCH 1 BODY.PEEK[]",
            "t4 COMPRESS DEFLATE",
            "t5 NOOP",
            "t6 LOGOUT"
        ]
    );
    dc.wait_for_log("Logged out", TIMEOUT)
        .expect("logout logged");
}

#[test]
fn doveadm_helpers_report_exact_state() {
    let dc = start(DovecotOptions::default());
    let msgs = sample_messages(42, 3);
    // A message with bare LF line endings is stored and served with CRLF.
    let lf = b"From: a@example.test\nSubject: lf\n\nbody\n".to_vec();

    let u1 = dc.append("alice", "INBOX", &msgs[0], &[]).expect("append");
    let u2 = dc
        .append("alice", "INBOX", &msgs[1], &["\\Flagged", "$Label1"])
        .expect("append");
    let u3 = dc
        .append("alice", "INBOX", &lf, &["\\Seen"])
        .expect("append");
    assert_eq!((u1, u2, u3), (1, 2, 3));

    let list = dc.list_messages("alice", "INBOX").expect("list");
    assert_eq!(
        list.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(list[0].flags, Vec::<String>::new());
    assert_eq!(list[1].flags, vec!["\\Flagged", "$Label1"]);
    assert_eq!(list[2].flags, vec!["\\Seen"]);
    assert_eq!(list[0].sha256_of_body_hex, message_sha256_hex(&msgs[0]));
    assert_eq!(list[1].sha256_of_body_hex, message_sha256_hex(&msgs[1]));
    assert_eq!(list[2].sha256_of_body_hex, message_sha256_hex(&lf));
    assert_eq!(list[0].size, msgs[0].len() as u64);
    assert_eq!(list[2].size, lf.len() as u64 + 4);
    assert_eq!(
        dc.fetch_message("alice", "INBOX", 3).expect("fetch"),
        b"From: a@example.test\r\nSubject: lf\r\n\r\nbody\r\n"
    );

    dc.set_flags("alice", "INBOX", 1, &["\\Answered", "$X"])
        .expect("set");
    dc.remove_flags("alice", "INBOX", 2, &["$Label1"])
        .expect("remove");
    dc.set_flags("alice", "INBOX", 3, &[]).expect("clear");
    dc.expunge("alice", "INBOX", 2).expect("expunge");
    let list = dc.list_messages("alice", "INBOX").expect("list");
    let view: Vec<(u32, Vec<String>)> = list.into_iter().map(|m| (m.uid, m.flags)).collect();
    assert_eq!(
        view,
        vec![
            (1, vec!["\\Answered".to_string(), "$X".to_string()]),
            (3, vec![])
        ]
    );
    let st = dc.mailbox_status("alice", "INBOX").expect("status");
    assert_eq!((st.messages, st.uidnext), (2, 4));
    assert!(st.uidvalidity > 0 && st.highestmodseq > 0);

    // Mailboxes with hierarchy and non-ASCII names; bob is separate.
    dc.create_mailbox("alice", "Archive/2024").expect("create");
    dc.create_mailbox("alice", "Entwürfe").expect("create");
    let uid = dc
        .append("alice", "Entwürfe", &msgs[2], &["\\Draft"])
        .expect("append");
    assert_eq!(uid, 1);
    assert_eq!(
        dc.mailboxes("alice").expect("list"),
        vec!["Archive", "Archive/2024", "Entwürfe", "INBOX"]
    );
    assert_eq!(dc.mailboxes("bob").expect("list"), vec!["INBOX"]);
    assert!(dc.list_messages("bob", "INBOX").expect("list").is_empty());
    dc.move_message("alice", "Entwürfe", 1, "Archive/2024")
        .expect("move");
    let moved = dc.list_messages("alice", "Archive/2024").expect("list");
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].sha256_of_body_hex, message_sha256_hex(&msgs[2]));
    dc.set_uidvalidity("alice", "Archive/2024", 4242)
        .expect("uidvalidity");
    assert_eq!(
        dc.mailbox_status("alice", "Archive/2024")
            .expect("status")
            .uidvalidity,
        4242
    );

    // The network listener sees the same: LOGIN, SELECT, and byte counters in the log.
    let mut s = connect_plain(&dc);
    read_response(&mut s, "*");
    s.write_all(b"a LOGIN alice secret\r\nb SELECT INBOX\r\n")
        .expect("write");
    read_response(&mut s, "a");
    let sel = read_response(&mut s, "b");
    assert!(sel.contains("* 2 EXISTS"), "{sel}");
    s.write_all(b"c LOGOUT\r\n").expect("write");
    read_response(&mut s, "c");
    drop(s);
    dc.wait_for_log("Logged out in=", TIMEOUT).expect("logout");
    let counts = dc.session_byte_counts();
    let alice = counts
        .iter()
        .find(|c| c.user == "alice")
        .expect("a session of alice");
    assert!(alice.bytes_in > 10 && alice.bytes_out > 100, "{counts:?}");
}

#[test]
fn seed_mailbox_delivers_in_order_with_flags() {
    let dc = start(DovecotOptions::default().command_log(false).mail_log(false));
    let msgs = sample_messages(9, 40);
    let uids = dc
        .seed_mailbox("bob", "Lists/rust", &msgs, &["\\Seen", "$Seeded"])
        .expect("seed");
    assert_eq!(uids, (1..=40).collect::<Vec<u32>>());
    let more = dc
        .seed_mailbox("bob", "Lists/rust", &msgs[..2], &[])
        .expect("seed again");
    assert_eq!(more, vec![41, 42]);
    let list = dc.list_messages("bob", "Lists/rust").expect("list");
    assert_eq!(list.len(), 42);
    for (m, raw) in list.iter().zip(msgs.iter().chain(&msgs[..2])) {
        assert_eq!(
            m.sha256_of_body_hex,
            message_sha256_hex(raw),
            "UID {}",
            m.uid
        );
        assert_eq!(m.size, raw.len() as u64);
    }
    assert_eq!(list[0].flags, vec!["\\Seen", "$Seeded"]);
    assert!(list[41].flags.is_empty());
    assert!(dc.commands_seen("bob").is_err(), "command log is off");
}

#[test]
fn maildir_plus_plus_layout_with_inbox_prefix() {
    let dc = start(
        DovecotOptions::default()
            .layout(MailLayout::MaildirPlusPlus)
            .prefix("INBOX.")
            .tls(false)
            .compress(false),
    );
    assert_eq!(dc.separator(), '.');
    assert!(dc.imaps_port().is_none());
    assert!(dc.ca_cert_path().is_none());
    dc.create_mailbox("alice", "INBOX.Sent").expect("create");
    assert!(dc.home_dir("alice").join("Maildir/.Sent/cur").is_dir());
    assert_eq!(
        dc.mailboxes("alice").expect("list"),
        vec!["INBOX", "INBOX.Sent"]
    );
    let mut s = connect_plain(&dc);
    let greeting = read_response(&mut s, "*");
    assert!(!greeting.contains("STARTTLS"), "{greeting}");
    let caps = login_caps(&dc);
    assert!(!caps.contains("COMPRESS"), "{caps}");
}
