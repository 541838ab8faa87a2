//! Shared set-up for the run-mode tests: a private dovecot with two users (alice is the
//! remote side, bob the local one), a configuration file, the real `twinbox` binary, and a
//! daemon handle that reads its machineui events.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;
use twinbox::testbed::{Dovecot, DovecotOptions};

/// A generous bound for anything to happen (never a performance assertion).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A dovecot, a configuration for account `Test` (remote alice, local bob) and a
/// temporary directory holding the state.
pub struct Setup {
    /// The server.
    pub dv: Dovecot,
    /// Holds the configuration and the state.
    pub dir: tempfile::TempDir,
    /// The configuration file.
    pub conf: PathBuf,
}

impl Setup {
    /// Starts dovecot; `account` and `remote` are extra lines for `[Account Test]` and
    /// `[Repository Remote]`.
    pub fn new(opts: DovecotOptions, account: &str, remote: &str) -> Setup {
        let dv = Dovecot::start(opts).expect("dovecot should start");
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("twinbox.conf");
        let repo = |name: &str, user: &str, extra: &str| {
            format!(
                "[Repository {name}]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {}\nssl = no\nstarttls = no\nremoteuser = {user}\nremotepass = secret\n{extra}\n",
                dv.imap_port()
            )
        };
        std::fs::write(
            &conf,
            format!(
                "[general]\naccounts = Test\nmetadata = {}\n\n[Account Test]\nlocalrepository = Local\nremoterepository = Remote\n{account}\n\n{}{}",
                dir.path().join("meta").display(),
                repo("Remote", "alice", remote),
                repo("Local", "bob", ""),
            ),
        )
        .expect("write config");
        Setup { dv, dir, conf }
    }

    /// `twinbox -c CONF args...`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_twinbox"));
        c.arg("-c").arg(&self.conf).args(args);
        c
    }

    /// Runs `twinbox` to the end; returns (status, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (ExitStatus, String, String) {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run twinbox");
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts `twinbox -u machineui args...` in the background.
    pub fn daemon(&self, args: &[&str]) -> Daemon {
        self.daemon_env(args, &[])
    }

    /// [`Self::daemon`] with extra environment variables.
    pub fn daemon_env(&self, args: &[&str], env: &[(&str, &std::path::Path)]) -> Daemon {
        let mut child = self
            .command(&[&["-u", "machineui"], args].concat())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn twinbox");
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("daemon stderr: {line}");
            }
        });
        Daemon {
            child,
            lines: rx,
            events: Vec::new(),
        }
    }

    /// Sorted (content hash, flags) of a mailbox of `user`.
    pub fn contents(&self, user: &str, mailbox: &str) -> Vec<(String, Vec<String>)> {
        self.dv
            .contents(user, mailbox)
            .unwrap_or_else(|e| panic!("list {user} {mailbox}: {e:#}"))
    }

    /// Asserts both sides hold the same messages (content and flags) in `mailbox`, each
    /// once, and returns how many.
    pub fn assert_converged(&self, mailbox: &str) -> usize {
        let a = self.contents("alice", mailbox);
        let b = self.contents("bob", mailbox);
        assert_eq!(a, b, "{mailbox}: the sides differ");
        let mut hashes: Vec<&String> = a.iter().map(|(h, _)| h).collect();
        hashes.dedup();
        assert_eq!(hashes.len(), a.len(), "{mailbox}: duplicates");
        a.len()
    }

    /// Polls until bob's `mailbox` holds `n` messages (or PATIENCE runs out).
    pub fn wait_for_local_count(&self, mailbox: &str, n: usize) -> bool {
        let end = Instant::now() + PATIENCE;
        while Instant::now() < end {
            if self
                .dv
                .list_messages("bob", mailbox)
                .map(|m| m.len() == n)
                .unwrap_or(false)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }
}

/// A running `twinbox` with machineui output.
pub struct Daemon {
    /// The process.
    pub child: Child,
    lines: Receiver<String>,
    /// Every event read so far.
    pub events: Vec<Value>,
}

