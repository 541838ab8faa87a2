//! A scripted fake IMAP server, for server behaviour dovecot will not produce: malformed
//! responses, dropped connections, PREAUTH where STARTTLS was required, STARTTLS response
//! injection, absurd literal sizes, ...
//!
//! ```ignore
//! use fake::{FakeServer, Step};
//! let (port, server) = FakeServer::start(vec![
//!     Step::line("* OK [CAPABILITY IMAP4rev1 STARTTLS] fake"),
//!     Step::expect_cmd("STARTTLS"),
//!     // Injection: an untagged response in the same packet as the STARTTLS reply.
//!     Step::tagged_then("OK Begin TLS", "* OK injected\r\n"),
//!     Step::ExpectClosed,
//! ]);
//! // ... run the client against 127.0.0.1:port ...
//! let report = server.finish();
//! report.assert_ok();
//! assert!(!report.saw_command("LOGIN"));
//! ```
//!
//! Each [`Step`] runs in order on one accepted connection ([`FakeServer::start_sessions`]
//! gives one script per successive connection). Reads time out after
//! [`FakeServer::STEP_TIMEOUT`]; a failed step is recorded in [`FakeReport::errors`] and
//! ends that session. When a script ends without closing, the server keeps reading (and
//! recording) until the client closes or [`FakeHandle::finish`] is called.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openssl::ssl::{SslAcceptor, SslMethod, SslStream};
use twinbox::testbed::TestPki;

/// How a client command is checked by [`Step::Expect`].
#[derive(Clone)]
pub enum Match {
    /// Any command.
    Any,
    /// The command text (tag included) starts with this, ASCII case-insensitively.
    Prefix(String),
    /// The command text contains this.
    Contains(String),
    /// A predicate on the command text, with a description for error messages.
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>, String),
}

impl Match {
    fn check(&self, text: &str) -> bool {
        match self {
            Match::Any => true,
            Match::Prefix(p) => {
                text.len() >= p.len()
                    && text.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            }
            Match::Contains(c) => text.contains(c.as_str()),
            Match::Predicate(f, _) => f(text),
        }
    }

    fn describe(&self) -> String {
        match self {
            Match::Any => "any command".into(),
            Match::Prefix(p) => format!("a command starting with {p:?}"),
            Match::Contains(c) => format!("a command containing {c:?}"),
            Match::Predicate(_, d) => d.clone(),
        }
    }
}

/// One step of a fake server script.
#[derive(Clone)]
pub enum Step {
    /// Write these bytes in one write (one TCP segment in practice, with Nagle off).
    Send(Vec<u8>),
    /// Write `<tag> <text>\r\n` using the tag of the last [`Step::ExpectTagged`].
    SendTagged(String),
    /// Like `SendTagged`, with extra raw bytes in the same write (injection tests).
    SendTaggedThen(String, Vec<u8>),
    /// Read one client command: a CRLF line, plus literal data announced with `{n}` (after
    /// which `+ go ahead` is sent first) or `{n+}`, and the rest of the command after it.
    Expect(Match),
    /// Read one command whose name (the word after the tag; two words for `UID ...`)
    /// equals this, ASCII case-insensitively; remember its tag for `SendTagged`.
    ExpectTagged(String),
    /// Wait for the client to close the connection (EOF) without sending a command.
    ExpectClosed,
    /// Do the server side of a TLS handshake with the fake's certificate (STARTTLS after
    /// its OK, or first for implicit TLS).
    StartTls,
    /// Pause.
    Sleep(u64),
    /// Close the connection now (both directions) and end the session.
    Close,
    /// Write the bytes, then close.
    SendRawThenClose(Vec<u8>),
}

impl Step {
    /// `Send` of a line: the text plus CRLF.
    pub fn line(text: &str) -> Step {
        Step::Send(format!("{text}\r\n").into_bytes())
    }

    /// `Send` of raw bytes.
    pub fn raw(bytes: impl AsRef<[u8]>) -> Step {
        Step::Send(bytes.as_ref().to_vec())
    }

    /// `ExpectTagged(name)`.
    pub fn expect_cmd(name: &str) -> Step {
        Step::ExpectTagged(name.to_string())
    }

