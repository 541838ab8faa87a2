//! Plain TCP connections.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Transport;

/// Idle time before the first TCP keepalive probe, and the interval between probes:
/// a peer that vanished (suspend, NAT timeout) is noticed in minutes, not hours.
const KEEPALIVE_TIME: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// Connects to `host:port` over plain TCP.
///
/// Every resolved address is tried in turn within the overall `timeout` (each attempt gets
/// an equal share of the time left, so one black-holed address does not starve the rest).
/// The socket gets TCP_NODELAY and keepalive. `remote_network` is false only when every
/// resolved address is a loopback address; `encrypted` is false.
pub async fn connect(host: &str, port: u16, timeout: Duration) -> anyhow::Result<Transport> {
    let (stream, remote_network) = connect_stream(host, port, timeout).await?;
    Ok(Transport::new(Box::new(stream), remote_network, false))
}

/// Like [`connect`], but returns the bare socket and whether the network is remote.
pub(crate) async fn connect_stream(
    host: &str,
    port: u16,
    timeout: Duration,
) -> anyhow::Result<(TcpStream, bool)> {
    let deadline = Instant::now() + timeout;
    let lookup_host = strip_brackets(host);
    let addrs: Vec<SocketAddr> =
        tokio::time::timeout_at(deadline, tokio::net::lookup_host((lookup_host, port)))
            .await
            .map_err(|_| anyhow!("cannot resolve {host}: timed out after {timeout:?}"))?
            .with_context(|| format!("cannot resolve {host}"))?
            .collect();
    if addrs.is_empty() {
        return Err(anyhow!("cannot resolve {host}: no addresses"));
    }
    let remote_network = !addrs.iter().all(|a| a.ip().is_loopback());

    let mut errors = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let now = Instant::now();
        if now >= deadline {
            errors.push(format!("{addr}: not tried (time out)"));
            continue;
        }
        let share = (deadline - now) / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        match tokio::time::timeout(share, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                configure(&stream);
                tracing::debug!(%addr, remote_network, "TCP connected");
                return Ok((stream, remote_network));
            }
            Ok(Err(e)) => errors.push(format!("{addr}: {e}")),
            Err(_) => errors.push(format!("{addr}: timed out after {share:?}")),
        }
    }
    Err(anyhow!(
        "cannot connect to {host} port {port}: {}",
        errors.join("; ")
    ))
}

/// `[::1]` → `::1`, so bracketed IPv6 literals from URLs and configs resolve.
pub(crate) fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// TCP_NODELAY (IMAP is request/response; pipelined batches are flushed explicitly)
/// and keepalive. Failures only cost performance or hang detection, so they are logged.
fn configure(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY: {e}");
    }
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_TIME)
        .with_interval(KEEPALIVE_INTERVAL);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!("cannot set TCP keepalive: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn connects_to_loopback_and_exchanges_bytes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"* OK hi\r\n").await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            buf
        });
        let mut t = connect("localhost", port, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(!t.remote_network);
        assert!(!t.encrypted);
        let mut greeting = [0u8; 9];
        t.stream.read_exact(&mut greeting).await.unwrap();
        assert_eq!(&greeting, b"* OK hi\r\n");
        t.stream.write_all(b"ping").await.unwrap();
        t.stream.flush().await.unwrap();
        assert_eq!(&server.await.unwrap(), b"ping");
    }

    #[tokio::test]
    async fn refused_port_gives_clear_error() {
        // Bind then drop to get a port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = connect("127.0.0.1", port, Duration::from_secs(5))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot connect to 127.0.0.1 port"), "{err}");
        assert!(err.contains("refused"), "{err}");
    }

    #[tokio::test]
    async fn unresolvable_host_gives_clear_error() {
        let err = connect("no-such-host.invalid", 143, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot resolve no-such-host.invalid"),
            "{err:#}"
        );
    }

    #[test]
    fn brackets_are_stripped() {
        assert_eq!(strip_brackets("[::1]"), "::1");
        assert_eq!(strip_brackets("mail.example"), "mail.example");
    }
}
