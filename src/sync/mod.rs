//! The sync engine: planning (pure) and applying plans through the store layer.

pub mod dryrun;
pub mod engine;
pub mod filter;
mod late;
pub mod moves;
pub mod names;
pub mod plan;
pub mod pool;
pub mod progress;
mod reuse;

pub use engine::{
    sync_account, AccountReport, AccountSpec, Counts, SideSpec, StoreSpec, SyncOptions,
};
pub use moves::planned_transfer_kind;
pub use pool::ConnectionPool;
pub use progress::{StopToken, SyncEvent, SyncObserver};
