//! A fault-injecting TCP proxy for the tests: sits between twinbox and a server on
//! loopback and, on command, cuts the connection after N bytes in one direction, stalls one
//! direction (holds the connection open and forwards nothing more, longer than any
//! timeout), delays every chunk, or strips `STARTTLS` from what the server says (a man in
//! the middle). It can also record both directions of a clean run, from which
//! [`fault_points`] derives where to cut: every line boundary and several points inside
//! every literal.
//!
//! Byte counts are cumulative over all connections through the proxy since the last
//! [`Proxy::set`], so the offsets of a recorded run name the same moments in a replay.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A direction of traffic through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From twinbox to the server (commands, uploaded literals).
    ToServer,
    /// From the server to twinbox (responses, downloaded literals).
    ToClient,
}

/// What the proxy does to the traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Forward `at` bytes in `dir`, then cut the connection (both directions, both sockets).
    Drop {
        /// The direction counted.
        dir: Dir,
        /// Bytes forwarded before the cut.
        at: u64,
    },
    /// Forward `at` bytes in `dir`, then forward nothing more that way (the connection
    /// stays open: a dead peer, as after a laptop's suspend).
    Stall {
        /// The direction stalled.
        dir: Dir,
        /// Bytes forwarded before the stall.
        at: u64,
    },
    /// Sleep this long before forwarding each chunk, both ways.
    Delay(Duration),
    /// Remove ` STARTTLS` from everything the server says.
    StripStartTls,
}

#[derive(Default)]
struct Shared {
    mode: Mutex<Option<Mode>>,
    to_server: AtomicU64,
    to_client: AtomicU64,
    tripped: AtomicBool,
    recording: AtomicBool,
    rec_to_server: Mutex<Vec<u8>>,
    rec_to_client: Mutex<Vec<u8>>,
    conns: Mutex<Vec<TcpStream>>,
    connections: AtomicU64,
    stop: AtomicBool,
}

/// A running proxy on a free loopback port; stops (and cuts its connections) when dropped.
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
}