    /// `Expect(Match::Prefix(prefix))`.
    pub fn expect_prefix(prefix: &str) -> Step {
        Step::Expect(Match::Prefix(prefix.to_string()))
    }

    /// `Expect(Match::Any)`.
    pub fn expect_any() -> Step {
        Step::Expect(Match::Any)
    }

    /// `Expect` with a predicate.
    pub fn expect_that(
        description: &str,
        f: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Step {
        Step::Expect(Match::Predicate(Arc::new(f), description.to_string()))
    }

    /// `SendTagged(text)`.
    pub fn tagged(text: &str) -> Step {
        Step::SendTagged(text.to_string())
    }

    /// `SendTaggedThen(text, extra)`.
    pub fn tagged_then(text: &str, extra: impl AsRef<[u8]>) -> Step {
        Step::SendTaggedThen(text.to_string(), extra.as_ref().to_vec())
    }
}

/// One client command as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCommand {
    /// The command's lines joined without CRLF, literal data left out (the `{n}`
    /// announcements stay), e.g. `a2 APPEND INBOX {5}`.
    pub text: String,
    /// Literal data, in order.
    pub literals: Vec<Vec<u8>>,
}

impl ClientCommand {
    /// The tag (first word).
    pub fn tag(&self) -> &str {
        self.text.split(' ').next().unwrap_or("")
    }

    /// Whether the command name is `name` (`"LOGIN"`, `"UID FETCH"`), case-insensitively.
    pub fn is(&self, name: &str) -> bool {
        let rest = self.text.split_once(' ').map(|(_, r)| r).unwrap_or("");
        let n = name.len();
        rest.len() >= n
            && rest.as_bytes()[..n].eq_ignore_ascii_case(name.as_bytes())
            && (rest.len() == n || rest.as_bytes()[n] == b' ')
    }

    fn name(&self) -> String {
        let mut words = self.text.split(' ').skip(1);
        let first = words.next().unwrap_or("").to_ascii_uppercase();
        if first == "UID" {
            format!("UID {}", words.next().unwrap_or("").to_ascii_uppercase())
        } else {
            first
        }
    }
}

/// What one connection saw.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Every byte read from the client (decrypted after `StartTls`), including what came
    /// after the script ended.
    pub received: Vec<u8>,
    /// Commands parsed from `received`.
    pub commands: Vec<ClientCommand>,
    /// Whether the client closed the connection (EOF seen).
    pub client_closed: bool,
}

/// The outcome of a fake server run.
#[derive(Debug, Clone, Default)]
pub struct FakeReport {
    /// One transcript per accepted connection.
    pub sessions: Vec<Transcript>,
    /// Failed expectations and I/O errors, with the step index.
    pub errors: Vec<String>,
}

impl FakeReport {
    /// Panics with the errors if any step failed.
    pub fn assert_ok(&self) {
        assert!(
            self.errors.is_empty(),
            "fake server script failed: {:#?}\ntranscripts: {:#?}",
            self.errors,
            self.sessions
                .iter()
                .map(|s| String::from_utf8_lossy(&s.received).into_owned())
                .collect::<Vec<_>>()
        );
    }

    /// All commands of all sessions.
    pub fn commands(&self) -> Vec<ClientCommand> {
        self.sessions
            .iter()
            .flat_map(|s| s.commands.iter().cloned())
            .collect()
    }

    /// Whether any session received a command with that name.
    pub fn saw_command(&self, name: &str) -> bool {
        self.sessions
            .iter()
            .any(|s| s.commands.iter().any(|c| c.is(name)))
    }
}

#[derive(Default)]
struct Shared {
    sessions: Vec<Transcript>,
    errors: Vec<String>,
    finished: bool,
}

/// A running fake server.
pub struct FakeHandle {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    ca_path: PathBuf,
    fingerprint: String,
    _dir: tempfile::TempDir,
}

/// Constructor namespace for fake servers.
pub struct FakeServer;

impl FakeServer {
    /// How long one step may wait for the client.
    pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

    /// Listens on 127.0.0.1:0 and runs `script` on the first connection.
    pub fn start(script: Vec<Step>) -> (u16, FakeHandle) {
        Self::start_sessions(vec![script])
    }

