//! A shell command whose stdin/stdout speak IMAP (`preauthtunnel`, `transporttunnel`).

use super::Transport;
/// Stub.
pub async fn spawn(_c: &str) -> anyhow::Result<Transport> {
    anyhow::bail!("not built yet")
}
