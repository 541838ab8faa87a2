//! Courier-IMAP 5 as a PREAUTH tunnel on a private Maildir: `imapd` unpacked from the
//! `courier-imap` package (installing it would set up its daemons), run per connection.
//! Without `IMAP_CAPABILITY` it offers bare IMAP4rev1 (no UIDPLUS, CONDSTORE, LITERAL+...).
//! Needs `libcourier-unicode4 libgamin0 courier-authlib` installed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::debs::unpacked;

/// A Courier Maildir++ home (`HOME/Maildir`) in a temporary directory, removed on drop.
pub struct Courier {
    home: tempfile::TempDir,
    imapd: PathBuf,
}

impl std::fmt::Debug for Courier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Courier")
            .field("home", &self.home.path())
            .finish_non_exhaustive()
    }
}

impl Courier {
    /// Makes the home and its Maildir; fetches `imapd` on first use.
    pub fn start() -> Result<Courier> {
        let imapd = unpacked("courier-imap", "usr/bin/imapd")?;
        let home = tempfile::Builder::new()
            .prefix("twinbox-courier-")
            .tempdir()
            .context("creating the Courier home")?;
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(home.path().join("Maildir").join(sub))
                .context("creating the Maildir")?;
        }
        Ok(Courier { home, imapd })
    }

    /// A shell command speaking IMAP on stdin/stdout, greeting `* PREAUTH` (its INFO lines
    /// go to [`Self::log_path`]).
    pub fn tunnel_command(&self) -> String {
        let h = self.home.path().display();
        format!(
            "cd '{h}' && AUTHENTICATED=alice HOME='{h}' exec '{}' Maildir 2>>'{h}/imapd.log'",
            self.imapd.display()
        )
    }

    /// The home directory (the Maildir is `home/Maildir`, folders `.Lists.rust`).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// imapd's stderr so far.
    pub fn log_path(&self) -> PathBuf {
        self.home.path().join("imapd.log")
    }
}
