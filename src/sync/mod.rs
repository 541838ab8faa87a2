//! The sync engine: planning (pure) and applying plans through the store layer.

pub mod plan;
