//! twinbox: a stateful, bidirectional mail synchroniser.
//!
//! Layers, from the wire up:
//! - [`imap`]: transports, compression and an IMAP client session (knows nothing of syncing);
//! - [`testbed`]: private dovecot instances for the demo, the tests and the benchmarks.

pub mod config;
pub mod imap;
pub mod testbed;
