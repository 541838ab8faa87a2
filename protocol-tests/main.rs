//! End-to-end protocol tests against a real dovecot.
//!
//! Every test starts its own private dovecot (`twinbox::testbed::Dovecot`) or scripted fake
//! server (`fake::FakeServer`) on free loopback ports, so the tests run in parallel.

mod fake;
mod runmodes_daemon;
mod runmodes_support;
mod runmodes_ui;
mod runmodes_watch;
mod testbed_smoke;
