//! The sync engine: planning (pure) and applying plans through the store layer.

pub mod engine;
pub mod filter;
pub mod names;
pub mod plan;

pub use engine::{sync_account, AccountReport, AccountSpec, SideSpec, StoreSpec, SyncOptions};
