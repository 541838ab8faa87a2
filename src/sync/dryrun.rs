//! `--dry-run` helpers: what a sync would copy into a folder it would first have to create
//! (the engine cannot open a folder that does not exist yet, so it examines the other
//! side alone).

use super::filter::Restrictions;
use super::plan::Side;
use crate::state::SideState;
use crate::store::{ScanMode, Store};

/// The copy a new folder would receive: every message of the folder `native` on side
/// `from` that the restrictions let through, as a planned-action line (none if empty).
pub async fn describe_new_folder(
    store: &mut dyn Store,
    name: &str,
    native: &str,
    from: Side,
    r: &Restrictions,
) -> Vec<String> {
    if r.read_only[from.other().i()] {
        return Vec::new();
    }
    match store
        .open(native, &SideState::default(), &[], ScanMode::Full, true)
        .await
    {
        Ok(scan) => {
            let msgs: Vec<_> = scan
                .changes
                .new
                .iter()
                .filter(|m| r.filter.allows(&m.fp))
                .collect();
            if msgs.is_empty() {
                return Vec::new();
            }
            let bytes: u64 = msgs.iter().map(|m| u64::from(m.fp.size)).sum();
            vec![format!(
                "{name}: copy {} message(s), {bytes} bytes, {} -> {}",
                msgs.len(),
                from.name(),
                from.other().name()
            )]
        }
        Err(e) => vec![format!(
            "{name}: cannot examine the {} side: {e:#}",
            from.name()
        )],
    }
}
