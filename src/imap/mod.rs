//! IMAP client layer: transports, compression and a client session over imap-codec.
//!
//! It knows nothing of syncing; the store layer builds on it.

pub mod transport;