impl Daemon {
    /// Reads events until one satisfies `pred` (panics after PATIENCE); every line must be a
    /// JSON object with `event` and `time`.
    pub fn wait_event(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + PATIENCE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let v: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                    assert!(v["event"].is_string(), "no event field: {line}");
                    assert!(v["time"].is_f64(), "no time field: {line}");
                    self.events.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("timed out waiting for {what}; events: {:#?}", self.events)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "twinbox ended while waiting for {what}; events: {:#?}",
                        self.events
                    )
                }
            }
        }
    }

    /// Waits for the `n`-th `account_end` event overall (1-based) and returns it.
    pub fn wait_sync(&mut self, n: usize) -> Value {
        loop {
            let have = self
                .events
                .iter()
                .filter(|v| v["event"] == "account_end")
                .count();
            if have >= n {
                return self
                    .events
                    .iter()
                    .filter(|v| v["event"] == "account_end")
                    .nth(n - 1)
                    .cloned()
                    .expect("event");
            }
            self.wait_event("account_end", |v| v["event"] == "account_end");
        }
    }

    /// Sends a signal.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        let r = unsafe { libc::kill(pid, sig) };
        assert_eq!(r, 0, "kill failed");
    }

    /// Waits for the process to end (panics after PATIENCE); drains the remaining events.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let end = Instant::now() + PATIENCE;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        self.events.push(v);
                    }
                }
                return s;
            }
            assert!(
                Instant::now() < end,
                "twinbox did not exit; events: {:#?}",
                self.events
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Events of one kind seen so far.
    pub fn count(&self, event: &str) -> usize {
        self.events.iter().filter(|v| v["event"] == event).count()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A TCP relay to the server whose connections the test can cut (a network loss).
pub struct Relay {
    /// The port twinbox connects to.
    pub port: u16,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    blackhole: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Connections numbered below this forward nothing any more.
    silent_below: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Connections accepted so far.
    accepted: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Relay {
    /// Relays 127.0.0.1:port to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16) -> Relay {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("addr").port();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::<TcpStream>::new()));
        let keep = conns.clone();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_down = down.clone();
        let blackhole = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_blackhole = blackhole.clone();
        let held = conns.clone();
        let silent_below = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let silent = silent_below.clone();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                if is_down.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                if is_blackhole.load(std::sync::atomic::Ordering::SeqCst) {
                    // Accepted, never answered: a server gone silent.
                    if let Ok(mut k) = held.lock() {
                        k.push(client);
                    }
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                if let Ok(mut k) = keep.lock() {
                    k.push(c2);
                    k.push(s2);
                }
                let me = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                for (mut from, mut to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ]
                .into_iter()
                .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
                {
                    let silent = silent.clone();
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buf = [0u8; 16384];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            // A silenced connection swallows everything, like a dead link.
                            if me < silent.load(std::sync::atomic::Ordering::SeqCst) {
                                continue;
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay {
            port,
            conns,
            down,
            blackhole,
            silent_below,
            accepted,
        }
    }

    /// While down, new connections are closed at once (existing ones are not touched).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// While set, new connections are accepted and then never answered.
    pub fn set_blackhole(&self, on: bool) {
        self.blackhole
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every connection made so far goes silent without closing (a link that died, as after
    /// a suspend or a NAT timeout); new connections work.
    pub fn silence_existing(&self) {
        let n = self.accepted.load(std::sync::atomic::Ordering::SeqCst);
        self.silent_below
            .store(n + 1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Cuts every connection made so far (new ones still get through).
    pub fn cut(&self) {
        if let Ok(mut k) = self.conns.lock() {
            for s in k.drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

impl Setup {
    /// Points the remote repository at `port` (e.g. a [`Relay`]).
    pub fn remote_port(&self, port: u16) {
        let text = std::fs::read_to_string(&self.conf).expect("read config");
        let from = format!("remoteport = {}", self.dv.imap_port());
        let text = text.replacen(&from, &format!("remoteport = {port}"), 1);
        std::fs::write(&self.conf, text).expect("write config");
    }
}
