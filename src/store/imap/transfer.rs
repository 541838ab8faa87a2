//! Server-side moves and copies between mailboxes of one IMAP server (RFC 6851 `UID MOVE`,
//! else `UID COPY` + `UID STORE +FLAGS.SILENT (\Deleted)` + `UID EXPUNGE`).

use std::collections::HashMap;

use anyhow::Context;
use imap_types::flag::StoreType;

use super::ImapStore;
use crate::imap::types::uid_set;
use crate::store::TransferMode;

impl ImapStore {
    /// Whether this server can move/copy with a known result mapping (UIDPLUS's COPYUID).
    pub(super) fn transfer_supported(&self) -> bool {
        self.session.has("UIDPLUS")
    }

    /// Selects `from`, moves or copies `uids` to `to`; returns each one's UID in `to` where
    /// the server reported it.
    pub(super) async fn transfer_uids(
        &mut self,
        from: &str,
        uids: &[u32],
        to: &str,
        mode: TransferMode,
    ) -> anyhow::Result<Vec<Option<u32>>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        if !self.transfer_supported() {
            anyhow::bail!("{}: the server lacks UIDPLUS", self.label);
        }
        let (raw_from, raw_to) = (self.raw(from), self.raw(to));
        self.opened = None;
        self.claimed.clear();
        self.session
            .select(&raw_from, false, None)
            .await
            .with_context(|| format!("cannot open mailbox {}", self.spell(from)))?;
        let set = uid_set(uids);
        let native_move = mode == TransferMode::Move && self.session.has("MOVE");
        let mapping = self
            .session
            .uid_copy(&set, &raw_to, native_move)
            .await
            .with_context(|| {
                format!(
                    "cannot {} messages from {} to {}",
                    if native_move { "move" } else { "copy" },
                    self.spell(from),
                    self.spell(to)
                )
            })?;
        if mode == TransferMode::Move && !native_move {
            crate::fault::step("move: copied");
            self.session
                .uid_store(&set, StoreType::Add, &["\\Deleted".to_string()], None, true)
                .await?;
            crate::fault::step("move: marked deleted");
            self.session.uid_expunge(&set).await?;
        }
        let by_source: HashMap<u32, u32> = mapping
            .map(|m| m.source.into_iter().zip(m.destination).collect())
            .unwrap_or_default();
        Ok(uids.iter().map(|u| by_source.get(u).copied()).collect())
    }
}

impl ImapStore {
    /// Selects `name` without QRESYNC parameters (no changes are read) for acting on a scan
    /// taken earlier with status `scanned`; fails if UIDVALIDITY changed since.
    pub(super) async fn reselect_mailbox(
        &mut self,
        name: &str,
        scanned: &crate::state::SideState,
        read_only: bool,
    ) -> anyhow::Result<()> {
        let raw = self.raw(name);
        self.opened = None;
        self.claimed.clear();
        let info = self
            .session
            .select(&raw, read_only, None)
            .await
            .with_context(|| format!("cannot open mailbox {}", self.spell(name)))?;
        let uidvalidity = info.uidvalidity.unwrap_or(0);
        if uidvalidity != scanned.uidvalidity {
            anyhow::bail!(
                "UIDVALIDITY of {} changed during the sync ({} -> {uidvalidity}): left to the next run",
                self.spell(name),
                scanned.uidvalidity
            );
        }
        self.opened = Some(raw);
        self.uidvalidity = uidvalidity;
        // Messages that arrived since the scan are below this: never taken for our appends.
        self.append_floor = info.uidnext.unwrap_or(0).max(scanned.uidnext);
        Ok(())
    }
}

impl ImapStore {
    /// The header blocks of `uids` in `mailbox` (examined read-only; leaves no mailbox
    /// open), by UID; a message gone meanwhile is absent.
    pub(super) async fn header_blocks(
        &mut self,
        mailbox: &str,
        uids: &[u32],
    ) -> anyhow::Result<HashMap<u32, Vec<u8>>> {
        let mut out = HashMap::new();
        if uids.is_empty() {
            return Ok(out);
        }
        let raw = self.raw(mailbox);
        self.opened = None;
        self.claimed.clear();
        self.session
            .select(&raw, true, None)
            .await
            .with_context(|| format!("cannot open mailbox {}", self.spell(mailbox)))?;
        let items = crate::imap::commands::FetchItems {
            header: true,
            ..Default::default()
        };
        self.session
            .uid_fetch(&uid_set(uids), items, None, false, &mut |m| {
                if let Some(h) = m.header {
                    if uids.contains(&m.uid) {
                        out.insert(m.uid, h);
                    }
                }
                Ok(())
            })
            .await?;
        Ok(out)
    }
}
