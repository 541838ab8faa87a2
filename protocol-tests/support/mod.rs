//! Shared helpers for the protocol tests: the sync test bed ([`sync`]).
//!
//! Not every test module uses every helper.
#![allow(dead_code)]

pub mod imap_side;
pub mod liar;
pub mod proxy;
pub mod sync;
