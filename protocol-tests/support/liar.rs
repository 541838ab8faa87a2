//! A lying server for the tests: a relay in front of a real dovecot that rewrites chosen
//! response lines (never literal data), so a real server's session carries one scripted
//! lie (UIDNEXT going backwards, a VANISHED UID that exists, a forged APPENDUID, ...)
//! while everything else stays true. It follows each connection's commands, so a lie can
//! be aimed at one mailbox and one command. Plain TCP without COMPRESS only (twinbox does
//! not compress over loopback).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the relay knows about a connection when a server line passes.
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    /// The mailbox of the last SELECT/EXAMINE sent (as sent, unquoted).
    pub selected: Option<String>,
    /// The last command line the client sent (tag included).
    pub command: String,
}

/// A rewrite: given the context and one server line (without CRLF), the replacement
/// (lines joined by CRLF, without the final CRLF; empty to leave the line out), or `None`
/// to pass it on unchanged.
pub type Rewrite = Box<dyn FnMut(&Ctx, &str) -> Option<String> + Send>;

#[derive(Default)]
struct Shared {
    rewrite: Mutex<Option<Rewrite>>,
    lies: AtomicU64,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

/// A running relay on a free loopback port; cuts its connections when dropped.
pub struct Liar {
    port: u16,
    shared: Arc<Shared>,
}

impl Liar {
    /// A relay to `127.0.0.1:upstream`, honest until [`Self::lie`].
    pub fn start(upstream: u16) -> Liar {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the liar");
        let port = listener.local_addr().expect("liar address").port();
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sh.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                lock(&sh.conns).extend([c3, s3]);
                let ctx = Arc::new(Mutex::new(Ctx::default()));
                let ctx2 = ctx.clone();
                let sh2 = sh.clone();
                std::thread::spawn(move || commands(client, server, ctx));
                std::thread::spawn(move || responses(sh2, s2, c2, ctx2));
            }
        });
        Liar { port, shared }
    }

    /// The port twinbox should connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts lying with `f` (see [`Rewrite`]); resets the count of lies told.
    pub fn lie(&self, f: impl FnMut(&Ctx, &str) -> Option<String> + Send + 'static) {
        self.shared.lies.store(0, Ordering::SeqCst);
        *lock(&self.shared.rewrite) = Some(Box::new(f));
    }

    /// Stops lying.
    pub fn honest(&self) {
        *lock(&self.shared.rewrite) = None;
    }

    /// Lines rewritten since the last [`Self::lie`].
    pub fn lies(&self) -> u64 {
        self.shared.lies.load(Ordering::SeqCst)
    }
}

impl Drop for Liar {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for c in lock(&self.shared.conns).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The size announced by a line ending in `{N}`, `{N+}` or `{N-}` (CRLF removed).
fn literal(line: &[u8]) -> Option<usize> {
    let l = line.strip_suffix(b"}")?;
    let l = l
        .strip_suffix(b"+")
        .or_else(|| l.strip_suffix(b"-"))
        .unwrap_or(l);
    let open = l.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&l[open + 1..]).ok()?.parse().ok()
}

/// Reads lines and literals from `from`, calling `line` on each line (CRLF removed) and
/// `raw` on each literal's bytes; stops at EOF or when a callback says so.
fn split(
    mut from: TcpStream,
    mut line: impl FnMut(&[u8]) -> bool,
    mut raw: impl FnMut(&[u8]) -> bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut in_literal = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut data = &buf[..n];
        while !data.is_empty() {
            if in_literal > 0 {
                let k = in_literal.min(data.len());
                if !raw(&data[..k]) {
                    return;
                }
                in_literal -= k;
                data = &data[k..];
                continue;
            }
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    pending.extend_from_slice(&data[..=i]);
                    data = &data[i + 1..];
                    let text = pending
                        .strip_suffix(b"\r\n")
                        .or_else(|| pending.strip_suffix(b"\n"))
                        .unwrap_or(&pending)
                        .to_vec();
                    in_literal = literal(&text).unwrap_or(0);
                    pending.clear();
                    if !line(&text) {
                        return;
                    }
                }
                None => {
                    pending.extend_from_slice(data);
                    data = &[];
                }
            }
        }
    }
}

/// Client to server: forwarded as is, noting the last command and selected mailbox.
fn commands(from: TcpStream, mut to: TcpStream, ctx: Arc<Mutex<Ctx>>) {
    let mut to2 = match to.try_clone() {
        Ok(t) => t,
        Err(_) => return,
    };
    split(
        from,
        |l| {
            let text = String::from_utf8_lossy(l).into_owned();
            let words: Vec<&str> = text.splitn(3, ' ').collect();
            let mut c = lock(&ctx);
            if words.len() == 3
                && (words[1].eq_ignore_ascii_case("SELECT")
                    || words[1].eq_ignore_ascii_case("EXAMINE"))
            {
                let arg = words[2];
                let name = match arg.strip_prefix('"') {
                    Some(rest) => rest.split('"').next().unwrap_or(""),
                    None => arg.split(' ').next().unwrap_or(""),
                };
                c.selected = Some(name.to_string());
            }
            c.command = text;
            drop(c);
            to.write_all(l).and_then(|_| to.write_all(b"\r\n")).is_ok()
        },
        |r| to2.write_all(r).is_ok(),
    );
    let _ = to2.shutdown(Shutdown::Write);
}

/// Server to client: each line through the rewrite, literal data as is.
fn responses(sh: Arc<Shared>, from: TcpStream, mut to: TcpStream, ctx: Arc<Mutex<Ctx>>) {
    let mut to2 = match to.try_clone() {
        Ok(t) => t,
        Err(_) => return,
    };
    split(
        from,
        |l| {
            let text = String::from_utf8_lossy(l).into_owned();
            let out = {
                let c = lock(&ctx).clone();
                let mut rw = lock(&sh.rewrite);
                rw.as_mut().and_then(|f| f(&c, &text))
            };
            let bytes = match out {
                Some(o) => {
                    sh.lies.fetch_add(1, Ordering::SeqCst);
                    o.into_bytes()
                }
                None => l.to_vec(),
            };
            if bytes.is_empty() {
                return true; // the line is left out
            }
            to.write_all(&bytes)
                .and_then(|_| to.write_all(b"\r\n"))
                .is_ok()
        },
        |r| to2.write_all(r).is_ok(),
    );
    let _ = to2.shutdown(Shutdown::Write);
}
