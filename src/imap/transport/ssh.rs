//! A remote IMAP command over ssh (openssh crate, ControlMaster shared per host).

use super::{SshOptions, Transport};
/// Stub.
pub async fn connect(_o: &SshOptions) -> anyhow::Result<Transport> {
    anyhow::bail!("not built yet")
}