impl Proxy {
    /// A proxy to `127.0.0.1:upstream`, forwarding everything.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared::default());
        *lock(&shared.mode) = Some(Mode::Pass);
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
                sh.connections.fetch_add(1, Ordering::SeqCst);
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    lock(&sh.conns).extend([c, s]);
                }
                let pair = (client.try_clone(), server.try_clone());
                if let (Ok(c2), Ok(s2)) = pair {
                    let sh1 = sh.clone();
                    let sh2 = sh.clone();
                    std::thread::spawn(move || pump(sh1, client, server, Dir::ToServer));
                    std::thread::spawn(move || pump(sh2, s2, c2, Dir::ToClient));
                }
            }
        });
        Proxy { port, shared }
    }

    /// The port twinbox should connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Switches the mode and resets the byte counts (and the tripped flag).
    pub fn set(&self, mode: Mode) {
        self.shared.to_server.store(0, Ordering::SeqCst);
        self.shared.to_client.store(0, Ordering::SeqCst);
        self.shared.tripped.store(false, Ordering::SeqCst);
        *lock(&self.shared.mode) = Some(mode);
    }

    /// Whether the fault of the current mode has happened.
    pub fn tripped(&self) -> bool {
        self.shared.tripped.load(Ordering::SeqCst)
    }

    /// Bytes forwarded since the last [`Self::set`]: (to the server, to the client).
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.shared.to_server.load(Ordering::SeqCst),
            self.shared.to_client.load(Ordering::SeqCst),
        )
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Starts recording both directions (clears an earlier recording).
    pub fn record(&self) {
        lock(&self.shared.rec_to_server).clear();
        lock(&self.shared.rec_to_client).clear();
        self.shared.recording.store(true, Ordering::SeqCst);
    }

    /// Stops recording; returns (to the server, to the client).
    pub fn recorded(&self) -> (Vec<u8>, Vec<u8>) {
        self.shared.recording.store(false, Ordering::SeqCst);
        (
            std::mem::take(&mut *lock(&self.shared.rec_to_server)),
            std::mem::take(&mut *lock(&self.shared.rec_to_client)),
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for c in lock(&self.shared.conns).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Forwards `from` to `to` in direction `dir`, applying the shared mode to each chunk.
fn pump(sh: Arc<Shared>, mut from: TcpStream, mut to: TcpStream, dir: Dir) {
    let mut buf = vec![0u8; 16 * 1024];
    let counter = match dir {
        Dir::ToServer => &sh.to_server,
        Dir::ToClient => &sh.to_client,
    };
    let mut stalled = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if stalled {
            continue; // swallow: the peer sees silence
        }
        let mode = lock(&sh.mode).clone().unwrap_or(Mode::Pass);
        let pos = counter.fetch_add(n as u64, Ordering::SeqCst);
        let mut chunk: Vec<u8> = buf[..n].to_vec();
        let mut cut = false;
        match mode {
            Mode::Pass => {}
            Mode::Delay(d) => std::thread::sleep(d),
            Mode::StripStartTls => {
                if dir == Dir::ToClient {
                    let text = String::from_utf8_lossy(&chunk).into_owned();
                    if text.contains(" STARTTLS") {
                        sh.tripped.store(true, Ordering::SeqCst);
                        chunk = text.replace(" STARTTLS", "").into_bytes();
                    }
                }
            }
            Mode::Drop { dir: d, at } | Mode::Stall { dir: d, at } => {
                if d == dir && pos + n as u64 > at && !sh.tripped.swap(true, Ordering::SeqCst) {
                    chunk.truncate(at.saturating_sub(pos) as usize);
                    if matches!(mode, Mode::Drop { .. }) {
                        cut = true;
                    } else {
                        stalled = true;
                    }
                }
            }
        }
        if sh.recording.load(Ordering::SeqCst) {
            let rec = match dir {
                Dir::ToServer => &sh.rec_to_server,
                Dir::ToClient => &sh.rec_to_client,
            };
            lock(rec).extend_from_slice(&chunk);
        }
        if !chunk.is_empty() && to.write_all(&chunk).is_err() {
            break;
        }
        if cut {
            let _ = to.flush();
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
    }
    if !stalled {
        // Pass the end of stream on (half-close), as a real connection would.
        let _ = to.shutdown(Shutdown::Write);
    } else {
        let _ = to.shutdown(Shutdown::Both);
    }
}

/// Where to cut a recorded stream: after every line (every command or response
/// boundary) and, inside each literal, after its first byte, in its middle and before its
/// last byte. Sorted, without duplicates, all below `data.len()`.
pub fn fault_points(data: &[u8]) -> Vec<u64> {
    let mut pts = vec![0u64];
    let mut i = 0usize;
    let mut line_start = 0usize;
    while i < data.len() {
        if data[i] != b'\n' {
            i += 1;
            continue;
        }
        let end = i + 1;
        pts.push(end as u64);
        let line = &data[line_start..end];
        i = end;
        if let Some(n) = literal_size(line) {
            let n = n as usize;
            for p in [end + 1, end + n / 2, (end + n).saturating_sub(1)] {
                if p > end && p < end + n {
                    pts.push(p as u64);
                }
            }
            i = (end + n).min(data.len());
        }
        line_start = i;
    }
    pts.retain(|&p| (p as usize) < data.len());
    pts.sort_unstable();
    pts.dedup();
    pts
}

/// The size announced by a line ending in `{N}\r\n` or `{N+}\r\n`.
fn literal_size(line: &[u8]) -> Option<u64> {
    let l = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let l = l.strip_suffix(b"}")?;
    let l = l.strip_suffix(b"+").unwrap_or(l);
    let open = l.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&l[open + 1..]).ok()?.parse().ok()
}

/// `k` points spread evenly over `points` (all of them when `k >= points.len()`).
pub fn spread(points: &[u64], k: usize) -> Vec<u64> {
    if k >= points.len() || k == 0 {
        return points.to_vec();
    }
    (0..k)
        .map(|j| points[j * (points.len() - 1) / (k - 1).max(1)])
        .collect()
}

#[test]
fn fault_points_cover_lines_and_literal_interiors() {
    let s = b"* OK hi\r\nT1 OK x\r\n* 1 FETCH (BODY[] {10}\r\n0123456789)\r\nT2 OK\r\n";
    let p = fault_points(s);
    let lit = (s.windows(3).position(|w| w == b"}\r\n").expect("literal") + 3) as u64;
    assert!(p.contains(&9) && p.contains(&18));
    assert!(p.contains(&(lit + 1)) && p.contains(&(lit + 5)) && p.contains(&(lit + 9)));
    // No line boundary is taken from inside the literal, and the line after it counts.
    assert!(p.contains(&(lit + 13)));
    assert_eq!(spread(&[1, 2, 3, 4, 5], 3), vec![1, 3, 5]);
}