    /// Runs one script per connection, accepting connections one after another.
    pub fn start_sessions(scripts: Vec<Vec<Step>>) -> (u16, FakeHandle) {
        Self::start_sessions_on("127.0.0.1".parse().expect("loopback"), scripts)
    }

    /// Like [`Self::start_sessions`], listening on `ip` (e.g. a non-loopback address).
    pub fn start_sessions_on(ip: std::net::IpAddr, scripts: Vec<Vec<Step>>) -> (u16, FakeHandle) {
        let listener = TcpListener::bind((ip, 0)).expect("bind fake server");
        let port = listener.local_addr().expect("local addr").port();
        let pki = TestPki::generate().expect("fake server certificates");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_path = dir.path().join("fake-ca.pem");
        std::fs::write(&ca_path, pki.ca_pem().expect("pem")).expect("write CA");
        let fingerprint = pki.cert_fingerprint_sha256().expect("fingerprint");
        let mut acceptor =
            SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("acceptor");
        acceptor
            .set_private_key(&pki.server_key)
            .expect("server key");
        acceptor
            .set_certificate(&pki.server_cert)
            .expect("server cert");
        let acceptor = Arc::new(acceptor.build());

        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::spawn(move || serve(listener, scripts, acceptor, shared.clone(), stop))
        };
        (
            port,
            FakeHandle {
                port,
                shared,
                stop,
                thread: Some(thread),
                ca_path,
                fingerprint,
                _dir: dir,
            },
        )
    }
}

impl FakeHandle {
    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// PEM file of the CA that signed the fake's certificate (for `StartTls`).
    pub fn ca_cert_path(&self) -> &Path {
        &self.ca_path
    }

    /// SHA-256 (hex) of the fake's certificate.
    pub fn cert_fingerprint_sha256(&self) -> &str {
        &self.fingerprint
    }

    /// A snapshot of what has been received and gone wrong so far.
    pub fn snapshot(&self) -> FakeReport {
        let s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        FakeReport {
            sessions: s.sessions.clone(),
            errors: s.errors.clone(),
        }
    }

    /// Waits (up to `timeout`) until every script has run and each client has closed.
    pub fn wait(mut self, timeout: Duration) -> FakeReport {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .shared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .finished
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.finish_inner()
    }

    /// Stops reading (a script still waiting fails) and returns the report.
    pub fn finish(mut self) -> FakeReport {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> FakeReport {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.snapshot()
    }
}

impl Drop for FakeHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
    Closed,
}

impl Conn {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Conn::Plain(s) => Some(s),
            Conn::Tls(s) => Some(s.get_ref()),
            Conn::Closed => None,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Closed => Ok(0),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Closed => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Closed => Ok(()),
        }
    }
}

struct Session<'a> {
    conn: Conn,
    index: usize,
    shared: &'a Mutex<Shared>,
    stop: &'a AtomicBool,
    acceptor: &'a SslAcceptor,
    tag: Option<String>,
}

const POLL: Duration = Duration::from_millis(25);
/// Largest literal the fake will read from a client.
const MAX_LITERAL: usize = 64 << 20;

