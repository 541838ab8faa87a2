//! TLS (implicit, and the upgrade step of STARTTLS) with certificate verification and pinning.

use std::time::Duration;

use super::{BoxStream, TlsOptions, Transport};

/// Stub.
pub async fn wrap(_s: BoxStream, _host: &str, _o: &TlsOptions) -> anyhow::Result<BoxStream> {
    anyhow::bail!("TLS not built yet")
}
/// Stub.
pub async fn connect(
    _h: &str,
    _p: u16,
    _t: Duration,
    _o: &TlsOptions,
) -> anyhow::Result<Transport> {
    anyhow::bail!("TLS not built yet")
}
