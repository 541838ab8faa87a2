//! End-to-end protocol tests against a real dovecot.
//!
//! Every test starts its own private dovecot (`twinbox::testbed::Dovecot`) or scripted fake
//! server (`fake::FakeServer`) on free loopback ports, so the tests run in parallel.

mod fake;
mod maildir_bed;
mod maildir_bench;
mod maildir_dovecot;
mod maildir_native;
mod maildir_scenarios;
mod testbed_smoke;