impl Session<'_> {
    fn record(&self, bytes: &[u8]) {
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        s.sessions[self.index].received.extend_from_slice(bytes);
    }

    fn set_closed(&self) {
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        s.sessions[self.index].client_closed = true;
    }

    /// Reads exactly one byte, polling the stop flag; `Ok(None)` on EOF.
    fn read_byte(&mut self, deadline: Instant) -> Result<Option<u8>, String> {
        let mut b = [0u8; 1];
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Err("stopped while waiting for the client".into());
            }
            if Instant::now() > deadline {
                return Err("timed out waiting for the client".into());
            }
            match self.conn.read(&mut b) {
                Ok(0) => {
                    self.set_closed();
                    return Ok(None);
                }
                Ok(_) => {
                    self.record(&b);
                    return Ok(Some(b[0]));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
    }

    fn read_line(&mut self, deadline: Instant) -> Result<Option<Vec<u8>>, String> {
        let mut line = Vec::new();
        loop {
            match self.read_byte(deadline)? {
                None if line.is_empty() => return Ok(None),
                None => return Err(format!("EOF inside line {:?}", lossy(&line))),
                Some(b'\n') => {
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(Some(line));
                }
                Some(b) => line.push(b),
            }
        }
    }

    /// Reads one command with its literals; `Ok(None)` on a clean EOF before it.
    fn read_command(&mut self) -> Result<Option<ClientCommand>, String> {
        let deadline = Instant::now() + FakeServer::STEP_TIMEOUT;
        let mut text = Vec::new();
        let mut literals = Vec::new();
        loop {
            let Some(line) = self.read_line(deadline)? else {
                if text.is_empty() {
                    return Ok(None);
                }
                return Err(format!("EOF inside command {:?}", lossy(&text)));
            };
            text.extend_from_slice(&line);
            let Some((n, sync)) = literal_announcement(&line) else {
                break;
            };
            if n > MAX_LITERAL {
                return Err(format!("client announced a {n}-byte literal"));
            }
            if sync {
                self.write_all(b"+ go ahead\r\n")?;
            }
            let mut data = Vec::with_capacity(n);
            while data.len() < n {
                match self.read_byte(deadline)? {
                    Some(b) => data.push(b),
                    None => return Err(format!("EOF inside a {n}-byte literal")),
                }
            }
            literals.push(data);
        }
        Ok(Some(ClientCommand {
            text: lossy(&text),
            literals,
        }))
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.conn
            .write_all(bytes)
            .and_then(|_| self.conn.flush())
            .map_err(|e| format!("write error: {e}"))
    }

    fn close(&mut self) {
        if let Some(tcp) = self.conn.tcp() {
            let _ = tcp.shutdown(Shutdown::Both);
        }
        self.conn = Conn::Closed;
    }

    fn run_step(&mut self, step: &Step) -> Result<bool, String> {
        match step {
            Step::Send(bytes) => self.write_all(bytes)?,
            Step::SendTagged(text) | Step::SendTaggedThen(text, _) => {
                let tag = self
                    .tag
                    .clone()
                    .ok_or("SendTagged before any ExpectTagged")?;
                let mut out = format!("{tag} {text}\r\n").into_bytes();
                if let Step::SendTaggedThen(_, extra) = step {
                    out.extend_from_slice(extra);
                }
                self.write_all(&out)?;
            }
            Step::Expect(m) => {
                let cmd = self
                    .read_command()?
                    .ok_or_else(|| format!("client closed; expected {}", m.describe()))?;
                if !m.check(&cmd.text) {
                    return Err(format!("expected {}, got {:?}", m.describe(), cmd.text));
                }
            }
            Step::ExpectTagged(name) => {
                let cmd = self
                    .read_command()?
                    .ok_or_else(|| format!("client closed; expected {name}"))?;
                if !cmd.is(name) {
                    return Err(format!("expected {name}, got {:?}", cmd.text));
                }
                self.tag = Some(cmd.tag().to_string());
            }
            Step::ExpectClosed => {
                if let Some(cmd) = self.read_command()? {
                    return Err(format!(
                        "expected the client to close, got {:?} ({})",
                        cmd.text,
                        cmd.name()
                    ));
                }
                self.close();
                return Ok(false);
            }
            Step::StartTls => {
                let tcp = match std::mem::replace(&mut self.conn, Conn::Closed) {
                    Conn::Plain(tcp) => tcp,
                    other => {
                        self.conn = other;
                        return Err("StartTls on a connection that is not plain TCP".into());
                    }
                };
                let _ = tcp.set_read_timeout(Some(FakeServer::STEP_TIMEOUT));
                let tls = self
                    .acceptor
                    .accept(tcp)
                    .map_err(|e| format!("TLS handshake failed: {e}"))?;
                let _ = tls.get_ref().set_read_timeout(Some(POLL));
                self.conn = Conn::Tls(Box::new(tls));
            }
            Step::Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
            Step::Close => {
                self.close();
                return Ok(false);
            }
            Step::SendRawThenClose(bytes) => {
                self.write_all(bytes)?;
                self.close();
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// After the script: record whatever the client still sends until EOF or stop.
    fn drain(&mut self) {
        let mut buf = [0u8; 8192];
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            match self.conn.read(&mut buf) {
                Ok(0) => {
                    self.set_closed();
                    return;
                }
                Ok(n) => self.record(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return,
            }
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `{n}` (synchronizing) or `{n+}`/`{n-}` at the end of a line.
fn literal_announcement(line: &[u8]) -> Option<(usize, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|b| *b == b'{')?;
    let mut num = &inner[open + 1..];
    let mut sync = true;
    if let Some(n) = num.strip_suffix(b"+").or_else(|| num.strip_suffix(b"-")) {
        num = n;
        sync = false;
    }
    if num.is_empty() || !num.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((std::str::from_utf8(num).ok()?.parse().ok()?, sync))
}

/// Splits received bytes into commands, the way `read_command` does.
fn parse_commands(data: &[u8]) -> Vec<ClientCommand> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let mut text = Vec::new();
        let mut literals = Vec::new();
        loop {
            let rest = &data[pos..];
            let (line, next) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], pos + i + 1),
                None => (rest, data.len()),
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            text.extend_from_slice(line);
            pos = next;
            match literal_announcement(line) {
                Some((n, _)) if pos < data.len() => {
                    let end = (pos + n).min(data.len());
                    literals.push(data[pos..end].to_vec());
                    pos = end;
                }
                _ => break,
            }
        }
        out.push(ClientCommand {
            text: lossy(&text),
            literals,
        });
    }
    out
}

fn serve(
    listener: TcpListener,
    scripts: Vec<Vec<Step>>,
    acceptor: Arc<SslAcceptor>,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
) {
    let fail = |msg: String| {
        shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .errors
            .push(msg)
    };
    if let Err(e) = listener.set_nonblocking(true) {
        fail(format!("set_nonblocking: {e}"));
        return;
    }
    for (index, script) in scripts.iter().enumerate() {
        // Accept, polling the stop flag.
        let deadline = Instant::now() + Duration::from_secs(60);
        let tcp = loop {
            if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                fail(format!("session {index}: no client connected"));
                shared.lock().unwrap_or_else(|p| p.into_inner()).finished = true;
                return;
            }
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => {
                    fail(format!("session {index}: accept: {e}"));
                    return;
                }
            }
        };
        let _ = tcp.set_nonblocking(false);
        let _ = tcp.set_nodelay(true);
        let _ = tcp.set_read_timeout(Some(POLL));
        shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sessions
            .push(Transcript::default());
        let mut session = Session {
            conn: Conn::Plain(tcp),
            index,
            shared: &shared,
            stop: &stop,
            acceptor: &acceptor,
            tag: None,
        };
        let mut open = true;
        for (i, step) in script.iter().enumerate() {
            match session.run_step(step) {
                Ok(true) => {}
                Ok(false) => {
                    open = false;
                    break;
                }
                Err(e) => {
                    fail(format!("session {index}, step {i}: {e}"));
                    open = false;
                    session.close();
                    break;
                }
            }
        }
        if open {
            session.drain();
            session.close();
        }
        let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
        let parsed = parse_commands(&s.sessions[index].received);
        s.sessions[index].commands = parsed;
    }
    shared.lock().unwrap_or_else(|p| p.into_inner()).finished = true;
}

