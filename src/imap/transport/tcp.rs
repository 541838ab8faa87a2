//! Plain TCP connections.

use std::time::Duration;

use super::Transport;

/// Connects over TCP (stub until the transport branch lands).
pub async fn connect(host: &str, port: u16, timeout: Duration) -> anyhow::Result<Transport> {
    let s = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await??;
    Ok(Transport {
        stream: Box::new(s),
        on_close: None,
        remote_network: false,
        encrypted: false,
    })
}
