//! End-to-end protocol tests against a real dovecot.
//!
//! Every test starts its own private dovecot (`twinbox::testbed::Dovecot`) or scripted fake
//! server (`fake::FakeServer`) on free loopback ports, so the tests run in parallel.

mod cli_admin;
mod cli_flags;
mod cli_import;
mod cli_sync;
mod cli_util;
mod fake;
mod testbed_smoke;