// ---------------------------------------------------------------------------------------
// Self-tests of the fake server, driven by a raw TcpStream.

fn client(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to fake");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

fn read_line(s: &mut impl Read) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if s.read(&mut b).expect("read") == 0 {
            break;
        }
        line.push(b[0]);
    }
    lossy(&line)
}

#[test]
fn fake_server_runs_a_script_with_literals_and_records_commands() {
    let (port, server) = FakeServer::start(vec![
        Step::line("* OK [CAPABILITY IMAP4rev1 LITERAL+] fake ready"),
        Step::expect_cmd("LOGIN"),
        Step::tagged("OK logged in"),
        Step::expect_cmd("APPEND"),
        Step::tagged("OK [APPENDUID 7 1] done"),
        Step::expect_that("UID FETCH with a plus-literal", |t| {
            t.contains("UID FETCH") || t.contains("{3+}")
        }),
        Step::raw(b"* 1 FETCH (BODY[] {4294967295}\r\nabc"),
        Step::Close,
    ]);
    let mut c = client(port);
    assert_eq!(
        read_line(&mut c),
        "* OK [CAPABILITY IMAP4rev1 LITERAL+] fake ready\r\n"
    );
    c.write_all(b"a1 LOGIN {5}\r\n").expect("write");
    assert_eq!(read_line(&mut c), "+ go ahead\r\n");
    c.write_all(b"alice secret\r\n").expect("write");
    assert_eq!(read_line(&mut c), "a1 OK logged in\r\n");
    c.write_all(b"a2 APPEND INBOX {3+}\r\nhi\n\r\n")
        .expect("write");
    assert_eq!(read_line(&mut c), "a2 OK [APPENDUID 7 1] done\r\n");
    c.write_all(b"a3 UID FETCH 1 BODY[]\r\n").expect("write");
    assert_eq!(read_line(&mut c), "* 1 FETCH (BODY[] {4294967295}\r\n");
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).expect("read to EOF");
    assert_eq!(rest, b"abc", "connection dropped mid-literal");

    let report = server.wait(Duration::from_secs(10));
    report.assert_ok();
    let cmds = report.commands();
    let texts: Vec<&str> = cmds.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "a1 LOGIN {5} secret",
            "a2 APPEND INBOX {3+}",
            "a3 UID FETCH 1 BODY[]"
        ]
    );
    assert_eq!(cmds[0].literals, vec![b"alice".to_vec()]);
    assert_eq!(cmds[1].literals, vec![b"hi\n".to_vec()]);
    assert!(report.saw_command("LOGIN"));
    assert!(report.saw_command("UID FETCH"));
    assert!(!report.saw_command("STARTTLS"));
    assert!(!report.sessions[0].client_closed);
}

