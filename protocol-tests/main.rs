//! End-to-end protocol tests against a real dovecot.
//!
//! Every test starts its own private dovecot (`twinbox::testbed::Dovecot`) or scripted fake
//! server (`fake::FakeServer`) on free loopback ports, so the tests run in parallel.
//!
//! The IMAP client layer's tests are the `imap_*` modules (`cargo test --test protocol
//! imap_`): every transport with and without compression, TLS verification, commands,
//! bad servers and `twinbox probe`; `imap_support` holds their shared helpers.
//! `support` holds the shared sync test bed.

mod cli_admin;
mod cli_flags;
mod cli_import;
mod cli_sync;
mod cli_util;
mod fake;
mod faults_daemon;
mod faults_disk;
mod faults_fuzz;
mod faults_kill;
mod faults_lies;
mod faults_load;
mod faults_proxy;
mod faults_security;
mod faults_stream;
mod faults_support;
mod faults_traversal;
mod imap_bad_server;
mod imap_commands;
mod imap_probe;
mod imap_support;
mod imap_tls;
mod imap_transports;
mod maildir_bed;
mod maildir_bench;
mod maildir_dovecot;
mod maildir_native;
mod maildir_scenarios;
mod maildir_side;
mod moves;
mod namespaces;
mod namespaces_side;
mod runmodes_daemon;
mod runmodes_support;
mod runmodes_ui;
mod runmodes_watch;
mod support;
mod sync_crash;
mod sync_kill;
mod sync_late_append;
mod sync_scenarios;
mod testbed_smoke;
mod tiers;
mod tiers_bench;
mod tiers_fallbacks;
mod tiers_quirks;
