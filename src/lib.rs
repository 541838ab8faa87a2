//! twinbox: a stateful, bidirectional mail synchroniser.
//!
//! Layers, from the wire up:
//! - [`imap`]: transports, compression and an IMAP client session (knows nothing of syncing);
//! - [`store`]: one interface for a mail store, with an IMAP implementation;
//! - [`state`]: the SQLite state of each account;
//! - [`sync`]: the pure planner and the engine that applies plans;
//! - [`config`], [`cli`]: the edge (offlineimap-shaped configuration and command line);
//! - [`testbed`]: private dovecot instances for the demo, the tests and the benchmarks.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod fault;
pub mod imap;
pub mod state;
pub mod store;
pub mod sync;
pub mod testbed;
pub mod ui;