#[test]
fn fake_server_starttls_injection_and_failures_are_reported() {
    // Session 1: STARTTLS reply with an injected response in the same write, then a real
    // handshake and a command inside TLS. Session 2: a wrong command fails the script.
    let (port, server) = FakeServer::start_sessions(vec![
        vec![
            Step::line("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] fake"),
            Step::expect_cmd("STARTTLS"),
            Step::tagged_then("OK Begin TLS", "* OK injected\r\n"),
            Step::StartTls,
            Step::expect_cmd("NOOP"),
            Step::tagged("OK secure"),
            Step::ExpectClosed,
        ],
        vec![Step::line("* PREAUTH fake"), Step::expect_cmd("CAPABILITY")],
    ]);
    let ca = server.ca_cert_path().to_path_buf();

    let mut c = client(port);
    read_line(&mut c);
    c.write_all(b"s1 STARTTLS\r\n").expect("write");
    // Both lines arrive together: a client must treat the second as an attack.
    let mut both = [0u8; 64];
    let mut got = 0;
    while !both[..got].ends_with(b"injected\r\n") {
        let n = c.read(&mut both[got..]).expect("read");
        assert!(n > 0, "EOF");
        got += n;
    }
    assert_eq!(&both[..got], b"s1 OK Begin TLS\r\n* OK injected\r\n");
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())
        .expect("builder");
    b.set_ca_file(&ca).expect("ca");
    let mut tls = b
        .build()
        .connect("127.0.0.1", c)
        .expect("TLS with the fake's CA");
    tls.write_all(b"s2 NOOP\r\n").expect("write");
    assert_eq!(read_line(&mut tls), "s2 OK secure\r\n");
    let _ = tls.shutdown();
    drop(tls);

    let mut c2 = client(port);
    assert_eq!(read_line(&mut c2), "* PREAUTH fake\r\n");
    c2.write_all(b"x LOGIN a b\r\n").expect("write");
    let mut rest = Vec::new();
    let _ = c2.read_to_end(&mut rest);

    let report = server.wait(Duration::from_secs(10));
    assert_eq!(report.sessions.len(), 2);
    assert!(report.sessions[0].client_closed);
    assert_eq!(
        report.sessions[0]
            .commands
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>(),
        vec!["s1 STARTTLS", "s2 NOOP"]
    );
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("session 1, step 1")
            && report.errors[0].contains("expected CAPABILITY"),
        "{:?}",
        report.errors
    );
    assert!(report.saw_command("LOGIN"));
}
