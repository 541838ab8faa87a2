//! `[mbnames]`: writes the list of synced folders for mail readers such as mutt
//! (`mailboxes +Personal/INBOX +Personal/Sent`), as offlineimap does.
//!
//! The folders are those the state of each account knows (the folders synced so far), by
//! their local names, spelled with the local Maildir's separator.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::config::{Config, Mbnames, RepositoryKind};
use crate::state::StateDb;

/// The file's text for `cfg` (accounts in configuration order, folders sorted by name).
pub fn render(cfg: &Config, mb: &Mbnames) -> anyhow::Result<String> {
    let mut items = Vec::new();
    for account in &cfg.accounts {
        let path = cfg.general.metadata.join(format!("{}.db", account.name));
        if !path.exists() {
            continue;
        }
        let db = StateDb::open_readonly(&path)?;
        let (sep, root) = match cfg.repository(&account.local_repository).map(|r| &r.kind) {
            Some(RepositoryKind::Maildir(m)) => (m.sep, m.root.display().to_string()),
            _ => ('/', String::new()),
        };
        let mut names: Vec<String> = db
            .mailboxes()?
            .into_iter()
            .map(|m| account.folders.to_local(&m.name))
            .filter(|n| mb.folderfilter.accepts(n))
            .map(|n| {
                if sep == '/' {
                    n
                } else {
                    n.replace('/', &sep.to_string())
                }
            })
            .collect();
        names.sort();
        items.extend(
            names
                .iter()
                .map(|n| mb.render_item(&account.name, n, &root)),
        );
    }
    Ok(format!("{}{}{}", mb.header, items.join(&mb.sep), mb.footer))
}

/// Writes the `[mbnames]` file if enabled (atomically; untouched when unchanged).
pub fn write(cfg: &Config) -> anyhow::Result<()> {
    let Some(mb) = &cfg.mbnames else {
        return Ok(());
    };
    let text = render(cfg, mb)?;
    write_atomic(&mb.filename, text.as_bytes())
        .with_context(|| format!("[mbnames] cannot write {}", mb.filename.display()))
}

fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(data) {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)?;
    Ok(())
}
