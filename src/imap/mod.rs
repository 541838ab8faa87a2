//! IMAP client layer: transports, compression and a client session over imap-codec.
//!
//! It knows nothing of syncing; the store layer builds on it.

pub mod commands;
pub mod connect;
pub mod error;
pub mod mutate;
pub mod namespace;
mod quirks;
pub mod session;
pub mod spool;
pub mod transport;
pub mod types;
pub mod utf7;
pub mod wire;

pub use connect::{Compression, ConnectOptions, Endpoint, Password, Security};
pub use error::ImapError;
pub use session::Session;
pub use types::{Capabilities, FetchedMessage, InternalDate, ListedMailbox, MailboxStatus};
