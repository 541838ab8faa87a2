//! A counting TCP relay between the IMAP clients and the private dovecot: bytes on the
//! wire in each direction (after COMPRESS=DEFLATE, unlike dovecot's logout counters) and
//! the IMAP commands the clients sent (the client stream is inflated after `COMPRESS` to
//! count them).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;
use flate2::{Decompress, FlushDecompress};

/// Totals since the relay started; read them before and after a run.
#[derive(Default)]
pub struct Counters {
    /// Bytes from the clients to the server.
    pub up: AtomicU64,
    /// Bytes from the server to the clients.
    pub down: AtomicU64,
    /// Complete IMAP commands (and continuation lines such as `DONE`) from the clients.
    pub commands: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub up: u64,
    pub down: u64,
    pub commands: u64,
    pub connections: u64,
}

impl Snapshot {
    /// What happened between `before` and `self`.
    pub fn since(self, before: Snapshot) -> Snapshot {
        Snapshot {
            up: self.up - before.up,
            down: self.down - before.down,
            commands: self.commands - before.commands,
            connections: self.connections - before.connections,
        }
    }
}

/// A relay listening on a free loopback port, forwarding to `127.0.0.1:target`.
pub struct Relay {
    pub port: u16,
    pub counters: Arc<Counters>,
}

impl Relay {
    /// Starts the relay (its threads live until the process exits).
    pub fn start(target: u16) -> Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                c.connections.fetch_add(1, Ordering::Relaxed);
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                let cu = c.clone();
                std::thread::spawn(move || pump(client, server, &cu, true));
                let cd = c.clone();
                std::thread::spawn(move || pump(s2, c2, &cd, false));
            }
        });
        Ok(Relay { port, counters })
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let c = &self.counters;
        Snapshot {
            up: c.up.load(Ordering::SeqCst),
            down: c.down.load(Ordering::SeqCst),
            commands: c.commands.load(Ordering::SeqCst),
            connections: c.connections.load(Ordering::SeqCst),
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, c: &Counters, upstream: bool) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut parser = CommandCounter::default();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if upstream {
            c.up.fetch_add(n as u64, Ordering::SeqCst);
            let cmds = parser.feed(&buf[..n]);
            c.commands.fetch_add(cmds, Ordering::SeqCst);
        } else {
            c.down.fetch_add(n as u64, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Counts client commands in a client-to-server stream: lines, with literals (`{n}`,
/// `{n+}`) skipped; everything after a `COMPRESS DEFLATE` command is inflated first.
#[derive(Default)]
struct CommandCounter {
    line: Vec<u8>,
    literal: u64,
    inflate: Option<Decompress>,
}

impl CommandCounter {
    fn feed(&mut self, data: &[u8]) -> u64 {
        if self.inflate.is_some() {
            return self.feed_compressed(data);
        }
        let mut count = 0;
        for (i, &b) in data.iter().enumerate() {
            if self.push(b, &mut count) {
                // COMPRESS DEFLATE seen: the rest is deflated.
                self.inflate = Some(Decompress::new(false));
                return count + self.feed_compressed(&data[i + 1..]);
            }
        }
        count
    }

    fn feed_compressed(&mut self, mut data: &[u8]) -> u64 {
        let mut count = 0;
        let mut out = vec![0u8; 64 * 1024];
        while !data.is_empty() {
            let Some(z) = self.inflate.as_mut() else {
                return count;
            };
            let (i0, o0) = (z.total_in(), z.total_out());
            if z.decompress(data, &mut out, FlushDecompress::Sync).is_err() {
                self.inflate = None;
                return count;
            }
            let used = (z.total_in() - i0) as usize;
            let made = (z.total_out() - o0) as usize;
            data = &data[used..];
            for &b in &out[..made] {
                self.push(b, &mut count);
            }
            if used == 0 && made == 0 {
                break;
            }
        }
        count
    }

    /// Takes one plain byte; true when a `COMPRESS DEFLATE` command line just ended.
    fn push(&mut self, b: u8, count: &mut u64) -> bool {
        if self.literal > 0 {
            self.literal -= 1;
            return false;
        }
        self.line.push(b);
        if b != b'\n' {
            if self.line.len() > 4096 {
                // Only the tail matters (a literal marker at the end).
                self.line.drain(..2048);
            }
            return false;
        }
        let text = String::from_utf8_lossy(&self.line).trim_end().to_string();
        self.line.clear();
        if let Some(n) = literal_len(&text) {
            self.literal = n;
            return false;
        }
        *count += 1;
        let upper = text.to_ascii_uppercase();
        upper
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
            == "COMPRESS DEFLATE"
    }
}

fn literal_len(line: &str) -> Option<u64> {
    let inner = line.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    inner[open + 1..].trim_end_matches('+').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    #[test]
    fn counts_commands_across_literals_and_compression() {
        let mut c = CommandCounter::default();
        let plain = b"a1 LOGIN x y\r\na2 APPEND INBOX {5+}\r\nab\r\nc)\r\na3 COMPRESS DEFLATE\r\n";
        assert_eq!(c.feed(plain), 3);
        let mut z = Compress::new(Compression::default(), false);
        let mut out = vec![0u8; 1024];
        z.compress(b"a4 NOOP\r\na5 LOGOUT\r\n", &mut out, FlushCompress::Sync)
            .expect("deflate");
        let n = z.total_out() as usize;
        assert_eq!(c.feed(&out[..n]), 2);
    }
}
