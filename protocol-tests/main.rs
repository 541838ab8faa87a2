//! End-to-end protocol tests against a real dovecot.
//!
//! Every test starts its own private dovecot (`twinbox::testbed::Dovecot`) or scripted fake
//! server (`fake::FakeServer`) on free loopback ports, so the tests run in parallel.
//! `support` holds the shared sync test bed.

mod fake;
mod support;
mod sync_crash;
mod sync_kill;
mod sync_scenarios;
mod testbed_smoke;
